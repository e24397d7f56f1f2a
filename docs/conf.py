"""Sphinx configuration: ``make docs`` builds with ``-W -n`` (warnings are errors, nitpicky)."""

from __future__ import annotations

import sys
from pathlib import Path

DOCS = Path(__file__).resolve().parent
sys.path.insert(0, str(DOCS / "_ext"))

import trio_tcp  # noqa: E402

project = "trio_tcp"
author = "trio_tcp contributors"
copyright = "trio_tcp contributors"
version = release = trio_tcp.__version__

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.napoleon",
    "sphinxcontrib_trio",  # marks async functions, async context managers, async iterators
    "sphinxarg.ext",  # the CLI reference, generated from the argparse parser
    "myst_nb",  # Markdown pages and the notebooks
    "trio_tcp_docs",  # docs/_ext/trio_tcp_docs.py: public-names, error-tree, offline references
]

exclude_patterns = ["_build", "jupyter_execute", ".DS_Store"]
nitpicky = True
# `single backticks` in a docstring are code, as in Markdown: a reference is always explicit.
default_role = "literal"

# Docstrings are Google style; "Cancellation:" is a section of its own on every async call.
napoleon_google_docstring = True
napoleon_numpy_docstring = False
napoleon_custom_sections = ["Cancellation", "Example", "Examples"]
napoleon_use_rtype = False

# Sphinx 9 rewrote autodoc; sphinxcontrib-trio hooks the class-based documenters (its sniffing of
# async generators and context managers, extended in docs/_ext), so use those.
autodoc_use_legacy_class_based = True
autodoc_member_order = "bysource"
autodoc_typehints = "signature"
autodoc_preserve_defaults = True
autodoc_inherit_docstrings = True
python_use_unqualified_type_names = True
python_maximum_signature_line_length = 90
add_module_names = False

# myst-nb: the notebooks are shown with the outputs committed by `make notebooks`, never run here.
nb_execution_mode = "off"
nb_merge_streams = True
myst_enable_extensions = ["colon_fence", "deflist"]
myst_heading_anchors = 3
source_suffix = {".rst": "restructuredtext", ".md": "myst-nb", ".ipynb": "myst-nb"}

# Smart quotes and ellipses, but no dashes: "--" in prose is an option name (`--help` texts on
# the command line page), and Sphinx would turn "--host" into an en dash.
smartquotes_action = "qe"

html_theme = "furo"
html_title = f"trio_tcp {release}"
html_static_path = ["_static"]
html_favicon = "_static/favicon.svg"
html_show_sourcelink = False
