"""The handlers the notebooks teach, one place, each tested under concurrency and cancellation.

A notebook shows the code of a handler and imports it from here, so the pattern a learner copies
is the one ``tests/test_lessons.py`` runs through :mod:`trio_tcp.testing` (cancellation sweep,
concurrent clients, faults, a member that never reads).
"""

from __future__ import annotations

import trio

from .._connection import Connection
from .._exceptions import EndOfStream
from .._format import format_buffer

__all__ = [
    "ChatRoom",
    "NaiveChatRoom",
    "calculator",
    "echo",
    "greeting_then_lines",
    "polite_echo",
    "print_buffers",
    "print_chunks",
    "shout_chunks",
    "shout_lines",
]


# -- notebook 1 --------------------------------------------------------------------------------


async def print_chunks(stream: trio.abc.ReceiveStream) -> None:
    """Plain Trio: print every chunk as Node prints a ``Buffer``, until the peer ends the stream.

    Cancellation: stops at the read in progress; nothing is held across reads.
    """
    async for chunk in stream:
        print("server got <Buffer " + bytes(chunk).hex(" ") + ">")


async def print_buffers(conn: Connection) -> None:
    """trio_tcp: the same, with :func:`trio_tcp.format_buffer`.

    Cancellation: stops at the read in progress.
    """
    async for chunk in conn:
        print("server got", format_buffer(chunk))


async def echo(conn: Connection) -> None:
    """Send every chunk back as it comes, until the peer ends its side.

    Cancellation: a cancelled ``send_all`` may have sent part of a chunk; the server closes the
    connection afterwards, so the peer sees a prefix of the echo and then the end.
    """
    async for chunk in conn:
        await conn.send_all(chunk)


# -- notebooks 2 and 5 -------------------------------------------------------------------------


async def shout_lines(conn: Connection) -> None:
    """Answer every line with the line in capitals in angle brackets: ``hi`` → ``<HI>``.

    Reads whole lines from the connection's buffer, so it does not matter how the client's
    writes were split or joined on the way.

    Cancellation: a cancelled read keeps the received bytes buffered (nothing is lost).
    """
    async for line in conn.lines():
        await conn.send_all(b"<" + line.upper() + b">\n")


async def shout_chunks(conn: Connection) -> None:
    """The bug of notebook 2, kept here so the tests can show it is caught: one chunk = one line.

    Right as long as every write arrives as exactly one read; wrong as soon as TCP (or a
    fault from :mod:`trio_tcp.testing`) splits or joins them. Do not copy it.

    Cancellation: stops at the read or send in progress.
    """
    async for chunk in conn:
        await conn.send_all(b"<" + chunk.rstrip(b"\n").upper() + b">\n")


async def greeting_then_lines(conn: Connection) -> None:
    """Read a greeting framed by a 4-byte big-endian length, then answer lines in capitals.

    Prints what it reads (notebook 2 shows it). Buffered reads (``receive_exactly``,
    ``lines()``) make the message boundaries independent of how the bytes arrive.

    Cancellation: a cancelled read keeps the received bytes buffered.
    """
    try:
        header = await conn.receive_exactly(4)
    except EndOfStream:
        return  # the client left without a word: nothing to answer
    greeting = await conn.receive_exactly(int.from_bytes(header, "big"))
    print("greeting:", greeting)
    async for line in conn.lines():
        print("line:", line)
        await conn.send_all(line.upper() + b"\n")


# -- notebook 3 --------------------------------------------------------------------------------


class NaiveChatRoom:
    """The chat room that looks right and is not: every speaker's task sends to every member.

    Kept to show *why* it fails (``tests/test_lessons.py`` checks that it does): when a member
    stops reading, its socket buffers fill and ``send_all`` to it waits; the next speaker's task
    then calls ``send_all`` on the same connection while the first is still inside it, and
    Trio raises ``trio.BusyResourceError`` ("another task is already sending"). Even without
    that, every speaker waits for the slowest member.
    """

    def __init__(self) -> None:
        self.members: set[Connection] = set()

    async def broadcast(self, text: bytes) -> None:
        """Send ``text`` to each member in turn (this is the mistake).

        Cancellation: a cancelled ``send_all`` may leave part of ``text`` sent to a member.
        """
        for member in list(self.members):
            try:
                await member.send_all(text)
            except (trio.BrokenResourceError, trio.ClosedResourceError):
                self.members.discard(member)

    async def handler(self, conn: Connection) -> None:
        """Join with a name line, then broadcast every line.

        Cancellation: stops at the read or the send in progress; the member leaves the room.
        """
        try:
            name = (await conn.receive_line()).decode(errors="replace")
        except EndOfStream:
            return  # left before saying its name
        self.members.add(conn)
        try:
            async for line in conn.lines():
                await self.broadcast(f"{name}: {line.decode(errors='replace')}\n".encode())
        finally:
            self.members.discard(conn)


class ChatRoom:
    """A chat room where nobody waits for anybody: a bounded queue and a writer task per member.

    ``serve(room.handler, ...)``. A client's first line is its name; every later line goes to
    every member (the speaker too) as ``name: line``; joining and leaving are announced.

    Broadcasting never waits: it drops the line into each member's queue (a Trio memory channel
    of ``queue_size`` lines) with ``send_nowait``. Each member's own writer task takes lines
    from its queue and sends them, so only one task ever sends on a connection (no
    ``BusyResourceError``), and a member who does not read only fills its own queue. When a
    queue is full, that member misses the line (counted in :attr:`dropped`); a stricter server
    would disconnect it instead.

    Attributes:
      queue_size: lines buffered per member before its lines are dropped.
      dropped: lines not delivered because a member's queue was full, over the room's life.
    """

    def __init__(self, *, queue_size: int = 64) -> None:
        self.queue_size = queue_size
        self.dropped = 0
        self._queues: dict[Connection, trio.MemorySendChannel[bytes]] = {}

    @property
    def members(self) -> int:
        """How many members are in the room now."""
        return len(self._queues)

    def broadcast(self, text: bytes) -> None:
        """Queue ``text`` for every member; never waits (a plain function, not async)."""
        for queue in list(self._queues.values()):
            try:
                queue.send_nowait(text)
            except trio.WouldBlock:
                self.dropped += 1
            except (trio.BrokenResourceError, trio.ClosedResourceError):
                pass  # that member's writer has ended: it is leaving

    async def _writer(
        self,
        conn: Connection,
        queue: trio.MemoryReceiveChannel[bytes],
        member_scope: trio.CancelScope,
    ) -> None:
        async with queue:
            try:
                async for text in queue:
                    await conn.send_all(text)
            except (trio.BrokenResourceError, trio.ClosedResourceError):
                member_scope.cancel()  # the member is gone: stop reading from it too

    async def handler(self, conn: Connection) -> None:
        """One member: read the name, then lines until the client ends its side.

        Cancellation: cancelling it cancels the member's writer too; the member leaves the
        room in a ``finally`` that does not await (so it needs no shield), and lines still in
        its queue are dropped.
        """
        try:
            name = (await conn.receive_line()).decode(errors="replace")
        except EndOfStream:
            return  # left before saying its name
        queue, outbox = trio.open_memory_channel[bytes](self.queue_size)
        async with trio.open_nursery() as nursery:
            nursery.start_soon(self._writer, conn, outbox, nursery.cancel_scope)
            self._queues[conn] = queue
            try:
                self.broadcast(f"* {name} joined\n".encode())
                async for line in conn.lines():
                    self.broadcast(f"{name}: {line.decode(errors='replace')}\n".encode())
            finally:
                del self._queues[conn]
                queue.close()  # sync: the writer sends what is queued, then ends
                self.broadcast(f"* {name} left\n".encode())


# -- notebook 4 --------------------------------------------------------------------------------


async def calculator(conn: Connection) -> None:
    """Answer ``a/b`` lines with ``a // b``; ``1/0`` crashes the handler (on purpose).

    Notebook 4 uses it to show that a crashing handler closes only its own connection.

    Cancellation: stops at the read or send in progress.
    """
    async for line in conn.lines():
        a, b = line.split(b"/")
        await conn.send_all(b"%d\n" % (int(a) // int(b)))


async def polite_echo(conn: Connection) -> None:
    """Echo lines until the server starts closing, then say ``goodbye`` and return.

    ``conn.lines(until_closing=True)`` ends like an end of stream once the server is closing
    and the peer is quiet (nothing buffered or waiting) at a line boundary, waking up if it
    was waiting for a line when the shutdown began; a line being answered is always answered
    whole. If the client ends its side first, the handler simply returns.

    Cancellation: at the end of the grace period the server cancels it like any handler.
    """
    async for line in conn.lines(until_closing=True):
        await conn.send_all(line + b"\n")
    if conn.is_closing:
        await conn.send_all(b"goodbye\n")
