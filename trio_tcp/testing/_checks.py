"""Conformance checks for handlers, in the spirit of ``trio.testing.check_two_way_stream``."""

from __future__ import annotations

import random

import trio

from .._connection import Connection
from .._exceptions import CheckFailedError
from .._server import Handler, Server
from ._faults import Wrap, rechunk
from ._memory import MemoryListener, serve_memory

__all__ = ["check_echo_handler"]


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

    async def case(name: str, run: object) -> None:
        assert callable(run)
        with trio.move_on_after(timeout) as guard:
            try:
                await run()
            except BaseExceptionGroup as group:
                found = _first_failure(group)
                if found is None:
                    raise
                raise found from None
        if guard.cancelled_caught:
            raise CheckFailedError(f"echo check {name!r}: no answer within {timeout:g} s")

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
