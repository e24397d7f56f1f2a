"""check_line_handler / check_length_prefixed_handler: pass correct handlers, catch wrong ones."""

from __future__ import annotations

import math

import pytest
import trio
import trio.testing

from trio_tcp import Connection
from trio_tcp.framing import IncompleteFrameError, LengthPrefixFramer
from trio_tcp.testing import CheckFailedError, check_length_prefixed_handler, check_line_handler

FRAMER = LengthPrefixFramer(4)


# ---------------------------------------------------------------- line handlers


async def upper_lines(conn: Connection) -> None:
    async for line in conn.lines():
        await conn.send_all(line.upper() + b"\n")


async def test_line_check_accepts_a_correct_handler(autojump_clock: trio.testing.MockClock) -> None:
    """`conn.lines()` + one reply per line passes every case."""
    with trio.fail_after(1000):
        await check_line_handler(upper_lines, bytes.upper)


async def test_line_check_accepts_a_handler_with_its_own_limit(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """The limit case uses the limit it is told about."""

    async def handler(conn: Connection) -> None:
        async for line in conn.lines(max_length=1000):
            await conn.send_all(line + b"\n")

    with trio.fail_after(1000):
        await check_line_handler(handler, max_line_length=1000)


async def test_line_check_catches_a_wrong_reply(autojump_clock: trio.testing.MockClock) -> None:
    """Echoing instead of upper-casing fails the first case, showing what came back."""
    with (
        trio.fail_after(1000),
        pytest.raises(CheckFailedError, match=r"'several lines in one write'.*got \[b'HELLO'"),
    ):
        await check_line_handler(upper_lines)


async def test_line_check_catches_chunks_taken_for_lines(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """Treating each received chunk as a line fails on split deliveries."""

    async def chunky(conn: Connection) -> None:
        async for chunk in conn:
            for line in chunk.split(b"\n")[:-1]:
                await conn.send_all(line + b"\n")

    with trio.fail_after(1000), pytest.raises(CheckFailedError, match="one byte at a time"):
        await check_line_handler(chunky)


async def test_line_check_catches_a_handler_that_waits_for_the_end(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """Replying only after end of stream hangs the interactive case."""

    async def hoarding(conn: Connection) -> None:
        lines = [line async for line in conn.lines()]
        for line in lines:
            await conn.send_all(line + b"\n")

    with trio.fail_after(1000), pytest.raises(CheckFailedError, match="answered at once"):
        await check_line_handler(hoarding)


async def test_line_check_catches_a_handler_without_a_limit(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """Buffering a line without a limit hangs on a peer that never ends its line."""

    async def unbounded(conn: Connection) -> None:
        buffered = b""
        async for chunk in conn:
            buffered += chunk
            while b"\n" in buffered:
                line, buffered = buffered.split(b"\n", 1)
                await conn.send_all(line + b"\n")

    with trio.fail_after(1000), pytest.raises(CheckFailedError, match="'over the limit'"):
        await check_line_handler(unbounded)


async def test_line_check_catches_a_crash_on_a_partial_line(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """A handler that raises its own error at end of stream mid-line is reported."""

    async def fragile(conn: Connection) -> None:
        while True:
            try:
                line = await conn.receive_line()
            except Exception as exc:
                if type(exc).__name__ == "IncompleteFrameError":
                    raise RuntimeError("half a line!") from exc
                return
            await conn.send_all(line + b"\n")

    with trio.fail_after(1000), pytest.raises(CheckFailedError, match=r"mid-line.*raised"):
        await check_line_handler(fragile)


async def test_line_check_catches_a_reply_queue_without_a_limit(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """Reading on while a writer task's unbounded queue fills fails 'never reads'."""

    async def queueing(conn: Connection) -> None:
        send, receive = trio.open_memory_channel[bytes](math.inf)

        async def writer() -> None:
            async for reply in receive:
                await conn.send_all(reply)

        async with trio.open_nursery() as nursery:
            nursery.start_soon(writer)
            async with send:
                async for line in conn.lines():
                    send.send_nowait(line + b"\n")

    with trio.fail_after(1000), pytest.raises(CheckFailedError, match=r"never reads.*took"):
        await check_line_handler(queueing)


# ---------------------------------------------------------------- length-prefixed handlers


async def reversing(conn: Connection) -> None:
    async for frame in conn.frames(FRAMER):
        await conn.send_frame(FRAMER, frame[::-1])


def _reverse(body: bytes) -> bytes:
    return body[::-1]


async def test_frame_check_accepts_a_correct_handler(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """`conn.frames(LengthPrefixFramer(4))` + one reply per frame passes every case."""
    with trio.fail_after(1000):
        await check_length_prefixed_handler(reversing, _reverse)


async def test_frame_check_accepts_two_byte_headers(autojump_clock: trio.testing.MockClock) -> None:
    """header_size and max_frame_size follow the handler's framer."""
    framer = LengthPrefixFramer(2, max_frame_size=500)

    async def handler(conn: Connection) -> None:
        async for frame in conn.frames(framer):
            await conn.send_frame(framer, frame)

    with trio.fail_after(1000):
        await check_length_prefixed_handler(handler, header_size=2, max_frame_size=500)


async def test_frame_check_catches_a_header_read_as_one_chunk(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """Assuming a whole frame per receive_some fails on split deliveries."""

    async def naive(conn: Connection) -> None:
        async for chunk in conn:
            body = chunk[4 : 4 + int.from_bytes(chunk[:4], "big")]
            await conn.send_frame(FRAMER, bytes(body[::-1]))

    with trio.fail_after(1000), pytest.raises(CheckFailedError, match="frame check"):
        await check_length_prefixed_handler(naive, _reverse)


async def test_frame_check_catches_a_handler_that_trusts_the_header(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """Waiting for whatever length the header announces hangs 'over the limit'."""

    async def trusting(conn: Connection) -> None:
        while True:
            try:
                header = await conn.receive_exactly(4)
            except EOFError:
                return
            body = await conn.receive_exactly(int.from_bytes(header, "big"))
            await conn.send_frame(FRAMER, body[::-1])

    with trio.fail_after(1000), pytest.raises(CheckFailedError, match="'over the limit'"):
        await check_length_prefixed_handler(trusting, _reverse)


async def test_frame_check_catches_a_reply_to_a_partial_frame(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """Answering the bytes of a frame cut short by end of stream is a wrong reply."""

    async def lenient(conn: Connection) -> None:
        while header := await conn.receive_some(4):
            while len(header) < 4:
                more = await conn.receive_some(4 - len(header))
                if not more:
                    break
                header += more
            size = int.from_bytes(header, "big")
            if size > 1024 * 1024:
                return
            body = b""
            while len(body) < size and (more := await conn.receive_some(size - len(body))):
                body += more
            await conn.send_frame(FRAMER, body[::-1])

    with trio.fail_after(1000), pytest.raises(CheckFailedError, match="mid-frame"):
        await check_length_prefixed_handler(lenient, _reverse)


async def test_frame_check_catches_a_handler_that_never_closes(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """A handler that keeps the connection after end of stream fails 'mid-frame'."""

    async def lingering(conn: Connection) -> None:
        try:
            async for frame in conn.frames(FRAMER):
                await conn.send_frame(FRAMER, frame[::-1])
        except IncompleteFrameError:
            await trio.sleep_forever()

    with trio.fail_after(1000), pytest.raises(CheckFailedError, match=r"mid-frame.*no answer"):
        await check_length_prefixed_handler(lingering, _reverse)


async def test_frame_check_rejects_a_limit_no_header_can_exceed() -> None:
    """A one-byte header cannot announce 256 bytes: the over-limit case is impossible."""
    with pytest.raises(ValueError, match="no frame can be over the limit"):
        await check_length_prefixed_handler(reversing, header_size=1, max_frame_size=255)


async def test_checks_run_on_the_real_clock_quickly() -> None:
    """Correct handlers pass without waiting on any timeout (what a notebook runs)."""
    with trio.fail_after(30):
        await check_line_handler(upper_lines, bytes.upper, timeout=20)
        await check_length_prefixed_handler(reversing, _reverse, timeout=20)
