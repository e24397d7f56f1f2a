"""`trio-tcp serve --workers N`: N processes on one SO_REUSEPORT port, shut down together."""

from __future__ import annotations

import os
import signal
import socket
import sys
from pathlib import Path

import pytest
from _cli_process import ServeProcess, run_cli

GUARD = 30

pytestmark = pytest.mark.skipif(
    not hasattr(socket, "SO_REUSEPORT") or sys.platform != "linux",
    reason="--workers needs SO_REUSEPORT; these tests read /proc (Linux)",
)


def children(pid: int) -> list[int]:
    """The child process ids of ``pid`` (from /proc/*/stat, Linux)."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            found.append(int(stat.parent.name))
    return sorted(found)


def send(port: int, payload: bytes) -> None:
    with socket.create_connection(("127.0.0.1", port), timeout=GUARD) as sock:
        sock.sendall(payload)


def refused(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=GUARD).close()
    except ConnectionRefusedError:
        return True
    return False


def spread_traffic(server: ServeProcess, workers: int) -> set[str]:
    """Connect until every worker printed a buffer (bounded); return the workers seen."""
    for index in range(200):
        send(server.port, bytes([index]))
        server.wait_for(f"<Buffer {index:02x}>")
        seen = {line.split()[0] for line in server.lines if "<Buffer" in line}
        if len(seen) == workers:
            return seen
    return {line.split()[0] for line in server.lines if "<Buffer" in line}


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_two_workers_share_the_port_and_stop_together(signum: int) -> None:
    """Traffic reaches both workers; one signal to the parent stops both, exit 0."""
    server = ServeProcess("--port", "0", "--workers", "2")
    try:
        assert "(2 workers)" in server.lines[0]
        pids = children(server.proc.pid)
        assert len(pids) == 2
        assert spread_traffic(server, 2) == {"[w1]", "[w2]"}
        assert server.stop(signum) == 0
        assert refused(server.port)
        for pid in pids:  # every worker has exited (and was reaped by the parent)
            assert (
                not Path(f"/proc/{pid}").exists()
                or "Z" in Path(f"/proc/{pid}/stat").read_text().split()[2]
            )
        # Each worker's stderr comes through whole lines, tagged.
        said = sorted(
            line for line in server.err_lines if "SIGTERM: shutting down (grace period 5 s)" in line
        )
        assert [line.split()[0] for line in said] == ["[w1]", "[w2]"]
        assert all(line.startswith(("[w1] ", "[w2] ", "trio-tcp: ")) for line in server.err_lines)
    finally:
        server.kill()


def test_a_dead_worker_is_reported_and_the_rest_keep_serving() -> None:
    """SIGKILL one worker: the parent says so, the other serves, the exit code is 1."""
    server = ServeProcess("--port", "0", "--workers", "2")
    try:
        victim = children(server.proc.pid)[0]
        os.kill(victim, signal.SIGKILL)
        line = server.wait_for(f"(pid {victim}) killed by signal 9", stderr=True)
        assert line.endswith("not restarted (1 of 2 left)")
        for index in range(5):  # the survivor takes every new connection
            send(server.port, bytes([0xA0 + index]))
            server.wait_for(f"<Buffer {0xA0 + index:02x}>")
        assert server.stop() == 1
        assert "killed by signal 9" in server.err_lines[-1]
    finally:
        server.kill()


def test_workers_with_a_unix_socket_is_a_usage_error(tmp_path: Path) -> None:
    """--workers needs a TCP port: exit 2, one line."""
    result = run_cli("serve", "--unix", str(tmp_path / "s"), "--workers", "2")
    assert result.returncode == 2
    assert "--workers needs a TCP port" in result.stderr
    assert result.stderr.count("\n") == 1


def test_workers_beyond_four_per_core_is_a_usage_error() -> None:
    """--workers 100000 (a typo) forks nothing: exit 2, one line naming the limit."""
    limit = 4 * (os.cpu_count() or 1)
    result = run_cli("serve", "--port", "0", "--workers", "100000")
    assert result.returncode == 2
    assert f"expected at most {limit} workers" in result.stderr
    assert result.stderr.count("\n") == 1
    assert "at most" not in run_cli("serve", "--port", "0", "--workers", "0").stderr


def test_workers_on_a_busy_port_fail_in_one_line() -> None:
    """A port another (non-SO_REUSEPORT) socket holds: exit 1 and a clear reason."""
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        result = run_cli("serve", "--port", str(port), "--workers", "2")
    assert result.returncode == 1
    assert f"cannot listen on 127.0.0.1:{port}: address already in use" in result.stderr


def test_workers_do_not_outlive_a_killed_parent() -> None:
    """SIGKILL the parent: the workers read EOF on their lifeline, stop, and the port closes."""
    import time

    server = ServeProcess("--port", "0", "--workers", "2")
    try:
        pids = children(server.proc.pid)
        assert len(pids) == 2
        server.proc.kill()
        server.proc.wait(GUARD)
        deadline = time.monotonic() + GUARD
        while any(Path(f"/proc/{pid}").exists() for pid in pids):
            assert time.monotonic() < deadline, "workers outlived their parent"
            time.sleep(0.05)
        assert refused(server.port)
    finally:
        server.kill()


def test_worker_warnings_come_tagged_in_whole_lines() -> None:
    """A flood of protocol errors in the workers: every stderr line whole and tagged."""
    server = ServeProcess(
        "--port", "0", "--workers", "2", "--mode", "echo-lines", "--max-line-length", "4"
    )
    try:
        for _ in range(100):
            with socket.create_connection(("127.0.0.1", server.port), timeout=GUARD) as sock:
                sock.sendall(b"far too long\n")
                while sock.recv(1024):
                    pass
        server.wait_for("exceeds max_line_length", stderr=True)
        assert server.stop() == 0
        warnings = [line for line in server.err_lines if "WARNING" in line]
        assert 1 <= len(warnings) <= 4, warnings  # throttled: first + summary per worker
        assert all(line.startswith(("[w1] trio-tcp: ", "[w2] trio-tcp: ")) for line in warnings)
    finally:
        server.kill()


def test_workers_outlive_the_thread_that_started_them() -> None:
    """Still serving after 11 s: Trio's spawning thread exits after 10 s idle (no PDEATHSIG)."""
    import time

    server = ServeProcess("--port", "0", "--workers", "2")
    try:
        pids = children(server.proc.pid)
        time.sleep(11)
        assert children(server.proc.pid) == pids
        send(server.port, b"\x0c")
        server.wait_for("<Buffer 0c>")
        assert server.stop() == 0
        assert not any("exited" in line for line in server.err_lines), server.err_lines
    finally:
        server.kill()
