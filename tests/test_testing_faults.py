"""trio_tcp.testing fault wrappers: each one checked on the bytes it lets through."""

from __future__ import annotations

import random

import pytest
import trio
import trio.testing

from trio_tcp import Connection
from trio_tcp._cli import make_mode
from trio_tcp.testing import (
    DelayStream,
    EarlyEOFStream,
    FaultyStream,
    RechunkStream,
    ResetStream,
    StallStream,
    compose,
    rechunk,
    reset_after,
    serve_memory,
)

PAYLOAD = random.Random(11).randbytes(300)


async def _drain(stream: trio.abc.ReceiveStream) -> list[bytes]:
    chunks = []
    while chunk := await stream.receive_some():
        chunks.append(bytes(chunk))
    return chunks


async def test_rechunk_one_byte_preserves_every_byte() -> None:
    """Receive-side re-chunking to 1 byte returns each byte alone, all of them, in order."""
    with trio.fail_after(5):
        left, right = trio.testing.memory_stream_pair()
        await left.send_all(PAYLOAD)
        await left.send_eof()
        chunks = await _drain(RechunkStream(right, 1))
    assert [len(c) for c in chunks] == [1] * len(PAYLOAD)
    assert b"".join(chunks) == PAYLOAD


async def test_rechunk_random_sizes_are_reproducible_and_lossless() -> None:
    """The same seed gives the same cuts; the bytes come through exactly."""
    runs = []
    for _ in range(2):
        with trio.fail_after(5):
            left, right = trio.testing.memory_stream_pair()
            await left.send_all(PAYLOAD)
            await left.send_eof()
            runs.append(await _drain(RechunkStream(right, seed=3, max_size=9)))
    assert runs[0] == runs[1]
    assert b"".join(runs[0]) == PAYLOAD
    assert {len(c) for c in runs[0]} <= set(range(1, 10))
    assert len({len(c) for c in runs[0]}) > 3  # really random sizes, not one size


class _Recorder(FaultyStream):
    """Records the size of every send_all the layer above makes."""

    def __init__(self, transport_stream: trio.abc.Stream) -> None:
        super().__init__(transport_stream)
        self.sizes: list[int] = []

    async def send_all(self, data: bytes | bytearray | memoryview) -> None:
        self.sizes.append(len(data))
        await super().send_all(data)


async def test_rechunk_send_side_sends_pieces() -> None:
    """send_all through a fixed-size rechunker hands the transport pieces of that size."""
    with trio.fail_after(5):
        left, right = trio.testing.memory_stream_pair()
        recorder = _Recorder(left)
        await RechunkStream(recorder, 4).send_all(PAYLOAD[:10])
        assert recorder.sizes == [4, 4, 2]
        assert await right.receive_some() == PAYLOAD[:10]


async def test_reset_after_n_received_bytes_delivers_exactly_n() -> None:
    """A receive-side reset lets exactly N bytes through, then BrokenResourceError."""
    with trio.fail_after(5):
        left, right = trio.testing.memory_stream_pair()
        await left.send_all(PAYLOAD)
        faulty = ResetStream(right, 17)
        got = bytearray()
        with pytest.raises(trio.BrokenResourceError):
            while True:
                got += await faulty.receive_some()
        assert bytes(got) == PAYLOAD[:17]
        with pytest.raises(trio.BrokenResourceError):
            await faulty.send_all(b"x")  # a reset breaks both directions
        with pytest.raises(trio.BrokenResourceError):
            await left.send_all(b"the peer notices")


async def test_reset_after_n_sent_bytes_delivers_exactly_n() -> None:
    """A send-side reset sends exactly N bytes, raises, and the peer reads end of stream."""
    with trio.fail_after(5):
        left, right = trio.testing.memory_stream_pair()
        faulty = ResetStream(left, 5, direction="send")
        await faulty.send_all(PAYLOAD[:3])
        with pytest.raises(trio.BrokenResourceError):
            await faulty.send_all(PAYLOAD[3:10])
        assert b"".join(await _drain(right)) == PAYLOAD[:5]


async def test_early_eof_after_n_bytes() -> None:
    """EarlyEOFStream returns N bytes, then end of stream although more was sent."""
    with trio.fail_after(5):
        left, right = trio.testing.memory_stream_pair()
        await left.send_all(PAYLOAD)
        conn = Connection(EarlyEOFStream(right, 40))
        assert await conn.receive_exactly(40) == PAYLOAD[:40]
        assert await conn.receive_some() == b""


async def test_stall_blocks_after_n_bytes_until_cancelled(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """A stall passes N bytes, then the next receive waits until cancelled."""
    with trio.fail_after(1000):
        left, right = trio.testing.memory_stream_pair()
        await left.send_all(PAYLOAD)
        stalled = StallStream(right, 8)
        assert await stalled.receive_some() == PAYLOAD[:8]
        start = trio.current_time()
        with trio.move_on_after(100) as scope:
            await stalled.receive_some()
        assert scope.cancelled_caught
        assert trio.current_time() - start == pytest.approx(100)


async def test_delay_uses_trio_sleep(autojump_clock: trio.testing.MockClock) -> None:
    """Each delayed receive and send costs `seconds` of (mock) time and keeps the bytes."""
    with trio.fail_after(100):
        left, right = trio.testing.memory_stream_pair()
        slow = DelayStream(left, 2.5, receive=False)
        start = trio.current_time()
        await slow.send_all(b"ab")
        await slow.send_all(b"cd")
        assert trio.current_time() - start == pytest.approx(5.0)
        assert await DelayStream(right, 1.0).receive_some() == b"abcd"
        assert trio.current_time() - start == pytest.approx(6.0)


async def test_compose_applies_first_wrap_nearest_the_network() -> None:
    """compose(rechunk(1), reset_after(3)): three one-byte reads, then the reset."""
    with trio.fail_after(5):
        left, right = trio.testing.memory_stream_pair()
        await left.send_all(b"abcdef")
        stream = compose(rechunk(1), reset_after(3))(right)
        assert isinstance(stream, ResetStream)
        assert isinstance(stream.transport_stream, RechunkStream)
        assert [await stream.receive_some() for _ in range(3)] == [b"a", b"b", b"c"]
        with pytest.raises(trio.BrokenResourceError):
            await stream.receive_some()


async def test_server_side_reset_through_memory_server() -> None:
    """wrap= puts the fault under the handler: echo stops after 4 bytes, counted as a reset."""
    with trio.fail_after(5):
        async with trio.open_nursery() as nursery:
            server = await nursery.start(
                lambda task_status: serve_memory(
                    make_mode("echo"),
                    wrap=compose(rechunk(1), reset_after(4)),
                    task_status=task_status,
                )
            )
            async with await server.connect() as client:
                await client.send_all(b"0123456789")
                echoed = b"".join(await _drain(client))
            await server.aclose()
    assert echoed == b"0123"
    assert server.stats.reset == 1
    assert server.stats.failed == 0
