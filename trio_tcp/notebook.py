"""Jupyter glue: one Trio run in a background thread, driven from notebook cells.

Jupyter's kernel runs asyncio, and ``%autoawait trio`` gives every cell its own ``trio.run`` (a
server dies with its cell). So this module keeps one ``trio.run`` alive in a daemon thread, with a
nursery for long-lived tasks, and lets cells hand work to it::

    import trio_tcp.notebook as tnb

    trio_bg = tnb.start()                       # re-running this cell replaces the old run
    port = await trio_bg.start(my_server, 0)    # like nursery.start: returns what started() got
    port = await trio_bg.start(my_server, 0, name="echo")  # run again: replaces the old one
    reply = await trio_bg.run(my_client, port)  # one call: its result, or its exception, here
    reply = trio_bg.run_sync(my_client, port)   # the same from a sync cell or a plain script
    trio_bg.close()                             # cancel everything, join the thread

Where prints go: ipykernel sends output to the cell named by a context variable. ``run`` and
``run_sync`` carry the calling cell's context, so what the call prints lands in that cell. Tasks
started with ``start``/``start_soon`` run in a fresh context, so what they print later lands in
whichever cell is running at the time; a crash of such a task is printed there with its
traceback, kept in ``.errors``, and the run goes on.

Interrupting the kernel cancels the Trio call the cell is waiting on; the background run and its
servers survive. Under ``%autoawait trio`` (each cell its own short ``trio.run``, so a server
started there dies with its cell) ``await trio_bg.run(...)`` and ``start`` work too: the cell
waits in a worker thread while the call runs in the background run.
"""

from __future__ import annotations

import atexit
import collections
import contextlib
import contextvars
import signal
import socket
import sys
import threading
import traceback
from collections.abc import Awaitable, Callable, Iterator, Sequence
from types import TracebackType
from typing import TYPE_CHECKING, Any, Generic, TypeVar, TypeVarTuple

import trio

if TYPE_CHECKING:
    import asyncio

__all__ = ["BackgroundTrio", "current", "main", "show_source", "start"]

T = TypeVar("T")
ArgsT = TypeVarTuple("ArgsT")

#: How long an interrupted call waits for its Trio task to finish unwinding before it gives up on
#: it (a task that shields itself from cancellation keeps running in the background).
CANCEL_WAIT = 2.0
#: ``run_sync`` wakes this often: a SIGINT delivered to another thread only raises
#: KeyboardInterrupt in the main thread once it runs Python code again.
_POLL_INTERVAL = 0.1
#: ``BackgroundTrio.errors`` keeps this many crashes, dropping the oldest.
MAX_ERRORS = 100


class _Call(Generic[T]):
    """One run()/start() call: its Trio cancel scope and its outcome, shared by two threads."""

    def __init__(self, on_finish: Callable[[], None] | None = None) -> None:
        self.scope = trio.CancelScope()
        self.finished = threading.Event()
        self.result: tuple[T] | None = None  # (value,) once async_fn returned
        self.error: Exception | None = None  # what async_fn raised
        self._on_finish = on_finish

    def finish(self) -> None:
        self.finished.set()
        if self._on_finish is not None:
            self._on_finish()

    def outcome(self) -> T:
        """The value, or raise the error; a call that never finished means the run was closed."""
        if self.result is not None:
            return self.result[0]
        if self.error is not None:
            error, self.error = self.error, None  # no reference cycle through the traceback
            raise error
        raise trio.RunFinishedError("the background Trio run was closed before this call finished")


class _Status:
    """Forwards ``task_status.started()`` and remembers that it was called."""

    def __init__(self, inner: trio.TaskStatus[Any]) -> None:
        self._inner = inner
        self.called = False

    def started(self, value: object = None) -> None:
        self._inner.started(value)
        self.called = True


class BackgroundTrio:
    """One ``trio.run`` in a daemon thread, with a nursery for long-lived tasks.

    Create it with :func:`start` (which also closes the previous one) or directly; use it as a
    context manager in scripts. All methods except the async ones may be called from any thread
    but the Trio thread itself.

    Attributes:
        errors: the most recent crashes of tasks started with :meth:`start` or
            :meth:`start_soon` (after they called ``started()``), oldest first, at most
            :data:`MAX_ERRORS`.
    """

    _token: trio.lowlevel.TrioToken
    _nursery: trio.Nursery

    def __init__(self) -> None:
        self.errors: collections.deque[Exception] = collections.deque(maxlen=MAX_ERRORS)
        self._lock = threading.Lock()
        self._calls: set[_Call[Any]] = set()  # submitted and not finished
        self._closed = False
        self._failure: BaseException | None = None
        # Tasks started with name=: their cancel scope and an event set when they have ended.
        self._named: dict[str, tuple[trio.CancelScope, trio.Event]] = {}
        ready = threading.Event()
        # An empty context: the thread must not inherit a cell's context (Python 3.14 can).
        self._thread = threading.Thread(
            target=contextvars.Context().run,
            args=(self._thread_main, ready),
            name="trio_tcp.notebook",
            daemon=True,
        )
        self._thread.start()
        ready.wait()
        if self._failure is not None:
            raise RuntimeError("the background Trio run failed to start") from self._failure
        _register(self)

    # -- the Trio thread ---------------------------------------------------------------------

    def _thread_main(self, ready: threading.Event) -> None:
        try:
            trio.run(self._main, ready)
        except BaseException as exc:  # kept for close(); a thread has nobody to raise to
            self._failure = exc
        finally:
            with self._lock:
                self._closed = True
                pending, self._calls = self._calls, set()
            for call in pending:  # submitted but never run: their callers get RunFinishedError
                call.finish()
            ready.set()

    async def _main(self, ready: threading.Event) -> None:
        self._token = trio.lowlevel.current_trio_token()
        async with trio.open_nursery() as nursery:
            self._nursery = nursery
            ready.set()
            await trio.sleep_forever()

    async def _run_call(
        self, call: _Call[T], async_fn: Callable[..., Awaitable[T]], args: tuple[object, ...]
    ) -> None:
        try:
            with call.scope:
                call.result = (await async_fn(*args),)
        except Exception as exc:  # the caller's to handle, in the caller's thread
            call.error = exc
        finally:
            with self._lock:
                self._calls.discard(call)
            call.finish()

    async def _guard(
        self,
        async_fn: Callable[..., Awaitable[object]],
        args: tuple[object, ...],
        name: str | None = None,
        *,
        task_status: trio.TaskStatus[Any] | None = None,
    ) -> None:
        status = None if task_status is None else _Status(task_status)
        scope, ended = trio.CancelScope(), trio.Event()
        if name is not None:
            self._named[name] = (scope, ended)
        try:
            with scope:
                if status is None:
                    await async_fn(*args)
                else:
                    await async_fn(*args, task_status=status)
        except Exception as exc:
            if status is not None and not status.called:
                raise  # nursery.start() hands it to whoever is waiting for started()
            self._report_crash(async_fn, exc)
        finally:
            ended.set()
            if name is not None and self._named.get(name, (None,))[0] is scope:
                del self._named[name]

    async def _start_task(
        self,
        async_fn: Callable[..., Awaitable[object]],
        args: tuple[object, ...],
        name: str | None = None,
    ) -> object:
        previous = None if name is None else self._named.pop(name, None)
        if previous is not None:  # the same cell run again: stop the old task, free its port
            scope, ended = previous
            scope.cancel()
            await ended.wait()
        return await self._nursery.start(self._guard, async_fn, args, name)

    def _report_crash(self, async_fn: Callable[..., object], exc: Exception) -> None:
        # Unlike Trio's default, one crashed task does not take the run and its servers down.
        name = getattr(async_fn, "__qualname__", repr(async_fn))
        text = "".join(traceback.format_exception(exc))
        # One write, from a task in a fresh context: it lands in the cell running now. No stderr
        # (pythonw) or a closed one (kernel shutting down) must not crash the run: .errors has it.
        with contextlib.suppress(AttributeError, OSError, ValueError):
            sys.stderr.write(
                f"trio_tcp.notebook: background task {name} crashed (the run goes on; "
                f"see .errors)\n{text}"
            )
            sys.stderr.flush()
        # Recorded after the report is written, so whoever sees it in .errors (another
        # thread) also finds the traceback printed.
        self.errors.append(exc)

    # -- handing work over -------------------------------------------------------------------

    def _check_thread(self, method: str) -> None:
        if threading.current_thread() is self._thread:
            raise RuntimeError(f"{method}() from inside the background Trio run would deadlock")

    def _submit(
        self,
        call: _Call[T],
        async_fn: Callable[..., Awaitable[T]],
        args: tuple[object, ...],
        context: contextvars.Context,
    ) -> None:
        with self._lock:
            if self._closed:
                raise trio.RunFinishedError("this background Trio run is closed")
            self._calls.add(call)

        def spawn() -> None:  # in the Trio thread; must not raise (that would crash the run)
            try:
                # start_soon copies the current context: the task runs in a copy of `context`.
                context.run(self._nursery.start_soon, self._run_call, call, async_fn, args)
            except RuntimeError:  # the nursery is closing: the run is being shut down
                with self._lock:
                    self._calls.discard(call)
                call.finish()

        try:
            self._token.run_sync_soon(spawn)
        except trio.RunFinishedError:
            with self._lock:
                self._calls.discard(call)
            raise

    def _cancel(self, call: _Call[Any]) -> None:
        with contextlib.suppress(trio.RunFinishedError):
            self._token.run_sync_soon(call.scope.cancel)

    async def _await_call(
        self,
        async_fn: Callable[..., Awaitable[T]],
        args: tuple[object, ...],
        context: contextvars.Context,
    ) -> T:
        import asyncio

        # ``%autoawait trio``: the cell is its own trio.run (inside the kernel's asyncio loop's
        # thread, so asyncio.get_running_loop() would succeed and its futures would confuse Trio).
        if _in_trio_run():
            return await self._await_call_from_trio(async_fn, args, context)
        loop = asyncio.get_running_loop()
        waiter: asyncio.Future[None] = loop.create_future()
        call: _Call[T] = _Call(on_finish=lambda: _wake(loop, waiter))
        self._submit(call, async_fn, args, context)
        with _signals_wake(loop):
            try:
                await asyncio.shield(waiter)
            except asyncio.CancelledError as exc:
                self._cancel(call)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(waiter, CANCEL_WAIT)
                exc.add_note("trio_tcp.notebook: the Trio call was cancelled; the run goes on")
                raise
        return call.outcome()

    async def _await_call_from_trio(
        self,
        async_fn: Callable[..., Awaitable[T]],
        args: tuple[object, ...],
        context: contextvars.Context,
    ) -> T:
        """Under ``%autoawait trio`` every cell is a fresh ``trio.run`` in the main thread: wait
        for the background call in a worker thread; a cancelled cell cancels the call."""
        call: _Call[T] = _Call()
        self._submit(call, async_fn, args, context)
        try:
            await trio.to_thread.run_sync(call.finished.wait, abandon_on_cancel=True)
        except trio.Cancelled:
            self._cancel(call)
            call.finished.wait(CANCEL_WAIT)
            raise
        return call.outcome()

    def _block_on_call(
        self,
        async_fn: Callable[..., Awaitable[T]],
        args: tuple[object, ...],
        context: contextvars.Context,
    ) -> T:
        call: _Call[T] = _Call()
        submitted = False
        try:
            # Inside the try: a SIGINT that lands just after the call was handed over (the
            # Trio task may already run) must cancel it too.
            self._submit(call, async_fn, args, context)
            submitted = True
            while not call.finished.wait(_POLL_INTERVAL):
                pass
        except BaseException:  # KeyboardInterrupt, mostly
            if submitted or call in self._calls:
                self._cancel(call)
                call.finished.wait(CANCEL_WAIT)
            raise
        return call.outcome()

    # -- public API --------------------------------------------------------------------------

    async def run(self, async_fn: Callable[[*ArgsT], Awaitable[T]], *args: *ArgsT) -> T:
        """Run ``await async_fn(*args)`` in the Trio thread and return its result.

        Await it from asyncio (a notebook cell's top-level ``await``). The call carries the
        caller's context, so what it prints lands in the calling cell. Its exception is raised
        here.

        Cancellation: cancelling the awaiting asyncio task (interrupting the kernel does this)
        cancels the Trio call, waits up to :data:`CANCEL_WAIT` seconds for it to unwind, and
        re-raises ``asyncio.CancelledError``. The background run is not affected. While waiting,
        any signal wakes the asyncio loop (ipykernel#881), so an interrupt is acted on at once.

        Raises:
            trio.RunFinishedError: the run is closed, or was closed during the call.
        """
        return await self._await_call(async_fn, args, contextvars.copy_context())

    def run_sync(self, async_fn: Callable[[*ArgsT], Awaitable[T]], *args: *ArgsT) -> T:
        """Like :meth:`run`, blocking the calling thread: for sync cells and plain scripts.

        Cancellation: a KeyboardInterrupt (or any exception) raised in the waiting thread cancels
        the Trio call, waits up to :data:`CANCEL_WAIT` seconds for it to unwind, and re-raises.

        Raises:
            trio.RunFinishedError: the run is closed, or was closed during the call.
            RuntimeError: called from the Trio thread itself (it would deadlock).
        """
        self._check_thread("run_sync")
        return self._block_on_call(async_fn, args, contextvars.copy_context())

    async def start(
        self, async_fn: Callable[..., Awaitable[object]], *args: object, name: str | None = None
    ) -> Any:
        """Start a long-lived task (a server) in the background nursery, like ``nursery.start``.

        With ``name``, a task started earlier under the same name is cancelled first and
        waited for (its sockets are closed, its port is free): re-running a cell that starts
        a server replaces the server instead of leaving the old one listening.

        ``async_fn(*args, task_status=...)`` runs in a fresh context, so what it prints lands in
        whichever cell is running at the time. Returns the value it passed to
        ``task_status.started()``; an exception it raises before that is raised here, one it
        raises after is printed and kept in :attr:`errors`.

        Cancellation: cancelling the awaiting asyncio task before ``started()`` cancels the
        task and re-raises ``asyncio.CancelledError``; once started, the task runs until it
        returns or :meth:`close`.

        Raises:
            trio.RunFinishedError: the run is closed.
        """
        return await self._await_call(
            self._start_task, (async_fn, args, name), contextvars.Context()
        )

    def start_sync(
        self, async_fn: Callable[..., Awaitable[object]], *args: object, name: str | None = None
    ) -> Any:
        """Like :meth:`start`, blocking the calling thread: for sync cells and plain scripts.

        Cancellation: a KeyboardInterrupt before ``started()`` cancels the task and re-raises.
        """
        self._check_thread("start_sync")
        return self._block_on_call(self._start_task, (async_fn, args, name), contextvars.Context())

    def start_soon(self, async_fn: Callable[..., Awaitable[object]], *args: object) -> None:
        """Start ``async_fn(*args)`` in the background nursery and return at once.

        It runs in a fresh context (prints land in the running cell); a crash is printed and
        kept in :attr:`errors`. It runs until it returns or :meth:`close` cancels it.

        Raises:
            trio.RunFinishedError: the run is closed.
        """
        with self._lock:
            if self._closed:
                raise trio.RunFinishedError("this background Trio run is closed")

        def spawn_here() -> None:
            self._nursery.start_soon(self._guard, async_fn, args)

        def spawn() -> None:  # in the Trio thread; must not raise
            with contextlib.suppress(RuntimeError):  # the nursery is closing: nothing to start
                contextvars.Context().run(spawn_here)

        self._token.run_sync_soon(spawn)

    @property
    def closed(self) -> bool:
        """Whether the Trio run has finished."""
        return not self._thread.is_alive()

    def close(self, timeout: float = 5.0) -> None:
        """Cancel every task and call, close their sockets, and wait for the thread to end.

        Calls waiting in :meth:`run`/:meth:`run_sync` raise ``trio.RunFinishedError``. Calling
        it again is harmless.

        Raises:
            RuntimeError: called from the Trio thread, the run has not finished ``timeout``
                seconds after being cancelled (a task shields itself from cancellation), or
                the run itself crashed.
        """
        self._check_thread("close")
        _unregister(self)
        with contextlib.suppress(trio.RunFinishedError):
            self._token.run_sync_soon(self._nursery.cancel_scope.cancel)
        self._thread.join(timeout)
        if self._thread.is_alive():
            raise RuntimeError(f"the background Trio run did not finish within {timeout} s")
        failure, self._failure = self._failure, None
        if failure is not None:
            raise RuntimeError("the background Trio run crashed") from failure

    def __enter__(self) -> BackgroundTrio:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc_value: BaseException | None,
        exc_tb: TracebackType | None,
    ) -> None:
        self.close()


def _in_trio_run() -> bool:
    try:
        trio.lowlevel.current_task()
    except RuntimeError:
        return False
    return True


def _wake(loop: asyncio.AbstractEventLoop, waiter: asyncio.Future[None]) -> None:
    """From the Trio thread: tell the asyncio side that its call finished."""

    def resolve() -> None:
        if not waiter.done():
            waiter.set_result(None)

    with contextlib.suppress(RuntimeError):  # the loop is closed: nobody is waiting any more
        loop.call_soon_threadsafe(resolve)


# -- waking the asyncio loop on a signal (ipykernel#881) ---------------------------------------
#
# A Python signal handler runs only when the main thread executes bytecode. The kernel's main
# thread sleeps in epoll_wait, which a signal interrupts only if the kernel delivers it to that
# thread; SIGINT sent to the process often goes to another one, and the interrupt waits for the
# next message. CPython's C handler writes to the wakeup fd from any thread: watch it.

_wakeup_users = 0
_wakeup: tuple[socket.socket, socket.socket] | None = None


@contextlib.contextmanager
def _signals_wake(loop: asyncio.AbstractEventLoop) -> Iterator[None]:
    """While inside, any signal wakes ``loop``; nests, and leaves another owner's fd alone."""
    global _wakeup, _wakeup_users
    if threading.current_thread() is not threading.main_thread():
        yield  # set_wakeup_fd is the main thread's; elsewhere no handler runs anyway
        return
    if _wakeup_users == 0:
        _wakeup = _install_wakeup(loop)
    _wakeup_users += 1
    try:
        yield
    finally:
        _wakeup_users -= 1
        if _wakeup_users == 0 and _wakeup is not None:
            receive, send = _wakeup
            _wakeup = None
            theirs = signal.set_wakeup_fd(-1)
            if theirs != send.fileno():  # someone replaced ours meanwhile: give theirs back
                signal.set_wakeup_fd(theirs)
            loop.remove_reader(receive.fileno())
            receive.close()
            send.close()


def _install_wakeup(loop: asyncio.AbstractEventLoop) -> tuple[socket.socket, socket.socket] | None:
    receive, send = socket.socketpair()
    receive.setblocking(False)
    send.setblocking(False)
    previous = signal.set_wakeup_fd(send.fileno(), warn_on_full_buffer=False)
    if previous == -1:
        try:
            loop.add_reader(receive.fileno(), _drain, receive)
        except NotImplementedError:  # a loop without add_reader (Windows' proactor)
            pass
        else:
            return receive, send
    # Someone (asyncio's own signal handling, say) already watches a wakeup fd: keep theirs.
    signal.set_wakeup_fd(previous)
    receive.close()
    send.close()
    return None


def _drain(receive: socket.socket) -> None:
    with contextlib.suppress(OSError):
        while receive.recv(4096):
            pass


# -- the current run, and closing every run at exit --------------------------------------------

_current: BackgroundTrio | None = None
_current_lock = threading.Lock()
_live: set[BackgroundTrio] = set()
_atexit_registered = False


def _register(runner: BackgroundTrio) -> None:
    global _atexit_registered
    with _current_lock:
        _live.add(runner)
        if not _atexit_registered:
            atexit.register(_close_all)
            _atexit_registered = True


def _unregister(runner: BackgroundTrio) -> None:
    with _current_lock:
        _live.discard(runner)


def _close_all() -> None:
    with _current_lock:
        runners = list(_live)
    for runner in runners:
        runner.close()


def start() -> BackgroundTrio:
    """Start a background Trio run and make it the current one.

    The previous current run (from an earlier call, say the same cell run again) is closed
    first: its tasks are cancelled and its sockets closed, so a server can bind the same port
    again. Blocks until the new run is ready.

    Raises:
        RuntimeError: the previous run would not close (see :meth:`BackgroundTrio.close`).
    """
    global _current
    previous = _current
    if previous is not None:
        previous.close()
    _current = BackgroundTrio()
    return _current


def show_source(obj: object) -> Any:
    """The source code of ``obj`` (a function or class), for a notebook cell to display.

    Returns an ``IPython.display.Markdown`` object (a Python code block): the notebooks show
    the handlers they import from ``trio_tcp.lessons`` this way, so what you read is what
    runs and what the tests check.
    """
    import inspect

    from IPython.display import Markdown

    return Markdown("```python\n" + inspect.getsource(obj).rstrip() + "\n```")  # type: ignore[no-untyped-call,arg-type,unused-ignore]


def current() -> BackgroundTrio | None:
    """The run :func:`start` made last (it may have been closed since), or None."""
    return _current


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m trio_tcp.notebook --refresh NB.ipynb...``: re-execute notebooks in place.

    Each notebook runs in a fresh ipykernel on this Python (not whatever ``python3`` kernelspec
    the user has installed), in its own folder; the outputs are written back. A failing cell
    stops everything with nbclient's ``CellExecutionError``; the notebook is then left as it was.
    """
    import argparse
    from pathlib import Path

    import nbformat
    from jupyter_client.kernelspec import KernelSpecManager
    from jupyter_client.manager import AsyncKernelManager
    from nbclient import NotebookClient

    parser = argparse.ArgumentParser(prog="python -m trio_tcp.notebook", description=main.__doc__)
    parser.add_argument("--refresh", nargs="+", required=True, metavar="NOTEBOOK", type=Path)
    parser.add_argument("--timeout", type=float, default=120.0, help="seconds per cell")
    options = parser.parse_args(argv)
    for path in options.refresh:
        notebook = nbformat.read(path, as_version=4)  # type: ignore[no-untyped-call,arg-type,unused-ignore]
        # No kernel dirs: jupyter_client falls back to ipykernel's own spec on sys.executable.
        kernels = KernelSpecManager(kernel_dirs=[])
        client = NotebookClient(
            notebook,
            km=AsyncKernelManager(kernel_name="python3", kernel_spec_manager=kernels),
            timeout=options.timeout,
            resources={"metadata": {"path": str(path.parent)}},
        )
        client.execute(cleanup_kc=True)  # a km passed in is not shut down unless asked
        nbformat.write(notebook, path)  # type: ignore[no-untyped-call,arg-type,unused-ignore]
        print(f"refreshed {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
