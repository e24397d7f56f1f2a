"""Reference solutions and typical first attempts for the notebooks' exercises.

Look here after trying. ``tests/test_lessons.py`` checks that every ``solution_*`` passes its
exercise's check and every ``first_try_*`` (the mistake most people make first, which the
notebooks use as the starting point) is flagged.
"""

from __future__ import annotations

from .._connection import Connection
from .._server import Handler
from ..framing import LineFramer
from ._handlers import ChatRoom, NaiveChatRoom, echo, polite_echo, shout_chunks, shout_lines

__all__ = [
    "first_try_batching",
    "first_try_byte_count",
    "first_try_chat",
    "first_try_echo",
    "first_try_line_length",
    "first_try_polite",
    "first_try_shout",
    "solution_batching",
    "solution_byte_count",
    "solution_chat",
    "solution_echo",
    "solution_line_length",
    "solution_polite",
    "solution_shout",
]


# 1 · echo
async def solution_echo(conn: Connection) -> None:
    """:func:`trio_tcp.lessons.echo`.

    Cancellation: as the handler it calls.
    """
    await echo(conn)


async def first_try_echo(conn: Connection) -> None:
    """One read, one write: echoes the first chunk only.

    Cancellation: stops at the read or send in progress.
    """
    data = await conn.receive_some()
    await conn.send_all(data)


# 2 · the length of every line
async def solution_line_length(conn: Connection) -> None:
    """Whole lines from the buffer; the length of each, as a line.

    Cancellation: stops at the read or send in progress.
    """
    async for line in conn.lines():
        await conn.send_all(b"%d\n" % len(line))


async def first_try_line_length(conn: Connection) -> None:
    """A chunk taken for a line.

    Cancellation: stops at the read or send in progress.
    """
    async for chunk in conn:
        await conn.send_all(b"%d\n" % len(chunk.rstrip(b"\n")))


# 3 · a chat room
def solution_chat() -> Handler:
    """A fresh :class:`ChatRoom`'s handler."""
    return ChatRoom().handler


def first_try_chat() -> Handler:
    """A fresh :class:`NaiveChatRoom`'s handler (sends to members in turn)."""
    return NaiveChatRoom().handler


# 4 · a polite handler
async def solution_polite(conn: Connection) -> None:
    """:func:`trio_tcp.lessons.polite_echo`.

    Cancellation: as the handler it calls.
    """
    await polite_echo(conn)


async def first_try_polite(conn: Connection) -> None:
    """Echoes lines and never looks at ``closing``.

    Cancellation: stops at the read or send in progress.
    """
    async for line in conn.lines():
        await conn.send_all(line + b"\n")
    await conn.send_all(b"goodbye\n")


# 5 · shouting under faults
async def solution_shout(conn: Connection) -> None:
    """:func:`trio_tcp.lessons.shout_lines`.

    Cancellation: as the handler it calls.
    """
    await shout_lines(conn)


async def first_try_shout(conn: Connection) -> None:
    """:func:`trio_tcp.lessons.shout_chunks` (a chunk taken for a line).

    Cancellation: as the handler it calls.
    """
    await shout_chunks(conn)


# 6 · fewer sends
async def solution_batching(conn: Connection) -> None:
    """Feed each chunk to a sans-IO LineFramer; answer all its lines with one send.

    Cancellation: stops at the read or send in progress.
    """
    framer = LineFramer()
    async for chunk in conn:
        answers = b"".join(line.upper() + b"\n" for line in framer.feed(chunk))
        if answers:
            await conn.send_all(answers)


async def first_try_batching(conn: Connection) -> None:
    """Right answers, one send per line.

    Cancellation: stops at the read or send in progress.
    """
    async for line in conn.lines():
        await conn.send_all(line.upper() + b"\n")


# 7 · count until the client's end of stream
async def solution_byte_count(conn: Connection) -> None:
    """Read until b'' (the client's FIN), answer once, return (the server sends our FIN).

    Cancellation: stops at the read or send in progress.
    """
    total = 0
    while chunk := await conn.receive_some():
        total += len(chunk)
    await conn.send_all(b"%d\n" % total)


async def first_try_byte_count(conn: Connection) -> None:
    """Answers after the first chunk, as if one read were the whole message.

    Cancellation: stops at the read or send in progress.
    """
    chunk = await conn.receive_some()
    await conn.send_all(b"%d\n" % len(chunk))
