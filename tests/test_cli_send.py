"""`trio-tcp send` as a user runs it: subprocesses over real loopback sockets, a pty for Ctrl-C.

Each test is bounded by a subprocess timeout (a hang fails, it does not stall CI).
"""

from __future__ import annotations

import fcntl
import os
import pty
import re
import socket
import struct
import subprocess
import termios
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
import trustme
from _cli_process import CLI, ServeProcess

from trio_tcp._cli import build_parser

TIMEOUT = 60


def send(
    *args: str, stdin: bytes = b"", timeout: float = TIMEOUT
) -> subprocess.CompletedProcess[str]:
    """`trio-tcp send ARGS` with ``stdin``, run to completion."""
    result = subprocess.run(
        [*CLI, "send", *args], input=stdin, capture_output=True, timeout=timeout
    )
    return subprocess.CompletedProcess(
        result.args, result.returncode, result.stdout.decode(), result.stderr.decode()
    )


def reply_sizes(stdout: str) -> list[int]:
    """The size of every ``reply <Buffer ...>`` line (Node's format: 50 shown + N more)."""
    sizes = []
    for line in stdout.splitlines():
        if not line.startswith("reply <Buffer"):
            continue
        more = re.search(r" \.\.\. (\d+) more bytes?>$", line)
        shown = line.removeprefix("reply <Buffer ").split(" ... ")[0].rstrip(">").split()
        sizes.append(len(shown) + (int(more.group(1)) if more else 0))
    return sizes


@pytest.fixture
def echo_server() -> Iterator[ServeProcess]:
    server = ServeProcess("--port", "0", "--mode", "echo")
    try:
        yield server
    finally:
        server.kill()


@pytest.fixture
def deaf_port() -> Iterator[int]:
    """A port that accepts connections (kernel backlog) and never reads a byte."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        yield listener.getsockname()[1]


# ---------------------------------------------------------------------- the exchange


def test_reply_echoes_64_mib_through_serve_echo(echo_server: ServeProcess, tmp_path: Path) -> None:
    """Sender and receiver run together: 64 MiB comes back whole through `serve --mode echo`."""
    payload = os.urandom(1 << 20) * 64
    path = tmp_path / "big.bin"
    path.write_bytes(payload)
    result = send("--port", str(echo_server.port), "--file", str(path), "--reply", "--timeout", "0")
    assert result.returncode == 0, result.stderr
    assert sum(reply_sizes(result.stdout)) == len(payload)
    first_reply = next(line for line in result.stdout.splitlines() if line.startswith("reply"))
    assert first_reply.startswith("reply <Buffer " + payload[:4].hex(" "))
    assert f"... {len(payload) - 50} more bytes> to 127.0.0.1:{echo_server.port}" in result.stdout
    assert result.stderr == ""


def test_reply_from_stdin_dash_streams_concurrently(echo_server: ServeProcess) -> None:
    """`send - --reply` streams stdin while replies come back (more than both socket buffers)."""
    payload = bytes(range(256)) * (16 * 1024)  # 4 MiB
    result = send("--port", str(echo_server.port), "-", "--reply", stdin=payload)
    assert result.returncode == 0, result.stderr
    assert sum(reply_sizes(result.stdout)) == len(payload)


def test_file_dash_is_stdin(echo_server: ServeProcess) -> None:
    """`--file -` sends stdin, like `-`."""
    result = send("--port", str(echo_server.port), "--file", "-", "--reply", stdin=b"\x0c\x22")
    assert result.returncode == 0, result.stderr
    # Sending and receiving run concurrently: the echo may print before the "sent" line
    # (stdin's end is only known after one more read).
    assert sorted(result.stdout.splitlines()) == [
        "reply <Buffer 0c 22>",
        f"sent <Buffer 0c 22> to 127.0.0.1:{echo_server.port}",
    ]


def test_timeout_covers_sending_to_a_peer_that_never_reads(deaf_port: int, tmp_path: Path) -> None:
    """`--timeout 2`, 64 MiB to a peer that never reads: exit 1, one line saying how far it got."""
    path = tmp_path / "big.bin"
    path.write_bytes(bytes(64 << 20))
    result = send("--port", str(deaf_port), "--file", str(path), "--timeout", "2", timeout=30)
    assert result.returncode == 1
    assert result.stderr.count("\n") == 1, result.stderr
    match = re.fullmatch(
        r"trio-tcp: error: timed out after 2 s: sent (\d+) of 67108864 bytes to "
        rf"127\.0\.0\.1:{deaf_port}, received 0 bytes\n",
        result.stderr,
    )
    assert match, result.stderr
    assert int(match.group(1)) < 64 << 20  # whole slices the kernel took before the deadline


@pytest.mark.parametrize("extra", [[], ["--reply"]])
def test_peer_that_resets_mid_send_is_one_line(tmp_path: Path, extra: list[str]) -> None:
    """The peer resets while 32 MiB are on their way: exit 1, one line, not a traceback."""
    path = tmp_path / "big.bin"
    path.write_bytes(bytes(32 << 20))
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()

        def reset_the_first_connection() -> None:
            conn, _ = listener.accept()
            conn.recv(1)  # the sender is connected and sending
            conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            conn.close()  # SO_LINGER 0: close sends RST

        resetter = threading.Thread(target=reset_the_first_connection, daemon=True)
        resetter.start()
        port = str(listener.getsockname()[1])
        result = send("--port", port, "--file", str(path), "--timeout", "30", *extra)
        resetter.join(TIMEOUT)
    assert result.returncode == 1, result.stderr
    assert result.stderr.count("\n") == 1, result.stderr
    assert result.stderr.startswith(f"trio-tcp: error: connection to 127.0.0.1:{port} broke: ")


def test_reply_into_a_closed_pipe_ends_quietly(echo_server: ServeProcess, tmp_path: Path) -> None:
    """`send --reply | head -1`: once the reader is gone, exit at once without a traceback."""
    path = tmp_path / "big.bin"
    path.write_bytes(os.urandom(1 << 20) * 8)
    args = ["send", "--port", str(echo_server.port), "--file", str(path), "--reply"]
    with subprocess.Popen([*CLI, *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE) as process:
        assert process.stdout is not None and process.stderr is not None
        assert process.stdout.readline().startswith(b"reply <Buffer ")
        process.stdout.close()  # `head -1` exits
        stderr = process.stderr.read()
        code = process.wait(TIMEOUT)
    assert stderr == b""
    assert code == 1


@pytest.mark.skipif(not Path("/dev/full").exists(), reason="needs /dev/full")
def test_reply_into_a_full_disk_is_one_line(echo_server: ServeProcess) -> None:
    """stdout that cannot be written (ENOSPC): one line naming it, exit 1."""
    with open("/dev/full", "wb") as full:
        result = subprocess.run(
            [*CLI, "send", "--port", str(echo_server.port), "--reply"],
            stdout=full,
            stderr=subprocess.PIPE,
            timeout=TIMEOUT,
        )
    assert result.returncode == 1
    assert result.stderr == b"trio-tcp: error: cannot write to stdout: No space left on device\n"


def test_timeout_covers_connecting() -> None:
    """A listener whose accept queue is full drops our SYN: `--timeout 1` says so, exit 1."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(0)
        port = listener.getsockname()[1]
        queued = []
        try:
            for _ in range(3):  # fill the accept queue; later SYNs are dropped (Linux)
                sock = socket.socket()
                sock.setblocking(False)
                sock.connect_ex(("127.0.0.1", port))
                queued.append(sock)
            result = send("--port", str(port), "--timeout", "1", timeout=30)
        finally:
            for sock in queued:
                sock.close()
    assert result.returncode == 1
    assert result.stderr == (
        f"trio-tcp: error: cannot connect to 127.0.0.1:{port}: timed out after 1 s\n"
    )


def test_timeout_covers_the_reply(deaf_port: int) -> None:
    """`--reply --reply-idle 0` waits for EOF, which never comes: `--timeout` ends it, exit 1."""
    result = send("--port", str(deaf_port), "--reply", "--reply-idle", "0", "--timeout", "1")
    assert result.returncode == 1
    assert result.stdout == f"sent <Buffer 0c 22> to 127.0.0.1:{deaf_port}\n"
    assert result.stderr.startswith("trio-tcp: error: timed out after 1 s: sent 2 of 2 bytes")


def test_reply_ends_after_the_quiet_period(deaf_port: int) -> None:
    """A peer that neither replies nor closes: the reply ends after --reply-idle, exit 0."""
    result = send("--port", str(deaf_port), "--reply", "--reply-idle", "0.2", "--timeout", "30")
    assert result.returncode == 0, result.stderr
    assert result.stdout == f"sent <Buffer 0c 22> to 127.0.0.1:{deaf_port}\n"


@pytest.fixture(scope="module")
def tls_files(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, str]:
    """(certificate chain + key in one PEM, CA certificate)."""
    ca = trustme.CA()
    cert = ca.issue_cert("127.0.0.1")
    folder = tmp_path_factory.mktemp("tls")
    both, ca_file = folder / "both.pem", folder / "ca.pem"
    cert.private_key_and_cert_chain_pem.write_to_path(str(both))
    ca.cert_pem.write_to_path(str(ca_file))
    return str(both), str(ca_file)


def test_reply_over_tls_ends_after_the_quiet_period(tls_files: tuple[str, str]) -> None:
    """TLS cannot half-close, so an echo never ends by EOF: the quiet period ends it, exit 0."""
    both, ca_file = tls_files
    server = ServeProcess("--port", "0", "--mode", "echo", "--tls-cert", both)
    try:
        result = send(
            *("--port", str(server.port), "--tls", "--cafile", ca_file, "--reply"),
            *("--hex", "0c22", "--reply-idle", "2", "--timeout", "30"),
        )
    finally:
        server.kill()
    assert result.returncode == 0, result.stderr
    assert sorted(result.stdout.splitlines()) == [
        "reply <Buffer 0c 22>",
        f"sent <Buffer 0c 22> to 127.0.0.1:{server.port}",
    ]


@pytest.mark.parametrize(
    ("option", "text", "expected"),
    [
        ("--timeout", "0", None),
        ("--timeout", "inf", None),
        ("--timeout", "2.5", 2.5),
        ("--reply-idle", "0", None),
        ("--reply-idle", "inf", None),
        ("--reply-idle", "0.5", 0.5),
    ],
)
def test_zero_and_inf_mean_no_limit_for_every_send_timeout(
    option: str, text: str, expected: float | None
) -> None:
    """One rule for timeouts: 0 and inf both mean "no limit" (None)."""
    args = build_parser().parse_args(["send", option, text])
    assert getattr(args, option[2:].replace("-", "_")) == expected


@pytest.mark.parametrize(("text", "expected"), [("0", None), ("inf", None), ("7", 7.0)])
def test_zero_and_inf_mean_no_limit_for_idle_timeout(text: str, expected: float | None) -> None:
    """`serve --idle-timeout` follows the same rule as `send --timeout`."""
    assert build_parser().parse_args(["serve", "--idle-timeout", text]).idle_timeout == expected


def test_grace_period_accepts_inf() -> None:
    """`--grace-period inf` waits for every connection (0 cancels at once)."""
    parser = build_parser()
    assert parser.parse_args(["serve", "--grace-period", "inf"]).grace_period == float("inf")
    assert parser.parse_args(["serve", "--grace-period", "0"]).grace_period == 0


def test_help_documents_the_quiet_period_and_the_timeout_rule() -> None:
    """`send --help` shows the reply's quiet period and what 0/inf mean."""
    result = subprocess.run([*CLI, "send", "--help"], capture_output=True, text=True, timeout=30)
    text = " ".join(result.stdout.split())
    assert "--reply-idle S" in text
    assert "after --reply-idle" in text
    assert "(default 1; 0 or inf: wait for the peer's EOF)" in text
    assert "(default 10; 0 or inf: no limit;" in text


# ---------------------------------------------------------------------- usage


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--hex", "0c", "extra"], "unexpected argument 'extra' (several hex bytes go in one"),
        (["--text", "hello", "world"], "unexpected argument 'world' (quote text with spaces"),
        (["nonsense"], "unexpected argument 'nonsense'; the payload is --hex, --text,"),
        (["--hex", "0c", "-"], "argument -: not allowed with argument --hex"),
        (["--lines", "--file", "x"], "argument --lines: not allowed with argument --file"),
        (["--unix", "/tmp/x.sock", "--port", "4000"], "--port: not allowed with argument --unix"),
        (["--unix", "/tmp/x.sock", "--host", "::1"], "--host: not allowed with argument --unix"),
        (["--unix", ""], "argument --unix: expected a socket path, not an empty string"),
        (["--timeout", "-1"], "expected seconds >= 0"),
        (["--timeout", "nan"], "expected seconds >= 0"),
    ],
)
def test_send_usage_errors_are_one_clear_line(args: list[str], message: str) -> None:
    """Payload and address mistakes: exit 2, one line that names the problem."""
    result = send(*args)
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1, result.stderr
    assert message in result.stderr, result.stderr


def test_serve_unix_with_port_is_a_usage_error(tmp_path: Path) -> None:
    """`serve --unix PATH --port N` names two places: exit 2 instead of ignoring --port."""
    result = subprocess.run(
        [*CLI, "serve", "--unix", str(tmp_path / "s"), "--port", "1"],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 2
    assert result.stderr == "trio-tcp: error: argument --port: not allowed with argument --unix\n"


def test_serve_empty_unix_path_is_a_usage_error() -> None:
    """`serve --unix ''` (an unset shell variable): one line, exit 2, not a traceback."""
    result = subprocess.run(
        [*CLI, "serve", "--unix", ""], capture_output=True, text=True, timeout=30
    )
    assert result.returncode == 2
    assert result.stderr == (
        "trio-tcp: error: argument --unix: expected a socket path, not an empty string\n"
    )


# ---------------------------------------------------------------------- Ctrl-C from a terminal


def _run_in_pty(
    args: list[str], *, typed: bytes, wait_for: bytes, port_listener: socket.socket
) -> tuple[int, bytes, bytes]:
    """Run `trio-tcp ARGS` with a pty as its controlling terminal; type, then press Ctrl-C.

    Returns (exit code, everything it wrote to the terminal, bytes the server received).
    """
    master, slave = pty.openpty()

    def controlling_terminal() -> None:
        os.setsid()
        fcntl.ioctl(0, termios.TIOCSCTTY, 0)

    proc = subprocess.Popen(
        [*CLI, *args],
        stdin=slave,
        stdout=slave,
        stderr=slave,
        preexec_fn=controlling_terminal,
    )
    os.close(slave)
    output = bytearray()
    received = bytearray()
    try:
        port_listener.settimeout(TIMEOUT)
        peer, _ = port_listener.accept()
        with peer:
            peer.settimeout(TIMEOUT)
            os.write(master, typed)
            while wait_for not in received:
                chunk = peer.recv(65536)
                assert chunk, f"closed early: {bytes(received)!r}"
                received += chunk
            os.write(master, b"\x03")  # Ctrl-C, through the terminal's line discipline
            code = proc.wait(TIMEOUT)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        reader = threading.Thread(target=_drain, args=(master, output))
        reader.start()
        reader.join(TIMEOUT)
        os.close(master)
    return code, bytes(output), bytes(received)


def _drain(fd: int, sink: bytearray) -> None:
    try:
        while chunk := os.read(fd, 4096):
            sink += chunk
    except OSError:  # EIO: the child side of the pty is closed
        pass


@pytest.fixture
def listener() -> Iterator[socket.socket]:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        yield sock


@pytest.mark.parametrize(
    "extra",
    [["--lines"], ["--lines", "--reply"], ["-"], ["--file", "-", "--reply"]],
    ids=["lines", "lines-reply", "stdin", "file-stdin-reply"],
)
def test_ctrl_c_while_reading_stdin_exits_130(listener: socket.socket, extra: list[str]) -> None:
    """Ctrl-C at a terminal while send waits for stdin: exit 130, no "Fatal Python error"."""
    port = str(listener.getsockname()[1])
    code, output, received = _run_in_pty(
        ["send", "--port", port, *extra],
        typed=b"hello\n",
        wait_for=b"hello\n",
        port_listener=listener,
    )
    assert received == b"hello\n"
    assert code == 130, output
    assert b"Fatal Python error" not in output
    assert output.endswith(b"trio-tcp: interrupted\r\n"), output


def test_ctrl_c_while_sending_exits_130(listener: socket.socket, tmp_path: Path) -> None:
    """Ctrl-C while send_all waits on a peer that stopped reading: exit 130, one line."""
    path = tmp_path / "big.bin"
    path.write_bytes(bytes(16 << 20))
    port = str(listener.getsockname()[1])
    code, output, _received = _run_in_pty(
        ["send", "--port", port, "--file", str(path), "--timeout", "0"],
        typed=b"",
        wait_for=b"\0" * 1024,
        port_listener=listener,
    )
    assert code == 130, output
    assert b"Traceback" not in output and b"Fatal Python error" not in output
    assert output.endswith(b"trio-tcp: interrupted\r\n"), output


def test_send_lines_reply_marks_an_unterminated_last_line(listener: socket.socket) -> None:
    """`send --lines --reply` prints a reply's last line without ending, marked as such."""

    def peer() -> None:
        conn, _ = listener.accept()
        with conn:
            received = b""
            while chunk := conn.recv(1024):
                received += chunk
            conn.sendall(b"got " + received.strip() + b"\npartial")

    thread = threading.Thread(target=peer)
    thread.start()
    port = listener.getsockname()[1]
    result = send("--port", str(port), "--lines", "--reply", stdin=b"hi")
    thread.join(TIMEOUT)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == [
        "reply got hi",
        "reply partial (no line ending)",
        f"sent 1 line (3 bytes) to 127.0.0.1:{port}",
    ]


def test_send_lines_reply_escapes_control_bytes(listener: socket.socket) -> None:
    """A hostile server's ESC, BEL and CR are escaped: no cleared screen, no forged line."""

    def peer() -> None:
        conn, _ = listener.accept()
        with conn:
            while conn.recv(1024):
                pass
            conn.sendall(b"hi\x1b[2J\x07\rFORGED \xff\\\n\x1b]0;title\x07")

    thread = threading.Thread(target=peer)
    thread.start()
    port = listener.getsockname()[1]
    result = send("--port", str(port), "--lines", "--reply", stdin=b"x\n")
    thread.join(TIMEOUT)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == [
        "reply hi\\x1b[2J\\x07\\rFORGED \\xff\\\\",
        "reply \\x1b]0;title\\x07 (no line ending)",
        f"sent 1 line (2 bytes) to 127.0.0.1:{port}",
    ]


def test_lines_typing_time_is_not_counted_by_timeout(listener: socket.socket) -> None:
    """`send --lines --timeout 2`: a pause of 2.5 s between typed lines is not a timeout."""
    import time

    port = listener.getsockname()[1]
    with subprocess.Popen(
        [*CLI, "send", "--port", str(port), "--lines", "--timeout", "2"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    ) as proc:
        assert proc.stdin is not None and proc.stdout is not None and proc.stderr is not None
        try:
            listener.settimeout(TIMEOUT)
            peer, _ = listener.accept()
            with peer:
                peer.settimeout(TIMEOUT)
                proc.stdin.write(b"first\n")
                proc.stdin.flush()
                assert peer.recv(100) == b"first\n"
                time.sleep(2.5)  # a person thinking: longer than --timeout, on purpose
                proc.stdin.write(b"second\n")
                proc.stdin.close()
                received = b""
                while chunk := peer.recv(100):
                    received += chunk
            proc.wait(TIMEOUT)
            out, err = proc.stdout.read(), proc.stderr.read()
        finally:
            proc.kill()
    assert received == b"second\n"
    assert proc.returncode == 0, err
    assert out.decode() == f"sent 2 lines (13 bytes) to 127.0.0.1:{port}\n"


def test_lines_timeout_still_covers_sending(listener: socket.socket) -> None:
    """`send --lines --timeout 1` to a peer that never reads: exit 1 once the send stalls."""
    port = listener.getsockname()[1]
    lines = b"x" * 1023 + b"\n"
    result = send("--port", str(port), "--lines", "--timeout", "1", stdin=lines * (64 * 1024))
    assert result.returncode == 1
    assert result.stderr.startswith("trio-tcp: error: timed out after 1 s: sent ")
    assert result.stderr.count("\n") == 1


def test_without_reply_an_echoing_peer_cannot_stall_the_send(
    echo_server: ServeProcess, tmp_path: Path
) -> None:
    """No --reply, 16 MiB to `serve --mode echo`: what comes back is drained unread, exit 0."""
    path = tmp_path / "big.bin"
    path.write_bytes(bytes(16 << 20))
    result = send("--port", str(echo_server.port), "--file", str(path), "--timeout", "30")
    assert result.returncode == 0, result.stderr
    assert f"... {(16 << 20) - 50} more bytes> to 127.0.0.1:{echo_server.port}" in result.stdout
    assert "reply" not in result.stdout
