"""open_tcp_listeners / open_unix_listener details not covered through serve()."""

from __future__ import annotations

from typing import Any

import pytest
import trio
import trio.testing

import trio_tcp
from trio_tcp import _listeners


async def test_cancelled_part_way_closes_the_listeners_already_bound(
    autojump_clock: trio.testing.MockClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A cancellation between two binds closes the first socket instead of leaking it."""
    bound: list[trio.SocketListener] = []
    real_bind_one = _listeners._bind_one

    async def bind_then_hang(*args: Any) -> trio.SocketListener:
        if bound:
            await trio.sleep_forever()
        listener = await real_bind_one(*args)
        bound.append(listener)
        return listener

    monkeypatch.setattr(_listeners, "_bind_one", bind_then_hang)
    with trio.move_on_after(1) as scope:
        await trio_tcp.open_tcp_listeners(0, host=["127.0.0.1", "127.0.0.2"])
    assert scope.cancelled_caught
    [first] = bound
    assert first.socket.fileno() == -1


async def test_port_out_of_range_is_a_value_error() -> None:
    """A port outside 0-65535 is refused before anything is bound."""
    with pytest.raises(ValueError):
        await trio_tcp.open_tcp_listeners(70000)


async def test_empty_unix_path_is_a_value_error() -> None:
    """An empty path is refused before a socket exists (trio's bind() raised IndexError)."""
    with pytest.raises(ValueError, match="must not be empty"):
        await trio_tcp.open_unix_listener("")
