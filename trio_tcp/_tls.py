"""The server side of TLS: wrap an accepted stream in ``trio.SSLStream`` and shake hands.

Trio gives ``trio.SSLStream`` but no handshake timeout: a peer that connects and never sends
a ClientHello would hold its task, its socket and its ``max_connections`` slot forever. The
server therefore does the handshake in the connection's own task, *before* the handler runs,
under :data:`DEFAULT_HANDSHAKE_TIMEOUT`.
"""

from __future__ import annotations

import ssl
from typing import Final

import trio

from ._refusal import Refused

__all__ = ["DEFAULT_HANDSHAKE_TIMEOUT", "TLS_CLOSE_TIMEOUT", "close_tls", "tls_handshake"]

#: Seconds a TLS handshake may take. A real handshake is one or two round trips (well under a
#: second even over a 600 ms satellite link); Node's ``tls.Server`` waits 120 s and websockets'
#: ``open_timeout`` is 10 s. 10 s leaves a wide margin for slow clients while a peer that never
#: finishes holds its slot for 10 s at most.
DEFAULT_HANDSHAKE_TIMEOUT: Final = 10.0


def _reason(exc: BaseException) -> str:
    """One line saying why a handshake failed: the ``ssl`` reason, not a traceback."""
    cause = exc.__cause__ or exc.__context__
    if isinstance(cause, ssl.SSLError):
        return cause.reason or str(cause)
    if isinstance(cause, OSError):
        return cause.strerror or type(cause).__name__
    if isinstance(exc, trio.BrokenResourceError) and cause is None:
        return "the peer closed the connection during the handshake"
    return str(exc) or type(exc).__name__


async def tls_handshake(
    stream: trio.abc.Stream, ssl_context: ssl.SSLContext, timeout: float
) -> trio.SSLStream[trio.abc.Stream]:
    """Wrap ``stream`` in a server-side ``trio.SSLStream`` and complete the handshake.

    Raises:
      Refused: (kind ``"tls_failed"``) the handshake failed, the peer went away, or it
        took longer than ``timeout`` seconds. ``stream`` is not closed: the caller owns it.

    Cancellation: a cancelled handshake leaves ``stream`` open for the caller to close.
    """
    tls = trio.SSLStream(stream, ssl_context, server_side=True, https_compatible=False)
    with trio.move_on_after(timeout) as scope:
        try:
            await tls.do_handshake()
        except (trio.BrokenResourceError, ssl.SSLError, OSError) as exc:
            raise Refused("tls_failed", f"TLS handshake failed: {_reason(exc)}") from None
    if scope.cancelled_caught:
        raise Refused("tls_failed", f"TLS handshake did not finish within {timeout:g} s")
    return tls


#: Seconds to spend sending TLS's close_notify when a connection ends. Without it a TLS client
#: sees a truncated stream (an error) instead of a clean end; the alert is one small record, so
#: only a peer that stopped reading makes this wait, and then not for long.
TLS_CLOSE_TIMEOUT: Final = 1.0


async def close_tls(stream: trio.abc.AsyncResource) -> None:
    """Close ``stream`` (whose transport is TLS) cleanly, sending close_notify if we can.

    Cancellation: the stream is closed whatever happens (Trio's rule for ``aclose``).
    """
    try:
        with trio.move_on_after(TLS_CLOSE_TIMEOUT):
            await stream.aclose()
    except (trio.BrokenResourceError, trio.ClosedResourceError):
        pass  # the peer is gone: nothing to tell it
    finally:
        await trio.aclose_forcefully(stream)
