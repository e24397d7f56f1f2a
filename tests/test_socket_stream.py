"""The fast socket stream keeps Trio's stream contract (real TCP and Unix socket pairs)."""

from __future__ import annotations

import socket

import pytest
import trio
import trio.testing
from _clogging import clogged

import trio_tcp.testing
from trio_tcp import _socket_stream
from trio_tcp._socket_stream import FastSocketStream, fast_stream

GUARD = 20.0

StreamPair = tuple[FastSocketStream, FastSocketStream]


async def tcp_pair() -> StreamPair:
    """Two FastSocketStreams over a fresh 127.0.0.1 connection."""
    (listener,) = await trio.open_tcp_listeners(0, host="127.0.0.1")
    async with listener:
        port = listener.socket.getsockname()[1]
        client = await trio.open_tcp_stream("127.0.0.1", port)
        server = await listener.accept()
    left, right = fast_stream(client), fast_stream(server)
    assert isinstance(left, FastSocketStream) and isinstance(right, FastSocketStream)
    return left, right


async def unix_pair() -> StreamPair:
    """Two FastSocketStreams over a Unix socketpair."""
    a, b = trio.socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    return FastSocketStream(a), FastSocketStream(b)


PAIRS = {"tcp": tcp_pair, "unix": unix_pair}


@pytest.fixture(autouse=True)
def waits(socket_waits: str, socket_checkpoints: str) -> str:
    """Every test here runs with waits through the shared poller and through Trio's own,
    and with the one-frame checkpoint and with Trio's own."""
    return socket_waits


@pytest.mark.parametrize("kind", PAIRS)
async def test_passes_trios_half_closeable_stream_checks(kind: str) -> None:
    """Trio's own conformance suite (which includes check_two_way_stream) passes."""
    maker = PAIRS[kind]
    with trio.fail_after(GUARD):
        await trio.testing.check_half_closeable_stream(maker, clogged(maker))


@pytest.mark.parametrize("kind", PAIRS)
async def test_passes_trios_two_way_stream_checks(kind: str) -> None:
    """check_two_way_stream on its own, too (clogged pairs included)."""
    maker = PAIRS[kind]
    with trio.fail_after(GUARD):
        await trio.testing.check_two_way_stream(maker, clogged(maker))


@pytest.mark.parametrize("kind", PAIRS)
async def test_every_async_method_is_a_checkpoint(kind: str) -> None:
    """Each call yields and can be cancelled, even when it did not have to wait."""
    with trio.fail_after(GUARD):
        left, right = await PAIRS[kind]()
        async with left, right:
            with trio.testing.assert_checkpoints():
                await left.send_all(b"ready")  # the kernel takes it at once
            await trio.testing.wait_all_tasks_blocked()
            with trio.testing.assert_checkpoints():
                assert await right.receive_some(100) == b"ready"  # already waiting
            with trio.testing.assert_checkpoints():
                await left.send_all(b"")
            with trio.testing.assert_checkpoints():
                await left.wait_send_all_might_not_block()
            async with trio.open_nursery() as nursery:
                nursery.start_soon(left.send_all, b"later")
                with trio.testing.assert_checkpoints():
                    assert await right.receive_some(100) == b"later"  # maybe waits
            with trio.testing.assert_checkpoints():
                await left.send_eof()
            with trio.testing.assert_checkpoints():
                assert await right.receive_some() == b""
            with trio.testing.assert_checkpoints():
                await left.aclose()


@pytest.mark.parametrize("kind", PAIRS)
async def test_cancelled_calls_do_nothing(kind: str) -> None:
    """A call in a cancelled scope raises Cancelled before receiving or sending a byte."""
    with trio.fail_after(GUARD):
        left, right = await PAIRS[kind]()
        async with left, right:
            await left.send_all(b"kept")
            await trio.testing.wait_all_tasks_blocked()
            with trio.CancelScope() as scope:
                scope.cancel()
                await right.receive_some()
            assert scope.cancelled_caught
            with trio.CancelScope() as scope:
                scope.cancel()
                await right.send_all(b"never")
            assert scope.cancelled_caught
            assert await right.receive_some() == b"kept"
            await right.send_eof()
            assert await left.receive_some() == b""  # "never" was not sent


async def test_fast_stream_wraps_only_plain_socket_streams() -> None:
    """fast_stream leaves TLS, memory and other streams alone."""
    left, _right = trio.testing.memory_stream_pair()
    assert fast_stream(left) is left
    with trio.fail_after(GUARD):
        a, b = trio.socket.socketpair()
        stream = trio.SocketStream(a)
        fast = fast_stream(stream)
        assert isinstance(fast, FastSocketStream) and fast.socket is a
        await fast.aclose()
        b.close()


async def test_rejects_what_is_not_a_stream_socket() -> None:
    """A non-Trio socket or a datagram socket is refused, as trio.SocketStream refuses it."""
    raw = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    with raw, pytest.raises(TypeError):
        FastSocketStream(raw)  # type: ignore[arg-type]
    with trio.socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as dgram, pytest.raises(ValueError):
        FastSocketStream(dgram)


async def test_a_cancelled_wait_leaves_nothing_behind(waits: str) -> None:
    """A receive cancelled while parked is forgotten; the next one gets the bytes."""
    with trio.fail_after(GUARD):
        left, right = await tcp_pair()
        async with left, right:
            with trio.move_on_after(0.05) as scope:
                await right.receive_some()  # nothing comes: parks, then is cancelled
            assert scope.cancelled_caught
            poller = right._poller
            if poller is not None:  # Linux
                assert _socket_stream._POLLER.get() is poller
                assert (right._fd != -1) == (waits == "poller")  # registered only then
                assert right._fd not in poller.readers
            await left.send_all(b"after")
            assert await right.receive_some() == b"after"
        if poller is not None:
            assert poller.streams == 0  # both closed


async def test_many_streams_share_one_poller_and_each_is_woken(waits: str) -> None:
    """Twenty parked readers on one poller are each woken by their own peer's bytes only."""
    with trio.fail_after(GUARD):
        pairs = [await tcp_pair() for _ in range(20)]
        got: dict[int, bytes] = {}

        async def read(index: int, stream: FastSocketStream) -> None:
            got[index] = await stream.receive_some()

        async with trio.open_nursery() as nursery:
            for index, (_left, right) in enumerate(pairs):
                nursery.start_soon(read, index, right)
            await trio.testing.wait_all_tasks_blocked()
            for index, (left, _right) in reversed(list(enumerate(pairs))):
                await left.send_all(b"%d" % index)
        assert got == {index: b"%d" % index for index in range(20)}
        pollers = {id(right._poller) for _left, right in pairs}
        assert len(pollers) == 1
        poller = pairs[0][1]._poller
        if poller is not None and waits == "poller":
            assert {right._fd for _left, right in pairs} <= set(range(3, 1 << 20))
        for left, right in pairs:
            await left.aclose()
            await right.aclose()


async def test_a_parked_writer_wakes_when_the_peer_reads() -> None:
    """send_all blocked on a full socket finishes once the peer drains it, byte for byte."""
    payload = bytes(range(256)) * 40_000  # ~10 MB: far beyond the socket buffers
    with trio.fail_after(GUARD):
        left, right = await tcp_pair()
        async with left, right, trio.open_nursery() as nursery:
            nursery.start_soon(left.send_all, payload)
            await trio.testing.wait_all_tasks_blocked()  # the writer is parked now
            received = bytearray()
            while len(received) < len(payload):
                received += await right.receive_some()
        assert received == payload


async def test_reads_ask_for_more_while_they_fill_and_64_kib_again_after() -> None:
    """receive_some() asks for 64 KiB, 124 KiB while each read comes back full (a bulk
    transfer: fewer calls per byte), 64 KiB again after a short read; nothing is lost."""
    default = _socket_stream.DEFAULT_RECEIVE_SIZE
    bulk = _socket_stream.BULK_RECEIVE_SIZE
    with trio.fail_after(GUARD):
        a, b = trio.socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        b.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4 << 20)
        left, right = FastSocketStream(a), FastSocketStream(b)
        async with left, right:
            payload = bytes(range(256)) * 4096  # 1 MiB
            sizes: list[int] = []
            async with trio.open_nursery() as nursery:
                nursery.start_soon(right.send_all, payload)
                await trio.testing.wait_all_tasks_blocked()
                received = bytearray()
                async for chunk in left:
                    sizes.append(len(chunk))
                    received += chunk
                    if len(received) >= len(payload):
                        break
            assert received == payload
            assert sizes[0] == default and max(sizes) == bulk  # it grew, no further
            assert (left.bytes_received, right.bytes_sent) == (len(payload), len(payload))
            await right.send_all(b"small")
            assert await left.receive_some() == b"small"
            assert left._read_size == default  # a short read shrinks it back
            await right.send_all(bytes(3 * default))
            assert len(await left.receive_some(10)) == 10  # an explicit size is kept
            assert len(await left.receive_some()) == default


async def test_the_fast_checkpoint_is_a_full_trio_checkpoint() -> None:
    """The one-frame checkpoint the stream uses is Trio's checkpoint, step for step."""
    checkpoint = _socket_stream.checkpoint
    assert checkpoint is not trio.lowlevel.checkpoint  # this Trio has the internals it reads
    assert _socket_stream._make_checkpoints()[3] is not _socket_stream._park_public  # likewise
    with trio.testing.assert_checkpoints():  # counted as a cancel point and a schedule point
        await checkpoint()
    with trio.CancelScope() as scope:  # a cancel point
        scope.cancel()
        await checkpoint()
        pytest.fail("not cancelled")  # pragma: no cover
    assert scope.cancelled_caught
    with trio.CancelScope() as scope:  # cancelled by a deadline that passed
        scope.deadline = trio.current_time() - 1
        await checkpoint()
        pytest.fail("not cancelled")  # pragma: no cover
    assert scope.cancelled_caught
    with trio.CancelScope(shield=True) as outer:  # a shield holds, as for Trio's
        outer.cancel()
        with trio.CancelScope(shield=True):
            await checkpoint()
    ran: list[int] = []

    async def other() -> None:
        for step in range(20):
            ran.append(step)
            await trio.lowlevel.checkpoint()

    async with trio.open_nursery() as nursery:  # a schedule point: the others run
        nursery.start_soon(other)
        for _ in range(5):
            await checkpoint()
        assert ran  # pragma: no branch
        nursery.cancel_scope.cancel()


@pytest.mark.parametrize("kind", PAIRS)
async def test_counts_and_sends_every_kind_of_bytes_object(kind: str) -> None:
    """bytes, bytearray and memoryviews (any format) are sent whole and counted in bytes."""
    with trio.fail_after(GUARD):
        left, right = await PAIRS[kind]()
        async with left, right:
            words = memoryview(bytearray(b"abcdefgh")).cast("I")  # 2 items, 8 bytes
            for data in (b"one", bytearray(b"two"), memoryview(b"three"), words, b""):
                await left.send_all(data)
            await left.send_eof()
            received = bytearray()
            async for chunk in right:
                received += chunk
            assert received == b"onetwothreeabcdefgh"
            assert left.bytes_sent == right.bytes_received == 19
            assert right.eof_received and not left.eof_received


@pytest.mark.parametrize("kind", PAIRS)
async def test_unread_on_socket_tells_bytes_from_end_of_stream(kind: str) -> None:
    """eof=False answers "would closing now reset the peer?": only unread bytes count."""
    unread = _socket_stream.unread_on_socket
    with trio.fail_after(GUARD):
        left, right = await PAIRS[kind]()
        async with left, right:
            assert not unread(right) and not unread(right, eof=False)
            await left.send_all(b"x")
            await trio.testing.wait_all_tasks_blocked()
            assert unread(right) and unread(right, eof=False)
            assert await right.receive_some() == b"x"
            await left.send_eof()
            with trio.fail_after(5):
                while not unread(right):  # the FIN is on its way
                    await trio.sleep(0.001)
            assert not unread(right, eof=False)  # end of stream waits: no reset on close
            assert await right.receive_some() == b""
            assert right.eof_received
            assert not unread(right, eof=False)  # known without a system call


async def test_close_is_aclose_without_a_checkpoint() -> None:
    """close() closes at once (the next call raises ClosedResourceError); harmless twice."""
    with trio.fail_after(GUARD):
        left, right = await tcp_pair()
        with trio.testing.assert_no_checkpoints():
            left.close()
            left.close()
        with pytest.raises(trio.ClosedResourceError):
            await left.receive_some()
        with pytest.raises(trio.ClosedResourceError):
            await left.send_all(b"x")
        assert await right.receive_some() == b""
        await right.aclose()


async def test_the_acceptor_takes_waiting_connections_in_order_then_waits() -> None:
    """A batch holds every connection already waiting, in arrival order; then it waits."""
    with trio.fail_after(GUARD):
        (listener,) = await trio.open_tcp_listeners(0, host="127.0.0.1")
        port = listener.socket.getsockname()[1]
        acceptor = _socket_stream.Acceptor(listener)
        clients = []
        for index in range(5):
            client = await trio.open_tcp_stream("127.0.0.1", port)
            await client.send_all(b"%d" % index)
            clients.append(client)
        await trio.sleep(0.05)  # every handshake done
        streams: list[trio.abc.Stream] = []
        while len(streams) < 5:
            streams += await acceptor.accept()
        assert all(isinstance(s, FastSocketStream) for s in streams)
        assert [await s.receive_some() for s in streams] == [b"0", b"1", b"2", b"3", b"4"]
        got: list[trio.abc.Stream] = []

        async def accept_one() -> None:
            got.extend(await acceptor.accept())

        async with trio.open_nursery() as nursery:
            nursery.start_soon(accept_one)
            await trio.testing.wait_all_tasks_blocked()
            assert got == []  # the queue is empty: it waits
            late = await trio.open_tcp_stream("127.0.0.1", port)
        assert len(got) == 1
        with trio.CancelScope() as scope:  # a cancelled call accepts nothing
            scope.cancel()
            await acceptor.accept()
        assert scope.cancelled_caught
        await late.send_all(b"late")
        assert await got[0].receive_some() == b"late"
        await listener.aclose()
        with pytest.raises(trio.ClosedResourceError):
            await acceptor.accept()
        for stream in [*streams, *got, *clients, late]:
            await stream.aclose()


async def test_the_acceptor_uses_any_other_listener_through_its_accept() -> None:
    """A listener that is not a trio.SocketListener is asked one connection at a time."""
    listener = trio_tcp.testing.MemoryListener()
    acceptor = _socket_stream.Acceptor(listener)
    with trio.fail_after(GUARD):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(listener.connect)
            (stream,) = await acceptor.accept()
        assert not isinstance(stream, FastSocketStream)


@pytest.mark.parametrize("kind", PAIRS)
async def test_receive_some_if_ready_gives_up_instead_of_waiting(kind: str) -> None:
    """None when nothing comes within the rounds before a wait; bytes or b"" otherwise."""
    with trio.fail_after(GUARD):
        left, right = await PAIRS[kind]()
        async with left, right:
            with trio.testing.assert_checkpoints():
                assert await right.receive_some_if_ready() is None
            assert right._poller is None  # it never waited
            await left.send_all(b"here")
            with trio.testing.assert_checkpoints():
                assert await right.receive_some_if_ready(2) == b"he"
            assert await right.receive_some_if_ready() == b"re"
            with trio.CancelScope() as scope:
                scope.cancel()
                await right.receive_some_if_ready()
            assert scope.cancelled_caught
            await left.send_eof()
            assert await right.receive_some_if_ready() == b""
