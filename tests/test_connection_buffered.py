"""Buffered reads on Connection: exact, until, lines, frames (h11 ``test_io.py`` style).

Every read runs on whole input, one byte at a time and in random chunks from a fixed seed, with
trailing data; then end of stream, limits, cancellation at many points, linear scanning,
hypothesis properties over random splits, and the stream states (busy, closed).
"""

from __future__ import annotations

import math
import random
from collections.abc import Awaitable, Callable, Sequence

import pytest
import trio
import trio.testing
from _chunking import SPLIT_IDS, SPLITS, CountingReceiveBuffer, Split, split_at
from hypothesis import given, settings
from hypothesis import strategies as st

from trio_tcp import (
    Connection,
    EndOfStream,
    FrameTooLargeError,
    IncompleteFrameError,
    LineTooLongError,
)
from trio_tcp.framing import LengthPrefixFramer, LineFramer, NetstringFramer

TIMEOUT = 10


class ChunkStream(trio.abc.Stream):
    """Delivers ``chunks`` one per ``receive_some``, then end of stream (or waits forever).

    With ``delay`` each chunk arrives that many (virtual) seconds after the previous read
    began, so reads can be cancelled while bytes trickle in. ``max_bytes`` is honoured by
    keeping the rest of a chunk for the next call.
    """

    def __init__(
        self, chunks: Sequence[bytes], *, delay: float = 0.0, then_hang: bool = False
    ) -> None:
        self.chunks = [c for c in chunks if c]
        self.delay = delay
        self.then_hang = then_hang
        self.receive_calls = 0
        self.closed = False

    async def receive_some(self, max_bytes: int | None = None) -> bytes:
        """The next chunk (at most ``max_bytes`` of it)."""
        self.receive_calls += 1
        if self.delay:
            await trio.sleep(self.delay)
        else:
            await trio.lowlevel.checkpoint()
        if not self.chunks:
            if self.then_hang:
                await trio.sleep_forever()
            return b""
        chunk = self.chunks.pop(0)
        if max_bytes is not None and len(chunk) > max_bytes:
            chunk, rest = chunk[:max_bytes], chunk[max_bytes:]
            self.chunks.insert(0, rest)
        return chunk

    async def send_all(self, data: bytes | bytearray | memoryview) -> None:
        """Sending is not used by these tests."""
        raise NotImplementedError

    async def wait_send_all_might_not_block(self) -> None:
        """Sending is not used by these tests."""
        raise NotImplementedError

    async def aclose(self) -> None:
        """Mark closed."""
        self.closed = True
        await trio.lowlevel.checkpoint()


def conn_over(chunks: Sequence[bytes], **kwargs: float | bool) -> Connection:
    """A Connection whose peer sends ``chunks`` and then ends the stream."""
    return Connection(ChunkStream(chunks, **kwargs))  # type: ignore[arg-type]


async def read_rest(conn: Connection) -> bytes:
    """Everything left: buffered bytes, then the network, until end of stream."""
    out = bytearray()
    while chunk := await conn.receive_some():
        out += chunk
    return bytes(out)


splits = pytest.mark.parametrize("split", SPLITS, ids=SPLIT_IDS)

# ---------------------------------------------------------------------- each read, each split


@splits
async def test_receive_exactly_on_every_split(split: Split) -> None:
    """receive_exactly returns exactly the asked sizes, in order, and leaves trailing bytes."""
    data = bytes(range(40)) + b"TRAILING"
    conn = conn_over(split(data))
    with trio.fail_after(TIMEOUT):
        got = [await conn.receive_exactly(n) for n in (3, 0, 1, 16, 20)]
        assert got == [data[0:3], b"", data[3:4], data[4:20], data[20:40]]
        assert await read_rest(conn) == b"TRAILING"


@splits
async def test_receive_until_on_every_split(split: Split) -> None:
    """receive_until splits on a multi-byte delimiter even when it straddles chunks."""
    data = b"GET / HTTP/1.1\r\nHost: x\r\n\r\n\r\n\r\nbody-after"
    conn = conn_over(split(data))
    with trio.fail_after(TIMEOUT):
        assert await conn.receive_until(b"\r\n\r\n") == b"GET / HTTP/1.1\r\nHost: x"
        assert await conn.receive_until(b"\r\n\r\n") == b""
        assert await read_rest(conn) == b"body-after"


@splits
async def test_receive_line_on_every_split(split: Split) -> None:
    """receive_line accepts \\n and \\r\\n, keeps empty lines, and leaves a partial tail."""
    data = b"one\ntwo\r\n\n\r\nthree\r\rfour\npartial"
    conn = conn_over(split(data))
    with trio.fail_after(TIMEOUT):
        got = [await conn.receive_line() for _ in range(5)]
        assert got == [b"one", b"two", b"", b"", b"three\r\rfour"]
        assert await read_rest(conn) == b"partial"


@splits
async def test_receive_line_keep_ends_and_other_delimiter(split: Split) -> None:
    """keep_ends returns the ending as it arrived; another delimiter is stripped exactly."""
    data = b"a\r\nb\nc\0d\0tail"
    conn = conn_over(split(data))
    with trio.fail_after(TIMEOUT):
        assert await conn.receive_line(keep_ends=True) == b"a\r\n"
        assert await conn.receive_line(keep_ends=True) == b"b\n"
        assert await conn.receive_line(delimiter=b"\0") == b"c"
        assert await conn.receive_line(delimiter=b"\0", keep_ends=True) == b"d\0"
        assert await read_rest(conn) == b"tail"


@splits
async def test_lines_iterates_until_clean_end(split: Split) -> None:
    """lines() yields every line and simply stops at a clean end of stream."""
    lines = [f"line {i} {'x' * (i % 13)}".encode() for i in range(50)]
    conn = conn_over(split(b"".join(line + b"\r\n" for line in lines)))
    with trio.fail_after(TIMEOUT):
        assert [line async for line in conn.lines()] == lines


FRAMERS = [
    pytest.param(lambda: LineFramer(), id="line"),
    pytest.param(lambda: LengthPrefixFramer(1), id="len1"),
    pytest.param(lambda: LengthPrefixFramer(2), id="len2"),
    pytest.param(lambda: LengthPrefixFramer(4), id="len4"),
    pytest.param(lambda: LengthPrefixFramer(8), id="len8"),
    pytest.param(lambda: NetstringFramer(), id="netstring"),
]
FRAMES = [b"", b"hello", b"x" * 200, b"with space", b"0"]


@splits
@pytest.mark.parametrize("make_framer", FRAMERS)
async def test_frames_on_every_split(
    split: Split, make_framer: Callable[[], LineFramer | LengthPrefixFramer | NetstringFramer]
) -> None:
    """frames() gives back what encode() wrote, for every framer, then raw trailing bytes."""
    framer = make_framer()
    wire = b"".join(framer.encode(f) for f in FRAMES)
    conn = conn_over(split(wire + framer.encode(b"last") + b"\x00"))
    with trio.fail_after(TIMEOUT):
        got = [await conn.receive_frame(framer) for _ in FRAMES]
        assert got == FRAMES
        assert await conn.receive_frame(framer) == b"last"
        assert await read_rest(conn) == b"\x00"


async def test_send_frame_round_trips_over_a_memory_stream_pair() -> None:
    """send_frame on one end and frames() on the other carry the frames unchanged."""
    left, right = trio.testing.memory_stream_pair()
    sender, receiver = Connection(left), Connection(right)
    framer = LengthPrefixFramer(2)
    with trio.fail_after(TIMEOUT):
        for frame in FRAMES:
            await sender.send_frame(framer, frame)
        await sender.send_eof()
        assert [f async for f in receiver.frames(framer)] == FRAMES


@pytest.mark.parametrize("max_bytes", [1, 2, 3, 7, 64])
async def test_memory_stream_pump_chunking(max_bytes: int) -> None:
    """Over trio's memory_stream_pump(max_bytes=...) every line arrives whole and in order."""
    send = trio.testing.MemorySendStream()
    receive = trio.testing.MemoryReceiveStream()
    pumps = 0

    async def pump_before_each_receive() -> None:
        nonlocal pumps
        pumps += 1
        trio.testing.memory_stream_pump(send, receive, max_bytes=max_bytes)

    receive.receive_some_hook = pump_before_each_receive
    conn = Connection(trio.StapledStream(trio.testing.MemorySendStream(), receive))
    lines = [b"alpha", b"", b"gamma" * 9, b"delta"]
    with trio.fail_after(TIMEOUT):
        for line in lines:
            await send.send_all(line + b"\n")
        await send.aclose()
        assert [line async for line in conn.lines()] == lines
    total = sum(len(line) + 1 for line in lines)
    assert pumps >= math.ceil(total / max_bytes)  # the bytes really came in small pieces


# ---------------------------------------------------------------------- mixing raw and buffered


async def test_receive_some_returns_buffered_bytes_first() -> None:
    """After a buffered read, receive_some hands out the leftover bytes before new ones."""
    conn = conn_over([b"head\nleftover bytes", b" then network"])
    with trio.fail_after(TIMEOUT):
        assert await conn.receive_line() == b"head"
        assert conn.buffered == len(b"leftover bytes")
        assert await conn.receive_some(4) == b"left"
        assert await conn.receive_some() == b"over bytes"
        assert conn.buffered == 0
        assert await conn.receive_some() == b" then network"
        assert await conn.receive_some() == b""


async def test_raw_then_buffered_then_raw() -> None:
    """Raw reads before, between and after buffered reads see one continuous byte stream."""
    data = b"RAW" + b"0123" + b"x\n" + b"tail"
    conn = conn_over(random_cuts(data, seed=7))
    with trio.fail_after(TIMEOUT):
        raw = await conn.receive_some(2)
        rest = data[len(raw) :]
        exact = await conn.receive_exactly(len(rest) - len(b"x\ntail"))
        assert raw + exact == b"RAW0123"
        assert await conn.receive_line() == b"x"
        assert await read_rest(conn) == b"tail"


def random_cuts(data: bytes, *, seed: int) -> list[bytes]:
    """``data`` cut at random offsets drawn from ``seed``."""
    rng = random.Random(seed)
    return split_at(data, [rng.randrange(len(data)) for _ in range(len(data) // 2)])


# ---------------------------------------------------------------------- end of stream


async def test_end_of_stream_between_reads_raises_end_of_stream() -> None:
    """A clean end before a read's first byte is EndOfStream, for every buffered read."""
    reads: list[Callable[[Connection], Awaitable[object]]] = [
        lambda c: c.receive_exactly(3),
        lambda c: c.receive_until(b"--"),
        lambda c: c.receive_line(),
        lambda c: c.receive_frame(LengthPrefixFramer()),
    ]
    with trio.fail_after(TIMEOUT):
        for read in reads:
            conn = conn_over([b"ab\n"])
            assert await conn.receive_line() == b"ab"
            with pytest.raises(EndOfStream):
                await read(conn)
            with pytest.raises(EndOfStream):  # and again: end of stream stays the end
                await read(conn)


@splits
async def test_incomplete_reads_carry_exactly_the_partial_bytes(split: Split) -> None:
    """End of stream inside a read raises IncompleteFrameError with exactly the bytes that came."""
    cases: list[tuple[Callable[[Connection], Awaitable[object]], int | None]] = [
        (lambda c: c.receive_exactly(100), 100),
        (lambda c: c.receive_until(b"\r\n"), None),
        (lambda c: c.receive_line(), None),
        (lambda c: c.receive_frame(LineFramer()), None),
    ]
    with trio.fail_after(TIMEOUT):
        for read, expected in cases:
            conn = conn_over(split(b"done\npartial \r"))
            assert await conn.receive_line() == b"done"
            with pytest.raises(IncompleteFrameError) as info:
                await read(conn)
            assert info.value.partial == b"partial \r"
            assert info.value.expected == expected
            assert conn.buffered == 0
            with pytest.raises(EndOfStream):
                await conn.receive_line()


async def test_incomplete_length_prefixed_frame_carries_header_and_body() -> None:
    """A length-prefixed frame cut short reports its partial bytes and its full size."""
    framer = LengthPrefixFramer(2)
    conn = conn_over(bytewise_of(framer.encode(b"complete") + b"\x00\x05abc"))
    with trio.fail_after(TIMEOUT):
        assert await conn.receive_frame(framer) == b"complete"
        with pytest.raises(IncompleteFrameError) as info:
            await conn.receive_frame(framer)
        assert info.value.partial == b"\x00\x05abc"


def bytewise_of(data: bytes) -> list[bytes]:
    """One byte per chunk."""
    return [data[i : i + 1] for i in range(len(data))]


async def test_lines_raise_incomplete_frame_at_a_partial_end() -> None:
    """lines() yields the complete lines, then raises IncompleteFrameError for the tail."""
    conn = conn_over([b"a\nb\nc"])
    got = []
    with trio.fail_after(TIMEOUT), pytest.raises(IncompleteFrameError) as info:
        async for line in conn.lines():
            got.append(line)
    assert got == [b"a", b"b"]
    assert info.value.partial == b"c"


# ---------------------------------------------------------------------- limits


async def test_max_length_counts_the_line_without_its_ending() -> None:
    """max_length bytes are accepted with \\n or \\r\\n; one more byte is LineTooLongError."""
    conn = conn_over([b"12345\n12345\r\n123456\nafter\n"])
    with trio.fail_after(TIMEOUT):
        assert await conn.receive_line(max_length=5) == b"12345"
        assert await conn.receive_line(max_length=5) == b"12345"
        with pytest.raises(LineTooLongError) as info:
            await conn.receive_line(max_length=5)
        assert (info.value.limit, info.value.size) == (5, 6)
        # The defined state after the error: nothing was consumed.
        assert await conn.receive_line(max_length=6) == b"123456"
        assert await conn.receive_line(max_length=5) == b"after"


async def test_line_framer_and_receive_line_agree_on_the_limit() -> None:
    """receive_line(max_length=n) accepts exactly what LineFramer(max_line_length=n) does."""
    for line in [b"abcd", b"abcd\r", b"abcde", b"abc\r\r"]:
        for ending in [b"\n", b"\r\n"]:
            wire = line + ending
            framer_ok: bool
            try:
                LineFramer(max_line_length=4).feed(wire)
                framer_ok = True
            except LineTooLongError:
                framer_ok = False
            conn = conn_over([wire])
            with trio.fail_after(TIMEOUT):
                try:
                    await conn.receive_line(max_length=4)
                    conn_ok = True
                except LineTooLongError:
                    conn_ok = False
            assert conn_ok == framer_ok, wire


async def test_over_long_line_fails_before_the_end_arrives() -> None:
    """Without a delimiter, the error comes once the limit is exceeded, not at end of stream."""
    stream = ChunkStream([b"x" * 10, b"y" * 10], then_hang=True)
    conn = Connection(stream)
    with trio.fail_after(TIMEOUT):
        with pytest.raises(LineTooLongError) as info:
            await conn.receive_line(max_length=12)
        assert info.value.limit == 12
        assert info.value.size >= 13
        # Every byte is still readable after the error.
        assert await conn.receive_some() == b"x" * 10 + b"y" * 10


async def test_receive_until_limit_leaves_bytes_readable() -> None:
    """FrameTooLargeError from receive_until leaves the buffer as it was."""
    conn = conn_over([b"abcdef--", b"gh--"])
    with trio.fail_after(TIMEOUT):
        with pytest.raises(FrameTooLargeError) as info:
            await conn.receive_until(b"--", max_bytes=5)
        assert not isinstance(info.value, LineTooLongError)
        assert (info.value.limit, info.value.size) == (5, 6)
        assert await conn.receive_until(b"--", max_bytes=6) == b"abcdef"
        assert await conn.receive_until(b"--", max_bytes=2) == b"gh"


async def test_frame_limit_leaves_bytes_readable() -> None:
    """A length header over max_frame_size raises at once and consumes nothing."""
    big = LengthPrefixFramer(2).encode(b"z" * 50)
    conn = conn_over([big], then_hang=True)
    with trio.fail_after(TIMEOUT):
        with pytest.raises(FrameTooLargeError):
            await conn.receive_frame(LengthPrefixFramer(2, max_frame_size=10))
        assert await conn.receive_frame(LengthPrefixFramer(2)) == b"z" * 50


async def test_bad_arguments_are_value_errors() -> None:
    """Nonsense arguments raise ValueError before anything is read."""
    conn = conn_over([b"abc\n"])
    with trio.fail_after(TIMEOUT):
        with pytest.raises(ValueError):
            await conn.receive_exactly(-1)
        with pytest.raises(ValueError):
            await conn.receive_until(b"")
        with pytest.raises(ValueError):
            await conn.receive_line(delimiter=b"")
        with pytest.raises(ValueError):
            await conn.receive_line(max_length=-1)
        assert await conn.receive_line() == b"abc"


# ---------------------------------------------------------------------- cancellation

Read = Callable[[Connection], Awaitable[bytes]]
LINE_DATA = b"".join(f"line {i:03d} {'.' * (i % 7)}\r\n".encode() for i in range(40))
LEN_FRAMER = LengthPrefixFramer(2)
FRAME_LIST = [bytes([i]) * (i % 9) for i in range(30)]

CANCEL_CASES = [
    pytest.param(lambda c: c.receive_line(), LINE_DATA, LINE_DATA.splitlines(), id="line"),
    pytest.param(lambda c: c.receive_until(b"\r\n"), LINE_DATA, LINE_DATA.splitlines(), id="until"),
    pytest.param(
        lambda c: c.receive_exactly(7),
        LINE_DATA[: len(LINE_DATA) // 7 * 7],
        [LINE_DATA[i : i + 7] for i in range(0, len(LINE_DATA) // 7 * 7, 7)],
        id="exactly",
    ),
    pytest.param(
        lambda c: c.receive_frame(LEN_FRAMER),
        b"".join(LEN_FRAMER.encode(f) for f in FRAME_LIST),
        FRAME_LIST,
        id="frame",
    ),
]


@pytest.mark.parametrize(("read", "data", "expected"), CANCEL_CASES)
@pytest.mark.parametrize("timeout", [0.0, 0.5, 1.5, 2.5, 3.5])
async def test_cancelled_reads_lose_nothing(
    read: Read,
    data: bytes,
    expected: list[bytes],
    timeout: float,
    autojump_clock: trio.testing.MockClock,
) -> None:
    """Reads cancelled at many points while bytes trickle in leave every byte readable."""
    conn = conn_over(random_cuts(data, seed=int(timeout * 10) + 1), delay=1.0)
    got: list[bytes] = []
    cancelled = 0
    with trio.fail_after(100_000):
        while len(got) < len(expected):
            with trio.move_on_after(timeout) as scope:
                got.append(await read(conn))
            cancelled += scope.cancelled_caught
            # Every so often read without a deadline, so the test always makes progress.
            if scope.cancelled_caught and cancelled % 3 == 0:
                got.append(await read(conn))
        assert got == expected
        with pytest.raises(EndOfStream):
            await read(conn)
    assert cancelled > 0


@pytest.mark.parametrize(("read", "data", "expected"), CANCEL_CASES)
async def test_cancelled_read_of_an_already_buffered_item_keeps_it(
    read: Read, data: bytes, expected: list[bytes]
) -> None:
    """A read cancelled before it runs takes nothing, even when its answer is buffered."""
    conn = conn_over([data])
    with trio.fail_after(TIMEOUT):
        assert await read(conn) == expected[0]
        assert conn.buffered > 0
        before = conn.buffered
        with trio.CancelScope() as scope:
            scope.cancel()
            await read(conn)
        assert scope.cancelled_caught
        assert conn.buffered == before
        assert await read(conn) == expected[1]


# ---------------------------------------------------------------------- linear scanning


class ByteSource(trio.abc.Stream):
    """Hands out ``data`` one byte per receive_some (no checkpoint: this counts work only)."""

    def __init__(self, data: bytes) -> None:
        self.view = memoryview(data)
        self.position = 0

    async def receive_some(self, max_bytes: int | None = None) -> bytes:
        """The next byte, or b"" at the end."""
        position = self.position
        self.position = position + 1
        return bytes(self.view[position : position + 1])

    async def send_all(self, data: bytes | bytearray | memoryview) -> None:
        """Not used."""
        raise NotImplementedError

    async def wait_send_all_might_not_block(self) -> None:
        """Not used."""
        raise NotImplementedError

    async def aclose(self) -> None:
        """Nothing to close."""


async def scan_work(size: int) -> int:
    """Work (bytes scanned + copied) to read one ``size``-byte line delivered bytewise."""
    conn = Connection(ByteSource(b"a" * size + b"\n"), receive_size=1)
    buffer = CountingReceiveBuffer()
    conn._buffer = buffer
    line = await conn.receive_line(max_length=size)
    assert len(line) == size
    return buffer.counter.work


async def test_a_1mib_line_byte_by_byte_is_scanned_in_linear_time() -> None:
    """A 1 MiB line arriving one byte at a time costs O(n) scanning and copying, not O(n²)."""
    size = 1024 * 1024
    with trio.fail_after(60):
        work = await scan_work(size)
    # Each byte is scanned about once and the line copied once; rescanning from the start
    # after every byte would be ~size**2 / 2 = 5e11.
    assert size <= work <= 3 * size


# ---------------------------------------------------------------------- hypothesis

line_lists = st.lists(
    st.binary(max_size=30).map(lambda b: b.replace(b"\n", b"").rstrip(b"\r")), max_size=20
)


@settings(max_examples=150, deadline=None)
@given(lines=line_lists, cuts=st.lists(st.integers(0, 800), max_size=40))
def test_property_lines_survive_any_split(lines: list[bytes], cuts: list[int]) -> None:
    """For any lines and any split of their bytes, lines() gives the lines back."""
    data = b"".join(line + b"\n" for line in lines)

    async def main() -> list[bytes]:
        conn = conn_over(split_at(data, cuts))
        with trio.fail_after(TIMEOUT):
            return [line async for line in conn.lines()]

    assert trio.run(main) == lines


@settings(max_examples=150, deadline=None)
@given(
    frames=st.lists(st.binary(max_size=300), max_size=12),
    cuts=st.lists(st.integers(0, 4000), max_size=40),
    header=st.sampled_from([2, 4, 8]),
)
def test_property_frames_survive_any_split(
    frames: list[bytes], cuts: list[int], header: int
) -> None:
    """For any frames and any split, receive_frame gives the frames back."""
    framer = LengthPrefixFramer(header)
    data = b"".join(framer.encode(f) for f in frames)

    async def main() -> list[bytes]:
        conn = conn_over(split_at(data, cuts))
        with trio.fail_after(TIMEOUT):
            return [f async for f in conn.frames(framer)]

    assert trio.run(main) == frames


@settings(max_examples=150, deadline=None)
@given(data=st.binary(max_size=200), cuts=st.lists(st.integers(0, 200), max_size=20))
def test_property_any_bytes_end_in_lines_or_a_named_error(data: bytes, cuts: list[int]) -> None:
    """For any bytes, reading lines ends cleanly or with a named error, losing no byte."""

    async def main() -> bytes:
        conn = conn_over(split_at(data, cuts))
        out = bytearray()
        with trio.fail_after(TIMEOUT):
            while True:
                try:
                    out += await conn.receive_line(max_length=16, keep_ends=True)
                except EndOfStream:
                    return bytes(out)
                except IncompleteFrameError as exc:
                    return bytes(out) + exc.partial
                except LineTooLongError:
                    return bytes(out) + await read_rest(conn)

    assert trio.run(main) == data


# ---------------------------------------------------------------------- stream states


def all_reads(conn: Connection) -> list[Callable[[], Awaitable[object]]]:
    """One call of every read of ``conn``, raw and buffered."""
    return [
        conn.receive_line,
        conn.receive_some,
        lambda: conn.receive_exactly(1),
        lambda: conn.receive_until(b"x"),
        lambda: conn.receive_frame(LineFramer()),
    ]


async def test_two_readers_at_once_is_busy() -> None:
    """A second task reading while the first waits gets BusyResourceError; the first still works."""
    send, receive = trio.testing.memory_stream_pair()
    conn = Connection(receive)
    with trio.fail_after(TIMEOUT):
        async with trio.open_nursery() as nursery:
            result: list[bytes] = []

            async def first() -> None:
                result.append(await conn.receive_line())

            nursery.start_soon(first)
            await trio.testing.wait_all_tasks_blocked()
            for second in all_reads(conn):
                with pytest.raises(trio.BusyResourceError):
                    await second()
            await send.send_all(b"first\n")
        assert result == [b"first"]


async def test_reads_after_aclose_raise_closed_resource_error() -> None:
    """Every read on a closed connection raises trio.ClosedResourceError."""
    conn = conn_over([b"buffered\nmore"])
    with trio.fail_after(TIMEOUT):
        assert await conn.receive_line() == b"buffered"
        await conn.aclose()
        for read in all_reads(conn):
            with pytest.raises(trio.ClosedResourceError):
                await read()


# ---------------------------------------------------------------------- an unterminated last line


@splits
async def test_allow_partial_returns_the_unterminated_last_line(split: Split) -> None:
    """receive_line(allow_partial=True) returns the tail without an ending, then EndOfStream."""
    conn = conn_over(split(b"one\r\ntwo\nthr\ree"))
    with trio.fail_after(TIMEOUT):
        got = [await conn.receive_line(allow_partial=True) for _ in range(3)]
        with pytest.raises(EndOfStream):
            await conn.receive_line(allow_partial=True)
    assert got == [b"one", b"two", b"thr\ree"]  # a lone \r inside the tail is data


@splits
async def test_lines_allow_partial_with_keep_ends_tells_the_tail_apart(split: Split) -> None:
    """lines(allow_partial=True, keep_ends=True): the last line is the one with no ending."""
    conn = conn_over(split(b"a\nb\r\ntail"))
    with trio.fail_after(TIMEOUT):
        got = [line async for line in conn.lines(allow_partial=True, keep_ends=True)]
    assert got == [b"a\n", b"b\r\n", b"tail"]


@splits
async def test_allow_partial_changes_nothing_for_terminated_input(split: Split) -> None:
    """With a final line ending there is no partial line: both settings read the same lines."""
    data = b"x\n" * 5 + b"last\n"
    with trio.fail_after(TIMEOUT):
        strict = [line async for line in conn_over(split(data)).lines()]
        lenient = [line async for line in conn_over(split(data)).lines(allow_partial=True)]
    assert strict == lenient == [b"x"] * 5 + [b"last"]


async def test_allow_partial_still_enforces_the_line_limit() -> None:
    """An over-long tail is LineTooLongError, not a partial line."""
    conn = conn_over([b"0123456789abc"])
    with trio.fail_after(TIMEOUT), pytest.raises(LineTooLongError):
        await conn.receive_line(max_length=10, allow_partial=True)
