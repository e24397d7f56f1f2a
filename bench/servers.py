"""The echo servers the benchmark compares; each runs alone in its own process.

    python bench/servers.py KIND PORT

prints ``ready PORT`` once it accepts (PORT 0 picks a free one) and serves until it is
killed. Each is the version a user would write, with the library's defaults:

  trio_tcp          trio_tcp.serve, ``async for chunk in conn`` + ``send_all``
  trio_tcp_lines    trio_tcp.serve, ``async for line in conn.lines()`` + ``send_all``
  trio              trio.serve_tcp, ``async for chunk in stream`` + ``send_all``
  asyncio_streams   asyncio.start_server, ``read(65536)`` + ``write`` + ``drain``
  asyncio_lines     asyncio.start_server, ``readline()`` + ``write`` + ``drain``
  asyncio_protocol  loop.create_server with a Protocol whose data_received writes back
  uvloop_streams, uvloop_protocol   the asyncio ones on uvloop (only where installed)
"""

from __future__ import annotations

import asyncio
import functools
import sys
from typing import Any

import trio

import trio_tcp

READ_SIZE = 65536  # the read size of every server: Trio's and trio_tcp's default


async def _trio_tcp_echo(conn: trio_tcp.Connection) -> None:
    async for chunk in conn:
        await conn.send_all(chunk)


async def _trio_tcp_line_echo(conn: trio_tcp.Connection) -> None:
    async for line in conn.lines():
        await conn.send_all(line + b"\n")


async def _run_trio_tcp(port: int, handler: Any) -> None:
    async with trio.open_nursery() as nursery:
        # max_connections=None: the idle-memory workload holds 2,000 connections.
        server = await nursery.start(
            lambda task_status: trio_tcp.serve(
                handler, port, max_connections=None, task_status=task_status
            )
        )
        print("ready", server.port, flush=True)


async def _trio_echo(stream: trio.SocketStream) -> None:
    async for chunk in stream:
        await stream.send_all(chunk)


async def _run_trio(port: int) -> None:
    async with trio.open_nursery() as nursery:
        listeners = await nursery.start(
            functools.partial(trio.serve_tcp, _trio_echo, port, host="127.0.0.1")
        )
        print("ready", listeners[0].socket.getsockname()[1], flush=True)


async def _asyncio_echo(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while data := await reader.read(READ_SIZE):
            writer.write(data)
            await writer.drain()
    finally:
        writer.close()


async def _asyncio_line_echo(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while line := await reader.readline():
            writer.write(line)
            await writer.drain()
    finally:
        writer.close()


class _EchoProtocol(asyncio.Protocol):
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        self.transport.write(data)


async def _run_asyncio(port: int, kind: str) -> None:
    server: asyncio.AbstractServer
    if kind == "protocol":
        loop = asyncio.get_running_loop()
        server = await loop.create_server(_EchoProtocol, "127.0.0.1", port)
    else:
        handler = _asyncio_line_echo if kind == "lines" else _asyncio_echo
        server = await asyncio.start_server(handler, "127.0.0.1", port)
    print("ready", server.sockets[0].getsockname()[1], flush=True)
    await server.serve_forever()


def main(kind: str, port: int) -> None:
    if kind == "trio_tcp":
        trio.run(_run_trio_tcp, port, _trio_tcp_echo)
    elif kind == "trio_tcp_lines":
        trio.run(_run_trio_tcp, port, _trio_tcp_line_echo)
    elif kind == "trio":
        trio.run(_run_trio, port)
    elif kind in ("asyncio_streams", "asyncio_lines", "asyncio_protocol"):
        asyncio.run(_run_asyncio(port, kind.split("_")[1]))
    elif kind in ("uvloop_streams", "uvloop_protocol"):
        import uvloop  # type: ignore[import-not-found]

        uvloop.run(_run_asyncio(port, kind.split("_")[1]))
    else:
        raise SystemExit(f"unknown server kind {kind!r}")


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]))
