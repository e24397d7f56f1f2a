"""Sans-IO framing: bytes in, frames out; frames in, bytes out.

Nothing here imports trio or touches a socket, so the framers work with any I/O (and in
tests without any)::

    >>> from trio_tcp.framing import LineFramer
    >>> framer = LineFramer()
    >>> framer.feed(b"hello\\r\\nwor")
    [b'hello']
    >>> framer.feed(b"ld\\n")
    [b'world']
    >>> framer.encode(b"hi")
    b'hi\\n'

Every framer (:class:`LineFramer`, :class:`LengthPrefixFramer`, :class:`NetstringFramer`, or
your own :class:`Framer` subclass) has a size limit and raises a
:class:`~trio_tcp.RemoteProtocolError` subclass when the peer breaks the framing. The error
classes are re-exported here for convenience; they are the same objects as in ``trio_tcp``.
"""

from __future__ import annotations

from .._exceptions import (
    FrameTooLargeError,
    IncompleteFrameError,
    LineTooLongError,
    LocalProtocolError,
    MalformedFrameError,
    ProtocolError,
    ProxyProtocolError,
    RemoteProtocolError,
)
from ._base import FrameEncoder, Framer, FrameT
from ._buffer import ReceiveBuffer
from ._length import DEFAULT_MAX_FRAME_SIZE, LengthPrefixFramer
from ._lines import DEFAULT_MAX_LINE_LENGTH, LineFramer
from ._netstring import NetstringFramer
from ._proxy import (
    MAX_PROXY_HEADER_SIZE,
    ProxyAddress,
    ProxyCommand,
    ProxyFamily,
    ProxyHeader,
    encode_proxy_header_v1,
    encode_proxy_header_v2,
    parse_proxy_header,
)

__all__ = [
    "DEFAULT_MAX_FRAME_SIZE",
    "DEFAULT_MAX_LINE_LENGTH",
    "MAX_PROXY_HEADER_SIZE",
    "FrameEncoder",
    "FrameT",
    "FrameTooLargeError",
    "Framer",
    "IncompleteFrameError",
    "LengthPrefixFramer",
    "LineFramer",
    "LineTooLongError",
    "LocalProtocolError",
    "MalformedFrameError",
    "NetstringFramer",
    "ProtocolError",
    "ProxyAddress",
    "ProxyCommand",
    "ProxyFamily",
    "ProxyHeader",
    "ProxyProtocolError",
    "ReceiveBuffer",
    "RemoteProtocolError",
    "encode_proxy_header_v1",
    "encode_proxy_header_v2",
    "parse_proxy_header",
]
