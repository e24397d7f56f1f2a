"""trio_tcp.lessons: every handler a notebook teaches holds under concurrency and cancellation,
and every exercise check passes its reference solution and flags the typical first attempt."""

from __future__ import annotations

import functools
import socket
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
import trio
import trio.testing

import trio_tcp
import trio_tcp.lessons as lessons
import trio_tcp.testing
from trio_tcp import Connection
from trio_tcp.lessons import solutions
from trio_tcp.testing import cancellation_sweep, check_echo_handler, serve_memory


async def echo_script(client: Connection) -> object:
    await client.send_all(b"hello")
    got = await client.receive_exactly(5)
    await client.send_eof()
    return got, await client.receive_some()


async def shout_script(client: Connection) -> object:
    replies = []
    for word in (b"hello", b"world"):
        await client.send_all(word + b"\n")
        replies.append(await client.receive_line())
    return replies


async def chat_script(client: Connection) -> object:
    await client.send_all(b"ada\nhello\n")
    return await client.receive_until(b"ada: hello\n")


async def calculator_script(client: Connection) -> object:
    await client.send_all(b"84/2\n9/3\n")
    return [await client.receive_line(), await client.receive_line()]


async def greeting_script(client: Connection) -> object:
    await client.send_all(b"\x00\x00\x00\x02hiab\n")
    return await client.receive_line()


async def print_script(client: Connection) -> object:
    await client.send_all(bytes([12, 34]))
    await client.send_eof()
    return await client.receive_some()


SWEEPS: dict[str, tuple[Callable[[], Any], Callable[[Connection], Awaitable[object]]]] = {
    "print_chunks": (lambda: lessons.print_chunks, print_script),
    "print_buffers": (lambda: lessons.print_buffers, print_script),
    "echo": (lambda: lessons.echo, echo_script),
    "shout_lines": (lambda: lessons.shout_lines, shout_script),
    "greeting_then_lines": (lambda: lessons.greeting_then_lines, greeting_script),
    "ChatRoom": (lambda: lessons.ChatRoom().handler, chat_script),
    "calculator": (lambda: lessons.calculator, calculator_script),
    "polite_echo": (lambda: lessons.polite_echo, shout_script),
}


@pytest.mark.parametrize("name", sorted(SWEEPS))
async def test_taught_handler_survives_the_cancellation_sweep(
    name: str, autojump_clock: trio.testing.MockClock, capsys: pytest.CaptureFixture[str]
) -> None:
    """Cancelled at each of its stream calls, the handler leaks nothing and loses no data."""
    make, script = SWEEPS[name]
    with trio.fail_after(1000):
        report = await cancellation_sweep(make(), script)
    assert report.points >= 3, report.operations


CONCURRENT: dict[
    str,
    tuple[
        Callable[[Connection], Awaitable[None]],
        Callable[[int], bytes],
        Callable[[int], list[bytes]],
    ],
] = {
    # handler, what client i sends, the lines it must get back
    "shout_lines": (
        lessons.shout_lines,
        lambda i: b"c%d\nx\n" % i,
        lambda i: [b"<C%d>" % i, b"<X>"],
    ),
    "calculator": (
        lessons.calculator,
        lambda i: b"%d/1\n%d/2\n" % (i, 2 * i),
        lambda i: [b"%d" % i] * 2,
    ),
    "polite_echo": (lessons.polite_echo, lambda i: b"p%d\n" % i, lambda i: [b"p%d" % i]),
    "greeting_then_lines": (
        lessons.greeting_then_lines,
        lambda i: b"\x00\x00\x00\x01%dline\n" % (i % 10),
        lambda i: [b"LINE"],
    ),
}


@pytest.mark.parametrize("name", sorted(CONCURRENT))
async def test_taught_handler_serves_concurrent_clients(
    name: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """Twenty clients at once, each sending in random pieces: each gets only its own answers."""
    handler, request, wanted = CONCURRENT[name]
    got: dict[int, list[bytes]] = {}
    with trio.fail_after(10):
        async with trio.open_nursery() as nursery:
            server = await nursery.start(
                functools.partial(serve_memory, handler, wrap=trio_tcp.testing.rechunk(seed=9))
            )

            async def client(i: int) -> None:
                async with await server.connect() as conn:
                    await conn.send_all(request(i))
                    await conn.send_eof()
                    got[i] = [line async for line in conn.lines()]

            async with trio.open_nursery() as clients:
                for i in range(20):
                    clients.start_soon(client, i)
            await server.aclose()
    assert got == {i: wanted(i) for i in range(20)}
    assert server.stats.failed == 0


@pytest.mark.parametrize("name", sorted(SWEEPS))
async def test_taught_handler_takes_a_client_that_leaves_without_a_word(
    name: str, autojump_clock: trio.testing.MockClock
) -> None:
    """A client that connects and leaves (or only half-closes) is no failure of the handler."""
    make, _ = SWEEPS[name]
    with trio.fail_after(10):
        async with trio.open_nursery() as nursery:
            server = await nursery.start(serve_memory, make())
            await (await server.connect()).aclose()
            async with await server.connect() as client:
                await client.send_eof()
                assert await client.receive_some() == b""
            await server.aclose()
    assert server.stats.failed == 0


async def test_echo_passes_the_echo_conformance_check() -> None:
    """Ten concurrent clients, every chunking, a vanishing client: the taught echo is right."""
    with trio.fail_after(30):
        await check_echo_handler(lessons.echo)


async def test_shout_chunks_is_caught_by_the_rechunking_sweep() -> None:
    """The bug notebook 2 shows is really a bug: one byte per read breaks it."""
    with trio.fail_after(10):
        verdict = await lessons.check_shout_exercise(lessons.shout_chunks)
    assert not verdict.passed and "one byte per read" in str(verdict)


def _socket_of(conn: Connection) -> trio.socket.SocketType:
    """The Trio socket under a connection's stream (a socket stream keeps it as ``.socket``)."""
    sock = getattr(conn.stream, "socket", None)
    assert isinstance(sock, trio.socket.SocketType), conn.stream
    return sock


async def _chat_on_loopback(
    handler: Callable[[Connection], Awaitable[None]], lines: int
) -> tuple[dict[str, list[bytes]], trio_tcp.ServerStats]:
    """Real sockets with small buffers: a member who never reads; two speakers, each sending
    a line and waiting to see it come back (a person's pace), ``lines`` times, at once."""
    heard: dict[str, list[bytes]] = {"ada": [], "bob": []}

    async def small_buffers(conn: Connection) -> None:
        _socket_of(conn).setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)
        await handler(conn)

    async with trio.open_nursery() as nursery:
        server = await nursery.start(functools.partial(trio_tcp.serve, small_buffers, 0))
        silent = await trio_tcp.open_connection("127.0.0.1", server.port)
        _socket_of(silent).setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        await silent.send_all(b"zed\n")
        speakers = {
            name: await trio_tcp.open_connection("127.0.0.1", server.port) for name in heard
        }
        for name, conn in speakers.items():
            await conn.send_all(name.encode() + b"\n")

        async def speak(name: str) -> None:
            conn = speakers[name]
            for i in range(lines):
                mine = b"%s: %d %s" % (name.encode(), i, b"x" * 500)
                try:
                    await conn.send_all(mine.split(b": ", 1)[1] + b"\n")
                    while (line := await conn.receive_line()) != mine:
                        pass
                except (trio.BrokenResourceError, trio_tcp.EndOfStream):
                    return  # the server closed this speaker's connection
                heard[name].append(line)

        with trio.move_on_after(5):
            async with trio.open_nursery() as talk:
                for name in heard:
                    talk.start_soon(speak, name)
        stats = server.stats
        for conn in [silent, *speakers.values()]:
            await trio.aclose_forcefully(conn)
        nursery.cancel_scope.cancel()
    return heard, stats


async def test_chat_room_with_a_member_who_never_reads_on_real_sockets() -> None:
    """ChatRoom: both speakers get every line of theirs back, nobody crashes, and only the
    silent member misses lines."""
    room = lessons.ChatRoom()
    with trio.fail_after(20):
        heard, stats = await _chat_on_loopback(room.handler, 300)
    assert stats.failed == 0
    for name in ("ada", "bob"):
        assert len(heard[name]) == 300, name
    assert room.dropped > 0  # the silent member's queue filled up


async def test_naive_chat_room_collides_on_a_member_who_never_reads() -> None:
    """NaiveChatRoom: two speakers' tasks both send to the silent member: BusyResourceError."""
    errors: list[BaseException] = []
    room = lessons.NaiveChatRoom()

    async def recording(conn: Connection) -> None:
        try:
            await room.handler(conn)
        except Exception as exc:
            errors.append(exc)
            raise

    with trio.fail_after(20):
        heard, stats = await _chat_on_loopback(recording, 300)
    assert stats.failed >= 1
    assert any(isinstance(exc, trio.BusyResourceError) for exc in errors), errors
    assert min(len(lines) for lines in heard.values()) < 300


async def test_chat_room_ten_members_all_hear_every_line() -> None:
    """Ten concurrent members, each says one line: each hears all ten, its own included."""
    room = lessons.ChatRoom()
    async with trio.open_nursery() as nursery:
        server = await nursery.start(serve_memory, room.handler)
        clients = [await server.connect() for _ in range(10)]
        for i, client in enumerate(clients):
            await client.send_all(b"m%d\n" % i)
        # Everyone has joined once the last member sees its own "joined" line.
        await clients[9].receive_until(b"* m9 joined\n")
        with trio.fail_after(10):
            for i, client in enumerate(clients):
                await client.send_all(b"line %d\n" % i)
            for client in clients:
                got: set[bytes] = set()
                while len(got) < 10:
                    line = await client.receive_line()
                    if b": line " in line:
                        got.add(line)
                assert got == {b"m%d: line %d" % (i, i) for i in range(10)}
        for client in clients:
            await client.aclose()
        await server.aclose()
    assert server.stats.failed == 0 and room.members == 0


async def test_polite_echo_says_goodbye_and_returns_during_shutdown() -> None:
    """On real sockets: an idle client hears goodbye at once; the handler is not cancelled."""
    cancelled: list[bool] = []

    async def watched(conn: Connection) -> None:
        try:
            await lessons.polite_echo(conn)
        except trio.Cancelled:
            cancelled.append(True)
            raise

    with trio.fail_after(10):
        async with trio.open_nursery() as nursery:
            server = await nursery.start(
                functools.partial(trio_tcp.serve, watched, 0, grace_period=5)
            )
            async with await trio_tcp.open_connection("127.0.0.1", server.port) as client:
                await client.send_all(b"hi\n")
                assert await client.receive_line() == b"hi"
                start = trio.current_time()
                server.close()
                assert [line async for line in client.lines()] == [b"goodbye"]
                await server.aclose()
                assert trio.current_time() - start < 5  # well before the grace period ended
    assert cancelled == []


async def test_polite_echo_returns_when_its_client_leaves(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """The old notebook's polite handler waited for closing forever after its client left."""
    ended = trio.Event()

    async def watched(conn: Connection) -> None:
        try:
            await lessons.polite_echo(conn)
        finally:
            ended.set()

    with trio.fail_after(5):
        async with trio.open_nursery() as nursery:
            server = await nursery.start(serve_memory, watched)
            async with await server.connect() as client:
                await client.send_all(b"a\n")
                await client.send_eof()
                assert [line async for line in client.lines()] == [b"a"]
            await ended.wait()
            assert server.stats.active == 0
            await server.aclose()


EXERCISES: dict[str, tuple[Callable[[Any], Awaitable[lessons.Verdict]], str]] = {
    "echo": (lessons.check_echo_exercise, "returns after one read"),
    "line_length": (lessons.check_line_length_exercise, "answer per chunk"),
    "chat": (lessons.check_chat_exercise, "the member who never reads"),
    "polite": (lessons.check_polite_exercise, "grace period ended"),
    "shout": (lessons.check_shout_exercise, "a chunk is not a line"),
    "batching": (lessons.check_batching_exercise, "200 sends"),
    "byte_count": (lessons.check_byte_count_exercise, "client's FIN"),
}


@pytest.mark.parametrize("name", sorted(EXERCISES))
async def test_exercise_check_passes_the_reference_solution(name: str) -> None:
    """The check of each exercise passes its reference solution."""
    check, _ = EXERCISES[name]
    with trio.fail_after(30):
        verdict = await check(getattr(solutions, f"solution_{name}"))
    assert verdict.passed, str(verdict)
    assert str(verdict).startswith("PASS ")


@pytest.mark.parametrize("name", sorted(EXERCISES))
async def test_exercise_check_flags_the_first_try_in_plain_words(name: str) -> None:
    """The typical first attempt is flagged, and the message names the mistake."""
    check, phrase = EXERCISES[name]
    with trio.fail_after(30):
        verdict = await check(getattr(solutions, f"first_try_{name}"))
    assert not verdict.passed
    assert str(verdict).startswith("NOT YET ") and phrase in str(verdict), str(verdict)


async def test_polite_check_flags_a_handler_that_outlives_its_client(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """The old notebook 4 pattern (a nursery waiting for the shutdown) is flagged."""

    async def waits_for_shutdown(conn: Connection) -> None:
        async with trio.open_nursery() as nursery:

            async def stop_at_shutdown() -> None:
                await conn.wait_closing()
                nursery.cancel_scope.cancel()

            nursery.start_soon(stop_at_shutdown)
            async for line in conn.lines():
                await conn.send_all(line + b"\n")

    verdict = await lessons.check_polite_exercise(waits_for_shutdown)
    assert not verdict.passed and "still running" in str(verdict), str(verdict)


def test_public_surface_is_all() -> None:
    """Everything in __all__ exists and has a docstring."""
    for name in lessons.__all__:
        assert getattr(lessons, name).__doc__, name
    for name in solutions.__all__:
        assert getattr(solutions, name).__doc__, name


SAMPLE_TABLE = """\
  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 0100007F:0C1B 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 1 1
   1: 0100007F:0C1B 0100007F:D431 01 00000000:0000002A 00:00000000 00000000     0        0 2 1
   2: 0100007F:D431 0100007F:0C1B 08 00000010:00000000 00:00000000 00000000     0        0 3 1
   3: 0100007F:1F90 0100007F:D432 06 00000000:00000000 00:00000000 00000000     0        0 4 1
"""


def test_kernel_sockets_parses_the_table(tmp_path: Any) -> None:
    """Addresses, ports, states and queue sizes of /proc/net/tcp rows; filtered by port."""
    table = tmp_path / "tcp"
    table.write_text(SAMPLE_TABLE)
    rows = lessons.kernel_sockets(3099, table=table)
    assert rows == [
        lessons.KernelSocket(("127.0.0.1", 3099), ("0.0.0.0", 0), "LISTEN", 0, 0),
        lessons.KernelSocket(("127.0.0.1", 3099), ("127.0.0.1", 54321), "ESTABLISHED", 0, 42),
        lessons.KernelSocket(("127.0.0.1", 54321), ("127.0.0.1", 3099), "CLOSE_WAIT", 16, 0),
    ]
    assert [row.state for row in lessons.kernel_sockets(table=table)][-1] == "TIME_WAIT"


async def test_kernel_sockets_sees_a_real_connection() -> None:
    """A listener and both ends of a loopback connection appear, with the right ports."""
    try:
        lessons.kernel_sockets()
    except OSError:
        pytest.skip("no /proc/net/tcp on this system")
    with trio.fail_after(10):
        listeners = await trio.open_tcp_listeners(0, host="127.0.0.1")
        port = listeners[0].socket.getsockname()[1]
        client = await trio_tcp.open_connection("127.0.0.1", port)
        server_side = await listeners[0].accept()
        rows = {(row.state, row.local[1]): row for row in lessons.kernel_sockets(port)}
        client_port = client.local[1]  # type: ignore[index]
        assert set(rows) == {("LISTEN", port), ("ESTABLISHED", port), ("ESTABLISHED", client_port)}
        for resource in [client, server_side, *listeners]:
            await resource.aclose()


async def test_a_check_keeps_its_servers_quiet_and_no_one_else(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """The servers a check runs log nothing into the learner's notebook (the verdict says it
    in one line); a server outside the check still logs its cut connections."""
    with trio.fail_after(30):
        verdict = await lessons.check_chat_exercise(solutions.first_try_chat)
        assert not verdict.passed
        assert [r for r in caplog.records if r.name.startswith("trio_tcp")] == []
        async with trio.open_nursery() as nursery:
            server = await nursery.start(serve_memory, lessons.echo)
            client = await server.connect()
            nursery.cancel_scope.cancel()
        await client.aclose()
    assert any("cut 1 connection" in r.getMessage() for r in caplog.records)
