"""LengthPrefixFramer (trio_tcp/framing/_length.py)."""

from __future__ import annotations

import pytest
from _chunking import (
    SPLIT_IDS,
    SPLITS,
    CountingReceiveBuffer,
    Split,
    bytewise,
    decode_outcome,
    feed_chunks,
    parse_chunks,
    split_at,
)
from hypothesis import given
from hypothesis import strategies as st

from trio_tcp.framing import (
    DEFAULT_MAX_FRAME_SIZE,
    FrameTooLargeError,
    IncompleteFrameError,
    LengthPrefixFramer,
    LocalProtocolError,
)

FRAMES = [b"hello", b"", b"\x00\x00\x00\x05", b"x" * 300]


@pytest.mark.parametrize(
    ("header_size", "wire"),
    [
        (1, b"\x02hi"),
        (2, b"\x00\x02hi"),
        (4, b"\x00\x00\x00\x02hi"),
        (8, b"\x00\x00\x00\x00\x00\x00\x00\x02hi"),
    ],
)
def test_encode_writes_a_big_endian_header(header_size: int, wire: bytes) -> None:
    """encode puts the length before the frame, big-endian, in header_size bytes."""
    assert LengthPrefixFramer(header_size).encode(b"hi") == wire
    assert LengthPrefixFramer(header_size).feed(wire) == [b"hi"]


def test_header_is_unsigned_and_big_endian() -> None:
    """A 2-byte header 0x0102 announces 258 bytes."""
    assert LengthPrefixFramer(2).encode(b"x" * 258)[:2] == b"\x01\x02"


@pytest.mark.parametrize("split", SPLITS, ids=SPLIT_IDS)
@pytest.mark.parametrize("header_size", [2, 4, 8])
def test_frames_come_back_in_any_split(split: Split, header_size: int) -> None:
    """Several frames, an empty one included, decode in any chunking."""
    framer = LengthPrefixFramer(header_size)
    wire = b"".join(map(framer.encode, FRAMES))
    assert feed_chunks(LengthPrefixFramer(header_size), split(wire)) == FRAMES


@pytest.mark.parametrize("split", SPLITS, ids=SPLIT_IDS)
@pytest.mark.parametrize("trailing", [b"\x00", b"\x00\x00\x00\x09abc"])
def test_trailing_partial_frame_stays_in_the_buffer(split: Split, trailing: bytes) -> None:
    """parse leaves a partial header or body in the buffer, untouched."""
    wire = b"".join(map(LengthPrefixFramer().encode, FRAMES)) + trailing
    frames, buffer = parse_chunks(LengthPrefixFramer(), split(wire), eof=False)
    assert frames == FRAMES
    assert bytes(buffer) == trailing


@pytest.mark.parametrize("split", SPLITS, ids=SPLIT_IDS)
def test_end_of_stream_inside_the_header(split: Split) -> None:
    """End of stream mid-header raises IncompleteFrameError with the header bytes."""
    with pytest.raises(IncompleteFrameError) as info:
        feed_chunks(LengthPrefixFramer(), split(b"\x00\x00\x00\x01a\x00\x00"))
    assert info.value.partial == b"\x00\x00"
    assert info.value.expected is None
    assert "4-byte header" in str(info.value)


@pytest.mark.parametrize("split", SPLITS, ids=SPLIT_IDS)
def test_end_of_stream_inside_the_body(split: Split) -> None:
    """End of stream mid-body raises IncompleteFrameError with header and body so far."""
    framer = LengthPrefixFramer()
    with pytest.raises(IncompleteFrameError) as info:
        feed_chunks(framer, split(b"\x00\x00\x00\x05hel"))
    assert info.value.partial == b"\x00\x00\x00\x05hel"
    assert info.value.expected == 9
    assert not framer.buffer


# --- limits ------------------------------------------------------------------------------


@pytest.mark.parametrize("split", SPLITS, ids=SPLIT_IDS)
def test_frame_exactly_at_the_limit_is_accepted(split: Split) -> None:
    """A frame of max_frame_size bytes decodes and encodes."""
    framer = LengthPrefixFramer(2, max_frame_size=10)
    wire = framer.encode(b"0123456789")
    assert wire == b"\x00\x0a0123456789"
    assert feed_chunks(LengthPrefixFramer(2, max_frame_size=10), split(wire)) == [b"0123456789"]


@pytest.mark.parametrize("split", SPLITS, ids=SPLIT_IDS)
def test_frame_one_past_the_limit_fails_on_the_header_alone(split: Split) -> None:
    """A header announcing max_frame_size + 1 raises FrameTooLargeError before any body."""
    framer = LengthPrefixFramer(2, max_frame_size=10)
    with pytest.raises(FrameTooLargeError) as info:
        feed_chunks(framer, split(b"\x00\x0b"), eof=False)
    assert (info.value.limit, info.value.size) == (10, 11)
    assert "max_frame_size=10" in str(info.value)
    assert "11" in str(info.value)


def test_huge_announced_length_fails_without_buffering() -> None:
    """A 2**64 - 1 byte announcement fails as soon as its 8th header byte arrives."""
    framer = LengthPrefixFramer(8)
    for chunk in bytewise(b"\xff" * 7):
        assert framer.feed(chunk) == []
    with pytest.raises(FrameTooLargeError) as info:
        framer.feed(b"\xff")
    assert info.value.size == 2**64 - 1


def test_too_large_header_leaves_the_buffer_unchanged() -> None:
    """parse raising FrameTooLargeError removes nothing from the buffer."""
    frames, buffer = parse_chunks(LengthPrefixFramer(1, max_frame_size=3), [b"\x01a"], eof=False)
    buffer.feed(b"\x04abcd")
    with pytest.raises(FrameTooLargeError):
        LengthPrefixFramer(1, max_frame_size=3).parse(buffer)
    assert frames == [b"a"]
    assert bytes(buffer) == b"\x04abcd"


def test_default_limit_is_one_mebibyte() -> None:
    """The default max_frame_size is 1 MiB (websockets' max_size) and the header 4 bytes."""
    assert DEFAULT_MAX_FRAME_SIZE == 2**20
    framer = LengthPrefixFramer()
    assert (framer.header_size, framer.max_frame_size) == (4, DEFAULT_MAX_FRAME_SIZE)
    with pytest.raises(FrameTooLargeError):
        framer.feed((2**20 + 1).to_bytes(4, "big"))


@pytest.mark.parametrize("header_size", [0, 3, 5, 16, -4, True])
def test_other_header_sizes_are_a_value_error(header_size: int) -> None:
    """Only 1, 2, 4 and 8 byte headers exist."""
    with pytest.raises(ValueError, match="1, 2, 4 or 8"):
        LengthPrefixFramer(header_size)


def test_negative_limit_is_a_value_error() -> None:
    """max_frame_size must not be negative."""
    with pytest.raises(ValueError, match="max_frame_size"):
        LengthPrefixFramer(max_frame_size=-1)


@pytest.mark.parametrize(
    ("framer", "frame", "message"),
    [
        (LengthPrefixFramer(max_frame_size=3), b"abcd", "max_frame_size=3"),
        (LengthPrefixFramer(1), b"x" * 256, "1-byte header"),
        (LengthPrefixFramer(), "text", "bytes, not str"),
        (LengthPrefixFramer(), None, "bytes, not NoneType"),
    ],
)
def test_encode_rejects_what_cannot_be_sent(
    framer: LengthPrefixFramer, frame: bytes, message: str
) -> None:
    """encode raises LocalProtocolError for a frame over the limit, the header, or not bytes."""
    with pytest.raises(LocalProtocolError, match=message):
        framer.encode(frame)


def test_encode_takes_the_largest_frame_the_header_can_express() -> None:
    """A 1-byte header carries up to 255 bytes."""
    assert LengthPrefixFramer(1).encode(b"x" * 255)[:1] == b"\xff"


def test_encode_accepts_bytes_like_frames() -> None:
    """bytearray and memoryview frames encode like bytes."""
    framer = LengthPrefixFramer(1)
    assert framer.encode(bytearray(b"ab")) == framer.encode(memoryview(b"ab")) == b"\x02ab"


# --- properties --------------------------------------------------------------------------


@given(
    frames=st.lists(st.binary(max_size=40)),
    header_size=st.sampled_from([1, 2, 4, 8]),
    data=st.data(),
)
def test_any_frames_in_any_split_round_trip(
    frames: list[bytes], header_size: int, data: st.DataObject
) -> None:
    """Encoded frames come back unchanged however the stream is split."""
    wire = b"".join(map(LengthPrefixFramer(header_size).encode, frames))
    cuts = data.draw(st.lists(st.integers(0, len(wire))))
    assert feed_chunks(LengthPrefixFramer(header_size), split_at(wire, cuts)) == frames


@given(wire=st.binary(max_size=60), cuts=st.lists(st.integers(0, 60)))
def test_any_bytes_give_frames_or_a_named_error(wire: bytes, cuts: list[int]) -> None:
    """Any input yields frames or FrameTooLargeError/IncompleteFrameError, the same per split."""

    def make() -> LengthPrefixFramer:
        return LengthPrefixFramer(1, max_frame_size=8)

    frames, error = decode_outcome(make, split_at(wire, cuts))
    assert error in (None, FrameTooLargeError, IncompleteFrameError)
    assert (frames, error) == decode_outcome(make, [wire] if wire else [])
    if error is None:
        assert b"".join(map(make().encode, frames)) == wire


# --- linear time -------------------------------------------------------------------------


def test_parse_is_linear_when_a_large_frame_arrives_bytewise() -> None:
    """A 1 MiB frame fed a byte at a time costs O(n) work in all (no rescans, no copies)."""
    size = 2**20
    framer = LengthPrefixFramer()
    buffer = CountingReceiveBuffer()
    wire = framer.encode(b"y" * size)
    for i in range(len(wire) - 1):
        buffer.feed(wire[i : i + 1])
        assert framer.parse(buffer) is None
    buffer.feed(wire[-1:])
    assert framer.parse(buffer) == b"y" * size
    # A 4-byte header peek per call, then one copy of the body.
    assert buffer.counter.work <= 4 * len(wire) + len(wire)
