"""Output that never blocks the event loop: a writer thread per file descriptor.

A face's concern (the CLI uses it; the library only logs). A ``write()`` to a pipe nobody
reads blocks once the pipe is full (64 KiB on Linux): from the event loop that would freeze
every connection, every timeout and the signal handler. So bytes for stdout and stderr go
to a queue that a daemon thread writes out with ``os.write`` (no Python-level lock is held
while it blocks, so interpreter shutdown never waits for it):

* Printed lines (``await writer.write(key, data)``) are bounded per key (one key per
  connection): a connection whose output is waiting behind a full pipe waits itself, the
  others go on (back-pressure only where the output is).
* Log records (:class:`ThreadedLogHandler`, the stdlib ``QueueHandler`` over this queue) and
  status lines (:meth:`FdWriter.write_nowait`) never wait: beyond ``max_queued`` they are
  dropped and counted.
* At exit, :meth:`FdWriter.drain` waits (bounded) for the queue to empty; what is left is
  dropped, and :func:`report_dropped` says so in one line on stderr if stderr is writable.
* A reader that went away (``EPIPE``, ``| head -1``) marks the writer ``broken`` and calls
  ``on_broken`` once in the event loop; everything written later is dropped silently.
"""

from __future__ import annotations

import collections
import contextlib
import errno
import logging
import logging.handlers
import os
import select
import threading
from collections.abc import Callable
from typing import Final

import trio

__all__ = [
    "FdWriter",
    "ThreadedLogHandler",
    "report_dropped",
    "write_if_writable",
    "writer_for",
    "writing_to",
]

#: Bytes one connection may have waiting for the output thread before its next line waits:
#: a few hundred lines, so a flood from one peer stays bounded (``max_connections`` of
#: them at most) while an ordinary burst never waits.
DEFAULT_MAX_PENDING_PER_KEY: Final = 16 * 1024
#: Log records and status lines queued (never waited for) before new ones are dropped.
DEFAULT_MAX_QUEUED: Final = 10_000


class FdWriter:
    """Write to ``fd`` from a daemon thread; the event loop only queues.

    Attributes:
      broken: the ``OSError`` that ended writing (``EPIPE``...), else ``None``.
      dropped_lines, dropped_bytes: output thrown away (queue full, broken, or undelivered
        at exit).
    """

    def __init__(
        self,
        fd: int,
        *,
        max_pending_per_key: int = DEFAULT_MAX_PENDING_PER_KEY,
        max_queued: int = DEFAULT_MAX_QUEUED,
    ) -> None:
        self.fd = fd
        self.broken: OSError | None = None
        self.dropped_lines = 0
        self.dropped_bytes = 0
        self.on_broken: Callable[[OSError], None] | None = None
        self._max_pending = max_pending_per_key
        self._max_queued = max_queued
        self._items: collections.deque[tuple[object, bytes]] = collections.deque()
        self._unkeyed = 0  # queued items with no key (logs, status lines)
        self._cond = threading.Condition()
        self._writing = False
        # Event-loop side: bytes queued per key, and the tasks waiting for their key.
        self._pending: dict[object, int] = {}
        self._waiters: dict[object, trio.Event] = {}
        self._empty: trio.Event | None = None
        self._token: trio.lowlevel.TrioToken | None = None
        self._thread = threading.Thread(target=self._run, name=f"trio-tcp fd {fd}", daemon=True)
        self._thread.start()

    # ------------------------------------------------------------------ event loop side

    def attach(self) -> None:
        """Bind to the running Trio loop (for the written/broken callbacks)."""
        self._token = trio.lowlevel.current_trio_token()

    async def write(self, key: object, data: bytes) -> None:
        """Queue ``data``; wait first while ``key`` has too much output waiting.

        Cancellation: a cancelled call queued nothing.
        """
        pending = self._pending.get(key, 0)
        while pending >= self._max_pending and self.broken is None:
            event = self._waiters.get(key)
            if event is None:
                event = self._waiters[key] = trio.Event()
            await event.wait()
            pending = self._pending.get(key, 0)
        if self.broken is not None:
            await trio.lowlevel.checkpoint()
            self._drop(data)
            return
        self._pending[key] = pending + len(data)
        with self._cond:
            self._items.append((key, data))
            self._cond.notify()
        await trio.lowlevel.checkpoint()

    def write_nowait(self, data: bytes) -> None:
        """Queue ``data`` without waiting, from any thread; dropped if the queue is full."""
        with self._cond:
            if self.broken is not None or self._unkeyed >= self._max_queued:
                self._drop(data)
                return
            self._unkeyed += 1
            self._items.append((None, data))
            self._cond.notify()

    async def drain(self, timeout: float) -> bool:
        """Wait up to ``timeout`` seconds for everything queued to be written; True if it was.

        Cancellation: stops waiting; the queue is left as it is.
        """
        with trio.move_on_after(timeout):
            while True:
                with self._cond:
                    if (not self._items and not self._writing) or self.broken is not None:
                        return True
                    self._empty = trio.Event()
                    empty = self._empty
                await empty.wait()
        return False

    def discard_queued(self) -> None:
        """Give up on what is still queued (counted as dropped)."""
        with self._cond:
            while self._items:
                _key, data = self._items.popleft()
                self._drop(data)
            self._unkeyed = 0

    def _drop(self, data: bytes) -> None:
        self.dropped_lines += data.count(b"\n") or 1
        self.dropped_bytes += len(data)

    def _written(self, key: object, size: int) -> None:
        if key is not None:
            left = self._pending.get(key, 0) - size
            if left > 0:
                self._pending[key] = left
            else:
                self._pending.pop(key, None)
            if left < self._max_pending:
                event = self._waiters.pop(key, None)
                if event is not None:
                    event.set()
        empty = self._empty
        if empty is not None:
            with self._cond:
                done = not self._items and not self._writing
            if done:
                self._empty = None
                empty.set()

    def _broke(self, exc: OSError) -> None:
        for event in self._waiters.values():
            event.set()
        self._waiters.clear()
        self._written(None, 0)
        if self._empty is not None:
            self._empty.set()
            self._empty = None
        if self.on_broken is not None:
            self.on_broken(exc)

    def _call_soon(self, fn: Callable[..., object], *args: object) -> None:
        token = self._token
        if token is None:
            return
        with contextlib.suppress(trio.RunFinishedError):
            token.run_sync_soon(fn, *args)

    # ------------------------------------------------------------------ the thread

    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._items:
                    self._cond.wait()
                key, data = self._items.popleft()
                if key is None:
                    self._unkeyed -= 1
                self._writing = True
            try:
                view = memoryview(data)
                while view:
                    view = view[os.write(self.fd, view) :]
            except OSError as exc:
                with self._cond:
                    self._writing = False
                    self.broken = exc
                    self._drop(data)
                    while self._items:
                        self._drop(self._items.popleft()[1])
                    self._unkeyed = 0
                self._call_soon(self._broke, exc)
                return
            with self._cond:
                self._writing = False
            self._call_soon(self._written, key, len(data))


# One writer thread per descriptor, made once per process (the CLI may run many times).
_writers: dict[int, FdWriter] = {}


def writer_for(fd: int) -> FdWriter:
    """The process's :class:`FdWriter` for ``fd`` (a new one if the old one broke)."""
    writer = _writers.get(fd)
    if writer is None or writer.broken is not None:
        writer = _writers[fd] = FdWriter(fd)
    return writer


def writing_to(fd: int) -> bool:
    """Whether this process writes ``fd`` through a writer thread (``serve`` does)."""
    return fd in _writers


class _WriterQueue:
    """What ``QueueHandler`` puts records into: the formatted line goes to the writer."""

    def __init__(self, writer: FdWriter) -> None:
        self.writer = writer

    def put_nowait(self, record: logging.LogRecord) -> None:
        self.writer.write_nowait((str(record.msg) + "\n").encode("utf-8", "replace"))


class ThreadedLogHandler(logging.handlers.QueueHandler):
    """The stdlib ``QueueHandler`` writing through an :class:`FdWriter`: never blocks.

    ``QueueHandler.prepare`` formats the record (traceback included) in the calling thread;
    the writer's thread does the blocking write.
    """

    def __init__(self, writer: FdWriter) -> None:
        super().__init__(_WriterQueue(writer))  # type: ignore[arg-type]
        self.writer = writer


def write_if_writable(fd: int, data: bytes) -> bool:
    """Write a short ``data`` (under ``PIPE_BUF``) only if ``fd`` would take it without waiting."""
    try:
        poller = select.poll()
        poller.register(fd, select.POLLOUT)
        if not poller.poll(0):
            return False
        os.write(fd, data)
    except OSError as exc:
        if exc.errno not in (errno.EPIPE, errno.EAGAIN, errno.EBADF):
            raise
        return False
    return True


def report_dropped(writers: dict[str, FdWriter], stderr_fd: int) -> None:
    """One line on stderr (if writable) counting the output that could not be written."""
    parts = [
        f"{writer.dropped_lines:,} lines ({writer.dropped_bytes:,} bytes) of {name}"
        for name, writer in writers.items()
        if writer.dropped_bytes and not (writer.broken and writer.broken.errno == errno.EPIPE)
    ]
    if parts:
        line = f"trio-tcp: output not written (nobody was reading it): {', '.join(parts)}\n"
        write_if_writable(stderr_fd, line.encode())
