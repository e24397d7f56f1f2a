"""D. J. Bernstein's netstrings, ``b"5:hello,"`` (https://cr.yp.to/proto/netstrings.txt).

Sans-IO, no trio here.
"""

from __future__ import annotations

from .._exceptions import (
    FrameTooLargeError,
    IncompleteFrameError,
    LocalProtocolError,
    MalformedFrameError,
)
from ._base import Framer, check_bytes
from ._buffer import ReceiveBuffer
from ._length import DEFAULT_MAX_FRAME_SIZE

__all__ = ["NetstringFramer"]

_QUOTE_BYTES = 32


class NetstringFramer(Framer[bytes]):
    """Frames are netstrings: ``b"5:hello,"`` carries ``b"hello"``.

    Parsing is strict, as the specification asks: the length is ASCII digits without a sign,
    spaces or leading zeros (``b"0:,"`` is the only length starting with ``0``), followed by
    ``b":"``, the body and ``b","``. The header is checked byte by byte as it arrives, so
    garbage, or a flood of digits announcing more than ``max_frame_size``, fails at once
    instead of being buffered.

    Args:
      max_frame_size: the largest body accepted or sent.

    Raises:
      ValueError: ``max_frame_size`` is negative.
    """

    def __init__(self, *, max_frame_size: int = DEFAULT_MAX_FRAME_SIZE) -> None:
        super().__init__()
        if max_frame_size < 0:
            raise ValueError(f"max_frame_size must be >= 0, not {max_frame_size}")
        self.max_frame_size = max_frame_size
        self._max_digits = len(str(max_frame_size))

    def __repr__(self) -> str:
        return f"NetstringFramer(max_frame_size={self.max_frame_size})"

    def _header(self, buffer: ReceiveBuffer) -> tuple[int, int] | None:
        """Validate the buffered header: (length, header size with the colon), or None."""
        head = buffer[: self._max_digits + 1]
        # Judge the header left to right, so the error does not depend on how the bytes were
        # chunked: whatever is wrong earliest in the stream is what gets reported.
        end = 0
        while end < len(head) and 0x30 <= head[end] <= 0x39:
            end += 1
        digits = head[:end]
        if len(digits) > 1 and digits[0] == 0x30:
            raise MalformedFrameError(
                f"netstring length has a leading zero: {buffer[:_QUOTE_BYTES]!r}",
                data=buffer[:_QUOTE_BYTES],
            )
        # Digits so far already over the limit (more digits than max_frame_size has, or as
        # many with a larger value): fail now, before the colon or the body arrive.
        if digits and int(digits) > self.max_frame_size:
            size = int(digits)
            more = "at least " if end == len(head) else ""
            raise FrameTooLargeError(
                f"netstring announces {more}{size} bytes, over "
                f"max_frame_size={self.max_frame_size}: {buffer[:_QUOTE_BYTES]!r}",
                limit=self.max_frame_size,
                size=size,
            )
        if end == len(head):
            return None  # only digits so far: the colon has not arrived yet
        if head[end] != 0x3A:
            raise MalformedFrameError(
                f"netstring length must be ASCII digits, got {head[end : end + 1]!r} "
                f"at offset {end} in {buffer[:_QUOTE_BYTES]!r}",
                data=buffer[:_QUOTE_BYTES],
            )
        if end == 0:
            raise MalformedFrameError(
                f"netstring has no length before b':': {buffer[:_QUOTE_BYTES]!r}",
                data=buffer[:_QUOTE_BYTES],
            )
        return int(digits), end + 1

    def parse(self, buffer: ReceiveBuffer) -> bytes | None:
        """Remove the first complete netstring from ``buffer`` and return its body.

        Returns ``None`` if the netstring is not complete yet (and what has arrived is valid).

        Raises:
          MalformedFrameError: the length is not plain digits, is empty or has a leading zero,
            or the body is not followed by ``b","``. ``.data`` holds the offending bytes (for a
            missing comma: the bytes found where the comma belongs).
          FrameTooLargeError: the length (or the digits received so far) exceeds
            ``max_frame_size``.

        On error ``buffer`` is unchanged.
        """
        header = self._header(buffer)
        if header is None:
            return None
        length, header_size = header
        comma_at = header_size + length
        if len(buffer) <= comma_at:
            return None
        if buffer[comma_at] != 0x2C:
            found = buffer[comma_at : comma_at + _QUOTE_BYTES]
            raise MalformedFrameError(
                f"netstring of {length} bytes must end with b',', found {found!r} "
                f"(header {buffer[:header_size]!r})",
                data=found,
            )
        buffer.extract(header_size)
        body = buffer.extract(length)
        buffer.extract(1)
        return body

    def check_eof(self, buffer: ReceiveBuffer) -> None:
        """At end of stream, raise if ``buffer`` holds part of a netstring.

        Raises:
          IncompleteFrameError: ``.partial`` is every leftover byte (removed from ``buffer``);
            ``.expected`` is the whole netstring's size once its header is complete, else
            ``None``.
        """
        if not buffer:
            return
        header = self._header(buffer)
        expected = None if header is None else header[1] + header[0] + 1
        partial = buffer.extract_all()
        raise IncompleteFrameError(
            f"stream ended inside a netstring: got {len(partial)}"
            + (f" of {expected}" if expected is not None else "")
            + f" bytes, starting {partial[:_QUOTE_BYTES]!r}",
            partial=partial,
            expected=expected,
        )

    def encode(self, frame: bytes | bytearray | memoryview) -> bytes:
        """Return ``frame`` as a netstring.

        Raises:
          LocalProtocolError: ``frame`` is not bytes-like or is longer than ``max_frame_size``.
        """
        body = check_bytes(frame, "netstring body")
        if len(body) > self.max_frame_size:
            raise LocalProtocolError(
                f"netstring body of {len(body)} bytes exceeds max_frame_size={self.max_frame_size}"
            )
        return b"%d:%s," % (len(body), body)
