"""The README's code runs, so the README cannot rot."""

from __future__ import annotations

import re
import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest

README = Path(__file__).resolve().parent.parent / "README.md"


def python_blocks() -> list[str]:
    return re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.DOTALL)


def test_library_example_runs_and_prints_what_it_says(tmp_path: Path) -> None:
    """The server + client example prints the two shouted lines its comments promise."""
    [example] = [block for block in python_blocks() if "async def shout" in block]
    script = tmp_path / "example.py"
    script.write_text(example)
    result = subprocess.run(
        [sys.executable, str(script)], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == ["b'HELLO'", "b'WORLD'"]
    assert result.stderr == ""


def test_quick_start_names_the_two_commands() -> None:
    """The quick start is exactly `make demo` and `make test`, which the Makefile has."""
    text = README.read_text()
    assert "make demo" in text and "make test" in text
    makefile = (README.parent / "Makefile").read_text()
    assert re.search(r"^demo:", makefile, flags=re.MULTILINE)
    assert re.search(r"^test:", makefile, flags=re.MULTILINE)


def _start_run_it(tmp_path: Path) -> tuple[subprocess.Popen[str], int]:
    [example] = [block for block in python_blocks() if "# example: run it as a program" in block]
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
    """The README's program serves, and SIGINT/SIGTERM close it gracefully: exit 0, one line."""
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
