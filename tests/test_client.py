"""open_connection / open_unix_connection: timeouts, failures, happy eyeballs underneath."""

from __future__ import annotations

import socket
from typing import Any

import pytest
import trio
import trio.testing

import trio_tcp


async def test_connect_timeout_raises_connect_timeout_error(
    autojump_clock: trio.testing.MockClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A connect that hangs ends with ConnectTimeoutError (a TimeoutError) at the deadline."""

    async def hang(*args: Any, **kwargs: Any) -> trio.SocketStream:
        await trio.sleep_forever()
        raise AssertionError("unreachable")

    monkeypatch.setattr(trio, "open_tcp_stream", hang)
    start = trio.current_time()
    with trio.fail_after(60), pytest.raises(TimeoutError) as info:
        await trio_tcp.open_connection("127.0.0.1", 9, connect_timeout=3)
    assert isinstance(info.value, trio_tcp.ConnectTimeoutError)
    assert trio.current_time() - start == pytest.approx(3)


async def test_refused_connection_is_an_oserror() -> None:
    """Nothing listening: OSError whose cause is ConnectionRefusedError."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with trio.fail_after(10), pytest.raises(OSError):
        await trio_tcp.open_connection("127.0.0.1", port)


async def test_port_out_of_range() -> None:
    """Port 0 or > 65535 is a ValueError before any connect."""
    with pytest.raises(ValueError):
        await trio_tcp.open_connection("127.0.0.1", 0)
    with pytest.raises(ValueError):
        await trio_tcp.open_connection("127.0.0.1", 65536)


async def test_localhost_name_connects() -> None:
    """A host name resolves and connects (trio.open_tcp_stream's happy eyeballs)."""

    async def greet(conn: trio_tcp.Connection) -> None:
        await conn.send_all(b"hi")

    with trio.fail_after(10):
        async with trio.open_nursery() as nursery:
            server = await nursery.start(trio_tcp.serve, greet, 0)
            async with await trio_tcp.open_connection("localhost", server.port) as conn:
                assert await conn.receive_exactly(2) == b"hi"
                assert conn.peer == ("127.0.0.1", server.port)
            await server.aclose()
