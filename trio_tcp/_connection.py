"""`Connection`: one byte stream plus a receive buffer.

The I/O layer is one thin pump (websockets' ``trio/connection.py``): it receives chunks,
keeps them in a ``ReceiveBuffer`` and hands out exact reads, delimited reads, lines and
frames. No protocol logic lives here: framers are sans-IO and parse straight out of this
connection's buffer, so bytes never get trapped inside a framer.

Checkpoint rules (see also the README):

* Every async method is a *cancellation point*: if the surrounding scope is cancelled, the
  call raises ``trio.Cancelled`` before doing anything.
* A call that has to wait for the network always yields to the scheduler (it is a full Trio
  checkpoint). A buffered read that is served entirely from bytes already received does not
  yield; like ``asyncio.StreamReader`` it returns at once. The buffer is bounded by one
  network read (``receive_size``), so such a run of reads ends after at most that many
  bytes and the next read yields.
* Over a real socket (the wrapped stream is a ``trio.SocketStream``) reads and writes take a
  fast path: they call ``recv``/``send`` on the non-blocking socket directly and wait with
  ``trio.lowlevel.wait_readable``/``wait_writable`` only when it would block (``EAGAIN``).
  Waiting is what costs (each wait re-arms epoll), so a read that finds no data first
  yields to the other tasks up to ``_PATIENCE`` times (full checkpoints: it may be cancelled
  there, having taken nothing) and tries again before it parks. A network call that did
  not have to wait does not yield every time: it yields (a cancel-shielded checkpoint, so
  nothing it did is undone) once every ``_YIELD_EVERY`` such calls, so a connection whose
  peer always has data ready cannot starve the others; any wait resets the count. Other
  streams (memory, TLS) take Trio's own path, where every network call is a checkpoint.
* Back-pressure is the kernel's: ``send_all`` returns only once the socket took every
  byte, and a read asks for at most ``receive_size`` bytes, so neither direction queues
  more than one chunk in user space.
* Partial data never lives in a local variable across an ``await``: a read cancelled half
  way leaves every byte it had received in the buffer, readable by the next read.
"""

from __future__ import annotations

import errno
import functools
import itertools
import math
import socket
from collections.abc import AsyncIterator, Callable
from typing import Final, TypeAlias, TypeVar

import trio

from ._exceptions import EndOfStream, IncompleteFrameError
from .framing import DEFAULT_MAX_LINE_LENGTH, FrameEncoder, Framer, LineFramer, ReceiveBuffer

__all__ = ["Address", "Connection"]

FrameT = TypeVar("FrameT")

#: A peer or local address: ``(host, port)`` for TCP, a path for a Unix socket, ``None``
#: where the transport has no address (a memory stream).
Address: TypeAlias = "tuple[str, int] | str | None"

# trio's own SocketStream default (trio._highlevel_socket.DEFAULT_RECEIVE_SIZE).
DEFAULT_RECEIVE_SIZE: Final = 65536

_ids = itertools.count(1)

# Fast-path network calls that may complete without yielding before one yields anyway: a
# connection whose peer always has data ready then yields at least once every 16 calls
# (16 x 64 KiB = 1 MiB at most), which keeps the others served, while the hot path of a
# busy connection pays for one scheduler pass per 16 calls instead of one per call.
_YIELD_EVERY: Final = 16

# Scheduling rounds a read that found no data yields before it parks on epoll (see
# _recv_fast): enough for a peer that answers at once, short enough that an idle connection
# costs two failed recv() calls per read, once.
_PATIENCE: Final = 2

# SocketStream's translation (trio._highlevel_socket._closed_stream_errnos).
_CLOSED_ERRNOS: Final = frozenset({errno.EBADF, errno.ENOTSOCK})


def _stream_error(exc: OSError) -> trio.ClosedResourceError | trio.BrokenResourceError:
    """The error SocketStream raises for ``exc``: closed by us, or broken by the peer."""
    if exc.errno in _CLOSED_ERRNOS:
        return trio.ClosedResourceError("this socket was already closed")
    return trio.BrokenResourceError(f"socket connection broken: {exc}")


def _raw_socket(stream: trio.abc.Stream) -> socket.socket | None:
    """The stdlib socket under a ``trio.SocketStream``, for the fast path; else None.

    Why the socket object (``trio.socket.SocketType._sock``, private to Trio) and not
    ``os.read``/``os.write`` on ``fileno()``: a closed socket object reports fileno -1 and
    every call on it fails with EBADF, while a bare fd number is recycled by the kernel as
    soon as it is closed, so a stale number could read another connection's bytes. We never
    close or dup it: closing stays with ``SocketStream.aclose`` (which also wakes a task
    waiting on it through ``notify_closing``). If Trio ever renames the attribute, the
    generic path is used: slower, never wrong.
    """
    if type(stream) is not trio.SocketStream:
        return None
    raw = getattr(stream.socket, "_sock", None)
    return raw if isinstance(raw, socket.socket) else None


@functools.lru_cache(maxsize=32)
def _make_line_framer(delimiter: bytes, max_length: int, keep_ends: bool) -> LineFramer:
    return LineFramer(delimiter, max_line_length=max_length, keep_ends=keep_ends)


_DEFAULT_LINE_FRAMER: Final = _make_line_framer(b"\n", DEFAULT_MAX_LINE_LENGTH, False)


def _line_framer(delimiter: bytes, max_length: int, keep_ends: bool) -> LineFramer:
    """The framer behind ``receive_line``; parse() keeps no state, so one can be shared."""
    if max_length == DEFAULT_MAX_LINE_LENGTH and delimiter == b"\n" and not keep_ends:
        return _DEFAULT_LINE_FRAMER
    return _make_line_framer(delimiter, max_length, keep_ends)


def _cancel_probe() -> Callable[[], bool]:
    """A function telling whether the calling task's scope is cancelled, made cheap.

    ``trio.lowlevel.checkpoint_if_cancelled()`` costs a coroutine per call (about 0.5 us),
    which is as much as parsing a line. The hot paths ask this probe instead and only then
    await a real checkpoint, which raises ``Cancelled``: the same rule, a third of the cost.
    The probe reads the field ``checkpoint_if_cancelled`` itself reads (private to Trio, so
    it is looked up once here, with Trio's public equivalent as the fallback).
    """
    try:
        from trio._core._run import GLOBAL_RUN_CONTEXT as run_context

        run_context.__class__  # noqa: B018 - the import is what may fail
        assert hasattr(trio.CancelScope, "_cancel_status")
    except (ImportError, AssertionError):  # pragma: no cover - a future Trio moved it

        def public_probe() -> bool:
            return trio.current_effective_deadline() == -math.inf

        return public_probe

    def probe() -> bool:
        return run_context.task._cancel_status.effectively_cancelled

    return probe


_cancel_requested: Final = _cancel_probe()


def _format_address(raw: object) -> Address:
    if isinstance(raw, tuple) and len(raw) >= 2:
        return (str(raw[0]), int(raw[1]))
    if isinstance(raw, bytes):  # abstract Unix socket names come back as bytes
        return raw.decode("utf-8", "backslashreplace")
    if isinstance(raw, str):
        return raw
    return None


def _socket_address(stream: trio.abc.Stream, *, peer: bool, strict: bool = False) -> Address:
    """Find the socket under ``stream`` (through SSLStream and friends) and ask it.

    ``None`` for a stream with no socket, or one that will not say (closed, or the peer
    reset). With ``strict``, an IP socket that will not say raises its ``OSError`` instead:
    access rules must never mistake a reset TCP peer for a trusted non-IP one.
    """
    inner: object = stream
    for _ in range(8):  # wrappers nest a level or two; never loop forever on a cycle
        if isinstance(inner, trio.SocketStream):
            try:
                raw = inner.socket.getpeername() if peer else inner.socket.getsockname()
            except OSError:  # already closed, or the peer is gone
                if strict and inner.socket.family in (socket.AF_INET, socket.AF_INET6):
                    raise
                return None
            return _format_address(raw)
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


class Connection(trio.abc.HalfCloseableStream):
    """One conversation with a peer: any ``trio.abc.Stream`` plus a receive buffer.

    A ``Connection`` wraps a ``trio.SocketStream``, a ``trio.SSLStream``, a memory stream or
    any other Trio stream, so one handler runs over real sockets and in tests. It *is* a Trio
    stream (``receive_some``, ``send_all``, ``send_eof``, ``aclose``, ``async for chunk in
    conn``), and adds buffered reads: :meth:`receive_exactly`, :meth:`receive_until`,
    :meth:`receive_line`, :meth:`lines` and :meth:`frames`.

    Stream states raise Trio's own exceptions: ``trio.ClosedResourceError`` after
    :meth:`aclose`, ``trio.BrokenResourceError`` when the peer or network broke the stream,
    ``trio.BusyResourceError`` when two tasks receive (or two tasks send) at once.

    Attributes:
      stream: the wrapped stream.
      id: a small integer, unique in this process, for logs (``#3``).
      opened_at: ``trio.current_time()`` when the connection was made.
      bytes_received: bytes that arrived from the network (buffered or not).
      bytes_sent: bytes handed to the network by completed ``send_all`` calls.
    """

    __slots__ = (
        "__weakref__",
        "_buffer",
        "_cancel_scope",
        "_closed",
        "_closing",
        "_idle_mark_bytes",
        "_idle_mark_time",
        "_local",
        "_peer",
        "_receive_size",
        "_receiving",
        "_sending",
        "_sock",
        "_unyielded",
        "_wake_on_closing",
        "_wake_scope",
        "bytes_received",
        "bytes_sent",
        "id",
        "opened_at",
        "stream",
    )

    def __init__(
        self,
        stream: trio.abc.Stream,
        *,
        peer: Address = None,
        local: Address = None,
        receive_size: int = DEFAULT_RECEIVE_SIZE,
        closing: trio.Event | None = None,
    ) -> None:
        """Wrap ``stream``.

        Args:
          stream: any Trio stream; the connection owns it from now on.
          peer, local: addresses to report instead of asking the socket (the server passes
            the original client's address from a PROXY protocol header here).
          receive_size: how many bytes one network read asks for (and so how far the buffer
            can run ahead of the reader); default 64 KiB, like Trio's SocketStream.
          closing: set when the owner begins a graceful shutdown (:attr:`is_closing`); the
            server passes one event shared by its connections. ``None``: never closing.
        """
        if receive_size < 1:
            raise ValueError("receive_size must be >= 1")
        self.stream = stream
        self.id = next(_ids)
        self.opened_at = trio.current_time()
        self.bytes_received = 0
        self.bytes_sent = 0
        self._buffer: ReceiveBuffer | None = None  # made on first buffered read
        self._peer = peer
        self._local = local
        self._receive_size = receive_size
        self._receiving = False
        self._sending = False
        self._sock = _raw_socket(stream)  # not None: the fast path (module docstring)
        self._unyielded = 0
        self._closed = False
        self._closing = closing
        self._wake_scope: trio.CancelScope | None = None  # an until_closing read parked
        self._wake_on_closing = False  # the read in progress is an until_closing one
        self._cancel_scope: trio.CancelScope | None = None
        self._idle_mark_bytes = 0
        self._idle_mark_time = self.opened_at

    # ------------------------------------------------------------------ identity

    @property
    def peer(self) -> Address:
        """The remote address: ``(host, port)``, a Unix path, or ``None`` (memory)."""
        if self._peer is None:
            self._peer = _socket_address(self.stream, peer=True)
        return self._peer

    @property
    def local(self) -> Address:
        """The local address: ``(host, port)``, a Unix path, or ``None`` (memory)."""
        if self._local is None:
            self._local = _socket_address(self.stream, peer=False)
        return self._local

    @property
    def is_closing(self) -> bool:
        """True once the server that accepted this connection began a graceful shutdown.

        Always False for a connection no server owns (a client's). See :func:`serve` for
        what shutdown means for a handler; :attr:`is_closing_and_quiet` is the question a
        handler asks at a message boundary.
        """
        closing = self._closing
        return closing is not None and closing.is_set()

    async def wait_closing(self) -> None:
        """Return once the server began a graceful shutdown (at once if it has).

        For a connection no server owns, this waits until cancelled.

        Cancellation: an ordinary checkpoint; there is nothing to undo.
        """
        if self._closing is None:
            await trio.sleep_forever()
        else:
            await self._closing.wait()

    @property
    def is_closing_and_quiet(self) -> bool:
        """Are we closing, and is the peer quiet? A non-blocking check, for a boundary.

        True when :attr:`is_closing` and no received byte is waiting: none buffered here and
        none in the socket's receive queue (a non-blocking ``MSG_PEEK``; for a stream with
        no socket underneath, only the buffer is checked). A handler at a boundary of its
        protocol (after a reply, between lines) may then end without cutting the peer off.
        End of stream waiting on the socket is not quiet: the next read reports it.
        """
        return self.is_closing and self._peer_quiet()

    def _peer_quiet(self) -> bool:
        if self._buffer is not None and self._buffer:
            return False
        return not self._unread_on_socket()

    def _unread_on_socket(self) -> bool:
        """Bytes (or end of stream, or an error) wait in the socket's receive queue."""
        sock = self._sock
        if sock is None:
            transport = getattr(self.stream, "transport_stream", None)  # trio.SSLStream
            sock = _raw_socket(transport) if isinstance(transport, trio.abc.Stream) else None
            if sock is None:
                return False
        try:
            sock.recv(1, socket.MSG_PEEK | socket.MSG_DONTWAIT)
        except BlockingIOError:
            return False
        except OSError:
            return True  # an error is waiting: the next read reports it
        return True  # bytes (or end of stream) are waiting

    async def _park_unless_closing(self, sock: socket.socket) -> None:
        """Wait for ``sock`` to be readable, or raise ``_Woken`` once shutdown begins.

        The cancel scope that ``Server.close`` cancels to wake us is entered only here, when
        the read parks on epoll (which costs an epoll_ctl and a wake-up anyway): a read whose
        bytes are already there, or arrive within the patience rounds, pays nothing for it.
        """
        closing = self._closing
        if closing is not None and closing.is_set():
            raise _Woken
        with trio.CancelScope() as scope:
            self._wake_scope = scope
            try:
                await trio.lowlevel.wait_readable(sock)
            finally:
                self._wake_scope = None
        if scope.cancelled_caught:
            raise _Woken

    async def _wait_at_boundary(self) -> bool:
        """For the ``until_closing`` iterators, before a read: False means stop iterating.

        Not at a boundary (bytes buffered) or not owned by a server: True at once. At a
        boundary: waits for the peer's next bytes (buffered, True), its end of stream
        (False), or a graceful shutdown while the peer is quiet (False); ``Server.close``
        cancels :attr:`_wake_scope` to wake it. Nothing received is ever lost.
        """
        closing = self._closing
        buffer = self._ensure_buffer()
        if closing is None or buffer:
            return True
        if closing.is_set():
            return not self._peer_quiet()
        self._check_receive()
        if self._sock is not None:  # the fast path wakes only a parked read (see above)
            self._wake_on_closing = True
            try:
                return await self._fill(buffer)
            except _Woken:
                return not self._peer_quiet()
            finally:
                self._wake_on_closing = False
        with trio.CancelScope() as scope:  # other streams: a scope around the whole wait
            self._wake_scope = scope
            try:
                received = await self._fill(buffer)
            finally:
                self._wake_scope = None
        if scope.cancelled_caught:
            return not self._peer_quiet()
        return received

    @property
    def buffered(self) -> int:
        """How many received bytes are waiting in the buffer, not yet read."""
        return len(self._buffer) if self._buffer is not None else 0

    def __repr__(self) -> str:
        return f"<Connection #{self.id} {format_address(self.peer)}>"

    # ------------------------------------------------------------------ raw stream API

    def _check_receive(self) -> None:
        if self._closed:
            raise trio.ClosedResourceError("this connection was already closed")
        if self._receiving:
            raise trio.BusyResourceError("another task is already receiving on this connection")

    async def receive_some(self, max_bytes: int | None = None) -> bytes:
        """Return the next bytes that arrived (up to ``max_bytes``), ``b""`` at end of stream.

        Bytes already in the buffer (left over from a buffered read) come first.

        Cancellation: a cancelled call received nothing; no byte is lost.

        Raises:
          trio.ClosedResourceError: this connection was closed.
          trio.BrokenResourceError: the peer reset the connection.
          trio.BusyResourceError: another task is receiving.
        """
        if max_bytes is not None and max_bytes < 1:
            raise ValueError("max_bytes must be >= 1")
        self._check_receive()
        buffer = self._buffer
        if buffer:
            await trio.lowlevel.checkpoint()
            if max_bytes is None or max_bytes >= len(buffer):
                return buffer.extract_all()
            return buffer.extract(max_bytes)
        self._receiving = True
        data: bytes | bytearray
        try:
            if self._sock is not None:
                data = await self._recv_fast(self._sock, max_bytes or self._receive_size)
            else:
                data = await self.stream.receive_some(max_bytes or self._receive_size)
        finally:
            self._receiving = False
        self.bytes_received += len(data)
        if type(data) is not bytes:  # the Stream ABC allows a bytearray
            data = bytes(data)
        return data

    async def send_all(self, data: bytes | bytearray | memoryview) -> None:
        """Send every byte of ``data``; returns once the network has taken them.

        Cancellation: a cancelled call may have sent part of ``data`` (Trio's rule for
        ``send_all``); the stream is then in an unknown state and should be closed.

        Raises:
          trio.ClosedResourceError: this connection (or its sending side) was closed.
          trio.BrokenResourceError: the peer reset the connection.
          trio.BusyResourceError: another task is sending.
        """
        sock = self._sock
        if sock is None:
            await self.stream.send_all(data)
        else:
            await self._send_fast(sock, data)
        self.bytes_sent += len(data)

    async def _recv_fast(self, sock: socket.socket, max_bytes: int) -> bytes:
        """``recv`` straight on the socket; the caller holds the receive flag."""
        if _cancel_requested():
            await trio.lowlevel.checkpoint()
        try:
            # Try first. On EAGAIN, let the other tasks run (a plain reschedule, no syscall)
            # up to _PATIENCE times before parking on epoll: parking costs an epoll_ctl and a
            # wake-up, and in a request/response exchange the peer's next bytes usually land
            # within a scheduling round. Measured: waiting at once lost to plain Trio (which
            # yields after every call); one or two rounds of patience beat it.
            patience = _PATIENCE
            while True:
                try:
                    data = sock.recv(max_bytes)
                    break
                except BlockingIOError:
                    if patience:
                        patience -= 1
                        await trio.lowlevel.checkpoint()  # nothing received: may be cancelled
                    elif self._wake_on_closing:
                        await self._park_unless_closing(sock)
                    else:
                        await trio.lowlevel.wait_readable(sock)
                    self._unyielded = 0
        except OSError as exc:
            raise _stream_error(exc) from (None if exc.errno in _CLOSED_ERRNOS else exc)
        except ValueError:  # epoll refuses fd -1: the SocketStream was closed underneath us
            if sock.fileno() == -1:
                raise trio.ClosedResourceError("this socket was already closed") from None
            raise
        self._unyielded += 1
        if self._unyielded >= _YIELD_EVERY:
            self._unyielded = 0
            # Shielded: the bytes are already ours, a cancellation must not drop them.
            await trio.lowlevel.cancel_shielded_checkpoint()
        return data

    async def _send_fast(self, sock: socket.socket, data: bytes | bytearray | memoryview) -> None:
        """``send`` straight on the socket, waiting for writability only when it is full."""
        if self._closed:
            raise trio.ClosedResourceError("this connection was already closed")
        if self._sending:
            raise trio.BusyResourceError("another task is already sending on this connection")
        assert isinstance(self.stream, trio.SocketStream)
        if self.stream.socket.did_shutdown_SHUT_WR:
            raise trio.ClosedResourceError("can't send data after sending EOF")
        if _cancel_requested():
            await trio.lowlevel.checkpoint()
        self._sending = True
        try:
            with memoryview(data) as view:
                total = len(view)
                if not total:
                    if sock.fileno() == -1:
                        raise trio.ClosedResourceError("socket was already closed")
                    await trio.lowlevel.checkpoint()
                    return
                sent = 0
                while True:
                    try:
                        if sent:
                            with view[sent:] as remaining:
                                sent += sock.send(remaining)
                        else:
                            sent = sock.send(view)
                        if sent >= total:
                            break
                    except BlockingIOError:
                        pass
                    # The kernel's send buffer is full: this is where back-pressure holds.
                    await trio.lowlevel.wait_writable(sock)
                    self._unyielded = 0
        except OSError as exc:
            raise _stream_error(exc) from (None if exc.errno in _CLOSED_ERRNOS else exc)
        finally:
            self._sending = False
        self._unyielded += 1
        if self._unyielded >= _YIELD_EVERY:
            self._unyielded = 0
            await trio.lowlevel.cancel_shielded_checkpoint()

    async def wait_send_all_might_not_block(self) -> None:
        """Wait until a ``send_all`` would probably not block (see Trio's ``Stream``).

        Cancellation: nothing happens but the waiting.
        """
        await self.stream.wait_send_all_might_not_block()

    async def send_eof(self) -> None:
        """Close the sending side; the peer reads end of stream, we can still receive.

        Raises:
          TypeError: the wrapped stream cannot half-close (``trio.SSLStream`` cannot).

        Cancellation: as the wrapped stream's ``send_eof`` (Trio's rule: cancelled, the
        stream may be broken and should be closed).
        """
        if not isinstance(self.stream, trio.abc.HalfCloseableStream):
            raise TypeError(f"{type(self.stream).__name__} cannot half-close (send_eof)")
        if self._sending:  # the fast path does not hold SocketStream's conflict detector
            raise trio.BusyResourceError("another task is already sending on this connection")
        await self.stream.send_eof()

    async def aclose(self) -> None:
        """Close the connection. Harmless to call twice.

        Cancellation: the stream is closed even if the call is cancelled (Trio's rule for
        ``aclose``); unread buffered bytes are discarded.
        """
        self._closed = True
        await self.stream.aclose()

    # ------------------------------------------------------------------ buffered reads

    def _ensure_buffer(self) -> ReceiveBuffer:
        buffer = self._buffer
        if buffer is None:
            buffer = self._buffer = ReceiveBuffer()
        return buffer

    async def _fill(self, buffer: ReceiveBuffer) -> bool:
        """Receive one chunk into the buffer; False at end of stream.

        The chunk goes straight into the buffer, so a cancellation can never lose it.
        """
        self._receiving = True
        data: bytes | bytearray
        try:
            if self._sock is not None:
                data = await self._recv_fast(self._sock, self._receive_size)
            else:
                data = await self.stream.receive_some(self._receive_size)
        finally:
            self._receiving = False
        if not data:
            return False
        self.bytes_received += len(data)
        buffer.feed(data)
        return True

    async def receive_exactly(self, size: int) -> bytes:
        """Return exactly ``size`` bytes.

        Raises:
          EndOfStream: the stream ended before the first byte.
          IncompleteFrameError: the stream ended part way; ``.partial`` holds what came.
          trio.ClosedResourceError, trio.BrokenResourceError, trio.BusyResourceError.

        Cancellation: the bytes received so far stay buffered for the next read.
        """
        if size < 0:
            raise ValueError("size must be >= 0")
        self._check_receive()
        buffer = self._ensure_buffer()
        if len(buffer) >= size:
            if _cancel_requested():
                await trio.lowlevel.checkpoint()
            return buffer.extract(size)
        while len(buffer) < size:
            if not await self._fill(buffer):
                self._raise_eof(buffer, expected=size)
        return buffer.extract(size)

    async def receive_until(
        self, delimiter: bytes, *, max_bytes: int = DEFAULT_MAX_LINE_LENGTH
    ) -> bytes:
        """Return the bytes before the next ``delimiter`` (which is consumed, not returned).

        Args:
          delimiter: one or more bytes.
          max_bytes: the longest result accepted; default 64 KiB (see
            ``framing.DEFAULT_MAX_LINE_LENGTH``).

        Raises:
          FrameTooLargeError: more than ``max_bytes`` arrived without the delimiter. The
            bytes stay in the buffer (``receive_some`` can still read them); the usual
            response is to close the connection.
          EndOfStream: the stream ended before the first byte.
          IncompleteFrameError: the stream ended before the delimiter; ``.partial`` holds
            the bytes that came.

        Cancellation: the bytes received so far stay buffered for the next read.
        """
        if not delimiter:
            raise ValueError("delimiter must not be empty")
        self._check_receive()
        buffer = self._ensure_buffer()
        # Check for cancellation *before* taking bytes out: a read cancelled here must leave
        # the delimited bytes in the buffer, not drop them on the floor.
        if _cancel_requested():
            await trio.lowlevel.checkpoint()
        found = buffer.extract_until(delimiter, max_bytes=max_bytes)
        while found is None:
            if not await self._fill(buffer):
                self._raise_eof(buffer, expected=None)
            found = buffer.extract_until(delimiter, max_bytes=max_bytes)
        return found[: -len(delimiter)]

    async def receive_line(
        self,
        *,
        max_length: int = DEFAULT_MAX_LINE_LENGTH,
        delimiter: bytes = b"\n",
        keep_ends: bool = False,
        allow_partial: bool = False,
    ) -> bytes:
        """Return the next line, without its line ending unless ``keep_ends``.

        With the default delimiter ``b"\\n"`` both ``\\n`` and ``\\r\\n`` endings are
        accepted (a ``\\r`` right before the ``\\n`` is stripped too).

        This is ``receive_frame(LineFramer(delimiter, max_line_length=max_length,
        keep_ends=keep_ends))``, with the framer cached: the same limits, the same errors.

        Args:
          max_length: the longest line accepted, not counting its ending (the delimiter and,
            for ``b"\\n"``, a ``\\r`` before it); default 64 KiB, the limit of asyncio's
            ``StreamReader`` (Node has none; Twisted's LineReceiver uses 16 KiB).
          allow_partial: at the end of the stream, return a last line that has no ending
            (as asyncio's ``readline()`` does) instead of raising ``IncompleteFrameError``.
            Either way the bytes are never lost, and never passed off as a whole line: with
            ``keep_ends=True`` a returned partial line is the one without an ending.

        Raises:
          LineTooLongError: the line is longer than ``max_length``, or more than that many
            bytes arrived without a line ending. The bytes stay in the buffer
            (``receive_some`` can still read them); the usual response is to close.
          EndOfStream: the stream ended cleanly between lines.
          IncompleteFrameError: the stream ended inside a line; ``.partial`` holds it (not
            with ``allow_partial``, which returns it).
          ValueError: ``delimiter`` is empty or ``max_length`` is negative.

        Cancellation: the bytes received so far stay buffered for the next read.
        """
        # _line_framer's shortcut, inlined: this is the hot path of line protocols.
        if max_length == DEFAULT_MAX_LINE_LENGTH and delimiter == b"\n" and not keep_ends:
            framer = _DEFAULT_LINE_FRAMER
        else:
            framer = _line_framer(delimiter, max_length, keep_ends)
        if self._closed or self._receiving:
            self._check_receive()
        buffer = self._buffer
        if buffer is None:
            buffer = self._buffer = ReceiveBuffer()
        # Cancellation is checked before any byte is taken out (a cancelled read loses nothing).
        if _cancel_requested():
            await trio.lowlevel.checkpoint()
        line = framer.parse(buffer)
        while line is None:
            if not await self._fill(buffer):
                if not buffer:
                    raise EndOfStream("the peer closed the stream")
                try:
                    framer.check_eof(buffer)  # raises IncompleteFrameError with the partial line
                except IncompleteFrameError as exc:
                    if allow_partial:
                        return exc.partial
                    raise
            line = framer.parse(buffer)
        return line

    def lines(
        self,
        *,
        max_length: int = DEFAULT_MAX_LINE_LENGTH,
        delimiter: bytes = b"\n",
        keep_ends: bool = False,
        allow_partial: bool = False,
        until_closing: bool = False,
    ) -> AsyncIterator[bytes]:
        """``async for line in conn.lines():`` every line until a clean end of stream.

        Takes the options of :meth:`receive_line`. A stream that ends inside a line raises
        ``IncompleteFrameError`` (``.partial`` holds it), or with ``allow_partial`` yields it
        as the last line; an over-long line raises ``LineTooLongError``.

        ``until_closing=True``: also stop after a whole line once the server is closing and
        the peer is quiet (:attr:`is_closing_and_quiet`), waking up if it was waiting for
        the next line when shutdown began.
        """
        return _LineIterator(self, max_length, delimiter, keep_ends, allow_partial, until_closing)

    def chunks(
        self, max_bytes: int | None = None, *, until_closing: bool = False
    ) -> AsyncIterator[bytes]:
        """``async for chunk in conn.chunks():`` what :meth:`receive_some` returns, until EOF.

        ``until_closing=True``: also stop between chunks once the server is closing and the
        peer is quiet (see :meth:`lines`). Without it, the same as ``async for chunk in conn``.
        """
        if max_bytes is not None and max_bytes < 1:
            raise ValueError("max_bytes must be >= 1")
        return _ChunkIterator(self, max_bytes, until_closing)

    async def receive_frame(self, framer: Framer[FrameT]) -> FrameT:
        """Return the next frame that ``framer`` parses out of this connection's bytes.

        Raises:
          EndOfStream: the stream ended cleanly between frames.
          IncompleteFrameError, FrameTooLargeError, MalformedFrameError: from the framer.

        Cancellation: the bytes received so far stay buffered for the next read.
        """
        self._check_receive()
        buffer = self._ensure_buffer()
        # Cancellation is checked before the framer takes bytes out (a cancelled read loses
        # nothing).
        if _cancel_requested():
            await trio.lowlevel.checkpoint()
        frame = framer.parse(buffer)
        if frame is not None:
            return frame
        while True:
            if not await self._fill(buffer):
                if not buffer:
                    raise EndOfStream("the peer closed the stream")
                framer.check_eof(buffer)
                self._raise_eof(buffer, expected=None)  # a framer that did not raise
            frame = framer.parse(buffer)
            if frame is not None:
                return frame

    def frames(
        self, framer: Framer[FrameT], *, until_closing: bool = False
    ) -> AsyncIterator[FrameT]:
        """``async for frame in conn.frames(framer):`` every frame until a clean end of stream.

        ``until_closing=True``: also stop after a whole frame once the server is closing and
        the peer is quiet (see :meth:`lines`).
        """
        return _FrameIterator(self, framer, until_closing)

    async def send_frame(self, framer: FrameEncoder[FrameT], frame: FrameT) -> None:
        """Encode ``frame`` with ``framer`` and send it (see :meth:`send_all`).

        Raises:
          LocalProtocolError: the framer cannot encode it; nothing was sent.

        Cancellation: as :meth:`send_all`: part of the frame may have been sent, so the
        connection's framing is then undefined; close it.
        """
        await self.send_all(framer.encode(frame))

    @staticmethod
    def _raise_eof(buffer: ReceiveBuffer, *, expected: int | None) -> None:
        if not buffer:
            raise EndOfStream("the peer closed the stream")
        partial = buffer.extract_all()
        wanted = f" of {expected}" if expected is not None else ""
        raise IncompleteFrameError(
            f"the stream ended after {len(partial)}{wanted} bytes of an incomplete read",
            partial=partial,
            expected=expected,
        )

    # ------------------------------------------------------------------ server support

    def _idle_for(self, now: float) -> float:
        """Seconds since bytes last arrived, as seen by the idle watchdog's scans."""
        if self.bytes_received != self._idle_mark_bytes:
            self._idle_mark_bytes = self.bytes_received
            self._idle_mark_time = now
            return 0.0
        return now - self._idle_mark_time


class _Woken(Exception):
    """Internal: an ``until_closing`` read was woken by a graceful shutdown (no bytes taken)."""


class _LineIterator(AsyncIterator[bytes]):
    __slots__ = (
        "_allow_partial",
        "_conn",
        "_delimiter",
        "_framer",
        "_keep_ends",
        "_max_length",
        "_until_closing",
    )

    def __init__(
        self,
        conn: Connection,
        max_length: int,
        delimiter: bytes,
        keep_ends: bool,
        allow_partial: bool = False,
        until_closing: bool = False,
    ):
        self._conn = conn
        self._allow_partial = allow_partial
        self._until_closing = until_closing
        self._max_length = max_length
        self._delimiter = delimiter
        self._keep_ends = keep_ends
        self._framer = _line_framer(delimiter, max_length, keep_ends)  # validates eagerly

    async def __anext__(self) -> bytes:
        # Fast path for a line already buffered: receive_line's own steps (state check,
        # cancellation check *before* taking bytes out, parse) without its extra coroutine.
        conn = self._conn
        buffer = conn._buffer
        if (
            buffer is not None
            and buffer._pos < len(buffer._data)
            and not conn._closed
            and not conn._receiving
        ):
            if _cancel_requested():
                await trio.lowlevel.checkpoint()
            line = self._framer.parse(buffer)
            if line is not None:
                return line
        if self._until_closing and not await conn._wait_at_boundary():
            raise StopAsyncIteration
        try:
            return await self._conn.receive_line(
                max_length=self._max_length,
                delimiter=self._delimiter,
                keep_ends=self._keep_ends,
                allow_partial=self._allow_partial,
            )
        except EndOfStream:
            raise StopAsyncIteration from None


class _FrameIterator(AsyncIterator[FrameT]):
    __slots__ = ("_conn", "_framer", "_until_closing")

    def __init__(self, conn: Connection, framer: Framer[FrameT], until_closing: bool = False):
        self._conn = conn
        self._framer = framer
        self._until_closing = until_closing

    async def __anext__(self) -> FrameT:
        if self._until_closing and not await self._conn._wait_at_boundary():
            raise StopAsyncIteration
        try:
            return await self._conn.receive_frame(self._framer)
        except EndOfStream:
            raise StopAsyncIteration from None


class _ChunkIterator(AsyncIterator[bytes]):
    __slots__ = ("_conn", "_max_bytes", "_until_closing")

    def __init__(self, conn: Connection, max_bytes: int | None, until_closing: bool):
        self._conn = conn
        self._max_bytes = max_bytes
        self._until_closing = until_closing

    async def __anext__(self) -> bytes:
        if self._until_closing and not await self._conn._wait_at_boundary():
            raise StopAsyncIteration
        chunk = await self._conn.receive_some(self._max_bytes)
        if not chunk:
            raise StopAsyncIteration
        return chunk
