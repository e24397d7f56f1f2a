"""`serve`: listeners, the accept loop, one task per connection, limits and shutdown.

Structured like websockets' ``trio/server.py`` and hypercorn: two nurseries. Accept loops
run in an inner nursery, connection handlers in an outer one. ``Server.close()`` stops the
accept loops (closing the listeners), marks every connection as closing (``conn.is_closing``)
and puts a deadline of ``grace_period`` on the outer nursery; handlers still running then are
cancelled, and their connections closed with a lingering close (nginx's ``lingering_close``:
send EOF, discard input for up to ``LINGER_TIMEOUT``, close) so a peer is not reset.

Every event a peer can repeat at will (refusals, drops, resets, timeouts, protocol errors,
``accept()`` failures) is logged through a ``LogThrottle``: the first in full, then one
summary line per interval, so no flood floods the log; ``server.stats`` stays exact.

Where we deliberately differ from ``trio.serve_tcp``: a handler that raises is *its*
connection's problem. The error is logged with its traceback, that connection is closed,
and the server keeps serving. An ``EndOfStream`` that leaves a handler (``while True: await
conn.receive_line()``) is the peer's clean close, not a failure.
"""

from __future__ import annotations

import errno
import logging
import os
import ssl
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any, Final, Literal, Protocol, TypeAlias, runtime_checkable

import trio

from ._address import Address, address_from_socket, format_address, stream_address
from ._admission import Admission
from ._connection import Connection
from ._exceptions import EndOfStream, IncompleteFrameError, RemoteProtocolError
from ._listeners import open_tcp_listeners, open_unix_listener
from ._proxy_server import DEFAULT_PROXY_HEADER_TIMEOUT
from ._refusal import Refused
from ._setup import ConnectionSetup
from ._socket_stream import Acceptor
from ._throttle import LogThrottle
from ._tls import DEFAULT_HANDSHAKE_TIMEOUT, close_tls

__all__ = [
    "DEFAULT_GRACE_PERIOD",
    "DEFAULT_MAX_CONNECTIONS",
    "DEFAULT_PORT",
    "Handler",
    "Server",
    "ServerStats",
    "serve",
    "serve_listeners",
    "stream_handler",
]

logger = logging.getLogger("trio_tcp")
#: Each connection's open and close, at DEBUG: a line per connection is a flood lever, so it is
#: never on by default (``trio-tcp serve -v`` turns on this logger alone).
connection_logger = logging.getLogger("trio_tcp.connections")

#: The tutorial's port.
DEFAULT_PORT: Final = 3099
#: Seconds handlers get to finish after ``close()`` (websockets and hypercorn use 5-10 s).
DEFAULT_GRACE_PERIOD: Final = 5.0
#: Live connections before new ones are turned away: nginx's default worker_connections is
#: 512 and a default `ulimit -n` is 1024 file descriptors, so 1000 keeps a stock process
#: clear of EMFILE. Pass ``None`` to remove the limit.
DEFAULT_MAX_CONNECTIONS: Final = 1000
#: Seconds a connection cut at the grace deadline (or closed with unread input) keeps
#: discarding the peer's input after sending EOF, before it is closed. Closing a socket
#: with unread input sends a reset, which can make the peer lose our last bytes before it
#: read them; nginx's ``lingering_close`` waits up to ``lingering_timeout`` (5 s) per read
#: for the same reason. 1 s is enough for a peer that reads our EOF and closes, and keeps a
#: shutdown within ``grace_period + 1`` seconds.
LINGER_TIMEOUT: Final = 1.0

#: What ``serve`` calls for each connection: ``async def handler(conn: Connection)``.
Handler: TypeAlias = Callable[[Connection], Awaitable[object]]

# accept() errors that mean "the process or system is out of something right now": back off
# and retry instead of crashing (the same set as trio.serve_listeners).
_ACCEPT_CAPACITY_ERRNOS: Final = frozenset(
    {errno.EMFILE, errno.ENFILE, errno.ENOMEM, errno.ENOBUFS}
)
_ACCEPT_BACKOFF_MIN: Final = 0.01
_ACCEPT_BACKOFF_MAX: Final = 1.0


@dataclass(frozen=True, slots=True)
class ServerStats:
    """A snapshot of a server's counters (``server.stats``).

    Attributes:
      accepted: connections accepted, including those dropped at once.
      active: connections whose handler is running now.
      dropped: connections closed at once because ``max_connections`` were active.
      failed: handlers that raised an exception (logged with its traceback).
      reset: connections the peer broke (``trio.BrokenResourceError`` in the handler).
      protocol_errors: connections closed because the peer broke the framing rules.
      timed_out: connections closed by ``idle_timeout``.
      bytes_received, bytes_sent: totals over all connections, live and closed.
      tls_failed: connections closed because the TLS handshake failed or timed out.
      proxy_rejected: connections closed because the PROXY header was missing, malformed,
        late, or sent by an untrusted address.
      refused_denied, refused_per_peer, refused_rate: connections refused by admission
        control (``allow``/``deny``, ``max_connections_per_peer``, ``max_accept_rate``).
      cut: connections whose handler was still running when the grace period ended (or
        at a hard stop), closed by the server.
    """

    accepted: int
    active: int
    dropped: int
    failed: int
    reset: int
    protocol_errors: int
    timed_out: int
    bytes_received: int
    bytes_sent: int
    tls_failed: int = 0
    proxy_rejected: int = 0
    refused_denied: int = 0
    refused_per_peer: int = 0
    refused_rate: int = 0
    cut: int = 0


@runtime_checkable
class _Connectable(Protocol):
    """A listener that can make a client stream to itself (the in-memory test listener)."""

    async def connect(self) -> trio.abc.Stream: ...


def _listener_address(listener: trio.abc.Listener[Any]) -> Address:
    sock = getattr(listener, "socket", None)
    if sock is None:
        return None
    try:
        raw = sock.getsockname()
    except OSError:
        return None
    return address_from_socket(raw)


def _connection_event(event: str, conn: Connection) -> dict[str, object]:
    """The ``extra=`` fields of the open/close log records, for structured log handlers.

    ``event``, ``conn_id``, ``peer`` (formatted, the PROXY client when there is one); on close
    also ``duration`` (seconds), ``bytes_received`` and ``bytes_sent``.
    """
    fields: dict[str, object] = {
        "event": event,
        "conn_id": conn.id,
        "peer": format_address(conn.peer),
    }
    if event == "connection_close":
        fields["duration"] = trio.current_time() - conn.opened_at
        fields["bytes_received"] = conn.bytes_received
        fields["bytes_sent"] = conn.bytes_sent
    return fields


def _cancelled() -> bool:
    """True if the calling task's scope has been cancelled (Trio's public test for it)."""
    return trio.current_effective_deadline() == float("-inf")


_REFUSAL_SUMMARY: Final = {
    "tls_failed": "connections refused (TLS handshake failed)",
    "proxy_rejected": "connections refused (PROXY header)",
    "refused_denied": "connections refused (allow/deny list)",
    "refused_per_peer": "connections refused (per-peer limit)",
    "refused_rate": "connections refused (accept rate limit)",
}


async def _lingering_close(conn: Connection) -> None:
    """Send EOF, discard the peer's input for up to ``LINGER_TIMEOUT``, then close.

    Closing with unread input makes the kernel send a reset, and a peer that gets a reset
    may lose the bytes we sent before it read them. Sending EOF first lets the peer see a
    clean end; reading until its EOF (or the timeout) leaves nothing unread (nginx's
    ``lingering_close``). Call it shielded: it is bounded by its own timeout.
    """
    try:
        with trio.move_on_after(LINGER_TIMEOUT):
            await conn.send_eof()
            while await conn.receive_some():
                pass
    except (trio.BrokenResourceError, trio.ClosedResourceError, trio.BusyResourceError):
        pass  # the peer is gone, or the stream is: nothing to linger for
    except TypeError:
        pass  # a stream that cannot half-close
    finally:
        await trio.aclose_forcefully(conn)


def _ragged_tls_eof(conn: Connection, exc: Exception) -> bool:
    """The handler ended on a TLS stream whose peer closed without close_notify."""
    if not isinstance(conn.stream, trio.SSLStream) or not isinstance(exc, trio.BrokenResourceError):
        return False
    cause = exc.__cause__
    return isinstance(cause, ssl.SSLEOFError) or (
        isinstance(cause, ssl.SSLSyscallError) and not cause.errno
    )


def handler_error_kind(exc: Exception) -> Literal["reset", "protocol_errors", "failed"]:
    """The ``ServerStats`` counter a handler's exception goes to.

    ``reset``: the peer broke the stream; ``protocol_errors``: the peer broke the framing;
    ``failed``: anything else, i.e. a bug in the handler (logged with its traceback).
    """
    leaves = _leaves(exc)
    if all(isinstance(leaf, trio.BrokenResourceError) for leaf in leaves):
        return "reset"
    if all(isinstance(leaf, RemoteProtocolError) for leaf in leaves):
        return "protocol_errors"
    return "failed"


def _leaves(exc: BaseException) -> list[BaseException]:
    if isinstance(exc, BaseExceptionGroup):
        return [leaf for sub in exc.exceptions for leaf in _leaves(sub)]
    return [exc]


class Server:
    """A running server, as returned by ``await nursery.start(serve, ...)``.

    Attributes:
      listeners: the listeners it accepts on (closed once shutdown begins).
      grace_period: seconds handlers get to finish after :meth:`close`.
    """

    def __init__(
        self,
        handler: Handler,
        listeners: Sequence[trio.abc.Listener[Any]],
        *,
        max_connections: int | None,
        idle_timeout: float | None,
        grace_period: float,
        handler_errors: Literal["log", "raise"],
        setup: ConnectionSetup | None = None,
    ) -> None:
        if max_connections is not None and max_connections < 1:
            raise ValueError("max_connections must be >= 1 or None")
        if idle_timeout is not None and not idle_timeout > 0:
            raise ValueError("idle_timeout must be > 0 or None")
        if not grace_period >= 0:
            raise ValueError("grace_period must be >= 0")
        if handler_errors not in ("log", "raise"):
            raise ValueError("handler_errors must be 'log' or 'raise'")
        self.listeners = list(listeners)
        self._closing = trio.Event()  # shared with every Connection (conn.is_closing)
        self._log = LogThrottle(logger)
        self.grace_period = grace_period
        self._handler = handler
        self._max_connections = max_connections
        self._idle_timeout = idle_timeout
        self._raise_errors = handler_errors == "raise"
        self._addresses = [_listener_address(listener) for listener in self.listeners]
        self._connections: dict[Connection, None] = {}  # an ordered set
        self._closed = trio.Event()
        self._drained = trio.Event()
        self._accept_scope: trio.CancelScope | None = None
        self._handler_scope: trio.CancelScope | None = None
        self._counters = dict.fromkeys(
            ("accepted", "dropped", "failed", "reset", "protocol_errors", "timed_out"), 0
        )
        self._closed_bytes_received = 0
        self._closed_bytes_sent = 0
        # Per-connection setup (TLS, PROXY) before the handler; connections in it count
        # against max_connections, so a flood of stalled handshakes cannot exceed the limit.
        self._setup = setup if setup is not None and setup.needed else None
        # Accepted connections whose task has not registered them yet (being started, or in
        # their TLS/PROXY/admission set-up): they count against max_connections and delay
        # the drained state, so a batch of accepts cannot overshoot the limit.
        self._starting = 0
        self._counters.update(
            tls_failed=0,
            proxy_rejected=0,
            refused_denied=0,
            refused_per_peer=0,
            refused_rate=0,
            cut=0,
        )

    # ------------------------------------------------------------------ public view

    @property
    def addresses(self) -> list[Address]:
        """Where it listens: ``(host, port)`` per TCP listener, a path per Unix listener."""
        return list(self._addresses)

    @property
    def port(self) -> int | None:
        """The TCP port it listens on (the same for every address), or ``None``."""
        for address in self._addresses:
            if isinstance(address, tuple):
                return address[1]
        return None

    @property
    def connections(self) -> list[Connection]:
        """The live connections, oldest first."""
        return list(self._connections)

    @property
    def stats(self) -> ServerStats:
        """A snapshot of the counters (see :class:`ServerStats`)."""
        live = self._connections
        return ServerStats(
            active=len(live),
            bytes_received=self._closed_bytes_received + sum(c.bytes_received for c in live),
            bytes_sent=self._closed_bytes_sent + sum(c.bytes_sent for c in live),
            **self._counters,
        )

    def __repr__(self) -> str:
        where = ", ".join(format_address(a) for a in self._addresses)
        return f"<Server {where} active={len(self._connections)}>"

    # ------------------------------------------------------------------ shutdown

    @property
    def is_closing(self) -> bool:
        """True once a graceful shutdown began (:meth:`close`), or the server stopped."""
        return self._closing.is_set()

    async def wait_closing(self) -> None:
        """Return once a graceful shutdown began (at once if it has).

        Cancellation: an ordinary checkpoint; there is nothing to undo.
        """
        await self._closing.wait()

    def close(self) -> None:
        """Begin a graceful shutdown and return at once; harmless to call twice.

        Stops accepting (the listeners are closed) and marks every connection as closing
        (``conn.is_closing``; ``until_closing`` iterators waiting on a quiet peer wake up and
        stop). Connections are otherwise served as before, until the peer ends them or
        ``grace_period`` seconds pass; then their handlers are cancelled and the connections
        closed (see :func:`serve`).
        """
        if self._closing.is_set():
            return
        self._closing.set()
        if self._accept_scope is not None:
            self._accept_scope.cancel()
        if self._handler_scope is not None:
            self._handler_scope.deadline = trio.current_time() + self.grace_period
        for conn in self._connections:
            wake = conn._wake_scope
            if wake is not None:
                wake.cancel()
        self._check_drained()

    def _check_drained(self) -> None:
        if self._closing.is_set() and not self._connections and not self._starting:
            self._drained.set()

    async def aclose(self) -> None:
        """Shut down gracefully and wait until the server has stopped.

        Calling it twice is harmless. Once it returns, every socket is closed and the task
        that ran :func:`serve` has returned.

        Cancellation: cancelling this call stops the *waiting*, not the shutdown, which goes
        on in the server's own task. Do not call it from inside a handler (it would wait for
        that handler): call :meth:`close` there.
        """
        self.close()
        await self._closed.wait()

    async def wait_closed(self) -> None:
        """Wait until the server has stopped (after :meth:`close`, or a cancellation).

        Cancellation: stops the waiting only; the server is not affected.
        """
        await self._closed.wait()

    # ------------------------------------------------------------------ clients

    async def connect(self) -> Connection:
        """Open a client ``Connection`` to this server's first listener.

        Works for TCP and Unix listeners, and for the in-memory listener of
        ``trio_tcp.testing``, so one test can run over any transport.

        Cancellation: a cancelled call leaves nothing open.
        """
        from ._client import open_connection, open_unix_connection

        listener = self.listeners[0]
        if isinstance(listener, _Connectable):
            return Connection(await listener.connect())
        address = self._addresses[0]
        if isinstance(address, str):
            return await open_unix_connection(address)
        if isinstance(address, tuple):
            host, port = address
            if host in ("0.0.0.0", "::"):
                host = "127.0.0.1" if host == "0.0.0.0" else "::1"
            return await open_connection(host, port)
        raise TypeError(f"cannot connect to a {type(listener).__name__}")

    # ------------------------------------------------------------------ the machinery

    async def _run(self, task_status: trio.TaskStatus[Server]) -> None:
        try:
            async with trio.open_nursery() as handlers:
                self._handler_scope = handlers.cancel_scope
                watchdog = trio.CancelScope()
                if self._idle_timeout is not None:
                    handlers.start_soon(self._idle_watchdog, watchdog, self._idle_timeout)
                flusher = trio.CancelScope()
                handlers.start_soon(self._flush_logs, flusher)
                try:
                    async with trio.open_nursery() as acceptors:
                        self._accept_scope = acceptors.cancel_scope
                        for listener in self.listeners:
                            acceptors.start_soon(self._accept_loop, listener, handlers)
                        task_status.started(self)
                finally:
                    with trio.CancelScope(shield=True):
                        for listener in self.listeners:
                            await trio.aclose_forcefully(listener)
                # The accept loops only end when close() cancelled them.
                await self._drained.wait()
                watchdog.cancel()
                flusher.cancel()
        finally:
            self._closing.set()
            self._log.flush()
            cut = self._counters["cut"]
            if cut:
                logger.warning(
                    "stopped: cut %d connection%s that %s still open",
                    cut,
                    "" if cut == 1 else "s",
                    "was" if cut == 1 else "were",
                )
            self._closed.set()

    async def _flush_logs(self, scope: trio.CancelScope) -> None:
        with scope:
            await self._log.run()

    async def _accept_loop(
        self, listener: trio.abc.Listener[trio.abc.Stream], handlers: trio.Nursery
    ) -> None:
        backoff = _ACCEPT_BACKOFF_MIN
        ready: list[trio.abc.Stream] = []  # accepted in a batch, not yet handed to a handler
        acceptor = Acceptor(listener)
        try:
            while True:
                if ready:
                    stream = ready.pop()
                else:
                    try:
                        ready = await acceptor.accept()
                    except OSError as exc:
                        if exc.errno not in _ACCEPT_CAPACITY_ERRNOS:
                            raise
                        self._log.event(
                            "accept_failed",
                            logging.ERROR,
                            "accept() failed",
                            "accept() failed with %s (%s); retrying in %.2f s",
                            errno.errorcode.get(exc.errno or 0, "?"),
                            os.strerror(exc.errno or 0),
                            backoff,
                        )
                        await trio.sleep(backoff)
                        backoff = min(backoff * 2, _ACCEPT_BACKOFF_MAX)
                        continue
                    backoff = _ACCEPT_BACKOFF_MIN
                    ready.reverse()  # pop() then hands them out in arrival order
                    stream = ready.pop()
                self._counters["accepted"] += 1
                limit = self._max_connections
                if limit is not None and len(self._connections) + self._starting >= limit:
                    self._drop(limit)
                    await trio.aclose_forcefully(stream)
                    continue
                self._starting += 1
                handlers.start_soon(self._run_connection, stream)
        finally:
            for stream in ready:  # cancelled part way through a batch: close the rest
                await trio.aclose_forcefully(stream)

    def _drop(self, limit: int) -> None:
        self._counters["dropped"] += 1
        self._log.event(
            "dropped",
            logging.WARNING,
            f"connections dropped (max_connections={limit})",
            "max_connections=%d reached: dropping new connections until one closes",
            limit,
        )

    async def _run_connection(self, stream: trio.abc.Stream) -> None:
        # The accept loop counted this connection in _starting; it moves to _connections
        # (or is refused) before any await can let a shutdown see a half-registered server.
        peer: Address = None
        release: Callable[[], None] | None = None
        try:
            if self._setup is not None:
                try:
                    prepared = await self._setup.run(stream)
                except Refused as refusal:
                    self._counters[refusal.kind] += 1
                    self._log.event(
                        refusal.kind,
                        logging.WARNING,
                        _REFUSAL_SUMMARY.get(refusal.kind, f"connections refused ({refusal.kind})"),
                        "connection from %s refused: %s",
                        format_address(stream_address(stream, peer=True)),
                        refusal.reason,
                    )
                    with trio.CancelScope(shield=True):
                        await trio.aclose_forcefully(stream)
                    return
                except BaseException:
                    with trio.CancelScope(shield=True):
                        await trio.aclose_forcefully(stream)
                    raise
                stream, peer, release = prepared.stream, prepared.peer, prepared.release
            conn = Connection(stream, peer=peer, closing=self._closing)
            self._connections[conn] = None
        finally:
            self._starting -= 1
            self._check_drained()
        if connection_logger.isEnabledFor(logging.DEBUG):  # the fields cost a getpeername()
            connection_logger.debug(
                "%r opened", conn, extra=_connection_event("connection_open", conn)
            )
        failed = True
        try:
            if self._idle_timeout is None:
                await self._handler(conn)
            else:  # a scope for the idle watchdog to cancel (only then: it costs memory)
                with trio.CancelScope() as scope:
                    conn._cancel_scope = scope
                    await self._handler(conn)
            failed = False
        except BaseException as exc:
            self._handler_ended_with(conn, exc)
        finally:
            if release is not None:
                release()
            del self._connections[conn]
            self._closed_bytes_received += conn.bytes_received
            self._closed_bytes_sent += conn.bytes_sent
            self._check_drained()
            if connection_logger.isEnabledFor(logging.DEBUG):
                connection_logger.debug(
                    "%r closed: %d bytes in, %d out",
                    conn,
                    conn.bytes_received,
                    conn.bytes_sent,
                    extra=_connection_event("connection_close", conn),
                )
            # A handler that returned was not cut off, whatever happened to its scope after.
            cut = failed and _cancelled()
            if cut:
                self._counters["cut"] += 1
            # The grace deadline (not a hard stop, which cancels from outside) lingers.
            deadline = cut and self._handler_scope is not None and self._handler_scope.cancel_called
            if isinstance(conn.stream, trio.SSLStream):
                # Shielded: at the grace deadline or a hard stop the close must still happen
                # (and must not replace the handler's own exception with Cancelled).
                with trio.CancelScope(shield=True):
                    if cut:
                        await trio.aclose_forcefully(conn)
                    else:
                        await close_tls(conn)  # close_notify (bounded): a clean end
            elif deadline or (not cut and conn._unread_on_socket(eof=False)):
                with trio.CancelScope(shield=True):
                    await _lingering_close(conn)
            elif not conn._close_now():  # a socket closes at once; other streams:
                with trio.CancelScope(shield=True):
                    await trio.aclose_forcefully(conn)

    def _handler_ended_with(self, conn: Connection, exc: BaseException) -> None:
        """Record a handler's exception; re-raise what must propagate (Cancelled, KI...)."""
        if self._raise_errors:
            raise exc
        if isinstance(exc, Exception):
            self._record_failure(conn, exc)
            return
        if isinstance(exc, BaseExceptionGroup):
            # A nursery in the handler, cancelled at the deadline while one child failed:
            # log the failure, let the Cancelled part go on to the scope that owns it.
            cancelled, rest = exc.split(trio.Cancelled)
            if rest is not None:
                if isinstance(rest, Exception):
                    self._record_failure(conn, rest)
                else:
                    raise rest
            if cancelled is not None:
                raise cancelled
            return
        raise exc

    def _record_failure(self, conn: Connection, exc: Exception) -> None:
        if _ragged_tls_eof(conn, exc):
            # The TLS peer closed its socket without close_notify (Python's ssl client and
            # most HTTPS clients do): the peer ended the conversation, it did not break it.
            logger.debug("%r: the TLS peer closed without close_notify", conn)
            return
        if type(exc) is EndOfStream:
            # The peer closed cleanly between messages and the handler let the read's
            # EndOfStream end it (a `while True:` read loop): an ordinary end, no traceback.
            logger.debug("%r: the peer closed the stream", conn)
            return
        kind = handler_error_kind(exc)
        self._counters[kind] += 1
        if kind == "reset":
            self._log.event(
                "reset",
                logging.INFO,
                "connections broken by the peer",
                "%r: the peer broke the connection (%s)",
                conn,
                exc.__cause__ or exc,
            )
        elif kind == "protocol_errors":
            if all(isinstance(leaf, IncompleteFrameError) for leaf in _leaves(exc)):
                # A peer that hangs up mid-line is ordinary on the Internet, not a warning.
                self._log.event(
                    "incomplete",
                    logging.INFO,
                    "peers closed mid-frame",
                    "%r closed: %s",
                    conn,
                    exc,
                )
            else:
                self._log.event(
                    "protocol_errors",
                    logging.WARNING,
                    "connections closed for protocol errors",
                    "%r closed: %s",
                    conn,
                    exc,
                )
        else:
            self._log.event(
                "failed",
                logging.ERROR,
                "handlers raised",
                "%r: handler raised",
                conn,
                exc_info=exc,
            )

    async def _idle_watchdog(self, scope: trio.CancelScope, idle_timeout: float) -> None:
        # One task per server, not one per connection: it scans every idle_timeout/4, so a
        # silent connection is closed between idle_timeout and 1.25 x idle_timeout after its
        # last byte arrived, and the receive path pays nothing for it.
        with scope:
            while True:
                await trio.sleep(idle_timeout / 4)
                now = trio.current_time()
                for conn in list(self._connections):
                    conn_scope = conn._cancel_scope
                    if (
                        conn._idle_for(now) >= idle_timeout
                        and conn_scope is not None
                        and not conn_scope.cancel_called
                    ):
                        self._counters["timed_out"] += 1
                        self._log.event(
                            "timed_out",
                            logging.INFO,
                            "idle connections closed",
                            "%r idle for %.3g s: closing",
                            conn,
                            idle_timeout,
                        )
                        conn_scope.cancel()


async def serve_listeners(
    handler: Handler,
    listeners: Sequence[trio.abc.Listener[Any]],
    *,
    max_connections: int | None = DEFAULT_MAX_CONNECTIONS,
    idle_timeout: float | None = None,
    grace_period: float = DEFAULT_GRACE_PERIOD,
    handler_errors: Literal["log", "raise"] = "log",
    ssl_context: ssl.SSLContext | None = None,
    handshake_timeout: float = DEFAULT_HANDSHAKE_TIMEOUT,
    proxy_protocol: bool = False,
    trusted_proxies: Sequence[str] | None = None,
    proxy_header_timeout: float = DEFAULT_PROXY_HEADER_TIMEOUT,
    allow: Sequence[str] | None = None,
    deny: Sequence[str] | None = None,
    max_connections_per_peer: int | None = None,
    max_accept_rate: float | None = None,
    task_status: trio.TaskStatus[Server] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Serve ``handler`` on listeners you opened yourself (any ``trio.abc.Listener``).

    The machinery of :func:`serve`, which calls this; takes the same options. The server
    takes ownership of the listeners and closes them.

    Cancellation: as :func:`serve`: cancelling the surrounding scope is the hard stop.
    """
    try:
        server = Server(
            handler,
            listeners,
            max_connections=max_connections,
            idle_timeout=idle_timeout,
            grace_period=grace_period,
            handler_errors=handler_errors,
            setup=ConnectionSetup.from_options(
                ssl_context=ssl_context,
                handshake_timeout=handshake_timeout,
                proxy_protocol=proxy_protocol,
                trusted_proxies=trusted_proxies,
                proxy_header_timeout=proxy_header_timeout,
                admission=Admission(
                    allow=allow,
                    deny=deny,
                    max_connections_per_peer=max_connections_per_peer,
                    max_accept_rate=max_accept_rate,
                ),
            ),
        )
    except BaseException:  # a bad option: the listeners are ours to close
        for listener in listeners:
            await trio.aclose_forcefully(listener)
        raise
    await server._run(task_status)


async def serve(
    handler: Handler,
    port: int = DEFAULT_PORT,
    *,
    host: str | Sequence[str] | None = "127.0.0.1",
    unix_path: str | os.PathLike[str] | None = None,
    backlog: int | None = None,
    reuse_port: bool = False,
    max_connections: int | None = DEFAULT_MAX_CONNECTIONS,
    idle_timeout: float | None = None,
    grace_period: float = DEFAULT_GRACE_PERIOD,
    handler_errors: Literal["log", "raise"] = "log",
    ssl_context: ssl.SSLContext | None = None,
    handshake_timeout: float = DEFAULT_HANDSHAKE_TIMEOUT,
    proxy_protocol: bool = False,
    trusted_proxies: Sequence[str] | None = None,
    proxy_header_timeout: float = DEFAULT_PROXY_HEADER_TIMEOUT,
    allow: Sequence[str] | None = None,
    deny: Sequence[str] | None = None,
    max_connections_per_peer: int | None = None,
    max_accept_rate: float | None = None,
    task_status: trio.TaskStatus[Server] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Listen on ``host:port`` and run ``await handler(conn)`` for every connection.

    Start it with ``server = await nursery.start(trio_tcp.serve, handler, 0)``: it reports
    the :class:`Server` once it accepts connections. Each connection runs in its own task in
    a nursery, as a :class:`Connection`, and is closed when the handler returns.

    Shutdown: after :meth:`Server.close` (or ``aclose``) the server stops accepting at once
    and serves every existing connection until its peer ends it or ``grace_period`` ends
    (Node's and asyncio's ``close()`` leave connections alone; we add the deadline). A
    handler may end earlier at a boundary it chooses: ``conn.is_closing``,
    ``conn.is_closing_and_quiet`` (closing, and nothing of the peer's buffered or waiting on
    the socket), and the ``until_closing=True`` option of ``conn.lines``/``frames``/``chunks``,
    which stop at such a boundary and wake up if they were waiting on a quiet peer. At the
    deadline the handlers still running are cancelled (counted in ``stats.cut``, logged in
    one line) and their connections closed without resetting the peer where the OS allows:
    EOF first, the peer's input discarded for up to :data:`LINGER_TIMEOUT`, then close
    (nginx's ``lingering_close``). A handler that returns with the peer's input unread on the
    socket is closed the same way.

    Logging (the ``trio_tcp`` logger; the library adds no handlers): every event a peer can
    repeat (refusals, drops, resets, timeouts, protocol errors, TLS and PROXY failures,
    ``accept()`` errors) is logged in full the first time, then in one summary line per
    10 s with the count; ``server.stats`` counts every one.

    Args:
      handler: ``async def handler(conn: Connection)``.
      port: the TCP port; 0 picks a free one (the same on every address: ``server.port``).
      host: where to listen; loopback by default. ``None`` (or ``"0.0.0.0"``/``"::"``)
        listens on every interface, which you must ask for explicitly. A list of hosts
        listens on each.
      unix_path: listen on this Unix socket instead of TCP (``port`` and ``host`` are
        ignored). The socket file is removed at close; an existing file that is not a
        stale socket is never replaced.
      backlog: the listen queue length (default: as long as the OS allows).
      reuse_port: set ``SO_REUSEPORT`` so several processes can share the port.
      max_connections: connections beyond this many live ones are accepted and closed at
        once, counted as ``dropped`` (logged as above). ``None``: no limit.
      idle_timeout: close a connection that received nothing for this many seconds
        (checked every quarter of it). ``None``: never.
      grace_period: seconds existing connections are still served after
        :meth:`Server.close` (see Shutdown above); 0 cuts them at once.
      handler_errors: ``"log"`` (default): a handler's exception is logged on the
        ``trio_tcp`` logger and closes only its connection. ``"raise"``: it propagates and
        stops the server (for tests).
      ssl_context: speak TLS with this server-side context (``ssl.create_default_context(
        ssl.Purpose.CLIENT_AUTH)`` plus ``load_cert_chain``). Each connection's handshake runs
        in its own task before the handler; one that fails, or takes longer than
        ``handshake_timeout``, closes that connection, is logged in one line (no traceback)
        and counted as ``tls_failed``. Connections mid-handshake count against
        ``max_connections``.
      handshake_timeout: seconds a TLS handshake may take (default 10 s: a real handshake is
        one or two round trips, and a stalled peer holds its slot this long at most).
      proxy_protocol: every connection must start with a PROXY protocol header (HAProxy's
        v1 or v2, told apart automatically), sent by an address in ``trusted_proxies``;
        ``conn.peer`` is then the original client (for a ``LOCAL`` or ``UNKNOWN`` header, the
        proxy itself). Bytes that came with the header stay readable. A missing, malformed,
        late or untrusted header closes that connection, logged in one line and counted as
        ``proxy_rejected``. With ``ssl_context`` too, the header comes first, then TLS.
      trusted_proxies: addresses or CIDR networks allowed to send a PROXY header (default:
        loopback only, ``127.0.0.0/8`` and ``::1``). Unix-socket peers are always trusted.
      proxy_header_timeout: seconds the PROXY header may take (default 5 s: a proxy sends it
        at once).
      allow, deny: addresses or CIDR networks of clients to admit only / to refuse (deny
        wins). The client is the PROXY header's source when ``proxy_protocol`` is on.
      max_connections_per_peer: live connections allowed per client IP (``None``: no limit).
      max_accept_rate: new connections admitted per second on average, in bursts of up to
        one second's worth (``None``: no limit).
        Admission refusals close the connection before any TLS handshake, are counted as
        ``refused_denied``/``refused_per_peer``/``refused_rate`` and logged as above.

    Raises:
      OSError: the address cannot be bound (``errno.EADDRINUSE``: in use).
      FileExistsError: ``unix_path`` exists and is not a socket.
      ValueError: an option is out of range.

    Cancellation: cancelling the surrounding scope is the hard stop: every handler is
    cancelled and every socket closed at once (no linger; counted in ``stats.cut``).
    :meth:`Server.aclose` is the graceful one; once it completes, this function returns.
    """
    listeners: list[trio.abc.Listener[Any]]
    if unix_path is not None:
        listeners = [await open_unix_listener(unix_path, backlog=backlog)]
    else:
        listeners = list(
            await open_tcp_listeners(port, host=host, backlog=backlog, reuse_port=reuse_port)
        )
    await serve_listeners(
        handler,
        listeners,
        max_connections=max_connections,
        idle_timeout=idle_timeout,
        grace_period=grace_period,
        handler_errors=handler_errors,
        ssl_context=ssl_context,
        handshake_timeout=handshake_timeout,
        proxy_protocol=proxy_protocol,
        trusted_proxies=trusted_proxies,
        proxy_header_timeout=proxy_header_timeout,
        allow=allow,
        deny=deny,
        max_connections_per_peer=max_connections_per_peer,
        max_accept_rate=max_accept_rate,
        task_status=task_status,
    )


def stream_handler(handler: Handler) -> Callable[[trio.abc.Stream], Awaitable[object]]:
    """Adapt a trio_tcp handler for plain Trio: ``trio.serve_tcp(stream_handler(h), port)``.

    The handler then sees a :class:`Connection` over Trio's stream, with Trio's own error
    policy (an exception crashes ``serve_tcp``), so you can adopt trio_tcp piece by piece.
    """

    async def run(stream: trio.abc.Stream) -> object:
        return await handler(Connection(stream))

    return run
