"""The README's production examples (TLS, PROXY protocol, admission control) run as shown."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

README = Path(__file__).resolve().parent.parent / "README.md"

EXPECTED = {
    "tls": ["b'SECRET'"],
    "proxy": ["b'hello 203.0.113.9:51000'"],
    "admission": ["b''", "1"],
    "shutdown": ["b'one'", "b'bye'", "b''", "0"],
}


def example(name: str) -> str:
    blocks: list[str] = re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.DOTALL)
    [block] = [b for b in blocks if b.startswith(f"# example: {name}\n")]
    return block


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_readme_example_prints_what_its_comments_say(name: str, tmp_path: Path) -> None:
    """Each example runs and prints exactly the values its comments promise."""
    script = tmp_path / f"{name}.py"
    script.write_text(example(name))
    result = subprocess.run(
        [sys.executable, str(script)], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == EXPECTED[name]
    if name == "admission":  # the refusal's one warning (logging's last-resort handler)
        assert result.stderr.startswith("connection from 127.0.0.1:")
        assert "refused: max_connections_per_peer=1 reached" in result.stderr
        assert result.stderr.count("\n") == 1
    else:
        assert result.stderr == ""
