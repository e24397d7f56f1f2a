"""The command line: ``trio-tcp serve | send | demo`` (also ``python -m trio_tcp``).

A face: argument parsing, printing and exit codes only; the work is done by the library.
Bad input gets one line on stderr and no traceback: exit 2 for usage errors (found before
any connection is tried), exit 1 for runtime errors.
"""

from __future__ import annotations

import argparse
import errno
import logging
import math
import os
import signal
import socket
import sys
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import NoReturn, TypeVar

import trio

from . import __version__
from ._cli_options import (
    OptionError,
    add_send_options,
    add_serve_options,
    client_ssl_context,
    positive_int,
    print_stats,
    serve_options,
)
from ._client import open_connection, open_unix_connection
from ._connection import Connection, format_address
from ._exceptions import EndOfStream, IncompleteFrameError, LineTooLongError
from ._format import format_buffer
from ._server import DEFAULT_GRACE_PERIOD, DEFAULT_MAX_CONNECTIONS, DEFAULT_PORT, Server, serve
from ._workers import run_workers
from .framing import DEFAULT_MAX_LINE_LENGTH

__all__ = ["main"]

T = TypeVar("T")

#: The tutorial's payload: ``Buffer.from([12, 34])``.
TUTORIAL_PAYLOAD = bytes([12, 34])

EXIT_OK, EXIT_RUNTIME, EXIT_USAGE = 0, 1, 2


class UsageError(Exception):
    """Bad command-line input: exit 2."""


class RuntimeFailure(Exception):
    """A runtime error already phrased for the user: exit 1."""


def _say(text: str) -> None:
    print(text, flush=True)


# ---------------------------------------------------------------------- shutdown


@dataclass
class Shutdown:
    """Ends reads that wait for input once graceful shutdown begins.

    Handlers in the CLI read through :meth:`receive`, which returns ``None`` when shutdown
    starts while they wait, so they finish their current work and return on their own. A
    read interrupted this way loses nothing (``Connection`` keeps partial bytes buffered).
    """

    started: bool = False
    waiting: dict[Connection, trio.CancelScope] = field(default_factory=dict)

    async def receive(self, conn: Connection, read: Callable[[], Awaitable[T]]) -> T | None:
        if self.started:
            return None
        with trio.CancelScope() as scope:
            self.waiting[conn] = scope
            try:
                return await read()
            finally:
                del self.waiting[conn]
        return None

    def begin(self) -> None:
        self.started = True
        for scope in self.waiting.values():
            scope.cancel()


# ---------------------------------------------------------------------- server modes

Mode = Callable[[Connection], Awaitable[None]]


def _tag(conn: Connection) -> str:
    return f"#{conn.id}"


def make_mode(
    name: str, shutdown: Shutdown, *, max_line_length: int = DEFAULT_MAX_LINE_LENGTH
) -> Mode:
    """The connection handler for ``serve --mode NAME``.

    The line modes read with ``max_line_length``: a peer that sends a longer line gets
    ``LineTooLongError``, which the server logs as one warning line before closing that
    connection (everyone else is still served).
    """

    async def next_line(conn: Connection, *, keep_ends: bool) -> bytes | None:
        """The next line, or None at a clean end of stream (for ``shutdown.receive``)."""
        try:
            return await conn.receive_line(max_length=max_line_length, keep_ends=keep_ends)
        except EndOfStream:
            return None

    async def lines_mode(conn: Connection) -> None:
        _say(f"{_tag(conn)} connected from {format_address(conn.peer)}")
        try:
            while (
                line := await shutdown.receive(conn, lambda: next_line(conn, keep_ends=False))
            ) is not None:
                _say(f"{_tag(conn)} {line.decode('utf-8', 'replace')}")
        except IncompleteFrameError as exc:  # the last line had no ending: show it anyway
            _say(f"{_tag(conn)} {exc.partial.decode('utf-8', 'replace')} (no line ending)")
        finally:
            _say(f"{_tag(conn)} closed ({conn.bytes_received} bytes received)")

    async def echo_lines_mode(conn: Connection) -> None:
        # Whole lines only, with the ending they came with; a partial last line is not
        # echoed (IncompleteFrameError: the server logs it and closes).
        while (
            line := await shutdown.receive(conn, lambda: next_line(conn, keep_ends=True))
        ) is not None:
            await conn.send_all(line)

    async def print_mode(conn: Connection) -> None:
        _say(f"{_tag(conn)} connected from {format_address(conn.peer)}")
        try:
            while chunk := await shutdown.receive(conn, conn.receive_some):
                _say(f"{_tag(conn)} {format_buffer(chunk)}")
        finally:
            _say(f"{_tag(conn)} closed ({conn.bytes_received} bytes received)")

    async def echo_mode(conn: Connection) -> None:
        while chunk := await shutdown.receive(conn, conn.receive_some):
            await conn.send_all(chunk)

    async def discard_mode(conn: Connection) -> None:
        while await shutdown.receive(conn, conn.receive_some):
            pass

    modes: dict[str, Mode] = {
        "print": print_mode,
        "echo": echo_mode,
        "discard": discard_mode,
        "lines": lines_mode,
        "echo-lines": echo_lines_mode,
    }
    return modes[name]


MODES = ("print", "echo", "discard", "lines", "echo-lines")


# ---------------------------------------------------------------------- argument types


def _port(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"port must be a number, not {text!r}") from None
    if not 0 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"port must be 0-65535, not {value}")
    return value


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected seconds, not {text!r}") from None
    if not (value >= 0 and math.isfinite(value)):
        raise argparse.ArgumentTypeError(f"expected seconds >= 0, not {text!r}")
    return value


def _hex(text: str) -> bytes:
    cleaned = text.replace(" ", "").replace(":", "")
    if cleaned.lower().startswith("0x"):
        cleaned = cleaned[2:]
    try:
        return bytes.fromhex(cleaned)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"bad hex {text!r}: use pairs of hex digits, e.g. 0c22 or '0c 22'"
        ) from None


class _Parser(argparse.ArgumentParser):
    """argparse, but a usage error is one line on stderr (exit 2), not a usage dump."""

    def error(self, message: str) -> NoReturn:
        raise UsageError(message)


def build_parser() -> argparse.ArgumentParser:
    """The ``trio-tcp`` argument parser."""
    parser = _Parser(
        prog="trio-tcp",
        description="TCP servers and clients on Trio: the Node.js tutorial, retold.",
    )
    parser.add_argument("--version", action="version", version=f"trio-tcp {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def where(sub: argparse.ArgumentParser) -> None:
        sub.add_argument("--host", default="127.0.0.1", help="default 127.0.0.1 (loopback)")
        sub.add_argument("--port", type=_port, default=DEFAULT_PORT, help="default 3099")
        sub.add_argument("--unix", metavar="PATH", help="a Unix socket instead of TCP")

    s = commands.add_parser("serve", help="run the tutorial's server (prints every chunk)")
    where(s)
    s.add_argument(
        "--mode",
        choices=MODES,
        default="print",
        help="print chunks (default), echo, discard, print lines, or echo-lines",
    )
    s.add_argument(
        "--max-line-length",
        type=positive_int,
        default=DEFAULT_MAX_LINE_LENGTH,
        metavar="N",
        help=f"lines modes: close a peer whose line exceeds N bytes "
        f"(default {DEFAULT_MAX_LINE_LENGTH}, asyncio's limit)",
    )
    s.add_argument(
        "--max-connections",
        type=positive_int,
        default=DEFAULT_MAX_CONNECTIONS,
        metavar="N",
        help=f"default {DEFAULT_MAX_CONNECTIONS}",
    )
    s.add_argument("--idle-timeout", type=_seconds, metavar="S", help="close silent peers")
    s.add_argument(
        "--grace-period",
        type=_seconds,
        default=DEFAULT_GRACE_PERIOD,
        metavar="S",
        help=f"seconds to finish on SIGINT/SIGTERM (default {DEFAULT_GRACE_PERIOD:g})",
    )
    s.add_argument("-v", "--verbose", action="count", default=0, help="log more (-vv: debug)")
    add_serve_options(s)

    c = commands.add_parser("send", help="the tutorial's sender (default payload: 0c 22)")
    where(c)
    payload = c.add_mutually_exclusive_group()
    payload.add_argument("--hex", type=_hex, help="bytes as hex, e.g. 0c22")
    payload.add_argument("--text", help="UTF-8 text")
    payload.add_argument("--file", metavar="PATH", help="the bytes of a file")
    payload.add_argument("stdin", nargs="?", choices=["-"], help="- reads the bytes from stdin")
    payload.add_argument(
        "--lines",
        action="store_true",
        help="send stdin line by line as it is typed (with --reply: print reply lines)",
    )
    c.add_argument("--reply", action="store_true", help="print what comes back, until EOF")
    add_send_options(c)
    c.add_argument(
        "--timeout", type=_seconds, default=10.0, metavar="S", help="give up after S seconds"
    )

    commands.add_parser("demo", help="server and sender in one process: prints <Buffer 0c 22>")
    return parser


# ---------------------------------------------------------------------- commands


def _configure_logging(verbose: int) -> None:
    level = logging.WARNING if verbose == 0 else logging.INFO if verbose == 1 else logging.DEBUG
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("trio-tcp: %(levelname)s: %(message)s"))
    root = logging.getLogger("trio_tcp")
    root.addHandler(handler)
    root.setLevel(level)


def _listening_line(server: Server) -> str:
    return "listening on " + ", ".join(format_address(a) for a in server.addresses)


async def _serve_command(args: argparse.Namespace) -> None:
    if args.workers > 1 and args.worker_index is None:
        try:
            await run_workers(args)
        except OptionError as exc:
            raise (UsageError if exc.usage else RuntimeFailure)(str(exc)) from None
        return
    shutdown = Shutdown()
    handler = make_mode(args.mode, shutdown, max_line_length=args.max_line_length)
    with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
        async with trio.open_nursery() as nursery:
            server: Server = await nursery.start(
                _serve_task,
                handler,
                args,
            )
            _say(_listening_line(server))
            if args.stats_interval is not None:
                nursery.start_soon(print_stats, server, args.stats_interval)
            async for signum in signals:
                if shutdown.started:  # a second signal: stop now
                    nursery.cancel_scope.cancel()
                    break
                print(
                    f"trio-tcp: {signal.Signals(signum).name}: shutting down "
                    f"(grace period {server.grace_period:g} s)",
                    file=sys.stderr,
                    flush=True,
                )
                server.close()
                shutdown.begin()
                nursery.start_soon(_cancel_when_closed, server, nursery.cancel_scope)


async def _cancel_when_closed(server: Server, scope: trio.CancelScope) -> None:
    await server.wait_closed()
    scope.cancel()


async def _serve_task(
    handler: Mode, args: argparse.Namespace, *, task_status: trio.TaskStatus[Server]
) -> None:
    try:
        await serve(
            handler,
            args.port,
            host=args.host,
            unix_path=args.unix,
            max_connections=args.max_connections,
            idle_timeout=args.idle_timeout or None,
            grace_period=args.grace_period,
            task_status=task_status,
            **_checked(serve_options, args),
        )
    except OSError as exc:
        raise _listen_failure(exc, args) from None


def _target(args: argparse.Namespace) -> str:
    return f"unix:{args.unix}" if args.unix else format_address((args.host, args.port))


def _listen_failure(exc: OSError, args: argparse.Namespace) -> RuntimeFailure:
    where = _target(args)
    if exc.errno == errno.EADDRINUSE:
        return RuntimeFailure(f"cannot listen on {where}: address already in use")
    if isinstance(exc, socket.gaierror):
        return RuntimeFailure(f"cannot resolve host {args.host!r}")
    if isinstance(exc, FileExistsError):
        return RuntimeFailure(f"cannot listen on {where}: {exc.strerror}")
    return RuntimeFailure(f"cannot listen on {where}: {exc.strerror or exc}")


def _payload(args: argparse.Namespace) -> bytes:
    if args.hex is not None:
        return bytes(args.hex)
    if args.text is not None:
        return str(args.text).encode()
    if args.file is not None:
        try:
            with open(args.file, "rb") as file:
                return file.read()
        except OSError as exc:
            raise RuntimeFailure(f"cannot read {args.file}: {exc.strerror or exc}") from None
    if args.stdin == "-":
        return sys.stdin.buffer.read()
    return TUTORIAL_PAYLOAD


def _checked(build: Callable[[argparse.Namespace], T], args: argparse.Namespace) -> T:
    """Run an option builder of ``_cli_options``, turning its errors into exit codes."""
    try:
        return build(args)
    except OptionError as exc:
        raise (UsageError if exc.usage else RuntimeFailure)(str(exc)) from None


async def _connect(args: argparse.Namespace) -> Connection:
    if args.port == 0 and not args.unix:
        raise UsageError("argument --port: cannot send to port 0")
    where = _target(args)
    try:
        if args.unix:
            return await open_unix_connection(args.unix, connect_timeout=args.timeout)
        context = _checked(client_ssl_context, args)
        return await open_connection(
            args.host, args.port, connect_timeout=args.timeout, ssl_context=context
        )
    except trio.BrokenResourceError as exc:  # the TLS handshake failed
        reason = getattr(exc.__cause__, "reason", None) or exc.__cause__ or "connection closed"
        raise RuntimeFailure(f"cannot connect to {where}: TLS handshake failed: {reason}") from None
    except TimeoutError:
        raise RuntimeFailure(f"cannot connect to {where}: timed out") from None
    except socket.gaierror:
        raise RuntimeFailure(f"cannot resolve host {args.host!r}") from None
    except ConnectionRefusedError:
        raise RuntimeFailure(f"cannot connect to {where}: connection refused") from None
    except FileNotFoundError:
        raise RuntimeFailure(f"cannot connect to {where}: no such socket") from None
    except OSError as exc:
        cause = _root_cause(exc)
        if isinstance(cause, ConnectionRefusedError):
            raise RuntimeFailure(f"cannot connect to {where}: connection refused") from None
        reason = cause.strerror if isinstance(cause, OSError) and cause.strerror else str(cause)
        raise RuntimeFailure(f"cannot connect to {where}: {reason}") from None


def _root_cause(exc: BaseException) -> BaseException:
    """trio.open_tcp_stream raises OSError("all attempts ... failed") from a group."""
    cause = exc.__cause__
    if isinstance(cause, BaseExceptionGroup) and cause.exceptions:
        return _root_cause(cause.exceptions[-1])
    return exc


async def _send_lines(conn: Connection, args: argparse.Namespace) -> None:
    """``send --lines``: stdin line by line; with ``--reply`` reply lines print as they come.

    Stdin is read in a worker thread (abandoned on cancellation), so an interactive terminal
    works. At the end of stdin we half-close and, with ``--reply``, wait up to ``--timeout``
    for the server's last replies.
    """
    where = _target(args)
    replies_done = trio.Event()
    sent_lines = sent_bytes = 0

    async def print_replies() -> None:
        try:
            async for reply in conn.lines():
                _say(f"reply {reply.decode('utf-8', 'replace')}")
        except IncompleteFrameError as exc:
            _say(f"reply {exc.partial.decode('utf-8', 'replace')} (no line ending)")
        except LineTooLongError as exc:
            raise RuntimeFailure(f"reply from {where}: {exc}") from None
        except trio.BrokenResourceError as exc:
            raise RuntimeFailure(f"connection to {where} broke: {exc}") from None
        finally:
            replies_done.set()

    async with trio.open_nursery() as nursery:
        if args.reply:
            nursery.start_soon(print_replies)
        read_line = sys.stdin.buffer.readline
        try:
            while line := await trio.to_thread.run_sync(read_line, abandon_on_cancel=True):
                if not line.endswith(b"\n"):
                    line += b"\n"
                await conn.send_all(line)
                sent_lines += 1
                sent_bytes += len(line)
            if not args.tls:  # TLS cannot half-close: the server ends the conversation
                await conn.send_eof()
        except trio.BrokenResourceError as exc:
            raise RuntimeFailure(f"connection to {where} broke: {exc}") from None
        if args.reply:
            with trio.move_on_after(args.timeout):
                await replies_done.wait()
        nursery.cancel_scope.cancel()
    _say(f"sent {sent_lines} lines ({sent_bytes} bytes) to {where}")


async def _send_command(args: argparse.Namespace) -> None:
    if args.lines:
        async with await _connect(args) as conn:
            await _send_lines(conn, args)
        return
    payload = _payload(args)
    async with await _connect(args) as conn:
        try:
            await conn.send_all(payload)
            _say(f"sent {format_buffer(payload)} to {_target(args)}")
            if args.reply:
                if not args.tls:  # TLS cannot half-close: read until the server closes
                    await conn.send_eof()
                with trio.move_on_after(args.timeout):
                    async for chunk in conn:
                        _say(f"reply {format_buffer(chunk)}")
        except trio.BrokenResourceError as exc:
            raise RuntimeFailure(f"connection to {_target(args)} broke: {exc}") from None


async def _demo_command(args: argparse.Namespace) -> None:
    shutdown = Shutdown()
    print_mode = make_mode("print", shutdown)
    done = trio.Event()

    async def handler(conn: Connection) -> None:
        try:
            await print_mode(conn)
        finally:
            done.set()

    with trio.fail_after(10):
        async with trio.open_nursery() as nursery:
            server: Server = await nursery.start(serve, handler, 0)
            _say(_listening_line(server))
            where = format_address(("127.0.0.1", server.port or 0))
            _say(f"sender: connecting to {where}, writing {format_buffer(TUTORIAL_PAYLOAD)}")
            async with await open_connection("127.0.0.1", server.port or 0) as conn:
                await conn.send_all(TUTORIAL_PAYLOAD)
            await done.wait()
            await server.aclose()


_COMMANDS: dict[str, Callable[[argparse.Namespace], Awaitable[None]]] = {
    "serve": _serve_command,
    "send": _send_command,
    "demo": _demo_command,
}


def _user_facing_leaf(group: BaseExceptionGroup[BaseException]) -> BaseException | None:
    """The UsageError, RuntimeFailure or KeyboardInterrupt inside a nursery's group."""
    for exc in group.exceptions:
        if isinstance(exc, BaseExceptionGroup):
            found = _user_facing_leaf(exc)
            if found is not None:
                return found
        elif isinstance(exc, UsageError | RuntimeFailure | KeyboardInterrupt):
            return exc
    return None


def run(argv: Sequence[str] | None = None) -> int:
    """Run the command line and return its exit code (``main`` exits with it)."""
    prog = "trio-tcp"
    try:
        args = build_parser().parse_args(argv)
        args.argv = list(sys.argv[1:] if argv is None else argv)  # for `serve --workers`
        _configure_logging(getattr(args, "verbose", 0))
        try:
            trio.run(_COMMANDS[args.command], args)
        except BaseExceptionGroup as group:
            leaf = _user_facing_leaf(group)
            if leaf is None:
                raise
            raise leaf from None
    except UsageError as exc:
        print(f"{prog}: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except RuntimeFailure as exc:
        print(f"{prog}: error: {exc}", file=sys.stderr)
        return EXIT_RUNTIME
    except KeyboardInterrupt:
        print(f"{prog}: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        # stdout went away (`trio-tcp serve | head`): exit quietly, like cat does.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return EXIT_RUNTIME
    return EXIT_OK


def main(argv: Sequence[str] | None = None) -> NoReturn:
    """Entry point of the ``trio-tcp`` console script."""
    sys.exit(run(argv))
