"""The per-connection setup that runs before the handler: PROXY header, then TLS.

The server runs :meth:`ConnectionSetup.run` in the connection's own task, so a slow or
hostile peer delays only itself; every step has a timeout, so it cannot hold a slot for long.
The order is the wire's: a proxy writes its PROXY header in clear text first, then the TLS
bytes of the client follow (HAProxy's ``send-proxy-v2`` in front of a TLS server).
"""

from __future__ import annotations

import ssl
from dataclasses import dataclass

import trio

from ._connection import Address
from ._tls import DEFAULT_HANDSHAKE_TIMEOUT, tls_handshake

__all__ = ["ConnectionSetup", "Prepared"]


@dataclass(frozen=True, slots=True)
class Prepared:
    """A stream ready for the handler, and what the setup learnt about it.

    Attributes:
      stream: the stream to wrap in a ``Connection`` (a ``trio.SSLStream`` with TLS).
      peer: the client's address when the setup knows better than the socket (PROXY), else
        ``None`` (ask the socket).
      initial_data: bytes already received past the setup's own bytes, for the handler.
    """

    stream: trio.abc.Stream
    peer: Address = None
    initial_data: bytes = b""


@dataclass(frozen=True, slots=True)
class ConnectionSetup:
    """What to do with an accepted stream before the handler sees it.

    Attributes:
      ssl_context: speak TLS (server side) with this context; ``None``: plain TCP.
      handshake_timeout: seconds the TLS handshake may take.
    """

    ssl_context: ssl.SSLContext | None = None
    handshake_timeout: float = DEFAULT_HANDSHAKE_TIMEOUT

    def __post_init__(self) -> None:
        if not self.handshake_timeout > 0:
            raise ValueError("handshake_timeout must be > 0")

    @property
    def needed(self) -> bool:
        """Whether any step is on (if not, the server skips the setup entirely)."""
        return self.ssl_context is not None

    async def run(self, stream: trio.abc.Stream) -> Prepared:
        """Run the steps on ``stream``; return it ready for the handler.

        Raises:
          Refused: a step failed; ``kind`` says which counter to increment. ``stream`` is
            not closed: the caller owns it.

        Cancellation: a cancelled setup leaves ``stream`` open for the caller to close.
        """
        prepared = Prepared(stream)
        if self.ssl_context is not None:
            tls = await tls_handshake(prepared.stream, self.ssl_context, self.handshake_timeout)
            prepared = Prepared(tls, prepared.peer)
        return prepared
