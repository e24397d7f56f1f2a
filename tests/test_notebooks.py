"""The teaching notebooks run headless from a fresh kernel and show what they say they show.

Plain sync tests (nbmake crashes under pytest-trio's trio_mode): each notebook is executed with
nbclient on this Python's own ipykernel, with the repository on PYTHONPATH, in memory only (the
committed outputs are refreshed by ``make notebooks``, never by the tests).
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

import pytest

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")
pytest.importorskip("matplotlib")
pytest.importorskip("ipykernel")

from jupyter_client.kernelspec import KernelSpecManager  # noqa: E402
from jupyter_client.manager import AsyncKernelManager  # noqa: E402

REPO_ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = REPO_ROOT / "notebooks"
CELL_TIMEOUT = 60  # seconds; each notebook runs in a few


def execute(name: str, *, every_cell_twice: bool = False) -> list[Any]:
    """Run one notebook in a fresh kernel and return its code cells, with outputs.

    ``every_cell_twice``: each code cell runs again right after itself, as a learner
    re-running cells would.
    """
    notebook = nbformat.read(NOTEBOOKS / name, as_version=4)
    for cell in notebook.cells:
        if cell.cell_type == "code":
            cell.outputs = []  # nothing from the committed run can satisfy an assertion
    if every_cell_twice:
        cells = []
        for cell in notebook.cells:
            cells.append(cell)
            if cell.cell_type == "code":
                again = nbformat.from_dict(dict(cell))
                again["id"] = cell["id"] + "-again"
                cells.append(again)
        notebook.cells = cells
    km = AsyncKernelManager(
        kernel_name="python3", kernel_spec_manager=KernelSpecManager(kernel_dirs=[])
    )
    client = nbclient.NotebookClient(
        notebook, km=km, timeout=CELL_TIMEOUT, resources={"metadata": {"path": str(NOTEBOOKS)}}
    )
    pythonpath = os.pathsep.join(filter(None, [str(REPO_ROOT), os.environ.get("PYTHONPATH")]))
    client.execute(cleanup_kc=True, env={**os.environ, "PYTHONPATH": pythonpath})
    return [cell for cell in notebook.cells if cell.cell_type == "code"]


def stdout_of(cells: list[Any]) -> str:
    return "".join(o["text"] for c in cells for o in c.outputs if o.get("name") == "stdout")


def check_clean(cells: list[Any]) -> None:
    """No errors and nothing on stderr (warnings, logged tracebacks) in any cell."""
    for index, cell in enumerate(cells):
        for output in cell.outputs:
            assert output["output_type"] != "error", (index, output.get("ename"))
            assert output.get("name") != "stderr", (index, output.get("text"))


def count_pngs(cells: list[Any]) -> int:
    return sum("image/png" in o.get("data", {}) for c in cells for o in c.outputs)


def check_exercise(out: str, exercise: str, problem: str) -> None:
    """The exercise's first try is flagged, in plain words (the check is tested on its own
    against a reference solution and a wrong answer in tests/test_lessons.py)."""
    verdict = re.search(rf"^NOT YET {re.escape(exercise)} \(check \d+\): (.*)$", out, re.M)
    assert verdict is not None, out
    assert problem in verdict[1], verdict[1]


def check_01(out: str) -> None:
    # The script's process, the notebook's plain-Trio server, the trio_tcp server twice
    # (a Trio client, then `trio-tcp send`): four times the tutorial's line.
    assert "the server process says: listening on 127.0.0.1:" in out
    assert "the server process printed: server got <Buffer 0c 22>" in out
    assert out.count("the sender process printed: sender: sent 12 and 34") == 2
    assert out.count("server got <Buffer 0c 22>") == 4, out
    assert "after the block: every task of the nursery has finished" in out
    order = re.search(r"order of steps: (.*)", out)
    assert order is not None and "G0 G1 G2" in order[1], out
    assert "gave up after 0.1 s: cancelled_caught=True\nnursery cancelled" in out
    assert "connections accepted: 1, bytes received: 2" in out
    assert "trio-tcp send exited with 0" in out
    check_exercise(out, "echo", "returns after one read")
    assert "background run closed: True" in out


def check_02(out: str) -> None:
    assert "writes: [5, 5, 5, 5, 5, 5, 5, 5, 5, 5]\nreads:  [50]" in out
    chunks = re.search(r"reads:  (\d+) chunks, \d+ to (\d+) bytes, 1048576 in all", out)
    assert chunks is not None, out
    assert int(chunks[1]) >= 9 and int(chunks[2]) <= 124 * 1024  # 64 KiB, 124 while full
    assert "-> frames [b'hello']" in out and "-> frames [b'world']" in out
    assert "frame: b'hello'\nframe: b''\nframe: b'\\n is fine'" in out
    assert "greeting: b'hi there'\nline: b'first line'\nline: b'second line'" in out
    assert "client got: [b'FIRST LINE', b'SECOND LINE']" in out
    check_exercise(out, "line length", "answer per chunk")


def check_03(out: str) -> None:
    naive = dict(re.findall(r"^(ada|bob) saw (\d+) of its 200 lines come back, then", out, re.M))
    assert set(naive) == {"ada", "bob"} and min(map(int, naive.values())) < 200, out
    assert "the first handler crash: BusyResourceError" in out
    queued = re.findall(r"^(ada|bob) saw 200 of its 200 lines come back, the last after", out, re.M)
    assert sorted(queued) == ["ada", "bob"], out
    dropped = re.search(r"crashes: 0; lines zed missed because its queue was full: (\d+)", out)
    assert dropped is not None and int(dropped[1]) > 0, out
    transcript = (
        "--- cy heard:\n    * cy joined\n    ada: hello from ada\n"
        "    bob: hello from bob\n    cy: hello from cy\n"
    )
    assert transcript in out
    assert "--- ada heard:\n    * ada joined\n    * bob joined\n    * cy joined\n" in out
    check_exercise(out, "chat room", "the member who never reads")


def check_04(out: str) -> None:
    assert "...Cancelled, raised at the await\nfinally blocks run" in out
    assert "after the scope: cancelled_caught=True" in out
    assert "shield=False: the cleanup was cancelled at its first await" in out
    assert "shield=True: the cleanup finished" in out
    assert "move_on_after: cancelled_caught=True" in out
    assert "fail_after: raised TooSlowError" in out
    silence = re.search(r"closed by the server ([\d.]+) s after .*timed_out=1", out)
    assert silence is not None and float(silence[1]) >= 0.35, out  # never before the timeout
    assert "handler raised\n    ZeroDivisionError" in out
    assert out.count("ZeroDivisionError") == 1  # the log handler is installed once
    assert "first client:  [b'42']\nsecond client: [b'2']\nfailed=1" in out
    assert "a new client is refused" in out
    # Real time (a kernel has no mock clock): the story's order, and floors only (a loaded
    # machine adds time, never removes it). The grace period starts at 0.3 s and lasts 0.5 s.
    ends = dict(re.findall(r"(polite|busy|stubborn) +(?:returned|cancelled) +at t=([\d.]+)", out))
    assert set(ends) == {"polite", "busy", "stubborn"}, out
    assert "polite   returned" in out and "heard ['goodbye']" in out
    assert "busy     returned" in out and "heard ['job done']" in out
    assert "stubborn cancelled" in out
    polite, busy, stubborn = (float(ends[role]) for role in ("polite", "busy", "stubborn"))
    assert polite < busy < stubborn, out
    assert polite >= 0.25 and busy >= 0.65 and stubborn >= 0.75, out
    check_exercise(out, "polite handler", "grace period ended")


def check_05(out: str) -> None:
    assert "memory pair: [b'<HELLO>', b'<WORLD>']" in out
    for fault in ["none", "rechunk(1)", "rechunk(random)", "delay(10 ms)"]:
        assert re.search(rf"by_lines  {re.escape(fault)} +right", out), fault
    assert re.search(r"by_chunks rechunk\(1\) +WRONG \[b'<H>', b'<E>'\]", out)
    # What the client really sees: a clean end of stream in both cases (in memory).
    assert re.search(r"by_lines  eof_after\(8\) +break: EndOfStream", out)
    assert re.search(r"by_lines  reset_after\(8\) +break: EndOfStream", out)
    sweep = re.search(r"cancellation sweep: (\d+) points covered, no leak", out)
    assert sweep is not None and int(sweep[1]) >= 15, out  # at least every stream call
    assert "the sweep found: " in out and "tasks leaked" in out
    assert "PASSED test_shout.py::test_shouts_on_every_transport[tcp]" in out
    assert re.search(r"^5 passed in", out, re.MULTILINE)
    check_exercise(out, "shout", "a chunk is not a line")


def check_06(out: str) -> None:
    published = REPO_ROOT / "bench" / "published.json"
    if published.exists():
        assert "figures from published.json, generated " in out
        assert re.search(r"^--- .+\n  trio_tcp +[\d,.]+ ", out, re.M), out
    else:
        assert "bench/published.json is not there" in out
    assert "demonstration only (one process, one run, fixed order):" in out
    rows = re.findall(
        r"^(trio_tcp|plain Trio|asyncio) +([\d,]+) +([\d.]+) +([\d,]+) MB/s", out, re.M
    )
    assert [row[0] for row in rows] == ["trio_tcp", "plain Trio", "asyncio"], out
    for _, round_trips, _, megabytes in rows:
        assert int(round_trips.replace(",", "")) > 0 and int(megabytes.replace(",", "")) > 0
    check_exercise(out, "batching", "200 sends")
    assert "background run closed: True" in out


def check_07(out: str) -> None:
    low, high = (
        int(n) for n in re.findall(r"ephemeral ports on this machine: (\d+) to (\d+)", out)[0]
    )
    client = re.search(r"client connected from \('127.0.0.1', (\d+)\)", out)
    assert client is not None and low <= int(client[1]) <= high, out
    before_accept = out.split("after connect, before accept:")[1].split("accepted:")[0]
    assert before_accept.count("ESTABLISHED") == 2, out  # the kernel's handshake, no accept yet
    assert "ConnectionRefusedError (errno 111" in out
    assert "client reads again: EndOfStream" in out
    assert "client reads again: BrokenResourceError: [Errno 104]" in out
    assert "server aclose(): FIN: client CLOSE_WAIT, server FIN_WAIT2" in out
    assert "client aclose(): FIN: client (gone), server TIME_WAIT" in out
    assert "second write: BrokenResourceError: [Errno 32]" in out
    assert "client reads the answer after its own FIN: b'41 bytes received'" in out
    assert "CLOSE_WAIT" in out.split("client sent its FIN, server read to the end:")[1]
    assert re.search(r"partial send: asked for 65536 bytes, the kernel took \d+", out)
    assert "send, then read:          stuck: gave up after 1 s" in out
    assert "send and read together:   both done" in out
    assert "01 2c read as little-endian:   11265" in out
    check_exercise(out, "byte count", "client's FIN")
    assert "background run closed: True" in out


CHECKS = {
    "01-your-first-tcp-server.ipynb": check_01,
    "02-bytes-not-messages.ipynb": check_02,
    "03-many-clients.ipynb": check_03,
    "04-cancellation-timeouts-shutdown.ipynb": check_04,
    "05-testing-your-server.ipynb": check_05,
    "06-how-fast-is-it.ipynb": check_06,
    "07-on-the-wire.ipynb": check_07,
}


def test_every_notebook_is_checked() -> None:
    """Each notebook in notebooks/ has a check here (a new one cannot go untested)."""
    assert sorted(p.name for p in NOTEBOOKS.glob("*.ipynb")) == sorted(CHECKS)


def test_seven_notebooks_each_ending_with_an_exercise_and_its_check() -> None:
    """Seven or more notebooks; each calls one of trio_tcp.lessons' exercise checks."""
    assert len(CHECKS) >= 7
    for name in CHECKS:
        notebook = nbformat.read(NOTEBOOKS / name, as_version=4)
        sources = [cell.source for cell in notebook.cells if cell.cell_type == "code"]
        assert any(re.search(r"lessons\.check_\w+_exercise", source) for source in sources), name


SOLUTIONS = {
    "check_echo_exercise": "solution_echo",
    "check_line_length_exercise": "solution_line_length",
    "check_chat_exercise": "solution_chat",
    "check_polite_exercise": "solution_polite",
    "check_shout_exercise": "solution_shout",
    "check_batching_exercise": "solution_batching",
    "check_byte_count_exercise": "solution_byte_count",
}


@pytest.mark.parametrize("name", sorted(CHECKS))
def test_exercise_check_cell_passes_the_solution_and_flags_the_first_try(name: str) -> None:
    """The notebook's check cell, run on the notebook's own first try (flagged) and on the
    reference solution (passes); no kernel needed."""
    import trio

    import trio_tcp
    from trio_tcp import lessons
    from trio_tcp.lessons import solutions

    notebook = nbformat.read(NOTEBOOKS / name, as_version=4)
    sources = [cell.source for cell in notebook.cells if cell.cell_type == "code"]
    [(index, found)] = [
        (i, m)
        for i, source in enumerate(sources)
        if (m := re.search(r"lessons\.(check_\w+_exercise), (\w+)\)", source))
    ]
    check, learner = getattr(lessons, found[1]), found[2]
    namespace: dict[str, Any] = {"trio": trio, "trio_tcp": trio_tcp}
    exec(sources[index - 1], namespace)  # the exercise's first try, as the notebook has it
    first_try = trio.run(check, namespace[learner])
    assert not first_try.passed, str(first_try)
    reference = trio.run(check, getattr(solutions, SOLUTIONS[found[1]]))
    assert reference.passed, str(reference)


@pytest.mark.parametrize("name", sorted(CHECKS))
def test_notebook_runs_and_shows_its_story(name: str) -> None:
    """The notebook runs clean from a fresh kernel, draws a figure and prints what it teaches."""
    cells = execute(name)
    check_clean(cells)
    assert count_pngs(cells) >= 1
    CHECKS[name](stdout_of(cells))


@pytest.mark.parametrize(
    "name", ["01-your-first-tcp-server.ipynb", "04-cancellation-timeouts-shutdown.ipynb"]
)
def test_rerunning_every_cell_is_harmless(name: str) -> None:
    """Every cell run twice in a row: no error, no warning, no doubled log line (a server
    started again replaces the previous one; the log handler is installed once)."""
    cells = execute(name, every_cell_twice=True)
    check_clean(cells)
    out = stdout_of(cells)
    if name.startswith("04"):
        assert out.count("handler raised") == 2, out  # the calculator cell ran twice
    else:
        assert out.count("the server process printed: server got <Buffer 0c 22>") == 2, out


@pytest.mark.parametrize("name", sorted(CHECKS))
def test_committed_notebook_has_outputs(name: str) -> None:
    """The committed notebook carries the outputs of a real run, so it reads well rendered."""
    notebook = nbformat.read(NOTEBOOKS / name, as_version=4)
    code = [cell for cell in notebook.cells if cell.cell_type == "code"]
    assert all(cell.get("execution_count") for cell in code), name
    assert count_pngs(code) >= 1
    check_clean(code)
