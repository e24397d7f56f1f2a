"""The published figures: repeated, alternated runs of bench/run.py's workloads.

    python bench/published.py [--runs 5] [--seconds 2] [--servers a,b] [--workloads w1,w2]
                              [--variant NAME=PATH] [--out bench/published.json]

Each run measures every server once per workload, each server in a fresh process; the order
of the servers rotates from run to run, so a slow spell of the shared machine does not land
on one server every time. For each (server, workload) it reports the median and the range
(min, max) over the runs, the ratio to plain Trio *measured in the same run* (median and
range), and the server's CPU time per operation (µs per round trip, per 64 KiB of bulk, per
connection). ``--out`` writes them as JSON (the schema notebook 6 and the README read);
a Markdown table is printed either way.

``--table bench/published.json`` prints the compact table the README and
docs/performance.md show (ratios to plain Trio and to asyncio streams, CPU per operation).

``--variant NAME=PATH`` adds a server ``trio_tcp@NAME`` (and ``trio_tcp_cli@NAME``) running
the trio_tcp found at PATH (another checkout, e.g. ``git worktree add /tmp/before HEAD~3``):
before/after comparisons in one alternated series.

This is a benchmark: it prints figures and never asserts on them.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import statistics
import sys
import tempfile
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import run as bench  # bench/run.py, beside this file

DEFAULT_SERVERS = [
    "trio_tcp",
    "trio_tcp_cli",
    "trio",
    "asyncio_streams",
    "uvloop_streams",
    "node_net",
]
DEFAULT_WORKLOADS = [w for w in bench.WORKLOADS if not w.line_echo]


def machine() -> str:
    """One line about where the figures come from."""
    model = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return (
        f"{os.cpu_count()} CPUs ({model or platform.machine()}), {platform.system()} "
        f"{platform.release()}, Python {platform.python_version()}; shared with other jobs"
    )


def _measure_server(
    label: str,
    workloads: list[bench.Workload],
    loadgen: Path,
    *,
    seconds: float,
    idle_conns: int,
    variants: dict[str, str],
) -> list[bench.Result]:
    kind, _, variant = label.partition("@")
    env = None
    if variant:
        env = dict(os.environ, PYTHONPATH=variants[variant])
    server_cores, loadgen_cores = bench.cpu_plan()
    results: list[bench.Result] = []
    echo = [w for w in workloads if w.mode != "idle"]
    idle = [w for w in workloads if w.mode == "idle"]
    for group in (echo, idle):  # idle memory in a fresh process, from a clean start
        if not group:
            continue
        server = bench.ServerProcess(kind, server_cores, env=env, cwd=variants.get(variant))
        try:
            # Warm up (PERF-NOTES: connections made right after a server sat idle ran
            # slower for their whole life), then measure.
            if group is echo:
                bench.run_loadgen(
                    loadgen, ["rt", str(server.port), "10", "64", "0.3"], loadgen_cores
                )
            for workload in group:
                result = bench.measure(
                    server,
                    workload,
                    loadgen,
                    seconds=seconds,
                    idle_conns=idle_conns,
                    loadgen_cores=loadgen_cores,
                )
                result.server = label
                results.append(result)
        finally:
            server.stop()
    return results


def run_series(
    *,
    servers: list[str],
    workloads: list[bench.Workload],
    runs: int,
    seconds: float,
    idle_conns: int,
    variants: dict[str, str],
) -> list[list[bench.Result]]:
    """``runs`` rounds of every server on every workload, the server order rotating."""
    rounds: list[list[bench.Result]] = []
    with tempfile.TemporaryDirectory(prefix="trio-tcp-bench-") as tmp:
        loadgen = bench.compile_loadgen(Path(tmp))
        for index in range(runs):
            order = servers[index % len(servers) :] + servers[: index % len(servers)]
            results: list[bench.Result] = []
            for label in order:
                print(f"run {index + 1}/{runs}: {label}", file=sys.stderr, flush=True)
                results += _measure_server(
                    label,
                    workloads,
                    loadgen,
                    seconds=seconds,
                    idle_conns=idle_conns,
                    variants=variants,
                )
            rounds.append(results)
    return rounds


def summarize(rounds: list[list[bench.Result]]) -> list[dict[str, Any]]:
    """One row per (server, workload): median/min/max of the figure and of its ratio to Trio."""
    values: dict[tuple[str, str], list[float]] = {}
    ratios: dict[tuple[str, str], list[float]] = {}
    vs_asyncio: dict[tuple[str, str], list[float]] = {}
    saturated: dict[tuple[str, str], int] = {}
    cpu: dict[tuple[str, str], list[float]] = {}
    units: dict[str, str] = {}
    errors: dict[tuple[str, str], int] = {}
    for results in rounds:
        per_round = bench.ratios(results)
        for r in results:
            key = (r.server, r.workload)
            units[r.workload] = r.unit
            values.setdefault(key, []).append(r.value)
            errors[key] = errors.get(key, 0) + r.errors
            ratio = per_round[(r.workload, r.server)].get("vs_trio")
            if ratio is not None:
                ratios.setdefault(key, []).append(ratio)
            ratio = per_round[(r.workload, r.server)].get("vs_asyncio_streams")
            if ratio is not None:
                vs_asyncio.setdefault(key, []).append(ratio)
            saturated[key] = saturated.get(key, 0) + int(r.saturated)
            if r.server_cpu_us_per_op is not None:
                cpu.setdefault(key, []).append(r.server_cpu_us_per_op)
    rows = []
    for (server, workload), figures in values.items():
        key = (server, workload)
        ratio = ratios.get(key, [])
        aio = vs_asyncio.get(key, [])
        rows.append(
            {
                "server": server,
                "workload": workload,
                "unit": units[workload],
                "median": statistics.median(figures),
                "min": min(figures),
                "max": max(figures),
                "ratio_trio_median": statistics.median(ratio) if ratio else None,
                "ratio_trio_min": min(ratio) if ratio else None,
                "ratio_trio_max": max(ratio) if ratio else None,
                "ratio_asyncio_median": statistics.median(aio) if aio else None,
                "ratio_asyncio_min": min(aio) if aio else None,
                "ratio_asyncio_max": max(aio) if aio else None,
                "cpu_us_per_op_median": statistics.median(cpu[key]) if key in cpu else None,
                "runs": figures,
                "loadgen_saturated_runs": saturated.get(key, 0),
                "verify_errors": errors[key],
            }
        )
    return rows


def markdown(rows: list[dict[str, Any]]) -> str:
    """The README's table: figure and ratio to plain Trio, median (range)."""
    lines = [
        "| workload | server | median (range) | x plain Trio, median (range) | CPU us/op |",
        "|---|---|---:|---:|---:|",
    ]
    for row in rows:
        ratio = (
            f"{row['ratio_trio_median']:.2f} ({row['ratio_trio_min']:.2f}-"
            f"{row['ratio_trio_max']:.2f})"
            if row["ratio_trio_median"] is not None
            else "-"
        )
        cpu = row["cpu_us_per_op_median"]
        lines.append(
            f"| {row['workload']} | {row['server']} | {row['median']:,.1f} "
            f"({row['min']:,.1f}-{row['max']:,.1f}) {row['unit']} | {ratio} | "
            f"{'-' if cpu is None else f'{cpu:.1f}'} |"
        )
    return "\n".join(lines)


#: The columns of :func:`summary_table` (the README's and docs/performance.md's table).
TABLE_SERVERS = {
    "trio_tcp": "trio_tcp library",
    "trio_tcp_cli": "`trio-tcp serve --mode echo`",
    "asyncio_streams": "asyncio streams",
    "uvloop_streams": "uvloop streams",
    "node_net": "Node `net`",
}


_DASH = "\u2013"  # an en dash, as in the pages the table goes into
_TIMES = "\u00d7"


def _range(row: dict[str, Any], prefix: str) -> str:
    low, high = row[f"{prefix}_min"], row[f"{prefix}_max"]
    return f"{row[f'{prefix}_median']:.2f} ({low:.2f}{_DASH}{high:.2f})"


def summary_table(data: dict[str, Any]) -> str:
    """The compact table the README and docs/performance.md show, from published.json.

    One row per workload, one column per server: its ratio to plain Trio measured in the
    same run, median (lowest to highest), and its server CPU time per operation; for the two
    trio_tcp columns also the ratio to asyncio streams in the same run. Above 1 is better
    (for memory: less per connection). tests/test_bench_figures.py checks that both pages
    show exactly this table for the committed JSON.
    """
    rows = {(r["server"], r["workload"]): r for r in data["rows"]}
    servers = [s for s in TABLE_SERVERS if any(k[0] == s for k in rows)]
    workloads = list(dict.fromkeys(r["workload"] for r in data["rows"]))
    header = ["workload", *(TABLE_SERVERS[s] for s in servers), "plain Trio"]
    lines = ["| " + " | ".join(header) + " |", "|---" + "|---:" * (len(header) - 1) + "|"]
    for workload in workloads:
        trio_row = rows.get(("trio", workload))
        cells = [workload]
        for server in servers:
            row = rows.get((server, workload))
            if row is None or row["ratio_trio_median"] is None:
                cells.append(_DASH)
                continue
            cell = f"{_range(row, 'ratio_trio')}{_TIMES}"
            if server.startswith("trio_tcp") and row.get("ratio_asyncio_median") is not None:
                cell += f"; vs asyncio {_range(row, 'ratio_asyncio')}{_TIMES}"
            cell += _cpu(row)
            cells.append(cell)
        cells.append("1" + ("" if trio_row is None else _cpu(trio_row)))
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _cpu(row: dict[str, Any]) -> str:
    if row["unit"] == "KiB/conn":
        return f"; {row['median']:.1f} KiB"
    cpu = row["cpu_us_per_op_median"]
    return "" if cpu is None else f"; {cpu:.1f} µs"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=5, help="alternated rounds (default 5)")
    parser.add_argument("--seconds", type=float, default=2.0, help="seconds per figure")
    parser.add_argument("--idle", type=int, default=2000, help="idle connections")
    parser.add_argument("--servers", help="comma-separated (default: all installed)")
    parser.add_argument("--workloads", help="comma-separated substrings of workload names")
    parser.add_argument("--variant", action="append", default=[], help="NAME=PATH")
    parser.add_argument("--out", type=Path, help="write the summary JSON here")
    parser.add_argument(
        "--table", type=Path, help="print the README's table from this JSON and stop"
    )
    args = parser.parse_args(argv)
    if args.table:
        print(summary_table(json.loads(args.table.read_text())))
        return 0
    variants = dict(v.split("=", 1) for v in args.variant)
    servers = args.servers.split(",") if args.servers else DEFAULT_SERVERS
    servers = [s for s in servers if bench.server_available(s.partition("@")[0])]
    if "trio" not in servers:
        parser.error("plain Trio ('trio') is the baseline: keep it in --servers")
    workloads = DEFAULT_WORKLOADS
    if args.workloads:
        wanted = args.workloads.split(",")
        workloads = [w for w in bench.WORKLOADS if any(s in w.name for s in wanted)]
    rounds = run_series(
        servers=servers,
        workloads=workloads,
        runs=args.runs,
        seconds=args.seconds,
        idle_conns=args.idle,
        variants=variants,
    )
    rows = summarize(rounds)
    print(markdown(rows))
    failed = any([row.pop("verify_errors") for row in rows])  # every row, no short cut
    if args.out and not failed:  # a figure with a wrong echoed byte is never published
        command = "python bench/published.py " + " ".join(argv or sys.argv[1:])
        data = {
            "generated": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
            "command": command.strip(),
            "runs": args.runs,
            "machine": machine(),
            "rows": rows,
        }
        args.out.write_text(json.dumps(data, indent=2) + "\n")
    if failed:
        print(
            "VERIFY-ERRORS: some echoed bytes were wrong (see bench/run.py); nothing written",
            file=sys.stderr,
        )
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
