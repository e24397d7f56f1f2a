"""Delimiter-terminated lines (sans-IO, no trio here)."""

from __future__ import annotations

from .._exceptions import IncompleteFrameError, LineTooLongError, LocalProtocolError
from ._base import Framer, check_bytes
from ._buffer import ReceiveBuffer

__all__ = ["DEFAULT_MAX_LINE_LENGTH", "LineFramer"]

#: The longest line a :class:`LineFramer` accepts by default, 64 KiB: asyncio's StreamReader
#: limit (2**16), so any line asyncio's ``readline()`` accepts, ours does.
DEFAULT_MAX_LINE_LENGTH = 64 * 1024


class LineFramer(Framer[bytes]):
    """Frames are lines of bytes, each ended by ``delimiter``.

    With the default ``delimiter=b"\\n"`` both ``\\n`` and ``\\r\\n`` endings are accepted:
    the ``\\n`` and one ``\\r`` just before it are stripped, so ``b"hi\\r\\n"`` and
    ``b"hi\\n"`` both give ``b"hi"``. With any other delimiter (``b"\\r\\n"``, ``b"\\0"``, ...)
    exactly that delimiter is stripped. With ``keep_ends=True`` nothing is stripped: lines come
    back with the ending they arrived with.

    A stream that ends without a final delimiter is incomplete
    (:class:`~trio_tcp.IncompleteFrameError` carrying the unterminated bytes).

    Args:
      delimiter: the non-empty byte string that ends a line.
      max_line_length: the longest line accepted or sent, not counting its ending (the
        delimiter, and the ``\\r`` that precedes a ``\\n`` delimiter).
      keep_ends: return lines with their ending instead of stripping it. :meth:`encode`
        still takes the line without an ending.

    Raises:
      ValueError: ``delimiter`` is empty or ``max_line_length`` is negative.
    """

    def __init__(
        self,
        delimiter: bytes = b"\n",
        *,
        max_line_length: int = DEFAULT_MAX_LINE_LENGTH,
        keep_ends: bool = False,
    ) -> None:
        super().__init__()
        if not isinstance(delimiter, bytes) or not delimiter:
            raise ValueError(f"the delimiter must be non-empty bytes, not {delimiter!r}")
        if max_line_length < 0:
            raise ValueError(f"max_line_length must be >= 0, not {max_line_length}")
        self.delimiter = delimiter
        self.max_line_length = max_line_length
        self.keep_ends = keep_ends
        # A b"\n" line may carry one b"\r" beyond the limit: it is part of the ending.
        self._delimiter_size = len(delimiter)
        self._strip_cr = delimiter == b"\n"
        self._max_bytes = max_line_length + 1 if self._strip_cr else max_line_length
        # Bytes a delimiter search may look at: past them the line is certainly too long.
        self._window = self._max_bytes + self._delimiter_size

    def __repr__(self) -> str:
        return (
            f"LineFramer({self.delimiter!r}, max_line_length={self.max_line_length}, "
            f"keep_ends={self.keep_ends})"
        )

    def parse(self, buffer: ReceiveBuffer) -> bytes | None:
        """Remove the first complete line from ``buffer`` and return it.

        Returns ``None`` if no delimiter has arrived yet.

        Raises:
          LineTooLongError: the line is longer than ``max_line_length``, or that many bytes
            (plus room for the ending) arrived without a delimiter. ``buffer`` is unchanged.
        """
        delimiter = self.delimiter
        data = buffer._data
        pos = buffer._pos
        # The common case inline (a line is buffered, well within the limit): one find and
        # one slice, no further calls. Anything else takes the general path below.
        resume = buffer._search_start
        if resume and buffer._search_delimiter == delimiter:
            index = data.find(delimiter, pos + resume, pos + self._window)
        else:
            index = data.find(delimiter, pos, pos + self._window)
        if index == -1:
            unread = len(data) - pos
            if unread < self._window:
                # Not here yet: remember where to resume (a delimiter may still start in
                # the last len(delimiter) - 1 bytes), so the next search is not a rescan.
                buffer._search_delimiter = delimiter
                resume = unread - self._delimiter_size + 1
                buffer._search_start = resume if resume > 0 else 0
                return None
        elif not self.keep_ends:
            end = index + self._delimiter_size
            if self._strip_cr and index > pos and data[index - 1] == 0x0D:
                index -= 1
            if index - pos <= self.max_line_length:
                line = data[pos:index]
                if end >= len(data):
                    buffer._data = b""
                    buffer._pos = 0
                else:
                    buffer._pos = end
                buffer._search_start = 0
                return line if type(line) is bytes else bytes(line)
        try:
            found = buffer._find_delimiter(delimiter, self._max_bytes, LineTooLongError)
        except LineTooLongError as exc:
            # Report the limit the caller set, not the one widened for a b"\r".
            raise self._too_long(buffer, exc.size) from None
        if found is None:
            return None
        index = found
        total = index + self._delimiter_size
        # The line's length without its ending: the b"\r" of a b"\r\n" does not count.
        size = (
            index - 1
            if self._strip_cr and index and buffer._data[buffer._pos + index - 1] == 0x0D
            else index
        )
        if size > self.max_line_length:
            raise self._too_long(buffer, index)
        return buffer._extract_frame(total if self.keep_ends else size, total)

    def _too_long(self, buffer: ReceiveBuffer, frame_size: int) -> LineTooLongError:
        """The error for a line of ``frame_size`` bytes before its delimiter, or without one
        in ``frame_size`` buffered bytes (``frame_size == len(buffer)``)."""
        found = frame_size < len(buffer)
        size = frame_size
        if found and self._strip_cr and size and buffer[size - 1] == 0x0D:
            size -= 1
        what = f"line of {size} bytes" if found else f"no {self.delimiter!r} in {size} bytes"
        return LineTooLongError(
            f"{what} exceeds max_line_length={self.max_line_length}, starting {buffer[:32]!r}",
            limit=self.max_line_length,
            size=size,
        )

    def check_eof(self, buffer: ReceiveBuffer) -> None:
        """At end of stream, raise if ``buffer`` holds a line without its delimiter.

        Raises:
          IncompleteFrameError: with the unterminated bytes as ``.partial`` (removed from
            ``buffer``) and ``.expected = None``: a line's length is unknown until it ends.
        """
        if buffer:
            partial = buffer.extract_all()
            raise IncompleteFrameError(
                f"stream ended inside a line, without {self.delimiter!r}: "
                f"{len(partial)} bytes, starting {partial[:32]!r}",
                partial=partial,
            )

    def encode(self, frame: bytes | bytearray | memoryview) -> bytes:
        """Return ``frame`` followed by the delimiter.

        Raises:
          LocalProtocolError: ``frame`` is not bytes-like, is longer than ``max_line_length``,
            contains the delimiter, or (with the ``b"\\n"`` delimiter) ends with ``b"\\r"``,
            which the receiver would strip.
        """
        line = check_bytes(frame, "line")
        if len(line) > self.max_line_length:
            raise LocalProtocolError(
                f"line of {len(line)} bytes exceeds max_line_length={self.max_line_length}"
            )
        out = line + self.delimiter
        # Not just `delimiter in line`: the line's tail may combine with the delimiter into an
        # earlier delimiter (b"ab" + b"aba" holds b"aba" at 0), which would split it on receipt.
        if out.find(self.delimiter) != len(line):
            raise LocalProtocolError(
                f"line contains the delimiter {self.delimiter!r}: {line[:32]!r}"
            )
        if self._strip_cr and not self.keep_ends and line.endswith(b"\r"):
            raise LocalProtocolError(
                f"line ends with b'\\r', which the receiver strips as part of b'\\r\\n': "
                f"{line[-32:]!r}"
            )
        return out
