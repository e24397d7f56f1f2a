"""`Refused`: the internal signal that one connection is turned away before its handler runs.

The setup steps (TLS handshake, PROXY header, admission control) raise it; the server catches
it, counts it in ``server.stats`` under ``kind``, logs ``reason`` in one line (no traceback:
a refused peer is not a bug) and closes that connection. It never reaches user code.
"""

from __future__ import annotations

__all__ = ["Refused"]


class Refused(Exception):
    """This connection is refused: ``kind`` names the ``ServerStats`` counter, ``reason`` says why.

    Attributes:
      kind: the counter to increment (``"tls_failed"``, ``"proxy_rejected"``, ...).
      reason: one line for the log (the server's log throttle bounds a flood of them).
    """

    def __init__(self, kind: str, reason: str) -> None:
        super().__init__(reason)
        self.kind = kind
        self.reason = reason
