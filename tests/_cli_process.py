"""A `trio-tcp serve` subprocess for the production-feature tests (TLS, PROXY, workers)."""

from __future__ import annotations

import signal
import subprocess
import sys
import threading
import time
from collections.abc import Sequence

CLI = [sys.executable, "-m", "trio_tcp"]
TIMEOUT = 30


class ServeProcess:
    """`trio-tcp serve ARGS`; its stdout lines are collected by a thread so we can wait on them."""

    def __init__(self, *args: str, env: dict[str, str] | None = None) -> None:
        self.proc = subprocess.Popen(
            [*CLI, "serve", *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
        )
        self.lines: list[str] = []
        self.err_lines: list[str] = []
        self._changed = threading.Condition()
        self._readers = [
            threading.Thread(target=self._collect, args=(stream, sink), daemon=True)
            for stream, sink in ((self.proc.stdout, self.lines), (self.proc.stderr, self.err_lines))
        ]
        for reader in self._readers:
            reader.start()
        try:
            first = self.wait_for("listening on")
        except BaseException:
            self.kill()
            raise
        self.port = int(first.split()[2].rsplit(":", 1)[1])  # "listening on HOST:PORT ..."

    def _collect(self, stream: object, sink: list[str]) -> None:
        for line in stream:  # type: ignore[attr-defined]
            with self._changed:
                sink.append(line.rstrip("\n"))
                self._changed.notify_all()
        with self._changed:
            self._changed.notify_all()

    def wait_for(self, text: str, *, stderr: bool = False, count: int = 1) -> str:
        """Wait until ``count`` lines containing ``text`` were printed; return the last one."""
        sink = self.err_lines if stderr else self.lines
        deadline = time.monotonic() + TIMEOUT
        with self._changed:
            while True:
                found = [line for line in sink if text in line]
                if len(found) >= count:
                    return found[count - 1]
                if self.proc.poll() is not None and not self._changed.wait(0.2):
                    raise AssertionError(
                        f"server exited before printing {text!r}: {self.lines} {self.err_lines}"
                    )
                if time.monotonic() > deadline:
                    raise AssertionError(f"timed out waiting for {text!r}: {self.lines}")
                self._changed.wait(0.1)

    def stop(self, signum: int = signal.SIGINT) -> int:
        """Send ``signum`` and wait for the exit code."""
        if self.proc.poll() is None:
            self.proc.send_signal(signum)
        code = self.proc.wait(timeout=TIMEOUT)
        self._close_pipes()
        return code

    def kill(self) -> None:
        """Kill it if it still runs, and release its pipes (call in a ``finally``)."""
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=TIMEOUT)
        self._close_pipes()

    def _close_pipes(self) -> None:
        for reader in self._readers:
            reader.join(TIMEOUT)
        for pipe in (self.proc.stdout, self.proc.stderr):
            if pipe is not None:
                pipe.close()


def run_cli(*args: str, timeout: float = TIMEOUT) -> subprocess.CompletedProcess[str]:
    """`trio-tcp ARGS`, run to completion."""
    return subprocess.run([*CLI, *args], capture_output=True, text=True, timeout=timeout)


def cli_args(*parts: str | Sequence[str]) -> list[str]:
    """Flatten arguments for the helpers above."""
    out: list[str] = []
    for part in parts:
        out.extend([part] if isinstance(part, str) else part)
    return out
