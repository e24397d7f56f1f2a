"""Clogged stream pairs for Trio's conformance checkers (``check_*_stream``'s second maker)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TypeVar

import trio
import trio.testing

PairT = TypeVar("PairT", bound=tuple[trio.abc.SendStream, trio.abc.SendStream])


async def fill(stream: trio.abc.SendStream) -> None:
    """Send until the kernel's buffers are full (the sender blocks), like Trio's own tests."""
    async with trio.open_nursery() as nursery:

        async def sender() -> None:
            while True:
                await stream.send_all(b"x" * 10_000)

        nursery.start_soon(sender)
        await trio.testing.wait_all_tasks_blocked()
        nursery.cancel_scope.cancel()


def clogged(maker: Callable[[], Awaitable[PairT]]) -> Callable[[], Awaitable[PairT]]:
    """A maker of the same pairs with both directions' buffers filled first."""

    async def make() -> PairT:
        pair = await maker()
        await fill(pair[0])
        await fill(pair[1])
        return pair

    return make
