"""The per-connection setup that runs before the handler: PROXY header, then TLS.

The server runs :meth:`ConnectionSetup.run` in the connection's own task, so a slow or
hostile peer delays only itself; every step has a timeout, so it cannot hold a slot for long.
The order is the wire's: a proxy writes its PROXY header in clear text first, then the TLS
bytes of the client follow (HAProxy's ``send-proxy-v2`` in front of a TLS server).
"""

from __future__ import annotations

import ssl
from collections.abc import Callable, Iterable
from dataclasses import dataclass

import trio

from ._address import Address, Network, parse_networks, stream_address
from ._admission import Admission
from ._proxy_server import (
    DEFAULT_PROXY_HEADER_TIMEOUT,
    DEFAULT_TRUSTED_PROXIES,
    PrefixedStream,
    header_peer,
    read_proxy_header,
)
from ._refusal import Refused
from ._tls import DEFAULT_HANDSHAKE_TIMEOUT, tls_handshake

__all__ = ["ConnectionSetup", "Prepared"]


@dataclass(frozen=True, slots=True)
class Prepared:
    """A stream ready for the handler, and what the setup learnt about it.

    Attributes:
      stream: the stream to wrap in a ``Connection`` (a ``trio.SSLStream`` with TLS).
      peer: the client's address when the setup knows better than the socket (PROXY), else
        ``None`` (ask the socket).
      release: call when the connection closes (admission control counts live connections).
    """

    stream: trio.abc.Stream
    peer: Address = None
    release: Callable[[], None] | None = None


@dataclass(frozen=True, slots=True)
class ConnectionSetup:
    """What to do with an accepted stream before the handler sees it.

    Attributes:
      ssl_context: speak TLS (server side) with this context; ``None``: plain TCP.
      handshake_timeout: seconds the TLS handshake may take.
      proxy_protocol: every connection must start with a PROXY header (v1 or v2).
      trusted_proxies: the networks a PROXY header is accepted from.
      proxy_header_timeout: seconds the PROXY header may take.
      admission: the admission rules, checked on the client's address after the PROXY
        header and before TLS (a refused peer costs no handshake).
    """

    ssl_context: ssl.SSLContext | None = None
    handshake_timeout: float = DEFAULT_HANDSHAKE_TIMEOUT
    proxy_protocol: bool = False
    trusted_proxies: tuple[Network, ...] = ()
    proxy_header_timeout: float = DEFAULT_PROXY_HEADER_TIMEOUT
    admission: Admission | None = None

    def __post_init__(self) -> None:
        if not self.handshake_timeout > 0:
            raise ValueError("handshake_timeout must be > 0")
        if not self.proxy_header_timeout > 0:
            raise ValueError("proxy_header_timeout must be > 0")

    @classmethod
    def from_options(
        cls,
        *,
        ssl_context: ssl.SSLContext | None,
        handshake_timeout: float,
        proxy_protocol: bool,
        trusted_proxies: Iterable[str] | None,
        proxy_header_timeout: float,
        admission: Admission | None = None,
    ) -> ConnectionSetup:
        """Build it from ``serve``'s keyword arguments (``trusted_proxies`` as strings).

        Raises:
          ValueError: a timeout is not positive, or a trusted proxy is not an address or
            CIDR network.
        """
        if isinstance(trusted_proxies, str):
            raise ValueError("trusted_proxies must be a list of addresses, not a string")
        networks = parse_networks(
            DEFAULT_TRUSTED_PROXIES if trusted_proxies is None else trusted_proxies
        )
        return cls(
            ssl_context=ssl_context,
            handshake_timeout=handshake_timeout,
            proxy_protocol=proxy_protocol,
            trusted_proxies=networks,
            proxy_header_timeout=proxy_header_timeout,
            admission=admission if admission is not None and admission.needed else None,
        )

    @property
    def needed(self) -> bool:
        """Whether any step is on (if not, the server skips the setup entirely)."""
        return self.ssl_context is not None or self.proxy_protocol or self.admission is not None

    async def run(self, stream: trio.abc.Stream) -> Prepared:
        """Run the steps on ``stream``; return it ready for the handler.

        Raises:
          Refused: a step failed; ``kind`` says which counter to increment. ``stream`` is
            not closed: the caller owns it.

        Cancellation: a cancelled setup leaves ``stream`` open for the caller to close.
        """
        prepared = Prepared(stream)
        if self.proxy_protocol:
            header, leftover = await read_proxy_header(
                stream, self.trusted_proxies, self.proxy_header_timeout
            )
            if leftover:  # the client's first bytes came with the header: keep them
                stream = PrefixedStream(stream, leftover)
            prepared = Prepared(stream, header_peer(header))
        release: Callable[[], None] | None = None
        if self.admission is not None:
            try:
                client = prepared.peer or stream_address(stream, peer=True, strict=True)
            except OSError:  # the peer reset before we looked: no address to judge, refuse
                raise Refused("refused_denied", "the peer's address is gone") from None
            key = self.admission.admit(client)
            admission = self.admission
            release = lambda: admission.release(key)  # noqa: E731
        try:
            if self.ssl_context is not None:
                tls = await tls_handshake(prepared.stream, self.ssl_context, self.handshake_timeout)
                prepared = Prepared(tls, prepared.peer)
        except BaseException:
            if release is not None:
                release()
            raise
        return Prepared(prepared.stream, prepared.peer, release)
