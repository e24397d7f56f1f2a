"""FdWriter: the event loop only queues; a full pipe makes only its writer's key wait."""

from __future__ import annotations

import contextlib
import errno
import os
from collections.abc import Iterator

import pytest
import trio
import trio.testing

from trio_tcp._output import FdWriter, report_dropped, write_if_writable

GUARD = 20


@pytest.fixture
def pipe() -> Iterator[tuple[int, int]]:
    read_end, write_end = os.pipe()
    yield read_end, write_end
    for fd in (read_end, write_end):
        with contextlib.suppress(OSError):
            os.close(fd)


def read_available(fd: int) -> bytes:
    os.set_blocking(fd, False)
    data = bytearray()
    try:
        while chunk := os.read(fd, 65536):
            data += chunk
    except BlockingIOError:
        pass
    return bytes(data)


async def test_a_blocked_pipe_makes_only_its_key_wait(pipe: tuple[int, int]) -> None:
    """With the pipe full, key A waits past its limit; the loop and key B go on."""
    read_end, write_end = pipe
    writer = FdWriter(write_end, max_pending_per_key=1024)
    writer.attach()
    line = b"x" * 99 + b"\n"
    with trio.fail_after(GUARD):
        for _ in range(700):  # 70 KB: more than the 64 KiB pipe holds
            writer.write_nowait(line)
        blocked_a = trio.Event()

        async def key_a() -> None:
            for _ in range(20):  # 2 KB > 1 KiB limit: waits while the pipe is full
                await writer.write("a", line)
            blocked_a.set()

        async with trio.open_nursery() as nursery:
            nursery.start_soon(key_a)
            await trio.sleep(0.2)
            assert not blocked_a.is_set()  # still waiting behind the full pipe
            await writer.write("b", line)  # another key is not held up
            assert not await writer.drain(0.1)
            first = read_available(read_end)
            assert len(first) > 60_000  # the pipe was full

            def read_the_rest() -> bytes:
                os.set_blocking(read_end, True)
                rest = bytearray()
                while len(first) + len(rest) < 721 * len(line):  # everything written
                    rest += os.read(read_end, 65536)
                return bytes(rest)

            rest = await trio.to_thread.run_sync(read_the_rest, abandon_on_cancel=True)
            await blocked_a.wait()
        assert await writer.drain(5)
    assert (first + rest).count(b"\n") == 721
    assert writer.dropped_lines == 0


async def test_epipe_marks_the_writer_broken_and_calls_back(pipe: tuple[int, int]) -> None:
    """A reader that went away: on_broken is called once; later output is dropped, counted."""
    read_end, write_end = pipe
    os.close(read_end)
    writer = FdWriter(write_end)
    writer.attach()
    broken = trio.Event()
    seen: list[int | None] = []

    def on_broken(exc: OSError) -> None:
        seen.append(exc.errno)
        broken.set()

    writer.on_broken = on_broken
    with trio.fail_after(GUARD):
        await writer.write("k", b"hello\n")
        await broken.wait()
        await writer.write("k", b"more\n")
        writer.write_nowait(b"and more\n")
    assert seen == [errno.EPIPE]
    assert writer.dropped_lines == 3


async def test_undelivered_output_is_reported_in_one_line(pipe: tuple[int, int]) -> None:
    """What a blocked pipe never took is counted in one line on the report descriptor."""
    _read_end, write_end = pipe
    report_read, report_write = os.pipe()
    try:
        writer = FdWriter(write_end)
        writer.attach()
        with trio.fail_after(GUARD):
            for _ in range(2000):
                writer.write_nowait(b"y" * 99 + b"\n")
            assert not await writer.drain(0.2)
        writer.discard_queued()
        report_dropped({"stdout": writer}, report_write)
        report = read_available(report_read).decode()
        assert report.startswith("trio-tcp: output not written (nobody was reading it): ")
        assert report.count("\n") == 1 and "bytes) of stdout" in report
    finally:
        os.close(report_read)
        os.close(report_write)


def test_write_if_writable_skips_a_full_pipe(pipe: tuple[int, int]) -> None:
    """A full pipe is skipped (no blocking), an empty one takes the line."""
    _read_end, write_end = pipe
    assert write_if_writable(write_end, b"ok\n")
    os.set_blocking(write_end, False)
    try:
        while True:
            os.write(write_end, b"z" * 4096)
    except BlockingIOError:
        pass
    os.set_blocking(write_end, True)
    assert not write_if_writable(write_end, b"skipped\n")
