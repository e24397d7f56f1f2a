"""The cancellation sweep: cancel a handler at every point it can be cancelled, one by one.

How the points are counted (deterministically): the server runs over a
:class:`~trio_tcp.testing.MemoryListener` whose accepted stream is wrapped twice. Nearest
the network, :class:`~trio_tcp.testing.RechunkStream` hands the handler at most
``chunk_size`` bytes per receive (one by default), so how many receives a handler makes
depends on the bytes alone, never on how the client's writes happened to coalesce. Around
it, a counting stream numbers every stream operation the handler makes (``receive_some``,
``send_all``, ``send_eof``, ``wait_send_all_might_not_block``); these are the cancellation
points. Run *k* cancels the handler's connection at the start of operation *k*, exactly as
an idle timeout or the end of a grace period does (the scope around the handler is
cancelled, so ``trio.Cancelled`` is raised inside that call). The sweep goes on until a
run's handler makes fewer than *k* operations, i.e. a run completes uncancelled.

Counting task steps with an instrument was the alternative; Trio deliberately shuffles the
order of runnable tasks, so step counts vary from run to run and points would not repeat.
Stream operations are what a handler waits on, and their sequence is a function of the data.
What is not covered: cancellation while the handler waits on something other than its
stream (a lock, ``trio.sleep``, another task) unless a stream operation follows.
"""

from __future__ import annotations

import functools
import os
import traceback
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import trio

from .._connection import Connection
from .._exceptions import CheckFailedError
from .._server import Handler, Server
from ._faults import FaultyStream, RechunkStream
from ._memory import serve_memory

__all__ = ["ClientScript", "SweepPoint", "SweepReport", "cancellation_sweep"]

#: ``async def client_script(client: Connection) -> result``: one conversation, as a client.
ClientScript = Callable[[Connection], Awaitable[object]]

# Errors a client script may end with when the server closed the connection under it.
_CLIENT_BROKEN = (trio.BrokenResourceError, EOFError)

_HERE = os.path.dirname(os.path.abspath(__file__))
_PACKAGE = os.path.dirname(_HERE)
_SKIPPED = (
    os.path.dirname(os.path.abspath(trio.__file__)) + os.sep,
    _HERE + os.sep,
    os.path.join(_PACKAGE, "framing") + os.sep,
    os.path.join(_PACKAGE, "_connection.py"),
    os.path.join(_PACKAGE, "_server.py"),
)


@dataclass(frozen=True, slots=True)
class SweepPoint:
    """One cancelled run of a sweep.

    Attributes:
      index: the point, 1-based: the handler was cancelled at its ``index``-th stream call.
      operation: that call (``"receive_some"``, ``"send_all"``, ...).
      location: ``"file:line in function"``: where the handler made the call.
      client_outcome: ``"completed"`` or the error the client script ended with.
    """

    index: int
    operation: str
    location: str
    client_outcome: str


@dataclass(frozen=True, slots=True)
class SweepReport:
    """What a :func:`cancellation_sweep` covered (it raises instead when it finds a bug).

    Attributes:
      points: how many cancellation points were tried (one cancelled run each).
      operations: the stream calls of an uncancelled run, in order (``points`` of them).
      result: what the client script returned in an uncancelled run.
      runs: one :class:`SweepPoint` per cancelled run.
    """

    points: int
    operations: list[str]
    result: object
    runs: list[SweepPoint] = field(repr=False)

    def __str__(self) -> str:
        completed = sum(1 for run in self.runs if run.client_outcome == "completed")
        return (
            f"cancellation sweep: {self.points} points covered, no leak; the client "
            f"completed in {completed} of the cancelled runs and saw a clean break in the rest"
        )


def _format_frame(frame: traceback.FrameSummary) -> str:
    path = frame.filename
    try:
        relative = os.path.relpath(path)
    except ValueError:  # another drive (Windows)
        relative = path
    if not relative.startswith(".."):
        path = relative
    return f"{path}:{frame.lineno} in {frame.name}"


def _handler_location(stack: traceback.StackSummary) -> str:
    """The innermost frames outside trio and trio_tcp's own plumbing, innermost first."""
    mine: list[traceback.FrameSummary] = []
    for frame in reversed(stack):
        if os.path.abspath(frame.filename).startswith(_SKIPPED):
            if mine:  # back in the server's machinery: the handler's frames are all found
                break
            continue
        mine.append(frame)
    if not mine:
        return "(no frame outside trio and trio_tcp)"
    shown = [_format_frame(frame) for frame in mine[:3]]
    return shown[0] + "".join(f" (called from {where})" for where in shown[1:2])


class _Injector:
    """Numbers the handler's stream calls and cancels it at call number ``target``."""

    def __init__(self, target: int | None) -> None:
        self.target = target
        self.operations: list[str] = []
        self.locations: list[str] = []
        self.scope: trio.CancelScope | None = None
        self.stream: _CountingStream | None = None

    @property
    def fired(self) -> bool:
        return self.target is not None and len(self.operations) >= self.target

    async def point(self, operation: str) -> None:
        self.operations.append(operation)
        self.locations.append(_handler_location(traceback.extract_stack()))
        if len(self.operations) == self.target and self.scope is not None:
            self.scope.cancel()
            await trio.lowlevel.checkpoint_if_cancelled()  # raises Cancelled right here


class _CountingStream(FaultyStream):
    """Every call but ``aclose`` is a numbered cancellation point; records its closing."""

    def __init__(self, transport_stream: trio.abc.Stream, injector: _Injector | None) -> None:
        super().__init__(transport_stream)
        self.injector = injector
        self.closed = trio.Event()

    async def _point(self, operation: str) -> None:
        if self.injector is not None:
            await self.injector.point(operation)

    async def send_all(self, data: bytes | bytearray | memoryview) -> None:
        await self._point("send_all")
        await super().send_all(data)

    async def wait_send_all_might_not_block(self) -> None:
        await self._point("wait_send_all_might_not_block")
        await super().wait_send_all_might_not_block()

    async def receive_some(self, max_bytes: int | None = None) -> bytes | bytearray:
        await self._point("receive_some")
        return await super().receive_some(max_bytes)

    async def send_eof(self) -> None:
        await self._point("send_eof")
        await super().send_eof()

    async def aclose(self) -> None:
        self.closed.set()
        await super().aclose()


class _RecordingStream(FaultyStream):
    """The client's stream: keeps a copy of every byte the client received."""

    def __init__(self, transport_stream: trio.abc.Stream) -> None:
        super().__init__(transport_stream)
        self.received = bytearray()

    async def receive_some(self, max_bytes: int | None = None) -> bytes | bytearray:
        data = await super().receive_some(max_bytes)
        self.received += data
        return data


class _TaskTracker(trio.abc.Instrument):
    """Every task spawned while it is installed, minus those that exited."""

    def __init__(self) -> None:
        self.alive: dict[trio.lowlevel.Task, None] = {}

    def task_spawned(self, task: trio.lowlevel.Task) -> None:
        self.alive[task] = None

    def task_exited(self, task: trio.lowlevel.Task) -> None:
        self.alive.pop(task, None)


@dataclass
class _Run:
    operations: list[str]
    locations: list[str]
    outcome: str
    result: object
    received: bytes
    problem: str | None


def _describe(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__


async def _run_once(
    handler: Handler,
    client_script: ClientScript,
    target: int | None,
    *,
    baseline: _Run | None,
    chunk_size: int | None,
    timeout: float,
    serve_options: dict[str, Any],
) -> _Run:
    injector = _Injector(target)
    handler_errors: list[Exception] = []
    handler_done = trio.Event()

    def wrap(stream: trio.abc.Stream) -> trio.abc.Stream:
        if chunk_size is not None:
            stream = RechunkStream(stream, chunk_size)
        first = injector.stream is None
        counting = _CountingStream(stream, injector if first else None)
        if first:
            injector.stream = counting
        return counting

    async def watched(conn: Connection) -> None:
        swept = conn.stream is injector.stream
        try:
            with trio.CancelScope() as scope:
                if swept:
                    injector.scope = scope
                try:
                    await handler(conn)
                except Exception as exc:
                    if swept:
                        handler_errors.append(exc)
                    raise
        finally:
            if swept:
                handler_done.set()

    run = _Run([], [], "", None, b"", None)
    fatal: list[BaseException] = []
    tracker = _TaskTracker()

    async def scenario(nursery: trio.Nursery) -> None:
        server: Server = await nursery.start(
            functools.partial(serve_memory, watched, wrap=wrap, **serve_options)
        )
        listener = server.listeners[0]
        assert hasattr(listener, "connect")
        recording = _RecordingStream(await listener.connect())
        client = Connection(recording)
        with trio.move_on_after(timeout) as script_guard:
            try:
                run.result = await client_script(client)
                run.outcome = "completed"
            except _CLIENT_BROKEN as exc:
                if baseline is None or not injector.fired:
                    fatal.append(exc)
                    return
                run.outcome = _describe(exc)
            finally:
                await trio.aclose_forcefully(client)
                run.received = bytes(recording.received)
        if script_guard.cancelled_caught:
            run.problem = f"the client script did not finish within {timeout:g} s"
            return
        with trio.move_on_after(timeout) as handler_guard:
            await handler_done.wait()
        if handler_guard.cancelled_caught:
            run.problem = (
                f"the handler did not finish within {timeout:g} s after its client closed"
                + (" and it was cancelled" if injector.fired else "")
            )
            return
        stream = injector.stream
        if stream is None or not stream.closed.is_set():
            run.problem = "the server did not close the connection's stream"
            return
        if handler_errors and (baseline is None or not injector.fired):
            fatal.append(handler_errors[0])
            return
        if handler_errors:
            run.problem = f"the handler raised {_describe(handler_errors[0])} when cancelled"
            return
        if baseline is not None:
            run.problem = _compare(run, baseline)
            if run.problem is not None:
                return
            with trio.move_on_after(timeout) as probe_guard:
                probe = await server.connect()
                try:
                    again = await client_script(probe)
                except Exception as exc:
                    run.problem = f"the server no longer serves: a fresh client got {exc!r}"
                    return
                finally:
                    await trio.aclose_forcefully(probe)
            if probe_guard.cancelled_caught:
                run.problem = (
                    f"the server no longer serves: a fresh client did not finish "
                    f"within {timeout:g} s"
                )
                return
            if again != baseline.result:
                run.problem = (
                    f"the server no longer serves correctly: a fresh client got {again!r}, "
                    f"an uncancelled run gets {baseline.result!r}"
                )
                return
        with trio.move_on_after(timeout) as close_guard:
            await server.aclose()
        if close_guard.cancelled_caught:
            run.problem = f"the server did not shut down within {timeout:g} s"

    trio.lowlevel.add_instrument(tracker)
    try:
        async with trio.open_nursery() as nursery:
            await scenario(nursery)
            nursery.cancel_scope.cancel()
    finally:
        trio.lowlevel.remove_instrument(tracker)
    if fatal:
        raise fatal[0]
    run.operations = injector.operations
    run.locations = injector.locations
    if run.problem is None and tracker.alive:
        names = ", ".join(sorted(task.name for task in tracker.alive))
        run.problem = f"tasks leaked (still running after the server stopped): {names}"
    return run


def _compare(run: _Run, baseline: _Run) -> str | None:
    if run.outcome == "completed" and run.result != baseline.result:
        return (
            f"a completed exchange lost or duplicated data: the client got {run.result!r}, "
            f"an uncancelled run gets {baseline.result!r}"
        )
    if not baseline.received.startswith(run.received):
        return (
            f"the client received {run.received!r}, which is not a prefix of what an "
            f"uncancelled run sends ({baseline.received!r})"
        )
    return None


async def cancellation_sweep(
    handler: Handler,
    client_script: ClientScript,
    *,
    chunk_size: int | None = 1,
    timeout: float = 5.0,
    max_points: int = 10_000,
    **serve_options: Any,
) -> SweepReport:
    """Cancel ``handler`` at each of its cancellation points in turn; check what is left.

    First one uncancelled run (twice, to check it is deterministic) records the handler's
    stream calls and the client script's result. Then run *k* = 1, 2, 3 ... starts a fresh
    in-memory server (the real :func:`trio_tcp.serve_listeners`), runs ``client_script``
    against it and cancels the handler at its *k*-th stream call (see the module docstring
    for how points are counted), until a run completes uncancelled. After every run:

    * the handler finished, and the server closed the connection's stream;
    * no task spawned during the run is still running (a ``trio.abc.Instrument`` watches
      every task spawned meanwhile, so run the sweep while nothing else starts tasks);
    * the handler raised nothing but ``trio.Cancelled``;
    * no completed exchange lost or duplicated data: if the client script completed, it
      returned what the uncancelled run returned, and in every run the bytes the client
      received are a prefix of the uncancelled run's;
    * the server still serves: a fresh client's script returns the uncancelled result.

    Args:
      handler: the handler under test, ``async def handler(conn: Connection)``.
      client_script: ``async def script(client: Connection) -> result``: one conversation.
        Return something comparable (bytes, a list of lines). When the server closes the
        connection under it, let the read's or write's error escape
        (``trio.BrokenResourceError``, ``EndOfStream``, ``IncompleteFrameError``); prefer
        ``receive_exactly`` / ``receive_line`` to ``receive_some`` for that reason.
      chunk_size: the handler receives at most this many bytes per call (``None``: as
        they come, which may make the count depend on scheduling).
      timeout: seconds each phase of a run may take before it counts as a hang (under
        ``autojump_clock`` this costs no real time).
      max_points: give up (``CheckFailedError``) beyond this many points.
      serve_options: passed to :func:`~trio_tcp.testing.serve_memory`
        (``idle_timeout``, ``max_connections``, ``grace_period``).

    Returns:
      a :class:`SweepReport` (``str()`` of it is a one-line summary).

    Raises:
      CheckFailedError: a run broke one of the rules above; ``.point`` and ``.location``
        name the cancellation point and the handler's line. Also raised when the
        uncancelled runs disagree (the scenario is not deterministic).
      Exception: whatever the handler or client script raised in an uncancelled run.

    Cancellation: cancelling the sweep cancels the run in progress and stops.
    """
    if chunk_size is not None and chunk_size < 1:
        raise ValueError("chunk_size must be >= 1 or None")
    serve_options.setdefault("grace_period", 0.0)
    run = functools.partial(
        _run_once,
        handler,
        client_script,
        chunk_size=chunk_size,
        timeout=timeout,
        serve_options=serve_options,
    )
    baseline = await run(None, baseline=None)
    if baseline.problem is not None:
        raise CheckFailedError(f"uncancelled run: {baseline.problem}")
    again = await run(None, baseline=None)
    if again.operations != baseline.operations or again.result != baseline.result:
        raise CheckFailedError(
            "the scenario is not deterministic: two uncancelled runs made different stream "
            f"calls ({len(baseline.operations)} and {len(again.operations)}) or got "
            f"different results ({baseline.result!r} and {again.result!r})"
        )
    points: list[SweepPoint] = []
    target = 1
    while True:
        if target > max_points:
            raise CheckFailedError(f"gave up after {max_points} cancellation points")
        outcome = await run(target, baseline=baseline)
        if len(outcome.operations) < target:  # this run was never cancelled: done
            if outcome.problem is not None:
                raise CheckFailedError(f"uncancelled run: {outcome.problem}")
            break
        location = outcome.locations[target - 1]
        operation = outcome.operations[target - 1]
        if outcome.problem is not None:
            raise CheckFailedError(
                f"cancelled at point {target} ({operation} at {location}): {outcome.problem}",
                point=target,
                location=location,
            )
        points.append(SweepPoint(target, operation, location, outcome.outcome))
        target += 1
    return SweepReport(
        points=len(points), operations=baseline.operations, result=baseline.result, runs=points
    )
