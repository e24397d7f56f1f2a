"""trio_tcp as a typed dependency: `mypy --strict` on a user's files, outside the repository.

mypy runs in a temporary folder, so it can find trio_tcp only the way a user's checker does:
through the installed package (an editable install must be a path, not an import hook).
"""

from __future__ import annotations

import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from _docs_blocks import docs_test_file, named_block

pytest.importorskip("mypy", reason="the typing tests run mypy")

REPO = Path(__file__).resolve().parent.parent
README = REPO / "README.md"

USER_PROGRAM = '''
from typing import Any, assert_type

import trio
import trio_tcp
from trio_tcp.framing import Framer, LengthPrefixFramer, LineFramer, NetstringFramer, ReceiveBuffer


class Numbers(Framer[int]):
    """A user's own framer: one byte, one number."""

    def parse(self, buffer: ReceiveBuffer) -> int | None:
        return buffer.extract(1)[0] if len(buffer) else None

    def check_eof(self, buffer: ReceiveBuffer) -> None:
        pass

    def encode(self, frame: int) -> bytes:
        return bytes([frame])


async def main(conn: trio_tcp.Connection) -> None:
    # The frame type is inferred in every position: as an argument, assigned, iterated.
    print(await conn.receive_frame(LengthPrefixFramer(2)))
    print(await conn.receive_frame(LineFramer()))
    print(await conn.receive_frame(NetstringFramer()))
    print(await conn.receive_frame(Numbers()))
    assert_type(await conn.receive_frame(LengthPrefixFramer(2)), bytes)
    assert_type(await conn.receive_frame(Numbers()), int)
    anything: object = await conn.receive_frame(Numbers())
    async for frame in conn.frames(Numbers()):
        assert_type(frame, int)
    print([frame async for frame in conn.frames(LengthPrefixFramer(2))])
    print(sum([n async for n in conn.frames(Numbers())]))
    await conn.send_frame(LengthPrefixFramer(2), b"hi")
    await conn.send_frame(Numbers(), 7)
    framers: list[Framer[Any]] = [LineFramer(), Numbers()]
    del anything, framers


if __name__ == "__main__":
    trio.run(main, trio_tcp.Connection(trio.testing.memory_stream_pair()[0]))
'''

WRONG_PROGRAM = """
import trio_tcp
from trio_tcp.framing import LengthPrefixFramer


async def main(conn: trio_tcp.Connection) -> None:
    await conn.send_frame(LengthPrefixFramer(2), "text, not bytes")  # line 7
    number: int = await conn.receive_frame(LengthPrefixFramer(2))  # line 8
    del number
"""


def run_mypy(folder: Path, *files: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "mypy", "--strict", "--cache-dir", str(folder / ".cache"), *files],
        cwd=folder,
        capture_output=True,
        text=True,
        timeout=300,
    )


def readme_block(marker: str) -> str:
    blocks: list[str] = re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.DOTALL)
    [block] = [block for block in blocks if marker in block]
    return block


def test_user_programs_pass_mypy_strict_from_outside_the_repository(tmp_path: Path) -> None:
    """Framer types are inferred everywhere; the README's and the docs' programs and test file
    are --strict."""
    assert not tmp_path.is_relative_to(REPO)
    (tmp_path / "user.py").write_text(textwrap.dedent(USER_PROGRAM))
    (tmp_path / "library_example.py").write_text(readme_block("async def shout"))
    (tmp_path / "test_echo.py").write_text(docs_test_file("howto/testing.md", "test_echo.py"))
    (tmp_path / "run_it.py").write_text(named_block("howto/program.md", "run-it-as-a-program"))
    result = run_mypy(tmp_path, "user.py", "library_example.py", "test_echo.py", "run_it.py")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Success: no issues found in 4 source files" in result.stdout


def test_mypy_still_rejects_the_wrong_frame_type(tmp_path: Path) -> None:
    """Covariant framers do not make send_frame accept anything: wrong types are errors."""
    (tmp_path / "wrong.py").write_text(textwrap.dedent(WRONG_PROGRAM))
    result = run_mypy(tmp_path, "wrong.py")
    assert result.returncode == 1
    errors = [line for line in result.stdout.splitlines() if ": error:" in line]
    assert [line.split(":")[1] for line in errors] == ["7", "8"], result.stdout
    assert 'expected "Framer[int]"' in errors[1]
    assert "import-not-found" not in result.stdout


def test_editable_install_is_a_path_that_type_checkers_follow() -> None:
    """An editable install is a .pth holding the repository's path, not an import hook."""
    import importlib.metadata
    import json

    [dist] = [
        d
        for d in importlib.metadata.distributions(name="trio-tcp")
        if d.read_text("direct_url.json") is not None
    ]
    direct_url = json.loads(dist.read_text("direct_url.json") or "{}")
    if not direct_url.get("dir_info", {}).get("editable"):
        pytest.skip("trio_tcp is not installed in editable mode here")
    files = [str(path) for path in dist.files or []]
    assert not [name for name in files if "finder" in name], files  # setuptools' import hook
    [pth] = [path for path in dist.files or [] if str(path).endswith(".pth")]
    assert Path(pth.read_text().strip()).resolve() == REPO
