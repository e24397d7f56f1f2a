"""The framer interface: bytes in, frames out; frames in, bytes out. Sans-IO, no trio here."""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Generic, Protocol, TypeVar

from .._exceptions import LocalProtocolError, RemoteProtocolError
from ._buffer import ReceiveBuffer

__all__ = ["FrameEncoder", "FrameT", "Framer"]

#: The type of the frames a :class:`Framer` hands out (``bytes`` for the framers here).
FrameT = TypeVar("FrameT")

# Covariant, so that a ``Framer[bytes]`` is a ``Framer[object]``: without it, mypy solves
# ``print(await conn.receive_frame(LengthPrefixFramer(2)))`` against print's ``object`` and
# rejects the framer. ``encode`` takes the frame type (a contravariant position); that is
# sound in practice because every framer checks its argument's type at run time and raises
# ``LocalProtocolError`` (the same trade-off as ``Sequence.__contains__`` taking ``object``).
FrameT_co = TypeVar("FrameT_co", covariant=True)


FrameT_contra = TypeVar("FrameT_contra", contravariant=True)


class FrameEncoder(Protocol[FrameT_contra]):
    """What ``Connection.send_frame`` needs: ``encode``, typed by what it accepts.

    Contravariant where :class:`Framer` is covariant, so ``send_frame(LengthPrefixFramer(),
    "text")`` is still a type error (the frame must be something the framer encodes).
    """

    def encode(self, frame: FrameT_contra, /) -> bytes:
        """Return the bytes that carry ``frame`` on the wire."""
        ...


class Framer(ABC, Generic[FrameT_co]):
    """Splits a byte stream into frames of type ``FrameT`` and encodes frames back to bytes.

    A framer can be driven two ways:

    - By an I/O layer that owns the buffer: it calls :meth:`parse` on its own
      :class:`ReceiveBuffer` after each receive and :meth:`check_eof` at end of stream. The
      framer keeps no bytes of its own, so none can be trapped in it.
    - Sans-IO, with the framer's own buffer: :meth:`feed` takes the received bytes (``b""``
      for end of stream) and returns every complete frame.

    Subclasses implement :meth:`parse`, :meth:`check_eof` and :meth:`encode`, and call
    ``super().__init__()``.
    """

    def __init__(self) -> None:
        self._buffer = ReceiveBuffer()
        self._eof = False
        self._error: RemoteProtocolError | None = None

    @abstractmethod
    def parse(self, buffer: ReceiveBuffer) -> FrameT_co | None:
        """Remove one complete frame from the front of ``buffer`` and return it.

        Returns ``None``, leaving every byte in ``buffer``, if the frame is not complete yet.

        Raises:
          FrameTooLargeError: the frame exceeds the framer's limit (raised as soon as that is
            certain, before the rest of the frame arrives).
          MalformedFrameError: a header or delimiter cannot be parsed.

        On error ``buffer`` is left unchanged.
        """

    @abstractmethod
    def check_eof(self, buffer: ReceiveBuffer) -> None:
        """Check ``buffer`` at end of stream, after :meth:`parse` has returned ``None``.

        Does nothing if ``buffer`` is empty.

        Raises:
          IncompleteFrameError: ``buffer`` holds the start of a frame that will never be
            completed. Its bytes are removed from ``buffer`` and carried as ``.partial``;
            ``.expected`` is the frame's full size on the wire when it is known.
        """

    @abstractmethod
    def encode(self, frame: FrameT_co) -> bytes:  # type: ignore[misc]  # see FrameT_co
        """Return the bytes that carry ``frame`` on the wire.

        Raises:
          LocalProtocolError: ``frame`` cannot be encoded (wrong type, over the limit, ...).
        """

    @property
    def buffer(self) -> ReceiveBuffer:
        """The buffer :meth:`feed` uses: the bytes received that are not yet a whole frame."""
        return self._buffer

    def feed(self, data: bytes | bytearray | memoryview) -> list[FrameT_co]:
        """Add received bytes and return every frame now complete, in order.

        ``b""`` means end of stream: it returns the last frames, if any, and checks that no
        partial frame is left. Frames already parsed are never lost to an error: if the bytes
        after them are bad, this call returns the good frames and the next call raises.

        Raises:
          FrameTooLargeError, MalformedFrameError: the peer broke the framing. The framer is
            then broken: every later call raises the same error.
          IncompleteFrameError: at end of stream, a frame is incomplete (``.partial`` holds
            its bytes).
          RuntimeError: ``feed`` was called again after end of stream.
        """
        if self._error is not None:
            raise self._error
        if self._eof:
            raise RuntimeError(f"{type(self).__name__}.feed() called after end of stream (b'')")
        if not data:
            self._eof = True
        self._buffer.feed(data)
        frames: list[FrameT_co] = []
        try:
            while (frame := self.parse(self._buffer)) is not None:
                frames.append(frame)
            if self._eof:
                self.check_eof(self._buffer)
        except RemoteProtocolError as exc:
            self._error = exc
            if not frames:
                raise
        return frames


def check_bytes(frame: object, kind: str) -> bytes:
    """Return ``frame`` as bytes, or raise LocalProtocolError if it is not bytes-like."""
    if isinstance(frame, bytes):
        return frame
    if isinstance(frame, bytearray | memoryview):
        return bytes(frame)
    raise LocalProtocolError(f"a {kind} must be bytes, not {type(frame).__name__}")
