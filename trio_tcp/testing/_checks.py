"""Conformance checks for handlers, in the spirit of ``trio.testing.check_two_way_stream``:
an echo handler, a line handler, a length-prefixed frame handler."""

from __future__ import annotations

import functools
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import trio
import trio.testing

from .._connection import Connection
from .._exceptions import CheckFailedError, EndOfStream, IncompleteFrameError
from .._server import Handler, Server
from ..framing import DEFAULT_MAX_FRAME_SIZE, DEFAULT_MAX_LINE_LENGTH, LengthPrefixFramer
from ._faults import Wrap, rechunk
from ._memory import MemoryListener, serve_memory

__all__ = ["Respond", "check_echo_handler", "check_length_prefixed_handler", "check_line_handler"]


async def _client(server: Server, wrap: Wrap | None = None) -> Connection:
    listener = server.listeners[0]
    assert isinstance(listener, MemoryListener)
    stream = await listener.connect()
    return Connection(wrap(stream) if wrap is not None else stream)


async def _echo_exchange(client: Connection, payload: bytes) -> bytes:
    """Send ``payload`` while reading the echo (so a large one cannot deadlock), then EOF."""
    received = bytearray()

    async def sender() -> None:
        await client.send_all(payload)
        await client.send_eof()

    async with trio.open_nursery() as nursery:
        nursery.start_soon(sender)
        while chunk := await client.receive_some():
            received += chunk
    return bytes(received)


def _first_failure(exc: BaseException) -> CheckFailedError | None:
    if isinstance(exc, CheckFailedError):
        return exc
    if isinstance(exc, BaseExceptionGroup):
        for sub in exc.exceptions:
            found = _first_failure(sub)
            if found is not None:
                return found
    return None


async def _run_case(run: Callable[[], Awaitable[None]], timeout: float, timed_out: str) -> None:
    """Run one case of a check; a ``CheckFailedError`` raised inside a nursery comes out
    alone (not wrapped in its group), and a case that takes longer than ``timeout`` fails
    with ``timed_out``."""
    with trio.move_on_after(timeout) as guard:
        try:
            await run()
        except BaseExceptionGroup as group:
            found = _first_failure(group)
            if found is None:
                raise
            raise found from None
    if guard.cancelled_caught:
        raise CheckFailedError(timed_out)


async def check_echo_handler(handler: Handler, *, timeout: float = 10.0) -> None:
    """Check that ``handler`` echoes every byte back, in order, under every chunking.

    Runs the handler on an in-memory server (:func:`serve_memory`, the real machinery)
    and checks, each case with a fresh server: a small payload; 256 KiB of random bytes
    sent while the echo is read; each message echoed before the next is sent, with the
    stream still open (a handler that waits for end of stream before echoing hangs here,
    and the case fails after ``timeout``); one byte at a time in both directions;
    random chunks from a fixed seed over an unbuffered (lockstep) stream; end of stream
    (after the client's ``send_eof`` the handler must return, so the client reads end of
    stream); ten concurrent clients, each getting only its own bytes back; a client that
    vanishes mid-conversation does not crash the server (``stats.failed`` stays 0).

    Raises:
      CheckFailedError: naming the case that failed and what came back.

    Cancellation: cancelling the check stops the server under test at once.
    """
    rng = random.Random(4)
    big = rng.randbytes(256 * 1024)

    async def case(name: str, run: Callable[[], Awaitable[None]]) -> None:
        await _run_case(run, timeout, f"echo check {name!r}: no answer within {timeout:g} s")

    def expect(name: str, got: bytes, wanted: bytes) -> None:
        if got != wanted:
            at = next(
                (i for i, (a, b) in enumerate(zip(got, wanted, strict=False)) if a != b), None
            )
            where = f"first difference at byte {at}" if at is not None else "lengths differ"
            raise CheckFailedError(
                f"echo check {name!r}: sent {len(wanted)} bytes, got {len(got)} back ({where})"
            )

    async def simple(
        name: str,
        payload: bytes,
        *,
        wrap: Wrap | None = None,
        lockstep: bool = False,
        client_wrap: Wrap | None = None,
    ) -> None:
        async with trio.open_nursery() as nursery:
            server: Server = await nursery.start(
                lambda task_status: serve_memory(
                    handler, wrap=wrap, lockstep=lockstep, task_status=task_status
                )
            )
            async with await _client(server, client_wrap) as client:
                expect(name, await _echo_exchange(client, payload), payload)
            await server.aclose()
            if server.stats.failed:
                raise CheckFailedError(f"echo check {name!r}: the handler raised")

    async def interactive() -> None:
        async with trio.open_nursery() as nursery:
            server: Server = await nursery.start(serve_memory, handler)
            async with await _client(server) as client:
                for message in (b"one", b"two", b"three"):
                    await client.send_all(message)
                    expect("interactive", await client.receive_exactly(len(message)), message)
            await server.aclose()

    await case("small", lambda: simple("small", b"hello, world\n"))
    await case("interactive", interactive)
    await case("large", lambda: simple("large", big))
    await case(
        "bytewise",
        lambda: simple("bytewise", big[:300], wrap=rechunk(1), client_wrap=rechunk(1)),
    )
    await case(
        "random-lockstep",
        lambda: simple(
            "random-lockstep", big[:4000], wrap=rechunk(seed=7, max_size=100), lockstep=True
        ),
    )

    async def concurrent() -> None:
        async with trio.open_nursery() as nursery:
            server: Server = await nursery.start(serve_memory, handler)

            async def one(index: int) -> None:
                payload = bytes([index]) * (1000 + index)
                async with await _client(server) as client:
                    expect(
                        f"concurrent client {index}", await _echo_exchange(client, payload), payload
                    )

            async with trio.open_nursery() as clients:
                for index in range(10):
                    clients.start_soon(one, index)
            await server.aclose()

    await case("concurrent", concurrent)

    async def vanishing() -> None:
        async with trio.open_nursery() as nursery:
            server: Server = await nursery.start(serve_memory, handler)
            client = await _client(server)
            await client.send_all(big[:1000])
            await trio.aclose_forcefully(client)  # gone without reading the echo
            async with await _client(server) as client:
                expect(
                    "after a vanished client",
                    await _echo_exchange(client, b"still here"),
                    b"still here",
                )
            await server.aclose()
            if server.stats.failed:
                raise CheckFailedError(
                    "echo check 'vanishing': a client that went away made the handler raise "
                    "something other than BrokenResourceError"
                )

    await case("vanishing", vanishing)


# ---------------------------------------------------------------- framed handlers

#: ``respond(request) -> reply``: what a framed handler answers to one request frame.
Respond = Callable[[bytes], bytes]


@dataclass(frozen=True)
class _Codec:
    """How a framed check talks: encode a request, read a reply, break the framing."""

    kind: str  # "line" / "frame", for messages
    encode: Callable[[bytes], bytes]
    read: Callable[[Connection], Awaitable[bytes]]
    too_long: bytes  # bytes over the limit that never complete a request
    limit_name: str
    partial: Callable[[bytes], bytes]  # an incomplete request (then end of stream)
    samples: list[bytes]
    bulk: bytes  # a request as large as convenient (up to 1 KiB), sent over and over


def _handler_tracker(handler: Handler) -> tuple[Handler, list[trio.Event]]:
    """Wrap ``handler`` so a check can wait for each connection's handler to end."""
    ended: list[trio.Event] = []

    async def tracked(conn: Connection) -> None:
        done = trio.Event()
        ended.append(done)
        try:
            await handler(conn)
        finally:
            done.set()

    return tracked, ended


async def _read_until_closed(client: Connection, codec: _Codec) -> tuple[list[bytes], str]:
    """Every reply until the server closes, and how it closed."""
    replies: list[bytes] = []
    while True:
        try:
            replies.append(await codec.read(client))
        except EndOfStream:
            return replies, "closed"
        except IncompleteFrameError:
            return replies, "closed mid-reply"
        except trio.BrokenResourceError:
            return replies, "reset"


async def _check_framed(
    handler: Handler, respond: Respond, codec: _Codec, *, timeout: float
) -> None:
    kind = codec.kind
    samples = codec.samples
    wanted = [respond(request) for request in samples]

    async def case(name: str, run: Callable[[], Awaitable[None]]) -> None:
        hint = _HINTS.get(name, "")
        await _run_case(
            run, timeout, f"{kind} check {name!r}: no answer within {timeout:g} s ({hint})"
        )

    def expect(name: str, got: list[bytes], want: list[bytes]) -> None:
        if got != want:
            raise CheckFailedError(
                f"{kind} check {name!r}: sent {len(want)} {kind}s, expected the replies "
                f"{_short(want)}, got {_short(got)}"
            )

    async def served(
        name: str,
        body: Callable[[Server, list[trio.Event]], Awaitable[None]],
        *,
        wrap: Wrap | None = None,
        lockstep: bool = False,
    ) -> None:
        tracked, ended = _handler_tracker(handler)
        async with trio.open_nursery() as nursery:
            server: Server = await nursery.start(
                functools.partial(
                    serve_memory, tracked, wrap=wrap, lockstep=lockstep, grace_period=0
                )
            )
            await body(server, ended)
            await server.aclose()
        if server.stats.failed:
            raise CheckFailedError(
                f"{kind} check {name!r}: the handler raised (the server logged the "
                "traceback); a peer's mistake should close the connection, not crash"
            )

    def exchange(
        name: str,
        chunks: list[bytes],
        *,
        wrap: Wrap | None = None,
        client_wrap: Wrap | None = None,
        lockstep: bool = False,
    ) -> Callable[[], Awaitable[None]]:
        """Send the samples as ``chunks`` then end of stream; expect every reply, then EOF."""

        async def body(server: Server, ended: list[trio.Event]) -> None:
            async with await _client(server, client_wrap) as client:

                async def sender() -> None:
                    for chunk in chunks:
                        await client.send_all(chunk)
                    await client.send_eof()

                async with trio.open_nursery() as nursery:
                    nursery.start_soon(sender)
                    replies, _ = await _read_until_closed(client, codec)
            expect(name, replies, wanted)

        return lambda: served(name, body, wrap=wrap, lockstep=lockstep)

    stream = b"".join(codec.encode(request) for request in samples)
    rng = random.Random(14)
    cuts = sorted(rng.sample(range(1, len(stream)), min(12, len(stream) - 1)))
    random_chunks = [stream[a:b] for a, b in zip([0, *cuts], [*cuts, len(stream)], strict=True)]

    several = f"several {kind}s in one write"
    await case(several, exchange(several, [stream]))
    await case(
        "one byte at a time",
        exchange(
            "one byte at a time",
            [stream[i : i + 1] for i in range(len(stream))],
            wrap=rechunk(1),
        ),
    )
    await case(
        "random splits",
        exchange("random splits", random_chunks, wrap=rechunk(seed=7, max_size=5), lockstep=True),
    )

    async def interactive(server: Server, ended: list[trio.Event]) -> None:
        async with await _client(server) as client:
            for request, reply in zip(samples, wanted, strict=True):
                await client.send_all(codec.encode(request))
                expect("each answered at once", [await codec.read(client)], [reply])

    await case("each answered at once", lambda: served("each answered at once", interactive))

    async def over_limit(server: Server, ended: list[trio.Event]) -> None:
        async with await _client(server) as client:
            await client.send_all(codec.encode(samples[0]))
            await client.send_all(codec.too_long)  # and the stream stays open
            replies, _ = await _read_until_closed(client, codec)
            expect("over the limit", replies, wanted[:1])
            await ended[0].wait()

    await case("over the limit", lambda: served("over the limit", over_limit))

    async def eof_mid_frame(server: Server, ended: list[trio.Event]) -> None:
        async with await _client(server) as client:
            await client.send_all(codec.encode(samples[0]) + codec.partial(samples[-1]))
            await client.send_eof()
            replies, _ = await _read_until_closed(client, codec)
            expect("end of stream mid-" + kind, replies, wanted[:1])
            await ended[0].wait()

    await case(
        "end of stream mid-" + kind, lambda: served("end of stream mid-" + kind, eof_mid_frame)
    )

    async def never_reads(server: Server, ended: list[trio.Event]) -> None:
        request = codec.encode(codec.bulk)
        offered = _NEVER_READS_OFFERED // len(request) + 1
        client = await _client(server)
        sent = 0

        async def sender() -> None:
            nonlocal sent
            for _ in range(offered):
                await client.send_all(request)
                sent += len(request)

        async with trio.open_nursery() as nursery:
            nursery.start_soon(sender)
            # Every task waits: the handler on a reply nobody reads, the client on a
            # request the handler no longer takes (the stream is unbuffered).
            await trio.testing.wait_all_tasks_blocked()
            nursery.cancel_scope.cancel()
        await trio.aclose_forcefully(client)
        if sent > _NEVER_READS_BOUND:
            raise CheckFailedError(
                f"{kind} check 'a peer that never reads': the handler took {sent} bytes "
                f"from a client that read none of its replies (more than "
                f"{_NEVER_READS_BOUND}): its replies queue up without a limit; send each "
                "reply before reading the next request"
            )
        await ended[0].wait()  # the client went away: the handler must end

    await case(
        "a peer that never reads",
        lambda: served("a peer that never reads", never_reads, lockstep=True),
    )


# What a handler may read ahead of its unread replies: the connection's receive buffer
# (one 64 KiB network read) and a request, with room to spare; a peer offers 4x that.
_NEVER_READS_BOUND = 4 * 65536
_NEVER_READS_OFFERED = 4 * _NEVER_READS_BOUND

_HINTS = {
    "each answered at once": "a handler that waits for end of stream before replying hangs here",
    "over the limit": "the client sent more than the limit without ending a request and "
    "kept the stream open: the handler must close it instead of buffering on",
    "end of stream mid-line": "after end of stream the handler must close",
    "end of stream mid-frame": "after end of stream the handler must close",
    "a peer that never reads": "the client closed; the handler blocked on a reply must end",
}


def _short(items: list[bytes]) -> str:
    shown = [item if len(item) <= 20 else item[:17] + b"..." for item in items[:5]]
    more = f" and {len(items) - 5} more" if len(items) > 5 else ""
    return repr(shown) + more


def _identity(request: bytes) -> bytes:
    return request


async def check_line_handler(
    handler: Handler,
    respond: Respond = _identity,
    *,
    max_line_length: int = DEFAULT_MAX_LINE_LENGTH,
    timeout: float = 10.0,
) -> None:
    """Check a line-based handler: every line gets exactly one reply line, ``respond(line)``.

    Lines end with ``b"\\n"`` (a ``b"\\r"`` before it is stripped too); ``respond`` gets
    and returns a line without its ending (the default: echo the line). Each case runs on
    a fresh in-memory server (:func:`serve_memory`, the real machinery):

    * several lines in one write; the same bytes one at a time; split at random places
      over an unbuffered stream;
    * each line answered before the client sends the next (a handler that waits for end
      of stream before replying hangs here);
    * a line over the limit: more than ``max_line_length`` bytes without a line ending, the
      stream left open: the reply to the line before, then the handler must close the
      connection (``conn.receive_line()`` raises ``LineTooLongError``: letting it out does);
    * end of stream in the middle of a line: the reply to the complete line, then close
      (``IncompleteFrameError``: letting it out does);
    * a peer that never reads: the handler must stop reading while its replies are not
      read (at most 256 KiB taken), and end once that peer goes away;

    and in every case the handler raised nothing but a peer's error (``server.stats.failed``
    stays 0).

    Args:
      handler: ``async def handler(conn: Connection)``.
      respond: the reply line for a request line, both without endings.
      max_line_length: the handler's line limit (default: ``receive_line``'s).
      timeout: seconds each case may take (under ``autojump_clock`` this costs no real time).

    Raises:
      CheckFailedError: an ``AssertionError`` naming the case that failed, in plain words.

    Cancellation: cancelling the check stops the server under test at once.
    """
    samples = [
        line[:max_line_length] for line in (b"hello", b"", b"two words", b"x" * 300, b"last")
    ]

    async def read(client: Connection) -> bytes:
        return await client.receive_line(max_length=max(max_line_length, 1 << 20))

    codec = _Codec(
        kind="line",
        encode=lambda line: line + b"\n",
        read=read,
        too_long=b"y" * (max_line_length + 2),
        limit_name="max_line_length",
        partial=lambda line: line[: max(1, len(line) // 2)] or b"z",
        samples=samples,
        bulk=b"n" * min(1024, max_line_length),
    )
    await _check_framed(handler, respond, codec, timeout=timeout)


async def check_length_prefixed_handler(
    handler: Handler,
    respond: Respond = _identity,
    *,
    header_size: int = 4,
    max_frame_size: int = DEFAULT_MAX_FRAME_SIZE,
    timeout: float = 10.0,
) -> None:
    """Check a length-prefixed handler: every frame gets exactly one reply frame.

    Frames are as :class:`~trio_tcp.framing.LengthPrefixFramer` makes them (a big-endian
    length of ``header_size`` bytes, then the body); ``respond`` gets a request body and
    returns the reply body (the default: echo it). The cases are those of
    :func:`check_line_handler`, with frames: several in one write (an empty one among
    them), one byte at a time (headers split too), random splits; each answered at once; a
    header announcing more than ``max_frame_size`` (the handler must close without waiting
    for that body); end of stream inside a frame; a peer that never reads.

    Args:
      handler: ``async def handler(conn: Connection)``.
      respond: the reply body for a request body.
      header_size: 1, 2, 4 or 8.
      max_frame_size: the handler's limit on a frame's body.
      timeout: seconds each case may take (under ``autojump_clock`` this costs no real time).

    Raises:
      CheckFailedError: an ``AssertionError`` naming the case that failed, in plain words.
      ValueError: a ``header_size`` the framer does not support.

    Cancellation: cancelling the check stops the server under test at once.
    """
    request_framer = LengthPrefixFramer(header_size, max_frame_size=max_frame_size)
    reply_framer = LengthPrefixFramer(header_size, max_frame_size=256**header_size - 1)
    samples = [b"hello", b"", bytes(range(256)), b"last"]
    samples = [s[:max_frame_size] for s in samples]

    async def read(client: Connection) -> bytes:
        return await client.receive_frame(reply_framer)

    announced = max_frame_size + 1
    if announced >= 256**header_size:
        raise ValueError(
            f"max_frame_size={max_frame_size} is the most a {header_size}-byte header can "
            "announce: no frame can be over the limit"
        )
    codec = _Codec(
        kind="frame",
        encode=request_framer.encode,
        read=read,
        too_long=announced.to_bytes(header_size, "big") + b"z",
        limit_name="max_frame_size",
        partial=lambda body: request_framer.encode(body + b"tail")[:-1],
        samples=samples,
        bulk=b"n" * min(1024, max_frame_size),
    )
    await _check_framed(handler, respond, codec, timeout=timeout)
