"""Connection as a Trio stream: states, addresses, errors (buffered reads: elsewhere)."""

from __future__ import annotations

import pytest
import trio
import trio.testing

import trio_tcp
from trio_tcp import Connection


def memory_pair() -> tuple[Connection, Connection]:
    client, server = trio.testing.memory_stream_pair()
    return Connection(client), Connection(server)


async def test_round_trip_counts_bytes() -> None:
    """send_all/receive_some move bytes and count them on both sides."""
    with trio.fail_after(5):
        client, server = memory_pair()
        await client.send_all(b"hello")
        assert await server.receive_some() == b"hello"
        assert (client.bytes_sent, server.bytes_received) == (5, 5)


async def test_receive_some_returns_bytes_not_bytearray() -> None:
    """Whatever the wrapped stream returns, receive_some hands out bytes."""
    with trio.fail_after(5):
        client, server = memory_pair()
        await client.send_all(bytearray(b"ab"))
        data = await server.receive_some()
        assert type(data) is bytes and data == b"ab"


async def test_async_for_ends_at_eof() -> None:
    """`async for chunk in conn` yields every chunk and stops at end of stream."""
    with trio.fail_after(5):
        client, server = memory_pair()
        await client.send_all(b"one")
        await client.send_eof()
        assert [chunk async for chunk in server] == [b"one"]


async def test_closed_connection_raises_closed_resource_error() -> None:
    """After aclose, reads and writes raise trio.ClosedResourceError; aclose twice is fine."""
    with trio.fail_after(5):
        client, _server = memory_pair()
        await client.aclose()
        await client.aclose()
        with pytest.raises(trio.ClosedResourceError):
            await client.receive_some()
        with pytest.raises(trio.ClosedResourceError):
            await client.receive_line()
        with pytest.raises(trio.ClosedResourceError):
            await client.send_all(b"x")


async def test_two_receivers_raise_busy_resource_error() -> None:
    """A second task receiving at the same time gets trio.BusyResourceError."""
    with trio.fail_after(5):
        _client, server = memory_pair()
        async with trio.open_nursery() as nursery:
            nursery.start_soon(server.receive_some)
            await trio.testing.wait_all_tasks_blocked()
            with pytest.raises(trio.BusyResourceError):
                await server.receive_some()
            with pytest.raises(trio.BusyResourceError):
                await server.receive_exactly(1)
            nursery.cancel_scope.cancel()


async def test_broken_peer_raises_broken_resource_error() -> None:
    """Sending to a peer that is gone raises trio.BrokenResourceError."""
    with trio.fail_after(5):
        client, server = trio.testing.lockstep_stream_pair()
        conn = Connection(client)
        await server.aclose()
        with pytest.raises(trio.BrokenResourceError):
            await conn.send_all(b"x")


async def test_send_eof_needs_a_half_closeable_stream() -> None:
    """send_eof on a stream that cannot half-close is a clear TypeError."""

    class OneWay(trio.abc.Stream):
        async def send_all(self, data: bytes | bytearray | memoryview) -> None: ...
        async def wait_send_all_might_not_block(self) -> None: ...
        async def receive_some(self, max_bytes: int | None = None) -> bytes:
            return b""

        async def aclose(self) -> None: ...

    with pytest.raises(TypeError, match="cannot half-close"):
        await Connection(OneWay()).send_eof()


async def test_memory_connection_has_no_addresses() -> None:
    """Over memory streams peer and local are None and repr says memory."""
    client, _server = memory_pair()
    assert client.peer is None and client.local is None
    assert repr(client) == f"<Connection #{client.id} memory>"


async def test_explicit_peer_overrides_the_socket() -> None:
    """A peer passed in (from a PROXY header, say) is what conn.peer reports."""
    stream, _ = trio.testing.memory_stream_pair()
    conn = Connection(stream, peer=("203.0.113.7", 4242))
    assert conn.peer == ("203.0.113.7", 4242)
    assert "203.0.113.7:4242" in repr(conn)


async def test_ids_are_unique_and_increasing() -> None:
    """Every Connection gets a new id."""
    first, second = memory_pair()
    assert second.id == first.id + 1


async def test_bad_arguments() -> None:
    """Nonsense sizes are ValueErrors, not hangs."""
    client, _server = memory_pair()
    with pytest.raises(ValueError):
        await client.receive_some(0)
    with pytest.raises(ValueError):
        Connection(client.stream, receive_size=0)


def test_format_address() -> None:
    """Addresses print as host:port, [v6]:port, unix:path or memory."""
    assert trio_tcp.format_address(("127.0.0.1", 1)) == "127.0.0.1:1"
    assert trio_tcp.format_address(("::1", 2)) == "[::1]:2"
    assert trio_tcp.format_address("/tmp/s") == "unix:/tmp/s"
    assert trio_tcp.format_address(None) == "memory"
