"""Echo benchmarks: trio_tcp against plain Trio, asyncio (streams, Protocol) and uvloop.

    python bench/run.py [--quick] [--seconds S] [--idle N] [--servers a,b] [--json PATH]
                        [--plot PATH]

Each server (bench/servers.py) runs in its own process, the load in another: bench/loadgen.c,
compiled here with the machine's C compiler into a temporary directory. With two or more
cores the server is pinned to one and the load generator to another (os.sched_setaffinity).
Everything talks over 127.0.0.1, and the load generator compares every echoed byte with what
it sent: a figure with a verification error is reported as such, never silently.

Workloads: round trips/s for 1 and 50 connections with 64 B and 4 KiB messages, bulk echo
throughput on one connection, connect+echo+close per second, memory per idle connection (the
server's RSS growth over N held connections), and a line-echo round trip (trio_tcp
``conn.lines()`` against asyncio ``readline()``). For each figure it prints the ratio to plain
Trio (and asyncio streams), the server's CPU time per operation, the load generator's CPU
use, and flags ``LOADGEN-SATURATED`` when the generator used >= 90 % of its core (then the
figure measures the generator, not the server).

This is a benchmark: it prints figures and never asserts on them. ``--quick`` (0.5 s per
figure, 500 idle connections) runs in about 30 s, for notebooks and smoke tests.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ALL_SERVERS = [
    "trio_tcp",
    "trio_tcp_cli",
    "trio",
    "asyncio_streams",
    "asyncio_protocol",
    "uvloop_streams",
    "uvloop_protocol",
    "node_net",
]
SATURATED = 0.90  # load generator CPU share above which its figure is its own limit


@dataclass(frozen=True)
class Workload:
    """One thing to measure: the load generator's arguments and how to read its output."""

    name: str
    mode: str  # rt | bulk | cps | idle
    conns: int = 1
    size: int = 64
    unit: str = "rt/s"
    line_echo: bool = False  # served by the *_lines variants


WORKLOADS = [
    Workload("1 conn x 64 B", "rt", 1, 64),
    Workload("50 conns x 64 B", "rt", 50, 64),
    Workload("1 conn x 4 KiB", "rt", 1, 4096),
    Workload("50 conns x 4 KiB", "rt", 50, 4096),
    Workload("bulk echo, 1 conn", "bulk", 1, 65536, unit="MB/s"),
    Workload("connect+echo+close", "cps", unit="conn/s"),
    Workload("idle memory", "idle", unit="KiB/conn"),
    Workload("line echo 50 x 64 B", "rt", 50, 64, line_echo=True),
]


@dataclass
class Result:
    """One figure: a server on a workload."""

    workload: str
    server: str
    value: float  # in the workload's unit
    unit: str
    ops: int
    verified_bytes: float
    errors: int
    elapsed: float
    server_cpu_us_per_op: float | None
    server_cpu_share: float | None
    loadgen_cpu_share: float
    saturated: bool
    extra: dict[str, Any] = field(default_factory=dict)


# ---------------------------------------------------------------------- processes


def compile_loadgen(directory: Path) -> Path:
    """Compile bench/loadgen.c with ``cc``/``gcc`` into ``directory``; returns the binary."""
    compiler = shutil.which("cc") or shutil.which("gcc") or shutil.which("clang")
    if compiler is None:
        raise RuntimeError("no C compiler (cc, gcc or clang) found to build bench/loadgen.c")
    binary = directory / "loadgen"
    subprocess.run(
        [compiler, "-O2", "-o", str(binary), str(HERE / "loadgen.c")],
        check=True,
        capture_output=True,
    )
    return binary


def cpu_plan() -> tuple[set[int] | None, set[int] | None]:
    """(server cores, load generator cores): two different cores when there are two."""
    cores = sorted(os.sched_getaffinity(0))
    if len(cores) < 2:
        return None, None
    return {cores[0]}, {cores[1]}


def _pin(pid: int, cores: set[int] | None) -> None:
    if cores is not None:
        os.sched_setaffinity(pid, cores)


def server_available(kind: str) -> bool:
    """uvloop servers need uvloop installed, node_net needs ``node``; the others always run."""
    if kind.startswith("uvloop"):
        return importlib.util.find_spec("uvloop") is not None
    if kind == "node_net":
        return shutil.which("node") is not None
    return True


def server_command(kind: str) -> list[str]:
    """The command line of one echo server; each prints its port once it accepts.

    ``trio_tcp_cli`` is the command line itself (``trio-tcp serve --mode echo``, which says
    ``listening on 127.0.0.1:PORT``), ``node_net`` is ``bench/node_echo.js``; the rest are
    ``bench/servers.py``.
    """
    if kind == "trio_tcp_cli":
        return [sys.executable, "-m", "trio_tcp", "serve", "--mode", "echo", "--port", "0",
                "--max-connections", "100000"]  # fmt: skip
    if kind == "node_net":
        return ["node", str(HERE / "node_echo.js"), "0"]
    return [sys.executable, str(HERE / "servers.py"), kind, "0"]


def _read_port(line: str) -> int | None:
    """The port in ``ready PORT`` or ``listening on HOST:PORT``; None if neither."""
    words = line.split()
    if len(words) == 2 and words[0] == "ready" and words[1].isdigit():
        return int(words[1])
    if line.startswith("listening on ") and line.rstrip().rsplit(":", 1)[-1].isdigit():
        return int(line.rstrip().rsplit(":", 1)[-1])
    return None


class ServerProcess:
    """An echo server from bench/servers.py in its own process, pinned to its core."""

    def __init__(
        self,
        kind: str,
        cores: set[int] | None,
        env: dict[str, str] | None = None,
        cwd: str | None = None,
    ) -> None:
        self.kind = kind
        self.proc = subprocess.Popen(
            server_command(kind), stdout=subprocess.PIPE, text=True, env=env, cwd=cwd
        )
        _pin(self.proc.pid, cores)
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        port = _read_port(line)
        if port is None:
            self.stop()
            raise RuntimeError(f"server {kind} did not start (said {line!r})")
        self.port = port
        # Whatever else it prints (the CLI logs connections) is read and dropped, so a full
        # pipe never stalls the server being measured.
        threading.Thread(target=self._drain, daemon=True).start()

    def _drain(self) -> None:
        stdout = self.proc.stdout
        try:
            while stdout is not None and stdout.read(65536):
                pass
        except (OSError, ValueError):  # closed by stop()
            pass

    def cpu_seconds(self) -> float:
        """User + system CPU time of the server process so far."""
        fields = Path(f"/proc/{self.proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def rss_kib(self) -> int:
        """Resident set size of the server process, KiB."""
        for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
        raise RuntimeError("no VmRSS in /proc status")

    def stop(self) -> None:
        """Terminate the server and wait for it."""
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self.proc.stdout is not None:
            self.proc.stdout.close()


def run_loadgen(loadgen: Path, args: list[str], cores: set[int] | None) -> dict[str, Any]:
    """Run the load generator to completion; its JSON report (exits non-zero on errors)."""
    proc = subprocess.Popen(
        [str(loadgen), *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    _pin(proc.pid, cores)
    out, err = proc.communicate(timeout=120)
    if proc.returncode not in (0, 1) or not out.strip():
        raise RuntimeError(f"loadgen {' '.join(args)} failed ({proc.returncode}): {err.strip()}")
    report: dict[str, Any] = json.loads(out.splitlines()[0])
    return report


# ---------------------------------------------------------------------- measuring


def measure(
    server: ServerProcess,
    workload: Workload,
    loadgen: Path,
    *,
    seconds: float,
    idle_conns: int,
    loadgen_cores: set[int] | None,
) -> Result:
    """One figure for ``server`` on ``workload``."""
    port = str(server.port)
    if workload.mode == "idle":
        return _measure_idle(server, workload, loadgen, idle_conns, loadgen_cores)
    if workload.mode == "rt":
        args = ["rt", port, str(workload.conns), str(workload.size), str(seconds)]
    elif workload.mode == "bulk":
        args = ["bulk", port, str(workload.size), str(seconds)]
    else:
        args = ["cps", port, str(seconds)]
    cpu_before = server.cpu_seconds()
    report = run_loadgen(loadgen, args, loadgen_cores)
    server_cpu = server.cpu_seconds() - cpu_before
    elapsed = float(report["elapsed"])
    ops = int(report["ops"])
    if workload.mode == "bulk":
        value = report["bytes"] / elapsed / 1e6
        per_op = server_cpu / (report["bytes"] / 65536) * 1e6 if report["bytes"] else None
    else:
        value = ops / elapsed
        per_op = server_cpu / ops * 1e6 if ops else None
    loadgen_share = (report["cpu_user"] + report["cpu_sys"]) / elapsed
    return Result(
        workload=workload.name,
        server=server.kind,
        value=value,
        unit=workload.unit,
        ops=ops,
        verified_bytes=float(report["bytes"]),
        errors=int(report["errors"]),
        elapsed=elapsed,
        server_cpu_us_per_op=per_op,
        server_cpu_share=server_cpu / elapsed,
        loadgen_cpu_share=loadgen_share,
        saturated=loadgen_share >= SATURATED,
    )


def _measure_idle(
    server: ServerProcess,
    workload: Workload,
    loadgen: Path,
    conns: int,
    cores: set[int] | None,
) -> Result:
    # Warm up first (the first connections load code and grow Python's pools), then take
    # the RSS before and while `conns` connections sit idle, each with its handler waiting.
    run_loadgen_idle(loadgen, server.port, 20, cores, hold=0.0)
    time.sleep(0.2)
    before = server.rss_kib()
    report, during = run_loadgen_idle(loadgen, server.port, conns, cores, hold=0.3, probe=server)
    per_conn = (during - before) / conns
    return Result(
        workload=workload.name,
        server=server.kind,
        value=per_conn,
        unit=workload.unit,
        ops=conns,
        verified_bytes=float(report["bytes"]),
        errors=int(report["errors"]),
        elapsed=float(report["elapsed"]),
        server_cpu_us_per_op=None,
        server_cpu_share=None,
        loadgen_cpu_share=(report["cpu_user"] + report["cpu_sys"]) / float(report["elapsed"]),
        saturated=False,
        extra={"rss_before_kib": before, "rss_during_kib": during},
    )


def run_loadgen_idle(
    loadgen: Path,
    port: int,
    conns: int,
    cores: set[int] | None,
    *,
    hold: float,
    probe: ServerProcess | None = None,
) -> tuple[dict[str, Any], int]:
    """Open ``conns`` idle connections, read the server's RSS while they are held, close."""
    proc = subprocess.Popen(
        [str(loadgen), "idle", str(port), str(conns)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    _pin(proc.pid, cores)
    assert proc.stdout is not None and proc.stdin is not None
    first = proc.stdout.readline()
    ready = proc.stdout.readline().strip()
    if ready != "ready":
        proc.kill()
        _, err = proc.communicate()
        raise RuntimeError(f"loadgen idle failed: {first.strip()} {err.strip()}")
    time.sleep(hold)
    rss = probe.rss_kib() if probe is not None else 0
    proc.stdin.close()
    proc.wait(30)
    proc.stdout.close()
    if proc.stderr is not None:
        proc.stderr.close()
    report: dict[str, Any] = json.loads(first)
    return report, rss


def run_suite(
    *,
    servers: list[str],
    workloads: list[Workload],
    seconds: float,
    idle_conns: int,
    progress: bool = True,
) -> list[Result]:
    """Measure every (workload, server) pair; line echo uses the *_lines servers."""
    server_cores, loadgen_cores = cpu_plan()
    plan: list[tuple[str, list[Workload]]] = []
    echo = [w for w in workloads if not w.line_echo and w.mode != "idle"]
    idle = [w for w in workloads if w.mode == "idle"]
    lines = [w for w in workloads if w.line_echo]
    for kind in servers:
        if server_available(kind):
            if echo:
                plan.append((kind, echo))
            if idle:
                plan.append((kind, idle))  # a fresh process: memory from a clean start
    if lines:
        for kind in ("trio_tcp_lines", "asyncio_lines"):
            plan.append((kind, lines))
    total = sum(len(ws) for _, ws in plan)
    results: list[Result] = []
    done = 0
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="trio-tcp-bench-") as tmp:
        loadgen = compile_loadgen(Path(tmp))
        for kind, kind_workloads in plan:
            server = ServerProcess(kind, server_cores)
            try:
                for workload in kind_workloads:
                    done += 1
                    if progress:
                        _progress(done, total, workload.name, kind, time.monotonic() - started)
                    results.append(
                        measure(
                            server,
                            workload,
                            loadgen,
                            seconds=seconds,
                            idle_conns=idle_conns,
                            loadgen_cores=loadgen_cores,
                        )
                    )
            finally:
                server.stop()
    if progress:
        print(file=sys.stderr)
    return results


def _progress(done: int, total: int, workload: str, server: str, elapsed: float) -> None:
    line = f"[{done}/{total}] {workload:<22} {server:<16} {elapsed:5.0f} s"
    if sys.stderr.isatty():
        print(f"\r{line:<70}", end="", file=sys.stderr, flush=True)
    else:
        print(line, file=sys.stderr, flush=True)


# ---------------------------------------------------------------------- reporting


def _baseline(workload: str, server: str) -> str:
    return "asyncio_lines" if server.endswith("_lines") else "trio"


def ratios(results: list[Result]) -> dict[tuple[str, str], dict[str, float]]:
    """(workload, server) -> {"vs_trio": x, "vs_asyncio_streams": y}; lower is better for
    memory, so its ratios are inverted (a ratio > 1 always means better than the baseline)."""
    by_key = {(r.workload, r.server): r for r in results}
    out: dict[tuple[str, str], dict[str, float]] = {}
    for r in results:
        entry: dict[str, float] = {}
        bases = (
            [("vs_asyncio_lines", "asyncio_lines")]
            if r.server.endswith("_lines")
            else [("vs_trio", "trio"), ("vs_asyncio_streams", "asyncio_streams")]
        )
        for label, base in bases:
            other = by_key.get((r.workload, base))
            if other is None or other.value <= 0 or r.value <= 0:
                continue
            lower_better = r.unit == "KiB/conn"
            entry[label] = other.value / r.value if lower_better else r.value / other.value
        out[(r.workload, r.server)] = entry
    return out


def format_table(results: list[Result]) -> str:
    """The printed table: one block per workload, one row per server."""
    rs = ratios(results)
    lines = [
        f"{'workload':<22} {'server':<17} {'figure':>12} {'unit':<9} {'x trio':>7} "
        f"{'x aio-st':>8} {'srv us/op':>9} {'srv CPU':>7} {'gen CPU':>7}  notes"
    ]
    for workload in dict.fromkeys(r.workload for r in results):
        for r in (x for x in results if x.workload == workload):
            ratio = rs[(r.workload, r.server)]
            vs_trio = ratio.get("vs_trio")
            vs_aio = ratio.get("vs_asyncio_streams", ratio.get("vs_asyncio_lines"))
            notes = []
            if r.errors:
                notes.append(f"VERIFY-ERRORS={r.errors}")
            if r.saturated:
                notes.append("LOADGEN-SATURATED")
            if "vs_asyncio_lines" in ratio:
                notes.append("(x aio-st: vs asyncio readline)")
            lines.append(
                f"{workload:<22} {r.server:<17} {r.value:>12,.1f} {r.unit:<9} "
                f"{_fmt(vs_trio, 'x'):>7} {_fmt(vs_aio, 'x'):>8} "
                f"{_fmt(r.server_cpu_us_per_op, ''):>9} {_fmt_pct(r.server_cpu_share):>7} "
                f"{_fmt_pct(r.loadgen_cpu_share):>7}  {' '.join(notes)}"
            )
        lines.append("")
    lines.append(
        "Ratios > 1 are better than the baseline (for memory: the baseline's KiB / ours). "
        "srv us/op: server CPU time per round trip, per 64 KiB of bulk, per connection."
    )
    return "\n".join(lines)


def _fmt(value: float | None, suffix: str) -> str:
    return "-" if value is None else f"{value:.2f}{suffix}"


def _fmt_pct(value: float | None) -> str:
    return "-" if value is None else f"{value * 100:.0f}%"


def write_json(path: Path, results: list[Result], settings: dict[str, Any]) -> None:
    """Every figure, its ratios and the run's settings, as JSON."""
    rs = ratios(results)
    data = {
        "settings": settings,
        "results": [asdict(r) | {"ratios": rs[(r.workload, r.server)]} for r in results],
    }
    path.write_text(json.dumps(data, indent=2) + "\n")


def write_plot(path: Path, results: list[Result]) -> None:
    """A bar chart of each server's ratio to plain Trio per workload (needs matplotlib)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rs = ratios(results)
    workloads = list(dict.fromkeys(r.workload for r in results if not r.server.endswith("_lines")))
    servers = list(dict.fromkeys(r.server for r in results if not r.server.endswith("_lines")))
    fig, ax = plt.subplots(figsize=(11, 4.5))
    width = 0.8 / max(len(servers), 1)
    for i, server in enumerate(servers):
        heights = [rs.get((w, server), {}).get("vs_trio", 0.0) for w in workloads]
        ax.bar([x + i * width for x in range(len(workloads))], heights, width, label=server)
    ax.axhline(1.0, color="black", linewidth=0.8)
    ax.set_xticks([x + width * (len(servers) - 1) / 2 for x in range(len(workloads))])
    ax.set_xticklabels(workloads, rotation=15, fontsize=8)
    ax.set_ylabel("x plain Trio (higher is better)")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="0.5 s per figure, 500 idle conns")
    parser.add_argument("--seconds", type=float, help="seconds per figure (default 3)")
    parser.add_argument("--idle", type=int, help="idle connections (default 2000)")
    parser.add_argument("--servers", help=f"comma-separated subset of {','.join(ALL_SERVERS)}")
    parser.add_argument("--workloads", help="comma-separated substrings of workload names")
    parser.add_argument("--json", type=Path, help="also write every figure as JSON here")
    parser.add_argument("--plot", type=Path, help="also draw ratios to plain Trio (matplotlib)")
    args = parser.parse_args(argv)
    seconds = args.seconds or (0.5 if args.quick else 3.0)
    idle = args.idle or (500 if args.quick else 2000)
    servers = args.servers.split(",") if args.servers else ALL_SERVERS
    unknown = set(servers) - set(ALL_SERVERS)
    if unknown:
        parser.error(f"unknown servers: {', '.join(sorted(unknown))}")
    workloads = WORKLOADS
    if args.workloads:
        wanted = args.workloads.split(",")
        workloads = [w for w in WORKLOADS if any(s in w.name for s in wanted)]
    skipped = [s for s in servers if not server_available(s)]
    server_cores, loadgen_cores = cpu_plan()
    print(
        f"server on cores {server_cores or 'any'}, load generator on {loadgen_cores or 'any'}; "
        f"{seconds} s per figure, {idle} idle connections"
        + (f"; not installed, skipped: {', '.join(skipped)}" if skipped else ""),
        flush=True,
    )
    results = run_suite(servers=servers, workloads=workloads, seconds=seconds, idle_conns=idle)
    print(format_table(results))
    settings = {
        "seconds": seconds,
        "idle_conns": idle,
        "server_cores": sorted(server_cores or []),
        "loadgen_cores": sorted(loadgen_cores or []),
        "python": sys.version.split()[0],
        "skipped": skipped,
    }
    if args.json:
        write_json(args.json, results, settings)
    if args.plot:
        try:
            write_plot(args.plot, results)
        except ImportError:
            print("matplotlib is not installed: no plot", file=sys.stderr)
    return 1 if any(r.errors for r in results) else 0


if __name__ == "__main__":
    sys.exit(main())
