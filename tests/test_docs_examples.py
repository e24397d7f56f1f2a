"""Every example in the documentation runs and prints what the page says it prints.

In ``docs/**/*.md`` each fenced ```` ```python ```` block is a whole program. When the next block
is a ``{code-block} text`` captioned ``Output``, that is the program's exact standard output
(and its standard error is empty unless a ``Standard error`` block follows; there, ``…`` stands
for text that changes from run to run, such as a port). A block whose first line is
``# test_<name>.py`` is a test module: it runs under pytest and must pass, as many tests as its
``Output`` block says. A snippet that is not a
whole program uses ```` ```{code-block} python ```` instead, which this test leaves alone.
"""

from __future__ import annotations

import re
import signal
import socket
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest
from _docs_blocks import named_block

DOCS = Path(__file__).resolve().parent.parent / "docs"
FENCE = re.compile(r"^```(?P<info>[^\n]*)\n(?P<body>.*?)^```\s*$", re.MULTILINE | re.DOTALL)
TIMEOUT = 60  # seconds per example: a hang fails instead of stalling CI


@dataclass
class Example:
    page: str
    index: int
    code: str
    stdout: str | None
    stderr: str | None

    @property
    def id(self) -> str:
        return f"{self.page}#{self.index}"


def captioned(info: str, body: str, caption: str) -> str | None:
    """The text of a ``{code-block} text`` block with ``:caption: <caption>``, else None."""
    if info.strip() != "{code-block} text":
        return None
    options, _, text = body.partition("\n\n")
    return text if f":caption: {caption}" in options.splitlines() else None


def examples() -> list[Example]:
    found = []
    for path in sorted(DOCS.rglob("*.md")):
        if "_build" in path.parts:
            continue
        blocks = [(m["info"], m["body"]) for m in FENCE.finditer(path.read_text())]
        number = 0
        for position, (info, body) in enumerate(blocks):
            if info.strip() != "python":
                continue
            number += 1
            after = blocks[position + 1 : position + 3]
            stdout = captioned(*after[0], "Output") if after else None
            stderr = next(
                (text for block in after if (text := captioned(*block, "Standard error"))), None
            )
            page = str(path.relative_to(DOCS))
            found.append(Example(page, number, body, stdout, stderr))
    return found


EXAMPLES = examples()


def test_the_docs_have_examples() -> None:
    """The collector finds the examples (a broken pattern would silently test nothing)."""
    pages = {example.page for example in EXAMPLES}
    assert {"quickstart.md", "howto/line-protocol.md", "howto/testing.md"} <= pages
    assert sum(example.stdout is not None for example in EXAMPLES) >= 8


@pytest.mark.parametrize("example", EXAMPLES, ids=[example.id for example in EXAMPLES])
def test_docs_example(example: Example, tmp_path: Path) -> None:
    """The example runs; its output is exactly the page's Output block."""
    first_line = example.code.splitlines()[0]
    test_module = re.fullmatch(r"# (test_\w+\.py)", first_line)
    if test_module:
        (tmp_path / test_module[1]).write_text(example.code)
        (tmp_path / "pytest.ini").write_text("[pytest]\ntrio_mode = true\n")
        command = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-W", "error"]
    else:
        (tmp_path / "example.py").write_text(example.code)
        command = [sys.executable, "example.py"]
    result = subprocess.run(command, cwd=tmp_path, capture_output=True, text=True, timeout=TIMEOUT)
    assert result.returncode == 0, result.stdout + result.stderr
    if test_module:
        summary = result.stdout.strip().splitlines()[-1]
        assert example.stdout is not None, "a test module's page says how many tests pass"
        assert summary.startswith(example.stdout.strip() + " in "), summary
        return
    assert example.stdout is not None, f"{example.id}: add an Output block after the example"
    assert result.stdout == example.stdout
    if example.stderr is None:
        assert result.stderr == ""
    else:
        expected = example.stderr.splitlines()
        assert len(result.stderr.splitlines()) == len(expected), result.stderr
        for line, pattern in zip(result.stderr.splitlines(), expected, strict=True):
            regex = ".*".join(re.escape(part) for part in pattern.split("…"))
            assert re.fullmatch(regex, line), (line, pattern)


def test_docstring_examples_run() -> None:
    """The ``>>>`` examples in docstrings (shown on the API pages) give the output they show."""
    import doctest
    import importlib
    import pkgutil

    import trio_tcp

    names = ["trio_tcp"] + [
        info.name for info in pkgutil.walk_packages(trio_tcp.__path__, "trio_tcp.")
    ]
    finder = doctest.DocTestFinder()
    runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS)
    examples = 0
    report: list[str] = []
    for name in names:
        for test in finder.find(importlib.import_module(name)):
            examples += len(test.examples)
            runner.run(test, out=report.append)
    assert "".join(report) == ""
    assert examples >= 3


def _start_run_it(tmp_path: Path) -> tuple[subprocess.Popen[str], int]:
    example = named_block("howto/program.md", "run-it-as-a-program")
    script = tmp_path / "run_it.py"
    script.write_text(example)
    proc = subprocess.Popen(
        [sys.executable, str(script), "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None and proc.stderr is not None
    first = proc.stdout.readline()
    if not first.startswith("listening on 127.0.0.1:"):
        proc.kill()
        raise AssertionError(first + proc.stderr.read())
    return proc, int(first.rsplit(":", 1)[1])


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_run_it_as_a_program_shuts_down_gracefully(tmp_path: Path, signum: int) -> None:
    """The docs' program serves, and SIGINT/SIGTERM close it gracefully: exit 0, one line."""
    proc, port = _start_run_it(tmp_path)
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=30) as client:
            client.sendall(b"\x0c\x22")
            assert client.recv(2) == b"\x0c\x22"
        proc.send_signal(signum)
        _out, err = proc.communicate(timeout=60)
    finally:
        proc.kill()
    assert proc.returncode == 0
    assert err == f"{signal.Signals(signum).name}: shutting down\n"


def test_run_it_second_ctrl_c_stops_at_once(tmp_path: Path) -> None:
    """A handler still busy at the first Ctrl-C; the second cancels it: exit 0, the cut reported."""
    proc, port = _start_run_it(tmp_path)
    assert proc.stderr is not None
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=30) as client:
            client.sendall(b"hi")
            assert client.recv(2) == b"hi"  # the handler is now waiting for more
            proc.send_signal(signal.SIGINT)
            assert proc.stderr.readline() == "SIGINT: shutting down\n"
            proc.send_signal(signal.SIGINT)
            _out, err = proc.communicate(timeout=60)
            assert client.recv(10) == b""  # the cancelled handler's connection was closed
    finally:
        proc.kill()
    assert proc.returncode == 0
    # The server reports the cut (a warning; logging's last-resort handler prints it).
    assert err == "stopping now\nstopped: cut 1 connection that was still open\n"
