"""trio_tcp.notebook: the background Trio run, from a plain thread and from a real Jupyter kernel.

The notebook tests build one notebook with nbformat, execute it once in a fresh ipykernel with
nbclient (module-scoped fixture, so one kernel start for all of them) and assert on its outputs.
"""

from __future__ import annotations

import asyncio
import contextvars
import os
import signal
import socket
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import nbformat
import pytest
import trio
import trio.lowlevel
import trio.testing
from jupyter_client.kernelspec import KernelSpecManager
from jupyter_client.manager import AsyncKernelManager
from nbclient import NotebookClient

import trio_tcp.notebook as tnb

REPO_ROOT = Path(tnb.__file__).resolve().parent.parent
CELL_TIMEOUT = 15  # seconds; a hang becomes a failure
INTERRUPT_AFTER = 1.5  # seconds into an interrupt-tagged cell


# -- helpers for the direct tests -------------------------------------------------------------


async def serve_echo(*, task_status: trio.TaskStatus[int] = trio.TASK_STATUS_IGNORED) -> None:
    """A one-message echo server on a free loopback port; started() gets the port."""

    async def echo(stream: trio.SocketStream) -> None:
        await stream.send_all(await stream.receive_some(1024))

    with trio.fail_after(5):
        listeners = await trio.open_tcp_listeners(0, host="127.0.0.1")
    task_status.started(listeners[0].socket.getsockname()[1])
    await trio.serve_listeners(echo, listeners)


def ask(port: int, message: bytes) -> bytes:
    """Send one message to 127.0.0.1:port with a plain blocking socket, return the reply."""
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        sock.sendall(message)
        return sock.recv(1024)


async def add(a: int, b: int) -> int:
    await trio.lowlevel.checkpoint()
    return a + b


async def fail(message: str) -> None:
    await trio.lowlevel.checkpoint()
    raise ValueError(message)


@pytest.fixture
def trio_bg() -> Iterator[tnb.BackgroundTrio]:
    with tnb.BackgroundTrio() as runner:
        yield runner


# -- direct tests: a plain thread, no Jupyter -------------------------------------------------


def test_run_sync_returns_result(trio_bg: tnb.BackgroundTrio) -> None:
    """run_sync runs the function in the Trio thread and returns its result."""
    assert trio_bg.run_sync(add, 2, 3) == 5


def test_run_sync_raises_exception(trio_bg: tnb.BackgroundTrio) -> None:
    """An exception of the called function is raised in the caller, the run goes on."""
    with pytest.raises(ValueError, match="nope"):
        trio_bg.run_sync(fail, "nope")
    assert trio_bg.run_sync(add, 1, 1) == 2


def test_run_from_asyncio(trio_bg: tnb.BackgroundTrio) -> None:
    """run() awaited from asyncio returns the result and raises the exception."""

    async def main() -> int:
        with pytest.raises(ValueError, match="async nope"):
            await trio_bg.run(fail, "async nope")
        return await asyncio.wait_for(trio_bg.run(add, 20, 22), 5)

    assert asyncio.run(main()) == 42


def test_run_cancelled_from_asyncio_cancels_trio_call(trio_bg: tnb.BackgroundTrio) -> None:
    """Cancelling the awaiting asyncio task cancels the Trio call; the run keeps working."""
    sleeping = threading.Event()
    cancelled = threading.Event()

    async def sleeper() -> None:
        sleeping.set()
        try:
            await trio.sleep(30)
        except trio.Cancelled:
            cancelled.set()
            raise

    async def main() -> None:
        task = asyncio.ensure_future(trio_bg.run(sleeper))
        # Cancel once the Trio call runs (not after a guessed delay).
        assert await asyncio.get_running_loop().run_in_executor(None, sleeping.wait, 10)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await asyncio.wait_for(task, 5)

    asyncio.run(main())
    assert cancelled.is_set()  # the 30 s sleep was cancelled, not waited out
    assert trio_bg.run_sync(add, 1, 2) == 3


def test_run_sync_keyboard_interrupt_cancels_trio_call(trio_bg: tnb.BackgroundTrio) -> None:
    """A SIGINT while run_sync waits cancels the Trio call and raises KeyboardInterrupt."""
    sleeping = threading.Event()
    cancelled = threading.Event()

    async def sleeper() -> None:
        sleeping.set()
        try:
            await trio.sleep(30)
        except trio.Cancelled:
            cancelled.set()
            raise

    def interrupt_once_sleeping() -> None:
        if sleeping.wait(10):
            os.kill(os.getpid(), signal.SIGINT)

    interrupter = threading.Thread(target=interrupt_once_sleeping)
    interrupter.start()
    try:
        with pytest.raises(KeyboardInterrupt):
            trio_bg.run_sync(sleeper)
    finally:
        interrupter.join()
    assert cancelled.wait(10)  # the 30 s sleep was cancelled, not waited out
    assert trio_bg.run_sync(add, 1, 2) == 3


def test_run_carries_callers_context_start_soon_does_not(trio_bg: tnb.BackgroundTrio) -> None:
    """run_sync sees the caller's context variables; start_soon tasks start from a fresh one."""
    var: contextvars.ContextVar[str] = contextvars.ContextVar("var", default="fresh")
    var.set("caller")
    seen: list[str] = []

    async def look() -> str:
        await trio.lowlevel.checkpoint()
        seen.append(var.get())
        return var.get()

    assert trio_bg.run_sync(look) == "caller"
    trio_bg.start_soon(look)
    trio_bg.run_sync(trio.testing.wait_all_tasks_blocked)  # the started task has run
    assert seen == ["caller", "fresh"]


def test_start_sync_server_keeps_serving(trio_bg: tnb.BackgroundTrio) -> None:
    """start_sync returns what the task passed to started(); the server keeps answering."""
    port = trio_bg.start_sync(serve_echo)
    assert ask(port, b"one") == b"one"
    assert ask(port, b"two") == b"two"


def test_start_from_asyncio_returns_started_value(trio_bg: tnb.BackgroundTrio) -> None:
    """start() awaited from asyncio returns the started() value of a long-lived task."""

    async def main() -> int:
        port: int = await asyncio.wait_for(trio_bg.start(serve_echo), 5)
        return port

    port = asyncio.run(main())
    assert ask(port, b"hello") == b"hello"


def test_start_raises_error_before_started(trio_bg: tnb.BackgroundTrio) -> None:
    """An exception before task_status.started() is raised in the caller, not kept as a crash."""

    async def broken(*, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        raise OSError("cannot bind")

    with pytest.raises(OSError, match="cannot bind"):
        trio_bg.start_sync(broken)
    assert list(trio_bg.errors) == []


def test_background_crash_is_printed_and_kept(
    trio_bg: tnb.BackgroundTrio, capsys: pytest.CaptureFixture[str]
) -> None:
    """A crashing start_soon task prints its traceback to stderr, lands in .errors, run survives."""
    port = trio_bg.start_sync(serve_echo)
    trio_bg.start_soon(fail, "background boom")
    # Once every task of the run waits, the crash was handled: kept and printed, in the
    # Trio thread. (Polling .errors from here raced that printing on a busy machine: the
    # test read stderr before the traceback was written, which then went to the terminal.)
    trio_bg.run_sync(trio.testing.wait_all_tasks_blocked)
    [error] = trio_bg.errors
    assert isinstance(error, ValueError)
    assert str(error) == "background boom"
    err = capsys.readouterr().err
    assert "background task fail crashed" in err
    assert "Traceback (most recent call last)" in err
    assert "ValueError: background boom" in err
    assert ask(port, b"still here") == b"still here"


def test_close_cancels_tasks_and_closes_sockets() -> None:
    """close() cancels background tasks, frees their ports and ends the thread; twice is fine."""
    cancelled = threading.Event()

    async def forever() -> None:
        try:
            await trio.sleep_forever()
        except trio.Cancelled:
            cancelled.set()
            raise

    runner = tnb.BackgroundTrio()
    port = runner.start_sync(serve_echo)
    runner.start_soon(forever)
    assert runner.run_sync(add, 0, 0) == 0  # forever() has started by now
    runner.close()
    runner.close()
    assert runner.closed
    assert cancelled.is_set()
    with pytest.raises(ConnectionRefusedError):
        ask(port, b"anyone?")
    with pytest.raises(trio.RunFinishedError):
        runner.run_sync(add, 1, 1)
    with pytest.raises(trio.RunFinishedError):
        runner.start_soon(forever)


def test_close_ends_waiting_call_with_run_finished() -> None:
    """A run_sync waiting when another thread closes the run raises RunFinishedError."""
    runner = tnb.BackgroundTrio()
    timer = threading.Timer(0.2, runner.close)
    timer.start()
    try:
        with pytest.raises(trio.RunFinishedError):
            runner.run_sync(trio.sleep, 30)
    finally:
        timer.join()
    assert runner.closed


def test_run_sync_from_trio_thread_refuses_to_deadlock(trio_bg: tnb.BackgroundTrio) -> None:
    """run_sync called from inside the background run raises instead of hanging."""

    async def reenter() -> None:
        await trio.lowlevel.checkpoint()
        trio_bg.run_sync(add, 1, 1)

    with pytest.raises(RuntimeError, match="deadlock"):
        trio_bg.run_sync(reenter)


def test_start_replaces_previous_current_run() -> None:
    """tnb.start() closes the run it made last, so a server can bind the same port again."""
    first = tnb.start()
    try:
        port = first.start_sync(serve_echo)

        async def say_second(stream: trio.SocketStream) -> None:
            await stream.send_all(b"second")

        async def serve_on(port: int, *, task_status: trio.TaskStatus[None]) -> None:
            listeners = await trio.open_tcp_listeners(port, host="127.0.0.1")
            task_status.started()
            await trio.serve_listeners(say_second, listeners)

        with tnb.start() as second:
            assert first.closed
            assert tnb.current() is second
            second.start_sync(serve_on, port)
            assert ask(port, b"?") == b"second"
    finally:
        first.close()


def test_import_is_light() -> None:
    """Importing trio_tcp.notebook pulls in neither IPython, ipykernel, asyncio nor nbclient."""
    code = (
        "import sys, trio_tcp.notebook\n"
        "print(sorted(m for m in ('IPython', 'ipykernel', 'asyncio', 'nbclient') "
        "if m in sys.modules))"
    )
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=30
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"


# -- notebook tests: one notebook executed in a real kernel -----------------------------------

DEFS = """
import functools, gc, socket, time, warnings
import trio
import trio_tcp.notebook as tnb

warnings.simplefilter("always", ResourceWarning)
PORT = 0

async def echo(stream):
    data = await stream.receive_some(1024)
    print(f"handler got {data!r}")
    await stream.send_all(data)

def ask(message):
    with socket.create_connection(("127.0.0.1", PORT), timeout=5) as sock:
        sock.sendall(message)
        return sock.recv(1024)

cancelled_at = []

async def sleeper():
    try:
        await trio.sleep(30)
    finally:
        cancelled_at.append(time.time())
"""

SETUP = """
trio_bg = tnb.start()
listeners = await trio_bg.start(functools.partial(trio.serve_tcp, echo, PORT, host="127.0.0.1"))
PORT = listeners[0].socket.getsockname()[1]
print(f"serving on {PORT}")
"""

CELLS: list[tuple[str, str, list[str]]] = [
    # (name, source, tags)
    ("defs", DEFS, []),
    ("setup", SETUP, []),
    ("blocking", "time.sleep(0.5)", []),
    ("client", 'print("client got", ask(b"ping"))', []),
    (
        "run_prints",
        "async def say(text):\n    print(text)\n    return len(text)\n\n"
        'await trio_bg.run(say, "hi")',
        [],
    ),
    ("autoawait_trio", "%autoawait trio", []),
    ("trio_cell", 'print("trio cell got", await trio_bg.run(say, "from a trio cell"))', []),
    ("autoawait_asyncio", "%autoawait asyncio", []),
    ("setup_again", SETUP, []),
    ("client_again", 'print("client got", ask(b"again"))', []),
    ("interrupt_async", "await trio_bg.run(sleeper)", ["interrupt", "raises-exception"]),
    (
        "after_async_interrupt",
        'print(f"cancelled_at={cancelled_at[-1]!r}")\nprint("client got", ask(b"after async"))',
        [],
    ),
    ("interrupt_sync", "trio_bg.run_sync(sleeper)", ["interrupt", "raises-exception"]),
    (
        "after_sync_interrupt",
        'print(f"cancelled_at={cancelled_at[-1]!r}")\nprint("client got", ask(b"after sync"))',
        [],
    ),
    (
        "crash",
        "async def crash():\n"
        '    raise ValueError("boom in the background")\n\n'
        "trio_bg.start_soon(crash)\n"
        "time.sleep(0.5)\n"
        'print("errors:", list(trio_bg.errors))',
        ["crash"],
    ),
    ("after_crash", 'print("client got", ask(b"after crash"))', []),
    (
        "close",
        "trio_bg.close()\n"
        "gc.collect()\n"
        "try:\n"
        '    ask(b"closed?")\n'
        "except ConnectionRefusedError:\n"
        '    print("refused after close")',
        [],
    ),
]


@dataclass
class Executed:
    """The executed notebook's cells by name, and when each interrupt was sent (time.time())."""

    cells: dict[str, Any]
    interrupts_sent: list[float] = field(default_factory=list)


def text_of(cell: Any, stream: str) -> str:
    return "".join(o["text"] for o in cell.outputs if o.get("name") == stream)


def result_of(cell: Any) -> str:
    return "".join(
        o["data"].get("text/plain", "")
        for o in cell.outputs
        if o["output_type"] == "execute_result"
    )


def errors_of(cell: Any) -> list[str]:
    return [o["ename"] for o in cell.outputs if o["output_type"] == "error"]


@pytest.fixture(scope="module")
def executed(tmp_path_factory: pytest.TempPathFactory) -> Executed:
    tmp_path = tmp_path_factory.mktemp("nb")
    notebook = nbformat.v4.new_notebook()  # type: ignore[no-untyped-call]
    for name, source, tags in CELLS:
        cell = nbformat.v4.new_code_cell(textwrap.dedent(source).strip())  # type: ignore[no-untyped-call]
        cell.metadata["tags"] = tags
        cell.metadata["name"] = name
        notebook.cells.append(cell)
    nbformat.write(notebook, tmp_path / "helper.ipynb")  # type: ignore[no-untyped-call]

    # The venv's own ipykernel on sys.executable, whatever kernelspecs the user has installed.
    km = AsyncKernelManager(
        kernel_name="python3", kernel_spec_manager=KernelSpecManager(kernel_dirs=[])
    )
    client = NotebookClient(
        notebook, km=km, timeout=CELL_TIMEOUT, resources={"metadata": {"path": str(tmp_path)}}
    )
    result = Executed(cells={})
    sending: list[asyncio.Future[None]] = []

    def interrupt() -> None:
        result.interrupts_sent.append(time.time())
        sending.append(asyncio.ensure_future(km.interrupt_kernel()))

    async def on_cell_execute(cell: Any, cell_index: int) -> None:
        if "interrupt" in cell.metadata["tags"]:
            asyncio.get_running_loop().call_later(INTERRUPT_AFTER, interrupt)

    client.on_cell_execute = on_cell_execute
    pythonpath = os.pathsep.join(filter(None, [str(REPO_ROOT), os.environ.get("PYTHONPATH")]))
    client.execute(cleanup_kc=True, env={**os.environ, "PYTHONPATH": pythonpath})
    result.cells = {cell.metadata["name"]: cell for cell in notebook.cells}
    return result


def test_nb_server_survives_blocking_cell(executed: Executed) -> None:
    """A server started in one cell answers a plain socket client after a blocking cell."""
    assert "serving on " in text_of(executed.cells["setup"], "stdout")
    assert "client got b'ping'" in text_of(executed.cells["client"], "stdout")


def test_nb_handler_prints_land_in_running_cell(executed: Executed) -> None:
    """The server handler's print shows up in the cell that made the connection."""
    assert "handler got b'ping'" in text_of(executed.cells["client"], "stdout")
    assert "handler got" not in text_of(executed.cells["setup"], "stdout")
    assert "handler got b'again'" in text_of(executed.cells["client_again"], "stdout")


def test_nb_run_prints_and_returns_in_cell(executed: Executed) -> None:
    """await trio_bg.run(...) prints into its cell and returns the value as the cell result."""
    cell = executed.cells["run_prints"]
    assert text_of(cell, "stdout") == "hi\n"
    assert result_of(cell) == "2"


def test_nb_run_works_under_autoawait_trio(executed: Executed) -> None:
    """Under %autoawait trio (each cell its own trio.run) await trio_bg.run() works too."""
    out = text_of(executed.cells["trio_cell"], "stdout")
    assert out == "from a trio cell\ntrio cell got 16\n", out
    assert errors_of(executed.cells["trio_cell"]) == []


def test_nb_rerun_setup_replaces_run_on_same_port(executed: Executed) -> None:
    """Re-running the setup cell binds the same port again: the old run was closed."""
    first = text_of(executed.cells["setup"], "stdout")
    second = text_of(executed.cells["setup_again"], "stdout")
    assert first == second
    assert errors_of(executed.cells["setup_again"]) == []


def test_nb_interrupt_cancels_call_and_server_survives(executed: Executed) -> None:
    """Interrupting a cell waiting on run / run_sync cancels the Trio call within ~1 s."""
    assert len(executed.interrupts_sent) == 2
    checks = [
        ("interrupt_async", "after_async_interrupt"),
        ("interrupt_sync", "after_sync_interrupt"),
    ]
    for (interrupted, after), sent in zip(checks, executed.interrupts_sent, strict=True):
        assert errors_of(executed.cells[interrupted]) in (["CancelledError"], ["KeyboardInterrupt"])
        out = text_of(executed.cells[after], "stdout")
        cancelled_at = float(out.split("cancelled_at=")[1].split()[0])
        assert 0 <= cancelled_at - sent < 2, (interrupted, cancelled_at - sent)
        assert "client got b'after " in out


def test_nb_background_crash_shows_traceback_and_run_survives(executed: Executed) -> None:
    """A crashing background task prints its traceback into the running cell; serving goes on."""
    cell = executed.cells["crash"]
    err = text_of(cell, "stderr")
    assert "background task crash crashed" in err
    assert "Traceback (most recent call last)" in err
    assert "ValueError: boom in the background" in err
    assert "errors: [ValueError('boom in the background')]" in text_of(cell, "stdout")
    assert errors_of(cell) == []
    assert "client got b'after crash'" in text_of(executed.cells["after_crash"], "stdout")


def test_nb_close_frees_port(executed: Executed) -> None:
    """close() in a cell shuts the server down."""
    assert "refused after close" in text_of(executed.cells["close"], "stdout")


def test_nb_normal_cells_are_quiet(executed: Executed) -> None:
    """Cells that are not meant to fail have no stderr output (warnings) and no errors."""
    for name, cell in executed.cells.items():
        tags = cell.metadata["tags"]
        if "interrupt" in tags or "crash" in tags:
            continue
        assert text_of(cell, "stderr") == "", name
        assert errors_of(cell) == [], name


def test_refresh_cli_writes_outputs_back(tmp_path: Path) -> None:
    """python -m trio_tcp.notebook --refresh re-executes a notebook and saves its outputs."""
    notebook = nbformat.v4.new_notebook()  # type: ignore[no-untyped-call]
    notebook.cells.append(nbformat.v4.new_code_cell("print(6 * 7)"))  # type: ignore[no-untyped-call]
    path = tmp_path / "tiny.ipynb"
    nbformat.write(notebook, path)  # type: ignore[no-untyped-call]
    pythonpath = os.pathsep.join(filter(None, [str(REPO_ROOT), os.environ.get("PYTHONPATH")]))
    out = subprocess.run(
        [sys.executable, "-m", "trio_tcp.notebook", "--refresh", str(path), "--timeout", "20"],
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": pythonpath},
        timeout=60,
    )
    assert out.returncode == 0, out.stderr
    [cell] = nbformat.read(path, as_version=4).cells  # type: ignore[no-untyped-call]
    assert cell.outputs[0]["text"] == "42\n"


def test_start_with_a_name_replaces_the_previous_task(trio_bg: tnb.BackgroundTrio) -> None:
    """Starting under a name again stops the old task first: its port is refused, the new one
    serves (a re-run cell replaces its server)."""
    first = trio_bg.start_sync(serve_echo, name="echo")
    assert ask(first, b"one") == b"one"
    second = trio_bg.start_sync(serve_echo, name="echo")
    assert ask(second, b"two") == b"two"
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", first), timeout=5).close()
    other = trio_bg.start_sync(serve_echo, name="other")
    assert ask(second, b"still") == b"still" and ask(other, b"too") == b"too"


def test_run_from_a_trio_cell(trio_bg: tnb.BackgroundTrio) -> None:
    """Under %autoawait trio a cell is its own trio.run: await run() works there too."""

    async def cell() -> int:
        return await trio_bg.run(add, 2, 3)

    assert trio.run(cell) == 5
