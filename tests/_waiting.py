"""Waiting for a server to get somewhere, without real-time polling.

A test that loops ``while server.stats.x == 0: await trio.sleep(0.01)`` costs wakeups and
reads like a timing test. These wait on events instead:

* :class:`HandlerLog` wraps a handler and wakes waiters each time one starts or ends. The
  server's own bookkeeping for a connection (``stats``, ``connections``, the per-peer
  slots, the close log) is done without an await right after the handler returns, so it
  is complete by the time a waiter runs.
* :class:`LogWaiter` wakes waiters on each ``trio_tcp`` log record; a refused connection
  (admission, PROXY, TLS) is counted and logged in the same step, so "a refusal was
  logged" means "its counter moved".
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import trio

from trio_tcp import Connection


class _Changes:
    def __init__(self) -> None:
        self._changed = trio.Event()

    def notify(self) -> None:
        self._changed.set()
        self._changed = trio.Event()

    async def until(self, condition: Callable[[], bool]) -> None:
        while not condition():
            await self._changed.wait()


class HandlerLog:
    """``server = serve(HandlerLog(handler), ...)``; ``await log.wait_ended(2)``."""

    def __init__(self, handler: Callable[[Connection], Any]) -> None:
        self.handler = handler
        self.started = 0
        self.ended = 0
        self._changes = _Changes()

    async def __call__(self, conn: Connection) -> None:
        self.started += 1
        self._changes.notify()
        try:
            await self.handler(conn)
        finally:
            self.ended += 1
            self._changes.notify()

    async def wait_started(self, count: int) -> None:
        """Return once ``count`` handlers have started."""
        await self._changes.until(lambda: self.started >= count)

    async def wait_ended(self, count: int) -> None:
        """Return once ``count`` handlers have returned (or raised)."""
        await self._changes.until(lambda: self.ended >= count)


class LogWaiter(logging.Handler):
    """Collects ``trio_tcp`` log records and wakes waiters on each (use :func:`log_waiter`)."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []
        self._changes = _Changes()

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)
        self._changes.notify()

    def count(self, text: str) -> int:
        return sum(1 for record in self.records if text in record.getMessage())

    async def wait_for(self, text: str, count: int = 1) -> None:
        """Return once ``count`` records containing ``text`` were logged."""
        await self._changes.until(lambda: self.count(text) >= count)


@contextmanager
def log_waiter() -> Iterator[LogWaiter]:
    """A :class:`LogWaiter` on the ``trio_tcp`` logger (at DEBUG) for the ``with`` block."""
    logger = logging.getLogger("trio_tcp")
    waiter = LogWaiter()
    level = logger.level
    logger.setLevel(logging.DEBUG)
    logger.addHandler(waiter)
    try:
        yield waiter
    finally:
        logger.removeHandler(waiter)
        logger.setLevel(level)
