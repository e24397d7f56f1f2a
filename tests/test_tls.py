"""TLS on the server (`serve(ssl_context=...)`) and the client (`open_connection`)."""

from __future__ import annotations

import logging
import random
import ssl
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import trio
import trio.testing
import trustme
from _cli_process import ServeProcess, run_cli
from _waiting import log_waiter

import trio_tcp

GUARD = 30  # seconds: turns a hang into a failure


@pytest.fixture(scope="module")
def ca() -> trustme.CA:
    """A throwaway certificate authority made at test time."""
    return trustme.CA()


@pytest.fixture(scope="module")
def server_context(ca: trustme.CA) -> ssl.SSLContext:
    """A server context with a certificate for 127.0.0.1 and localhost."""
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1", "localhost").configure_cert(context)
    return context


@pytest.fixture(scope="module")
def client_context(ca: trustme.CA) -> ssl.SSLContext:
    """A client context that trusts the test CA."""
    context = ssl.create_default_context()
    ca.configure_trust(context)
    return context


async def echo(conn: trio_tcp.Connection) -> None:
    async for chunk in conn:
        await conn.send_all(chunk)


@pytest.fixture
async def tls_server(server_context: ssl.SSLContext) -> AsyncIterator[trio_tcp.Server]:
    """An echo server speaking TLS on a free loopback port."""
    async with trio.open_nursery() as nursery:
        server = await nursery.start(
            lambda task_status: trio_tcp.serve(
                echo, 0, ssl_context=server_context, task_status=task_status
            )
        )
        yield server
        await server.aclose()


async def read_until_closed(stream: trio.SocketStream) -> bytes:
    """Everything the server sends before it closes (a reset counts as closed)."""
    received = b""
    try:
        while chunk := await stream.receive_some():
            received += chunk
    except trio.BrokenResourceError:
        pass
    return received


async def test_round_trip_over_tls(
    tls_server: trio_tcp.Server, client_context: ssl.SSLContext
) -> None:
    """A TLS client's bytes reach the handler as plaintext and come back encrypted."""
    with trio.fail_after(GUARD):
        port = tls_server.port
        assert port is not None
        conn = await trio_tcp.open_connection("127.0.0.1", port, ssl_context=client_context)
        async with conn:
            assert isinstance(conn.stream, trio.SSLStream)
            assert conn.peer == ("127.0.0.1", port)  # the address is found through SSLStream
            await conn.send_all(bytes([12, 34]))
            assert await conn.receive_exactly(2) == bytes([12, 34])
            await conn.send_all(b"hello\n")
            assert await conn.receive_line() == b"hello"
        stats = tls_server.stats
        assert stats.tls_failed == 0
        assert stats.accepted == 1


async def test_handler_sees_plaintext_and_the_client_address(
    server_context: ssl.SSLContext, client_context: ssl.SSLContext
) -> None:
    """The handler gets a Connection over SSLStream whose peer is the client's socket."""
    seen: list[tuple[object, bytes]] = []

    async def handler(conn: trio_tcp.Connection) -> None:
        seen.append((conn.peer, await conn.receive_exactly(3)))

    with trio.fail_after(GUARD):
        async with trio.open_nursery() as nursery:
            server = await nursery.start(
                lambda task_status: trio_tcp.serve(
                    handler, 0, ssl_context=server_context, task_status=task_status
                )
            )
            conn = await trio_tcp.open_connection(
                "127.0.0.1", server.port, ssl_context=client_context, server_hostname="localhost"
            )
            async with conn:
                client_address = conn.local
                await conn.send_all(b"abc")
                assert await conn.receive_some() == b""  # the handler returned: closed
            await server.aclose()
    assert seen == [(client_address, b"abc")]


async def test_client_rejects_an_untrusted_certificate(tls_server: trio_tcp.Server) -> None:
    """open_connection with a context that does not trust the CA fails the handshake."""
    with trio.fail_after(GUARD), log_waiter() as logs:
        untrusting = ssl.create_default_context()  # system CAs only: not our test CA
        with pytest.raises(trio.BrokenResourceError) as info:
            await trio_tcp.open_connection(
                "127.0.0.1", tls_server.port or 0, ssl_context=untrusting
            )
        assert isinstance(info.value.__cause__, ssl.SSLCertVerificationError)
        await logs.wait_for("refused")  # the server sees the aborted handshake
        assert tls_server.stats.tls_failed == 1


async def test_client_checks_the_server_hostname(
    tls_server: trio_tcp.Server, client_context: ssl.SSLContext
) -> None:
    """A name the certificate does not cover is refused by the client."""
    with trio.fail_after(GUARD):
        with pytest.raises(trio.BrokenResourceError) as info:
            await trio_tcp.open_connection(
                "127.0.0.1",
                tls_server.port or 0,
                ssl_context=client_context,
                server_hostname="example.com",
            )
        assert isinstance(info.value.__cause__, ssl.SSLCertVerificationError)


@pytest.mark.parametrize(
    "first_bytes",
    [
        pytest.param(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n", id="plain-http"),
        pytest.param(bytes([12, 34]), id="tutorial-bytes"),
        pytest.param(random.Random(7).randbytes(600), id="garbage"),
    ],
)
async def test_non_tls_bytes_close_only_that_connection(
    tls_server: trio_tcp.Server,
    client_context: ssl.SSLContext,
    caplog: pytest.LogCaptureFixture,
    first_bytes: bytes,
) -> None:
    """A plain-TCP client or garbage ends that connection with a one-line logged reason."""
    caplog.set_level(logging.INFO, logger="trio_tcp")
    with trio.fail_after(GUARD):
        port = tls_server.port or 0
        plain = await trio.open_tcp_stream("127.0.0.1", port)
        async with plain:
            await plain.send_all(first_bytes)
            await plain.send_eof()  # a real client that sent all it had and waits
            reply = await read_until_closed(plain)
        assert b"hello" not in reply and first_bytes not in reply  # never echoed
        assert tls_server.stats.tls_failed == 1
        assert tls_server.stats.failed == 0
        # The server still serves TLS clients.
        async with await trio_tcp.open_connection(
            "127.0.0.1", port, ssl_context=client_context
        ) as conn:
            await conn.send_all(b"still here")
            assert await conn.receive_exactly(10) == b"still here"
    refusals = [r for r in caplog.records if "TLS handshake failed" in r.getMessage()]
    assert len(refusals) == 1
    assert refusals[0].levelno == logging.WARNING  # visible at the CLI's default verbosity
    assert refusals[0].exc_info is None  # a reason, not a traceback
    assert "refused" in refusals[0].getMessage()


async def test_peer_that_closes_mid_handshake_is_counted(tls_server: trio_tcp.Server) -> None:
    """A peer that connects and hangs up before the handshake is one tls_failed, not a crash."""
    with trio.fail_after(GUARD):
        plain = await trio.open_tcp_stream("127.0.0.1", tls_server.port or 0)
        await plain.send_eof()
        await read_until_closed(plain)
        await plain.aclose()
        stats = tls_server.stats
        assert (stats.tls_failed, stats.failed, stats.active) == (1, 0, 0)


async def test_stalled_handshake_times_out(
    server_context: ssl.SSLContext,
    autojump_clock: trio.testing.MockClock,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A peer that never sends its ClientHello is closed after handshake_timeout."""
    caplog.set_level(logging.INFO, logger="trio_tcp")
    with trio.fail_after(1000):
        async with trio.open_nursery() as nursery:
            server = await nursery.start(
                lambda task_status: trio_tcp.serve(
                    echo,
                    0,
                    ssl_context=server_context,
                    handshake_timeout=7,
                    task_status=task_status,
                )
            )
            started = trio.current_time()
            silent = await trio.open_tcp_stream("127.0.0.1", server.port)
            async with silent:
                assert await read_until_closed(silent) == b""
            assert trio.current_time() - started == pytest.approx(7, abs=0.5)
            assert server.stats.tls_failed == 1
            await server.aclose()
    assert any("did not finish within 7 s" in r.getMessage() for r in caplog.records)


async def test_stalled_handshakes_count_against_max_connections(
    server_context: ssl.SSLContext,
    client_context: ssl.SSLContext,
    autojump_clock: trio.testing.MockClock,
) -> None:
    """A handshake in progress holds a slot; once it times out the slot is free again."""
    with trio.fail_after(1000):
        async with trio.open_nursery() as nursery:
            server = await nursery.start(
                lambda task_status: trio_tcp.serve(
                    echo,
                    0,
                    ssl_context=server_context,
                    max_connections=1,
                    handshake_timeout=5,
                    task_status=task_status,
                )
            )
            silent = await trio.open_tcp_stream("127.0.0.1", server.port)
            # A loopback connect is in the server's accept queue once it returns: when every
            # task waits, the server has accepted it (and waits for its handshake).
            await trio.testing.wait_all_tasks_blocked()
            assert server.stats.accepted == 1
            second = await trio.open_tcp_stream("127.0.0.1", server.port)
            assert await read_until_closed(second) == b""  # dropped at once: the slot is held
            assert server.stats.dropped == 1
            assert await read_until_closed(silent) == b""  # the stalled one times out
            assert server.stats.tls_failed == 1
            async with await trio_tcp.open_connection(
                "127.0.0.1", server.port, ssl_context=client_context
            ) as conn:
                await conn.send_all(b"ok")
                assert await conn.receive_exactly(2) == b"ok"
            await second.aclose()
            await silent.aclose()
            await server.aclose()


async def test_handshake_timeout_must_be_positive(server_context: ssl.SSLContext) -> None:
    """handshake_timeout=0 is refused before anything listens."""
    with trio.fail_after(GUARD), pytest.raises(ValueError, match="handshake_timeout"):
        await trio_tcp.serve(echo, 0, ssl_context=server_context, handshake_timeout=0)


# ---------------------------------------------------------------------- the command line


@pytest.fixture
def cert_files(ca: trustme.CA, tmp_path: Path) -> tuple[str, str, str]:
    """(certificate chain, private key, CA certificate) as PEM files."""
    cert = ca.issue_cert("127.0.0.1", "localhost")
    chain, key, ca_file = tmp_path / "chain.pem", tmp_path / "key.pem", tmp_path / "ca.pem"
    cert.private_key_pem.write_to_path(str(key))
    chain.write_bytes(b"".join(blob.bytes() for blob in cert.cert_chain_pems))
    ca.cert_pem.write_to_path(str(ca_file))
    return str(chain), str(key), str(ca_file)


def test_cli_serve_tls_and_send_tls(cert_files: tuple[str, str, str]) -> None:
    """`serve --tls-cert --tls-key` prints what `send --tls --cafile` sent."""
    chain, key, ca_file = cert_files
    server = ServeProcess("--port", "0", "--tls-cert", chain, "--tls-key", key)
    try:
        result = run_cli("send", "--port", str(server.port), "--tls", "--cafile", ca_file)
        assert result.returncode == 0, result.stderr
        assert "sent <Buffer 0c 22>" in result.stdout
        assert server.wait_for("<Buffer 0c 22>").endswith("<Buffer 0c 22>")
        insecure = run_cli("send", "--port", str(server.port), "--tls", "--insecure", "--hex", "01")
        assert insecure.returncode == 0, insecure.stderr
        server.wait_for("<Buffer 01>")
        assert server.stop() == 0
    finally:
        server.kill()


def test_cli_send_tls_without_the_ca_fails_in_one_line(cert_files: tuple[str, str, str]) -> None:
    """A certificate the client does not trust: exit 1 and one line naming the cause."""
    chain, key, _ca_file = cert_files
    server = ServeProcess("--port", "0", "--tls-cert", chain, "--tls-key", key)
    try:
        result = run_cli("send", "--port", str(server.port), "--tls")
        assert result.returncode == 1
        assert result.stderr.count("\n") == 1
        assert "TLS handshake failed" in result.stderr
        assert "CERTIFICATE_VERIFY_FAILED" in result.stderr
        plain = run_cli("send", "--port", str(server.port))  # no TLS at all: server refuses
        assert plain.returncode == 0  # the bytes were written; the server drops them
        assert server.stop() == 0
        assert not [
            line for line in server.lines if "<Buffer 0c 22>" in line and "sent" not in line
        ]
    finally:
        server.kill()


def test_cli_send_tls_says_which_check_failed(ca: trustme.CA, tmp_path: Path) -> None:
    """A certificate for "localhost" reached as 127.0.0.1: the line says so, not just the code."""
    cert = ca.issue_cert("localhost")
    chain, key, ca_file = tmp_path / "chain.pem", tmp_path / "key.pem", tmp_path / "ca.pem"
    cert.private_key_pem.write_to_path(str(key))
    chain.write_bytes(b"".join(blob.bytes() for blob in cert.cert_chain_pems))
    ca.cert_pem.write_to_path(str(ca_file))
    server = ServeProcess("--port", "0", "--tls-cert", str(chain), "--tls-key", str(key))
    try:
        result = run_cli("send", "--port", str(server.port), "--tls", "--cafile", str(ca_file))
        assert result.returncode == 1
        assert result.stderr.count("\n") == 1, result.stderr
        assert "CERTIFICATE_VERIFY_FAILED: " in result.stderr
        assert "certificate is not valid for '127.0.0.1'" in result.stderr
        untrusted = run_cli("send", "--port", str(server.port), "--host", "localhost", "--tls")
        assert untrusted.returncode == 1
        assert "CERTIFICATE_VERIFY_FAILED: unable to get local issuer" in untrusted.stderr
        assert server.stop() == 0
    finally:
        server.kill()


@pytest.mark.parametrize(
    ("args", "message", "code"),
    [
        (["serve", "--tls-key", "k.pem"], "--tls-key: needs --tls-cert", 2),
        (["serve", "--port", "0", "--tls-cert", "/nonexistent.pem"], "no such file", 1),
        (["send", "--cafile", "ca.pem"], "need --tls", 2),
        (["send", "--tls", "--insecure", "--cafile", "ca.pem"], "cannot be used together", 2),
    ],
)
def test_cli_tls_option_errors(args: list[str], message: str, code: int) -> None:
    """Inconsistent or unreadable TLS options: one line on stderr and the right exit code."""
    result = run_cli(*args)
    assert result.returncode == code, result.stderr
    assert message in result.stderr
    assert result.stderr.count("\n") == 1


async def test_a_peer_without_close_notify_after_the_exchange_is_a_clean_close(
    tls_server: trio_tcp.Server,
    client_context: ssl.SSLContext,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Closing the socket without TLS's close_notify (Python's ssl default) is not a reset."""
    caplog.set_level(logging.INFO, logger="trio_tcp")
    with trio.fail_after(GUARD):
        conn = await trio_tcp.open_connection(
            "127.0.0.1", tls_server.port or 0, ssl_context=client_context
        )
        await conn.send_all(b"ping")
        assert await conn.receive_exactly(4) == b"ping"
        assert isinstance(conn.stream, trio.SSLStream)
        await conn.stream.transport_stream.aclose()  # no close_notify
        await tls_server.aclose()
    stats = tls_server.stats
    assert (stats.reset, stats.failed, stats.protocol_errors) == (0, 0, 0)
    assert stats.bytes_received == stats.bytes_sent == 4
    assert not [r for r in caplog.records if "broke" in r.getMessage()]
