"""serve(): the accept loop, per-connection tasks, errors, limits, shutdown, Unix sockets."""

from __future__ import annotations

import errno
import logging
import os
import random
import socket
import struct
from functools import partial
from pathlib import Path
from typing import Any

import pytest
import trio
import trio.testing
from _waiting import HandlerLog, log_waiter

import trio_tcp
from trio_tcp import Connection, Server
from trio_tcp._server import LINGER_TIMEOUT

GUARD = 20  # seconds: a hang becomes a failure, not a stuck CI


async def echo(conn: Connection) -> None:
    async for chunk in conn:
        await conn.send_all(chunk)


async def read_all(conn: Connection) -> bytes:
    data = bytearray()
    async for chunk in conn:
        data += chunk
    return bytes(data)


async def test_started_reports_a_server_that_accepts() -> None:
    """nursery.start returns once the server accepts: a client can connect at once."""
    with trio.fail_after(GUARD):
        async with trio.open_nursery() as nursery:
            server: Server = await nursery.start(trio_tcp.serve, echo, 0)
            assert server.port and server.port > 0
            assert server.addresses == [("127.0.0.1", server.port)]
            async with await trio_tcp.open_connection("127.0.0.1", server.port) as conn:
                await conn.send_all(b"ping")
                assert await conn.receive_exactly(4) == b"ping"
            await server.aclose()


async def test_two_hundred_concurrent_echo_clients_get_every_byte_back() -> None:
    """200 clients at once, each with its own random payload, get exactly it back."""
    rng = random.Random(1234)
    payloads = [rng.randbytes(rng.randrange(1, 20_000)) for _ in range(200)]
    results: dict[int, bytes] = {}

    async def client(port: int, index: int) -> None:
        async with await trio_tcp.open_connection("127.0.0.1", port) as conn:

            async def sender() -> None:
                data = payloads[index]
                for start in range(0, len(data), 4096):
                    await conn.send_all(data[start : start + 4096])
                await conn.send_eof()

            async with trio.open_nursery() as inner:
                inner.start_soon(sender)
                results[index] = await read_all(conn)

    with trio.fail_after(GUARD):
        async with trio.open_nursery() as nursery:
            server: Server = await nursery.start(trio_tcp.serve, echo, 0)
            async with trio.open_nursery() as clients:
                for index in range(len(payloads)):
                    clients.start_soon(client, server.port or 0, index)
            assert results == dict(enumerate(payloads))
            stats = server.stats
            assert stats.accepted == 200
            assert stats.failed == 0
            assert stats.bytes_received == stats.bytes_sent == sum(map(len, payloads))
            await server.aclose()


async def test_crashing_handler_is_logged_and_neighbours_keep_going(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A handler that raises closes only its connection; the error is logged with traceback."""

    async def handler(conn: Connection) -> None:
        data = await conn.receive_exactly(4)
        if data == b"boom":
            raise ValueError("handler bug")
        await conn.send_all(data.upper())

    caplog.set_level(logging.ERROR, logger="trio_tcp")
    with trio.fail_after(GUARD):
        async with trio.open_nursery() as nursery:
            server: Server = await nursery.start(trio_tcp.serve, handler, 0)
            async with await trio_tcp.open_connection(port=server.port or 0) as calm:
                async with await trio_tcp.open_connection(port=server.port or 0) as bad:
                    await bad.send_all(b"boom")
                    assert await bad.receive_some() == b""  # closed by the server
                await calm.send_all(b"calm")
                assert await calm.receive_exactly(4) == b"CALM"
            assert server.stats.failed == 1
            await server.aclose()
    [record] = [r for r in caplog.records if r.name == "trio_tcp"]
    assert record.levelno == logging.ERROR
    assert record.exc_info is not None and isinstance(record.exc_info[1], ValueError)


async def test_handler_errors_raise_propagates() -> None:
    """With handler_errors='raise' the exception stops serve (the mode for tests)."""

    async def handler(conn: Connection) -> None:
        raise KeyError("propagate me")

    with trio.fail_after(GUARD), pytest.RaisesGroup(KeyError, flatten_subgroups=True):
        async with trio.open_nursery() as nursery:
            server: Server = await nursery.start(
                lambda task_status: trio_tcp.serve(
                    handler, 0, handler_errors="raise", task_status=task_status
                )
            )
            async with await trio_tcp.open_connection(port=server.port or 0):
                await trio.sleep_forever()


async def test_graceful_shutdown_lets_in_flight_handlers_finish(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """aclose stops accepting, lets a handler finish inside the grace period, and returns."""
    finished = trio.Event()

    async def slow(conn: Connection) -> None:
        await conn.receive_exactly(1)
        await trio.sleep(3)  # work that takes 3 s, inside the 5 s grace period
        await conn.send_all(b"done")
        finished.set()

    with trio.fail_after(GUARD):
        async with trio.open_nursery() as nursery:
            server: Server = await nursery.start(trio_tcp.serve, slow, 0)
            port = server.port or 0
            conn = await trio_tcp.open_connection(port=port)
            await conn.send_all(b"x")
            await trio.testing.wait_all_tasks_blocked()
            start = trio.current_time()
            await server.aclose()
            assert finished.is_set()
            assert 2.9 <= trio.current_time() - start <= 3.5
            assert await conn.receive_exactly(4) == b"done"
            await conn.aclose()
            with pytest.raises(OSError):
                await trio_tcp.open_connection(port=port)
            await server.aclose()  # twice is harmless


async def test_graceful_shutdown_cancels_stragglers_at_the_deadline(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """A handler still running when the grace period ends is cancelled; sockets close."""
    cancelled = trio.Event()

    async def stubborn(conn: Connection) -> None:
        try:
            await trio.sleep_forever()
        finally:
            cancelled.set()

    with trio.fail_after(GUARD):
        async with trio.open_nursery() as nursery:
            server: Server = await nursery.start(
                lambda task_status: trio_tcp.serve(
                    stubborn, 0, grace_period=2.0, task_status=task_status
                )
            )
            async with await trio_tcp.open_connection(port=server.port or 0) as conn:
                await trio.testing.wait_all_tasks_blocked()
                start = trio.current_time()
                assert server.stats.active == 1
                await server.aclose()
                assert cancelled.is_set()
                # The grace period, then the lingering close waits for this peer's EOF,
                # which it never sends: bounded by LINGER_TIMEOUT.
                took = trio.current_time() - start
                assert took == pytest.approx(2.0 + LINGER_TIMEOUT, abs=0.1)
                assert await conn.receive_some() == b""
                assert server.stats.active == 0
                assert server.stats.cut == 1


async def test_serve_returns_after_aclose() -> None:
    """Once aclose completes, the task that ran serve has returned."""
    returned = trio.Event()

    async def run(task_status: trio.TaskStatus[Server]) -> None:
        await trio_tcp.serve(echo, 0, task_status=task_status)
        returned.set()

    with trio.fail_after(GUARD):
        async with trio.open_nursery() as nursery:
            server: Server = await nursery.start(run)
            await server.aclose()
            await trio.testing.wait_all_tasks_blocked()
            assert returned.is_set()


async def test_closing_is_shared_with_connections() -> None:
    """conn.is_closing turns True and wait_closing() returns when graceful shutdown begins."""

    async def polite(conn: Connection) -> None:
        assert not conn.is_closing
        await conn.wait_closing()
        assert conn.is_closing
        await conn.send_all(b"bye")

    with trio.fail_after(GUARD):
        async with trio.open_nursery() as nursery:
            server: Server = await nursery.start(trio_tcp.serve, polite, 0)
            async with await trio_tcp.open_connection(port=server.port or 0) as conn:
                await trio.testing.wait_all_tasks_blocked()
                server.close()
                assert await read_all(conn) == b"bye"
            await server.wait_closed()


async def test_max_connections_drops_extra_and_logs_once(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Over max_connections a connection is accepted and closed at once, logged once."""
    caplog.set_level(logging.INFO, logger="trio_tcp")
    handlers = HandlerLog(echo)
    with trio.fail_after(GUARD):
        async with trio.open_nursery() as nursery:
            server: Server = await nursery.start(
                lambda task_status: trio_tcp.serve(
                    handlers, 0, max_connections=2, task_status=task_status
                )
            )
            port = server.port or 0
            first = await trio_tcp.open_connection(port=port)
            second = await trio_tcp.open_connection(port=port)
            for conn in (first, second):  # make sure both are being handled
                await conn.send_all(b"hi")
                assert await conn.receive_exactly(2) == b"hi"
            for _ in range(5):
                extra = await trio_tcp.open_connection(port=port)
                assert await extra.receive_some() == b""
                await extra.aclose()
            assert server.stats.dropped == 5
            warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
            assert len(warnings) == 1 and "max_connections=2" in warnings[0].getMessage()
            await first.aclose()
            await handlers.wait_ended(1)
            assert server.stats.active == 1
            third = await trio_tcp.open_connection(port=port)
            await third.send_all(b"ok")
            assert await third.receive_exactly(2) == b"ok"
            await third.aclose()
            await second.aclose()
            await server.aclose()


async def test_idle_timeout_closes_silent_connections_only(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """A silent connection is closed between idle_timeout and 1.25x; a chatty one lives."""
    with trio.fail_after(100):  # virtual seconds: the test talks for 30
        async with trio.open_nursery() as nursery:
            server: Server = await nursery.start(
                lambda task_status: trio_tcp.serve(
                    echo, 0, idle_timeout=10.0, task_status=task_status
                )
            )
            port = server.port or 0
            silent = await trio_tcp.open_connection(port=port)
            chatty = await trio_tcp.open_connection(port=port)
            start = trio.current_time()

            async def chat() -> None:
                for _ in range(10):  # 30 s of talking, every 3 s
                    await trio.sleep(3)
                    await chatty.send_all(b".")
                    assert await chatty.receive_exactly(1) == b"."

            async with trio.open_nursery() as inner:
                inner.start_soon(chat)
                assert await silent.receive_some() == b""
                closed_after = trio.current_time() - start
            assert 10.0 <= closed_after <= 12.5
            assert server.stats.timed_out == 1
            await chatty.send_all(b"!")
            assert await chatty.receive_exactly(1) == b"!"
            await silent.aclose()
            await chatty.aclose()
            await server.aclose()


async def test_peer_reset_only_affects_its_connection() -> None:
    """A client that resets (RST) is counted as reset; other clients keep being served."""
    started = trio.Event()

    async def handler(conn: Connection) -> None:
        started.set()
        async for chunk in conn:
            await trio.sleep(0.05)
            await conn.send_all(chunk)

    handlers = HandlerLog(handler)
    with trio.fail_after(GUARD):
        async with trio.open_nursery() as nursery:
            server: Server = await nursery.start(trio_tcp.serve, handlers, 0)
            port = server.port or 0
            raw = socket.create_connection(("127.0.0.1", port))
            raw.sendall(b"x" * 1000)
            await started.wait()
            # SO_LINGER with a zero timeout: close() sends RST instead of FIN.
            raw.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            raw.close()
            async with await trio_tcp.open_connection(port=port) as other:
                await other.send_all(b"still here")
                assert await other.receive_exactly(10) == b"still here"
            await handlers.wait_ended(2)
            assert server.stats.active == 0
            assert server.stats.failed == 0
            assert server.stats.reset == 1
            await server.aclose()


async def test_a_reset_is_logged_with_the_peers_address(caplog: pytest.LogCaptureFixture) -> None:
    """The peer's address comes from accept(), so the line about its reset still names it
    (asking the socket after the reset fails)."""
    caplog.set_level(logging.INFO, logger="trio_tcp")

    async def handler(conn: Connection) -> None:
        async for chunk in conn:  # conn.peer is never asked before the reset
            await trio.sleep(0.05)
            await conn.send_all(chunk)

    handlers = HandlerLog(handler)
    with trio.fail_after(GUARD):
        async with trio.open_nursery() as nursery:
            server: Server = await nursery.start(trio_tcp.serve, handlers, 0)
            raw = socket.create_connection(("127.0.0.1", server.port or 0))
            local_port = raw.getsockname()[1]
            raw.sendall(b"x" * 1000)
            await trio.sleep(0.01)
            raw.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            raw.close()
            await handlers.wait_ended(1)
            assert server.stats.reset == 1
            await server.aclose()
    broken = [r.getMessage() for r in caplog.records if "broke the connection" in r.getMessage()]
    assert len(broken) == 1 and f"127.0.0.1:{local_port}>" in broken[0], broken


async def test_end_of_stream_leaving_a_handler_is_a_clean_close(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """`while True: await conn.receive_line()` ends when the peer closes: no failure, no
    traceback; a peer that closes mid-line is still a protocol error."""
    caplog.set_level(logging.DEBUG, logger="trio_tcp")

    async def handler(conn: Connection) -> None:
        while True:
            await conn.send_all(await conn.receive_line() + b"\n")

    handlers = HandlerLog(handler)
    with trio.fail_after(GUARD):
        async with trio.open_nursery() as nursery:
            server: Server = await nursery.start(trio_tcp.serve, handlers, 0)
            async with await server.connect() as conn:
                await conn.send_all(b"one\n")
                assert await conn.receive_line() == b"one"
            async with await server.connect() as conn:
                await conn.send_all(b"half a li")
            await handlers.wait_ended(2)
            stats = server.stats
            assert (stats.failed, stats.protocol_errors) == (0, 1)
            await server.aclose()
    assert not [r for r in caplog.records if r.exc_info], "no traceback"


async def test_stream_handler_adapts_for_plain_trio() -> None:
    """A trio_tcp handler runs under plain trio.serve_tcp through stream_handler."""
    with trio.fail_after(GUARD):
        async with trio.open_nursery() as nursery:
            listeners = await nursery.start(
                partial(trio.serve_tcp, trio_tcp.stream_handler(echo), 0, host="127.0.0.1")
            )
            port = listeners[0].socket.getsockname()[1]
            async with await trio_tcp.open_connection(port=port) as conn:
                await conn.send_all(b"adapted")
                assert await conn.receive_exactly(7) == b"adapted"
            nursery.cancel_scope.cancel()


class FlakyListener(trio.abc.Listener[trio.abc.Stream]):
    """Fails accept() with EMFILE a few times, then hands out memory streams."""

    def __init__(self, failures: int) -> None:
        self.failures = failures
        self.pending: list[trio.abc.Stream] = []
        self.ready = trio.Event()
        self.closed = False

    async def accept(self) -> trio.abc.Stream:
        await trio.lowlevel.checkpoint()
        if self.failures:
            self.failures -= 1
            raise OSError(errno.EMFILE, os.strerror(errno.EMFILE))
        while not self.pending:
            await self.ready.wait()
            self.ready = trio.Event()
        return self.pending.pop()

    async def connect(self) -> trio.abc.Stream:
        client, server = trio.testing.memory_stream_pair()
        self.pending.append(server)
        self.ready.set()
        await trio.lowlevel.checkpoint()
        return client

    async def aclose(self) -> None:
        self.closed = True
        await trio.lowlevel.checkpoint()


async def test_accept_emfile_backs_off_and_retries(
    autojump_clock: trio.testing.MockClock, caplog: pytest.LogCaptureFixture
) -> None:
    """EMFILE from accept() is logged (once, then a count) and retried; serving resumes."""
    listener = FlakyListener(failures=3)
    with trio.fail_after(GUARD):
        async with trio.open_nursery() as nursery:
            server: Server = await nursery.start(trio_tcp.serve_listeners, echo, [listener])
            conn = await server.connect()
            await conn.send_all(b"after emfile")
            assert await conn.receive_exactly(12) == b"after emfile"
            await conn.aclose()
            await server.aclose()
    assert listener.closed
    emfile = [r.getMessage() for r in caplog.records if "EMFILE" in r.getMessage()]
    assert emfile[0].startswith("accept() failed with EMFILE")
    [summary] = emfile[1:]  # the other two failures: one summary line, at the latest at close
    assert summary.startswith("accept() failed: 2 more in the last ")
    assert summary.endswith(
        " s (last: accept() failed with EMFILE (Too many open files); retrying in 0.04 s)"
    )


async def test_unix_socket_serves_and_removes_its_file(tmp_path: Path) -> None:
    """serve(unix_path=...) listens on a Unix socket and removes the file at close."""
    path = tmp_path / "echo.sock"
    with trio.fail_after(GUARD):
        async with trio.open_nursery() as nursery:
            server: Server = await nursery.start(
                lambda task_status: trio_tcp.serve(echo, unix_path=path, task_status=task_status)
            )
            assert server.addresses == [str(path)]
            assert server.port is None
            async with await trio_tcp.open_unix_connection(path) as conn:
                await conn.send_all(b"ipc")
                assert await conn.receive_exactly(3) == b"ipc"
            async with await server.connect() as conn:
                await conn.send_all(b"again")
                assert await conn.receive_exactly(5) == b"again"
            await server.aclose()
    assert not path.exists()


async def test_unix_socket_replaces_a_stale_socket(tmp_path: Path) -> None:
    """A socket file left by a dead server is replaced."""
    path = tmp_path / "stale.sock"
    dead = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    dead.bind(str(path))
    dead.close()  # the file stays, nobody listens
    assert path.exists()
    with trio.fail_after(GUARD):
        async with trio.open_nursery() as nursery:
            server: Server = await nursery.start(
                lambda task_status: trio_tcp.serve(echo, unix_path=path, task_status=task_status)
            )
            async with await trio_tcp.open_unix_connection(path) as conn:
                await conn.send_all(b"fresh")
                assert await conn.receive_exactly(5) == b"fresh"
            await server.aclose()


async def test_unix_socket_never_clobbers_a_regular_file(tmp_path: Path) -> None:
    """An existing file that is not a socket is left alone: FileExistsError."""
    path = tmp_path / "precious.txt"
    path.write_text("keep me")
    with trio.fail_after(GUARD), pytest.raises(FileExistsError, match="not a socket"):
        await trio_tcp.serve(echo, unix_path=path)
    assert path.read_text() == "keep me"


async def test_unix_socket_in_use_is_refused(tmp_path: Path) -> None:
    """A Unix path a live server listens on raises EADDRINUSE and keeps that server."""
    path = tmp_path / "live.sock"
    with trio.fail_after(GUARD):
        async with trio.open_nursery() as nursery:
            server: Server = await nursery.start(
                lambda task_status: trio_tcp.serve(echo, unix_path=path, task_status=task_status)
            )
            with pytest.raises(OSError) as info:
                await trio_tcp.serve(echo, unix_path=path)
            assert info.value.errno == errno.EADDRINUSE
            async with await trio_tcp.open_unix_connection(path) as conn:
                await conn.send_all(b"mine")
                assert await conn.receive_exactly(4) == b"mine"
            await server.aclose()


async def test_tcp_address_in_use() -> None:
    """Binding a port that is taken raises OSError(EADDRINUSE)."""
    with trio.fail_after(GUARD):
        async with trio.open_nursery() as nursery:
            server: Server = await nursery.start(trio_tcp.serve, echo, 0)
            with pytest.raises(OSError) as info:
                await trio_tcp.serve(echo, server.port or 0)
            assert info.value.errno == errno.EADDRINUSE
            await server.aclose()


def _has_ipv6_loopback() -> bool:
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_STREAM) as probe:
            probe.bind(("::1", 0))
        return True
    except OSError:
        return False


@pytest.mark.skipif(not _has_ipv6_loopback(), reason="no IPv6 loopback here")
async def test_port_zero_gives_one_port_for_every_family() -> None:
    """Port 0 on two families binds the same free port on both."""
    with trio.fail_after(GUARD):
        async with trio.open_nursery() as nursery:
            server: Server = await nursery.start(
                lambda task_status: trio_tcp.serve(
                    echo, 0, host=["127.0.0.1", "::1"], task_status=task_status
                )
            )
            ports = {address[1] for address in server.addresses if isinstance(address, tuple)}
            assert len(server.addresses) == 2 and ports == {server.port}
            for host in ("127.0.0.1", "::1"):
                async with await trio_tcp.open_connection(host, server.port or 0) as conn:
                    await conn.send_all(host.encode())
                    assert await conn.receive_exactly(len(host)) == host.encode()
            await server.aclose()


async def test_connections_and_stats_track_live_connections() -> None:
    """server.connections lists live Connections with their peers; stats count bytes."""
    echoed = trio.Event()

    async def echo_and_tell(conn: Connection) -> None:
        async for chunk in conn:
            await conn.send_all(chunk)  # counted in bytes_sent once it has returned
            echoed.set()

    handlers = HandlerLog(echo_and_tell)
    with trio.fail_after(GUARD):
        async with trio.open_nursery() as nursery:
            server: Server = await nursery.start(trio_tcp.serve, handlers, 0)
            async with await trio_tcp.open_connection(port=server.port or 0) as conn:
                await conn.send_all(b"12345")
                assert await conn.receive_exactly(5) == b"12345"
                [live] = server.connections
                await echoed.wait()
                assert live.peer == conn.local
                assert live.local == conn.peer == ("127.0.0.1", server.port)
                assert live.bytes_received == live.bytes_sent == 5
                assert server.stats.active == 1
            await handlers.wait_ended(1)
            stats = server.stats
            assert (stats.accepted, stats.bytes_received, stats.bytes_sent) == (1, 5, 5)
            await server.aclose()


@pytest.mark.parametrize(
    "options",
    [{"max_connections": 0}, {"idle_timeout": 0}, {"grace_period": -1}, {"handler_errors": "x"}],
)
async def test_bad_options_are_value_errors(options: dict[str, Any]) -> None:
    """An out-of-range option raises ValueError and leaves no socket open."""
    with trio.fail_after(GUARD), pytest.raises(ValueError):
        await trio_tcp.serve(echo, 0, **options)


# --------------------------------------------------------------------- on every transport
# The same behaviours through trio_tcp.testing's `transport_server` fixture: each test runs
# over memory, lockstep, loopback TCP and a Unix socket, one code path (serve_listeners).


async def test_echo_on_every_transport(transport_server: Any) -> None:
    """Bytes come back exactly, whatever carries them."""
    server = await transport_server(echo)
    payload = bytes(range(256)) * 64
    with trio.fail_after(GUARD):
        async with await server.connect() as conn, trio.open_nursery() as nursery:

            async def send() -> None:
                await conn.send_all(payload)
                await conn.send_eof()

            nursery.start_soon(send)
            assert await read_all(conn) == payload


async def test_crash_isolated_on_every_transport(transport_server: Any) -> None:
    """A crashing handler closes only its connection, on every transport."""

    async def handler(conn: Connection) -> None:
        if await conn.receive_exactly(1) == b"!":
            raise RuntimeError("boom")
        await echo(conn)

    server = await transport_server(handler, allow_handler_errors=True)
    with trio.fail_after(GUARD):
        async with await server.connect() as good, await server.connect() as bad:
            await bad.send_all(b"!")
            assert await bad.receive_some() == b""
            await good.send_all(b".ok")
            assert await good.receive_exactly(2) == b"ok"
        assert server.stats.failed == 1


async def test_graceful_shutdown_on_every_transport(transport_server: Any) -> None:
    """close() lets a handler waiting in conn.wait_closing() say goodbye, on every transport."""

    async def polite(conn: Connection) -> None:
        await conn.wait_closing()
        await conn.send_all(b"bye")

    server = await transport_server(polite)
    with trio.fail_after(GUARD):
        async with await server.connect() as conn:
            await trio.testing.wait_all_tasks_blocked()
            server.close()
            assert await read_all(conn) == b"bye"
        await server.wait_closed()


async def test_max_connections_holds_when_a_batch_is_accepted_at_once() -> None:
    """Twenty connections waiting in the backlog, one accept batch: still at most the limit."""
    running = peak = 0
    release = trio.Event()

    async def slow(conn: Connection) -> None:
        nonlocal running, peak
        running += 1
        peak = max(peak, running)
        try:
            await release.wait()
        finally:
            running -= 1

    handlers = HandlerLog(slow)
    with trio.fail_after(GUARD):
        async with trio.open_nursery() as nursery:
            server: Server = await nursery.start(
                partial(trio_tcp.serve, handlers, 0, max_connections=2)
            )
            # Blocking connects complete in the kernel's backlog before the server accepts.
            clients = [socket.create_connection(("127.0.0.1", server.port or 0)) for _ in range(20)]
            try:
                await handlers.wait_started(2)
                # The batch is accepted without waiting on the kernel: once every task
                # waits, the accept loop has handed out or dropped all twenty.
                await trio.testing.wait_all_tasks_blocked()
                assert (peak, handlers.started) == (2, 2)
                assert server.stats.dropped == 18
            finally:
                release.set()
                for client in clients:
                    client.close()
            await server.aclose()


async def test_a_reset_peer_cannot_skip_the_allow_list() -> None:
    """A peer that sends and resets before its turn is refused, not let through unjudged."""
    seen: list[bytes] = []

    async def handler(conn: Connection) -> None:
        seen.append(await conn.receive_some())

    with trio.fail_after(GUARD), log_waiter() as logs:
        async with trio.open_nursery() as nursery:
            server: Server = await nursery.start(
                partial(trio_tcp.serve, handler, 0, allow=["10.0.0.0/8"])
            )
            raw = socket.create_connection(("127.0.0.1", server.port or 0))
            raw.sendall(b"do-something")
            raw.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            raw.close()  # RST: getpeername() now fails on the server's socket
            await logs.wait_for("refused")
            assert server.stats.refused_denied == 1
            assert seen == []
            await server.aclose()


async def test_handler_failure_during_the_grace_cancel_is_still_counted(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """A child that fails while the deadline cancels its nursery is logged as failed."""

    async def handler(conn: Connection) -> None:
        async def child() -> None:
            try:
                await trio.sleep_forever()
            finally:
                raise ValueError("cleanup failed")

        async with trio.open_nursery() as inner:
            inner.start_soon(child)
            await trio.sleep_forever()

    with trio.fail_after(GUARD):
        async with trio.open_nursery() as nursery:
            server: Server = await nursery.start(
                partial(trio_tcp.serve, handler, 0, grace_period=1.0)
            )
            async with await server.connect():
                await trio.testing.wait_all_tasks_blocked()
                await server.aclose()
            assert server.stats.failed == 1


async def test_a_reset_peer_cannot_pass_as_a_trusted_proxy() -> None:
    """A PROXY header from a peer that reset before its turn is refused, never honoured."""
    seen: list[object] = []

    async def handler(conn: Connection) -> None:
        seen.append(conn.peer)

    with trio.fail_after(GUARD), log_waiter() as logs:
        async with trio.open_nursery() as nursery:
            server: Server = await nursery.start(
                partial(
                    trio_tcp.serve, handler, 0, proxy_protocol=True, trusted_proxies=["10.0.0.0/8"]
                )
            )
            raw = socket.create_connection(("127.0.0.1", server.port or 0))
            raw.sendall(b"PROXY TCP4 6.6.6.6 127.0.0.1 1234 80\r\nhello")
            raw.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            raw.close()
            await logs.wait_for("refused")
            assert server.stats.proxy_rejected == 1
            assert seen == []
            await server.aclose()


# ---------------------------------------------------------------------- shutdown semantics


async def bye_after_lines(conn: Connection) -> None:
    async for line in conn.lines(until_closing=True):
        await conn.send_all(line + b"\n")
    if conn.is_closing:
        await conn.send_all(b"bye\n")


async def test_until_closing_wakes_an_idle_line_reader_at_close(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """A quiet peer between lines: the iterator stops at close(), not at the deadline."""
    with trio.fail_after(GUARD):
        async with trio.open_nursery() as nursery:
            server: Server = await nursery.start(
                partial(trio_tcp.serve, bye_after_lines, 0, grace_period=30)
            )
            async with await trio_tcp.open_connection(port=server.port or 0) as conn:
                await conn.send_all(b"one\n")
                assert await conn.receive_line() == b"one"
                start = trio.current_time()
                server.close()
                assert await read_all(conn) == b"bye\n"
                assert trio.current_time() - start < 1
            await server.wait_closed()
            assert server.stats.cut == 0


async def test_until_closing_finishes_a_partial_line_first(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """Half a line buffered at close(): the handler waits for the rest and answers it."""
    with trio.fail_after(GUARD):
        async with trio.open_nursery() as nursery:
            server: Server = await nursery.start(
                partial(trio_tcp.serve, bye_after_lines, 0, grace_period=30)
            )
            async with await trio_tcp.open_connection(port=server.port or 0) as conn:
                await conn.send_all(b"par")
                await trio.testing.wait_all_tasks_blocked()
                server.close()
                await trio.sleep(5)  # inside the grace period
                await conn.send_all(b"tial\n")
                assert await read_all(conn) == b"partial\nbye\n"
            await server.wait_closed()


async def test_is_closing_and_quiet_sees_bytes_waiting_on_the_socket() -> None:
    """Closing with the peer's bytes unread on the socket is not quiet; once read, it is."""
    answers: list[tuple[bool, bool]] = []
    go = trio.Event()

    async def handler(conn: Connection) -> None:
        answers.append((conn.is_closing, conn.is_closing_and_quiet))
        await conn.wait_closing()
        await go.wait()  # the client's bytes have arrived
        answers.append((conn.is_closing, conn.is_closing_and_quiet))
        assert await conn.receive_exactly(3) == b"abc"
        answers.append((conn.is_closing, conn.is_closing_and_quiet))

    with trio.fail_after(GUARD):
        async with trio.open_nursery() as nursery:
            server: Server = await nursery.start(trio_tcp.serve, handler, 0)
            async with await trio_tcp.open_connection(port=server.port or 0) as conn:
                await trio.testing.wait_all_tasks_blocked()
                server.close()
                await conn.send_all(b"abc")
                await trio.sleep(0.05)  # loopback delivery, outside the server's view
                go.set()
                assert await read_all(conn) == b""
            await server.wait_closed()
    assert answers == [(False, False), (True, False), (True, True)]


async def test_a_client_connection_is_never_closing() -> None:
    """is_closing is a plain bool: `while not conn.is_closing` works outside a server."""
    left, _right = trio.testing.memory_stream_pair()
    conn = Connection(left)
    assert conn.is_closing is False
    assert conn.is_closing_and_quiet is False


async def test_connections_are_served_through_the_grace_period(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """After close(), an echo in flight keeps going until its peer ends it."""
    with trio.fail_after(GUARD):
        async with trio.open_nursery() as nursery:
            server: Server = await nursery.start(partial(trio_tcp.serve, echo, 0, grace_period=10))
            async with await trio_tcp.open_connection(port=server.port or 0) as conn:
                await conn.send_all(b"before")
                assert await conn.receive_exactly(6) == b"before"
                server.close()
                for second in range(8):
                    await trio.sleep(1)
                    await conn.send_all(b"%d" % second)
                    assert await conn.receive_exactly(1) == b"%d" % second
                await conn.send_eof()
                assert await read_all(conn) == b""
            await server.wait_closed()
            assert server.stats.cut == 0
            assert server.stats.bytes_sent == 14


async def test_grace_deadline_sends_eof_instead_of_a_reset(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """A handler cut with the peer's bytes unread: the peer reads our bytes and EOF, no RST."""
    with trio.fail_after(GUARD):

        async def stuck(conn: Connection) -> None:
            await conn.send_all(b"reply")
            await trio.sleep_forever()  # never reads what the peer sends

        async with trio.open_nursery() as nursery:
            server: Server = await nursery.start(partial(trio_tcp.serve, stuck, 0, grace_period=2))
            async with await trio_tcp.open_connection(port=server.port or 0) as conn:
                await conn.send_all(b"unread bytes" * 100)
                await trio.testing.wait_all_tasks_blocked()
                server.close()
                # A plain close() with unread input would reset, losing "reply" here.
                assert await read_all(conn) == b"reply"
            await server.wait_closed()
            assert server.stats.cut == 1


async def test_grace_deadline_reports_the_cut(
    autojump_clock: trio.testing.MockClock, caplog: pytest.LogCaptureFixture
) -> None:
    """Handlers still running at the deadline are counted in stats.cut and logged once."""

    async def stubborn(conn: Connection) -> None:
        await trio.sleep_forever()

    with trio.fail_after(GUARD):
        async with trio.open_nursery() as nursery:
            server: Server = await nursery.start(
                partial(trio_tcp.serve, stubborn, 0, grace_period=1)
            )
            clients = [await trio_tcp.open_connection(port=server.port or 0) for _ in range(3)]
            await trio.testing.wait_all_tasks_blocked()
            await server.aclose()
            for client in clients:
                await client.aclose()
    assert server.stats.cut == 3
    cut = [r.getMessage() for r in caplog.records if "cut" in r.getMessage()]
    assert cut == ["stopped: cut 3 connections that were still open"]


async def test_a_flood_of_refusals_logs_two_lines_and_counts_all(
    autojump_clock: trio.testing.MockClock, caplog: pytest.LogCaptureFixture
) -> None:
    """50 denied peers: the first logged in full, one summary; stats exact."""
    caplog.set_level(logging.INFO, logger="trio_tcp")
    with trio.fail_after(GUARD):
        async with trio.open_nursery() as nursery:
            server: Server = await nursery.start(
                partial(trio_tcp.serve, echo, 0, deny=["127.0.0.0/8"])
            )
            for _ in range(50):
                async with await trio_tcp.open_connection(port=server.port or 0) as conn:
                    assert await read_all(conn) == b""
            await server.aclose()
    assert server.stats.refused_denied == 50
    lines = [r.getMessage() for r in caplog.records if r.name == "trio_tcp"]
    assert len(lines) == 2, lines
    assert lines[0].startswith("connection from 127.0.0.1:")
    assert "refused: its address is on the deny list (127.0.0.1:" in lines[0]
    assert lines[1].startswith("connections refused (allow/deny list): 49 more in the last ")
