"""The documentation site builds without a warning, documents every public name once, and looks
right in a real browser.

The site is built once per session into a temporary directory with ``sphinx-build -W -n``, the
same command as ``make docs``. The build copies the notebooks into ``docs/tutorial/`` (ignored by
git) and reads ``docs/_ext/trio_tcp_docs.py``.
"""

from __future__ import annotations

import argparse
import functools
import http.server
import importlib
import importlib.util
import inspect
import pkgutil
import re
import subprocess
import sys
import threading
import zlib
from collections.abc import Iterator
from pathlib import Path

import pytest
from _browser import find_chromium, open_browser

MISSING = [
    name
    for name in ("sphinx", "sphinxcontrib_trio", "myst_nb", "sphinxarg", "furo")
    if importlib.util.find_spec(name) is None
]
pytestmark = pytest.mark.skipif(
    bool(MISSING), reason=f"docs extra not installed ({', '.join(MISSING)}): pip install -e .[docs]"
)

REPO = Path(__file__).resolve().parent.parent
DOCS = REPO / "docs"
# The same as `make docs`: warnings are errors (-W), every reference must resolve (-n).
SPHINX_BUILD = [sys.executable, "-m", "sphinx", "-W", "-n", "--keep-going", "-q", "-b", "html"]
BUILD_TIMEOUT = 300  # seconds; the build takes a few


@pytest.fixture(scope="session")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The built HTML site (fails the tests that need it if the build warns)."""
    out = tmp_path_factory.mktemp("docs")
    html = out / "html"
    result = subprocess.run(
        [*SPHINX_BUILD, "-d", str(out / "doctrees"), str(DOCS), str(html)],
        capture_output=True,
        text=True,
        timeout=BUILD_TIMEOUT,
    )
    assert result.returncode == 0 and result.stderr == "", result.stderr
    return html


def inventory(site: Path) -> dict[str, tuple[str, str]]:
    """``{name: (domain:role, page)}`` from the site's ``objects.inv`` (format version 2)."""
    raw = (site / "objects.inv").read_bytes()
    header_end = 0
    for _ in range(4):  # four comment lines, then zlib-compressed entries
        header_end = raw.index(b"\n", header_end) + 1
    entries = {}
    for line in zlib.decompress(raw[header_end:]).decode().splitlines():
        match = re.fullmatch(r"(.+?)\s+(\S+):(\S+)\s+(-?\d+)\s+?(\S*)\s+(.*)", line)
        assert match, line
        name, domain, role, _, uri, _ = match.groups()
        entries[name] = (f"{domain}:{role}", uri.split("#")[0])
    return entries


def public_modules() -> list[str]:
    """trio_tcp and its public submodules that declare ``__all__``."""
    import trio_tcp

    names = ["trio_tcp"]
    for info in pkgutil.walk_packages(trio_tcp.__path__, "trio_tcp."):
        private = any(part.startswith("_") for part in info.name.split("."))
        if not private and hasattr(importlib.import_module(info.name), "__all__"):
            names.append(info.name)
    return names


def test_public_modules_include_the_four_of_the_issue() -> None:
    """The discovery finds the modules a reader looks for (a broken walk would check nothing)."""
    assert {"trio_tcp", "trio_tcp.framing", "trio_tcp.testing", "trio_tcp.notebook"} <= set(
        public_modules()
    )


def test_every_public_name_has_exactly_one_entry(site: Path) -> None:
    """Each name of each ``__all__`` is documented, under the first module that exports it."""
    entries = inventory(site)
    modules = public_modules()
    homes: dict[int, str] = {}
    missing, duplicated = [], []
    for module_name in modules:
        module = importlib.import_module(module_name)
        for name in module.__all__:
            obj = getattr(module, name)
            home = homes.setdefault(id(obj), module_name)
            if f"{home}.{name}" not in entries:
                missing.append(f"{module_name}.{name}")
            if home != module_name and f"{module_name}.{name}" in entries:
                duplicated.append(f"{module_name}.{name} (also {home}.{name})")
    assert missing == [], "no page entry; see docs/api/*.rst (public-names)"
    assert duplicated == []
    assert len(homes) >= 70


def async_callables() -> Iterator[tuple[str, object]]:
    """Every async function and async method of the public API, by dotted name."""
    seen: set[int] = set()
    for module_name in public_modules():
        module = importlib.import_module(module_name)
        for name in module.__all__:
            obj = getattr(module, name)
            if id(obj) in seen:
                continue
            seen.add(id(obj))
            members = [(name, obj)]
            if inspect.isclass(obj):
                members += [
                    (f"{name}.{key}", value)
                    for key, value in vars(obj).items()
                    if not key.startswith("_")
                ]
            for dotted, member in members:
                # unwrap: Connection.receive_some/send_all are plain methods that
                # return a coroutine, marked with __wrapped__ (awaited all the same).
                plain = inspect.unwrap(member) if callable(member) else member
                if inspect.iscoroutinefunction(plain) or inspect.isasyncgenfunction(plain):
                    yield f"{module_name}.{dotted}", member


def test_every_async_call_says_how_it_behaves_on_cancellation() -> None:
    """STYLE.md: each public async call's docstring says what a cancellation leaves behind."""
    callables = dict(async_callables())
    assert len(callables) >= 30
    silent = [
        name
        for name, fn in callables.items()
        if not re.search(r"\bcancel", fn.__doc__ or "", re.IGNORECASE)
    ]
    assert silent == [], "add a 'Cancellation: ...' paragraph to these docstrings"


def signature_prefix(site: Path, page: str, name: str) -> str:
    """The text before the name in an API entry's signature (``await``, ``async for ... in``)."""
    html = (site / "api" / page).read_text()
    entry = re.search(
        rf'<dt class="sig sig-object py" id="{re.escape(name)}">(.*?)</dt>', html, re.S
    )
    assert entry, name
    text = " ".join(re.sub(r"<[^>]+>", " ", entry[1]).split())
    return text.split(name.rsplit(".", 1)[-1])[0].strip()


def test_async_names_are_marked(site: Path) -> None:
    """sphinxcontrib-trio marks async calls ``await`` and async iterators ``async for``."""
    assert signature_prefix(site, "trio_tcp.html", "trio_tcp.serve") == "await"
    assert signature_prefix(site, "trio_tcp.html", "trio_tcp.Connection.receive_line") == "await"
    assert (
        signature_prefix(site, "trio_tcp.html", "trio_tcp.Connection.lines") == "async for ... in"
    )
    assert signature_prefix(site, "testing.html", "trio_tcp.testing.cancellation_sweep") == "await"
    assert signature_prefix(site, "trio_tcp.html", "trio_tcp.format_buffer") == ""


def cli_options(parser: argparse.ArgumentParser) -> Iterator[str]:
    for action in parser._actions:
        if action.help == argparse.SUPPRESS:
            continue  # internal (the workers' --worker-index), hidden from --help too
        yield from action.option_strings
        if isinstance(action, argparse._SubParsersAction):
            for command, sub in action.choices.items():
                yield command
                yield from cli_options(sub)


def test_cli_reference_lists_every_option(site: Path) -> None:
    """The command line page is generated from the parser: every command and option is on it."""
    from trio_tcp._cli import build_parser

    text = re.sub(r"<[^>]+>", "", (site / "cli.html").read_text())
    options = set(cli_options(build_parser()))
    assert {"serve", "send", "demo", "--port"} <= options
    assert [option for option in sorted(options) if option not in text] == []


def test_option_names_in_prose_keep_their_two_hyphens(site: Path) -> None:
    """`--help` texts mention other options ("not with --host/--port"): no en dash on the page."""
    text = re.sub(r"<[^>]+>", "", (site / "cli.html").read_text())
    assert "not with --host/--port" in text
    assert re.findall(r"\u2013[a-z]", text) == []


def test_changelog_has_unreleased_and_0_1_0(site: Path) -> None:
    """CHANGELOG.md is on the site, with an Unreleased section above 0.1.0."""
    text = (site / "changelog.html").read_text()
    headings = re.findall(r"<h2>([^<]+)<", text)
    assert headings[:2] == ["Unreleased", "0.1.0"]


def test_every_notebook_is_a_tutorial_chapter(site: Path) -> None:
    """Each notebook is a page, with its committed figures inlined."""
    notebooks = sorted((REPO / "notebooks").glob("[0-9]*.ipynb"))
    assert len(notebooks) >= 6
    for notebook in notebooks:
        page = site / "tutorial" / f"{notebook.stem}.html"
        figures = re.findall(r'<img[^>]+src="([^"]+\.png)"', page.read_text())
        assert figures, notebook.name
        assert all((page.parent / src).is_file() for src in figures), figures


@pytest.fixture(scope="session")
def served(site: Path) -> Iterator[str]:
    """The site over HTTP on loopback, as a reader's browser would load it."""

    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, format: str, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(
        ("127.0.0.1", 0), functools.partial(Quiet, directory=str(site))
    )
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        thread.join()
        server.server_close()


PAGES = {
    "index.html": ("trio_tcp", 0),
    "api/trio_tcp.html": ("open_connection", 0),
    "tutorial/01-your-first-tcp-server.html": ("Your first TCP server", 1),
}


def test_pages_render_in_a_real_browser(served: str, site: Path) -> None:
    """Headless Chromium loads the home page, an API page and a notebook chapter: no console
    error, every image loaded, the text a reader expects."""
    chromium = find_chromium()
    if chromium is None:
        pytest.skip("no chromium (Debian: apt-get install chromium; .ci/run installs it)")
    with open_browser(chromium) as browser:
        for page, (expected_text, min_images) in PAGES.items():
            report = browser.visit(f"{served}/{page}", screenshot=True)
            (site / "_screenshots").mkdir(exist_ok=True)
            (site / "_screenshots" / page.replace("/", "_").replace(".html", ".png")).write_bytes(
                report.screenshot
            )
            assert report.console_errors == [], page
            assert expected_text in report.text, page
            assert len(report.images) >= min_images, page
            broken = [
                image for image in report.images if not image["complete"] or image["width"] == 0
            ]
            assert broken == [], page
            assert report.screenshot.startswith(b"\x89PNG"), page
