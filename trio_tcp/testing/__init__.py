"""trio_tcp.testing: the harness a server author needs, on top of ``trio.testing``.

* :func:`memory_connection_pair`, :func:`lockstep_connection_pair`: two joined
  :class:`~trio_tcp.Connection` objects, no sockets.
* :func:`serve_memory` over a :class:`MemoryListener`: the real server machinery in memory;
  ``server = await nursery.start(serve_memory, handler)``, ``client = await server.connect()``.
* Faults as stream wrappers for either side: :class:`RechunkStream`, :class:`DelayStream`,
  :class:`ResetStream`, :class:`EarlyEOFStream`, :class:`StallStream`; wrap functions
  :func:`rechunk`, :func:`delay`, :func:`reset_after`, :func:`eof_after`, :func:`stall_after`
  chained with :func:`compose` and passed as ``wrap=`` to the memory server.
* :func:`cancellation_sweep`: cancel a handler at every point where a task of its tree
  waits (stream calls, locks, events, channels, sleeps, nurseries), over memory, TCP or a
  Unix socket, and check for a swallowed ``trio.Cancelled``, leaked tasks, held locks,
  unclosed streams, lost or duplicated data and a server that stopped serving.
* Conformance checks: :func:`check_echo_handler`, :func:`check_line_handler` and
  :func:`check_length_prefixed_handler` (split deliveries, a frame over the limit, end of
  stream mid-frame, a peer that never reads): ``await check_line_handler(handler)``.
* A pytest plugin (installed with trio_tcp): ``tcp_server``, ``memory_server`` and
  ``transport_server`` fixtures; see :mod:`trio_tcp.testing._plugin`. Their type,
  :class:`ServerFactory`, is exported here for annotations (``transport_server:
  ServerFactory``); it is imported on first use, since it needs pytest.

Every check raises :class:`CheckFailedError` (an ``AssertionError``) when it finds a bug.
"""

from __future__ import annotations

import typing as _typing

from .._exceptions import CheckFailedError
from ._checks import Respond, check_echo_handler, check_length_prefixed_handler, check_line_handler
from ._faults import (
    DelayStream,
    EarlyEOFStream,
    FaultyStream,
    RechunkStream,
    ResetStream,
    StallStream,
    Wrap,
    compose,
    delay,
    eof_after,
    rechunk,
    reset_after,
    stall_after,
)
from ._memory import MemoryListener, lockstep_connection_pair, memory_connection_pair, serve_memory
from ._sweep import ClientScript, SweepPoint, SweepReport, Transport, cancellation_sweep

if _typing.TYPE_CHECKING:
    from ._plugin import ServerFactory


def __getattr__(name: str) -> object:
    # ServerFactory lives with the fixtures, which import pytest: load it only when asked for,
    # so that `import trio_tcp.testing` keeps working where pytest is not installed.
    if name == "ServerFactory":
        from ._plugin import ServerFactory

        return ServerFactory
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "CheckFailedError",
    "ClientScript",
    "DelayStream",
    "EarlyEOFStream",
    "FaultyStream",
    "MemoryListener",
    "RechunkStream",
    "ResetStream",
    "Respond",
    "ServerFactory",
    "StallStream",
    "SweepPoint",
    "SweepReport",
    "Transport",
    "Wrap",
    "cancellation_sweep",
    "check_echo_handler",
    "check_length_prefixed_handler",
    "check_line_handler",
    "compose",
    "delay",
    "eof_after",
    "lockstep_connection_pair",
    "memory_connection_pair",
    "rechunk",
    "reset_after",
    "serve_memory",
    "stall_after",
]
