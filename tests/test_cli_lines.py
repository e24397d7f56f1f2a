"""`trio-tcp serve --mode lines|echo-lines` and `trio-tcp send --lines`, as subprocesses.

Real loopback sockets (127.0.0.1): the server runs in a subprocess, the clients are
trio_tcp connections in the test, each step under a ``trio.fail_after`` guard.
"""

from __future__ import annotations

import signal
import subprocess
from collections.abc import AsyncIterator

import pytest
import trio
from _cli_process import CLI, ServeProcess, run_cli

from trio_tcp import Connection, open_connection

TIMEOUT = 20


@pytest.fixture
async def lines_server() -> AsyncIterator[ServeProcess]:
    """`trio-tcp serve --mode lines` on a free port."""
    proc = await trio.to_thread.run_sync(ServeProcess, "--port", "0", "--mode", "lines")
    try:
        yield proc
    finally:
        await trio.to_thread.run_sync(proc.kill)


@pytest.fixture
async def echo_lines_server() -> AsyncIterator[ServeProcess]:
    """`trio-tcp serve --mode echo-lines --max-line-length 10` on a free port."""
    proc = await trio.to_thread.run_sync(
        ServeProcess, "--port", "0", "--mode", "echo-lines", "--max-line-length", "10"
    )
    try:
        yield proc
    finally:
        await trio.to_thread.run_sync(proc.kill)


async def wait_for(proc: ServeProcess, text: str, *, stderr: bool = False) -> str:
    """ServeProcess.wait_for without blocking the Trio loop."""
    return await trio.to_thread.run_sync(lambda: proc.wait_for(text, stderr=stderr))


async def connect(proc: ServeProcess) -> Connection:
    """A client connection to the server subprocess."""
    return await open_connection("127.0.0.1", proc.port)


async def test_lines_mode_prints_each_line_decoded(lines_server: ServeProcess) -> None:
    """Lines split across writes print whole, decoded as UTF-8; invalid bytes escaped."""
    with trio.fail_after(TIMEOUT):
        async with await connect(lines_server) as conn:
            tag = (await wait_for(lines_server, "connected from")).split()[0]
            # Each piece after the server printed what the one before completed: "w\xc3"
            # and "\xb6rld" arrive apart, splitting a UTF-8 character (no timing involved).
            await conn.send_all(b"hel")
            await conn.send_all(b"lo\r\nw\xc3")
            await wait_for(lines_server, f"{tag} hello")
            await conn.send_all(b"\xb6rld\n\xff bad\n")
            await wait_for(lines_server, f"{tag} \\xff bad")
            await conn.send_all(b"tail")
            await conn.send_eof()
            await wait_for(lines_server, f"{tag} closed")
    printed = [line for line in lines_server.lines if line.startswith(tag + " ")]
    assert printed[1:] == [
        f"{tag} hello",
        f"{tag} wörld",
        f"{tag} \\xff bad",
        f"{tag} tail (no line ending)",
        f"{tag} closed (24 bytes received)",
    ]


async def test_echo_lines_echoes_whole_lines_with_their_endings(
    echo_lines_server: ServeProcess,
) -> None:
    """echo-lines answers each line once, ending included; an unterminated last one as it came."""
    with trio.fail_after(TIMEOUT):
        async with await connect(echo_lines_server) as conn:
            await conn.send_all(b"ab")
            await conn.send_all(b"c\nde")
            assert await conn.receive_line(keep_ends=True) == b"abc\n"
            await conn.send_all(b"f\r\n")
            assert await conn.receive_line(keep_ends=True) == b"def\r\n"
            await conn.send_all(b"unfinish")
            await conn.send_all(b"ed")
            await conn.send_eof()
            # The one rule: an unterminated last line is never dropped, never given an ending.
            assert await read_all(conn) == b"unfinished"
    assert not echo_lines_server.err_lines  # and it is not a warning


async def read_all(conn: Connection) -> bytes:
    """Every byte until the peer closes."""
    received = b""
    while chunk := await conn.receive_some():
        received += chunk
    return received


async def test_over_long_line_closes_only_that_client(echo_lines_server: ServeProcess) -> None:
    """An over-long line closes that connection with one logged line; others are served."""
    with trio.fail_after(TIMEOUT):
        async with (
            await connect(echo_lines_server) as other,
            await connect(echo_lines_server) as offender,
        ):
            await other.send_all(b"before\n")
            assert await other.receive_line() == b"before"
            await offender.send_all(b"12345678901\n")  # 11 bytes > --max-line-length 10
            assert await offender.receive_some() == b""  # closed by the server
            warning = await wait_for(echo_lines_server, "max_line_length", stderr=True)
            await other.send_all(b"0123456789\n")  # exactly the limit: fine
            assert await other.receive_line() == b"0123456789"
        async with await connect(echo_lines_server) as later:
            await later.send_all(b"after\n")
            assert await later.receive_line() == b"after"
    assert warning.startswith("trio-tcp: WARNING: ")
    assert "line of 11 bytes exceeds max_line_length=10" in warning
    assert not any("Traceback" in line for line in echo_lines_server.err_lines)


async def test_send_lines_with_reply_prints_each_reply(echo_lines_server: ServeProcess) -> None:
    """send --lines --reply sends stdin line by line and prints the echoed lines."""
    result = await trio.to_thread.run_sync(
        lambda: run_cli_input(
            ["send", "--lines", "--reply", "--port", str(echo_lines_server.port)],
            b"one\ntwo\r\nthree",
        )
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == [
        "reply one",
        "reply two",
        "reply three",
        f"sent 3 lines (15 bytes) to 127.0.0.1:{echo_lines_server.port}",
    ]


async def test_send_lines_to_a_lines_server(lines_server: ServeProcess) -> None:
    """send --lines without --reply delivers each stdin line to the server."""
    result = await trio.to_thread.run_sync(
        lambda: run_cli_input(["send", "--lines", "--port", str(lines_server.port)], b"a\nb\n")
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == f"sent 2 lines (4 bytes) to 127.0.0.1:{lines_server.port}"
    with trio.fail_after(TIMEOUT):
        tag = (await wait_for(lines_server, "connected from")).split()[0]
        await wait_for(lines_server, f"{tag} closed")
    assert [line for line in lines_server.lines if line.startswith(tag + " ")][1:3] == [
        f"{tag} a",
        f"{tag} b",
    ]


async def test_sigint_ends_a_waiting_line_read(lines_server: ServeProcess) -> None:
    """SIGINT while a client sits mid-line ends the read gracefully: exit 0, no error."""
    with trio.fail_after(TIMEOUT):
        async with await connect(lines_server) as conn:
            await conn.send_all(b"first\nhalf a li")
            tag = (await wait_for(lines_server, "connected from")).split()[0]
            await wait_for(lines_server, f"{tag} first")
            code = await trio.to_thread.run_sync(lines_server.stop, signal.SIGINT)
            assert await conn.receive_some() == b""
    assert code == 0
    assert f"{tag} closed (15 bytes received)" in lines_server.lines
    assert not any("Traceback" in line for line in lines_server.err_lines)


def test_max_line_length_must_be_positive() -> None:
    """--max-line-length 0 is a usage error: exit 2, one line on stderr."""
    result = run_cli("serve", "--mode", "lines", "--max-line-length", "0")
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1
    assert "--max-line-length" in result.stderr


def run_cli_input(args: list[str], stdin: bytes) -> CompletedBytes:
    """`trio-tcp ARGS` with ``stdin``, run to completion (decoded output)."""
    done = subprocess.run([*CLI, *args], input=stdin, capture_output=True, timeout=TIMEOUT)
    return CompletedBytes(done.returncode, done.stdout.decode("utf-8"), done.stderr.decode("utf-8"))


class CompletedBytes:
    """Exit code and decoded output of a finished CLI run."""

    def __init__(self, returncode: int, stdout: str, stderr: str) -> None:
        self.returncode = returncode
        self.stdout = stdout
        self.stderr = stderr
