"""`trio-tcp serve` as an operator meets it: shutdown, blocked output, floods, hard stop.

Subprocesses over real loopback sockets; every wait is bounded (``trio.fail_after`` in the
Trio tests, ``timeout=`` on the process calls).
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import threading
from collections.abc import Sequence

import pytest
import trio
from _cli_process import CLI, ServeProcess

from trio_tcp import Connection, open_connection

TIMEOUT = 60


class BlockedServe:
    """`trio-tcp serve ARGS` whose stdout (or stderr) is a pipe we stop reading.

    We read the first stdout line (``listening on ...``) to learn the port; after that the
    undrained pipe fills (64 KiB) and stays full. The other stream is collected by a thread.
    """

    def __init__(self, args: Sequence[str], *, block: str) -> None:
        self.proc = subprocess.Popen(
            [*CLI, "serve", *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE
        )
        assert self.proc.stdout is not None and self.proc.stderr is not None
        first = self.proc.stdout.readline().decode()
        assert first.startswith("listening on"), first
        self.port = int(first.split()[2].rsplit(":", 1)[1])
        self.collected = bytearray()
        drained = self.proc.stderr if block == "stdout" else self.proc.stdout
        self._reader = threading.Thread(target=self._collect, args=(drained,), daemon=True)
        self._reader.start()

    def _collect(self, pipe: object) -> None:
        while chunk := os.read(pipe.fileno(), 65536):  # type: ignore[attr-defined]
            self.collected += chunk

    def terminate_and_wait(self) -> int:
        self.proc.send_signal(signal.SIGTERM)
        code = self.proc.wait(timeout=TIMEOUT)
        self._reader.join(TIMEOUT)
        return code

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=TIMEOUT)
        for pipe in (self.proc.stdout, self.proc.stderr):
            if pipe is not None:
                pipe.close()


async def _read_until_eof(conn: Connection) -> bytes:
    received = bytearray()
    while chunk := await conn.receive_some():
        received += chunk
    return bytes(received)


async def test_undrained_stdout_does_not_freeze_the_server() -> None:
    """stdout never read: other clients are still timed out, SIGTERM stops within grace."""
    server = await trio.to_thread.run_sync(
        lambda: BlockedServe(
            ["--port", "0", "--mode", "lines", "--idle-timeout", "1", "--grace-period", "2"],
            block="stdout",
        )
    )
    try:
        with trio.fail_after(TIMEOUT):
            # A flood of printed lines: 1 MiB, far more than the 64 KiB pipe holds.
            flooder = await open_connection("127.0.0.1", server.port)
            noise = (b"x" * 127 + b"\n") * 512
            with trio.move_on_after(3):  # its sends stall once its output waits: fine
                for _ in range(16):
                    await flooder.send_all(noise)
            # Another client is still served: its idle timeout fires and closes it.
            async with await open_connection("127.0.0.1", server.port) as quiet:
                start = trio.current_time()
                assert await _read_until_eof(quiet) == b""
                assert trio.current_time() - start < 5
            await flooder.aclose()
            start = trio.current_time()
            code = await trio.to_thread.run_sync(server.terminate_and_wait)
            assert code == 0
            assert trio.current_time() - start < 2 + 1 + 3  # grace + linger + slack
        err = server.collected.decode()
        assert "SIGTERM: shutting down" in err
        assert "output not written (nobody was reading it):" in err
        assert "of stdout" in err
    finally:
        await trio.to_thread.run_sync(server.kill)


async def test_undrained_stderr_with_a_flood_of_log_lines() -> None:
    """stderr never read under -vv: echo clients served, idle timeout fires, SIGTERM exits."""
    server = await trio.to_thread.run_sync(
        lambda: BlockedServe(
            [
                "--port",
                "0",
                "--mode",
                "echo-lines",
                "--max-line-length",
                "10",
                "-vv",
                "--idle-timeout",
                "1",
                "--grace-period",
                "2",
            ],
            block="stderr",
        )
    )
    try:
        with trio.fail_after(TIMEOUT):
            # Each connection logs opened/closed (debug) and a protocol error (throttled):
            # ~1,500 x 150 bytes is well past the 64 KiB the stderr pipe holds.
            for _ in range(1500):
                async with await open_connection("127.0.0.1", server.port) as bad:
                    await bad.send_all(b"far too long a line\n")
            async with await open_connection("127.0.0.1", server.port) as good:
                await good.send_all(b"hi\n")
                assert await good.receive_line() == b"hi"
                start = trio.current_time()
                assert await _read_until_eof(good) == b""  # the idle timeout
                assert trio.current_time() - start < 5
            start = trio.current_time()
            assert await trio.to_thread.run_sync(server.terminate_and_wait) == 0
            assert trio.current_time() - start < 2 + 1 + 3
    finally:
        await trio.to_thread.run_sync(server.kill)


async def test_sigint_during_a_16_mib_echo_loses_nothing() -> None:
    """SIGINT after 256 KiB came back: the whole 16 MiB still comes back; exit 0."""
    proc = await trio.to_thread.run_sync(
        lambda: ServeProcess("--port", "0", "--mode", "echo", "--grace-period", "30")
    )
    try:
        payload = random.Random(16).randbytes(16 * 1024 * 1024)
        received = bytearray()
        signalled = False
        with trio.fail_after(TIMEOUT):
            async with await open_connection("127.0.0.1", proc.port) as conn:

                async def send() -> None:
                    view = memoryview(payload)
                    for start in range(0, len(payload), 65536):
                        await conn.send_all(view[start : start + 65536])
                    await conn.send_eof()

                async with trio.open_nursery() as nursery:
                    nursery.start_soon(send)
                    while chunk := await conn.receive_some():
                        received += chunk
                        if not signalled and len(received) >= 256 * 1024:
                            proc.proc.send_signal(signal.SIGINT)
                            signalled = True
            code = await trio.to_thread.run_sync(lambda: proc.proc.wait(TIMEOUT))
        assert signalled
        assert bytes(received) == payload
        assert code == 0
    finally:
        await trio.to_thread.run_sync(proc.kill)


async def test_sigint_during_100_echo_clients_all_complete() -> None:
    """100 concurrent mid-transfer echo clients, SIGINT: 100 of 100 get every byte back."""
    proc = await trio.to_thread.run_sync(
        lambda: ServeProcess("--port", "0", "--mode", "echo", "--grace-period", "30")
    )
    size, clients = 256 * 1024, 100
    complete = 0
    started = 0
    all_started = trio.Event()
    try:
        with trio.fail_after(TIMEOUT):

            async def client(seed: int) -> None:
                nonlocal complete, started
                payload = random.Random(seed).randbytes(size)
                received = bytearray()
                async with await open_connection("127.0.0.1", proc.port) as conn:

                    async def send() -> None:
                        for start in range(0, size, 16384):
                            if start == size // 2:
                                await all_started.wait()  # hold half way: mid-transfer
                            await conn.send_all(payload[start : start + 16384])
                        await conn.send_eof()

                    async with trio.open_nursery() as nursery:
                        nursery.start_soon(send)
                        while chunk := await conn.receive_some():
                            received += chunk
                            if len(received) == size // 2:
                                started += 1
                                if started == clients:
                                    proc.proc.send_signal(signal.SIGINT)
                                    all_started.set()
                if bytes(received) == payload:
                    complete += 1

            async with trio.open_nursery() as nursery:
                for seed in range(clients):
                    nursery.start_soon(client, seed)
            code = await trio.to_thread.run_sync(lambda: proc.proc.wait(TIMEOUT))
        assert (complete, code) == (clients, 0)
        proc.wait_for("SIGINT: shutting down", stderr=True)
    finally:
        await trio.to_thread.run_sync(proc.kill)


async def test_second_signal_is_a_hard_stop_that_reports_the_cut() -> None:
    """SIGINT twice with two idle clients: 'hard stop: cut 2 connections', exit 1."""
    proc = await trio.to_thread.run_sync(
        lambda: ServeProcess("--port", "0", "--mode", "echo", "--grace-period", "30")
    )
    try:
        with trio.fail_after(TIMEOUT):
            a = await open_connection("127.0.0.1", proc.port)
            b = await open_connection("127.0.0.1", proc.port)
            for conn in (a, b):  # both registered by the server
                await conn.send_all(b"x")
                assert await conn.receive_exactly(1) == b"x"
            proc.proc.send_signal(signal.SIGINT)
            await trio.to_thread.run_sync(
                lambda: proc.wait_for("SIGINT: shutting down", stderr=True)
            )
            proc.proc.send_signal(signal.SIGINT)
            code = await trio.to_thread.run_sync(lambda: proc.proc.wait(TIMEOUT))
            await trio.to_thread.run_sync(lambda: proc.wait_for("hard stop", stderr=True))
            await a.aclose()
            await b.aclose()
        assert code == 1
        assert "trio-tcp: hard stop: cut 2 connections" in proc.err_lines
    finally:
        await trio.to_thread.run_sync(proc.kill)


async def test_refusal_churn_writes_a_bounded_number_of_lines() -> None:
    """150 admit/drop cycles at --max-connections 2 log a handful of lines, not 151."""
    proc = await trio.to_thread.run_sync(
        lambda: ServeProcess("--port", "0", "--mode", "echo", "--max-connections", "2")
    )
    try:
        with trio.fail_after(TIMEOUT):
            held = await open_connection("127.0.0.1", proc.port)
            await held.send_all(b"h")
            assert await held.receive_exactly(1) == b"h"
            dropped = 0
            for _ in range(150):  # each cycle: two more peers, at most one admitted
                pair = [await open_connection("127.0.0.1", proc.port) for _ in range(2)]
                for conn in pair:
                    try:
                        await conn.send_all(b"a")
                        await conn.send_eof()
                        if await _read_until_eof(conn) == b"":
                            dropped += 1
                    except trio.BrokenResourceError:
                        dropped += 1
                    await conn.aclose()
            await held.aclose()
        assert await trio.to_thread.run_sync(proc.stop) == 0
        warnings = [line for line in proc.err_lines if "WARNING" in line]
        assert warnings[0].endswith("dropping new connections until one closes")
        assert 1 <= len(warnings) <= 3, warnings  # first + a summary per 10 s + at close
        assert dropped >= 100  # most cycles (an accept may come after the first closed)
        assert any(f"{dropped - 1} more" in line for line in warnings), warnings
    finally:
        await trio.to_thread.run_sync(proc.kill)


async def test_lines_mode_escapes_control_bytes() -> None:
    """ESC, BEL, CR, VT, FF, DEL and bad UTF-8 print escaped: one printed line per line."""
    proc = await trio.to_thread.run_sync(lambda: ServeProcess("--port", "0", "--mode", "lines"))
    try:
        with trio.fail_after(TIMEOUT):
            async with await open_connection("127.0.0.1", proc.port) as conn:
                await conn.send_all(b"\x1b[2J\x1b]0;pwned\x07clear\n")
                await conn.send_all(b"x\r#7 forged\x0b\x0c\x7f\xc3\n")
                await conn.send_all(b"tab\there \\ ok \xe2\x80\xae\n")
            await trio.to_thread.run_sync(lambda: proc.wait_for("closed ("))
        tag = proc.lines[1].split()[0]
        printed = [line for line in proc.lines if line.startswith(tag + " ")]
        assert printed[1:4] == [
            f"{tag} \\x1b[2J\\x1b]0;pwned\\x07clear",
            f"{tag} x\\r#7 forged\\x0b\\x0c\\x7f\\xc3",
            f"{tag} tab\\there \\\\ ok \\u202e",
        ]
    finally:
        await trio.to_thread.run_sync(proc.kill)


async def test_epipe_on_stdout_stops_the_server_quietly() -> None:
    """`trio-tcp serve | head -1`: the next printed line meets EPIPE; exit 0, no traceback."""
    server = await trio.to_thread.run_sync(lambda: BlockedServe(["--port", "0"], block="stdout"))
    try:
        assert server.proc.stdout is not None
        server.proc.stdout.close()  # head -1 exits
        with trio.fail_after(TIMEOUT):
            async with await open_connection("127.0.0.1", server.port) as conn:
                await conn.send_all(b"\x0c\x22")
                assert await _read_until_eof(conn) == b""  # served, then closed at shutdown
            code = await trio.to_thread.run_sync(lambda: server.proc.wait(TIMEOUT))
            await trio.to_thread.run_sync(lambda: server._reader.join(TIMEOUT))
        assert code == 0
        assert b"Traceback" not in server.collected and b"Error" not in server.collected
    finally:
        await trio.to_thread.run_sync(server.kill)


@pytest.mark.skipif(not os.path.exists("/dev/full"), reason="needs /dev/full")
def test_stdout_on_a_full_disk_is_an_error_not_a_quiet_stop() -> None:
    """`serve > serve.log` on a full disk: unlike EPIPE, one line naming it and exit 1."""
    with open("/dev/full", "wb") as full:
        result = subprocess.run(
            [*CLI, "serve", "--port", "0"],
            stdout=full,
            stderr=subprocess.PIPE,
            timeout=TIMEOUT,
        )
    assert result.returncode == 1
    assert result.stderr == b"trio-tcp: error: cannot write to stdout: No space left on device\n"


async def test_grace_deadline_cut_is_reported_and_the_peer_gets_eof() -> None:
    """An idle echo client past --grace-period 1: EOF (not a reset), one line, exit 0."""
    proc = await trio.to_thread.run_sync(
        lambda: ServeProcess("--port", "0", "--mode", "echo", "--grace-period", "1")
    )
    try:
        with trio.fail_after(TIMEOUT):
            async with await open_connection("127.0.0.1", proc.port) as idle:
                await idle.send_all(b"x")
                assert await idle.receive_exactly(1) == b"x"
                start = trio.current_time()
                proc.proc.send_signal(signal.SIGTERM)
                assert await _read_until_eof(idle) == b""  # EOF at the deadline, no reset
                assert 0.9 <= trio.current_time() - start < 5
            code = await trio.to_thread.run_sync(lambda: proc.proc.wait(TIMEOUT))
            await trio.to_thread.run_sync(lambda: proc.wait_for("stopped: cut", stderr=True))
        assert code == 0
        assert "trio-tcp: WARNING: stopped: cut 1 connection that was still open" in proc.err_lines
    finally:
        await trio.to_thread.run_sync(proc.kill)
