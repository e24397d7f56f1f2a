"""The benchmark machinery (bench/run.py) runs at a tiny size and yields verified figures.

Not a timed assertion: it checks that every workload produced figures whose echoed bytes the
C load generator verified, and that the table, ratios and JSON are well formed.
"""

from __future__ import annotations

import importlib.util
import json
import shutil
import sys
from pathlib import Path
from types import ModuleType

import pytest

BENCH = Path(__file__).resolve().parent.parent / "bench" / "run.py"

pytestmark = pytest.mark.skipif(
    not (shutil.which("cc") or shutil.which("gcc") or shutil.which("clang"))
    or not sys.platform.startswith("linux"),
    reason="the benchmark needs Linux (/proc, epoll) and a C compiler",
)


def load_bench() -> ModuleType:
    """Import bench/run.py (a script, not part of the package)."""
    spec = importlib.util.spec_from_file_location("trio_tcp_bench_run", BENCH)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up here
    spec.loader.exec_module(module)
    return module


def test_tiny_run_gives_verified_figures(tmp_path: Path) -> None:
    """Every workload on trio_tcp and plain Trio gives a positive, byte-verified figure."""
    bench = load_bench()
    results = bench.run_suite(
        servers=["trio_tcp", "trio"],
        workloads=bench.WORKLOADS,
        seconds=0.1,
        idle_conns=20,
        progress=False,
    )
    names = {w.name for w in bench.WORKLOADS}
    seen = {(r.workload, r.server) for r in results}
    for workload in names - {"line echo 50 x 64 B"}:
        assert {(workload, "trio_tcp"), (workload, "trio")} <= seen
    assert seen >= {
        ("line echo 50 x 64 B", "trio_tcp_lines"),
        ("line echo 50 x 64 B", "asyncio_lines"),
    }
    for r in results:
        assert r.errors == 0, r
        assert r.ops > 0, r
        assert r.verified_bytes > 0, r
        if r.unit != "KiB/conn":  # memory can come out at ~0 for 20 connections
            assert r.value > 0, r
    ratios = bench.ratios(results)
    assert ratios[("50 conns x 64 B", "trio")]["vs_trio"] == pytest.approx(1.0)
    assert "vs_asyncio_lines" in ratios[("line echo 50 x 64 B", "trio_tcp_lines")]
    table = bench.format_table(results)
    assert "50 conns x 64 B" in table and "VERIFY-ERRORS" not in table
    out = tmp_path / "bench.json"
    bench.write_json(out, results, {"seconds": 0.1})
    data = json.loads(out.read_text())
    assert len(data["results"]) == len(results)
    assert data["results"][0]["ratios"] is not None


def test_loadgen_catches_a_corrupting_server(tmp_path: Path) -> None:
    """A server that flips bytes is reported with verification errors, not a clean figure."""
    import socket
    import threading

    bench = load_bench()
    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]

    def corrupt_echo() -> None:
        conn, _ = listener.accept()
        with conn:
            while data := conn.recv(65536):
                conn.sendall(data.upper())  # letters come back in the wrong case

    thread = threading.Thread(target=corrupt_echo, daemon=True)
    thread.start()
    try:
        loadgen = bench.compile_loadgen(tmp_path)
        report = bench.run_loadgen(loadgen, ["rt", str(port), "1", "64", "0.05"], None)
    finally:
        listener.close()
        thread.join(5)
    assert report["ops"] > 0
    assert report["errors"] == report["ops"]  # every round trip was caught


def test_command_line_and_node_servers_give_verified_figures() -> None:
    """`trio-tcp serve --mode echo` (and Node's `net`, where installed) are benchmarked too."""
    bench = load_bench()
    servers = ["trio_tcp_cli"] + (["node_net"] if bench.server_available("node_net") else [])
    rt = [w for w in bench.WORKLOADS if w.name == "50 conns x 64 B"]
    results = bench.run_suite(
        servers=servers, workloads=rt, seconds=0.1, idle_conns=20, progress=False
    )
    assert {r.server for r in results} == set(servers)
    for r in results:
        assert r.errors == 0 and r.ops > 0 and r.verified_bytes > 0, r
        assert r.server_cpu_us_per_op is not None and r.server_cpu_us_per_op > 0, r


def test_published_summary_has_the_schema(tmp_path: Path) -> None:
    """bench/published.py's rows carry median, range and ratios to Trio from alternated runs."""
    load_bench()
    sys.path.insert(0, str(BENCH.parent))
    try:
        spec = importlib.util.spec_from_file_location(
            "trio_tcp_bench_published", BENCH.parent / "published.py"
        )
        assert spec is not None and spec.loader is not None
        published = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(published)
        out = tmp_path / "published.json"
        code = published.main(
            ["--runs", "2", "--seconds", "0.1", "--servers", "trio_tcp,trio",
             "--workloads", "50 conns x 64 B", "--out", str(out)]
        )  # fmt: skip
    finally:
        sys.path.remove(str(BENCH.parent))
    assert code == 0
    data = json.loads(out.read_text())
    assert {"generated", "command", "runs", "machine", "rows"} <= set(data)
    assert data["runs"] == 2
    rows = {(row["server"], row["workload"]): row for row in data["rows"]}
    trio_row = rows[("trio", "50 conns x 64 B")]
    assert trio_row["ratio_trio_median"] == pytest.approx(1.0)
    ours = rows[("trio_tcp", "50 conns x 64 B")]
    assert ours["min"] <= ours["median"] <= ours["max"]
    assert ours["ratio_trio_min"] <= ours["ratio_trio_median"] <= ours["ratio_trio_max"]
    assert ours["cpu_us_per_op_median"] > 0
