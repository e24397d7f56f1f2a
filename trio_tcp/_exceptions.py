"""The one error tree of trio_tcp.

Stream *states* use Trio's own exceptions, so code written for Trio streams keeps working:
``trio.ClosedResourceError`` (this side closed it), ``trio.BrokenResourceError`` (the peer or
the network broke it) and ``trio.BusyResourceError`` (two tasks read, or two tasks write, at
once). Everything trio_tcp itself decides is one of these::

    TrioTCPError
     ├── ProtocolError                 the bytes break the framing rules
     │    ├── RemoteProtocolError      ... and the peer sent them (h11's split)
     │    │    ├── FrameTooLargeError       a frame, line or header exceeds its limit
     │    │    │    └── LineTooLongError    ... and it is a line
     │    │    ├── IncompleteFrameError     end of stream inside a frame; carries .partial
     │    │    └── MalformedFrameError      a header or delimiter that cannot be parsed
     │    │         └── ProxyProtocolError  a bad, missing or untrusted PROXY header
     │    └── LocalProtocolError       we were asked to send what the framing cannot encode
     ├── EndOfStream                   the peer ended the stream cleanly before a read's first byte
     │                                 (also an EOFError; IncompleteFrameError is an EOFError too)
     ├── ConnectTimeoutError           open_connection gave up (also a TimeoutError)
     └── CheckFailedError              a trio_tcp.testing check found a bug (also an AssertionError)

This module never imports trio: the sans-IO framing layer raises these too.
"""

from __future__ import annotations

__all__ = [
    "CheckFailedError",
    "ConnectTimeoutError",
    "EndOfStream",
    "FrameTooLargeError",
    "IncompleteFrameError",
    "LineTooLongError",
    "LocalProtocolError",
    "MalformedFrameError",
    "ProtocolError",
    "ProxyProtocolError",
    "RemoteProtocolError",
    "TrioTCPError",
]


class TrioTCPError(Exception):
    """Base class of every error trio_tcp raises itself."""


class ProtocolError(TrioTCPError):
    """The bytes on the wire break the framing rules (see the two subclasses)."""


class RemoteProtocolError(ProtocolError):
    """The peer sent bytes that break the framing rules.

    The connection that received them is in an undefined framing state: close it (the server
    does this for you when a handler lets the error escape).
    """


class LocalProtocolError(ProtocolError):
    """We were asked to send something the framing cannot encode (a frame over its limit, a
    line that contains its own delimiter). Nothing was sent."""


class FrameTooLargeError(RemoteProtocolError):
    """A frame, line or header exceeds its size limit.

    Attributes:
      limit: the limit in bytes that was exceeded.
      size: how many bytes the frame has (or at least has, when the peer announced more or
        the delimiter has not arrived yet).
    """

    def __init__(self, message: str, *, limit: int, size: int) -> None:
        super().__init__(message)
        self.limit = limit
        self.size = size


class LineTooLongError(FrameTooLargeError):
    """A line exceeds ``max_line_length`` before its delimiter arrived."""


class IncompleteFrameError(RemoteProtocolError, EOFError):
    """The stream ended in the middle of a frame, line or exact read.

    Attributes:
      partial: the bytes that did arrive (never lost: here they are).
      expected: how many bytes the frame needed in all, or ``None`` when the framing cannot
        know (a line whose delimiter never came).
    """

    def __init__(self, message: str, *, partial: bytes, expected: int | None = None) -> None:
        super().__init__(message)
        self.partial = partial
        self.expected = expected


class MalformedFrameError(RemoteProtocolError):
    """A header, length or delimiter that cannot be parsed.

    Attributes:
      data: the offending bytes (at most a short prefix of them).
    """

    def __init__(self, message: str, *, data: bytes = b"") -> None:
        super().__init__(message)
        self.data = data


class ProxyProtocolError(MalformedFrameError):
    """A PROXY protocol header that is missing, malformed, or sent by an untrusted peer."""


class EndOfStream(TrioTCPError, EOFError):
    """The peer ended the stream cleanly before the first byte of a buffered read.

    This is the normal end of a conversation, not a protocol error: the async iterators
    (``async for line in conn.lines()``, ``conn.frames(...)``) simply stop on it.
    """


class ConnectTimeoutError(TrioTCPError, TimeoutError):
    """``open_connection`` could not connect within ``connect_timeout`` seconds."""


class CheckFailedError(TrioTCPError, AssertionError):
    """A check of :mod:`trio_tcp.testing` (a cancellation sweep, a conformance check) found
    a bug in the code under test. An ``AssertionError`` too, so pytest reports a failure.

    Attributes:
      point: the cancellation point (1, 2, 3 ...) the sweep was at, or ``None``.
      location: ``"file:line in function"`` where the handler was when it went wrong, or
        ``None`` when no single place is to blame.
    """

    def __init__(
        self, message: str, *, point: int | None = None, location: str | None = None
    ) -> None:
        super().__init__(message)
        self.point = point
        self.location = location
