"""trio_tcp: TCP servers and clients with Trio's structured concurrency.

::

    import trio, trio_tcp

    async def handler(conn: trio_tcp.Connection) -> None:
        async for chunk in conn:
            print(trio_tcp.format_buffer(chunk))       # <Buffer 0c 22>

    async def main() -> None:
        async with trio.open_nursery() as nursery:
            server = await nursery.start(trio_tcp.serve, handler, 3099)
            async with await trio_tcp.open_connection("127.0.0.1", server.port) as conn:
                await conn.send_all(bytes([12, 34]))
            ...
            await server.aclose()

The layers, imports pointing down: the command line and notebook helper; server and
client; :class:`Connection` (one stream plus a receive buffer); :mod:`trio_tcp.framing`
(sans-IO). :mod:`trio_tcp.testing` and its pytest plugin stand beside them.
"""

from __future__ import annotations

from ._client import open_connection, open_unix_connection
from ._connection import Address, Connection, format_address
from ._exceptions import (
    ConnectTimeoutError,
    EndOfStream,
    FrameTooLargeError,
    IncompleteFrameError,
    LineTooLongError,
    LocalProtocolError,
    MalformedFrameError,
    ProtocolError,
    ProxyProtocolError,
    RemoteProtocolError,
    TrioTCPError,
)
from ._format import format_buffer
from ._listeners import UnixSocketListener, open_tcp_listeners, open_unix_listener
from ._proxy_server import DEFAULT_PROXY_HEADER_TIMEOUT
from ._server import (
    DEFAULT_GRACE_PERIOD,
    DEFAULT_MAX_CONNECTIONS,
    DEFAULT_PORT,
    Handler,
    Server,
    ServerStats,
    serve,
    serve_listeners,
    stream_handler,
)
from ._tls import DEFAULT_HANDSHAKE_TIMEOUT

__version__ = "0.1.0"

__all__ = [
    "DEFAULT_GRACE_PERIOD",
    "DEFAULT_HANDSHAKE_TIMEOUT",
    "DEFAULT_MAX_CONNECTIONS",
    "DEFAULT_PORT",
    "DEFAULT_PROXY_HEADER_TIMEOUT",
    "Address",
    "ConnectTimeoutError",
    "Connection",
    "EndOfStream",
    "FrameTooLargeError",
    "Handler",
    "IncompleteFrameError",
    "LineTooLongError",
    "LocalProtocolError",
    "MalformedFrameError",
    "ProtocolError",
    "ProxyProtocolError",
    "RemoteProtocolError",
    "Server",
    "ServerStats",
    "TrioTCPError",
    "UnixSocketListener",
    "format_address",
    "format_buffer",
    "open_connection",
    "open_tcp_listeners",
    "open_unix_connection",
    "open_unix_listener",
    "serve",
    "serve_listeners",
    "stream_handler",
]
