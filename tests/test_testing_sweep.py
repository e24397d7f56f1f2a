"""cancellation_sweep: covers every point of the CLI's modes, and catches cancellation bugs."""

from __future__ import annotations

import os
import socket

import pytest
import trio
import trio.testing

from trio_tcp import Connection
from trio_tcp._cli import MODES, make_mode
from trio_tcp.testing import CheckFailedError, cancellation_sweep

HERE = os.path.relpath(__file__)


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


async def test_sweep_echo_mode_covers_every_wait(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """Echoing 5 bytes one at a time: every wait inside each read and write, twice, is a point."""
    with trio.fail_after(1000):
        report = await cancellation_sweep(make_mode("echo"), echo_script)
    # A one-byte memory-stream read waits 3 times (two conflict-detecting checkpoints, then
    # the queue), a write twice: 5 x (3 + 2) + the EOF read's 3 = 28 waits, each cancelled
    # while waiting and as it ends: 56 points.
    assert report.points == 56
    per_byte = ["Connection.receive_some"] * 6 + ["Connection.send_all"] * 4
    assert report.operations == per_byte * 5 + ["Connection.receive_some"] * 6
    assert report.result == (b"hello", b"")
    assert [run.index for run in report.runs] == list(range(1, 57))
    assert [(run.step, run.when) for run in report.runs[:3]] == [
        (1, "waiting"),
        (1, "woken"),
        (2, "waiting"),
    ]
    assert {run.task for run in report.runs} == {"handler"}
    assert all("_cli.py" in run.location for run in report.runs)
    assert "echo_mode" in report.runs[3].location
    assert report.runs[-1].client_outcome == "completed"  # cancelled at the final EOF read
    assert report.runs[0].client_outcome.startswith("EndOfStream")


async def test_sweep_print_mode_finds_no_leak(
    autojump_clock: trio.testing.MockClock, capsys: pytest.CaptureFixture[str]
) -> None:
    """The print mode: 2 one-byte reads and the EOF read through `conn.chunks()` wait 9
    times (a chunk received at the boundary is that step's one checkpoint): 18 points,
    all clean."""
    with trio.fail_after(1000):
        report = await cancellation_sweep(make_mode("print"), send_only_script)
    assert report.points == 18
    assert report.operations == ["_ReadIterator.__anext__"] * 18
    assert report.result == b""
    printed = capsys.readouterr().out
    assert "<Buffer 0c>" in printed and "<Buffer 22>" in printed


@pytest.mark.skipif("lines" not in MODES, reason="the CLI has no lines mode yet")
async def test_sweep_lines_mode_finds_no_leak(
    autojump_clock: trio.testing.MockClock, capsys: pytest.CaptureFixture[str]
) -> None:
    """The lines mode: 6 one-byte reads and the EOF read wait 21 times: 42 points, all clean."""
    with trio.fail_after(1000):
        report = await cancellation_sweep(make_mode("lines"), lines_script)
    assert report.points == 42
    assert report.operations == ["_ReadIterator.__anext__"] * 42
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
    # Point 1: the acquire did not block (the permit is taken) and the read after it raises.
    assert caught.value.point == 1
    assert "waits at" in str(caught.value) and "in handler" in str(caught.value)


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
    # Points 1-6: the first byte's three waits; point 7: waiting in the second read, with
    # the first byte already in the shared buffer.
    assert caught.value.point == 7


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


async def test_sweep_flags_a_handler_that_swallows_cancelled(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """`except trio.Cancelled: return` fails the sweep in plain words, with point and line."""

    async def handler(conn: Connection) -> None:
        try:
            data = await conn.receive_exactly(5)  # SWALLOW LINE
        except trio.Cancelled:
            return
        await conn.send_all(data)
        await conn.receive_some()

    with trio.fail_after(1000), pytest.raises(CheckFailedError) as caught:
        await cancellation_sweep(handler, echo_script)
    assert "swallowed trio.Cancelled" in str(caught.value)
    assert caught.value.point == 1
    assert caught.value.location is not None
    assert _line_of("# SWALLOW LINE") in caught.value.location


async def test_sweep_flags_a_swallow_at_a_sleep_between_stream_calls(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """Swallowing at a `trio.sleep` (no stream call) is found too: it is a point now."""

    async def handler(conn: Connection) -> None:
        data = await conn.receive_exactly(5)
        try:
            await trio.sleep(1)  # SLEEP SWALLOW LINE
        except trio.Cancelled:
            return
        await conn.send_all(data)

    with trio.fail_after(1000), pytest.raises(CheckFailedError, match="swallowed") as caught:
        await cancellation_sweep(handler, echo_script)
    assert caught.value.location is not None
    assert _line_of("# SLEEP SWALLOW LINE") in caught.value.location
    assert "sleep" in str(caught.value)


async def test_sweep_flags_a_swallow_inside_a_nursery(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """Cancelled as a free lock is taken, the handler opens a nursery and swallows what
    surfaces from it (a Cancelled, or a group of them): still a swallow, with its line."""
    lock = trio.Lock()

    async def handler(conn: Connection) -> None:
        data = await conn.receive_exactly(5)
        async with lock:  # free: it takes the lock, then only yields
            pass
        try:
            async with trio.open_nursery():
                await trio.sleep(1)  # NURSERY SWALLOW LINE
        except BaseException:  # a Cancelled, or a group of them: swallowed
            return
        await conn.send_all(data)

    with trio.fail_after(1000), pytest.raises(CheckFailedError, match="swallowed") as caught:
        await cancellation_sweep(handler, echo_script)
    assert caught.value.location is not None
    assert _line_of("# NURSERY SWALLOW LINE") in caught.value.location
    # Cancelled at the lock (its acquire did not block: already done), it first surfaces
    # inside the nursery opened after the cancel.
    assert "(AsyncContextManagerMixin.__aenter__, while it waited" in str(caught.value)


async def test_sweep_accepts_a_shielded_write_that_never_sees_cancelled(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """A write inside a shield is not cancelled: returning after it is no swallow."""

    async def handler(conn: Connection) -> None:
        data = await conn.receive_exactly(5)
        with trio.CancelScope(shield=True):
            await conn.send_all(data)
        await conn.receive_some()

    with trio.fail_after(1000):
        report = await cancellation_sweep(handler, echo_script)
    assert report.points > 10


async def test_sweep_flags_a_lock_held_across_a_cancelled_wait(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """A release skipped by a cancelled `Event.wait` leaves the lock held: both lines named."""
    lock = trio.Lock()

    async def handler(conn: Connection) -> None:
        data = await conn.receive_exactly(5)
        await lock.acquire()  # ACQUIRE LINE
        ready = trio.Event()
        ready.set()
        await ready.wait()  # HELD LINE
        lock.release()  # not in a finally: skipped when the wait above is cancelled
        await conn.send_all(data)
        await conn.receive_some()

    with trio.fail_after(1000), pytest.raises(CheckFailedError, match="still held") as caught:
        await cancellation_sweep(handler, echo_script)
    message = str(caught.value)
    assert "trio.Lock acquired at" in message and _line_of("# ACQUIRE LINE") in message
    # The acquire did not block: cancelled "while waiting" there, Cancelled surfaces at the
    # next wait, with the lock held.
    assert caught.value.location is not None
    assert _line_of("# ACQUIRE LINE") in caught.value.location
    assert f"Cancelled surfaced at {HERE}{_line_of('# HELD LINE')}" in message


async def test_sweep_flags_a_task_leaked_between_stream_calls(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """A child spawned between stream calls and cancelled after a sleep leaks when that sleep
    is cancelled; only cancelling at the sleep (not at a stream call) finds it."""
    async with trio.open_nursery() as outer:

        async def pinger() -> None:
            await trio.sleep_forever()

        async def handler(conn: Connection) -> None:
            data = await conn.receive_exactly(5)
            scope = trio.CancelScope()

            async def guarded() -> None:
                with scope:
                    await pinger()

            outer.start_soon(guarded)  # SPAWN LINE
            await trio.sleep(1)  # LEAK SLEEP LINE
            scope.cancel()
            await conn.send_all(data)
            await conn.receive_some()

        with (
            trio.fail_after(1000),
            pytest.raises(CheckFailedError, match="still running") as caught,
        ):
            await cancellation_sweep(handler, echo_script)
        outer.cancel_scope.cancel()
    message = str(caught.value)
    assert "spawned at" in message and _line_of("# SPAWN LINE") in message
    assert "handler/1:guarded" in message
    assert caught.value.location is not None
    assert _line_of("# LEAK SLEEP LINE") in caught.value.location


async def _each_primitive(conn: Connection) -> None:
    """A handler that waits on each Trio primitive once, with a child task."""
    lock = trio.Lock()
    event = trio.Event()
    send, receive = trio.open_memory_channel[bytes](0)
    data = await conn.receive_exactly(2)  # P-STREAM

    async def child() -> None:
        await send.send(data)  # P-CHANNEL-SEND
        event.set()

    async with lock:  # P-LOCK
        await trio.sleep(1)  # P-SLEEP
    async with trio.open_nursery() as nursery:  # P-NURSERY
        nursery.start_soon(child)
        got = await receive.receive()  # P-CHANNEL-RECEIVE
        await event.wait()  # P-EVENT
    await conn.send_all(got)  # P-SEND


async def _two_bytes(client: Connection) -> object:
    await client.send_all(b"hi")
    return await client.receive_exactly(2)


async def test_sweep_points_cover_every_primitive_and_repeat(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """Lock, sleep, channel, event, nursery and child task are points; five sweeps agree."""
    reports = []
    for _ in range(5):
        with trio.fail_after(1000):
            reports.append(await cancellation_sweep(_each_primitive, _two_bytes))
    first = reports[0]
    assert all(report.locations == first.locations for report in reports)
    waits = [run for run in first.runs if run.when == "waiting"]
    seen = [(run.task, run.operation, run.location.split(" in ")[0]) for run in waits]
    here = HERE

    def at(marker: str) -> str:
        return here + _line_of(marker).rstrip()

    handler = [(op, where) for task, op, where in seen if task == "handler"]
    assert handler == [
        *[("Connection.receive_exactly", at("# P-STREAM"))] * 6,
        ("AsyncContextManagerMixin.__aenter__", at("# P-LOCK")),
        ("sleep", at("# P-SLEEP")),
        ("MemoryReceiveChannel.receive", at("# P-CHANNEL-RECEIVE")),
        ("Event.wait", at("# P-EVENT")),
        ("NurseryManager.__aexit__", at("# P-NURSERY")),
        *[("Connection.send_all", at("# P-SEND"))] * 4,
    ]
    child = [(task, op, where) for task, op, where in seen if task != "handler"]
    assert child == [("handler/1:child", "MemorySendChannel.send", at("# P-CHANNEL-SEND"))]
    assert first.points == 2 * len(waits)


@pytest.mark.parametrize("socket_kind", ["tcp", "unix"])
async def test_sweep_over_sockets_runs_the_production_stream(socket_kind: str) -> None:
    """Over real sockets the echo mode is swept through serve(); every point is tried."""
    if socket_kind == "unix" and not hasattr(socket, "AF_UNIX"):
        pytest.skip("no Unix sockets here")
    with trio.fail_after(120):
        report = await cancellation_sweep(
            make_mode("echo"),
            echo_script,
            transport=socket_kind,  # type: ignore[arg-type]
        )
    assert report.transport == socket_kind
    assert report.result == (b"hello", b"")
    # How often a socket read waits depends on timing; the final EOF read always waits.
    assert report.points >= 2
    assert report.points - report.skipped >= 1
    assert report.runs[-1].operation == "Connection.receive_some"
    assert all("_cli.py" in run.location for run in report.runs)


@pytest.mark.parametrize("socket_kind", ["tcp", "unix"])
async def test_sweep_over_sockets_flags_a_swallowing_handler(socket_kind: str) -> None:
    """The swallow check works over sockets too."""

    async def handler(conn: Connection) -> None:
        data = await conn.receive_exactly(5)
        await conn.send_all(data)
        try:
            await conn.receive_some()  # SOCKET SWALLOW LINE: waits for the client's EOF
        except trio.Cancelled:
            return

    with trio.fail_after(120), pytest.raises(CheckFailedError, match="swallowed") as caught:
        await cancellation_sweep(handler, echo_script, transport=socket_kind)  # type: ignore[arg-type]
    assert caught.value.location is not None
    assert _line_of("# SOCKET SWALLOW LINE") in caught.value.location  # where it was caught


async def test_sweep_rejects_an_unknown_transport() -> None:
    """A typo in the transport is a ValueError, not a silent memory sweep."""
    with pytest.raises(ValueError, match="transport"):
        await cancellation_sweep(echo_all, echo_script, transport="udp")  # type: ignore[arg-type]


async def echo_all(conn: Connection) -> None:
    async for chunk in conn:
        await conn.send_all(chunk)


def _line_of(marker: str) -> str:
    with open(__file__) as source:
        for number, line in enumerate(source, 1):
            if marker in line and "_line_of" not in line:
                return f":{number} "
    raise AssertionError(marker)
