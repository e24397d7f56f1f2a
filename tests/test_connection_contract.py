"""`Connection` is a Trio stream by Trio's own test, over serve() + open_connection() pairs."""

from __future__ import annotations

import functools
import math
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path

import pytest
import trio
import trio.testing
from _clogging import clogged

import trio_tcp
from trio_tcp import Connection
from trio_tcp.framing import LengthPrefixFramer

GUARD = 30.0

# Both ways the fast socket stream can wait: the shared poller and Trio's own waits.
pytestmark = pytest.mark.usefixtures("socket_waits", "socket_checkpoints")

Pair = tuple[Connection, Connection]
Maker = Callable[[], Awaitable[Pair]]


@asynccontextmanager
async def served_pairs(kind: str, tmp_path: Path) -> AsyncIterator[Maker]:
    """A maker of (client, server-side) Connection pairs from a real ``serve()``.

    The server-side Connection is the one the server hands its handler; the handler parks
    until the test is over, so the test drives both ends.
    """
    send, receive = trio.open_memory_channel[Connection](math.inf)

    async def handler(conn: Connection) -> None:
        await send.send(conn)
        await trio.sleep_forever()

    async with trio.open_nursery() as nursery:
        if kind == "tcp":
            server = await nursery.start(functools.partial(trio_tcp.serve, handler, 0))
        else:
            path = str(tmp_path / "contract.sock")
            server = await nursery.start(functools.partial(trio_tcp.serve, handler, unix_path=path))

        async def make() -> Pair:
            if kind == "tcp":
                assert server.port is not None
                client = await trio_tcp.open_connection("127.0.0.1", server.port)
            else:
                client = await trio_tcp.open_unix_connection(path)
            return client, await receive.receive()

        yield make
        nursery.cancel_scope.cancel()


KINDS = ["tcp", "unix"]


@pytest.mark.parametrize("kind", KINDS)
async def test_connection_passes_check_half_closeable_stream(kind: str, tmp_path: Path) -> None:
    """Trio's conformance suite passes with a Connection at both ends of a served pair."""
    with trio.fail_after(GUARD):
        async with served_pairs(kind, tmp_path) as make:
            await trio.testing.check_half_closeable_stream(make, clogged(make))


@pytest.mark.parametrize("kind", KINDS)
async def test_connection_passes_check_two_way_stream(kind: str, tmp_path: Path) -> None:
    """check_two_way_stream on its own, too."""
    with trio.fail_after(GUARD):
        async with served_pairs(kind, tmp_path) as make:
            await trio.testing.check_two_way_stream(make, clogged(make))


@pytest.mark.parametrize("kind", KINDS)
async def test_every_public_async_method_is_a_checkpoint(kind: str, tmp_path: Path) -> None:
    """Each call yields and is a cancel point, also when served from the buffer."""
    framer = LengthPrefixFramer()
    with trio.fail_after(GUARD):
        async with served_pairs(kind, tmp_path) as make:
            client, server = await make()
            frame = framer.encode(b"frame")
            script = b"abcdefgh|line one\nline two\n" + frame + frame + b"tail"
            with trio.testing.assert_checkpoints():
                await client.send_all(script)
            with trio.testing.assert_checkpoints():
                await client.wait_send_all_might_not_block()
            await trio.testing.wait_all_tasks_blocked()
            # The first read fills the buffer; every later one is served from it.
            with trio.testing.assert_checkpoints():
                assert await server.receive_exactly(4) == b"abcd"
            assert server.buffered > 0
            with trio.testing.assert_checkpoints():
                assert await server.receive_exactly(4) == b"efgh"
            with trio.testing.assert_checkpoints():
                assert await server.receive_until(b"|") == b""
            with trio.testing.assert_checkpoints():
                assert await server.receive_line() == b"line one"
            with trio.testing.assert_checkpoints():
                assert await server.lines().__anext__() == b"line two"
            with trio.testing.assert_checkpoints():
                assert await server.receive_frame(framer) == b"frame"
            with trio.testing.assert_checkpoints():
                assert await server.frames(framer).__anext__() == b"frame"
            with trio.testing.assert_checkpoints():
                assert await server.receive_some(2) == b"ta"
            with trio.testing.assert_checkpoints():
                assert await server.__anext__() == b"il"
            assert server.buffered == 0
            with trio.testing.assert_checkpoints():
                await client.send_frame(framer, b"more")
            with trio.testing.assert_checkpoints():
                assert await server.receive_frame(framer) == b"more"
            async with trio.open_nursery() as nursery:
                nursery.start_soon(client.send_all, b"waited")
                with trio.testing.assert_checkpoints():
                    assert await server.receive_exactly(6) == b"waited"
            with trio.testing.assert_checkpoints():
                await client.send_eof()
            with trio.testing.assert_checkpoints():
                assert await server.receive_some() == b""
            with trio.testing.assert_checkpoints():
                await server.aclose()
            with trio.testing.assert_checkpoints():
                await client.aclose()


@pytest.mark.parametrize("kind", KINDS)
async def test_buffered_reads_are_cancel_points_and_lose_nothing(kind: str, tmp_path: Path) -> None:
    """A read in a cancelled scope raises Cancelled and leaves its bytes in the buffer."""
    with trio.fail_after(GUARD):
        async with served_pairs(kind, tmp_path) as make:
            client, server = await make()
            async with client, server:
                await client.send_all(b"one\ntwo\nrest")
                assert await server.receive_line() == b"one"  # the rest is buffered now
                reads: list[Callable[[], Awaitable[object]]] = [
                    server.receive_line,
                    functools.partial(server.receive_exactly, 3),
                    functools.partial(server.receive_until, b"\n"),
                    server.receive_some,
                    server.lines().__anext__,
                ]
                for read in reads:
                    with trio.CancelScope() as scope:
                        scope.cancel()
                        await read()
                    assert scope.cancelled_caught
                assert server.buffered == len(b"two\nrest")
                assert await server.receive_line() == b"two"
                assert await server.receive_exactly(4) == b"rest"


@pytest.mark.parametrize("kind", KINDS)
async def test_until_closing_steps_are_one_checkpoint_each_and_lose_nothing(
    kind: str, tmp_path: Path
) -> None:
    """Each step of lines/chunks/frames(until_closing=True) is a checkpoint, whether its
    bytes were received at the boundary or were already buffered; a cancelled step takes
    nothing."""
    framer = LengthPrefixFramer(2)
    with trio.fail_after(GUARD):
        async with served_pairs(kind, tmp_path) as make:
            client, server = await make()
            async with client, server:
                lines = server.lines(until_closing=True)
                await client.send_all(b"one\ntwo\n")
                await trio.testing.wait_all_tasks_blocked()
                with trio.testing.assert_checkpoints():
                    assert await lines.__anext__() == b"one"  # received at the boundary
                with trio.testing.assert_checkpoints():
                    assert await lines.__anext__() == b"two"  # already buffered
                await client.send_all(b"three\n")
                await trio.testing.wait_all_tasks_blocked()
                with trio.CancelScope() as scope:
                    scope.cancel()
                    await lines.__anext__()
                assert scope.cancelled_caught
                assert await lines.__anext__() == b"three"
                chunks = server.chunks(until_closing=True)
                await client.send_all(b"xyz")
                await trio.testing.wait_all_tasks_blocked()
                with trio.testing.assert_checkpoints():
                    assert await chunks.__anext__() == b"xyz"
                frames = server.frames(framer, until_closing=True)
                await client.send_frame(framer, b"framed")
                await trio.testing.wait_all_tasks_blocked()
                with trio.testing.assert_checkpoints():
                    assert await frames.__anext__() == b"framed"
                await client.send_eof()
                with trio.testing.assert_checkpoints(), pytest.raises(StopAsyncIteration):
                    await lines.__anext__()


async def test_until_closing_sees_a_shutdown_that_began_while_it_let_others_run() -> None:
    """A shutdown that begins during the rounds a read lets the others run before it waits
    (no wake-up armed yet) still stops a quiet reader: it is not left parked."""
    with trio.fail_after(GUARD):
        a, b = trio.socket.socketpair()
        closing = trio.Event()
        conn = Connection(trio.SocketStream(a), closing=closing)

        async def close_soon() -> None:
            await trio.lowlevel.checkpoint()
            closing.set()

        async with conn, trio.open_nursery() as nursery:
            nursery.start_soon(close_soon)
            assert [line async for line in conn.lines(until_closing=True)] == []
        b.close()


@pytest.mark.parametrize("kind", KINDS)
async def test_a_receive_begun_before_a_buffered_read_still_gets_the_buffer_first(
    kind: str, tmp_path: Path
) -> None:
    """A receive_some() coroutine made before a buffered read and awaited after it takes
    the bytes that read left in the buffer before newer ones: no byte is reordered."""
    with trio.fail_after(GUARD):
        async with served_pairs(kind, tmp_path) as make:
            client, server = await make()
            async with client, server:
                early = server.receive_some()
                early_chunk = server.__anext__()
                await client.send_all(b"line\nAAA")
                await trio.testing.wait_all_tasks_blocked()
                assert await server.receive_line() == b"line"  # leaves AAA buffered
                await client.send_all(b"BBB")
                await trio.testing.wait_all_tasks_blocked()
                assert await early == b"AAA"
                assert await early_chunk == b"BBB"


@pytest.mark.parametrize("kind", KINDS)
async def test_bytes_sent_over_a_socket_is_what_the_kernel_took(kind: str, tmp_path: Path) -> None:
    """A send_all cancelled part way counts the bytes that went out: the peer gets exactly
    that many."""
    with trio.fail_after(GUARD):
        async with served_pairs(kind, tmp_path) as make:
            client, server = await make()
            async with client, server:
                with trio.move_on_after(0.2):
                    await server.send_all(bytes(64 << 20))  # nobody reads: it blocks
                sent = server.bytes_sent
                assert 0 < sent < 64 << 20
                await server.send_eof()
                received = 0
                async for chunk in client:
                    received += len(chunk)
                assert received == sent == client.bytes_received
