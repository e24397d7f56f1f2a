"""The README's code runs, so the README cannot rot."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

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
