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


def execute(name: str) -> list[Any]:
    """Run one notebook in a fresh kernel and return its code cells, with outputs."""
    notebook = nbformat.read(NOTEBOOKS / name, as_version=4)
    for cell in notebook.cells:
        if cell.cell_type == "code":
            cell.outputs = []  # nothing from the committed run can satisfy an assertion
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


def check_01(out: str) -> None:
    # Twice with plain Trio? once; with trio_tcp twice (trio client and plain socket client).
    assert out.count("server got <Buffer 0c 22>") == 3, out
    assert "connections accepted: 1, bytes received: 2" in out
    assert "background run closed: True" in out


def check_02(out: str) -> None:
    assert "writes: [5, 5, 5, 5, 5, 5, 5, 5, 5, 5]\nreads:  [50]" in out
    chunks = re.search(r"reads:  (\d+) chunks, \d+ to (\d+) bytes, 1048576 in all", out)
    assert chunks is not None, out
    assert int(chunks[1]) >= 16 and int(chunks[2]) <= 65536
    assert "-> frames [b'hello']" in out and "-> frames [b'world']" in out
    assert "frame: b'hello'\nframe: b''\nframe: b'\\n is fine'" in out
    assert "greeting: b'hi there'\nline: b'first line'\nline: b'second line'" in out
    assert "client got: [b'FIRST LINE', b'SECOND LINE']" in out


def check_03(out: str) -> None:
    transcript = (
        "--- cy heard:\n    * cy joined\n    ada: hello from ada\n"
        "    bob: hello from bob\n    cy: hello from cy\n"
    )
    assert transcript in out
    assert "--- ada heard:\n    * ada joined\n    * bob joined\n    * cy joined\n" in out
    dropped = re.search(r"lines dropped: fast client (\d+) \| slow client (\d+)", out)
    assert dropped is not None and dropped[1] == "0" and int(dropped[2]) > 0, out
    naive, queued = (float(t) for t in re.findall(r"last line after ([\d.]+) s", out))
    # The in-turn broadcaster waited for the slow reader (a floor: a loaded machine only
    # adds time); the queued one did not, so it finished first.
    assert naive >= 1.0 and queued < naive


def check_04(out: str) -> None:
    assert "move_on_after: cancelled_caught=True" in out
    assert "fail_after: raised TooSlowError" in out
    silence = re.search(r"closed by the server ([\d.]+) s after .*timed_out=1", out)
    assert silence is not None and float(silence[1]) >= 0.35, out  # never before the timeout
    assert "handler raised\n    ZeroDivisionError" in out
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


def check_05(out: str) -> None:
    assert "memory pair: [b'<HELLO>', b'<WORLD>']" in out
    for fault in ["none", "rechunk(1)", "rechunk(random)", "delay(10 ms)"]:
        assert re.search(rf"by_lines  {re.escape(fault)} +right", out), fault
    assert re.search(r"by_chunks rechunk\(1\) +WRONG \[b'<H>', b'<E>'\]", out)
    assert re.search(r"by_lines  eof_after\(8\) +break: ", out)
    sweep = re.search(r"cancellation sweep: (\d+) points covered, no leak", out)
    assert sweep is not None and int(sweep[1]) >= 10, out
    assert "the sweep found: " in out and "tasks leaked" in out
    assert "PASSED test_shout.py::test_shouts_on_every_transport[tcp]" in out
    assert re.search(r"^5 passed in", out, re.MULTILINE)


def check_06(out: str) -> None:
    rows = re.findall(
        r"^(trio_tcp|plain Trio|asyncio) +([\d,]+) +([\d.]+) +([\d,]+) MB/s", out, re.M
    )
    assert [row[0] for row in rows] == ["trio_tcp", "plain Trio", "asyncio"], out
    for _, round_trips, _, megabytes in rows:
        assert int(round_trips.replace(",", "")) > 0 and int(megabytes.replace(",", "")) > 0
    assert "background run closed: True" in out


CHECKS = {
    "01-your-first-tcp-server.ipynb": check_01,
    "02-bytes-not-messages.ipynb": check_02,
    "03-many-clients.ipynb": check_03,
    "04-cancellation-timeouts-shutdown.ipynb": check_04,
    "05-testing-your-server.ipynb": check_05,
    "06-how-fast-is-it.ipynb": check_06,
}


def test_every_notebook_is_checked() -> None:
    """Each notebook in notebooks/ has a check here (a new one cannot go untested)."""
    assert sorted(p.name for p in NOTEBOOKS.glob("*.ipynb")) == sorted(CHECKS)


@pytest.mark.parametrize("name", sorted(CHECKS))
def test_notebook_runs_and_shows_its_story(name: str) -> None:
    """The notebook runs clean from a fresh kernel, draws a figure and prints what it teaches."""
    cells = execute(name)
    check_clean(cells)
    assert count_pngs(cells) >= 1
    CHECKS[name](stdout_of(cells))


@pytest.mark.parametrize("name", sorted(CHECKS))
def test_committed_notebook_has_outputs(name: str) -> None:
    """The committed notebook carries the outputs of a real run, so it reads well rendered."""
    notebook = nbformat.read(NOTEBOOKS / name, as_version=4)
    code = [cell for cell in notebook.cells if cell.cell_type == "code"]
    assert all(cell.get("execution_count") for cell in code), name
    assert count_pngs(code) >= 1
    check_clean(code)
