"""The speed figures the README and the performance page quote are the benchmark's own.

They come from ``bench/published.json`` (``bench/published.py``: repeated, alternated runs);
these tests keep the pages and the file in step, so a figure cannot be edited by hand or go
stale when the benchmark is re-run. Nothing here measures speed: figures belong to ``bench/``.
"""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
PUBLISHED = ROOT / "bench" / "published.json"
ISSUE_SERVERS = {"trio_tcp", "trio_tcp_cli", "trio", "asyncio_streams"}


def published_module() -> ModuleType:
    """bench/published.py (which imports bench/run.py from beside it)."""
    sys.path.insert(0, str(ROOT / "bench"))
    try:
        spec = importlib.util.spec_from_file_location(
            "bench_published", ROOT / "bench" / "published.py"
        )
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        return module
    finally:
        sys.path.remove(str(ROOT / "bench"))


def data() -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(PUBLISHED.read_text())
    return loaded


def test_the_readme_and_the_performance_page_show_the_published_table() -> None:
    table = published_module().summary_table(data())
    assert table.count("\n") >= 7  # a header, a rule and one row per workload
    for page in (ROOT / "README.md", ROOT / "docs" / "performance.md"):
        assert table in page.read_text(), (
            f"{page.name}: paste `python bench/published.py --table bench/published.json`"
        )


def test_the_published_series_covers_every_server_and_workload_it_reports_on() -> None:
    """Every server of the issue on every workload, each figure from every run (published.py
    writes no file when an echoed byte came back wrong)."""
    published = data()
    rows = published["rows"]
    workloads = {row["workload"] for row in rows}
    assert len(workloads) == 7
    for server in ISSUE_SERVERS:
        mine = [row for row in rows if row["server"] == server]
        assert {row["workload"] for row in mine} == workloads, server
        for row in mine:
            assert len(row["runs"]) == published["runs"] >= 5
            assert row["min"] <= row["median"] <= row["max"]
            if server != "trio" and row["unit"] != "KiB/conn":
                assert row["cpu_us_per_op_median"] is not None
