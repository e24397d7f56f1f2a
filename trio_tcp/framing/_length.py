"""Frames behind a big-endian length header (sans-IO, no trio here)."""

from __future__ import annotations

from .._exceptions import FrameTooLargeError, IncompleteFrameError, LocalProtocolError
from ._base import Framer, check_bytes
from ._buffer import ReceiveBuffer

__all__ = ["DEFAULT_MAX_FRAME_SIZE", "LengthPrefixFramer"]

#: The largest frame a framer accepts by default, 1 MiB: websockets' default ``max_size``
#: (2**20), big enough for messages, small enough for many peers.
DEFAULT_MAX_FRAME_SIZE = 1024 * 1024

_HEADER_SIZES = (1, 2, 4, 8)


class LengthPrefixFramer(Framer[bytes]):
    """Frames are byte strings, each sent after its length as a big-endian unsigned integer.

    ``LengthPrefixFramer(2)`` sends ``b"hi"`` as ``b"\\x00\\x02hi"``. A header that announces
    more than ``max_frame_size`` is rejected as soon as the header arrives, so a peer can never
    make the framer buffer more than ``header_size + max_frame_size`` bytes.

    Args:
      header_size: the header's size in bytes: 1, 2, 4 or 8.
      max_frame_size: the largest frame (body, not counting the header) accepted or sent.

    Raises:
      ValueError: ``header_size`` is not 1, 2, 4 or 8, or ``max_frame_size`` is negative.
    """

    def __init__(
        self, header_size: int = 4, *, max_frame_size: int = DEFAULT_MAX_FRAME_SIZE
    ) -> None:
        super().__init__()
        if header_size not in _HEADER_SIZES or isinstance(header_size, bool):
            raise ValueError(f"header_size must be 1, 2, 4 or 8, not {header_size!r}")
        if max_frame_size < 0:
            raise ValueError(f"max_frame_size must be >= 0, not {max_frame_size}")
        self.header_size = header_size
        self.max_frame_size = max_frame_size
        self._max_encodable = min(max_frame_size, 256**header_size - 1)

    def __repr__(self) -> str:
        return f"LengthPrefixFramer({self.header_size}, max_frame_size={self.max_frame_size})"

    def _announced(self, buffer: ReceiveBuffer) -> int | None:
        """The length the buffered header announces, or None if the header is incomplete."""
        if len(buffer) < self.header_size:
            return None
        return int.from_bytes(buffer[: self.header_size], "big")

    def parse(self, buffer: ReceiveBuffer) -> bytes | None:
        """Remove the first complete frame from ``buffer`` and return its body.

        Returns ``None`` if the header or the body is not complete yet.

        Raises:
          FrameTooLargeError: the header announces more than ``max_frame_size`` bytes
            (``.size`` is the announced length). Raised before the body arrives; ``buffer`` is
            unchanged.
        """
        length = self._announced(buffer)
        if length is None:
            return None
        if length > self.max_frame_size:
            raise FrameTooLargeError(
                f"header announces a frame of {length} bytes, over max_frame_size="
                f"{self.max_frame_size} (header {buffer[: self.header_size]!r})",
                limit=self.max_frame_size,
                size=length,
            )
        if len(buffer) < self.header_size + length:
            return None
        buffer.extract(self.header_size)
        return buffer.extract(length)

    def check_eof(self, buffer: ReceiveBuffer) -> None:
        """At end of stream, raise if ``buffer`` holds part of a header or a frame.

        Raises:
          IncompleteFrameError: ``.partial`` is every leftover byte, header included (removed
            from ``buffer``); ``.expected`` is header plus announced body, or ``None`` if the
            header itself is incomplete.
        """
        if not buffer:
            return
        length = self._announced(buffer)
        expected = None if length is None else self.header_size + length
        partial = buffer.extract_all()
        raise IncompleteFrameError(
            f"stream ended inside a frame: got {len(partial)} of "
            + (
                f"{expected} bytes"
                if expected is not None
                else f"the {self.header_size}-byte header"
            )
            + f", starting {partial[:32]!r}",
            partial=partial,
            expected=expected,
        )

    def encode(self, frame: bytes | bytearray | memoryview) -> bytes:
        """Return the header followed by ``frame``.

        Raises:
          LocalProtocolError: ``frame`` is not bytes-like, is longer than ``max_frame_size``, or is
            too long for the header to express.
        """
        body = check_bytes(frame, "frame")
        if len(body) > self._max_encodable:
            raise LocalProtocolError(
                f"frame of {len(body)} bytes exceeds "
                + (
                    f"max_frame_size={self.max_frame_size}"
                    if len(body) > self.max_frame_size
                    else f"what a {self.header_size}-byte header can express"
                )
            )
        return len(body).to_bytes(self.header_size, "big") + body
