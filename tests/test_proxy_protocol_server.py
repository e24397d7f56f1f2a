"""`serve(proxy_protocol=True)`: the PROXY header decides `conn.peer`, over loopback sockets."""

from __future__ import annotations

import logging
import ssl
from collections.abc import AsyncIterator
from typing import Any

import pytest
import trio
import trio.lowlevel
import trustme
from _cli_process import ServeProcess

import trio_tcp
from trio_tcp.framing._proxy import encode_proxy_header_v1, encode_proxy_header_v2

GUARD = 30

V1 = encode_proxy_header_v1("TCP4", ("203.0.113.9", 51000), ("198.51.100.1", 443))
V2 = encode_proxy_header_v2("PROXY", "TCP6", ("2001:db8::7", 40000), ("2001:db8::1", 443))


class Seen:
    """What the handler saw: the peer and every byte, per connection."""

    def __init__(self) -> None:
        self.peers: list[trio_tcp.Address] = []
        self.data: list[bytes] = []
        self.done = trio.Event()

    async def handler(self, conn: trio_tcp.Connection) -> None:
        self.peers.append(conn.peer)
        received = b""
        async for chunk in conn:
            received += chunk
        self.data.append(received)
        await conn.send_all(b"bye")
        self.done.set()


async def start(nursery: trio.Nursery, seen: Seen, **options: Any) -> trio_tcp.Server:
    server: trio_tcp.Server = await nursery.start(
        lambda task_status: trio_tcp.serve(
            seen.handler, 0, proxy_protocol=True, task_status=task_status, **options
        )
    )
    return server


@pytest.fixture
async def nursery() -> AsyncIterator[trio.Nursery]:
    """A nursery cancelled at the end of the test."""
    async with trio.open_nursery() as nursery:
        yield nursery
        nursery.cancel_scope.cancel()


async def talk(port: int, *chunks: bytes) -> bytes:
    """Send ``chunks`` one write each, half-close, return what comes back until the close."""
    stream = await trio.open_tcp_stream("127.0.0.1", port)
    reply = b""
    async with stream:
        try:
            for chunk in chunks:
                await stream.send_all(chunk)
                await trio.lowlevel.checkpoint()
            await stream.send_eof()
            while data := await stream.receive_some():
                reply += data
        except trio.BrokenResourceError:
            pass  # the server refused us and closed first
        return reply


@pytest.mark.parametrize(
    ("header", "client"),
    [
        pytest.param(V1, ("203.0.113.9", 51000), id="v1-tcp4"),
        pytest.param(V2, ("2001:db8::7", 40000), id="v2-tcp6"),
        pytest.param(
            encode_proxy_header_v2("PROXY", "TCP4", ("192.0.2.5", 1234), ("192.0.2.1", 80)),
            ("192.0.2.5", 1234),
            id="v2-tcp4",
        ),
    ],
)
async def test_peer_is_the_original_client_and_data_survives(
    nursery: trio.Nursery, header: bytes, client: tuple[str, int]
) -> None:
    """Header and payload in one write: peer comes from the header, payload is intact."""
    with trio.fail_after(GUARD):
        seen = Seen()
        server = await start(nursery, seen)
        assert await talk(server.port or 0, header + bytes([12, 34])) == b"bye"
        await seen.done.wait()
        assert seen.peers == [client]
        assert seen.data == [bytes([12, 34])]
        assert server.stats.proxy_rejected == 0


async def test_header_one_byte_at_a_time(nursery: trio.Nursery) -> None:
    """A header that trickles in byte by byte is still parsed; the payload follows."""
    with trio.fail_after(GUARD):
        seen = Seen()
        server = await start(nursery, seen)
        pieces = [V2[i : i + 1] for i in range(len(V2))]
        assert await talk(server.port or 0, *pieces, b"payload") == b"bye"
        await seen.done.wait()
        assert seen.peers == [("2001:db8::7", 40000)]
        assert seen.data == [b"payload"]


async def test_local_header_keeps_the_socket_peer(nursery: trio.Nursery) -> None:
    """A v2 LOCAL header (a health check) leaves conn.peer as the proxy's own address."""
    with trio.fail_after(GUARD):
        seen = Seen()
        server = await start(nursery, seen)
        local = encode_proxy_header_v2("LOCAL", "UNKNOWN", None, None)
        assert await talk(server.port or 0, local, b"x") == b"bye"
        await seen.done.wait()
        assert seen.peers[0] is not None and seen.peers[0][0] == "127.0.0.1"
        assert seen.data == [b"x"]


@pytest.mark.parametrize(
    ("first_bytes", "reason"),
    [
        pytest.param(bytes([12, 34]), "not a PROXY protocol header", id="no-header"),
        pytest.param(b"GET / HTTP/1.1\r\n\r\n", "neither the v1 nor the v2", id="http"),
        pytest.param(b"PRO HTTP/1.1\r\n\r\n", 'start with "PROXY "', id="almost-v1"),
        pytest.param(b"PROXY TCP4 1.2.3.4 5.6.7.8 1 2\n", "bare LF", id="malformed-v1"),
        pytest.param(V1[:10], "ended before a complete header", id="truncated"),
        pytest.param(b"", "ended before a header", id="empty"),
    ],
)
async def test_bad_header_closes_that_connection(
    nursery: trio.Nursery, caplog: pytest.LogCaptureFixture, first_bytes: bytes, reason: str
) -> None:
    """Missing, malformed or truncated header: closed, counted, one log line, handler not run."""
    caplog.set_level(logging.INFO, logger="trio_tcp")
    with trio.fail_after(GUARD):
        seen = Seen()
        server = await start(nursery, seen)
        assert await talk(server.port or 0, first_bytes) == b""
        assert server.stats.proxy_rejected == 1
        assert seen.peers == []
        # The next, well-behaved connection is served.
        assert await talk(server.port or 0, V1, b"ok") == b"bye"
    refusals = [r for r in caplog.records if "refused: PROXY protocol" in r.getMessage()]
    assert len(refusals) == 1 and reason in refusals[0].getMessage()
    assert refusals[0].exc_info is None


async def test_untrusted_source_is_refused_before_reading(
    nursery: trio.Nursery, caplog: pytest.LogCaptureFixture
) -> None:
    """A valid header from an address outside trusted_proxies is refused."""
    caplog.set_level(logging.INFO, logger="trio_tcp")
    with trio.fail_after(GUARD):
        seen = Seen()
        server = await start(nursery, seen, trusted_proxies=["10.0.0.0/8", "192.0.2.7"])
        assert await talk(server.port or 0, V1, b"spoofed") == b""
        assert server.stats.proxy_rejected == 1
        assert seen.peers == []
    assert any("not a trusted proxy" in r.getMessage() for r in caplog.records)


async def test_trusted_network_accepts(nursery: trio.Nursery) -> None:
    """A CIDR that covers 127.0.0.1 lets the header through."""
    with trio.fail_after(GUARD):
        seen = Seen()
        server = await start(nursery, seen, trusted_proxies=["127.0.0.0/30"])
        assert await talk(server.port or 0, V1) == b"bye"
        await seen.done.wait()
        assert seen.peers == [("203.0.113.9", 51000)]


async def test_silent_peer_times_out(
    nursery: trio.Nursery, autojump_clock: trio.testing.MockClock
) -> None:
    """No header within proxy_header_timeout: closed and counted."""
    with trio.fail_after(1000):
        seen = Seen()
        server = await start(nursery, seen, proxy_header_timeout=3)
        started = trio.current_time()
        stream = await trio.open_tcp_stream("127.0.0.1", server.port or 0)
        async with stream:
            assert await stream.receive_some() == b""
        assert trio.current_time() - started == pytest.approx(3, abs=0.5)
        assert server.stats.proxy_rejected == 1


async def test_proxy_header_then_tls(nursery: trio.Nursery) -> None:
    """With TLS too, the clear-text header comes first and the handshake follows."""
    ca = trustme.CA()
    server_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1").configure_cert(server_context)
    client_context = ssl.create_default_context()
    ca.configure_trust(client_context)
    seen: list[tuple[trio_tcp.Address, bytes]] = []

    async def handler(conn: trio_tcp.Connection) -> None:
        seen.append((conn.peer, await conn.receive_exactly(6)))
        await conn.send_all(b"bye")

    with trio.fail_after(GUARD):
        server = await nursery.start(
            lambda task_status: trio_tcp.serve(
                handler,
                0,
                proxy_protocol=True,
                ssl_context=server_context,
                task_status=task_status,
            )
        )
        raw = await trio.open_tcp_stream("127.0.0.1", server.port)
        await raw.send_all(V1)
        tls = trio.SSLStream(raw, client_context, server_hostname="127.0.0.1")
        async with tls:
            await tls.send_all(b"secret")
            assert await tls.receive_some() == b"bye"
        assert seen == [(("203.0.113.9", 51000), b"secret")]
        assert server.stats.tls_failed == 0


@pytest.mark.parametrize("bad", [["not-an-ip"], ["10.0.0.0/33"], "127.0.0.1"])
async def test_bad_trusted_proxies_are_a_value_error(bad: object) -> None:
    """A trusted proxy that is not an address or CIDR (or a bare string) raises ValueError."""
    with trio.fail_after(GUARD), pytest.raises(ValueError):
        await trio_tcp.serve(Seen().handler, 0, proxy_protocol=True, trusted_proxies=bad)  # type: ignore[arg-type]


def test_cli_print_mode_names_the_original_client() -> None:
    """`serve --proxy-protocol` prints the client address from the header."""
    import socket

    server = ServeProcess("--port", "0", "--proxy-protocol", "--trusted-proxy", "127.0.0.1")
    try:
        with socket.create_connection(("127.0.0.1", server.port), timeout=GUARD) as sock:
            sock.sendall(V1 + bytes([12, 34]))
            server.wait_for("<Buffer 0c 22>")
        assert "connected from 203.0.113.9:51000" in server.wait_for("connected from")
        assert server.stop() == 0
    finally:
        server.kill()


def test_cli_rejects_a_bad_trusted_proxy() -> None:
    """`--trusted-proxy nonsense` is a usage error (exit 2, one line)."""
    from _cli_process import run_cli

    result = run_cli("serve", "--port", "0", "--proxy-protocol", "--trusted-proxy", "nonsense")
    assert result.returncode == 2
    assert "not an IP address or CIDR network" in result.stderr
    assert result.stderr.count("\n") == 1


@pytest.mark.parametrize("split", [False, True], ids=["header-with-data", "header-alone"])
async def test_byte_counts_leave_the_proxy_header_out(nursery: trio.Nursery, split: bool) -> None:
    """conn.bytes_received and server.stats count the client's bytes, not the PROXY header,
    however the header and the data were split into packets."""
    counts: list[int] = []
    done = trio.Event()

    async def handler(conn: trio_tcp.Connection) -> None:
        assert await conn.receive_exactly(5) == b"hello"
        counts.append(conn.bytes_received)
        await conn.send_all(b"bye")
        done.set()

    with trio.fail_after(GUARD):
        server: trio_tcp.Server = await nursery.start(
            lambda task_status: trio_tcp.serve(
                handler, 0, proxy_protocol=True, task_status=task_status
            )
        )
        chunks = (V1, b"hello") if split else (V1 + b"hello",)
        stream = await trio.open_tcp_stream("127.0.0.1", server.port or 0)
        async with stream:
            for chunk in chunks:
                await stream.send_all(chunk)
                await trio.sleep(0.05)  # its own packet, read on its own
            assert await stream.receive_some() == b"bye"
        await done.wait()
        assert counts == [5]
        await server.aclose()
        assert (server.stats.bytes_received, server.stats.bytes_sent) == (5, 3)
