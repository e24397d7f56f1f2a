"""In-memory connections and an in-memory listener that runs the real server.

:func:`serve_memory` is :func:`trio_tcp.serve_listeners` over a :class:`MemoryListener`:
the same accept loop, handler tasks, error policy, limits, idle timeout, graceful shutdown
and stats as over TCP; only the bytes travel through ``trio.testing`` memory streams.
``client = await server.connect()`` works exactly as it does for a TCP server.
"""

from __future__ import annotations

import math
from typing import Literal

import trio
import trio.testing

from .._connection import Connection
from .._server import (
    DEFAULT_GRACE_PERIOD,
    DEFAULT_MAX_CONNECTIONS,
    Handler,
    Server,
    serve_listeners,
)
from ._faults import Wrap

__all__ = [
    "MemoryListener",
    "lockstep_connection_pair",
    "memory_connection_pair",
    "serve_memory",
]


def memory_connection_pair() -> tuple[Connection, Connection]:
    """``(client, server)``: two :class:`~trio_tcp.Connection` objects joined in memory.

    Built on ``trio.testing.memory_stream_pair`` (infinite buffering: ``send_all`` returns
    at once). Call it inside a Trio run.
    """
    client, server = trio.testing.memory_stream_pair()
    return Connection(client), Connection(server)


def lockstep_connection_pair() -> tuple[Connection, Connection]:
    """``(client, server)`` over ``trio.testing.lockstep_stream_pair``: no buffering at all,
    every ``send_all`` waits until the peer has received its bytes (finds deadlocks that
    buffering hides)."""
    client, server = trio.testing.lockstep_stream_pair()
    return Connection(client), Connection(server)


class MemoryListener(trio.abc.Listener[trio.abc.Stream]):
    """A ``trio.abc.Listener`` whose connections are in-memory stream pairs.

    ``await listener.connect()`` makes a pair, queues the server's end for :meth:`accept`
    and returns the client's end at once (like a TCP connect that the kernel completes
    before the server accepts). :meth:`trio_tcp.Server.connect` uses it.

    Args:
      wrap: applied to every server-side stream before ``accept`` returns it (a fault from
        :mod:`trio_tcp.testing`, or :func:`~trio_tcp.testing.compose` of several).
      lockstep: use ``lockstep_stream_pair`` (unbuffered) instead of ``memory_stream_pair``.

    Attributes:
      accepted: every server-side stream handed out by :meth:`accept` (wrapped), in order.
    """

    def __init__(self, *, wrap: Wrap | None = None, lockstep: bool = False) -> None:
        self.wrap = wrap
        self.lockstep = lockstep
        self.accepted: list[trio.abc.Stream] = []
        self._send, self._receive = trio.open_memory_channel[trio.abc.Stream](math.inf)
        self._closed = False

    async def connect(self) -> trio.abc.Stream:
        """Connect to this listener; return the client's end of a new stream pair.

        Raises:
          ConnectionRefusedError: the listener is closed (as a TCP connect would).

        Cancellation: a cancelled call leaves nothing queued.
        """
        await trio.lowlevel.checkpoint()
        if self._closed:
            raise ConnectionRefusedError("the memory listener is closed")
        pair = (
            trio.testing.lockstep_stream_pair()
            if self.lockstep
            else trio.testing.memory_stream_pair()
        )
        client, server = pair
        self._send.send_nowait(server)
        return client

    async def accept(self) -> trio.abc.Stream:
        """Wait for the next :meth:`connect` and return the server's end (wrapped).

        Raises:
          trio.ClosedResourceError: the listener was closed.

        Cancellation: a cancelled call accepted nothing.
        """
        if self._closed:
            raise trio.ClosedResourceError("the memory listener is closed")
        try:
            stream: trio.abc.Stream = await self._receive.receive()
        except (trio.ClosedResourceError, trio.EndOfChannel):
            raise trio.ClosedResourceError("the memory listener is closed") from None
        if self.wrap is not None:
            stream = self.wrap(stream)
        self.accepted.append(stream)
        return stream

    async def aclose(self) -> None:
        """Close the listener: connections not yet accepted are closed (their clients read
        end of stream) and later :meth:`connect` calls are refused. Harmless twice.

        Cancellation: the listener is closed even if the call is cancelled (Trio's rule for
        ``aclose``).
        """
        self._closed = True
        pending: list[trio.abc.Stream] = []
        while True:
            try:
                pending.append(self._receive.receive_nowait())
            except (trio.WouldBlock, trio.ClosedResourceError, trio.EndOfChannel):
                break
        self._receive.close()
        self._send.close()
        for stream in pending:
            await trio.aclose_forcefully(stream)
        await trio.lowlevel.checkpoint()


async def serve_memory(
    handler: Handler,
    *,
    wrap: Wrap | None = None,
    lockstep: bool = False,
    max_connections: int | None = DEFAULT_MAX_CONNECTIONS,
    idle_timeout: float | None = None,
    grace_period: float = DEFAULT_GRACE_PERIOD,
    handler_errors: Literal["log", "raise"] = "log",
    task_status: trio.TaskStatus[Server] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Run the real server over one :class:`MemoryListener`; no sockets at all.

    Start it with ``server = await nursery.start(serve_memory, handler)`` and connect with
    ``client = await server.connect()``. ``wrap`` and ``lockstep`` go to the listener (see
    :class:`MemoryListener`, ``server.listeners[0]``); every other option means what it
    means for :func:`trio_tcp.serve`.

    Cancellation: as :func:`trio_tcp.serve`: cancelling is the hard stop,
    ``Server.aclose()`` the graceful one.
    """
    await serve_listeners(
        handler,
        [MemoryListener(wrap=wrap, lockstep=lockstep)],
        max_connections=max_connections,
        idle_timeout=idle_timeout,
        grace_period=grace_period,
        handler_errors=handler_errors,
        task_status=task_status,
    )
