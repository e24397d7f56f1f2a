"""Code blocks of the documentation's Markdown pages, for the tests that run or type-check them."""

from __future__ import annotations

import re
from pathlib import Path

DOCS = Path(__file__).resolve().parent.parent / "docs"


def named_block(page: str, name: str) -> str:
    """The code of the ```` ```{code-block} python ```` block with ``:name: <name>`` on ``page``."""
    text = (DOCS / page).read_text()
    pattern = rf"^```{{code-block}} python\n:name: {re.escape(name)}\n\n(.*?)^```"
    blocks: list[str] = re.findall(pattern, text, flags=re.DOTALL | re.MULTILINE)
    [block] = blocks
    return block


def docs_test_file(page: str, filename: str) -> str:
    """The ```` ```python ```` block on ``page`` that starts with ``# <filename>``."""
    text = (DOCS / page).read_text()
    pattern = rf"^```python\n(# {re.escape(filename)}\n.*?)^```"
    blocks: list[str] = re.findall(pattern, text, flags=re.DOTALL | re.MULTILINE)
    [block] = blocks
    return block
