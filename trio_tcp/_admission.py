"""Admission control: who may connect, how many at once per address, how fast.

Checked in the connection's own task, on the *client's* address: the socket's peer, or the
original client named by a PROXY header (behind a load balancer every socket peer is the
balancer). The check runs before any TLS handshake, so a refused peer costs no crypto.

Refusals are counted in ``server.stats`` and logged by the server through its log throttle:
the first refusal of each kind in full, then one summary line per interval with the count.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Final

import trio

from ._address import Address, Network, client_ip, format_address, parse_networks
from ._refusal import RefusalKind, Refused

__all__ = ["Admission"]

#: The counter (``ServerStats`` field) of each kind of refusal.
DENIED: Final[RefusalKind] = "refused_denied"
PER_PEER: Final[RefusalKind] = "refused_per_peer"
RATE: Final[RefusalKind] = "refused_rate"


class Admission:
    """The admission rules of one server and the state they need.

    Args:
      allow: if given, only clients in these addresses/networks are admitted.
      deny: clients in these addresses/networks are refused (deny wins over allow).
      max_connections_per_peer: at most this many live connections per client IP.
      max_accept_rate: admit at most this many new connections per second on average
        (a token bucket holding one second's worth, so bursts of that size pass).

    Non-IP clients (Unix sockets, memory streams) are not subject to allow/deny or the per-peer
    limit (they have no address to judge); the accept rate applies to every connection.

    Raises:
      ValueError: a limit is out of range, or an entry is not an address or CIDR network.
    """

    def __init__(
        self,
        *,
        allow: Iterable[str] | None = None,
        deny: Iterable[str] | None = None,
        max_connections_per_peer: int | None = None,
        max_accept_rate: float | None = None,
    ) -> None:
        for name, value in (("allow", allow), ("deny", deny)):
            if isinstance(value, str):
                raise ValueError(f"{name} must be a list of addresses, not a string")
        if max_connections_per_peer is not None and max_connections_per_peer < 1:
            raise ValueError("max_connections_per_peer must be >= 1 or None")
        if max_accept_rate is not None and not max_accept_rate > 0:
            raise ValueError("max_accept_rate must be > 0 or None")
        self._allow: tuple[Network, ...] | None = (
            parse_networks(allow) if allow is not None else None
        )
        self._deny: tuple[Network, ...] = parse_networks(deny or ())
        self._per_peer = max_connections_per_peer
        self._rate = max_accept_rate
        self._burst = float(max(1, round(max_accept_rate or 1)))
        self._tokens = self._burst
        self._refilled_at: float | None = None
        self._live: dict[object, int] = {}

    @property
    def needed(self) -> bool:
        """Whether any rule is set."""
        return (
            self._allow is not None
            or bool(self._deny)
            or self._per_peer is not None
            or self._rate is not None
        )

    def admit(self, client: Address) -> object:
        """Admit ``client`` or raise; return a key to pass to :meth:`release` when it closes.

        Raises:
          Refused: kind ``refused_denied``, ``refused_per_peer`` or ``refused_rate``.
        """
        ip = client_ip(client)
        if ip is not None:
            if any(ip in network for network in self._deny):
                self._refuse(DENIED, client, "its address is on the deny list")
            if self._allow is not None and not any(ip in net for net in self._allow):
                self._refuse(DENIED, client, "its address is not on the allow list")
            if self._per_peer is not None and self._live.get(ip, 0) >= self._per_peer:
                self._refuse(PER_PEER, client, f"max_connections_per_peer={self._per_peer} reached")
        if self._rate is not None:
            now = trio.current_time()
            if self._refilled_at is not None:
                elapsed = now - self._refilled_at
                self._tokens = min(self._burst, self._tokens + elapsed * self._rate)
            self._refilled_at = now
            if self._tokens < 1:
                self._refuse(RATE, client, f"max_accept_rate={self._rate:g}/s exceeded")
            self._tokens -= 1
        if ip is not None:
            self._live[ip] = self._live.get(ip, 0) + 1
        return ip

    def release(self, key: object) -> None:
        """The connection admitted with ``key`` has closed."""
        if key is None:
            return
        left = self._live.get(key, 0) - 1
        if left > 0:
            self._live[key] = left
        else:
            self._live.pop(key, None)

    def _refuse(self, kind: RefusalKind, client: Address, reason: str) -> None:
        raise Refused(kind, f"{reason} ({format_address(client)})")
