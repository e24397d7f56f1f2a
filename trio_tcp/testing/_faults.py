"""Fault injection: stream wrappers that misbehave the way networks do.

Each fault is a ``trio.abc.HalfCloseableStream`` that wraps another stream (its
``transport_stream``, the name ``trio.SSLStream`` uses), so faults nest and work on either
side of a conversation: wrap the client's stream yourself, or hand a ``wrap=`` function to
:class:`~trio_tcp.testing.MemoryListener` / :func:`~trio_tcp.testing.serve_memory` to wrap
every stream the server accepts. The lowercase factories (:func:`rechunk`, :func:`delay`,
:func:`reset_after`, :func:`eof_after`, :func:`stall_after`) return such wrap functions and
:func:`compose` chains them.

Every wait is a ``trio.sleep``, so delays and stalls run in no real time under
``trio.testing.MockClock(autojump_threshold=0)`` (pytest-trio's ``autojump_clock``).
"""

from __future__ import annotations

import random
from collections.abc import Callable
from typing import Literal, TypeAlias

import trio

__all__ = [
    "DelayStream",
    "EarlyEOFStream",
    "FaultyStream",
    "RechunkStream",
    "ResetStream",
    "StallStream",
    "Wrap",
    "compose",
    "delay",
    "eof_after",
    "rechunk",
    "reset_after",
    "stall_after",
]

#: A function that wraps a stream in a fault (or in several): what ``wrap=`` options take.
Wrap: TypeAlias = Callable[[trio.abc.Stream], trio.abc.Stream]

Direction: TypeAlias = Literal["receive", "send"]


class FaultyStream(trio.abc.HalfCloseableStream):
    """A stream that forwards every call to ``transport_stream``: the base of every fault.

    Subclass it and override what should misbehave. ``send_eof`` raises ``TypeError`` when
    the wrapped stream cannot half-close. Cancellation behaves as in the wrapped stream.
    """

    def __init__(self, transport_stream: trio.abc.Stream) -> None:
        self.transport_stream = transport_stream

    async def send_all(self, data: bytes | bytearray | memoryview) -> None:
        """Forward to the wrapped stream.

        Cancellation: as the wrapped stream's.
        """
        await self.transport_stream.send_all(data)

    async def wait_send_all_might_not_block(self) -> None:
        """Forward to the wrapped stream.

        Cancellation: as the wrapped stream's.
        """
        await self.transport_stream.wait_send_all_might_not_block()

    async def receive_some(self, max_bytes: int | None = None) -> bytes | bytearray:
        """Forward to the wrapped stream.

        Cancellation: as the wrapped stream's.
        """
        return await self.transport_stream.receive_some(max_bytes)

    async def send_eof(self) -> None:
        """Forward to the wrapped stream (``TypeError`` if it cannot half-close).

        Cancellation: as the wrapped stream's.
        """
        inner = self.transport_stream
        if not isinstance(inner, trio.abc.HalfCloseableStream):
            raise TypeError(f"{type(inner).__name__} cannot half-close (send_eof)")
        await inner.send_eof()

    async def aclose(self) -> None:
        """Close the wrapped stream (Trio's rule: closed even if cancelled)."""
        await self.transport_stream.aclose()


class RechunkStream(FaultyStream):
    """Cut the bytes into small pieces in both directions, keeping every byte and its order.

    ``receive_some`` returns at most the next piece size; ``send_all`` hands the wrapped
    stream one piece per call. Piece sizes are ``size`` bytes, or, with ``seed``, drawn
    from ``random.Random(seed)`` between 1 and ``max_size`` (the same seed, the same cuts).
    """

    def __init__(
        self,
        transport_stream: trio.abc.Stream,
        size: int = 1,
        *,
        seed: int | None = None,
        max_size: int = 7,
    ) -> None:
        if size < 1 or max_size < 1:
            raise ValueError("size and max_size must be >= 1")
        super().__init__(transport_stream)
        self.size = size
        self.max_size = max_size
        self._random = random.Random(seed) if seed is not None else None

    def _next_size(self) -> int:
        if self._random is None:
            return self.size
        return self._random.randint(1, self.max_size)

    async def receive_some(self, max_bytes: int | None = None) -> bytes | bytearray:
        """Receive at most one piece (and at most ``max_bytes``).

        Cancellation: as the wrapped stream's: nothing was received.
        """
        size = self._next_size()
        if max_bytes is not None:
            size = min(size, max_bytes)
        return await self.transport_stream.receive_some(size)

    async def send_all(self, data: bytes | bytearray | memoryview) -> None:
        """Send ``data`` piece by piece. Cancelled part way: some pieces were sent."""
        view = memoryview(data)
        if not view:
            await self.transport_stream.send_all(b"")
            return
        offset = 0
        while offset < len(view):
            size = self._next_size()
            await self.transport_stream.send_all(view[offset : offset + size])
            offset += size


class DelayStream(FaultyStream):
    """Sleep ``seconds`` (``trio.sleep``) before every receive and/or every send."""

    def __init__(
        self,
        transport_stream: trio.abc.Stream,
        seconds: float,
        *,
        receive: bool = True,
        send: bool = True,
    ) -> None:
        if not seconds >= 0:
            raise ValueError("seconds must be >= 0")
        super().__init__(transport_stream)
        self.seconds = seconds
        self.receive = receive
        self.send = send

    async def receive_some(self, max_bytes: int | None = None) -> bytes | bytearray:
        """Sleep, then receive. Cancelled while sleeping: nothing was received."""
        if self.receive:
            await trio.sleep(self.seconds)
        return await self.transport_stream.receive_some(max_bytes)

    async def send_all(self, data: bytes | bytearray | memoryview) -> None:
        """Sleep, then send. Cancelled while sleeping: nothing was sent."""
        if self.send:
            await trio.sleep(self.seconds)
        await self.transport_stream.send_all(data)


class _ByteBudget(FaultyStream):
    """Let ``after`` bytes through in one direction, then misbehave (see subclasses)."""

    def __init__(
        self, transport_stream: trio.abc.Stream, after: int, *, direction: Direction = "receive"
    ) -> None:
        if after < 0:
            raise ValueError("after must be >= 0")
        if direction not in ("receive", "send"):
            raise ValueError("direction must be 'receive' or 'send'")
        super().__init__(transport_stream)
        self.after = after
        self.direction = direction
        #: Bytes let through so far in ``direction``.
        self.passed = 0

    @property
    def remaining(self) -> int:
        """Bytes still let through before the fault."""
        return max(0, self.after - self.passed)

    async def _exhausted(self) -> bytes:
        raise NotImplementedError

    async def receive_some(self, max_bytes: int | None = None) -> bytes | bytearray:
        """Receive, but never past the budget (then the fault happens)."""
        if self.direction != "receive":
            return await self.transport_stream.receive_some(max_bytes)
        if self.remaining == 0:
            return await self._exhausted()
        limit = self.remaining if max_bytes is None else min(max_bytes, self.remaining)
        data = await self.transport_stream.receive_some(limit)
        self.passed += len(data)
        return data

    async def send_all(self, data: bytes | bytearray | memoryview) -> None:
        """Send up to the budget; if ``data`` goes past it, send that much and then fail."""
        if self.direction != "send":
            await self.transport_stream.send_all(data)
            return
        view = memoryview(data)
        allowed = view[: self.remaining]
        if len(allowed):
            await self.transport_stream.send_all(allowed)
            self.passed += len(allowed)
        if len(allowed) < len(view):
            await self._exhausted()


class ResetStream(_ByteBudget):
    """A connection reset after ``after`` bytes in ``direction``.

    Exactly ``after`` bytes get through; then that call and every later receive or send
    raises ``trio.BrokenResourceError``, and the wrapped stream is closed so the peer
    notices too (it reads end of stream or gets ``BrokenResourceError`` on send).
    """

    _reset = False

    async def _exhausted(self) -> bytes:
        if not self._reset:
            self._reset = True
            await trio.aclose_forcefully(self.transport_stream)
        raise trio.BrokenResourceError(f"connection reset after {self.after} bytes (injected)")

    async def receive_some(self, max_bytes: int | None = None) -> bytes | bytearray:
        """Receive up to the budget; then ``trio.BrokenResourceError``.

        Cancellation: as the wrapped stream's.
        """
        if self._reset:
            await self._exhausted()
        return await super().receive_some(max_bytes)

    async def send_all(self, data: bytes | bytearray | memoryview) -> None:
        """Send up to the budget; then ``trio.BrokenResourceError``.

        Cancellation: as the wrapped stream's.
        """
        if self._reset:
            await self._exhausted()
        await super().send_all(data)


class EarlyEOFStream(_ByteBudget):
    """The stream ends early: after ``after`` received bytes, ``receive_some`` returns ``b""``.

    Sending is unaffected (as after the peer's ``send_eof``). The bytes past the cut stay
    unread in the wrapped stream.
    """

    def __init__(self, transport_stream: trio.abc.Stream, after: int) -> None:
        super().__init__(transport_stream, after, direction="receive")

    async def _exhausted(self) -> bytes:
        await trio.lowlevel.checkpoint()
        return b""


class StallStream(_ByteBudget):
    """The network goes silent: after ``after`` bytes in ``direction`` the call never returns.

    It waits with ``trio.sleep_forever``, so only a cancellation (an idle timeout, a
    deadline, a shutdown) ends it: use it to test exactly those.
    """

    async def _exhausted(self) -> bytes:
        await trio.sleep_forever()
        raise AssertionError("unreachable")  # pragma: no cover


def rechunk(size: int = 1, *, seed: int | None = None, max_size: int = 7) -> Wrap:
    """A wrap function for :class:`RechunkStream` (``size`` bytes, or random from ``seed``)."""
    return lambda stream: RechunkStream(stream, size, seed=seed, max_size=max_size)


def delay(seconds: float, *, receive: bool = True, send: bool = True) -> Wrap:
    """A wrap function for :class:`DelayStream`."""
    return lambda stream: DelayStream(stream, seconds, receive=receive, send=send)


def reset_after(after: int, *, direction: Direction = "receive") -> Wrap:
    """A wrap function for :class:`ResetStream`."""
    return lambda stream: ResetStream(stream, after, direction=direction)


def eof_after(after: int) -> Wrap:
    """A wrap function for :class:`EarlyEOFStream`."""
    return lambda stream: EarlyEOFStream(stream, after)


def stall_after(after: int = 0, *, direction: Direction = "receive") -> Wrap:
    """A wrap function for :class:`StallStream`."""
    return lambda stream: StallStream(stream, after, direction=direction)


def compose(*wraps: Wrap) -> Wrap:
    """Chain wrap functions: the first is applied first, so it sits nearest the network.

    ``compose(rechunk(1), reset_after(5))`` gives a stream that resets after 5 bytes which
    arrived one at a time.
    """

    def wrap(stream: trio.abc.Stream) -> trio.abc.Stream:
        for one in wraps:
            stream = one(stream)
        return stream

    return wrap
