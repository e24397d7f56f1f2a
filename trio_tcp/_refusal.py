"""`Refused`: the internal signal that one connection is turned away before its handler runs.

The setup steps (TLS handshake, PROXY header, admission control) raise it; the server catches
it, counts it in ``server.stats`` under ``kind``, logs ``reason`` in one line (no traceback:
a refused peer is not a bug) and closes that connection. It never reaches user code.
"""

from __future__ import annotations

from typing import Literal, TypeAlias

__all__ = ["RefusalKind", "Refused"]

#: The ``ServerStats`` counters a refusal can go to, one per cause.
RefusalKind: TypeAlias = Literal[
    "tls_failed", "proxy_rejected", "refused_denied", "refused_per_peer", "refused_rate"
]


class Refused(Exception):
    """This connection is refused: ``kind`` names the ``ServerStats`` counter, ``reason`` says why.

    Attributes:
      kind: the counter to increment (``"tls_failed"``, ``"proxy_rejected"``, ...).
      reason: one line for the log (the server's log throttle bounds a flood of them).
    """

    def __init__(self, kind: RefusalKind, reason: str) -> None:
        super().__init__(reason)
        self.kind = kind
        self.reason = reason
