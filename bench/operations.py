"""What `trio-tcp serve` does for its operator under stress: shutdown and log floods.

    .venv/bin/python bench/operations.py [--seconds 5] [--clients 100] [--size 1048576]
    .venv/bin/python bench/operations.py --pythonpath /tmp/old-checkout   # a baseline

1. **Shutdown during transfers**: CLIENTS echo clients each stream SIZE bytes through
   ``--mode echo`` (reading concurrently); once every client got a quarter of its bytes back,
   SIGINT. Prints how many got every byte back, the server's exit code and the time from
   SIGINT to exit.
2. **Floods**: for SECONDS each, a client loop provokes one kind of event at default
   verbosity and we count the lines the server writes on stderr (the stats line aside):
   max-connections churn, per-peer churn, accept-rate churn, peers closing mid-line in
   ``echo-lines``, over-long lines, plain text to a TLS port, and a burst of resets.

A benchmark prints figures; it asserts nothing. ``--pythonpath`` runs the CLI from another
checkout (``git archive <commit> | tar -x -C DIR``) for a before/after comparison.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import random
import signal
import site
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path


class Serve:
    """`trio-tcp serve ARGS`; stdout and stderr collected by threads."""

    def __init__(self, args: list[str], pythonpath: str | None) -> None:
        env = dict(os.environ)
        python = [sys.executable]
        if pythonpath:
            # -S: no site processing, so the editable install's import hook (which wins over
            # PYTHONPATH) stays out; site-packages come back through PYTHONPATH for trio.
            env["PYTHONPATH"] = os.pathsep.join([pythonpath, *site.getsitepackages()])
            python.append("-S")
        self.proc = subprocess.Popen(
            [*python, "-m", "trio_tcp", "serve", "--port", "0", *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
            cwd=pythonpath,  # not this checkout: `-m` puts the working directory first
        )
        assert self.proc.stdout is not None and self.proc.stderr is not None
        first = self.proc.stdout.readline()
        self.port = int(first.split()[2].rsplit(":", 1)[1])
        self.out: list[str] = []
        self.err: list[str] = []
        self.threads = [
            threading.Thread(target=self._collect, args=(p, sink), daemon=True)
            for p, sink in ((self.proc.stdout, self.out), (self.proc.stderr, self.err))
        ]
        for thread in self.threads:
            thread.start()

    @staticmethod
    def _collect(pipe: object, sink: list[str]) -> None:
        for line in pipe:  # type: ignore[attr-defined]
            sink.append(line.rstrip("\n"))

    def stop(self, signum: int = signal.SIGTERM) -> int:
        self.proc.send_signal(signum)
        code = self.proc.wait(60)
        for thread in self.threads:
            thread.join(10)
        return code


def shutdown_during_transfers(clients: int, size: int, pythonpath: str | None) -> None:
    server = Serve(["--mode", "echo", "--grace-period", "30"], pythonpath)
    quarter = threading.Barrier(clients + 1)
    results: list[bool] = []
    lock = threading.Lock()

    def client(seed: int) -> None:
        payload = random.Random(seed).randbytes(size)
        received = bytearray()
        ok = False
        try:
            with socket.create_connection(("127.0.0.1", server.port), timeout=60) as sock:

                def send() -> None:
                    try:
                        sock.sendall(payload)
                        sock.shutdown(socket.SHUT_WR)
                    except OSError:
                        pass

                sender = threading.Thread(target=send, daemon=True)
                sender.start()
                waited = False
                while chunk := sock.recv(65536):
                    received += chunk
                    if not waited and len(received) >= size // 4:
                        waited = True
                        with contextlib.suppress(threading.BrokenBarrierError):
                            quarter.wait(60)
                sender.join(60)
                ok = bytes(received) == payload
        except OSError:
            ok = False
        finally:
            if len(received) < size // 4:
                quarter.abort()
        with lock:
            results.append(ok)

    threads = [threading.Thread(target=client, args=(seed,)) for seed in range(clients)]
    for thread in threads:
        thread.start()
    try:
        quarter.wait(120)
    except threading.BrokenBarrierError:
        print("  (some clients broke before a quarter came back)")
    start = time.monotonic()
    server.proc.send_signal(signal.SIGINT)
    code = server.proc.wait(120)
    took = time.monotonic() - start
    for thread in threads:
        thread.join(120)
    print(
        f"shutdown: {sum(results)}/{clients} clients got all {size:,} bytes back; "
        f"exit {code}; SIGINT to exit {took:.2f} s"
    )


def _connect_and_close(port: int, payload: bytes = b"", *, linger_reset: bool = False) -> None:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
            if payload:
                sock.sendall(payload)
            if linger_reset:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            else:
                sock.settimeout(2)
                try:
                    sock.shutdown(socket.SHUT_WR)  # an echo handler then ends at once
                    while sock.recv(65536):
                        pass
                except OSError:
                    pass
    except OSError:
        pass


def _admit_and_drop(port: int) -> None:
    """Two connections at once beside a held one: at --max-connections 2, one is dropped."""
    try:
        pair = [socket.create_connection(("127.0.0.1", port), timeout=5) for _ in range(2)]
    except OSError:
        return
    for sock in pair:
        sock.close()


def flood(
    name: str,
    args: list[str],
    action: Callable[[int], None],
    seconds: float,
    pythonpath: str | None,
    *,
    hold: int = 0,
) -> None:
    server = Serve(args, pythonpath)
    held = [socket.create_connection(("127.0.0.1", server.port)) for _ in range(hold)]
    deadline = time.monotonic() + seconds
    events = 0
    while time.monotonic() < deadline:
        action(server.port)
        events += 1
    for sock in held:
        sock.close()
    code = server.stop()
    lines = [line for line in server.err if "SIGTERM" not in line]
    print(
        f"{name:34} {events:6,} attempts in {seconds:g} s -> {len(lines):5,} stderr lines "
        f"({len(lines) / seconds:,.1f}/s), exit {code}"
    )
    for line in lines[:3]:
        print(f"    {line[:150]}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--clients", type=int, default=100)
    parser.add_argument("--size", type=int, default=1024 * 1024)
    parser.add_argument("--pythonpath", help="run the CLI from this checkout instead")
    parser.add_argument("--skip-shutdown", action="store_true")
    parser.add_argument("--skip-floods", action="store_true")
    args = parser.parse_args()
    if not args.skip_shutdown:
        shutdown_during_transfers(args.clients, args.size, args.pythonpath)
    if args.skip_floods:
        return
    seconds, path = args.seconds, args.pythonpath
    flood(
        "max-connections churn",
        ["--max-connections", "2"],
        _admit_and_drop,
        seconds,
        path,
        hold=1,
    )
    flood("per-peer churn", ["--max-per-peer", "1"], _connect_and_close, seconds, path, hold=1)
    flood("accept-rate churn", ["--max-accept-rate", "50"], _connect_and_close, seconds, path)
    flood(
        "echo-lines: peers close mid-line",
        ["--mode", "echo-lines"],
        lambda port: _connect_and_close(port, b"no newline"),
        seconds,
        path,
    )
    flood(
        "echo-lines: over-long lines",
        ["--mode", "echo-lines", "--max-line-length", "8"],
        lambda port: _connect_and_close(port, b"much too long\n"),
        seconds,
        path,
    )
    flood(
        "echo: resets",
        ["--mode", "echo", "-v"],
        lambda port: _connect_and_close(port, b"x", linger_reset=True),
        seconds,
        path,
    )
    with tempfile.TemporaryDirectory() as tmp:
        cert = Path(tmp) / "cert.pem"
        key = Path(tmp) / "key.pem"
        made = subprocess.run(
            [
                "openssl",
                "req",
                "-x509",
                "-newkey",
                "rsa:2048",
                "-nodes",
                "-subj",
                "/CN=localhost",
                "-keyout",
                str(key),
                "-out",
                str(cert),
                "-days",
                "1",
            ],
            capture_output=True,
        )
        if made.returncode == 0:
            flood(
                "TLS port, plain-text clients",
                ["--tls-cert", str(cert), "--tls-key", str(key)],
                lambda port: _connect_and_close(port, b"GET / HTTP/1.0\r\n\r\n"),
                seconds,
                path,
            )
        else:
            print("TLS flood skipped: openssl not available")


if __name__ == "__main__":
    main()
