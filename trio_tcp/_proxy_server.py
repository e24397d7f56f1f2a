"""The server side of the PROXY protocol: check the source, read the header, keep the rest.

The parsing is sans-IO (:mod:`trio_tcp.framing._proxy`); this is the thin I/O around it. A
header is only believed from a trusted proxy: anyone else could claim to be any client, so a
connection from an untrusted address is refused before a byte is read.
"""

from __future__ import annotations

from typing import Final

import trio

from ._address import Address, Network, client_ip, stream_address
from ._exceptions import ProxyProtocolError
from ._refusal import Refused
from .framing._proxy import MAX_PROXY_HEADER_SIZE, ProxyHeader, parse_proxy_header

__all__ = [
    "DEFAULT_PROXY_HEADER_TIMEOUT",
    "DEFAULT_TRUSTED_PROXIES",
    "PrefixedStream",
    "header_peer",
    "is_trusted",
    "read_proxy_header",
]

#: Seconds the PROXY header may take. A proxy writes it as soon as it has connected, in the
#: same packet as (or before) the client's first bytes; nginx's stream module waits 30 s,
#: but anything slower than a few round trips means the peer is not a proxy at all.
DEFAULT_PROXY_HEADER_TIMEOUT: Final = 5.0
#: Who may send a header when ``trusted_proxies`` is not given: this machine only (a proxy on
#: the same host, the usual sidecar set-up). Anything else must be listed explicitly.
DEFAULT_TRUSTED_PROXIES: Final = ("127.0.0.0/8", "::1/128")


def is_trusted(address: Address, networks: tuple[Network, ...]) -> bool:
    """Whether ``address`` lies in ``networks``.

    Non-IP transports are trusted: a Unix socket is reachable only through its file's
    permissions, and a memory stream only from this process.
    """
    if not isinstance(address, tuple):
        return True
    ip = client_ip(address)
    return ip is not None and any(ip in network for network in networks)


class PrefixedStream(trio.abc.HalfCloseableStream):
    """A stream that first returns ``prefix``, then what ``transport_stream`` receives.

    Holds the bytes that arrived after the PROXY header, so the handler (or the TLS layer)
    reads them first. ``transport_stream`` is public so addresses can be found under it.
    """

    def __init__(self, transport_stream: trio.abc.Stream, prefix: bytes) -> None:
        self.transport_stream = transport_stream
        self._prefix = prefix

    async def receive_some(self, max_bytes: int | None = None) -> bytes:
        """The prefix first (up to ``max_bytes``), then the transport's bytes."""
        if self._prefix:
            await trio.lowlevel.checkpoint()
            size = len(self._prefix) if max_bytes is None else max_bytes
            data, self._prefix = self._prefix[:size], self._prefix[size:]
            return data
        return bytes(await self.transport_stream.receive_some(max_bytes))

    async def send_all(self, data: bytes | bytearray | memoryview) -> None:
        """Send through the transport."""
        await self.transport_stream.send_all(data)

    async def wait_send_all_might_not_block(self) -> None:
        """See ``trio.abc.SendStream``."""
        await self.transport_stream.wait_send_all_might_not_block()

    async def send_eof(self) -> None:
        """Half-close the transport (``TypeError`` if it cannot)."""
        if not isinstance(self.transport_stream, trio.abc.HalfCloseableStream):
            raise TypeError(f"{type(self.transport_stream).__name__} cannot half-close")
        await self.transport_stream.send_eof()

    async def aclose(self) -> None:
        """Close the transport; unread prefix bytes are discarded."""
        self._prefix = b""
        await self.transport_stream.aclose()


async def read_proxy_header(
    stream: trio.abc.Stream, trusted: tuple[Network, ...], timeout: float
) -> tuple[ProxyHeader, bytes]:
    """Check that ``stream`` comes from a trusted proxy, then read its PROXY header.

    Returns:
      ``(header, leftover)``: ``leftover`` is what arrived after the header (the client's
      first bytes), never lost.

    Raises:
      Refused: (kind ``"proxy_rejected"``) an untrusted source, a malformed or missing
        header, the stream ended first, or ``timeout`` seconds passed. ``stream`` is left
        open for the caller to close.

    Cancellation: a cancelled read leaves ``stream`` open for the caller to close.
    """
    try:
        source = stream_address(stream, peer=True, strict=True)
    except OSError:
        raise Refused("proxy_rejected", "PROXY protocol: the peer's address is gone") from None
    if not is_trusted(source, trusted):
        raise Refused("proxy_rejected", "PROXY protocol: not a trusted proxy")
    received = b""
    with trio.move_on_after(timeout):
        while True:
            try:
                parsed = parse_proxy_header(received)
            except ProxyProtocolError as exc:
                raise Refused("proxy_rejected", f"PROXY protocol: {exc}") from None
            if parsed is not None:
                header, consumed = parsed
                return header, received[consumed:]
            try:
                # Bounded by the largest header; bytes past the header come back as leftover.
                chunk = await stream.receive_some(MAX_PROXY_HEADER_SIZE)
            except trio.BrokenResourceError:
                chunk = b""
            if not chunk:
                what = "a complete" if received else "a"
                raise Refused(
                    "proxy_rejected", f"PROXY protocol: the connection ended before {what} header"
                )
            received += chunk
    raise Refused("proxy_rejected", f"PROXY protocol: no header within {timeout:g} s")


def header_peer(header: ProxyHeader) -> Address:
    """The client address a header names, or ``None`` (LOCAL, UNKNOWN: use the socket's)."""
    if header.command != "PROXY" or header.source is None:
        return None
    return header.source
