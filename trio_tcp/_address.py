"""Addresses: how a peer or local address is found, written and judged.

One module below the connection, the server and the per-connection setup, so each of them
asks the same question the same way: what is this stream's peer (:func:`stream_address`),
how do we print it (:func:`format_address`), and which IP is it (:func:`client_ip`, used by
admission control and the PROXY protocol's trusted-proxy check alike).
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Iterable
from typing import TypeAlias

import trio

__all__ = [
    "IP",
    "Address",
    "Network",
    "address_from_socket",
    "client_ip",
    "format_address",
    "parse_networks",
    "stream_address",
]

#: A peer or local address: ``(host, port)`` for TCP, a path for a Unix socket, ``None``
#: where the transport has no address (a memory stream).
Address: TypeAlias = "tuple[str, int] | str | None"
IP: TypeAlias = "ipaddress.IPv4Address | ipaddress.IPv6Address"
Network: TypeAlias = "ipaddress.IPv4Network | ipaddress.IPv6Network"

# Wrappers nest a level or two (SSLStream over PrefixedStream over a socket stream).
_MAX_WRAPPERS = 8


def address_from_socket(raw: object) -> Address:
    """An address as ``getpeername``/``getsockname`` return it, as an :data:`Address`."""
    if isinstance(raw, tuple) and len(raw) >= 2:
        return (str(raw[0]), int(raw[1]))
    if isinstance(raw, bytes):  # abstract Unix socket names come back as bytes
        return raw.decode("utf-8", "backslashreplace")
    if isinstance(raw, str):
        return raw
    return None


def stream_address(stream: trio.abc.Stream, *, peer: bool, strict: bool = False) -> Address:
    """Find the socket under ``stream`` (through SSLStream and friends) and ask it.

    A stream with a ``socket`` attribute holding a Trio socket (``trio.SocketStream``,
    trio_tcp's own socket stream) is asked directly, unless it knows its peer's address from
    ``accept`` (``peer_address``); a wrapper is followed through its ``transport_stream``.

    ``None`` for a stream with no socket, or one that will not say (closed, or the peer
    reset). With ``strict``, an IP socket that will not say raises its ``OSError`` instead:
    access rules must never mistake a reset TCP peer for a trusted non-IP one.
    """
    inner: object = stream
    for _ in range(_MAX_WRAPPERS):  # never loop forever on a cycle
        sock = getattr(inner, "socket", None)
        if isinstance(sock, trio.socket.SocketType):
            known = getattr(inner, "peer_address", None) if peer else None
            if known is not None:  # from accept(): still known after the peer reset
                return address_from_socket(known)
            try:
                raw = sock.getpeername() if peer else sock.getsockname()
            except OSError:  # already closed, or the peer is gone
                if strict and sock.family in (socket.AF_INET, socket.AF_INET6):
                    raise
                return None
            return address_from_socket(raw)
        inner = getattr(inner, "transport_stream", None)
        if inner is None:
            return None
    return None


def format_address(address: Address) -> str:
    """``127.0.0.1:3099``, ``[::1]:3099``, ``unix:/path`` or ``memory``."""
    if isinstance(address, tuple):
        host, port = address
        return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    if isinstance(address, str):
        return f"unix:{address}" if address else "unix:(unnamed)"
    return "memory"


def client_ip(address: Address) -> IP | None:
    """The IP of a ``(host, port)`` address, or ``None`` (a Unix path, memory, a name).

    An IPv6 zone (``fe80::1%eth0``) is dropped and an IPv4-mapped IPv6 address
    (``::ffff:10.0.0.1``, what a dual-stack socket reports for an IPv4 client) is the IPv4
    address, so one rule written for ``10.0.0.0/8`` judges both.
    """
    if not isinstance(address, tuple):
        return None
    try:
        ip = ipaddress.ip_address(address[0].split("%", 1)[0])
    except ValueError:
        return None
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    return ip


def parse_networks(items: Iterable[str]) -> tuple[Network, ...]:
    """``["10.0.0.0/8", "192.0.2.7"]`` -> networks (an address is a /32 or /128).

    Raises:
      ValueError: an item is neither an address nor a network (says which).
    """
    networks: list[Network] = []
    for item in items:
        try:
            networks.append(ipaddress.ip_network(item.strip(), strict=False))
        except ValueError:
            raise ValueError(f"not an IP address or CIDR network: {item!r}") from None
    return tuple(networks)
