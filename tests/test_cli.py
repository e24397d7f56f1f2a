"""The command line, run as a user would: subprocesses over real loopback sockets."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

import _cli_process  # its ServeProcess collects stderr lines (this module's own does not)
import pytest

CLI = [sys.executable, "-m", "trio_tcp"]
TIMEOUT = 30


def run_cli(*args: str, stdin: bytes = b"") -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*CLI, *args],
        input=stdin.decode(),
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
    )


class ServeProcess:
    """A `trio-tcp serve` subprocess whose stdout lines we can wait for."""

    def __init__(self, *args: str) -> None:
        self.proc = subprocess.Popen(
            [*CLI, "serve", *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        self.lines: list[str] = []
        first = self.wait_for("listening on")
        self.port = int(first.rsplit(":", 1)[1]) if "unix:" not in first else 0

    def wait_for(self, text: str) -> str:
        assert self.proc.stdout is not None
        deadline = time.monotonic() + TIMEOUT
        while time.monotonic() < deadline:
            line = self.proc.stdout.readline()
            if not line:
                raise AssertionError(f"server exited before printing {text!r}: {self.lines}")
            self.lines.append(line.rstrip("\n"))
            if text in line:
                return line.rstrip("\n")
        raise AssertionError(f"timed out waiting for {text!r}")

    def stop(self) -> tuple[int, str, str]:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
        out, err = self.proc.communicate(timeout=TIMEOUT)
        return self.proc.returncode, out, err


@pytest.fixture
def server() -> Iterator[ServeProcess]:
    proc = ServeProcess("--port", "0")
    yield proc
    if proc.proc.poll() is None:
        proc.proc.kill()
        proc.proc.communicate()


def test_demo_prints_the_tutorial_buffer() -> None:
    """`trio-tcp demo` runs server and sender and prints <Buffer 0c 22>, exit 0."""
    result = run_cli("demo")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].startswith("listening on 127.0.0.1:")
    assert "#1 <Buffer 0c 22>" in lines
    assert result.stderr == ""


def test_send_to_serve_prints_the_buffer(server: ServeProcess) -> None:
    """`send` with no payload writes 0c 22; `serve` prints it with the connection's id."""
    result = run_cli("send", "--port", str(server.port))
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == f"sent <Buffer 0c 22> to 127.0.0.1:{server.port}"
    assert server.wait_for("<Buffer 0c 22>").endswith("<Buffer 0c 22>")
    server.wait_for("closed (2 bytes received)")
    code, _out, err = server.stop()
    assert code == 0
    assert "shutting down" in err


def test_one_byte_is_singular(server: ServeProcess) -> None:
    """`closed (1 byte received)`, not `1 bytes`."""
    result = run_cli("send", "--port", str(server.port), "--hex", "0c")
    assert result.returncode == 0, result.stderr
    assert server.wait_for("closed (").endswith("closed (1 byte received)")


def test_send_payload_options(server: ServeProcess) -> None:
    """--hex, --text, --file and stdin each send exactly their bytes."""
    port = str(server.port)
    assert run_cli("send", "--port", port, "--hex", "de ad:be:ef").returncode == 0
    server.wait_for("<Buffer de ad be ef>")
    assert run_cli("send", "--port", port, "--text", "hi").returncode == 0
    server.wait_for("<Buffer 68 69>")
    assert run_cli("send", "--port", port, "-", stdin=b"\x01\x02\x03").returncode == 0
    server.wait_for("<Buffer 01 02 03>")
    assert server.stop()[0] == 0


def test_send_file(server: ServeProcess, tmp_path: Path) -> None:
    """--file sends the bytes of a file."""
    path = tmp_path / "payload.bin"
    path.write_bytes(b"\x00\xff")
    assert run_cli("send", "--port", str(server.port), "--file", str(path)).returncode == 0
    server.wait_for("<Buffer 00 ff>")
    assert server.stop()[0] == 0


def test_echo_mode_with_reply() -> None:
    """`serve --mode echo` echoes; `send --reply` prints what comes back."""
    echo = ServeProcess("--port", "0", "--mode", "echo")
    try:
        result = run_cli("send", "--port", str(echo.port), "--text", "hello", "--reply")
        assert result.returncode == 0, result.stderr
        assert result.stdout.splitlines()[-1] == "reply <Buffer 68 65 6c 6c 6f>"
    finally:
        assert echo.stop()[0] == 0


def test_unix_socket_serve_and_send(tmp_path: Path) -> None:
    """--unix works for both commands, and the socket file is removed at exit."""
    path = tmp_path / "cli.sock"
    unix = ServeProcess("--unix", str(path))
    try:
        assert unix.lines[0] == f"listening on unix:{path}"
        assert run_cli("send", "--unix", str(path)).returncode == 0
        unix.wait_for("<Buffer 0c 22>")
    finally:
        assert unix.stop()[0] == 0
    assert not path.exists()


def test_sigint_during_traffic_exits_zero_within_grace_period() -> None:
    """SIGINT while clients stream data shuts down gracefully: exit 0 while the 20 clients
    are still connected (a server that waited for them would hit the stop timeout)."""
    proc = ServeProcess("--port", "0", "--mode", "echo", "--grace-period", "2")
    clients = [socket.create_connection(("127.0.0.1", proc.port)) for _ in range(20)]
    try:
        for client in clients:
            client.sendall(b"x" * 10_000)
        code, _out, err = proc.stop()
        assert code == 0, err
        assert "shutting down" in err
    finally:
        for client in clients:
            client.close()


def test_sigterm_shuts_down_too(server: ServeProcess) -> None:
    """SIGTERM is a graceful shutdown with exit 0, like SIGINT."""
    server.proc.send_signal(signal.SIGTERM)
    _out, err = server.proc.communicate(timeout=TIMEOUT)
    assert server.proc.returncode == 0
    assert "SIGTERM" in err


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["serve", "--port", "70000"], "port must be 0-65535"),
        (["serve", "--port", "http"], "port must be a number"),
        (["send", "--port", "-1"], "port must be 0-65535"),
        (["send", "--hex", "0g"], "bad hex"),
        (["send", "--hex", "abc"], "bad hex"),
        (["send", "--bogus"], "unrecognized arguments"),
        (["serve", "--mode", "shout"], "invalid choice"),
        (["serve", "--max-connections", "0"], ">= 1"),
        (["serve", "--idle-timeout", "-3"], "seconds >= 0"),
        (["send", "--hex", "0c", "--text", "x"], "not allowed with"),
        (["nonsense"], "invalid choice"),
        ([], "required"),
    ],
)
def test_usage_errors_exit_2_with_one_line(args: list[str], message: str) -> None:
    """Bad usage: exit 2, one line on stderr, no traceback, nothing connected."""
    result = run_cli(*args)
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1, result.stderr
    assert result.stderr.startswith("trio-tcp: error: ")
    assert message in result.stderr
    assert "Traceback" not in result.stderr


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_runtime_errors_exit_1_with_one_line(server: ServeProcess, tmp_path: Path) -> None:
    """Runtime failures: exit 1 and one clear line (in use, refused, unknown host, no file)."""
    cases = [
        (["serve", "--port", str(server.port)], "address already in use"),
        (["send", "--port", str(_free_port())], "connection refused"),
        (["send", "--host", "no-such-host.invalid"], "cannot resolve host"),
        (["send", "--port", str(server.port), "--file", str(tmp_path / "nope")], "cannot read"),
        (["send", "--unix", str(tmp_path / "none.sock")], "no such socket"),
        (["serve", "--workers", "2", "--host", "no-such-host.invalid"], "cannot resolve host"),
    ]
    for args, message in cases:
        result = run_cli(*args)
        assert result.returncode == 1, (args, result.stderr)
        assert result.stderr.count("\n") == 1, result.stderr
        assert message in result.stderr, result.stderr
        assert "Traceback" not in result.stderr


def test_console_script_is_installed() -> None:
    """The `trio-tcp` console script exists beside the interpreter and runs."""
    script = Path(sys.executable).with_name("trio-tcp")
    assert script.exists()
    result = subprocess.run([str(script), "--version"], capture_output=True, text=True, timeout=30)
    assert result.returncode == 0
    assert result.stdout.startswith("trio-tcp ")


NODE = shutil.which("node")


@pytest.mark.skipif(NODE is None, reason="node is not installed")
def test_node_client_to_trio_tcp_serve(server: ServeProcess) -> None:
    """The tutorial's Node.js sender, unchanged, makes `trio-tcp serve` print <Buffer 0c 22>."""
    sender = textwrap.dedent(
        f"""
        const net = require("net");
        const socket = net.createConnection({{ host: "127.0.0.1", port: {server.port} }}, () => {{
          const buff = Buffer.from([12, 34]);
          socket.write(buff);
          socket.end();
        }});
        """
    )
    subprocess.run([str(NODE), "-e", sender], check=True, timeout=TIMEOUT)
    server.wait_for("<Buffer 0c 22>")
    assert server.stop()[0] == 0


@pytest.mark.skipif(NODE is None, reason="node is not installed")
def test_trio_tcp_send_to_node_server() -> None:
    """`trio-tcp send` to the tutorial's Node.js server makes Node print <Buffer 0c 22>."""
    port = _free_port()
    node_server = textwrap.dedent(
        f"""
        const net = require("net");
        const server = net.createServer((socket) => {{
          socket.on("data", (data) => {{ console.log(data); }});
          socket.on("end", () => {{ server.close(); }});
        }});
        server.listen({port}, "127.0.0.1", () => console.log("ready"));
        """
    )
    proc = subprocess.Popen(
        [str(NODE), "-e", node_server], stdout=subprocess.PIPE, text=True, env=dict(os.environ)
    )
    try:
        assert proc.stdout is not None
        assert proc.stdout.readline().strip() == "ready"
        result = run_cli("send", "--port", str(port))
        assert result.returncode == 0, result.stderr
        out, _ = proc.communicate(timeout=TIMEOUT)
        assert out.strip() == "<Buffer 0c 22>"
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()


def test_verbose_shows_each_connection_and_default_does_not() -> None:
    """`serve -v` logs each connection's open and close; the default level logs neither."""
    for flags, expect_lines in (([], False), (["-v"], True)):
        proc = _cli_process.ServeProcess("--port", "0", "--mode", "discard", *flags)
        try:
            with socket.create_connection(("127.0.0.1", proc.port), timeout=10) as sock:
                sock.sendall(b"abc")
            if expect_lines:
                opened = proc.wait_for("opened", stderr=True)
                closed = proc.wait_for("closed: 3 bytes in, 0 out", stderr=True)
                assert opened.startswith("trio-tcp: DEBUG: <Connection #")
                assert closed.startswith("trio-tcp: DEBUG: <Connection #")
            assert proc.stop() == 0
            logged = [line for line in proc.err_lines if "opened" in line or "bytes in" in line]
            assert bool(logged) == expect_lines, proc.err_lines
        finally:
            proc.kill()
