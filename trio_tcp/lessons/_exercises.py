"""The notebooks' exercises: a check per exercise that says, in plain words, what is wrong.

Each ``check_*`` runs the learner's handler on the real server machinery in memory
(:func:`trio_tcp.testing.serve_memory`), with the faults and sweeps of :mod:`trio_tcp.testing`,
and returns a :class:`Verdict` instead of raising: a notebook cell prints it. The first problem
found is reported, phrased for a learner (what the client saw, and the usual cause).
``tests/test_lessons.py`` runs every check against a reference solution (it passes) and a
typical first attempt (it is flagged).
"""

from __future__ import annotations

import contextvars
import functools
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import trio

from .._connection import Connection
from .._exceptions import CheckFailedError
from .._server import Handler, Server
from ..testing import cancellation_sweep, check_echo_handler, rechunk, serve_memory
from ..testing._faults import FaultyStream, Wrap

__all__ = [
    "Verdict",
    "check_batching_exercise",
    "check_byte_count_exercise",
    "check_chat_exercise",
    "check_echo_exercise",
    "check_line_length_exercise",
    "check_polite_exercise",
    "check_shout_exercise",
]

#: Seconds a case may take before the check calls it a hang (memory streams: plenty).
CASE_TIMEOUT = 1.0


@dataclass(frozen=True)
class Verdict:
    """What an exercise check found.

    Attributes:
      exercise: the exercise's name.
      problem: ``None`` when every case passed; otherwise the first problem, in plain words.
      cases: how many cases ran (all of them when it passed).
    """

    exercise: str
    problem: str | None
    cases: int

    @property
    def passed(self) -> bool:
        """True when no problem was found."""
        return self.problem is None

    def __str__(self) -> str:
        if self.problem is None:
            return f"PASS {self.exercise}: all {self.cases} checks passed."
        return f"NOT YET {self.exercise} (check {self.cases}): {self.problem}"


class _Problem(Exception):
    """One case failed; the message is for the learner."""


class _Watched:
    """Runs the learner's handler and keeps what it raised, instead of the server logging a
    traceback into the notebook (a check reports it in one line)."""

    def __init__(self, handler: Handler) -> None:
        self.handler = handler
        self.raised: list[Exception] = []

    async def __call__(self, conn: Connection) -> None:
        try:
            await self.handler(conn)
        except Exception as exc:
            self.raised.append(exc)

    def check(self, advice: str = "") -> None:
        if self.raised:
            raise _Problem(
                f"your handler raised {_describe(self.raised[0])}"
                + (f": {advice}" if advice else ".")
            )


def _describe(exc: BaseException) -> str:
    if isinstance(exc, BaseExceptionGroup) and len(exc.exceptions) == 1:
        return _describe(exc.exceptions[0])
    text = str(exc)
    return type(exc).__name__ + (f" ({text})" if text else "")


async def _session(
    handler: Handler,
    script: Callable[[Connection], Awaitable[Any]],
    *,
    wrap: Wrap | None = None,
    lockstep: bool = False,
    hang: str = "no answer",
) -> tuple[Any, Server]:
    """Serve ``handler`` in memory, run ``script`` as one client; its result and the server.

    Raises _Problem when the script hangs (``hang`` says why, for the learner), the client's
    read or write fails, or the handler raised (the server logs and counts it).
    """
    result: Any = None
    watched = _Watched(handler)
    async with trio.open_nursery() as nursery:
        server: Server = await nursery.start(
            functools.partial(serve_memory, watched, wrap=wrap, lockstep=lockstep, grace_period=0)
        )
        try:
            with trio.move_on_after(CASE_TIMEOUT) as guard:
                async with await server.connect() as client:
                    result = await script(client)
            if guard.cancelled_caught:
                raise _Problem(f"{hang} (waited {CASE_TIMEOUT:g} s)")
        except (trio.BrokenResourceError, EOFError) as exc:
            raise _Problem(
                f"the connection ended before the answer was complete: {_describe(exc)}"
            ) from None
        finally:
            nursery.cancel_scope.cancel()
    watched.check()
    return result, server


# The servers a check runs log what they see (a handler cut at the deadline, say): the
# verdict says it in one line instead, so their records are dropped. Only theirs: the
# variable is set in the check's task, and the servers' tasks inherit it.
_IN_CHECK: contextvars.ContextVar[bool] = contextvars.ContextVar("in_check", default=False)


class _DropRecordsOfChecks(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return not _IN_CHECK.get()


_DROP_RECORDS_OF_CHECKS = _DropRecordsOfChecks()


async def _verdict(name: str, cases: list[Callable[[], Awaitable[None]]]) -> Verdict:
    logging.getLogger("trio_tcp").addFilter(_DROP_RECORDS_OF_CHECKS)  # once: filters are a set
    token = _IN_CHECK.set(True)
    try:
        return await _run_cases(name, cases)
    finally:
        _IN_CHECK.reset(token)


async def _run_cases(name: str, cases: list[Callable[[], Awaitable[None]]]) -> Verdict:
    for index, case in enumerate(cases, 1):
        try:
            await case()
        except _Problem as problem:
            return Verdict(name, str(problem), index)
        except BaseExceptionGroup as group:  # raised inside a nursery
            found = _first_problem(group)
            if found is None:
                raise
            return Verdict(name, str(found), index)
    return Verdict(name, None, len(cases))


def _first_problem(exc: BaseException) -> _Problem | None:
    if isinstance(exc, _Problem):
        return exc
    if isinstance(exc, BaseExceptionGroup):
        for inner in exc.exceptions:
            found = _first_problem(inner)
            if found is not None:
                return found
    return None


async def _sweep(handler: Handler, script: Callable[[Connection], Awaitable[Any]]) -> None:
    try:
        await cancellation_sweep(handler, script, timeout=CASE_TIMEOUT)
    except CheckFailedError as failure:
        raise _Problem(f"cancelled at an unlucky moment, it misbehaves: {failure}") from None
    except Exception as exc:
        raise _Problem(f"under the cancellation sweep it raised {_describe(exc)}") from None


# -- exercise 1: echo ---------------------------------------------------------------------------


async def check_echo_exercise(handler: Handler) -> Verdict:
    """Exercise 1: an echo handler (every byte back, in order, until the client's end).

    Cancellation: cancelling the check stops the servers it runs.
    """

    async def one_at_a_time() -> None:
        async def script(client: Connection) -> list[bytes]:
            got = []
            for message in (b"one", b"two", b"three"):
                await client.send_all(message)
                got.append(await client.receive_exactly(len(message)))
            return got

        try:
            await _session(handler, script, hang="'one' was sent and nothing came back")
        except BaseException as exc:
            problem = _first_problem(exc)
            if problem is None:
                raise
            if "ended before" in str(problem):
                raise _Problem(
                    "the first message came back, then the connection ended: your handler "
                    "returns after one read. Loop until the client ends its side "
                    "(`async for chunk in conn:`)."
                ) from None
            raise

    async def thorough() -> None:
        try:
            with trio.move_on_after(10 * CASE_TIMEOUT):
                await check_echo_handler(handler, timeout=CASE_TIMEOUT)
        except CheckFailedError as failure:
            raise _Problem(str(failure)) from None
        except Exception as exc:
            raise _Problem(f"the echo check's client got {_describe(exc)}") from None

    return await _verdict("echo", [one_at_a_time, thorough])


# -- exercise 2: the length of every line --------------------------------------------------------


async def _line_replies(client: Connection, data: bytes) -> list[bytes]:
    await client.send_all(data)
    await client.send_eof()
    return [line async for line in client.lines()]


async def check_line_length_exercise(handler: Handler) -> Verdict:
    """Exercise 2: answer every line with its length in bytes, as a line (``hello`` → ``5``).

    Cancellation: cancelling the check stops the servers it runs.
    """
    lines = [b"hello", b"", b"a longer line", b"x" * 300]
    data = b"".join(line + b"\n" for line in lines)
    wanted = [str(len(line)).encode() for line in lines]

    def case(wrap: Wrap | None, how: str) -> Callable[[], Awaitable[None]]:
        async def run() -> None:
            got, _ = await _session(
                handler,
                functools.partial(_line_replies, data=data),
                wrap=wrap,
                hang="the client sent four lines and its end of stream; no complete answer",
            )
            if got != wanted:
                hint = (
                    "your handler seems to answer per chunk, not per line: read lines with "
                    "`conn.lines()` (or `receive_line`)"
                    if len(got) != len(wanted)
                    else "check what you count: the line without its `\\n`, in bytes"
                )
                raise _Problem(
                    f"four lines sent {how} got {len(got)} answer(s) {got[:6]!r}, "
                    f"wanted {wanted!r}; {hint}."
                )

        return run

    return await _verdict(
        "line length",
        [
            case(None, "in one write"),
            case(rechunk(1), "one byte per read"),
            case(rechunk(seed=2, max_size=9), "in random pieces"),
        ],
    )


# -- exercise 3: a chat room --------------------------------------------------------------------


async def check_chat_exercise(make_handler: Callable[[], Handler]) -> Verdict:
    """Exercise 3: a chat room in which a member who never reads stops nobody.

    ``make_handler()`` returns a fresh room's handler. Protocol: the first line is the name,
    every later line reaches every member as ``name: line`` (other lines, like "joined",
    are allowed). Runs over unbuffered (lockstep) streams, where a member who does not read
    blocks every ``send_all`` to it at once.

    Cancellation: cancelling the check stops the server it runs.
    """

    async def with_silent_member() -> None:
        handler = _Watched(make_handler())
        heard: dict[str, list[str]] = {"ada": [], "bob": []}
        wanted = sorted(f"{name}: {word} from {name}" for name in heard for word in ("hi", "bye"))
        async with trio.open_nursery() as nursery:
            server: Server = await nursery.start(
                functools.partial(serve_memory, handler, lockstep=True, grace_period=0)
            )
            with trio.move_on_after(CASE_TIMEOUT) as guard:
                silent = await server.connect()
                await silent.send_all(b"zed\n")  # joins, then never reads
                clients = {name: await server.connect() for name in heard}
                for name, client in clients.items():
                    await client.send_all(name.encode() + b"\n")

                async def listen(name: str) -> None:
                    async for line in clients[name].lines():
                        if b": " in line:
                            heard[name].append(line.decode())
                            if len(heard[name]) == len(wanted):
                                return

                async with trio.open_nursery() as talk:
                    for name in heard:
                        talk.start_soon(listen, name)
                    # Two lines each: a speaker whose task is stuck sending the first one to
                    # the member who never reads cannot pass the second one on.
                    for name, client in clients.items():
                        await client.send_all(f"hi from {name}\nbye from {name}\n".encode())
            nursery.cancel_scope.cancel()
        handler.check(
            "two speakers' tasks sent at once on the connection of the member who never "
            "reads. Give every member one writer task that alone sends on its connection."
        )
        if guard.cancelled_caught:
            missing = [name for name, lines in heard.items() if len(lines) < 2]
            raise _Problem(
                f"{' and '.join(missing)} did not hear all four lines within {CASE_TIMEOUT:g} s: "
                "a speaker's task is waiting to send to the member who never reads. Broadcast "
                "into a bounded queue per member (`send_nowait`) instead of `send_all`."
            )
        for name, lines in heard.items():
            if sorted(lines) != wanted:
                raise _Problem(f"{name} heard {lines!r}, wanted {wanted!r}.")

    async def sweep() -> None:
        async def script(client: Connection) -> bytes:
            await client.send_all(b"ada\nhello\n")
            return await client.receive_until(b"ada: hello\n")

        await _sweep(make_handler(), script)

    return await _verdict("chat room", [with_silent_member, sweep])


# -- exercise 4: a polite handler ---------------------------------------------------------------


async def check_polite_exercise(handler: Handler) -> Verdict:
    """Exercise 4: echo lines; when the server starts closing, send ``goodbye`` and return.

    Cases: lines are echoed; a client that ends its side ends the handler (no waiting for
    the shutdown); during a graceful shutdown the client hears ``goodbye`` and the handler
    returns by itself (it is not cancelled at the end of the grace period); the cancellation
    sweep.

    Cancellation: cancelling the check stops the servers it runs.
    """

    async def echoes() -> None:
        async def script(client: Connection) -> list[bytes]:
            got = []
            for word in (b"one", b"two"):
                await client.send_all(word + b"\n")
                got.append(await client.receive_line())
            return got

        got, _ = await _session(handler, script, hang="'one' was sent and no line came back")
        if got != [b"one", b"two"]:
            raise _Problem(f"sent 'one' and 'two', got back {got!r}.")

    async def client_leaves() -> None:
        ended = trio.Event()

        async def watched(conn: Connection) -> None:
            try:
                await handler(conn)
            finally:
                ended.set()

        async with trio.open_nursery() as nursery:
            server: Server = await nursery.start(
                functools.partial(serve_memory, watched, grace_period=0)
            )
            client = await server.connect()
            await client.send_all(b"bye\n")
            await client.send_eof()
            with trio.move_on_after(CASE_TIMEOUT):
                await ended.wait()
            still_running = not ended.is_set()
            await client.aclose()
            nursery.cancel_scope.cancel()
        if still_running:
            raise _Problem(
                f"the client ended its side, and {CASE_TIMEOUT:g} s later your handler was "
                "still running: it waits for the shutdown (or something else) after the client "
                "left. Stop waiting when the lines end."
            )

    async def shutdown() -> None:
        cancelled = False

        async def watched(conn: Connection) -> None:
            nonlocal cancelled
            try:
                await handler(conn)
            except trio.Cancelled:
                cancelled = True
                raise

        heard: list[bytes] = []
        async with trio.open_nursery() as nursery:
            server: Server = await nursery.start(
                functools.partial(serve_memory, watched, grace_period=CASE_TIMEOUT)
            )
            async with await server.connect() as client:
                await client.send_all(b"hello\n")
                heard.append(await client.receive_line())
                server.close()
                with trio.move_on_after(2 * CASE_TIMEOUT):
                    heard.extend([line async for line in client.lines()])
            await server.aclose()
        if cancelled:
            raise _Problem(
                "the server started closing and your handler went on waiting for the next "
                f"line until the {CASE_TIMEOUT:g} s grace period ended and it was cancelled. "
                "Read with `conn.lines(until_closing=True)`: it stops at a line boundary once "
                "the server is closing."
            )
        if heard[1:] != [b"goodbye"]:
            raise _Problem(f"during the shutdown the client heard {heard[1:]!r}, not ['goodbye'].")

    async def sweep() -> None:
        async def script(client: Connection) -> list[bytes]:
            await client.send_all(b"a\nb\n")
            return [await client.receive_line(), await client.receive_line()]

        await _sweep(handler, script)

    return await _verdict("polite handler", [echoes, client_leaves, shutdown, sweep])


# -- exercise 5: the shouting server under every fault --------------------------------------------


async def check_shout_exercise(handler: Handler) -> Verdict:
    """Exercise 5: ``hi`` → ``<HI>`` per line, under re-chunking and the cancellation sweep.

    Cancellation: cancelling the check stops the servers it runs.
    """
    wanted = [b"<HELLO>", b"<WORLD>"]

    async def conversation(client: Connection) -> list[bytes]:
        replies = []
        for word in (b"hello", b"world"):
            await client.send_all(word + b"\n")
            replies.append(await client.receive_line())
        return replies

    def case(wrap: Wrap | None, how: str) -> Callable[[], Awaitable[None]]:
        async def run() -> None:
            got, _ = await _session(
                handler, conversation, wrap=wrap, hang=f"'hello' sent ({how}): no full line back"
            )
            if got != wanted:
                raise _Problem(
                    f"with the bytes arriving {how}, the client got {got!r} instead of "
                    f"{wanted!r}: a chunk is not a line; read with `conn.lines()`."
                )

        return run

    async def sweep() -> None:
        await _sweep(handler, conversation)

    return await _verdict(
        "shout",
        [
            case(None, "as sent"),
            case(rechunk(1), "one byte per read"),
            case(rechunk(seed=3), "in random pieces"),
            sweep,
        ],
    )


# -- exercise 6: fewer sends ----------------------------------------------------------------------


class _SendCounter:
    """A ``wrap=`` that counts the handler's ``send_all`` calls."""

    def __init__(self) -> None:
        self.sends = 0

    def __call__(self, stream: trio.abc.Stream) -> trio.abc.Stream:
        counter = self

        class Counting(FaultyStream):
            async def send_all(self, data: bytes | bytearray | memoryview) -> None:
                counter.sends += 1
                await super().send_all(data)

        return Counting(stream)


async def check_batching_exercise(handler: Handler) -> Verdict:
    """Exercise 6: answer each line with its capitals, with one send per burst, not per line.

    The client writes 200 lines at once; a handler that answers them with at most 20
    ``send_all`` calls passes (each send is a system call on a real socket). The answers must
    be right under re-chunking too.

    Cancellation: cancelling the check stops the servers it runs.
    """
    lines = [b"line %d" % i for i in range(200)]
    data = b"".join(line + b"\n" for line in lines)
    wanted = [line.upper() for line in lines]

    async def script(client: Connection) -> list[bytes]:
        await client.send_all(data)
        await client.send_eof()
        return [line async for line in client.lines()]

    async def right_answers() -> None:
        for wrap, how in [(rechunk(1), "one byte per read"), (rechunk(seed=4), "random pieces")]:
            got, _ = await _session(handler, script, wrap=wrap, hang="no complete answer")
            if got != wanted:
                raise _Problem(
                    f"with the bytes arriving in {how}, the answers were wrong "
                    f"(first: {got[:3]!r}); every line must be answered whole."
                )

    async def few_sends() -> None:
        counter = _SendCounter()
        got, _ = await _session(handler, script, wrap=counter, hang="no complete answer")
        if got != wanted:
            raise _Problem(f"the answers were wrong (first: {got[:3]!r}).")
        if counter.sends > 20:
            raise _Problem(
                f"200 lines that arrived together were answered with {counter.sends} sends: "
                "one per line. Answer every complete line of a chunk with one `send_all` "
                "(a `LineFramer` fed each chunk gives them all)."
            )

    return await _verdict("batching", [right_answers, few_sends])


# -- exercise 7: count until the client's end of stream -----------------------------------------


async def check_byte_count_exercise(handler: Handler) -> Verdict:
    """Exercise 7: read until the client half-closes, answer ``<bytes received>\\n``, and close.

    Cancellation: cancelling the check stops the servers it runs.
    """

    def case(pieces: list[bytes], wrap: Wrap | None, how: str) -> Callable[[], Awaitable[None]]:
        total = sum(map(len, pieces))

        async def script(client: Connection) -> bytes:
            for piece in pieces:
                await client.send_all(piece)
            await client.send_eof()  # the client's FIN: "I will send nothing more"
            answer = bytearray()
            while chunk := await client.receive_some():
                answer += chunk
            return bytes(answer)

        async def run() -> None:
            got, _ = await _session(
                handler,
                script,
                wrap=wrap,
                hang="the client sent its end of stream and never saw the server's end: "
                "does your handler return after answering?",
            )
            if got != b"%d\n" % total:
                raise _Problem(
                    f"the client sent {total} bytes ({how}) then its end of stream, and got "
                    f"{got!r}; wanted {b'%d' % total!r} and a newline. Keep reading until "
                    "`receive_some` returns b'' (that is the client's FIN), then answer once."
                )

        return run

    return await _verdict(
        "byte count",
        [
            case([b"abc", b"de", b"f"], None, "in three writes"),
            case([bytes(5000)], rechunk(seed=8, max_size=700), "in random pieces"),
            case([], None, "nothing at all"),
        ],
    )
