"""NetstringFramer (trio_tcp/framing/_netstring.py)."""

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
from hypothesis import example, given
from hypothesis import strategies as st

from trio_tcp.framing import (
    DEFAULT_MAX_FRAME_SIZE,
    FrameTooLargeError,
    IncompleteFrameError,
    LocalProtocolError,
    MalformedFrameError,
    NetstringFramer,
)

WIRE = b"5:hello,0:,3:a,b,12:hello world!,"
FRAMES = [b"hello", b"", b"a,b", b"hello world!"]


@pytest.mark.parametrize(
    ("frame", "wire"),
    [(b"hello", b"5:hello,"), (b"", b"0:,"), (b"x" * 10, b"10:" + b"x" * 10 + b",")],
)
def test_encode_writes_a_netstring(frame: bytes, wire: bytes) -> None:
    """encode writes decimal length, colon, body and comma."""
    assert NetstringFramer().encode(frame) == wire


@pytest.mark.parametrize("split", SPLITS, ids=SPLIT_IDS)
def test_netstrings_come_back_in_any_split(split: Split) -> None:
    """Several netstrings, an empty one and one holding commas, decode in any chunking."""
    assert feed_chunks(NetstringFramer(), split(WIRE)) == FRAMES


@pytest.mark.parametrize("split", SPLITS, ids=SPLIT_IDS)
@pytest.mark.parametrize("trailing", [b"1", b"12", b"3:", b"3:ab", b"3:abc"])
def test_trailing_partial_netstring_stays_in_the_buffer(split: Split, trailing: bytes) -> None:
    """parse leaves a valid partial netstring in the buffer, untouched."""
    frames, buffer = parse_chunks(NetstringFramer(), split(WIRE + trailing), eof=False)
    assert frames == FRAMES
    assert bytes(buffer) == trailing


@pytest.mark.parametrize("split", SPLITS, ids=SPLIT_IDS)
@pytest.mark.parametrize(
    ("partial", "expected"), [(b"1", None), (b"5:", 8), (b"5:hel", 8), (b"5:hello", 8)]
)
def test_end_of_stream_inside_a_netstring(
    split: Split, partial: bytes, expected: int | None
) -> None:
    """End of stream mid-netstring raises IncompleteFrameError with exactly the partial bytes."""
    framer = NetstringFramer()
    with pytest.raises(IncompleteFrameError) as info:
        feed_chunks(framer, split(b"0:," + partial))
    assert info.value.partial == partial
    assert info.value.expected == expected
    assert not framer.buffer


# --- malformed input ---------------------------------------------------------------------


@pytest.mark.parametrize("split", SPLITS, ids=SPLIT_IDS)
@pytest.mark.parametrize(
    ("wire", "message"),
    [
        (b"05:hello,", "leading zero"),
        (b"00:,", "leading zero"),
        (b":,", "no length"),
        (b"-1:x,", "ASCII digits"),
        (b"+1:x,", "ASCII digits"),
        (b" 1:x,", "ASCII digits"),
        (b"1 :x,", "ASCII digits"),
        (b"1x", "ASCII digits"),
        (b"\x16\x03\x01\x02\x00", "ASCII digits"),  # a TLS ClientHello sent to a plain port
        (b"\xd9\xa3:", "ASCII digits"),  # non-ASCII digits (Arabic-Indic) are not digits
    ],
)
def test_malformed_headers_are_rejected(split: Split, wire: bytes, message: str) -> None:
    """A length that is not plain digits without a leading zero is a MalformedFrameError."""
    with pytest.raises(MalformedFrameError, match=message) as info:
        feed_chunks(NetstringFramer(), split(wire))
    assert info.value.data
    assert wire.startswith(info.value.data) or info.value.data.startswith(wire[:1])


@pytest.mark.parametrize("split", SPLITS, ids=SPLIT_IDS)
@pytest.mark.parametrize("found", [b";", b"\n", b"hello,"])
def test_missing_trailing_comma_names_the_offending_bytes(split: Split, found: bytes) -> None:
    """A body not followed by b"," raises MalformedFrameError carrying what came instead."""
    with pytest.raises(MalformedFrameError) as info:
        feed_chunks(NetstringFramer(), split(b"5:hello" + found))
    # Fed in pieces, the error comes with the first wrong byte: data is what had arrived.
    assert info.value.data[:1] == found[:1]
    assert found.startswith(info.value.data)
    assert repr(info.value.data) in str(info.value)


def test_garbage_fails_on_its_first_byte() -> None:
    """A non-digit first byte fails at once, without waiting for more bytes."""
    framer = NetstringFramer()
    with pytest.raises(MalformedFrameError):
        framer.feed(b"G")


def test_bad_netstring_leaves_the_buffer_unchanged() -> None:
    """parse raising MalformedFrameError removes nothing from the buffer."""
    frames, buffer = parse_chunks(NetstringFramer(), [b"1:a,"], eof=False)
    buffer.feed(b"3:abcX")
    with pytest.raises(MalformedFrameError):
        NetstringFramer().parse(buffer)
    assert frames == [b"a"]
    assert bytes(buffer) == b"3:abcX"


# --- limits ------------------------------------------------------------------------------


@pytest.mark.parametrize("split", SPLITS, ids=SPLIT_IDS)
def test_netstring_exactly_at_the_limit_is_accepted(split: Split) -> None:
    """A body of max_frame_size bytes decodes and encodes."""
    framer = NetstringFramer(max_frame_size=10)
    wire = framer.encode(b"0123456789")
    assert feed_chunks(NetstringFramer(max_frame_size=10), split(wire)) == [b"0123456789"]


@pytest.mark.parametrize("split", SPLITS, ids=SPLIT_IDS)
def test_netstring_one_past_the_limit_is_rejected_from_its_header(split: Split) -> None:
    """A length of max_frame_size + 1 raises FrameTooLargeError before any body arrives."""
    with pytest.raises(FrameTooLargeError) as info:
        feed_chunks(NetstringFramer(max_frame_size=10), split(b"11"), eof=False)
    assert (info.value.limit, info.value.size) == (10, 11)
    assert "max_frame_size=10" in str(info.value)


def test_digit_flood_fails_after_the_digits_the_limit_allows() -> None:
    """Fed bytewise, a stream of digits fails by the digit that makes it exceed the limit."""
    framer = NetstringFramer(max_frame_size=999)
    fed = 0
    with pytest.raises(FrameTooLargeError) as info:
        for chunk in bytewise(b"9" * 10_000):
            fed += 1
            assert framer.feed(chunk) == []
    assert fed == 4
    assert info.value.size == 9999


def test_digit_flood_fails_fast_when_fed_whole() -> None:
    """A megabyte of digits fails from the first few, whatever follows."""
    framer = NetstringFramer()
    with pytest.raises(FrameTooLargeError) as info:
        framer.feed(b"1" * 2**20)
    assert info.value.size == int("1" * len(str(DEFAULT_MAX_FRAME_SIZE)) + "1")


def test_zero_limit_accepts_only_empty_netstrings() -> None:
    """max_frame_size=0 accepts b"0:," and rejects any other length."""
    framer = NetstringFramer(max_frame_size=0)
    assert framer.feed(b"0:,0:,") == [b"", b""]
    with pytest.raises(FrameTooLargeError):
        framer.feed(b"1")


def test_default_limit_is_the_shared_frame_default() -> None:
    """The default max_frame_size is DEFAULT_MAX_FRAME_SIZE (1 MiB)."""
    assert NetstringFramer().max_frame_size == DEFAULT_MAX_FRAME_SIZE == 2**20
    with pytest.raises(FrameTooLargeError):
        NetstringFramer().feed(b"%d:" % (2**20 + 1))


def test_negative_limit_is_a_value_error() -> None:
    """max_frame_size must not be negative."""
    with pytest.raises(ValueError, match="max_frame_size"):
        NetstringFramer(max_frame_size=-1)


@pytest.mark.parametrize(
    ("framer", "frame", "message"),
    [
        (NetstringFramer(max_frame_size=3), b"abcd", "max_frame_size=3"),
        (NetstringFramer(), "text", "bytes, not str"),
    ],
)
def test_encode_rejects_what_cannot_be_sent(
    framer: NetstringFramer, frame: bytes, message: str
) -> None:
    """encode raises LocalProtocolError for a body over the limit or not bytes."""
    with pytest.raises(LocalProtocolError, match=message):
        framer.encode(frame)


# --- properties --------------------------------------------------------------------------


@given(frames=st.lists(st.binary(max_size=40)), data=st.data())
def test_any_frames_in_any_split_round_trip(frames: list[bytes], data: st.DataObject) -> None:
    """Encoded netstrings come back unchanged however the stream is split."""
    wire = b"".join(map(NetstringFramer().encode, frames))
    cuts = data.draw(st.lists(st.integers(0, len(wire))))
    assert feed_chunks(NetstringFramer(), split_at(wire, cuts)) == frames


NETSTRINGISH = st.lists(
    st.sampled_from([b"0", b"1", b"2", b"9", b":", b",", b"a", b" ", b"\xff"]), max_size=40
).map(b"".join)


@given(wire=st.one_of(NETSTRINGISH, st.binary(max_size=40)), cuts=st.lists(st.integers(0, 40)))
@example(wire=b"20,", cuts=[2])  # over the limit at byte 2, a bad byte at 3: the earlier wins
def test_any_bytes_give_frames_or_a_named_error(wire: bytes, cuts: list[int]) -> None:
    """Any input yields netstrings or a named RemoteProtocolError, the same in any split."""

    def make() -> NetstringFramer:
        return NetstringFramer(max_frame_size=12)

    frames, error = decode_outcome(make, split_at(wire, cuts))
    assert error in (None, FrameTooLargeError, MalformedFrameError, IncompleteFrameError)
    assert (frames, error) == decode_outcome(make, [wire] if wire else [])
    if error is None:
        # Strict parsing: only the canonical encoding is accepted.
        assert b"".join(map(make().encode, frames)) == wire


# --- linear time -------------------------------------------------------------------------


def test_parse_is_linear_when_a_large_netstring_arrives_bytewise() -> None:
    """A 1 MiB netstring fed a byte at a time costs O(n) work in all."""
    size = 2**20
    framer = NetstringFramer()
    buffer = CountingReceiveBuffer()
    wire = framer.encode(b"z" * size)
    for i in range(len(wire) - 1):
        buffer.feed(wire[i : i + 1])
        assert framer.parse(buffer) is None
    buffer.feed(wire[-1:])
    assert framer.parse(buffer) == b"z" * size
    # A header peek of at most 8 bytes per call, then one copy of the body.
    assert buffer.counter.work <= 8 * len(wire) + len(wire)
