"""`Connection`: one byte stream plus a receive buffer.

The I/O layer is one thin pump (websockets' ``trio/connection.py``): it receives chunks,
keeps them in a ``ReceiveBuffer`` and hands out exact reads, delimited reads, lines and
frames. No protocol logic lives here: framers are sans-IO and parse straight out of this
connection's buffer through its public methods, so bytes never get trapped inside a framer.

A ``Connection`` only ever calls its stream's public methods. Over a real socket that stream
is the fast socket stream of ``_socket_stream.py`` (a plain ``trio.SocketStream`` passed in
is re-wrapped in it); over TLS, memory or anything else it is that stream. Either way it is
the same code: the memory-stream tests and the cancellation sweep run what production runs.
The shortcuts: ``send_all`` hands back the fast socket stream's own coroutine (a plain
method returning it: one coroutine frame per call, not two), and while no buffered read has
been used ``receive_some`` and ``async for chunk in conn`` await the fast stream's receive
directly; the fast stream counts the bytes. Same checkpoints, same errors. (A receive
decides its path when it runs, not when it is called: a buffered read in between leaves
bytes in the buffer that must come first.)

Checkpoint rules (Trio's, see also the README):

* Every public async method is a full Trio checkpoint: a cancel point (a cancelled scope
  raises ``trio.Cancelled`` before anything is taken out of the buffer or the stream) and a
  schedule point, including a buffered read served entirely from bytes already received.
  All buffered reads go through one loop (``_read``): check for cancellation, try to parse
  the buffer; on success yield (cancel-shielded: the result is already out of the buffer)
  and return; otherwise receive a chunk, which is itself a checkpoint, and parse again.
* Back-pressure is the kernel's: ``send_all`` returns only once the stream took every byte,
  and a read asks for at most ``receive_size`` bytes, so neither direction queues more than
  one chunk in user space.
* Partial data never lives in a local variable across an ``await``: a read cancelled half
  way leaves every byte it had received in the buffer, readable by the next read.
"""

from __future__ import annotations

import functools
import itertools
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine
from typing import Any, Final, NoReturn, TypeVar

import trio

from ._address import Address, format_address, stream_address
from ._exceptions import EndOfStream, IncompleteFrameError
from ._socket_stream import (
    DEFAULT_RECEIVE_SIZE,
    FastSocketStream,
    fast_stream,
    unread_on_socket,
)
from ._socket_stream import cancel_shielded_checkpoint as _cancel_shielded_checkpoint
from ._socket_stream import checkpoint_if_cancelled as _checkpoint_if_cancelled
from .framing import DEFAULT_MAX_LINE_LENGTH, FrameEncoder, Framer, LineFramer, ReceiveBuffer

__all__ = ["Address", "Connection", "format_address"]

T = TypeVar("T")
FrameT = TypeVar("FrameT")

_ids = itertools.count(1)


@functools.lru_cache(maxsize=32)
def _line_framer(delimiter: bytes, max_length: int, keep_ends: bool) -> LineFramer:
    """The framer behind ``receive_line``; parse() keeps no state, so one can be shared."""
    return LineFramer(delimiter, max_line_length=max_length, keep_ends=keep_ends)


_DEFAULT_LINE_FRAMER: Final = _line_framer(b"\n", DEFAULT_MAX_LINE_LENGTH, False)

# What Connection._wait_at_boundary tells an until_closing iterator to do.
_STOP: Final = 0
_READ: Final = 1
_READ_FILLED: Final = 2


class Connection(trio.abc.HalfCloseableStream):
    """One conversation with a peer: any ``trio.abc.Stream`` plus a receive buffer.

    A ``Connection`` wraps a ``trio.SocketStream``, a ``trio.SSLStream``, a memory stream or
    any other Trio stream, so one handler runs over real sockets and in tests. It *is* a Trio
    stream (``receive_some``, ``send_all``, ``send_eof``, ``aclose``, ``async for chunk in
    conn``) and passes Trio's own ``check_half_closeable_stream`` over TCP and Unix sockets;
    it adds buffered reads: :meth:`receive_exactly`, :meth:`receive_until`,
    :meth:`receive_line`, :meth:`lines` and :meth:`frames`. Every async method is a Trio
    checkpoint (a cancel point and a schedule point).

    Stream states raise Trio's own exceptions: ``trio.ClosedResourceError`` after
    :meth:`aclose`, ``trio.BrokenResourceError`` when the peer or network broke the stream,
    ``trio.BusyResourceError`` when two tasks receive (or two tasks send) at once.

    Attributes:
      stream: the stream it calls. A ``trio.SocketStream`` passed in is replaced by
        trio_tcp's fast socket stream over the same socket (same interface and errors,
        ``.socket`` included); any other stream is used as it is.
      id: a small integer, unique in this process, for logs (``#3``).
      opened_at: ``trio.current_time()`` when the connection was made.
    """

    __slots__ = (
        "__weakref__",
        "_buffer",
        "_cancel_scope",
        "_closed",
        "_closing",
        "_fast",
        "_fast_receive",
        "_idle_mark_bytes",
        "_idle_mark_time",
        "_local",
        "_peer",
        "_receive_size",
        "_received",
        "_receiving",
        "_sent",
        "_wake_scope",
        "id",
        "opened_at",
        "stream",
    )

    def __init__(
        self,
        stream: trio.abc.Stream,
        *,
        peer: Address = None,
        receive_size: int = DEFAULT_RECEIVE_SIZE,
        closing: trio.Event | None = None,
    ) -> None:
        """Wrap ``stream``.

        Args:
          stream: any Trio stream; the connection owns it from now on.
          peer: the address to report instead of asking the socket (the server passes the
            original client's address from a PROXY protocol header here).
          receive_size: how many bytes one network read asks for (and so how far the buffer
            can run ahead of the reader); default 64 KiB, like Trio's SocketStream.
          closing: set when the owner begins a graceful shutdown (:attr:`is_closing`); the
            server passes one event shared by its connections. ``None``: never closing.
        """
        if receive_size < 1:
            raise ValueError("receive_size must be >= 1")
        self.stream = stream = fast_stream(stream)
        # The fast socket stream counts its own bytes; reads and sends can go straight to
        # it (module docstring): receives only until a buffered read made a buffer.
        self._fast = stream if type(stream) is FastSocketStream else None
        self._fast_receive = self._fast if receive_size == DEFAULT_RECEIVE_SIZE else None
        self.id = next(_ids)
        self.opened_at = trio.current_time()
        # Counted here for any other stream; over a fast stream, what it had counted before
        # it became this connection's (a PROXY header read by the server's set-up) is
        # taken off.
        fast = self._fast
        self._received = 0 if fast is None else -fast.bytes_received
        self._sent = 0 if fast is None else -fast.bytes_sent
        self._buffer: ReceiveBuffer | None = None  # made on first buffered read
        self._peer = peer
        self._local: Address = None
        self._receive_size = receive_size
        self._receiving = False
        self._closed = False
        self._closing = closing
        self._wake_scope: trio.CancelScope | None = None  # an until_closing read waits
        self._cancel_scope: trio.CancelScope | None = None
        self._idle_mark_bytes = 0
        self._idle_mark_time = self.opened_at

    # ------------------------------------------------------------------ identity

    @property
    def bytes_received(self) -> int:
        """Bytes that arrived from the network for this connection (buffered or not); a
        PROXY protocol header is not counted."""
        fast = self._fast
        return self._received if fast is None else self._received + fast.bytes_received

    @property
    def bytes_sent(self) -> int:
        """Bytes handed to the network. Over a socket: every byte the kernel took, also from
        a ``send_all`` cancelled part way (it may have sent some); over any other stream
        (TLS, memory): the bytes of every ``send_all`` that returned."""
        fast = self._fast
        return self._sent if fast is None else self._sent + fast.bytes_sent

    @property
    def peer(self) -> Address:
        """The remote address: ``(host, port)``, a Unix path, or ``None`` (memory)."""
        if self._peer is None:
            self._peer = stream_address(self.stream, peer=True)
        return self._peer

    @property
    def local(self) -> Address:
        """The local address: ``(host, port)``, a Unix path, or ``None`` (memory)."""
        if self._local is None:
            self._local = stream_address(self.stream, peer=False)
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

    def _unread_on_socket(self, *, eof: bool = True) -> bool:
        """Bytes (or, with ``eof``, end of stream or an error) wait in the socket's receive
        queue (see ``unread_on_socket``)."""
        return unread_on_socket(self.stream, eof=eof)

    async def _wait_at_boundary(self) -> int:
        """For the ``until_closing`` iterators, before a read: what the read should do.

        ``_STOP``: stop iterating. ``_READ``: read as usual (bytes are buffered, or no
        server owns this connection, or it is closing but the peer is not quiet).
        ``_READ_FILLED``: a chunk was just received into the buffer, and that was this
        step's checkpoint, so the read owes no other.

        At a boundary (nothing buffered) it waits for the peer's next bytes, its end of
        stream (stop), or a graceful shutdown while the peer is quiet (stop). A shutdown
        wakes it by cancelling :attr:`_wake_scope`, which is entered only for a wait: over
        a socket, the bytes that come within a few scheduler rounds are taken without one.
        Nothing received is ever lost: the chunk goes straight into the buffer, and a
        cancelled receive took nothing.
        """
        closing = self._closing
        buffer = self._ensure_buffer()
        if closing is None or buffer:
            return _READ
        if closing.is_set():
            return self._closing_step()
        self._check_receive()
        fast = self._fast
        if fast is not None:  # no cancel scope unless the read has to wait
            self._receiving = True
            try:
                data = await fast.receive_some_if_ready(self._receive_size)
            finally:
                self._receiving = False
            if data is not None:
                if not data:
                    return _STOP
                buffer.feed(data)
                return _READ_FILLED
            if closing.is_set():  # it began while we let the others run
                return self._closing_step()
        with trio.CancelScope() as scope:
            self._wake_scope = scope
            try:
                received = await self._fill(buffer)
            finally:
                self._wake_scope = None
        if scope.cancelled_caught:
            return self._closing_step()
        return _READ_FILLED if received else _STOP

    def _closing_step(self) -> int:
        """Closing: stop at this boundary if the peer is quiet, else read what it sent."""
        return _STOP if self._peer_quiet() else _READ

    def _ensure_buffer(self) -> ReceiveBuffer:
        buffer = self._buffer
        if buffer is None:
            buffer = self._buffer = ReceiveBuffer()
            self._fast_receive = None  # from now on every read looks at the buffer first
        return buffer

    async def _fill(self, buffer: ReceiveBuffer) -> bool:
        """Receive one chunk straight into the buffer (a checkpoint); False at end of stream."""
        self._receiving = True
        try:
            data = await self.stream.receive_some(self._receive_size)
        finally:
            self._receiving = False
        if not data:
            return False
        if self._fast is None:
            self._received += len(data)
        buffer.feed(data)
        return True

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

    async def _receive_some(self, max_bytes: int | None = None) -> bytes:
        # receive_some over any other stream, or once a buffered read made a buffer.
        buffer = self._buffer
        if buffer:
            return await self._read_buffered(buffer, max_bytes)
        self._check_receive()
        self._receiving = True
        try:
            data = await self.stream.receive_some(max_bytes or self._receive_size)
        finally:
            self._receiving = False
        if self._fast is None:
            self._received += len(data)
        if type(data) is not bytes:  # the Stream ABC allows a bytearray
            data = bytes(data)
        return data

    async def receive_some(self, max_bytes: int | None = None) -> bytes:
        """Return the next bytes that arrived (up to ``max_bytes``), ``b""`` at end of stream.

        Bytes already in the buffer (left over from a buffered read) come first.

        Cancellation: a cancelled call received nothing; no byte is lost.

        Raises:
          trio.ClosedResourceError: this connection was closed.
          trio.BrokenResourceError: the peer reset the connection.
          trio.BusyResourceError: another task is receiving.
          ValueError: ``max_bytes`` is less than 1.
        """
        # Decided when the call runs, not when it was made: a buffered read in between
        # leaves bytes in the buffer that must come first.
        fast = self._fast_receive
        if fast is not None:
            return await fast.receive_some(max_bytes)
        if max_bytes is not None and max_bytes < 1:
            raise ValueError("max_bytes must be >= 1")
        return await self._receive_some(max_bytes)

    async def __anext__(self) -> bytes:
        """``async for chunk in conn``: :meth:`receive_some` until end of stream."""
        fast = self._fast_receive
        if fast is not None:
            return await fast.__anext__()
        return await self._next_chunk()

    async def _next_chunk(self) -> bytes:
        data = await self._receive_some(None)
        if not data:
            raise StopAsyncIteration
        return data

    async def _send_all(self, data: bytes | bytearray | memoryview) -> None:
        # send_all over any other stream.
        await self.stream.send_all(data)
        self._sent += memoryview(data).nbytes

    def _read_buffered(
        self, buffer: ReceiveBuffer, max_bytes: int | None, *, checkpointed: bool = False
    ) -> Coroutine[Any, Any, bytes]:
        """receive_some served from a non-empty buffer: up to ``max_bytes`` of it."""
        take = functools.partial(ReceiveBuffer.extract_at_most, count=max_bytes or len(buffer))
        return self._read(take, None, checkpointed)

    def send_all(self, data: bytes | bytearray | memoryview) -> Coroutine[Any, Any, None]:
        """Send every byte of ``data``; returns once the network has taken them.

        Use it as any stream's: ``await conn.send_all(data)``.

        Cancellation: a cancelled call may have sent part of ``data`` (Trio's rule for
        ``send_all``); the stream is then in an unknown state and should be closed.

        Raises:
          trio.ClosedResourceError: this connection (or its sending side) was closed.
          trio.BrokenResourceError: the peer reset the connection.
          trio.BusyResourceError: another task is sending.
        """
        fast = self._fast
        if fast is not None:
            return fast.send_all(data)
        return self._send_all(data)

    send_all.__wrapped__ = _send_all  # type: ignore[attr-defined]

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
        await self.stream.send_eof()

    async def aclose(self) -> None:
        """Close the connection. Harmless to call twice.

        Cancellation: the stream is closed even if the call is cancelled (Trio's rule for
        ``aclose``); unread buffered bytes are discarded.
        """
        self._closed = True
        await self.stream.aclose()

    # ------------------------------------------------------------------ buffered reads

    async def _read(
        self,
        parse: Callable[[ReceiveBuffer], T | None],
        at_eof: Callable[[ReceiveBuffer], T] | None,
        checkpointed: bool = False,
    ) -> T:
        """The one read loop behind every buffered read: parse, else receive and parse again.

        ``parse`` takes its result out of the buffer or returns ``None`` (leaving the buffer
        as it was); ``at_eof`` raises the right error when the stream ends first, or returns
        a last result (a partial line, with ``allow_partial``); it is ``None`` only where
        bytes are buffered, so the first parse succeeds. Every received chunk goes straight
        into the buffer, so a cancellation can never lose it. ``checkpointed``: the caller
        has just received into the buffer (a checkpoint), which stands for this read's own.
        """
        if self._closed or self._receiving:
            self._check_receive()
        buffer = self._ensure_buffer()
        self._receiving = True
        try:
            # Cancel point first: a cancelled read must leave its bytes in the buffer.
            if not checkpointed:
                await _checkpoint_if_cancelled()
            result = parse(buffer)
            if result is not None:
                # Served from the buffer: still a schedule point (Trio's rule), shielded
                # because the result is already out of the buffer.
                if not checkpointed:
                    await _cancel_shielded_checkpoint()
                return result
            stream = self.stream
            size = self._receive_size
            while True:
                data = await stream.receive_some(size)  # a checkpoint of its own
                if not data:
                    assert at_eof is not None
                    return at_eof(buffer)  # raises, or makes a last result of what is left
                if self._fast is None:
                    self._received += len(data)
                buffer.feed(data)
                result = parse(buffer)
                if result is not None:
                    return result
        finally:
            self._receiving = False

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
        return await self._read(
            functools.partial(ReceiveBuffer.maybe_extract, count=size),
            functools.partial(_raise_eof, expected=size),
        )

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
        found = await self._read(
            functools.partial(
                ReceiveBuffer.extract_until, delimiter=delimiter, max_bytes=max_bytes
            ),
            functools.partial(_raise_eof, expected=None),
        )
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
        if max_length == DEFAULT_MAX_LINE_LENGTH and delimiter == b"\n" and not keep_ends:
            framer = _DEFAULT_LINE_FRAMER
        else:
            framer = _line_framer(delimiter, max_length, keep_ends)
        at_eof = _partial_line_eof if allow_partial else functools.partial(_frame_eof, framer)
        return await self._read(framer.parse, at_eof)

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
        framer = _line_framer(delimiter, max_length, keep_ends)  # bad options fail here
        at_eof = _partial_line_eof if allow_partial else functools.partial(_frame_eof, framer)
        # receive_line's read, made once: each step is one _read call.
        return _ReadIterator(
            self, functools.partial(self._read, framer.parse, at_eof), until_closing
        )

    def chunks(
        self, max_bytes: int | None = None, *, until_closing: bool = False
    ) -> AsyncIterator[bytes]:
        """``async for chunk in conn.chunks():`` what :meth:`receive_some` returns, until EOF.

        ``until_closing=True``: also stop between chunks once the server is closing and the
        peer is quiet (see :meth:`lines`). Without it, the same as ``async for chunk in conn``.
        """
        if max_bytes is not None and max_bytes < 1:
            raise ValueError("max_bytes must be >= 1")
        return _ReadIterator(self, functools.partial(self._receive_chunk, max_bytes), until_closing)

    async def _receive_chunk(self, max_bytes: int | None, checkpointed: bool = False) -> bytes:
        buffer = self._buffer
        if checkpointed and buffer:  # the chunk _wait_at_boundary just received
            return await self._read_buffered(buffer, max_bytes, checkpointed=True)
        chunk = await self.receive_some(max_bytes)
        if not chunk:
            raise EndOfStream("the peer closed the stream")
        return chunk

    async def receive_frame(self, framer: Framer[FrameT]) -> FrameT:
        """Return the next frame that ``framer`` parses out of this connection's bytes.

        Raises:
          EndOfStream: the stream ended cleanly between frames.
          IncompleteFrameError, FrameTooLargeError, MalformedFrameError: from the framer.

        Cancellation: the bytes received so far stay buffered for the next read.
        """
        return await self._read(framer.parse, functools.partial(_frame_eof, framer))

    def frames(
        self, framer: Framer[FrameT], *, until_closing: bool = False
    ) -> AsyncIterator[FrameT]:
        """``async for frame in conn.frames(framer):`` every frame until a clean end of stream.

        ``until_closing=True``: also stop after a whole frame once the server is closing and
        the peer is quiet (see :meth:`lines`).
        """
        return _ReadIterator(
            self,
            functools.partial(self._read, framer.parse, functools.partial(_frame_eof, framer)),
            until_closing,
        )

    async def send_frame(self, framer: FrameEncoder[FrameT], frame: FrameT) -> None:
        """Encode ``frame`` with ``framer`` and send it (see :meth:`send_all`).

        Raises:
          LocalProtocolError: the framer cannot encode it; nothing was sent.

        Cancellation: as :meth:`send_all`: part of the frame may have been sent, so the
        connection's framing is then undefined; close it.
        """
        await self.send_all(framer.encode(frame))

    # ------------------------------------------------------------------ server support

    def _close_now(self) -> bool:
        """Close at once, without a checkpoint, if the stream allows it (a socket's does);
        False: nothing done, use :meth:`aclose`. For the server, once the handler ended."""
        fast = self._fast
        if fast is None:
            return False
        self._closed = True
        fast.close()
        return True

    def _idle_for(self, now: float) -> float:
        """Seconds since bytes last arrived, as seen by the idle watchdog's scans."""
        if self.bytes_received != self._idle_mark_bytes:
            self._idle_mark_bytes = self.bytes_received
            self._idle_mark_time = now
            return 0.0
        return now - self._idle_mark_time


def _raise_eof(buffer: ReceiveBuffer, *, expected: int | None) -> NoReturn:
    """The stream ended before a read completed: a clean end, or an incomplete read."""
    if not buffer:
        raise EndOfStream("the peer closed the stream")
    partial = buffer.extract_all()
    wanted = f" of {expected}" if expected is not None else ""
    raise IncompleteFrameError(
        f"the stream ended after {len(partial)}{wanted} bytes of an incomplete read",
        partial=partial,
        expected=expected,
    )


def _frame_eof(framer: Framer[Any], buffer: ReceiveBuffer) -> NoReturn:
    """End of stream between frames, or inside one (the framer says how)."""
    if not buffer:
        raise EndOfStream("the peer closed the stream")
    framer.check_eof(buffer)
    _raise_eof(buffer, expected=None)  # a framer that did not raise


def _partial_line_eof(buffer: ReceiveBuffer) -> bytes:
    """End of stream inside a line, read with ``allow_partial``: the line as it came."""
    if not buffer:
        raise EndOfStream("the peer closed the stream")
    return buffer.extract_all()


class _ReadIterator(AsyncIterator[T]):
    """``async for`` over one of the reads: each step is that read, until a clean end.

    ``read(checkpointed)`` is the read (``checkpointed``: see ``Connection._read``). With
    ``until_closing``, each step first waits at the message boundary
    (``Connection._wait_at_boundary``) and stops there once the server closes.
    """

    __slots__ = ("_conn", "_read", "_until_closing")

    def __init__(self, conn: Connection, read: Callable[[bool], Awaitable[T]], until_closing: bool):
        self._conn = conn
        self._read = read
        self._until_closing = until_closing

    async def __anext__(self) -> T:
        checkpointed = False
        if self._until_closing:
            step = await self._conn._wait_at_boundary()
            if step == _STOP:
                raise StopAsyncIteration
            checkpointed = step == _READ_FILLED
        try:
            return await self._read(checkpointed)
        except EndOfStream:
            raise StopAsyncIteration from None
