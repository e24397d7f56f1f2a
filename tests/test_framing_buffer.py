"""ReceiveBuffer (trio_tcp/framing/_buffer.py) and the Framer base class (_base.py)."""

from __future__ import annotations

import pytest
from _chunking import SPLIT_IDS, SPLITS, CountingReceiveBuffer, Split, split_at
from hypothesis import given
from hypothesis import strategies as st

from trio_tcp.framing import (
    Framer,
    FrameTooLargeError,
    IncompleteFrameError,
    LineTooLongError,
    MalformedFrameError,
    ReceiveBuffer,
)

# --- plain reads -------------------------------------------------------------------------


def test_feed_appends_and_len_bool_bytes_report_unread_bytes() -> None:
    """feed appends; len, bool and bytes() describe the unread bytes without consuming them."""
    buffer = ReceiveBuffer()
    assert len(buffer) == 0
    assert not buffer
    assert bytes(buffer) == b""
    buffer.feed(b"ab")
    buffer.feed(bytearray(b"cd"))
    buffer.feed(memoryview(b"ef"))
    assert len(buffer) == 6
    assert buffer
    assert bytes(buffer) == b"abcdef"
    assert bytes(buffer) == b"abcdef"


def test_initial_data_is_copied() -> None:
    """ReceiveBuffer(data) starts with a copy of data."""
    source = bytearray(b"xyz")
    buffer = ReceiveBuffer(source)
    source[0] = ord("!")
    assert bytes(buffer) == b"xyz"


def test_extract_removes_and_returns_prefix() -> None:
    """extract(n) returns the first n bytes as bytes and leaves the rest."""
    buffer = ReceiveBuffer(b"hello world")
    out = buffer.extract(5)
    assert out == b"hello"
    assert type(out) is bytes
    assert bytes(buffer) == b" world"
    assert buffer.extract(0) == b""
    assert buffer.extract(6) == b" world"
    assert not buffer


@pytest.mark.parametrize("count", [-1, 4, 100])
def test_extract_out_of_range_raises_and_keeps_bytes(count: int) -> None:
    """extract(n) with n < 0 or n > len raises ValueError and removes nothing."""
    buffer = ReceiveBuffer(b"abc")
    with pytest.raises(ValueError, match="3"):
        buffer.extract(count)
    assert bytes(buffer) == b"abc"


def test_extract_all_empties_the_buffer() -> None:
    """extract_all returns every byte and leaves the buffer empty."""
    buffer = ReceiveBuffer(b"abc")
    assert buffer.extract_all() == b"abc"
    assert not buffer
    assert buffer.extract_all() == b""


def test_indexing_peeks_without_removing() -> None:
    """buffer[i] is an int and buffer[i:j] a bytes copy; neither consumes."""
    buffer = ReceiveBuffer(b"abc")
    assert buffer[0] == ord("a")
    assert buffer[-1] == ord("c")
    assert buffer[1:] == b"bc"
    assert type(buffer[:2]) is bytes
    assert buffer[:10] == b"abc"
    with pytest.raises(IndexError):
        buffer[3]
    assert bytes(buffer) == b"abc"


def test_repr_shows_size_and_prefix() -> None:
    """repr names the byte count and quotes a short prefix."""
    assert repr(ReceiveBuffer(b"ab")) == "<ReceiveBuffer 2 bytes: b'ab'>"
    assert repr(ReceiveBuffer(b"x" * 100)).endswith("...>")


# --- extract_until -----------------------------------------------------------------------


def extract_after_each_chunk(
    chunks: list[bytes], delimiter: bytes, max_bytes: int = 1000
) -> tuple[list[bytes], ReceiveBuffer]:
    """Feed chunks, calling extract_until after each one until it returns None."""
    buffer = ReceiveBuffer()
    frames = []
    for chunk in chunks:
        buffer.feed(chunk)
        while (frame := buffer.extract_until(delimiter, max_bytes=max_bytes)) is not None:
            frames.append(frame)
    return frames, buffer


@pytest.mark.parametrize("split", SPLITS, ids=SPLIT_IDS)
def test_extract_until_single_byte_delimiter(split: Split) -> None:
    """Frames come out with their delimiter; trailing bytes stay buffered."""
    frames, buffer = extract_after_each_chunk(split(b"ab\ncd\n\nefg"), b"\n")
    assert frames == [b"ab\n", b"cd\n", b"\n"]
    assert bytes(buffer) == b"efg"


@pytest.mark.parametrize("split", SPLITS, ids=SPLIT_IDS)
def test_extract_until_multi_byte_delimiter(split: Split) -> None:
    """A delimiter split across feeds is found, and near-misses are not."""
    data = b"GET / HTTP/1.1\r\nHost: x\r\n\r\nbody\r\n\r\r\n\r\n\r\ntail\r\n\r"
    frames, buffer = extract_after_each_chunk(split(data), b"\r\n\r\n")
    assert frames == [b"GET / HTTP/1.1\r\nHost: x\r\n\r\n", b"body\r\n\r\r\n\r\n"]
    assert bytes(buffer) == b"\r\ntail\r\n\r"


@pytest.mark.parametrize("split", SPLITS, ids=SPLIT_IDS)
def test_extract_until_frame_exactly_at_limit(split: Split) -> None:
    """A frame of exactly max_bytes (delimiter not counted) is returned."""
    frames, buffer = extract_after_each_chunk(split(b"abcde\r\nxy"), b"\r\n", max_bytes=5)
    assert frames == [b"abcde\r\n"]
    assert bytes(buffer) == b"xy"


@pytest.mark.parametrize("split", SPLITS, ids=SPLIT_IDS)
def test_extract_until_frame_one_past_limit_raises(split: Split) -> None:
    """A frame of max_bytes + 1 raises FrameTooLargeError naming limit and size."""
    with pytest.raises(FrameTooLargeError) as info:
        extract_after_each_chunk(split(b"abcdef\r\n"), b"\r\n", max_bytes=5)
    assert info.value.limit == 5
    assert info.value.size in (6, 7)  # 7 if the search gave up before b"\r\n" arrived
    assert "5" in str(info.value)
    assert "abcdef" in str(info.value)


def test_extract_until_over_limit_leaves_buffer_unchanged() -> None:
    """On FrameTooLargeError nothing is removed, and size is the frame's real length."""
    buffer = ReceiveBuffer(b"abcdefgh\nrest")
    with pytest.raises(FrameTooLargeError) as info:
        buffer.extract_until(b"\n", max_bytes=5)
    assert info.value.size == 8
    assert type(info.value) is FrameTooLargeError
    assert bytes(buffer) == b"abcdefgh\nrest"
    assert buffer.extract_until(b"\n", max_bytes=8) == b"abcdefgh\n"


def test_extract_until_without_delimiter_waits_until_certainly_too_long() -> None:
    """No delimiter: None while the frame may fit, FrameTooLargeError once it cannot."""
    buffer = ReceiveBuffer(b"abcde\r")  # max_bytes + len(delimiter) - 1 bytes
    assert buffer.extract_until(b"\r\n", max_bytes=5) is None
    buffer.feed(b"x")
    with pytest.raises(FrameTooLargeError) as info:
        buffer.extract_until(b"\r\n", max_bytes=5)
    assert (info.value.limit, info.value.size) == (5, 7)
    assert bytes(buffer) == b"abcde\rx"


def test_extract_until_error_class_is_selectable() -> None:
    """error=LineTooLongError makes the over-limit error a LineTooLongError."""
    buffer = ReceiveBuffer(b"toolong")
    with pytest.raises(LineTooLongError) as info:
        buffer.extract_until(b"\n", max_bytes=3, error=LineTooLongError)
    assert info.value.limit == 3


def test_extract_until_zero_limit_accepts_only_empty_frames() -> None:
    """max_bytes=0 returns a bare delimiter and rejects anything before one."""
    buffer = ReceiveBuffer(b"\n\nx")
    assert buffer.extract_until(b"\n", max_bytes=0) == b"\n"
    assert buffer.extract_until(b"\n", max_bytes=0) == b"\n"
    with pytest.raises(FrameTooLargeError):
        buffer.extract_until(b"\n", max_bytes=0)


@pytest.mark.parametrize(("delimiter", "max_bytes"), [(b"", 10), (b"\n", -1)])
def test_extract_until_rejects_bad_arguments(delimiter: bytes, max_bytes: int) -> None:
    """An empty delimiter or a negative max_bytes is a ValueError."""
    with pytest.raises(ValueError):
        ReceiveBuffer(b"a\n").extract_until(delimiter, max_bytes=max_bytes)


def test_extract_until_switching_delimiters_finds_earlier_matches() -> None:
    """The remembered search position belongs to one delimiter; another starts afresh."""
    buffer = ReceiveBuffer(b"a;b,c")
    assert buffer.extract_until(b"\n", max_bytes=100) is None
    assert buffer.extract_until(b";", max_bytes=100) == b"a;"
    assert buffer.extract_until(b"\n", max_bytes=100) is None
    assert buffer.extract_until(b",", max_bytes=100) == b"b,"
    assert bytes(buffer) == b"c"


def test_extract_between_searches_keeps_results_right() -> None:
    """extract() after a failed search shifts, not breaks, the remembered position."""
    buffer = ReceiveBuffer(b"abcdef")
    assert buffer.extract_until(b"\n", max_bytes=100) is None
    assert buffer.extract(4) == b"abcd"
    buffer.feed(b"\nxy\n")
    assert buffer.extract_until(b"\n", max_bytes=100) == b"ef\n"
    assert buffer.extract_until(b"\n", max_bytes=100) == b"xy\n"
    buffer.feed(b"\n")
    assert buffer.extract_until(b"\n", max_bytes=100) == b"\n"


@given(
    data=st.binary(max_size=200).map(lambda b: b.replace(b"\x00", b"\n")),
    delimiter=st.sampled_from([b"\n", b"\r\n", b"\n\n", b"aba"]),
    cuts=st.lists(st.integers(0, 200)),
)
def test_extract_until_matches_reference_for_any_split(
    data: bytes, delimiter: bytes, cuts: list[int]
) -> None:
    """Any bytes in any split give the frames a one-shot find() loop gives."""
    expected = []
    start = 0
    while (index := data.find(delimiter, start)) != -1:
        expected.append(data[start : index + len(delimiter)])
        start = index + len(delimiter)
    frames, buffer = extract_after_each_chunk(split_at(data, cuts), delimiter, max_bytes=1000)
    assert frames == expected
    assert bytes(buffer) == data[start:]


@given(data=st.binary(max_size=100), cuts=st.lists(st.integers(0, 100)))
def test_extract_until_never_loses_bytes_under_a_limit(data: bytes, cuts: list[int]) -> None:
    """With a small limit, frames plus what is left (even after an error) are the input."""
    buffer = ReceiveBuffer()
    frames = []
    fed = b""
    try:
        for chunk in split_at(data.replace(b"\x00", b"\n"), cuts):
            buffer.feed(chunk)
            fed += chunk
            while (frame := buffer.extract_until(b"\n", max_bytes=4)) is not None:
                assert len(frame) <= 5
                frames.append(frame)
    except FrameTooLargeError as exc:
        assert exc.limit == 4
        assert exc.size > 4
    assert b"".join(frames) + bytes(buffer) == fed


# --- linear time: count work, never time -------------------------------------------------


def scan_bytewise(buffer: ReceiveBuffer, data: bytes, delimiter: bytes) -> list[bytes]:
    """Feed data one byte at a time, calling extract_until after every byte."""
    frames = []
    for i in range(len(data)):
        buffer.feed(data[i : i + 1])
        frame = buffer.extract_until(delimiter, max_bytes=len(data))
        if frame is not None:
            frames.append(frame)
    return frames


@pytest.mark.parametrize("delimiter", [b"\n", b"\r\n\r\n"])
def test_extract_until_is_linear_when_fed_bytewise(delimiter: bytes) -> None:
    """1 MiB fed a byte at a time is scanned O(n) in all, not O(n**2)."""
    size = 1024 * 1024
    buffer = CountingReceiveBuffer()
    line = b"x" * (size - len(delimiter)) + delimiter
    assert scan_bytewise(buffer, line, delimiter) == [line]
    # Each byte is scanned once, plus a back-off of len(delimiter) - 1 per call.
    assert buffer.counter.work <= size * len(delimiter) + size


def test_work_counter_catches_a_rescanning_buffer() -> None:
    """The counter used above reports quadratic work for a buffer that forgets its position."""

    class Forgetful(CountingReceiveBuffer):
        def extract_until(
            self,
            delimiter: bytes,
            *,
            max_bytes: int,
            error: type[FrameTooLargeError] = FrameTooLargeError,
        ) -> bytes | None:
            self._search_start = 0
            return super().extract_until(delimiter, max_bytes=max_bytes, error=error)

    size = 4096
    buffer = Forgetful()
    scan_bytewise(buffer, b"x" * size + b"\n", b"\n")
    assert buffer.counter.work > size * size // 4


# --- the Framer base class ---------------------------------------------------------------


class WordFramer(Framer[str]):
    """A minimal Framer subclass: ASCII words separated by single spaces."""

    def parse(self, buffer: ReceiveBuffer) -> str | None:
        """One word, or None."""
        word = buffer.extract_until(b" ", max_bytes=8)
        if word is None:
            return None
        if not word[:-1].isalpha():
            raise MalformedFrameError(f"not a word: {word!r}", data=word)
        return word[:-1].decode()

    def check_eof(self, buffer: ReceiveBuffer) -> None:
        """Leftover letters are an incomplete word."""
        if buffer:
            raise IncompleteFrameError("partial word", partial=buffer.extract_all())

    def encode(self, frame: str) -> bytes:
        """The word and a space."""
        return frame.encode() + b" "


def test_framer_is_abstract() -> None:
    """Framer itself cannot be instantiated: parse, check_eof and encode are abstract."""
    with pytest.raises(TypeError, match="abstract"):
        Framer()  # type: ignore[abstract]


def test_feed_returns_every_complete_frame_and_keeps_the_rest() -> None:
    """feed returns all frames now complete; the partial one waits in .buffer."""
    framer = WordFramer()
    assert framer.feed(b"one tw") == ["one"]
    assert bytes(framer.buffer) == b"tw"
    assert framer.feed(b"o three ") == ["two", "three"]
    assert framer.feed(b"") == []


def test_feed_end_of_stream_checks_for_a_partial_frame() -> None:
    """feed(b"") raises IncompleteFrameError carrying the partial frame."""
    framer = WordFramer()
    assert framer.feed(b"one fo") == ["one"]
    with pytest.raises(IncompleteFrameError) as info:
        framer.feed(b"")
    assert info.value.partial == b"fo"


def test_feed_after_end_of_stream_is_a_runtime_error() -> None:
    """Feeding after b"" raises RuntimeError saying so."""
    framer = WordFramer()
    framer.feed(b"")
    with pytest.raises(RuntimeError, match="after end of stream"):
        framer.feed(b"more ")


def test_feed_returns_good_frames_before_raising_on_bad_ones() -> None:
    """Frames before bad bytes are returned; the next feed raises, and so do all later ones."""
    framer = WordFramer()
    assert framer.feed(b"good 4bad more ") == ["good"]
    with pytest.raises(MalformedFrameError) as first:
        framer.feed(b"x ")
    assert first.value.data == b"4bad "
    with pytest.raises(MalformedFrameError) as second:
        framer.feed(b"")
    assert second.value is first.value


def test_feed_raises_at_once_when_no_frame_came_first() -> None:
    """Bad bytes at the front raise from the feed that brought them."""
    framer = WordFramer()
    with pytest.raises(MalformedFrameError):
        framer.feed(b"4bad ")
