"""cancellation_sweep: covers every point of the CLI's modes, and catches cancellation bugs."""

from __future__ import annotations

import pytest
import trio
import trio.testing

from trio_tcp import Connection
from trio_tcp._cli import MODES, make_mode
from trio_tcp.testing import CheckFailedError, cancellation_sweep


async def echo_script(client: Connection) -> object:
    await client.send_all(b"hello")
    got = await client.receive_exactly(5)
    await client.send_eof()
    return got, await client.receive_some()


async def send_only_script(client: Connection) -> object:
    await client.send_all(bytes([12, 34]))
    await client.send_eof()
    return await client.receive_some()


async def lines_script(client: Connection) -> object:
    await client.send_all(b"ab\ncd\n")
    await client.send_eof()
    received = bytearray()
    while chunk := await client.receive_some():
        received += chunk
    return bytes(received)


async def test_sweep_echo_mode_covers_every_stream_call(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """Echoing 5 bytes one at a time is 11 calls (5 receives, 5 sends, 1 EOF): 11 points."""
    with trio.fail_after(1000):
        report = await cancellation_sweep(make_mode("echo"), echo_script)
    assert report.points == 11
    assert report.operations == ["receive_some", "send_all"] * 5 + ["receive_some"]
    assert report.result == (b"hello", b"")
    assert [run.index for run in report.runs] == list(range(1, 12))
    assert all("_cli.py" in run.location for run in report.runs)
    assert "echo_mode" in report.runs[1].location
    assert report.runs[-1].client_outcome == "completed"  # cancelled at the final EOF read
    assert report.runs[0].client_outcome.startswith("EndOfStream")


async def test_sweep_print_mode_finds_no_leak(
    autojump_clock: trio.testing.MockClock, capsys: pytest.CaptureFixture[str]
) -> None:
    """The print mode: 2 one-byte reads and the EOF read are 3 points, each handled cleanly."""
    with trio.fail_after(1000):
        report = await cancellation_sweep(make_mode("print"), send_only_script)
    assert report.points == 3
    assert report.result == b""
    printed = capsys.readouterr().out
    assert "<Buffer 0c>" in printed and "<Buffer 22>" in printed


@pytest.mark.skipif("lines" not in MODES, reason="the CLI has no lines mode yet")
async def test_sweep_lines_mode_finds_no_leak(
    autojump_clock: trio.testing.MockClock, capsys: pytest.CaptureFixture[str]
) -> None:
    """The lines mode: 6 one-byte reads and the EOF read are 7 points, each handled cleanly."""
    with trio.fail_after(1000):
        report = await cancellation_sweep(make_mode("lines"), lines_script)
    assert report.points == 7
    assert report.operations == ["receive_some"] * 7
    assert " cd\n" in capsys.readouterr().out


async def test_sweep_reports_a_task_leaked_on_cancellation(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """Cleanup outside `finally` leaks a background task; the sweep names point and line."""
    async with trio.open_nursery() as outer:

        async def watcher(scope: trio.CancelScope) -> None:
            with scope:
                await trio.sleep_forever()

        async def handler(conn: Connection) -> None:
            scope = trio.CancelScope()
            outer.start_soon(watcher, scope, name="leaky-watcher")
            data = await conn.receive_exactly(5)  # LEAK LINE
            await conn.send_all(data)
            await conn.receive_some()
            scope.cancel()  # not in a finally: skipped when cancelled

        with trio.fail_after(1000), pytest.raises(CheckFailedError) as caught:
            await cancellation_sweep(handler, echo_script)
        outer.cancel_scope.cancel()
    error = caught.value
    assert error.point == 1
    assert "leaky-watcher" in str(error)
    assert error.location is not None
    assert "test_testing_sweep.py" in error.location and "in handler" in error.location
    assert _line_of("# LEAK LINE") in error.location


async def test_sweep_reports_a_server_that_stops_serving(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """A lock released outside `finally` stays held after a cancel: the next client fails."""
    lock = trio.Semaphore(1)

    async def handler(conn: Connection) -> None:
        await lock.acquire()
        data = await conn.receive_exactly(5)
        await conn.send_all(data)
        lock.release()
        await conn.receive_some()

    with trio.fail_after(1000), pytest.raises(CheckFailedError, match="no longer serves") as caught:
        await cancellation_sweep(handler, echo_script, timeout=5)
    assert caught.value.point == 1


async def test_sweep_reports_data_corrupted_by_a_cancelled_exchange(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """A buffer shared across connections keeps a cancelled client's bytes: data duplicated."""
    shared = bytearray()

    async def handler(conn: Connection) -> None:
        async for chunk in conn:
            shared.extend(chunk)
            if len(shared) >= 5:
                await conn.send_all(bytes(shared[:5]))
                del shared[:5]

    with trio.fail_after(1000), pytest.raises(CheckFailedError, match="correctly") as caught:
        await cancellation_sweep(handler, echo_script)
    assert caught.value.point == 2  # the first byte was read, then the read of the second


async def test_sweep_reports_a_handler_that_ignores_cancellation(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """A handler that shields a minute-long cleanup when cancelled is reported as a hang."""

    async def handler(conn: Connection) -> None:
        try:
            await echo_all(conn)
        except trio.Cancelled:
            # sleep_forever here would hang the sweep itself: nothing can abandon a task
            with trio.CancelScope(shield=True):
                await trio.sleep(60)
            raise

    with trio.fail_after(1000), pytest.raises(CheckFailedError, match="did not finish"):
        await cancellation_sweep(handler, echo_script, timeout=3)


async def test_sweep_reports_a_handler_that_raises_when_cancelled(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """Turning Cancelled into another exception is reported with the point."""

    async def handler(conn: Connection) -> None:
        try:
            await echo_all(conn)
        except trio.Cancelled:
            raise RuntimeError("cleanup failed") from None

    with trio.fail_after(1000), pytest.raises(CheckFailedError, match="cleanup failed") as caught:
        await cancellation_sweep(handler, echo_script)
    assert caught.value.point == 1


async def test_sweep_reports_bytes_an_uncancelled_run_never_sends(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """Extra bytes after a cancellation break the prefix rule."""

    async def handler(conn: Connection) -> None:
        try:
            await echo_all(conn)
        except trio.Cancelled:
            with trio.CancelScope(shield=True):
                await conn.send_all(b"!")
            raise

    with trio.fail_after(1000), pytest.raises(CheckFailedError, match="not a prefix"):
        await cancellation_sweep(handler, echo_script)


async def echo_all(conn: Connection) -> None:
    async for chunk in conn:
        await conn.send_all(chunk)


def _line_of(marker: str) -> str:
    with open(__file__) as source:
        for number, line in enumerate(source, 1):
            if marker in line and "_line_of" not in line:
                return f":{number} "
    raise AssertionError(marker)
