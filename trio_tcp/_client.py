"""Clients: `open_connection` (TCP, on ``trio.open_tcp_stream``) and `open_unix_connection`."""

from __future__ import annotations

import os
import ssl

import trio

from ._connection import Connection
from ._exceptions import ConnectTimeoutError

__all__ = ["open_connection", "open_unix_connection"]


async def open_connection(
    host: str = "127.0.0.1",
    port: int = 3099,
    *,
    connect_timeout: float | None = None,
    happy_eyeballs_delay: float | None = 0.25,
    local_address: str | None = None,
    ssl_context: ssl.SSLContext | None = None,
    server_hostname: str | None = None,
) -> Connection:
    """Connect to ``host:port`` and return a :class:`Connection` (use ``async with``).

    Built on ``trio.open_tcp_stream``, so a name with several addresses is tried with happy
    eyeballs (RFC 8305). With ``ssl_context``, the connection is TLS (``trio.SSLStream``) and
    the handshake completes before this returns.

    Args:
      connect_timeout: give up after this many seconds (DNS, connect and TLS handshake
        together). ``None``: wait as long as the OS does.
      happy_eyeballs_delay: see ``trio.open_tcp_stream``.
      local_address: bind the client socket to this local IP first.
      ssl_context: speak TLS with this context (e.g. ``ssl.create_default_context()``).
      server_hostname: the name to verify the certificate against (default: ``host``).

    Raises:
      ConnectTimeoutError: ``connect_timeout`` passed (also a ``TimeoutError``).
      OSError: the connection failed (``ConnectionRefusedError``: nothing listens there).
      socket.gaierror: ``host`` cannot be resolved.
      trio.BrokenResourceError: the TLS handshake failed; its ``__cause__`` is the
        ``ssl.SSLError`` (``SSLCertVerificationError`` for a bad certificate, say).

    Cancellation: a cancelled call leaves nothing open.
    """
    if not 0 < port <= 65535:
        raise ValueError(f"port must be 1-65535, not {port}")
    with trio.move_on_after(connect_timeout if connect_timeout is not None else float("inf")):
        stream = await trio.open_tcp_stream(
            host, port, happy_eyeballs_delay=happy_eyeballs_delay, local_address=local_address
        )
        if ssl_context is None:
            return Connection(stream)
        tls = trio.SSLStream(
            stream, ssl_context, server_hostname=server_hostname or host, https_compatible=False
        )
        try:
            await tls.do_handshake()
        except BaseException:
            await trio.aclose_forcefully(stream)
            raise
        return Connection(tls)
    raise ConnectTimeoutError(f"could not connect to {host}:{port} within {connect_timeout} s")


async def open_unix_connection(
    path: str | os.PathLike[str], *, connect_timeout: float | None = None
) -> Connection:
    """Connect to the Unix socket at ``path`` and return a :class:`Connection`.

    Raises:
      ConnectTimeoutError: ``connect_timeout`` passed.
      FileNotFoundError: no socket at ``path``.
      ConnectionRefusedError: the socket file exists but nobody listens on it.

    Cancellation: a cancelled call leaves nothing open.
    """
    with trio.move_on_after(connect_timeout if connect_timeout is not None else float("inf")):
        return Connection(await trio.open_unix_socket(os.fspath(path)))
    raise ConnectTimeoutError(f"could not connect to {os.fspath(path)} within {connect_timeout} s")
