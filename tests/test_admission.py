"""Admission control (allow/deny, per-peer limit, accept rate) and connection log events."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator
from typing import Any

import pytest
import trio
from _cli_process import ServeProcess, run_cli
from _waiting import HandlerLog

import trio_tcp
from trio_tcp._admission import Admission
from trio_tcp._refusal import Refused
from trio_tcp.framing._proxy import encode_proxy_header_v1

GUARD = 30


async def hold(conn: trio_tcp.Connection) -> None:
    """Echo until the client closes."""
    async for chunk in conn:
        await conn.send_all(chunk)


@pytest.fixture
async def nursery() -> AsyncIterator[trio.Nursery]:
    """A nursery cancelled at the end of the test."""
    async with trio.open_nursery() as nursery:
        yield nursery
        nursery.cancel_scope.cancel()


async def start(
    nursery: trio.Nursery, handler: trio_tcp.Handler = hold, **options: Any
) -> trio_tcp.Server:
    server: trio_tcp.Server = await nursery.start(
        lambda task_status: trio_tcp.serve(handler, 0, task_status=task_status, **options)
    )
    return server


async def served(port: int, header: bytes = b"") -> bool:
    """Whether a new connection gets b"ping" echoed (False: the server closed it)."""
    stream = await trio.open_tcp_stream("127.0.0.1", port)
    async with stream:
        try:
            await stream.send_all(header + b"ping")
            return await stream.receive_some() == b"ping"
        except trio.BrokenResourceError:
            return False


# ---------------------------------------------------------------------- the rules, no sockets


def test_deny_wins_over_allow() -> None:
    """An address on both lists is refused; one on the allow list only is admitted."""
    admission = Admission(allow=["10.0.0.0/8"], deny=["10.0.0.66"])
    assert admission.admit(("10.1.2.3", 5)) is not None
    with pytest.raises(Refused) as info:
        admission.admit(("10.0.0.66", 5))
    assert info.value.kind == "refused_denied"
    with pytest.raises(Refused, match="not on the allow list"):
        admission.admit(("192.0.2.1", 5))


def test_ipv4_mapped_ipv6_is_judged_as_ipv4() -> None:
    """::ffff:192.0.2.1 matches a 192.0.2.0/24 deny entry."""
    admission = Admission(deny=["192.0.2.0/24"])
    with pytest.raises(Refused):
        admission.admit(("::ffff:192.0.2.1", 5))


def test_per_peer_limit_counts_live_connections() -> None:
    """The (n+1)th live connection from one IP is refused until one is released."""
    admission = Admission(max_connections_per_peer=2)
    keys = [admission.admit(("192.0.2.1", port)) for port in (1, 2)]
    with pytest.raises(Refused) as info:
        admission.admit(("192.0.2.1", 3))
    assert info.value.kind == "refused_per_peer"
    assert admission.admit(("192.0.2.2", 1)) is not None  # another IP is unaffected
    admission.release(keys[0])
    admission.admit(("192.0.2.1", 4))


@pytest.mark.parametrize(
    "options",
    [
        {"max_connections_per_peer": 0},
        {"max_accept_rate": 0},
        {"allow": "10.0.0.1"},
        {"deny": ["nope"]},
    ],
)
def test_bad_options_raise_value_error(options: dict[str, Any]) -> None:
    """Out-of-range limits and unparsable networks are ValueErrors."""
    with pytest.raises(ValueError):
        Admission(**options)


async def test_accept_rate_is_a_token_bucket(autojump_clock: trio.testing.MockClock) -> None:
    """rate=2/s: a burst of 2, then one more per half second."""
    admission = Admission(max_accept_rate=2)
    peer = ("192.0.2.1", 1)
    admission.admit(peer)
    admission.admit(peer)
    with pytest.raises(Refused) as info:
        admission.admit(peer)
    assert info.value.kind == "refused_rate"
    await trio.sleep(0.5)
    admission.admit(peer)
    with pytest.raises(Refused):
        admission.admit(peer)


# ---------------------------------------------------------------------- over loopback


async def test_deny_list_refuses_loopback(
    nursery: trio.Nursery, caplog: pytest.LogCaptureFixture
) -> None:
    """deny=["127.0.0.0/8"]: every connection is closed, counted, and logged once."""
    caplog.set_level(logging.DEBUG, logger="trio_tcp")
    with trio.fail_after(GUARD):
        server = await start(nursery, deny=["127.0.0.0/8"])
        results = [await served(server.port or 0) for _ in range(5)]
        assert results == [False] * 5
        assert server.stats.refused_denied == 5
        assert server.stats.accepted == 5
    warnings = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(warnings) == 1  # once per episode, not five times
    assert "deny list" in warnings[0].getMessage()


async def test_allow_list_admits_loopback(nursery: trio.Nursery) -> None:
    """allow=["127.0.0.1"]: loopback clients are served."""
    with trio.fail_after(GUARD):
        server = await start(nursery, allow=["127.0.0.1"])
        assert await served(server.port or 0)
        assert server.stats.refused_denied == 0


async def test_per_peer_limit_over_sockets(nursery: trio.Nursery) -> None:
    """max_connections_per_peer=2: the third concurrent connection is refused, then allowed."""
    handlers = HandlerLog(hold)
    with trio.fail_after(GUARD):
        server = await start(nursery, handlers, max_connections_per_peer=2)
        port = server.port or 0
        first = await trio_tcp.open_connection("127.0.0.1", port)
        second = await trio_tcp.open_connection("127.0.0.1", port)
        for conn in (first, second):
            await conn.send_all(b"hi")
            assert await conn.receive_exactly(2) == b"hi"
        assert not await served(port)
        assert server.stats.refused_per_peer == 1
        await first.aclose()
        await handlers.wait_ended(1)  # the server notices the close
        assert server.stats.active == 1
        assert await served(port)
        await second.aclose()


async def test_accept_rate_over_sockets(
    nursery: trio.Nursery, autojump_clock: trio.testing.MockClock
) -> None:
    """max_accept_rate=1: the second connection in the same instant is refused."""
    with trio.fail_after(1000):
        server = await start(nursery, max_accept_rate=1)
        port = server.port or 0
        assert await served(port)
        assert not await served(port)
        assert server.stats.refused_rate == 1
        await trio.sleep(1.5)
        assert await served(port)


async def test_rules_judge_the_proxy_client_not_the_proxy(nursery: trio.Nursery) -> None:
    """Behind a PROXY header, deny applies to the header's client, not to 127.0.0.1."""
    with trio.fail_after(GUARD):
        server = await start(nursery, proxy_protocol=True, deny=["203.0.113.0/24"])
        port = server.port or 0
        bad = encode_proxy_header_v1("TCP4", ("203.0.113.9", 1), ("127.0.0.1", 2))
        good = encode_proxy_header_v1("TCP4", ("198.51.100.9", 1), ("127.0.0.1", 2))
        assert not await served(port, bad)
        assert await served(port, good)
        assert server.stats.refused_denied == 1


async def test_open_and_close_log_events_carry_fields(
    nursery: trio.Nursery, caplog: pytest.LogCaptureFixture
) -> None:
    """connection_open/close records have peer, duration and bytes each way as extra fields."""
    caplog.set_level(logging.DEBUG, logger="trio_tcp")
    handlers = HandlerLog(hold)
    with trio.fail_after(GUARD):
        server = await start(nursery, handlers)
        async with await trio_tcp.open_connection("127.0.0.1", server.port or 0) as conn:
            client = trio_tcp.format_address(conn.local)
            await conn.send_all(b"12345")
            assert await conn.receive_exactly(5) == b"12345"
        await handlers.wait_ended(1)
        assert server.stats.active == 0 and server.stats.bytes_sent == 5
        await server.aclose()
    events = {getattr(r, "event", None): r for r in caplog.records}
    opened, closed = events["connection_open"], events["connection_close"]
    assert getattr(opened, "peer") == client  # noqa: B009
    assert getattr(closed, "peer") == client  # noqa: B009
    assert getattr(closed, "bytes_received") == 5  # noqa: B009
    assert getattr(closed, "bytes_sent") == 5  # noqa: B009
    assert getattr(closed, "duration") >= 0  # noqa: B009
    assert getattr(closed, "conn_id") == getattr(opened, "conn_id")  # noqa: B009


# ---------------------------------------------------------------------- the command line


def test_cli_deny_and_stats_interval() -> None:
    """`serve --deny 127.0.0.1 --stats-interval` refuses us and reports it in the stats line."""
    import socket

    server = ServeProcess("--port", "0", "--deny", "127.0.0.1", "--stats-interval", "0.2")
    try:
        with socket.create_connection(("127.0.0.1", server.port), timeout=GUARD) as sock:
            sock.sendall(b"x")
            # Closed by the server with our byte unread, which Linux may turn into a reset.
            with contextlib.suppress(ConnectionResetError):
                assert sock.recv(10) == b""
        line = server.wait_for("refused_denied=1", stderr=True)
        assert "trio-tcp: stats: accepted=1 active=0" in line
        assert server.stop() == 0
        assert not [line for line in server.lines if "connected from" in line]
    finally:
        server.kill()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--allow", "nonsense"], "argument --allow: not an IP address"),
        (["--max-per-peer", "0"], "expected a number >= 1"),
        (["--max-accept-rate", "-1"], "expected a number > 0"),
        (["--stats-interval", "nan"], "expected a number > 0"),
    ],
)
def test_cli_admission_usage_errors(args: list[str], message: str) -> None:
    """Bad admission options exit 2 with one line."""
    result = run_cli("serve", "--port", "0", *args)
    assert result.returncode == 2
    assert message in result.stderr
    assert result.stderr.count("\n") == 1
