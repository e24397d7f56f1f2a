"""Round trips per second of `trio-tcp serve --mode echo --workers N`, N = 1 and 2.

    .venv/bin/python bench/workers.py [--seconds 3] [--conns 64] [--size 64] [--rounds 3]

Starts the CLI server (N processes sharing one SO_REUSEPORT port on 127.0.0.1), drives it with
bench/loadgen.c in round-trip mode (each connection sends SIZE bytes and waits for the echo,
then repeats; every byte is checked), and prints one line per run plus the median per N. The
load generator runs on the same machine, so on a 2-core box it competes with the workers for
the CPU: its own CPU time is printed so the reader can see how much it took. A benchmark
prints figures; it asserts nothing.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent


def build_loadgen(directory: Path) -> Path:
    binary = directory / "loadgen"
    compiler = shutil.which("cc") or shutil.which("gcc")
    if compiler is None:
        sys.exit("workers.py: needs a C compiler (cc) for bench/loadgen.c")
    subprocess.run([compiler, "-O2", "-o", str(binary), str(HERE / "loadgen.c")], check=True)
    return binary


def run_once(loadgen: Path, workers: int, args: argparse.Namespace) -> dict[str, float]:
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "trio_tcp",
            "serve",
            "--mode",
            "echo",
            "--port",
            "0",
            "--workers",
            str(workers),
            "--max-connections",
            "10000",
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert server.stdout is not None
        line = server.stdout.readline()
        port = int(line.split()[2].rsplit(":", 1)[1])
        result = subprocess.run(
            [str(loadgen), "rt", str(port), str(args.conns), str(args.size), str(args.seconds)],
            capture_output=True,
            text=True,
            timeout=args.seconds + 30,
            check=True,
        )
        figures: dict[str, float] = json.loads(result.stdout.strip().splitlines()[-1])
        return figures
    finally:
        server.send_signal(signal.SIGINT)
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
        if server.stdout is not None:
            server.stdout.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--conns", type=int, default=64)
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    print(
        f"cores: {os.cpu_count()}; {args.conns} connections, {args.size}-byte round trips, "
        f"{args.seconds:g} s per run, {args.rounds} runs per worker count"
    )
    with tempfile.TemporaryDirectory() as directory:
        loadgen = build_loadgen(Path(directory))
        medians: dict[int, list[float]] = {}
        for round_index in range(args.rounds):
            for workers in (1, 2):  # interleaved, so drift hits both alike
                figures = run_once(loadgen, workers, args)
                rate = figures["ops"] / figures["elapsed"]
                cpu = (figures["cpu_user"] + figures["cpu_sys"]) / figures["elapsed"]
                medians.setdefault(workers, []).append(rate)
                print(
                    f"run {round_index + 1} workers={workers}: {rate:10.0f} round trips/s "
                    f"(errors {figures.get('errors', 0):.0f}; loadgen used {cpu:.2f} cores)"
                )
        for workers, rates in medians.items():
            print(f"median workers={workers}: {statistics.median(rates):10.0f} round trips/s")


if __name__ == "__main__":
    main()
