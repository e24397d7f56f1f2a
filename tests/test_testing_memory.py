"""trio_tcp.testing: memory connections, the memory server, and the echo conformance check."""

from __future__ import annotations

import pytest
import trio
import trio.testing

import trio_tcp.testing
from trio_tcp import Connection
from trio_tcp._cli import make_mode
from trio_tcp.testing import (
    CheckFailedError,
    MemoryListener,
    check_echo_handler,
    lockstep_connection_pair,
    memory_connection_pair,
    serve_memory,
)
from trio_tcp.testing._plugin import ServerFactory


async def _memory_pair() -> tuple[Connection, Connection]:
    return memory_connection_pair()


async def _lockstep_pair() -> tuple[Connection, Connection]:
    return lockstep_connection_pair()


async def test_connection_passes_trios_half_closeable_stream_checks() -> None:
    """Connection passes trio's stream checks: half-closeable over memory, two-way with a
    lockstep (clogged) pair."""
    with trio.fail_after(10):
        await trio.testing.check_half_closeable_stream(_memory_pair, None)
        await trio.testing.check_two_way_stream(_lockstep_pair, _lockstep_pair)


async def test_memory_connection_pair_round_trip() -> None:
    """Bytes sent by the client arrive at the server and back, with buffered reads."""
    with trio.fail_after(5):
        for client, server in (memory_connection_pair(), lockstep_connection_pair()):
            async with client, server, trio.open_nursery() as nursery:
                nursery.start_soon(client.send_all, b"ping\nrest")
                assert await server.receive_line() == b"ping"
                assert await server.receive_exactly(4) == b"rest"
                nursery.start_soon(server.send_all, b"pong")
                assert await client.receive_exactly(4) == b"pong"


async def _echo(conn: Connection) -> None:
    async for chunk in conn:
        await conn.send_all(chunk)


async def test_memory_server_runs_the_real_machinery() -> None:
    """serve_memory: server.connect() reaches the handler; stats count the bytes."""
    with trio.fail_after(5):
        async with trio.open_nursery() as nursery:
            server = await nursery.start(serve_memory, _echo)
            assert isinstance(server, trio_tcp.Server)
            assert isinstance(server.listeners[0], MemoryListener)
            async with await server.connect() as client:
                await client.send_all(b"hello")
                assert await client.receive_exactly(5) == b"hello"
            await server.aclose()
    assert server.stats.accepted == 1
    assert server.stats.bytes_received == 5
    assert server.stats.bytes_sent == 5


async def test_closed_memory_listener_refuses_and_closes_pending() -> None:
    """After aclose, connect() is refused and a connection never accepted reads EOF."""
    with trio.fail_after(5):
        listener = MemoryListener()
        pending = await listener.connect()
        await listener.aclose()
        assert await pending.receive_some() == b""
        with pytest.raises(ConnectionRefusedError):
            await listener.connect()
        with pytest.raises(trio.ClosedResourceError):
            await listener.accept()


async def test_max_connections_same_on_every_transport(transport_server: ServerFactory) -> None:
    """With max_connections=1 a second client is dropped at once, on every transport."""
    held = trio.Event()

    async def handler(conn: Connection) -> None:
        await conn.send_all(b"hi")
        await held.wait()

    with trio.fail_after(5):
        server = await transport_server(handler, max_connections=1)
        async with await server.connect() as first:
            assert await first.receive_exactly(2) == b"hi"
            async with await server.connect() as second:
                assert await second.receive_some() == b""
            held.set()
    assert server.stats.dropped == 1
    assert server.stats.accepted == 2


@pytest.mark.transports("memory", "lockstep", "tcp")
async def test_idle_timeout_same_on_every_transport(
    transport_server: ServerFactory, autojump_clock: trio.testing.MockClock
) -> None:
    """A silent client is closed between idle_timeout and 1.25 x idle_timeout (mock time)."""

    async def handler(conn: Connection) -> None:
        await conn.receive_some()

    with trio.fail_after(100):
        server = await transport_server(handler, idle_timeout=10)
        async with await server.connect() as client:
            start = trio.current_time()
            assert await client.receive_some() == b""
            waited = trio.current_time() - start
    assert 10 <= waited <= 12.5
    assert server.stats.timed_out == 1


async def test_check_echo_handler_accepts_the_cli_echo_mode() -> None:
    """The CLI's echo mode passes the echo conformance check."""
    with trio.fail_after(30):
        await check_echo_handler(make_mode("echo"))


async def test_check_echo_handler_catches_a_lost_byte() -> None:
    """A handler that drops its last byte fails the check, naming the case."""

    async def lossy(conn: Connection) -> None:
        data = b""
        async for chunk in conn:
            data += chunk
        await conn.send_all(data[:-1])

    with trio.fail_after(30), pytest.raises(CheckFailedError, match=r"'small'.*13 bytes, got 12"):
        await check_echo_handler(lossy)


async def test_check_echo_handler_catches_a_deadlock(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """A handler that waits for end of stream before echoing fails the interactive case."""

    async def hoarding(conn: Connection) -> None:
        data = b""
        async for chunk in conn:
            data += chunk
        await conn.send_all(data)

    with trio.fail_after(1000), pytest.raises(CheckFailedError, match="'interactive': no answer"):
        await check_echo_handler(hoarding)
