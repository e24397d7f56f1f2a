"""LineFramer (trio_tcp/framing/_lines.py)."""

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
    DEFAULT_MAX_LINE_LENGTH,
    FrameTooLargeError,
    IncompleteFrameError,
    LineFramer,
    LineTooLongError,
    LocalProtocolError,
)

MIXED = b"one\ntwo\r\n\r\n\nfour\rstill four\r\r\n"
MIXED_LINES = [b"one", b"two", b"", b"", b"four\rstill four\r"]


@pytest.mark.parametrize("split", SPLITS, ids=SPLIT_IDS)
def test_lf_and_crlf_endings_are_both_stripped(split: Split) -> None:
    """With b"\\n", lines end at \\n and one \\r before it is stripped; other \\r stay."""
    assert feed_chunks(LineFramer(), split(MIXED)) == MIXED_LINES


@pytest.mark.parametrize("split", SPLITS, ids=SPLIT_IDS)
def test_parse_on_an_outside_buffer_gives_the_same_lines(split: Split) -> None:
    """parse() on the I/O layer's buffer yields what feed() yields and leaves the tail."""
    frames, buffer = parse_chunks(LineFramer(), split(MIXED + b"tail"), eof=False)
    assert frames == MIXED_LINES
    assert bytes(buffer) == b"tail"


@pytest.mark.parametrize("split", SPLITS, ids=SPLIT_IDS)
def test_trailing_partial_line_stays_buffered(split: Split) -> None:
    """Bytes after the last delimiter wait in the framer's buffer."""
    framer = LineFramer()
    assert feed_chunks(framer, split(b"a\nb\npartial\r"), eof=False) == [b"a", b"b"]
    assert bytes(framer.buffer) == b"partial\r"
    assert framer.feed(b"\n") == [b"partial"]


@pytest.mark.parametrize("split", SPLITS, ids=SPLIT_IDS)
def test_keep_ends_returns_lines_as_received(split: Split) -> None:
    """keep_ends=True returns each line with the ending it arrived with."""
    frames = feed_chunks(LineFramer(keep_ends=True), split(MIXED))
    assert frames == [b"one\n", b"two\r\n", b"\r\n", b"\n", b"four\rstill four\r\r\n"]
    assert b"".join(frames) == MIXED


@pytest.mark.parametrize("split", SPLITS, ids=SPLIT_IDS)
def test_crlf_delimiter_splits_only_at_crlf(split: Split) -> None:
    """With b"\\r\\n", a lone \\n or \\r is part of the line."""
    framer = LineFramer(b"\r\n")
    assert feed_chunks(framer, split(b"a\nb\r\n\r\rc\r\n\r\n")) == [b"a\nb", b"\r\rc", b""]


@pytest.mark.parametrize("split", SPLITS, ids=SPLIT_IDS)
def test_other_delimiters_are_stripped_exactly(split: Split) -> None:
    """Any non-empty delimiter works and only it is stripped."""
    framer = LineFramer(b"\x00")
    assert feed_chunks(framer, split(b"a\r\n\x00\x00b\x00")) == [b"a\r\n", b"", b"b"]


@pytest.mark.parametrize("split", SPLITS, ids=SPLIT_IDS)
def test_end_of_stream_inside_a_line_carries_the_partial_line(split: Split) -> None:
    """End of stream after an unterminated line raises IncompleteFrameError with its bytes."""
    framer = LineFramer()
    with pytest.raises(IncompleteFrameError) as info:
        feed_chunks(framer, split(b"done\nhalf a li"))
    assert info.value.partial == b"half a li"
    assert info.value.expected is None
    assert not framer.buffer


def test_check_eof_on_an_empty_buffer_does_nothing() -> None:
    """check_eof passes when the stream ended between lines."""
    frames, buffer = parse_chunks(LineFramer(), [b"x\n"], eof=True)
    assert frames == [b"x"]
    assert not buffer


# --- limits ------------------------------------------------------------------------------


@pytest.mark.parametrize("split", SPLITS, ids=SPLIT_IDS)
@pytest.mark.parametrize("ending", [b"\n", b"\r\n"])
def test_line_exactly_at_the_limit_is_accepted(split: Split, ending: bytes) -> None:
    """A line of max_line_length bytes is accepted with either ending."""
    framer = LineFramer(max_line_length=5)
    assert feed_chunks(framer, split(b"abcde" + ending + b"ab" + ending)) == [b"abcde", b"ab"]


@pytest.mark.parametrize("split", SPLITS, ids=SPLIT_IDS)
@pytest.mark.parametrize("ending", [b"\n", b"\r\n"])
def test_line_one_past_the_limit_is_rejected(split: Split, ending: bytes) -> None:
    """A line of max_line_length + 1 bytes raises LineTooLongError naming the limit."""
    framer = LineFramer(max_line_length=5)
    with pytest.raises(LineTooLongError) as info:
        feed_chunks(framer, split(b"abcdef" + ending))
    assert info.value.limit == 5
    assert info.value.size >= 6
    assert "5" in str(info.value)
    assert "abcdef" in str(info.value)


@pytest.mark.parametrize("split", SPLITS, ids=SPLIT_IDS)
def test_crlf_delimiter_limit_cases(split: Split) -> None:
    """With b"\\r\\n", max_line_length bytes pass and one more fail."""
    assert feed_chunks(LineFramer(b"\r\n", max_line_length=3), split(b"abc\r\n")) == [b"abc"]
    with pytest.raises(LineTooLongError):
        feed_chunks(LineFramer(b"\r\n", max_line_length=3), split(b"abcd\r\n"))


def test_keep_ends_limit_does_not_count_the_ending() -> None:
    """With keep_ends the limit still applies to the line without its ending."""
    framer = LineFramer(max_line_length=2, keep_ends=True)
    assert framer.feed(b"ab\r\nab\n") == [b"ab\r\n", b"ab\n"]
    with pytest.raises(LineTooLongError):
        framer.feed(b"abc\n")


def test_over_long_line_fails_before_its_delimiter_arrives() -> None:
    """Bytewise, the error comes once max_line_length + 2 bytes arrived without a \\n."""
    framer = LineFramer(max_line_length=10)
    fed = 0
    with pytest.raises(LineTooLongError) as info:
        for chunk in bytewise(b"x" * 1000):
            fed += 1
            assert framer.feed(chunk) == []
    # 10 bytes of line, room for a b"\r", then one byte too many.
    assert fed == 12
    assert info.value.size == 12


def test_over_long_line_leaves_the_buffer_unchanged() -> None:
    """After LineTooLongError from parse, every byte is still in the buffer."""
    frames, buffer = parse_chunks(LineFramer(max_line_length=3), [b"ok\n"], eof=False)
    buffer.feed(b"toolong\nnext\n")
    with pytest.raises(LineTooLongError):
        LineFramer(max_line_length=3).parse(buffer)
    assert frames == [b"ok"]
    assert bytes(buffer) == b"toolong\nnext\n"


def test_line_too_long_is_a_frame_too_large_error() -> None:
    """LineTooLongError can be caught as FrameTooLargeError."""
    with pytest.raises(FrameTooLargeError):
        LineFramer(max_line_length=1).feed(b"abc\n")


def test_default_limit_is_asyncios() -> None:
    """The default max_line_length is 64 KiB, asyncio StreamReader's limit."""
    assert DEFAULT_MAX_LINE_LENGTH == 65536
    assert LineFramer().max_line_length == DEFAULT_MAX_LINE_LENGTH
    line = b"x" * DEFAULT_MAX_LINE_LENGTH
    assert LineFramer().feed(line + b"\r\n") == [line]
    with pytest.raises(LineTooLongError):
        LineFramer().feed(line + b"x\n")


@pytest.mark.parametrize(("delimiter", "max_line_length"), [(b"", 10), ("\n", 10), (b"\n", -1)])
def test_constructor_rejects_bad_arguments(delimiter: bytes, max_line_length: int) -> None:
    """An empty or non-bytes delimiter, or a negative limit, is a ValueError."""
    with pytest.raises(ValueError):
        LineFramer(delimiter, max_line_length=max_line_length)


# --- encode ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("framer", "line", "wire"),
    [
        (LineFramer(), b"hi", b"hi\n"),
        (LineFramer(), b"", b"\n"),
        (LineFramer(), bytearray(b"a\rb"), b"a\rb\n"),
        (LineFramer(b"\r\n"), b"hi\n\r", b"hi\n\r\r\n"),
        (LineFramer(keep_ends=True), b"hi\r", b"hi\r\n"),
        (LineFramer(max_line_length=2), b"hi", b"hi\n"),
    ],
)
def test_encode_appends_the_delimiter(framer: LineFramer, line: bytes, wire: bytes) -> None:
    """encode returns the line followed by the delimiter."""
    assert framer.encode(line) == wire


@pytest.mark.parametrize(
    ("framer", "line", "message"),
    [
        (LineFramer(), b"a\nb", "delimiter"),
        (LineFramer(b"\r\n"), b"a\r\nb", "delimiter"),
        (LineFramer(b"aba"), b"ab", "delimiter"),  # b"ab" + b"aba" starts with b"aba"
        (LineFramer(), b"ends in cr\r", "strips"),
        (LineFramer(max_line_length=2), b"abc", "max_line_length=2"),
        (LineFramer(), "text", "bytes, not str"),
    ],
)
def test_encode_rejects_what_cannot_be_sent(framer: LineFramer, line: bytes, message: str) -> None:
    """encode raises LocalProtocolError for a line the receiver would not get back."""
    with pytest.raises(LocalProtocolError, match=message):
        framer.encode(line)


# --- properties --------------------------------------------------------------------------

LINE = st.lists(st.sampled_from([b"a", b"\r", b"\x00", b"\xff", b" ", b"\n"])).map(b"".join)


@given(lines=st.lists(LINE.map(lambda b: b.replace(b"\n", b"").rstrip(b"\r"))), data=st.data())
def test_any_lines_in_any_split_round_trip(lines: list[bytes], data: st.DataObject) -> None:
    """Encoded lines come back unchanged however the stream is split."""
    framer = LineFramer()
    wire = b"".join(map(framer.encode, lines))
    cuts = data.draw(st.lists(st.integers(0, len(wire))))
    assert feed_chunks(LineFramer(), split_at(wire, cuts)) == lines


@given(lines=st.lists(LINE.map(lambda b: b.replace(b"\r\n", b""))), data=st.data())
def test_crlf_lines_round_trip(lines: list[bytes], data: st.DataObject) -> None:
    """With b"\\r\\n", encodable lines (no b"\\r\\n" inside) come back unchanged."""
    framer = LineFramer(b"\r\n")
    encodable = [line for line in lines if not (line + b"\r\n").find(b"\r\n") < len(line)]
    wire = b"".join(map(framer.encode, encodable))
    cuts = data.draw(st.lists(st.integers(0, len(wire))))
    assert feed_chunks(LineFramer(b"\r\n"), split_at(wire, cuts)) == encodable


@given(wire=LINE, cuts=st.lists(st.integers(0, 40)))
def test_any_bytes_give_lines_or_a_named_error(wire: bytes, cuts: list[int]) -> None:
    """Any input yields lines or LineTooLongError/IncompleteFrameError, the same in any split."""

    def make() -> LineFramer:
        return LineFramer(max_line_length=4, keep_ends=True)

    frames, error = decode_outcome(make, split_at(wire, cuts))
    assert error in (None, LineTooLongError, IncompleteFrameError)
    assert (frames, error) == decode_outcome(make, [wire] if wire else [])
    if error is None:
        assert b"".join(frames) == wire
    assert all(len(frame.rstrip(b"\n").removesuffix(b"\r")) <= 4 for frame in frames)


# --- linear time -------------------------------------------------------------------------


def test_parse_is_linear_when_a_long_line_arrives_bytewise() -> None:
    """A 1 MiB line fed a byte at a time costs O(n) work in all."""
    size = 1024 * 1024
    framer = LineFramer(max_line_length=size)
    buffer = CountingReceiveBuffer()
    line = b"x" * (size - 1)
    for i in range(size - 1):
        buffer.feed(line[i : i + 1])
        assert framer.parse(buffer) is None
    buffer.feed(b"\n")
    assert framer.parse(buffer) == line
    assert buffer.counter.work <= 3 * size
