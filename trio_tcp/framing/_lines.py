"""Delimiter-terminated lines (sans-IO, no trio here)."""

from __future__ import annotations

from .._exceptions import IncompleteFrameError, LocalProtocolError
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
        # With b"\n", a b"\r" before it is part of the ending (b"\r\n" lines).
        self._strip_cr = delimiter == b"\n"

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
        return buffer.extract_line(
            self.delimiter,
            max_length=self.max_line_length,
            strip_cr=self._strip_cr,
            keep_ends=self.keep_ends,
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
