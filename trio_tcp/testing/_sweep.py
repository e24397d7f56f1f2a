"""The cancellation sweep: cancel a handler at every point it can be cancelled, one by one.

What a point is: every time a task of the handler's task tree yields to Trio's scheduler.
That is every checkpoint, not only stream calls: ``trio.Lock.acquire``, ``Event.wait``, a
memory channel's ``send`` / ``receive``, ``trio.sleep``, a child nursery's exit, and each
wait inside a stream call (a ``receive_line`` that waits for five bytes one at a time is
five points). The tree is the handler's own task plus every task spawned from it (a
``trio.abc.Instrument`` sees ``task_spawned`` while a tree task runs), wherever the child
lands: in the handler's nursery or in one that outlives it.

How points are numbered (deterministically): Trio runs ready tasks in a deliberately
varying order, so a global count of steps would differ from run to run. The count of one
task's own yields does not: each Trio primitive yields exactly once whether or not it
blocks (``Lock.acquire`` when free or contended, ``Event.wait`` when set or not), so a
task's *n*-th yield is the same operation on the same line in every run as long as the
bytes it receives are the same. The sweep makes those the same: over the memory transport
the handler receives one byte per ``receive_some`` (``chunk_size=1``), whatever the
client's writes coalesced into, and time (``trio.sleep``, timeouts) is best driven by
``autojump_clock`` so that a clock jump happens only when every task waits. A point is
therefore (task, *n*): the task is named by its place in the tree (the handler; the
handler's first child; that child's second child ...), and points are numbered in that
order, the handler's first, then its first child's, and so on.

How a run cancels point (task, *n*): just before that task starts the step that ends in
its *n*-th yield, the sweep cancels the scope around the handler, as an idle timeout or
the end of a grace period does. The first checkpoint of that step then raises
``trio.Cancelled``, i.e. the *n*-th waiting operation is the one cancelled; every other
task of the tree is cancelled at whatever it waits on.

Over real sockets (``transport="tcp"`` / ``"unix"``) the kernel and the stream's fast path
decide how many times a read waits, so the count is not repeatable: the sweep tries the
points of one uncancelled run, and a run that never reaches its point is counted as
skipped instead of failing.
"""

from __future__ import annotations

import functools
import os
import shutil
import tempfile
import traceback
import types
from collections.abc import Awaitable, Callable, Generator, Iterator
from dataclasses import dataclass, field
from typing import Any, Final, Literal

import outcome
import trio
import trio.testing

from .._connection import Connection
from .._exceptions import CheckFailedError
from .._server import Handler, Server, serve
from ._faults import FaultyStream, RechunkStream
from ._memory import serve_memory

__all__ = ["ClientScript", "SweepPoint", "SweepReport", "Transport", "cancellation_sweep"]

#: ``async def client_script(client: Connection) -> result``: one conversation, as a client.
ClientScript = Callable[[Connection], Awaitable[object]]

#: Where a sweep runs its server: in memory (repeatable), or over real loopback sockets.
Transport = Literal["memory", "tcp", "unix"]

# Errors a client script may end with when the server closed the connection under it.
_CLIENT_BROKEN = (trio.BrokenResourceError, EOFError, ConnectionError)

# The reason given to the scope the sweep cancels: a Cancelled it causes says who sent it
# (str(exc) of the Cancelled names it).
_REASON = "cancelled by trio_tcp.testing.cancellation_sweep"

_HERE = os.path.dirname(os.path.abspath(__file__))
_PACKAGE = os.path.dirname(_HERE)
# Frames that are plumbing, not the handler under test: Trio, outcome, and trio_tcp itself
# (whatever module the stream or the server lives in) except the CLI, whose modes are
# handlers.
_SKIPPED = (
    os.path.dirname(os.path.abspath(trio.__file__)) + os.sep,
    os.path.dirname(os.path.abspath(outcome.__file__)) + os.sep,
    _PACKAGE + os.sep,
)
_HANDLER_MODULES = (os.path.join(_PACKAGE, "_cli.py"),)


@dataclass(frozen=True, slots=True)
class SweepPoint:
    """One cancelled run of a sweep.

    Attributes:
      index: the point, 1-based, in the sweep's order (see the module docstring).
      operation: what the handler's code was awaiting there (``"Connection.receive_some"``,
        ``"Lock.acquire"``, ``"sleep"``, ``"Event.wait"``, ``"NurseryManager.__aexit__"`` ...).
      location: ``"file:line in function"``: the handler's line that awaited it.
      client_outcome: ``"completed"``, the error the client script ended with, or
        ``"skipped"`` (socket transports: this run never reached the point).
      task: which task of the handler's tree: ``"handler"``, or a path such as
        ``"handler/1:pinger"`` (the handler's first child, running ``pinger``).
      step: the point's number within that task (its ``step``-th wait).
      when: ``"waiting"``: cancelled while the task waited there; ``"woken"``: cancelled
        just after that wait ended (the lock was handed over, the bytes arrived) and before
        the task ran again.
      raised_at: where ``trio.Cancelled`` surfaced in the handler's own task (``None``: it
        did not reach it, e.g. a child task was cancelled and the handler shielded it).
    """

    index: int
    operation: str
    location: str
    client_outcome: str
    task: str = "handler"
    step: int = 0
    when: str = "waiting"
    raised_at: str | None = None


@dataclass(frozen=True, slots=True)
class SweepReport:
    """What a :func:`cancellation_sweep` covered (it raises instead when it finds a bug).

    Attributes:
      points: how many cancellation points were tried (one cancelled run each).
      operations: the operation at each point, in order (``points`` of them).
      result: what the client script returned in an uncancelled run.
      runs: one :class:`SweepPoint` per cancelled run.
      transport: ``"memory"``, ``"tcp"`` or ``"unix"``.
      skipped: socket transports only: runs that never reached their point.
    """

    points: int
    operations: list[str]
    result: object
    runs: list[SweepPoint] = field(repr=False)
    transport: str = "memory"
    skipped: int = 0

    @property
    def locations(self) -> list[str]:
        """``"task #step op at file:line"`` for every point, in order (for a failure message
        or to compare two sweeps)."""
        return [f"{r.task} #{r.step} {r.when} {r.operation} at {r.location}" for r in self.runs]

    def __str__(self) -> str:
        completed = sum(1 for run in self.runs if run.client_outcome == "completed")
        skipped = f", {self.skipped} not reached" if self.skipped else ""
        return (
            f"cancellation sweep: {self.points} points covered, no leak{skipped}; the client "
            f"completed in {completed} of the cancelled runs and saw a clean break in the "
            f"rest ({self.transport})"
        )


# ---------------------------------------------------------------- where a task waits


def _is_plumbing(filename: str) -> bool:
    path = os.path.abspath(filename)
    return path.startswith(_SKIPPED) and path not in _HANDLER_MODULES


def _format_frame(filename: str, lineno: int, name: str) -> str:
    path = filename
    try:
        relative = os.path.relpath(path)
    except ValueError:  # another drive (Windows)
        relative = path
    if not relative.startswith(".."):
        path = relative
    return f"{path}:{lineno} in {name}"


def _handler_location(stack: traceback.StackSummary) -> str:
    """The innermost frames outside trio and trio_tcp's own plumbing, innermost first."""
    mine: list[traceback.FrameSummary] = []
    for frame in reversed(stack):
        if _is_plumbing(frame.filename):
            if mine:  # back in the server's machinery: the handler's frames are all found
                break
            continue
        mine.append(frame)
    if not mine:
        return "(no frame outside trio and trio_tcp)"
    shown = [_format_frame(f.filename, f.lineno or 0, f.name) for f in mine[:2]]
    return shown[0] + "".join(f" (called from {where})" for where in shown[1:])


def _coro_frames(coro: object) -> Iterator[tuple[types.FrameType, int]]:
    """A suspended coroutine's await chain, outermost first (as ``Task.iter_await_frames``)."""
    while coro is not None:
        frame = getattr(coro, "cr_frame", None) or getattr(coro, "gi_frame", None)
        if frame is not None:
            yield frame, frame.f_lineno
        if hasattr(coro, "cr_await"):
            coro = coro.cr_await
        elif hasattr(coro, "gi_yieldfrom"):
            coro = coro.gi_yieldfrom
        else:
            return


#: The coroutines a public call of ``Connection`` runs, under the call's name: ``send_all``
#: is a plain method that returns the coroutine doing the work (over a socket, the fast
#: socket stream's), so the frame below the handler's is that coroutine; ``async for chunk
#: in conn`` is a receive_some.
_PUBLIC_OPERATION: Final = {
    "Connection.__anext__": "Connection.receive_some",
    "Connection._send_all": "Connection.send_all",
    "FastSocketStream.send_all": "Connection.send_all",
}


def _wait_site(frames: Iterator[tuple[types.FrameType, int]]) -> tuple[str, str, list[Any]]:
    """``(operation, location, objects)`` of a suspended await chain: what the innermost
    frame outside the plumbing awaits, its line, and the ``self`` of every frame below."""
    chain = list(frames)
    mine = [i for i, (frame, _) in enumerate(chain) if not _is_plumbing(frame.f_code.co_filename)]
    if not mine:
        return "?", "(no frame outside trio and trio_tcp)", []
    innermost = mine[-1]
    frame, lineno = chain[innermost]
    location = _format_frame(frame.f_code.co_filename, lineno, frame.f_code.co_name)
    if len(mine) > 1:
        caller, caller_line = chain[mine[-2]]
        location += (
            f" (called from "
            f"{_format_frame(caller.f_code.co_filename, caller_line, caller.f_code.co_name)})"
        )
    below = chain[innermost + 1 :]
    operation = below[0][0].f_code.co_qualname if below else "?"
    operation = _PUBLIC_OPERATION.get(operation, operation)
    selves = [f.f_locals.get("self") for f, _ in below]
    return operation, location, selves


# ---------------------------------------------------------------- the handler's task tree


@dataclass
class _TaskInfo:
    key: tuple[int, ...]
    label: str
    spawned_at: str
    yields: int = 0  # how many times it waited so far (while the handler ran)
    children: int = 0
    exited: bool = False


@dataclass(frozen=True)
class _Point:
    key: tuple[int, ...]
    label: str
    step: int
    when: str  # "waiting" (cancelled while it waits) or "woken" (its wait just ended)
    operation: str
    location: str


_HELD_TYPES = (trio.Lock, trio.StrictFIFOLock, trio.CapacityLimiter)
_ORDER = {"waiting": 0, "woken": 1}
_WHEN = {"waiting": "while it waited", "woken": "as its wait ended"}

Target = tuple[tuple[int, ...], int, str]


class _Tree(trio.abc.Instrument):
    """Follows the handler's task tree: numbers its waits, cancels at the target point."""

    def __init__(self, target: Target | None) -> None:
        self.target = target
        self.tasks: dict[trio.lowlevel.Task, _TaskInfo] = {}
        self.points: list[_Point] = []
        self.scope: trio.CancelScope | None = None
        self.main: trio.lowlevel.Task | None = None
        self.active = False  # the handler is running (points are counted)
        self.fired = False  # the target point was reached and the scope cancelled
        # Every lock-like object a task of the tree waited on, and where (first time).
        self.waited_on: dict[int, tuple[object, str]] = {}

    # The handler's own task joins the tree when the handler is called.
    def enter(self, scope: trio.CancelScope) -> None:
        task = trio.lowlevel.current_task()
        self.main = task
        self.scope = scope
        self.tasks[task] = _TaskInfo((), "handler", "")
        self.active = True

    def leave(self) -> None:
        self.active = False

    def _maybe_cancel(self, info: _TaskInfo, when: str) -> None:
        if self.target is None or self.fired or self.scope is None:
            return
        if self.target == (info.key, info.yields, when):
            self.fired = True
            self.scope.cancel(reason=_REASON)

    def task_spawned(self, task: trio.lowlevel.Task) -> None:
        if not self.active:
            return
        try:
            parent = trio.lowlevel.current_task()
        except RuntimeError:  # spawned by the run loop itself (a system task)
            return
        if _is_system_task(task):
            return
        parent_info = self.tasks.get(parent)
        if parent_info is None:
            return
        parent_info.children += 1
        key = (*parent_info.key, parent_info.children)
        name = task.name.rsplit(".", 1)[-1]
        label = f"{parent_info.label}/{parent_info.children}:{name}"
        spawned_at = _handler_location(traceback.extract_stack())
        self.tasks[task] = _TaskInfo(key, label, spawned_at)

    def task_exited(self, task: trio.lowlevel.Task) -> None:
        info = self.tasks.get(task)
        if info is not None:
            info.exited = True

    def after_task_step(self, task: trio.lowlevel.Task) -> None:
        # The task has just yielded: it waits (parked) or is already due to run again.
        info = self.tasks.get(task)
        if info is None or not self.active or info.exited:
            return
        info.yields += 1
        operation, location, selves = _wait_site(task.iter_await_frames())
        # Both moments for every wait: whether this one blocked depends on which task
        # Trio happened to run first, and the points must not.
        for when in ("waiting", "woken"):
            self.points.append(_Point(info.key, info.label, info.yields, when, operation, location))
        for obj in selves:
            if isinstance(obj, _HELD_TYPES):
                self.waited_on.setdefault(id(obj), (obj, location))
        self._maybe_cancel(info, "waiting")

    def before_task_step(self, task: trio.lowlevel.Task) -> None:
        # The task's wait is over (it was woken, or it never blocked) and it runs now.
        info = self.tasks.get(task)
        if info is None or not self.active or info.exited or not info.yields:
            return
        self._maybe_cancel(info, "woken")

    def ordered_points(self) -> list[_Point]:
        return sorted(self.points, key=lambda p: (p.key, p.step, _ORDER[p.when]))

    def leaked(self) -> list[_TaskInfo]:
        return [
            info for task, info in self.tasks.items() if task is not self.main and not info.exited
        ]

    def held(self) -> list[str]:
        """Locks and limiter tokens the tree waited on, still held by a task of the tree that
        is done with them (exited, or the handler's own task after the handler ended)."""
        done = {task for task, info in self.tasks.items() if info.exited or task is self.main}
        found = []
        for obj, where in self.waited_on.values():
            assert isinstance(obj, _HELD_TYPES)
            stats = obj.statistics()
            if isinstance(stats, trio.LockStatistics):
                holders: list[object] = [stats.owner]
            else:
                holders = list(stats.borrowers)
            if any(holder in done for holder in holders):
                found.append(f"a trio.{type(obj).__name__} acquired at {where}")
        return found


class _DeliveryWatch:
    """Wraps the handler's coroutine and notes when Trio resumes it with the sweep's
    ``Cancelled`` (Trio resumes a task by sending it an ``outcome``; ``Error(Cancelled)`` is
    a cancellation delivered). Transparent to ``Task.iter_await_frames``."""

    cr_frame = None

    def __init__(self, coro: Any, scope: trio.CancelScope) -> None:
        self.coro = coro
        self.scope = scope  # the scope the sweep cancels
        self.delivered_at: str | None = None

    @property
    def cr_await(self) -> Any:
        return self.coro

    def __await__(self) -> Generator[Any, Any, Any]:
        return self

    def __iter__(self) -> _DeliveryWatch:
        return self

    def __next__(self) -> Any:
        return self.send(None)

    def send(self, value: Any) -> Any:
        # Once the sweep cancelled the scope, a Cancelled resuming the handler is the sweep's
        # (an inner scope's own Cancelled cannot surface while an outer one is cancelled;
        # its reason may be another scope's, e.g. a nursery's opened after the cancel).
        if (
            self.delivered_at is None
            and self.scope.cancel_called
            and isinstance(value, outcome.Error)
            and isinstance(value.error, trio.Cancelled)
        ):
            self.delivered_at = _wait_site(_coro_frames(self.coro))[1]
        return self.coro.send(value)

    def throw(self, *args: Any) -> Any:
        return self.coro.throw(*args)

    def close(self) -> None:
        self.coro.close()


def _only_cancelled(exc: BaseException) -> bool:
    if isinstance(exc, trio.Cancelled):
        return True
    if isinstance(exc, BaseExceptionGroup):
        return all(_only_cancelled(sub) for sub in exc.exceptions)
    return False


# ---------------------------------------------------------------- one run


class _CloseRecordingStream(FaultyStream):
    """Records that the server closed the handler's stream (memory transport)."""

    def __init__(self, transport_stream: trio.abc.Stream) -> None:
        super().__init__(transport_stream)
        self.closed = trio.Event()

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


def _is_system_task(task: trio.lowlevel.Task) -> bool:
    """A task of the run itself (``spawn_system_task``: trio_tcp's socket poller), which lives
    as long as the run and belongs to no handler."""
    nursery = task.parent_nursery
    return nursery is not None and nursery.parent_task is trio.lowlevel.current_root_task()


class _TaskTracker(trio.abc.Instrument):
    """Every task spawned while it is installed, minus those that exited."""

    def __init__(self) -> None:
        self.alive: dict[trio.lowlevel.Task, None] = {}

    def task_spawned(self, task: trio.lowlevel.Task) -> None:
        if not _is_system_task(task):
            self.alive[task] = None

    def task_exited(self, task: trio.lowlevel.Task) -> None:
        self.alive.pop(task, None)


@dataclass
class _Run:
    points: list[_Point]
    fired: bool
    delivered_at: str | None
    outcome: str
    result: object
    received: bytes
    problem: str | None
    problem_at: str | None = None


def _describe(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__


async def _open_client(server: Server, transport: str) -> _RecordingStream:
    if transport == "memory":
        listener = server.listeners[0]
        assert hasattr(listener, "connect")
        return _RecordingStream(await listener.connect())
    address = server.addresses[0]
    if transport == "unix":
        assert isinstance(address, str)
        return _RecordingStream(await trio.open_unix_socket(address))
    assert isinstance(address, tuple)
    return _RecordingStream(await trio.open_tcp_stream(address[0], address[1]))


async def _run_once(
    handler: Handler,
    client_script: ClientScript,
    target: Target | None,
    *,
    baseline: _Run | None,
    transport: str,
    chunk_size: int | None,
    timeout: float,
    serve_options: dict[str, Any],
) -> _Run:
    tree = _Tree(target)
    handler_errors: list[BaseException] = []
    handler_done = trio.Event()
    swept_stream: list[_CloseRecordingStream] = []
    connections = 0
    verdict: list[str] = []
    delivered: list[str] = []

    def wrap(stream: trio.abc.Stream) -> trio.abc.Stream:
        if chunk_size is not None:
            stream = RechunkStream(stream, chunk_size)
        recording = _CloseRecordingStream(stream)
        swept_stream.append(recording)
        return recording

    async def watched(conn: Connection) -> None:
        nonlocal connections
        connections += 1
        if connections > 1:  # a probe after the swept connection: not swept
            await handler(conn)
            return
        scope = trio.CancelScope()
        watch = _DeliveryWatch(None, scope)
        try:
            with scope:
                try:
                    tree.enter(scope)
                    watch.coro = handler(conn)
                    await watch
                except BaseException as exc:
                    tree.leave()
                    handler_errors.append(exc)
                    if watch.delivered_at is not None and not _only_cancelled(exc):
                        verdict.append(
                            f"the handler raised {_describe(exc)} instead of letting "
                            f"trio.Cancelled (raised at {watch.delivered_at}) out"
                        )
                    raise
                else:
                    tree.leave()
                    if watch.delivered_at is not None:
                        verdict.append(
                            "swallowed trio.Cancelled: the handler returned normally after "
                            f"trio.Cancelled was raised at {watch.delivered_at}; a cancelled "
                            "handler must let Cancelled out (re-raise it after cleanup)"
                        )
        finally:
            tree.leave()
            if watch.delivered_at is not None:
                delivered.append(watch.delivered_at)
            handler_done.set()

    run = _Run([], False, None, "", None, b"", None)
    fatal: list[BaseException] = []
    tracker = _TaskTracker()
    directory: str | None = None

    async def scenario(nursery: trio.Nursery) -> None:
        nonlocal directory
        if transport == "memory":
            start = functools.partial(serve_memory, watched, wrap=wrap, **serve_options)
        elif transport == "tcp":
            start = functools.partial(serve, watched, 0, host="127.0.0.1", **serve_options)
        else:
            # Not a pytest tmp_path: a Unix socket path must stay under ~100 bytes.
            directory = tempfile.mkdtemp(prefix="trio-tcp-sweep-")
            path = os.path.join(directory, "s.sock")
            start = functools.partial(serve, watched, unix_path=path, **serve_options)
        server: Server = await nursery.start(start)
        recording = await _open_client(server, transport)
        client = Connection(recording)
        with trio.move_on_after(timeout) as script_guard:
            try:
                run.result = await client_script(client)
                run.outcome = "completed"
            except _CLIENT_BROKEN as exc:
                if baseline is None or not tree.fired:
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
                + (" and it was cancelled" if tree.fired else "")
            )
            return
        if verdict:
            run.problem = verdict[0]
            run.problem_at = delivered[0] if delivered else None
            return
        # Let tasks the handler cancelled on its way out see their Cancelled and exit.
        await trio.testing.wait_all_tasks_blocked()
        leaked = tree.leaked()
        if leaked:
            run.problem = (
                "tasks leaked: "
                + ", ".join(f"{info.label} (spawned at {info.spawned_at})" for info in leaked)
                + " still running after the handler returned; spawn it in a nursery the "
                "handler owns, or cancel it in a `finally`"
            )
            return
        held = tree.held()
        if held:
            run.problem = (
                f"{held[0]} is still held by the handler's task after the handler ended; "
                "`async with` releases it on every path"
            )
            return
        if transport == "memory" and (not swept_stream or not swept_stream[0].closed.is_set()):
            run.problem = "the server did not close the connection's stream"
            return
        errors = [exc for exc in handler_errors if not _only_cancelled(exc)]
        if errors and (baseline is None or not tree.fired):
            fatal.append(errors[0])
            return
        if errors:
            run.problem = f"the handler raised {_describe(errors[0])} when cancelled"
            return
        if baseline is not None:
            run.problem = _compare(run, baseline)
            if run.problem is not None:
                return
            run.problem = await _probe(server, client_script, baseline, timeout)
            if run.problem is not None:
                return
        with trio.move_on_after(timeout) as close_guard:
            await server.aclose()
        if close_guard.cancelled_caught:
            run.problem = f"the server did not shut down within {timeout:g} s"

    trio.lowlevel.add_instrument(tracker)
    trio.lowlevel.add_instrument(tree)
    try:
        async with trio.open_nursery() as nursery:
            await scenario(nursery)
            nursery.cancel_scope.cancel()
    finally:
        trio.lowlevel.remove_instrument(tree)
        trio.lowlevel.remove_instrument(tracker)
        if directory is not None:
            shutil.rmtree(directory, ignore_errors=True)
    if fatal:
        raise fatal[0]
    run.points = tree.ordered_points()
    run.fired = tree.fired
    run.delivered_at = delivered[0] if delivered else None
    if run.problem is None and tracker.alive:
        names = ", ".join(sorted(task.name for task in tracker.alive))
        run.problem = f"tasks leaked (still running after the server stopped): {names}"
    return run


async def _probe(
    server: Server, client_script: ClientScript, baseline: _Run, timeout: float
) -> str | None:
    """A fresh client after a cancelled run must get the uncancelled result."""
    with trio.move_on_after(timeout) as probe_guard:
        probe = await server.connect()
        try:
            again = await client_script(probe)
        except Exception as exc:
            return f"the server no longer serves: a fresh client got {exc!r}"
        finally:
            await trio.aclose_forcefully(probe)
    if probe_guard.cancelled_caught:
        stuck = [
            _wait_site(conn_task.iter_await_frames())[1] for conn_task in _connection_tasks(server)
        ]
        where = f" (its handler waits at {stuck[0]})" if stuck else ""
        return (
            f"the server no longer serves: a fresh client did not finish within {timeout:g} s"
            + where
        )
    if again != baseline.result:
        return (
            f"the server no longer serves correctly: a fresh client got {again!r}, "
            f"an uncancelled run gets {baseline.result!r}"
        )
    return None


def _connection_tasks(server: Server) -> list[trio.lowlevel.Task]:
    """The tasks running handlers right now (children of the server's handler nursery)."""
    found = []
    for nursery in _nurseries_below(server):
        for task in nursery.child_tasks:
            if "_run_connection" in task.name:
                found.append(task)
    return found


def _nurseries_below(server: Server) -> list[trio.Nursery]:
    root = trio.lowlevel.current_root_task()
    result: list[trio.Nursery] = []
    stack = list(root.child_nurseries) if root is not None else []
    while stack:
        nursery = stack.pop()
        result.append(nursery)
        for task in nursery.child_tasks:
            stack.extend(task.child_nurseries)
    return result


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


def _signature(points: list[_Point]) -> list[tuple[object, ...]]:
    return [(p.key, p.step, p.when, p.operation, p.location) for p in points]


async def cancellation_sweep(
    handler: Handler,
    client_script: ClientScript,
    *,
    transport: Transport = "memory",
    chunk_size: int | None = 1,
    timeout: float = 5.0,
    max_points: int = 10_000,
    **serve_options: Any,
) -> SweepReport:
    """Cancel ``handler`` at each of its cancellation points in turn; check what is left.

    First an uncancelled run (over memory: twice, to check that the points repeat) records
    every point where a task of the handler's tree waits (see the module docstring: every
    checkpoint, locks, events, channels, sleeps and nurseries included) and the client
    script's result. Then, for each point, a fresh server (the real
    :func:`trio_tcp.serve_listeners`) runs ``client_script`` and the handler is cancelled
    at that point. After every run:

    * the handler finished, and (memory) the server closed the connection's stream;
    * the handler let ``trio.Cancelled`` out: a handler resumed with the sweep's
      ``Cancelled`` that then returns normally ("swallowed trio.Cancelled") or raises
      anything else fails the sweep;
    * no task spawned from the handler's tree is still running once the handler returned
      (named with the line that spawned it), and no other task spawned during the run
      outlives the server;
    * no ``trio.Lock`` / ``StrictFIFOLock`` / ``CapacityLimiter`` is still held by a task of
      the handler's tree that is done (named with the line that acquired it);
    * no completed exchange lost or duplicated data: if the client script completed, it
      returned what the uncancelled run returned, and the bytes the client received are a
      prefix of the uncancelled run's;
    * the server still serves: a fresh client's script returns the uncancelled result
      (when it hangs, the message says where the fresh handler waits).

    Run it under ``autojump_clock`` with the memory transport: timeouts then cost no real
    time and the points repeat exactly. Over sockets use the real clock.

    Args:
      handler: the handler under test, ``async def handler(conn: Connection)``.
      client_script: ``async def script(client: Connection) -> result``: one conversation.
        Return something comparable (bytes, a list of lines). When the server closes the
        connection under it, let the read's or write's error escape
        (``trio.BrokenResourceError``, ``EndOfStream``, ``IncompleteFrameError``); prefer
        ``receive_exactly`` / ``receive_line`` to ``receive_some`` for that reason.
      transport: ``"memory"`` (default; repeatable points), ``"tcp"`` (127.0.0.1) or
        ``"unix"``: the production stream, through :func:`trio_tcp.serve`.
      chunk_size: memory only: the handler receives at most this many bytes per call
        (``None``: as they come, which may make the points depend on scheduling).
      timeout: seconds each phase of a run may take before it counts as a hang.
      max_points: give up (``CheckFailedError``) beyond this many points.
      serve_options: passed to the server (``idle_timeout``, ``max_connections``,
        ``grace_period``, ...).

    Returns:
      a :class:`SweepReport` (``str()`` of it is a one-line summary).

    Raises:
      CheckFailedError: a run broke one of the rules above; ``.point`` and ``.location``
        name the cancellation point and the handler's line. Also raised when the
        uncancelled runs disagree (memory: the scenario is not deterministic).
      ValueError: an unknown ``transport``, or ``chunk_size`` below 1.
      Exception: whatever the handler or client script raised in an uncancelled run.

    Cancellation: cancelling the sweep cancels the run in progress and stops.
    """
    if transport not in ("memory", "tcp", "unix"):
        raise ValueError(f"transport must be 'memory', 'tcp' or 'unix', not {transport!r}")
    if chunk_size is not None and chunk_size < 1:
        raise ValueError("chunk_size must be >= 1 or None")
    serve_options.setdefault("grace_period", 0.0)
    run = functools.partial(
        _run_once,
        handler,
        client_script,
        transport=transport,
        chunk_size=chunk_size if transport == "memory" else None,
        timeout=timeout,
        serve_options=serve_options,
    )
    repeatable = transport == "memory"
    baseline = await run(None, baseline=None)
    if baseline.problem is not None:
        raise CheckFailedError(f"uncancelled run: {baseline.problem}")
    if repeatable:
        again = await run(None, baseline=None)
        if _signature(again.points) != _signature(baseline.points) or (
            again.result != baseline.result
        ):
            raise CheckFailedError(
                "the scenario is not deterministic: two uncancelled runs waited at different "
                f"points ({len(baseline.points)} and {len(again.points)}) or got different "
                f"results ({baseline.result!r} and {again.result!r})"
            )
    if len(baseline.points) > max_points:
        raise CheckFailedError(
            f"gave up: {len(baseline.points)} cancellation points, more than {max_points}"
        )
    runs: list[SweepPoint] = []
    skipped = 0
    for index, point in enumerate(baseline.points, 1):
        outcome_ = await run((point.key, point.step, point.when), baseline=baseline)
        # Where Cancelled surfaced in the handler's own task, when it did (a plain schedule
        # point lets the operation finish, and the next one raises).
        location = point.location
        where = f"{point.operation}, {_WHEN[point.when]}, at {location}"
        if outcome_.delivered_at is not None and outcome_.delivered_at != location:
            where += f"; Cancelled surfaced at {outcome_.delivered_at}"
        if point.key:
            where += f", in task {point.label}"
        sweep_point = functools.partial(
            SweepPoint,
            index,
            point.operation,
            location,
            task=point.label,
            step=point.step,
            when=point.when,
            raised_at=outcome_.delivered_at,
        )
        if not outcome_.fired:
            if repeatable:
                raise CheckFailedError(
                    f"the scenario is not deterministic: a run never reached point {index} "
                    f"({where})",
                    point=index,
                    location=location,
                )
            skipped += 1
            runs.append(sweep_point("skipped"))
            continue
        if outcome_.problem is not None:
            raise CheckFailedError(
                f"cancelled at point {index} ({where}): {outcome_.problem}",
                point=index,
                location=outcome_.problem_at or location,
            )
        runs.append(sweep_point(outcome_.outcome))
    return SweepReport(
        points=len(runs),
        operations=[p.operation for p in baseline.points],
        result=baseline.result,
        runs=runs,
        transport=transport,
        skipped=skipped,
    )
