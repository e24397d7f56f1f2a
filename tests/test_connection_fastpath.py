"""The socket fast path of `Connection` keeps Trio's guarantees (real loopback sockets)."""

from __future__ import annotations

import random
import socket
import struct
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import pytest
import trio
import trio.lowlevel
import trio.testing

import trio_tcp
from trio_tcp import _socket_stream
from trio_tcp._socket_stream import FastSocketStream, _accept_batch, _raw

# Every test here talks over real sockets; a hang must become a failure.
GUARD = 10.0

# Both ways the fast socket stream can wait: the shared poller and Trio's own waits.
pytestmark = pytest.mark.usefixtures("socket_waits")


@asynccontextmanager
async def socket_pair() -> AsyncIterator[tuple[trio_tcp.Connection, trio_tcp.Connection]]:
    """A connected (server side, client side) pair of Connections over 127.0.0.1."""
    listeners = await trio.open_tcp_listeners(0, host="127.0.0.1")
    listener = listeners[0]
    try:
        port = listener.socket.getsockname()[1]
        client_stream = await trio.open_tcp_stream("127.0.0.1", port)
        server_stream = await listener.accept()
    finally:
        await listener.aclose()
    server, client = trio_tcp.Connection(server_stream), trio_tcp.Connection(client_stream)
    try:
        yield server, client
    finally:
        await trio.aclose_forcefully(server)
        await trio.aclose_forcefully(client)


def reset_on_close(conn: trio_tcp.Connection) -> None:
    """Make closing ``conn`` send a TCP RST instead of a FIN (SO_LINGER 0)."""
    assert isinstance(conn.stream, FastSocketStream)
    conn.stream.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))


async def test_fast_path_only_for_socket_streams() -> None:
    """A SocketStream gets the fast stream over the same socket; a memory stream is kept."""
    with trio.fail_after(GUARD):
        listeners = await trio.open_tcp_listeners(0, host="127.0.0.1")
        port = listeners[0].socket.getsockname()[1]
        async with listeners[0], await trio.open_tcp_stream("127.0.0.1", port) as stream:
            fd = stream.socket.fileno()
            conn = trio_tcp.Connection(stream)
            assert isinstance(conn.stream, FastSocketStream)
            assert conn.stream.socket is stream.socket and conn.stream.socket.fileno() == fd
            await conn.aclose()
        left, _right = trio.testing.memory_stream_pair()
        assert trio_tcp.Connection(left).stream is left


async def test_echo_is_byte_exact_with_random_sizes() -> None:
    """An echo server on the fast path returns every byte, in order, for random chunk sizes."""
    rng = random.Random(6)
    payload = rng.randbytes(3_000_000)
    sizes: list[int] = []
    total = 0
    while total < len(payload):
        size = rng.choice([1, 7, 64, 1000, 4096, 65536, 300_000])
        sizes.append(size)
        total += size

    async def echo(conn: trio_tcp.Connection) -> None:
        async for chunk in conn:
            await conn.send_all(chunk)

    received = bytearray()
    with trio.fail_after(GUARD):
        async with trio.open_nursery() as nursery:
            server = await nursery.start(trio_tcp.serve, echo, 0)
            conn = await server.connect()
            async with conn:

                async def send() -> None:
                    offset = 0
                    for size in sizes:
                        await conn.send_all(payload[offset : offset + size])
                        offset += size
                    await conn.send_eof()

                nursery.start_soon(send)
                while len(received) < len(payload):
                    # Mix the raw reads and the buffered reads, all of them on the fast path.
                    want = rng.choice([1, 100, 5000])
                    if rng.random() < 0.5:
                        received += await conn.receive_some(want)
                    else:
                        received += await conn.receive_exactly(
                            min(want, len(payload) - len(received))
                        )
                assert await conn.receive_some() == b""
            server.close()
    assert received == payload


async def test_line_echo_over_fast_path() -> None:
    """lines() and send_all over a real socket echo lines exactly (the line-echo benchmark)."""
    lines = [b"x" * n for n in (0, 1, 5, 100, 4000, 70)] * 50

    async def echo(conn: trio_tcp.Connection) -> None:
        async for line in conn.lines():
            await conn.send_all(line + b"\n")

    with trio.fail_after(GUARD):
        async with trio.open_nursery() as nursery:
            server = await nursery.start(trio_tcp.serve, echo, 0)
            async with await server.connect() as conn:
                await conn.send_all(b"".join(line + b"\n" for line in lines))
                got = [await conn.receive_line() for _ in lines]
            server.close()
    assert got == lines


async def test_cancel_takes_effect_on_next_receive_under_a_flood() -> None:
    """With data always ready, a cancelled scope stops the very next receive_some."""
    with trio.fail_after(GUARD):
        async with socket_pair() as (server, client):
            await client.send_all(b"z" * 30_000)  # far more than the 100 reads take
            reads = 0
            with trio.CancelScope() as scope:
                while True:
                    chunk = await server.receive_some(10)
                    assert chunk
                    reads += 1
                    if reads == 100:
                        scope.cancel()
            assert scope.cancelled_caught
            assert reads == 100
            # Nothing was lost: the next read carries on from byte 1000.
            assert server.bytes_received == 1000


async def test_cancel_takes_effect_on_next_buffered_read_under_a_flood() -> None:
    """receive_exactly also stops at once when cancelled, and keeps the unread bytes."""
    with trio.fail_after(GUARD):
        async with socket_pair() as (server, client):
            await client.send_all(bytes(range(256)) * 100)
            reads = 0
            with trio.CancelScope() as scope:
                while True:
                    await server.receive_exactly(256)
                    reads += 1
                    if reads == 50:
                        scope.cancel()
            assert reads == 50
            assert await server.receive_exactly(256) == bytes(range(256))


async def test_cancel_takes_effect_on_next_send() -> None:
    """A cancelled scope stops the next send_all even when the socket has room."""
    with trio.fail_after(GUARD):
        async with socket_pair() as (server, client):
            sends = 0
            with trio.CancelScope() as scope:
                while True:
                    await server.send_all(b"ab")
                    sends += 1
                    if sends == 10:
                        scope.cancel()
            assert sends == 10
            assert server.bytes_sent == 20
            assert await client.receive_exactly(20) == b"ab" * 10


async def flood_and_ping(monkeypatch: pytest.MonkeyPatch, *, schedule_points: bool) -> int:
    """Round trips a ping-pong client completes while another connection floods the server.

    Without ``schedule_points``, the fast stream's checkpoint is replaced by a cancel point
    that does not yield (the bug this guards against), to show that the test bites.
    """
    if not schedule_points:
        monkeypatch.setattr(_socket_stream, "_checkpoint", trio.lowlevel.checkpoint_if_cancelled)
    pongs = 0
    flood_ready = trio.Event()
    during_flood: list[int] = []

    async def handler(conn: trio_tcp.Connection) -> None:
        kind = await conn.receive_some(1)  # not a buffered read: the flood stays in the kernel
        if kind == b"P":
            async for chunk in conn:
                await conn.send_all(chunk)
            return
        await flood_ready.wait()
        start = pongs
        # The peer's 30,000 bytes are all in the kernel buffer: 20,000 one-byte reads never wait.
        for _ in range(20_000):
            assert await conn.receive_some(1) == b"f"
        during_flood.append(pongs - start)

    async def ping(conn: trio_tcp.Connection) -> None:
        nonlocal pongs
        await conn.send_all(b"P")
        while True:
            await conn.send_all(b"!")
            assert await conn.receive_exactly(1) == b"!"
            pongs += 1

    with trio.fail_after(GUARD):
        async with trio.open_nursery() as nursery:
            server = await nursery.start(trio_tcp.serve, handler, 0)
            async with await server.connect() as pinger, await server.connect() as flooder:
                nursery.start_soon(ping, pinger)
                while pongs < 10:  # the ping-pong client is up and running
                    await trio.lowlevel.checkpoint()
                await flooder.send_all(b"F" + b"f" * 30_000)
                flood_ready.set()
                while not during_flood:
                    await trio.lowlevel.checkpoint()
                nursery.cancel_scope.cancel()
    return during_flood[0]


async def test_flooding_connection_does_not_starve_others(monkeypatch: pytest.MonkeyPatch) -> None:
    """While one connection always has data ready, a ping-pong connection keeps progressing."""
    assert await flood_and_ping(monkeypatch, schedule_points=True) >= 20


async def test_fairness_test_detects_starvation(monkeypatch: pytest.MonkeyPatch) -> None:
    """Without the yield after each read the flood does starve the ping-pong client."""
    assert await flood_and_ping(monkeypatch, schedule_points=False) == 0


async def test_slow_reader_gets_back_pressure(autojump_clock: trio.testing.MockClock) -> None:
    """An echo whose client never reads stalls the client's sends; the server holds one chunk."""
    conns: list[trio_tcp.Connection] = []

    async def echo(conn: trio_tcp.Connection) -> None:
        conns.append(conn)
        async for chunk in conn:
            await conn.send_all(chunk)

    chunk = b"b" * 65536
    limit = 1 << 30  # 1 GiB: far beyond what the kernel buffers of a loopback pair hold
    sent = 0
    with trio.fail_after(GUARD):
        async with trio.open_nursery() as nursery:
            server = await nursery.start(trio_tcp.serve, echo, 0)
            async with await server.connect() as conn:
                with trio.move_on_after(1) as stalled:
                    while sent < limit:
                        await conn.send_all(chunk)
                        sent += len(chunk)
                assert stalled.cancelled_caught
                (server_conn,) = conns
                held = server_conn.bytes_received - server_conn.bytes_sent
                assert 0 <= held <= 65536
                assert server_conn.buffered == 0
            server.close()
    assert sent < 64 << 20


async def test_closed_after_aclose() -> None:
    """After aclose every call raises ClosedResourceError, like a SocketStream."""
    with trio.fail_after(GUARD):
        async with socket_pair() as (server, _client):
            await server.aclose()
            await server.aclose()  # harmless twice
            with pytest.raises(trio.ClosedResourceError):
                await server.receive_some()
            with pytest.raises(trio.ClosedResourceError):
                await server.send_all(b"x")
            with pytest.raises(trio.ClosedResourceError):
                await server.receive_line()
            assert server.stream.socket.fileno() == -1  # type: ignore[attr-defined]


async def test_closed_when_stream_closed_underneath() -> None:
    """Closing the SocketStream itself gives ClosedResourceError, after a short read too."""
    with trio.fail_after(GUARD):
        async with socket_pair() as (server, client):
            await client.send_all(b"hi")
            assert await server.receive_some() == b"hi"  # a short read: next one waits first
            await server.stream.aclose()
            with pytest.raises(trio.ClosedResourceError):
                await server.receive_some()
            with pytest.raises(trio.ClosedResourceError):
                await server.send_all(b"x")


async def test_close_wakes_a_waiting_reader() -> None:
    """aclose from another task makes a read waiting on the socket raise ClosedResourceError."""
    with trio.fail_after(GUARD):
        async with socket_pair() as (server, _client):
            errors: list[BaseException] = []

            async def reader() -> None:
                try:
                    await server.receive_some()
                except trio.ClosedResourceError as exc:
                    errors.append(exc)

            async with trio.open_nursery() as nursery:
                nursery.start_soon(reader)
                await trio.testing.wait_all_tasks_blocked()
                await server.aclose()
            assert len(errors) == 1


async def test_no_fd_reuse_after_close() -> None:
    """A closed connection never reads a newer connection that got the same fd number."""
    with trio.fail_after(GUARD):
        async with socket_pair() as (old_server, old_client):
            fd = old_server.stream.socket.fileno()  # type: ignore[attr-defined]
            await old_server.aclose()
            async with socket_pair() as (new_server, new_client):
                reused = fd in (
                    new_server.stream.socket.fileno(),  # type: ignore[attr-defined]
                    new_client.stream.socket.fileno(),  # type: ignore[attr-defined]
                )
                await new_client.send_all(b"secret")
                await new_server.send_all(b"secret")
                with pytest.raises(trio.ClosedResourceError):
                    await old_server.receive_some()
                assert await new_server.receive_exactly(6) == b"secret"
                assert await new_client.receive_exactly(6) == b"secret"
            assert reused  # the kernel did hand the number out again, so this test bites
            await old_client.aclose()


async def test_reset_is_broken_resource_on_receive() -> None:
    """A peer's RST makes receive raise BrokenResourceError (ECONNRESET)."""
    with trio.fail_after(GUARD):
        async with socket_pair() as (server, client):
            reset_on_close(client)
            await client.aclose()
            with pytest.raises(trio.BrokenResourceError) as info:
                await server.receive_some()
            assert isinstance(info.value.__cause__, ConnectionResetError)


async def test_reset_is_broken_resource_on_send() -> None:
    """Sending to a peer that reset the connection raises BrokenResourceError (EPIPE)."""
    with trio.fail_after(GUARD):
        async with socket_pair() as (server, client):
            reset_on_close(client)
            await client.aclose()
            with pytest.raises(trio.BrokenResourceError):
                for _ in range(100):
                    await server.send_all(b"x" * 1000)


async def test_concurrent_receives_are_busy() -> None:
    """A second task receiving at the same time gets BusyResourceError."""
    with trio.fail_after(GUARD):
        async with socket_pair() as (server, client), trio.open_nursery() as nursery:
            nursery.start_soon(server.receive_some)
            await trio.testing.wait_all_tasks_blocked()
            with pytest.raises(trio.BusyResourceError):
                await server.receive_some()
            with pytest.raises(trio.BusyResourceError):
                await server.receive_line()
            await client.send_all(b"done")


async def test_concurrent_sends_are_busy() -> None:
    """A second task sending while a send waits for buffer space gets BusyResourceError."""
    with trio.fail_after(GUARD):
        async with socket_pair() as (server, _client), trio.open_nursery() as nursery:
            nursery.start_soon(server.send_all, b"y" * (32 << 20))  # blocks: nobody reads
            await trio.testing.wait_all_tasks_blocked()
            with pytest.raises(trio.BusyResourceError):
                await server.send_all(b"z")
            with pytest.raises(trio.BusyResourceError):
                await server.send_eof()
            nursery.cancel_scope.cancel()


async def test_send_after_send_eof_is_closed() -> None:
    """send_all after send_eof raises ClosedResourceError; the peer sees end of stream."""
    with trio.fail_after(GUARD):
        async with socket_pair() as (server, client):
            await server.send_eof()
            with pytest.raises(trio.ClosedResourceError):
                await server.send_all(b"x")
            assert await client.receive_some() == b""
            await client.send_all(b"still open this way")
            assert await server.receive_exactly(19) == b"still open this way"


async def test_empty_send_is_a_checkpoint() -> None:
    """send_all(b"") sends nothing, yields, and raises ClosedResourceError once closed."""
    with trio.fail_after(GUARD):
        async with socket_pair() as (server, _client):
            with trio.testing.assert_checkpoints():
                await server.send_all(b"")
            assert server.bytes_sent == 0
            await server.aclose()
            with pytest.raises(trio.ClosedResourceError):
                await server.send_all(b"")


async def test_the_accept_batch_takes_every_waiting_connection() -> None:
    """The accept loop's batch helper accepts all queued connections, then stops at EAGAIN."""
    with trio.fail_after(GUARD):
        (listener,) = await trio.open_tcp_listeners(0, host="127.0.0.1")
        port = listener.socket.getsockname()[1]
        clients = [socket.create_connection(("127.0.0.1", port)) for _ in range(5)]
        try:
            await trio.sleep(0.05)  # every handshake done
            raw = _raw(listener.socket)
            assert raw is not None
            streams, drained = _accept_batch(raw)
            assert len(streams) == 5 and drained
            assert _accept_batch(raw) == ([], True)  # the queue is empty now: no blocking
            for index, (client, stream) in enumerate(zip(clients, streams, strict=True)):
                client.sendall(bytes([index]))
                assert await stream.receive_some(1) == bytes([index])  # arrival order
                await stream.aclose()
        finally:
            for client in clients:
                client.close()
            await listener.aclose()


async def test_server_serves_a_burst_of_connections() -> None:
    """Forty connections opened at once are all accepted and echoed byte for byte."""

    async def echo(conn: trio_tcp.Connection) -> None:
        async for chunk in conn:
            await conn.send_all(chunk)

    with trio.fail_after(GUARD):
        async with trio.open_nursery() as nursery:
            server = await nursery.start(trio_tcp.serve, echo, 0)
            conns = [await server.connect() for _ in range(40)]
            for index, conn in enumerate(conns):
                await conn.send_all(b"%d\n" % index)
            for index, conn in enumerate(conns):
                assert await conn.receive_line() == b"%d" % index
                await conn.aclose()
            assert server.stats.accepted == 40
            server.close()
