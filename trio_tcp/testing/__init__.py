"""trio_tcp.testing: in-memory servers, fault injection and cancellation sweeps."""

from __future__ import annotations

__all__: list[str] = []
