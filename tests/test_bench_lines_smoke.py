"""The line-reading benchmark script runs end to end at a small size (not timed)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

SCRIPT = Path(__file__).resolve().parent.parent / "bench" / "bench_lines.py"


def test_bench_lines_runs_and_prints_every_reader() -> None:
    """bench_lines.py --lines 500 --repeat 1 prints one checked row per reader."""
    done = subprocess.run(
        [sys.executable, str(SCRIPT), "--lines", "500", "--repeat", "1", "--chunk", "1000"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    rows = done.stdout.splitlines()
    assert rows[0].startswith("500 lines, ")
    names = [row.rsplit(maxsplit=2)[0] for row in rows[2:]]
    assert names == [
        "asyncio StreamReader.readline",
        "trio_tcp Connection.receive_line",
        "trio_tcp Connection.lines()",
        "anyio receive_until (asyncio)",
        "trio_tcp LineFramer.feed",
        "trio_tcp LengthPrefixFramer(4).feed",
        "trio_tcp NetstringFramer.feed",
    ]
    assert rows[2].endswith(" 1.00x")
    assert all(row.endswith("x") for row in rows[2:])
