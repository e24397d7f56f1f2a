"""A real HAProxy (`send-proxy-v2`) in front of two trio_tcp servers: clients keep their address."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
from pathlib import Path

import pytest
import trio

import trio_tcp

GUARD = 30
CLIENTS = 6


def _haproxy() -> str | None:
    found = shutil.which("haproxy")
    if found is None and os.access("/usr/sbin/haproxy", os.X_OK):  # root's PATH only, often
        found = "/usr/sbin/haproxy"
    return found


HAPROXY = _haproxy()
pytestmark = pytest.mark.skipif(
    HAPROXY is None,
    reason="haproxy is not installed (Debian: apt-get install haproxy; .ci/run does this)",
)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


CONFIG = """\
global
    maxconn 100
defaults
    mode tcp
    timeout connect 5s
    timeout client 30s
    timeout server 30s
frontend front
    bind 127.0.0.1:{front}
    default_backend trio_tcp
backend trio_tcp
    balance roundrobin
    server one 127.0.0.1:{one} send-proxy-v2
    server two 127.0.0.1:{two} send-proxy-v2
"""


async def _wait_until_listening(port: int, proc: trio.Process) -> None:
    while True:
        assert proc.returncode is None, "haproxy exited at start-up"
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return  # this probe reaches a backend too: it sends nothing, so it is ignored
        except ConnectionRefusedError:
            await trio.sleep(0.05)


async def test_haproxy_send_proxy_v2_reaches_both_servers_with_client_addresses(
    tmp_path: Path,
) -> None:
    """Each server sees the real client (its address and port) and traffic reaches both."""
    assert HAPROXY is not None
    seen: dict[str, list[tuple[trio_tcp.Address, bytes]]] = {"one": [], "two": []}

    def handler_for(name: str) -> trio_tcp.Handler:
        async def handler(conn: trio_tcp.Connection) -> None:
            data = await conn.receive_some()
            if data:
                seen[name].append((conn.peer, data))
                await conn.send_all(name.encode() + b":" + data)

        return handler

    with trio.fail_after(GUARD):
        async with trio.open_nursery() as nursery:
            servers = [
                await nursery.start(
                    lambda task_status, name=name: trio_tcp.serve(
                        handler_for(name), 0, proxy_protocol=True, task_status=task_status
                    )
                )
                for name in ("one", "two")
            ]
            front = _free_port()
            config = tmp_path / "haproxy.cfg"
            config.write_text(CONFIG.format(front=front, one=servers[0].port, two=servers[1].port))
            proc = await trio.lowlevel.open_process(
                [HAPROXY, "-db", "-f", str(config)],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            try:
                await _wait_until_listening(front, proc)
                clients: list[tuple[trio_tcp.Address, bytes, bytes]] = []
                for index in range(CLIENTS):
                    async with await trio_tcp.open_connection("127.0.0.1", front) as conn:
                        payload = f"client-{index}".encode()
                        await conn.send_all(payload)
                        reply = await conn.receive_some()
                        clients.append((conn.local, payload, reply))
            finally:
                proc.terminate()
                with trio.move_on_after(5):
                    await proc.wait()
                proc.kill()
                await proc.wait()
            for server in servers:
                await server.aclose()
            nursery.cancel_scope.cancel()

    # Round robin over two servers: each got traffic.
    assert seen["one"] and seen["two"]
    assert len(seen["one"]) + len(seen["two"]) == CLIENTS
    by_payload = {data: (name, peer) for name, got in seen.items() for peer, data in got}
    for local, payload, reply in clients:
        name, peer = by_payload[payload]
        assert peer == local  # the server saw the client's own address and port, not HAProxy's
        assert reply == name.encode() + b":" + payload
    assert all(server.stats.proxy_rejected == 0 for server in servers)
