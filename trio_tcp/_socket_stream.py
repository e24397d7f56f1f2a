"""The socket fast path: one Trio stream over a connected socket, and the accept batch.

This module is the only place in trio_tcp that touches a raw (stdlib) socket or anything
private to Trio. Everything above it talks to a ``trio.abc.Stream``.

:class:`FastSocketStream` is a ``trio.abc.HalfCloseableStream`` that does what
``trio.SocketStream`` does, with fewer layers between the call and the syscall: it calls
``recv``/``send`` on the non-blocking socket itself and waits for readiness only when the
kernel says ``EAGAIN``. It keeps Trio's contract to the letter, and Trio's own
``trio.testing.check_half_closeable_stream`` checks it (``tests/test_socket_stream.py``):

* Every async method is a full checkpoint: a cancel point (a cancelled scope raises
  ``trio.Cancelled`` before anything is received or sent) *and* a schedule point (the other
  tasks run before it returns), also when the data was already waiting or the kernel took
  every byte at once. A peer that always has data ready cannot starve the other
  connections. The checkpoints are Trio's own, each rebuilt in one generator frame
  (:func:`_make_checkpoints`: ~1.2 µs less per call, measured).
* A receive checkpoints *first*, then calls ``recv``: a cancelled call has done nothing,
  and the yield it owes anyway is also the peer's time to answer, so the ``recv`` after it
  usually finds its bytes. A send keeps Trio's order, a cancel check, the ``send``, then
  the (shielded) yield: the reply is on the wire before the other tasks run, not after,
  which takes one scheduler pass off every round trip's latency (measured on one
  connection: 1.1x plain Trio's round trips with the yield first, 1.6x with it last).
* A read that finds nothing lets the other tasks run up to ``_PATIENCE`` more rounds,
  retrying after each, before it waits on epoll: waiting costs an ``epoll_ctl``, a
  blocking ``epoll_wait`` and a wake-up, several times a scheduler pass, and a peer in a
  request/response exchange usually answers within a few rounds (measured on one
  connection, 64 B round trips: 1 round 24k/s, 2 rounds 40k/s, 3 rounds 45k/s, 5 rounds
  41k/s; server CPU per round trip 37 -> 22 µs; no change at 50 connections, where a read
  rarely waits). An idle connection pays three failed ``recv`` calls once, when it goes
  quiet.
* Waiting goes through one edge-triggered epoll per Trio run (:class:`_Poller`, on Linux):
  each socket is registered once, on its first wait, instead of Trio re-arming its own
  epoll (an ``epoll_ctl``) for every wait; one system task wakes the parked tasks. Measured
  at 50 connections x 64 B: 26 µs of server CPU per round trip against 32 µs waiting
  through ``trio.lowlevel.wait_readable``. With fewer than ``_POLLER_MIN_STREAMS``
  connections waiting in the run (one connection measured 60 µs against 43 µs the plain
  way: the hop through the poller task is shared with nobody), and off Linux, Trio's own
  waits are used.
* Stream states raise Trio's exceptions: ``ClosedResourceError`` after ``aclose`` (or after
  ``send_eof`` for a send), ``BrokenResourceError`` when the peer reset the connection (the
  ``OSError`` is its ``__cause__``), ``BusyResourceError`` for two receivers or two senders.

Why the socket object (``trio.socket.SocketType._sock``, private to Trio) and not
``os.read``/``os.write`` on ``fileno()``: a closed socket object reports fileno -1 and every
call on it fails with EBADF, while a bare fd number is recycled by the kernel as soon as it is
closed, so a stale number could read another connection's bytes. Closing goes through
:meth:`FastSocketStream.aclose`, which takes the socket out of the poller and wakes a task
waiting on it (it then gets ``ClosedResourceError``) before the Trio socket closes it; close
the stream, never the socket under it. If Trio ever renames the attribute,
:func:`fast_stream` returns the ``trio.SocketStream`` unchanged: slower, never wrong.
"""

from __future__ import annotations

import contextlib
import errno
import select
import socket as stdlib_socket
import types
from collections.abc import Awaitable, Callable, Coroutine, Generator
from typing import Any, Final

import trio

__all__ = [
    "DEFAULT_RECEIVE_SIZE",
    "Acceptor",
    "FastSocketStream",
    "cancel_shielded_checkpoint",
    "checkpoint",
    "checkpoint_if_cancelled",
    "fast_stream",
    "unread_on_socket",
]

#: Trio's own SocketStream default (``trio._highlevel_socket.DEFAULT_RECEIVE_SIZE``).
DEFAULT_RECEIVE_SIZE: Final = 65536

# What a receive_some() without max_bytes asks for once the previous read filled its 64 KiB
# (a bulk transfer), until a read comes back short: fewer calls per byte. Just under glibc's
# 128 KiB mmap threshold (with the bytes object's header), so each read's buffer still comes
# from the heap: measured, 256 KiB reads (a fresh mmap each) cost more system time than 64.
BULK_RECEIVE_SIZE: Final = 124 * 1024

# Extra scheduling rounds a read that found no data yields (retrying after each) before it
# parks on epoll (module docstring: 3 measured best on one connection, no change at 50).
_PATIENCE: Final = 3

# Open streams (that ever waited) in a run from which waits go through the shared poller:
# measured, it wins at 50 connections and loses at one, where the extra hop through the
# poller task is not shared with anyone.
_POLLER_MIN_STREAMS: Final = 8

# SocketStream's translation (trio._highlevel_socket._closed_stream_errnos).
_CLOSED_ERRNOS: Final = frozenset({errno.EBADF, errno.ENOTSOCK})

# Connections taken per accept batch (see Acceptor).
_ACCEPT_BATCH: Final = 64
# accept() errors about one connection that died in the queue: skip it, like Trio's
# SocketListener (trio._highlevel_socket._ignorable_accept_errnos on Linux).
_ACCEPT_SKIP_ERRNOS: Final = frozenset({errno.ECONNABORTED, errno.EPROTO, errno.EPERM})

# Looked up once: module attributes, not three attribute lookups per call.
_wait_readable = trio.lowlevel.wait_readable
_wait_writable = trio.lowlevel.wait_writable


_Waiters = dict[int, trio.lowlevel.Task]
_Checkpoints = tuple[
    Callable[[], Awaitable[None]],
    Callable[[], Awaitable[None]],
    Callable[[], Awaitable[None]],
    Callable[[_Waiters, int], Awaitable[None]],
]


def _make_checkpoints() -> _Checkpoints:
    """Trio's ``checkpoint``, ``checkpoint_if_cancelled`` and ``cancel_shielded_checkpoint``,
    each in one generator frame, where we can.

    Trio's checkpoint is ``cancel_shielded_checkpoint()`` (two coroutine frames around one
    yield of ``CancelShieldedCheckpoint`` to the run loop, and an ``Outcome.unwrap``), then
    ``current_task()`` and a look at the task's cancel status. These do the same, step for
    step: the same yield (the run loop reschedules the task at once, counting a schedule
    point), the same count of a cancel point (``trio.testing.assert_checkpoints`` reads it),
    the same test of the task's cancel status and of a pending KeyboardInterrupt for the
    main task; when either is set they hand over to ``trio.lowlevel.checkpoint``, which
    raises it. Measured: ~1.2 µs less of server CPU per call, two calls per echoed message.

    They read Trio internals (``trio._core``): if any of them is missing (a Trio that moved
    them), Trio's own functions are used: slower, never wrong.
    """
    trio_checkpoint = trio.lowlevel.checkpoint
    fallback = (
        trio_checkpoint,
        trio.lowlevel.checkpoint_if_cancelled,
        trio.lowlevel.cancel_shielded_checkpoint,
        _park_public,
    )
    try:
        from trio._core._run import GLOBAL_RUN_CONTEXT, Task
        from trio._core._traps import CancelShieldedCheckpoint, WaitTaskRescheduled
    except ImportError:  # pragma: no cover - a Trio that moved its internals
        return fallback
    if not all(hasattr(Task, name) for name in ("_cancel_points", "_cancel_status", "_runner")):
        return fallback  # pragma: no cover
    context = GLOBAL_RUN_CONTEXT

    @types.coroutine
    def checkpoint() -> Generator[Any, Any, None]:
        # The run loop answers this yield by rescheduling the task at once with Value(None).
        yield CancelShieldedCheckpoint
        task = context.task
        task._cancel_points += 1
        runner = task._runner
        if task._cancel_status.effectively_cancelled or (
            runner.ki_pending and task is runner.main_task
        ):
            yield from trio_checkpoint().__await__()  # raises Cancelled / KeyboardInterrupt

    @types.coroutine
    def checkpoint_if_cancelled() -> Generator[Any, Any, None]:
        task = context.task
        task._cancel_points += 1
        runner = task._runner
        if task._cancel_status.effectively_cancelled or (
            runner.ki_pending and task is runner.main_task
        ):
            yield from trio_checkpoint().__await__()  # raises Cancelled / KeyboardInterrupt

    @types.coroutine
    def cancel_shielded_checkpoint() -> Generator[Any, Any, None]:
        yield CancelShieldedCheckpoint

    @types.coroutine
    def park(waiters: _Waiters, fd: int) -> Generator[Any, Any, None]:
        # trio.lowlevel.wait_task_rescheduled, in this one frame (a parked connection
        # holds it, so one frame here is memory saved per idle connection).
        task = context.task
        waiters[fd] = task
        (yield WaitTaskRescheduled(_forget_on_abort(waiters, fd, task))).unwrap()

    return checkpoint, checkpoint_if_cancelled, cancel_shielded_checkpoint, park


async def _park_public(waiters: _Waiters, fd: int) -> None:
    """Park until a poller wakes this task for ``fd`` (see :class:`_Poller`), with Trio's
    public ``wait_task_rescheduled``; its abort takes the task off ``waiters``."""
    task = trio.lowlevel.current_task()
    waiters[fd] = task
    await trio.lowlevel.wait_task_rescheduled(_forget_on_abort(waiters, fd, task))


def _forget_on_abort(
    waiters: _Waiters, fd: int, task: trio.lowlevel.Task
) -> Callable[[object], trio.lowlevel.Abort]:
    """The abort function of a parked task: take it off ``waiters`` (if still there), so a
    cancelled wait leaves nothing behind."""

    def abort(_: object) -> trio.lowlevel.Abort:
        if waiters.get(fd) is task:
            del waiters[fd]
        return trio.lowlevel.Abort.SUCCEEDED

    return abort


#: Full Trio checkpoints, their two halves, and parking a task for a poller (see
#: :func:`_make_checkpoints`).
checkpoint, checkpoint_if_cancelled, cancel_shielded_checkpoint, _park = _make_checkpoints()
_checkpoint = checkpoint
_checkpoint_if_cancelled = checkpoint_if_cancelled
_cancel_shielded_checkpoint = cancel_shielded_checkpoint


_EPOLL: Final = getattr(select, "epoll", None)  # Linux; elsewhere Trio's own waits are used
# Every socket is registered once, for everything, edge-triggered: an event means "something
# changed since you last got EAGAIN", which is exactly when a parked task must retry.
_EVENTS: Final = (
    getattr(select, "EPOLLIN", 0)
    | getattr(select, "EPOLLOUT", 0)
    | getattr(select, "EPOLLRDHUP", 0)
    | getattr(select, "EPOLLET", 0)
)
_READ_READY: Final = (
    getattr(select, "EPOLLIN", 0)
    | getattr(select, "EPOLLRDHUP", 0)
    | getattr(select, "EPOLLHUP", 0)
    | getattr(select, "EPOLLERR", 0)
)
_WRITE_READY: Final = (
    getattr(select, "EPOLLOUT", 0) | getattr(select, "EPOLLHUP", 0) | getattr(select, "EPOLLERR", 0)
)


class _Poller:
    """One edge-triggered epoll per Trio run, for every fast socket stream in it.

    Trio's own ``wait_readable`` re-arms its epoll for each wait (one ``epoll_ctl`` per
    wait, plus its bookkeeping). Here each socket is registered once, when it first has to
    wait; one system task waits on this epoll's fd through ``trio.lowlevel.wait_readable``
    (so Trio's scheduler still does all the sleeping), drains the ready events and wakes
    each parked task with ``trio.lowlevel.reschedule``. A task parks with
    ``trio.lowlevel.wait_task_rescheduled``; its abort function takes it off the waiter
    table, so a cancelled wait leaves nothing behind and cancellation stays exact.
    """

    __slots__ = ("_epoll", "readers", "streams", "writers")

    def __init__(self, epoll: select.epoll) -> None:
        self._epoll = epoll
        self.streams = 0  # open streams of this run that have waited at least once
        self.readers: _Waiters = {}
        self.writers: _Waiters = {}

    def register(self, fd: int) -> None:
        try:
            self._epoll.register(fd, _EVENTS)
        except FileExistsError:  # a dup of this socket, or a closed one's number reused
            self._epoll.modify(fd, _EVENTS)

    def forget(self, fd: int) -> None:
        """``fd`` is about to be closed: unregister it and wake whoever waits on it.

        The woken task retries its call on the closed socket and gets EBADF, which it
        reports as ``trio.ClosedResourceError`` (as Trio's ``notify_closing`` does).
        """
        with contextlib.suppress(OSError, ValueError):
            self._epoll.unregister(fd)
        for table in (self.readers, self.writers):
            task = table.pop(fd, None)
            if task is not None:
                trio.lowlevel.reschedule(task)

    async def run(self) -> None:
        """The system task: wait for the epoll fd, wake the tasks whose sockets are ready."""
        epoll = self._epoll
        readers = self.readers
        writers = self.writers
        reschedule = trio.lowlevel.reschedule
        try:
            while True:
                await trio.lowlevel.wait_readable(epoll)
                for fd, mask in epoll.poll(0):
                    if mask & _READ_READY:
                        task = readers.pop(fd, None)
                        if task is not None:
                            reschedule(task)
                    if mask & _WRITE_READY:
                        task = writers.pop(fd, None)
                        if task is not None:
                            reschedule(task)
        finally:
            epoll.close()


_POLLER: Final = trio.lowlevel.RunVar[_Poller | None]("trio_tcp_poller")


def _current_poller() -> _Poller | None:
    """This run's poller, started on first use; None where there is no epoll."""
    try:
        return _POLLER.get()
    except LookupError:
        pass
    poller = None if _EPOLL is None else _Poller(_EPOLL())
    _POLLER.set(poller)
    if poller is not None:
        trio.lowlevel.spawn_system_task(poller.run, name="trio_tcp socket poller")
    return poller


class _WouldWait(Exception):
    """A read that may not wait (``receive_some_if_ready``) found nothing to take."""


def _stream_error(exc: OSError) -> trio.ClosedResourceError | trio.BrokenResourceError:
    """The error SocketStream raises for ``exc``: closed by us, or broken by the peer."""
    if exc.errno in _CLOSED_ERRNOS:
        return trio.ClosedResourceError("this socket was already closed")
    return trio.BrokenResourceError(f"socket connection broken: {exc}")


def _raw(sock: trio.socket.SocketType) -> stdlib_socket.socket | None:
    raw = getattr(sock, "_sock", None)
    return raw if isinstance(raw, stdlib_socket.socket) else None


class FastSocketStream(trio.abc.HalfCloseableStream):
    """A ``trio.abc.HalfCloseableStream`` over a connected stream socket (TCP or Unix).

    A drop-in for ``trio.SocketStream`` with the same behaviour and errors, and fewer layers
    per call (module docstring). Build it with :func:`fast_stream` from a
    ``trio.SocketStream``.

    Args:
      socket: a connected Trio ``SOCK_STREAM`` socket; the stream owns it from now on.
      set_defaults: set ``TCP_NODELAY`` and ``TCP_NOTSENT_LOWAT`` as ``trio.SocketStream``
        does (skip it when wrapping a ``trio.SocketStream``, which already did).

    Attributes:
      socket: the Trio socket (for ``getpeername``, options, ``fileno``).
      bytes_received: bytes received so far.
      bytes_sent: bytes the kernel has taken so far.
      eof_received: a receive returned end of stream (nothing more can arrive).
      peer_address: the IP peer's address as ``accept`` returned it (still known after a
        reset, when ``getpeername`` fails), or ``None``.
    """

    __slots__ = (
        "_eof_sent",
        "_fd",
        "_poller",
        "_read_size",
        "_receiving",
        "_sending",
        "_sock",
        "bytes_received",
        "bytes_sent",
        "eof_received",
        "peer_address",
        "socket",
    )

    def __init__(
        self,
        socket: trio.socket.SocketType,
        *,
        set_defaults: bool = True,
        peer_address: tuple[Any, ...] | None = None,
    ) -> None:
        if not isinstance(socket, trio.socket.SocketType):
            raise TypeError("FastSocketStream requires a Trio socket object")
        if socket.type != stdlib_socket.SOCK_STREAM:
            raise ValueError("FastSocketStream requires a SOCK_STREAM socket")
        raw = _raw(socket)
        if raw is None:
            raise TypeError("this Trio socket has no stdlib socket under it")
        self.socket = socket
        self._sock = raw
        self._receiving = False
        self._sending = False
        self._poller: _Poller | None = None  # set (and the socket registered) on first wait
        self._fd = -1
        self.peer_address = peer_address
        self._read_size = DEFAULT_RECEIVE_SIZE  # receive_some(): BULK_RECEIVE_SIZE while full
        self._eof_sent = socket.did_shutdown_SHUT_WR
        self.bytes_received = 0
        self.bytes_sent = 0
        self.eof_received = False
        # trio.SocketStream's defaults: no Nagle delay; a 16 KiB unsent-data low-water mark
        # so wait_send_all_might_not_block means something (python-trio/trio#72).
        if set_defaults and socket.family in (stdlib_socket.AF_INET, stdlib_socket.AF_INET6):
            raw.setsockopt(stdlib_socket.IPPROTO_TCP, stdlib_socket.TCP_NODELAY, 1)
            if hasattr(stdlib_socket, "TCP_NOTSENT_LOWAT"):
                with contextlib.suppress(OSError):  # an old kernel
                    raw.setsockopt(
                        stdlib_socket.IPPROTO_TCP, stdlib_socket.TCP_NOTSENT_LOWAT, 2**14
                    )

    def __repr__(self) -> str:
        return f"<FastSocketStream fd={self.socket.fileno()}>"

    # ------------------------------------------------------------------ receiving

    def receive_some(self, max_bytes: int | None = None) -> Coroutine[Any, Any, bytes]:
        """Up to ``max_bytes`` bytes (default 64 KiB) as they arrive; ``b""`` at end of stream.

        A plain function returning the coroutine that does the work (``await
        stream.receive_some()`` as with any stream): one coroutine frame per call, not two.

        Cancellation: a cancelled call received nothing.

        Raises:
          trio.ClosedResourceError: the stream was closed.
          trio.BrokenResourceError: the peer reset the connection.
          trio.BusyResourceError: another task is receiving.
          ValueError: ``max_bytes`` is less than 1 (when called).
        """
        if max_bytes is None:
            return self._receive(self._read_size, False)
        if max_bytes < 1:
            raise ValueError("max_bytes must be >= 1")
        return self._receive(max_bytes, False)

    def __anext__(self) -> Coroutine[Any, Any, bytes]:
        """``async for chunk in stream``: ``receive_some()`` until end of stream."""
        return self._receive(self._read_size, True)

    async def receive_some_if_ready(self, max_bytes: int | None = None) -> bytes | None:
        """:meth:`receive_some`, but ``None`` where it would wait on epoll: nothing arrived
        within the rounds a read lets the other tasks run before it waits (``_PATIENCE``).

        For a reader that must do something before it waits (the ``until_closing`` reads
        of ``Connection`` arm a wake-up for a shutdown only then). Same checkpoint, same
        errors; ``None`` means nothing was received.
        """
        try:
            return await self._receive(max_bytes or DEFAULT_RECEIVE_SIZE, False, False)
        except _WouldWait:
            return None

    async def _receive(self, max_bytes: int, stop: bool, park: bool = True) -> bytes:
        """receive_some (``stop``: raise ``StopAsyncIteration`` at end of stream; not
        ``park``: raise ``_WouldWait`` instead of waiting on epoll)."""
        if self._receiving:
            raise trio.BusyResourceError("another task is already receiving on this stream")
        self._receiving = True
        sock = self._sock
        try:
            # The checkpoint comes first, so the one yield this call owes is also the
            # peer's chance to answer: the recv after it usually finds the bytes waiting.
            await _checkpoint()
            try:
                data = sock.recv(max_bytes)
            except BlockingIOError:
                # Nothing yet. Let the other tasks run a few rounds, retrying after each,
                # before parking: parking costs an epoll_ctl and a wake-up, and a peer in a
                # request/response exchange usually answers by then. (Inline, not a helper
                # coroutine: a parked connection then holds one frame less, ~0.8 KiB.)
                patience = _PATIENCE
                while True:
                    if patience:
                        patience -= 1
                        await _checkpoint()
                    elif park:
                        await self._waiter(readable=True)
                    else:
                        raise _WouldWait from None
                    try:
                        data = sock.recv(max_bytes)
                        break
                    except BlockingIOError:
                        pass
        except OSError as exc:
            raise _stream_error(exc) from (None if exc.errno in _CLOSED_ERRNOS else exc)
        finally:
            self._receiving = False
        if data:
            size = len(data)
            self.bytes_received += size
            if size == max_bytes:  # full: more is waiting, a bulk transfer
                if max_bytes == DEFAULT_RECEIVE_SIZE:
                    self._read_size = BULK_RECEIVE_SIZE
            elif self._read_size != DEFAULT_RECEIVE_SIZE:
                self._read_size = DEFAULT_RECEIVE_SIZE
        else:
            self.eof_received = True
            if stop:
                raise StopAsyncIteration
        return data

    def _waiter(self, *, readable: bool) -> Awaitable[None]:
        """What to await until the socket may be ready (a checkpoint); the caller then
        retries its call. A plain method: awaiting its result adds no frame of ours."""
        poller = self._poller
        if poller is None:  # this stream's first wait
            if self._sock.fileno() == -1:
                raise trio.ClosedResourceError("this socket was already closed")
            poller = _current_poller()
            if poller is None:
                return (_wait_readable if readable else _wait_writable)(self._sock)
            self._poller = poller
            poller.streams += 1
        if poller.streams < _POLLER_MIN_STREAMS:
            # Few connections: the hop through the poller task costs more than Trio's
            # re-arming saves (measured on one connection), so wait the plain way.
            return (_wait_readable if readable else _wait_writable)(self._sock)
        fd = self._fd
        if fd == -1:
            fd = self._sock.fileno()
            if fd == -1:
                raise trio.ClosedResourceError("this socket was already closed")
            poller.register(fd)
            self._fd = fd
        return _park(poller.readers if readable else poller.writers, fd)

    # ------------------------------------------------------------------ sending

    async def send_all(self, data: bytes | bytearray | memoryview) -> None:
        """Send every byte of ``data``; return once the kernel has taken them all.

        Cancellation: a cancelled call may have sent part of ``data`` (Trio's rule); the
        stream is then in an unknown state and should be closed.

        Raises:
          trio.ClosedResourceError: the stream was closed, or ``send_eof`` was called.
          trio.BrokenResourceError: the peer reset the connection.
          trio.BusyResourceError: another task is sending.
        """
        if self._eof_sent:
            raise trio.ClosedResourceError("can't send data after sending EOF")
        if self._sending:
            raise trio.BusyResourceError("another task is already sending on this stream")
        self._sending = True
        sock = self._sock
        try:
            if not isinstance(data, bytes):
                await self._send_view(data)
                return
            if not data:
                if sock.fileno() == -1:
                    raise trio.ClosedResourceError("socket was already closed")
                await _checkpoint()
                return
            # Trio's order for a send: a cancelled call sends nothing; the bytes go out at
            # once (a reply leaves before the other tasks run, not after); then the
            # schedule point, shielded, as the bytes are sent.
            await _checkpoint_if_cancelled()
            try:
                sent = sock.send(data)
            except BlockingIOError:
                sent = 0
            self.bytes_sent += sent
            if sent < len(data):
                # The kernel's send buffer is full: this is where back-pressure holds.
                with memoryview(data) as view:
                    await self._send_rest(view, sent)
            await _cancel_shielded_checkpoint()
        except OSError as exc:
            raise _stream_error(exc) from (None if exc.errno in _CLOSED_ERRNOS else exc)
        finally:
            self._sending = False

    async def _send_view(self, data: bytearray | memoryview) -> None:
        """send_all for anything but ``bytes`` (a bytearray, a memoryview of any format)."""
        with memoryview(data) as view, view.cast("B") as flat:
            if not flat:
                if self._sock.fileno() == -1:
                    raise trio.ClosedResourceError("socket was already closed")
                await _checkpoint()
                return
            await _checkpoint_if_cancelled()
            await self._send_rest(flat, 0)
            await _cancel_shielded_checkpoint()

    async def _send_rest(self, view: memoryview, sent: int) -> None:
        """Send ``view[sent:]``, waiting whenever the kernel's buffer is full."""
        sock = self._sock
        total = len(view)
        while sent < total:
            try:
                with view[sent:] as remaining:
                    count = sock.send(remaining)
            except BlockingIOError:
                await self._waiter(readable=False)
                continue
            sent += count
            self.bytes_sent += count

    async def wait_send_all_might_not_block(self) -> None:
        """Wait until the socket can take more bytes (see ``trio.abc.SendStream``)."""
        if self._sending:
            raise trio.BusyResourceError("another task is already sending on this stream")
        self._sending = True
        try:
            if self._sock.fileno() == -1:
                raise trio.ClosedResourceError("this socket was already closed")
            await _wait_writable(self._sock)
        except OSError as exc:
            raise _stream_error(exc) from (None if exc.errno in _CLOSED_ERRNOS else exc)
        finally:
            self._sending = False

    async def send_eof(self) -> None:
        """Shut down the sending side (the peer reads end of stream); harmless twice.

        Raises:
          trio.ClosedResourceError: the stream was closed.
          trio.BusyResourceError: another task is sending.
        """
        if self._sending:
            raise trio.BusyResourceError("another task is already sending on this stream")
        self._sending = True
        try:
            await _checkpoint()
            if self._eof_sent:
                return
            self.socket.shutdown(stdlib_socket.SHUT_WR)
            self._eof_sent = True
        except OSError as exc:
            raise _stream_error(exc) from (None if exc.errno in _CLOSED_ERRNOS else exc)
        finally:
            self._sending = False

    # ------------------------------------------------------------------ the rest

    async def aclose(self) -> None:
        """Close the socket (a task waiting on it gets ``ClosedResourceError``); harmless twice.

        Cancellation: the socket is closed even if the call is cancelled.
        """
        self.close()
        await _checkpoint()

    def close(self) -> None:
        """:meth:`aclose` without its checkpoint, for an owner that is done with the stream
        (the server, once a handler has ended); harmless twice."""
        poller = self._poller
        if poller is not None:
            if self._fd != -1:
                poller.forget(self._fd)
                self._fd = -1
            poller.streams -= 1
            self._poller = None
        self.socket.close()

    def setsockopt(self, level: int, option: int, value: int | bytes) -> None:
        """Set a socket option (see ``socket.socket.setsockopt``)."""
        self.socket.setsockopt(level, option, value)

    def getsockopt(self, level: int, option: int) -> int:
        """Read an integer socket option (see ``socket.socket.getsockopt``)."""
        return self.socket.getsockopt(level, option)


def fast_stream(stream: trio.abc.Stream) -> trio.abc.Stream:
    """``stream`` as a :class:`FastSocketStream` if it is a plain ``trio.SocketStream``.

    Any other stream (TLS, memory, a subclass, a wrapper) is returned as it is. The
    ``trio.SocketStream`` must not be used afterwards: the new stream owns its socket.
    """
    if type(stream) is not trio.SocketStream or _raw(stream.socket) is None:
        return stream
    return FastSocketStream(stream.socket, set_defaults=False)


def unread_on_socket(stream: trio.abc.Stream, *, eof: bool = True) -> bool:
    """Bytes (or, with ``eof``, end of stream or an error) wait in the receive queue of the
    socket under ``stream`` (a fast socket stream, a ``trio.SocketStream``, or a TLS stream
    over one).

    A non-blocking ``MSG_PEEK``: nothing is taken. False for a stream with no socket.
    ``eof=False`` asks only about bytes, the ones a close would answer with a reset (the
    peer's end of stream does not): no system call at all once a fast stream has read the
    end of stream, after which nothing more can arrive.
    """
    inner = stream
    transport = getattr(stream, "transport_stream", None)  # trio.SSLStream
    if not isinstance(stream, FastSocketStream | trio.SocketStream) and isinstance(
        transport, trio.abc.Stream
    ):
        inner = transport
    if isinstance(inner, FastSocketStream):
        if inner.eof_received and not eof:
            return False
        sock: stdlib_socket.socket | None = inner._sock
    elif isinstance(inner, trio.SocketStream):
        sock = _raw(inner.socket)
    else:
        return False
    if sock is None:
        return False
    try:
        peeked = sock.recv(1, stdlib_socket.MSG_PEEK | stdlib_socket.MSG_DONTWAIT)
    except BlockingIOError:
        return False
    except OSError:
        return eof  # an error is waiting: the next read reports it
    return eof or bool(peeked)  # bytes (or end of stream) are waiting


def _accept_batch(raw: stdlib_socket.socket) -> tuple[list[trio.abc.Stream], bool]:
    """Non-blocking ``accept`` on a listening socket until EAGAIN or a batch of 64.

    Returns the streams and whether the queue was seen empty (EAGAIN). An error about one
    connection that died in the queue skips it; any other error ends the batch, or is
    raised when the batch is empty.
    """
    streams: list[trio.abc.Stream] = []
    for _ in range(_ACCEPT_BATCH):
        try:
            sock, address = raw.accept()
        except BlockingIOError:
            return streams, True
        except OSError as exc:
            if exc.errno in _ACCEPT_SKIP_ERRNOS:
                continue
            if streams:
                break  # the next call meets it again and raises it
            raise
        streams.append(
            FastSocketStream(
                trio.socket.from_stdlib_socket(sock),
                peer_address=address if isinstance(address, tuple) else None,
            )
        )
    return streams, False


class Acceptor:
    """Takes connections from one listener in batches, for a server's accept loop.

    On a ``trio.SocketListener`` it accepts straight on the listening socket: the
    connections already waiting (up to 64) are taken with one scheduler pass, and once a
    batch found the queue empty the next call waits for readiness first, so each wait costs
    one ``accept`` that finds nothing at most (Trio's own listener: one per connection).
    Each socket comes back as a :class:`FastSocketStream` with Trio's ``SocketStream``
    options set. Any other listener: its own ``accept()``, through :func:`fast_stream`.
    """

    __slots__ = ("_drained", "_listener", "_raw")

    def __init__(self, listener: trio.abc.Listener[Any]) -> None:
        self._listener = listener
        self._raw = _raw(listener.socket) if type(listener) is trio.SocketListener else None
        self._drained = False

    async def accept(self) -> list[trio.abc.Stream]:
        """The next connections: at least one, in arrival order (a checkpoint).

        Cancellation: nothing is accepted by a cancelled call.

        Raises:
          trio.ClosedResourceError: the listener was closed.
          OSError: ``accept`` failed (EMFILE, ENFILE, ENOBUFS, ENOMEM: out of resources), as
            from Trio's ``SocketListener.accept``.
        """
        raw = self._raw
        if raw is None:
            return [fast_stream(await self._listener.accept())]
        if self._drained:
            await self._wait(raw)
        else:
            await _checkpoint()
        while True:
            try:
                streams, self._drained = _accept_batch(raw)
            except OSError as exc:
                self._drained = False
                if exc.errno in _CLOSED_ERRNOS:
                    raise trio.ClosedResourceError("the listener was closed") from None
                raise
            if streams:
                return streams
            await self._wait(raw)

    @staticmethod
    async def _wait(raw: stdlib_socket.socket) -> None:
        if raw.fileno() == -1:
            raise trio.ClosedResourceError("the listener was closed")
        await _wait_readable(raw)
