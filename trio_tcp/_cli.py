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
import re
import signal
import socket
import sys
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from functools import partial
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
from ._exceptions import IncompleteFrameError, LineTooLongError
from ._format import INSPECT_MAX_BYTES, format_buffer
from ._output import (
    FdWriter,
    ThreadedLogHandler,
    report_dropped,
    write_if_writable,
    writer_for,
    writing_to,
)
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
    try:
        print(text, flush=True)
    except BrokenPipeError:
        raise  # the reader went away (`| head -1`): run() ends quietly
    except OSError as exc:  # a full disk, /dev/full: one line, exit 1
        _stdout_to_devnull()  # so that the interpreter's last flush cannot fail again
        raise RuntimeFailure(f"cannot write to stdout: {exc.strerror or exc}") from None


def _stdout_to_devnull() -> None:
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
    os.close(devnull)


# ---------------------------------------------------------------------- server modes

Mode = Callable[[Connection], Awaitable[None]]

# What a peer's bytes may not do to the operator's terminal: C0 and C1 controls (ESC, BEL,
# CR, ...), DEL, Unicode line/paragraph separators and bidi overrides, undecodable bytes
# (decoded as lone surrogates), and the backslash itself, so every escape is unambiguous.
_UNSAFE = re.compile(r"[\x00-\x1f\x7f-\x9f\\\u2028\u2029\u202a-\u202e\u2066-\u2069\udc80-\udcff]")
_NAMED_ESCAPES = {"\t": "\\t", "\n": "\\n", "\r": "\\r", "\\": "\\\\"}


def _escape(match: re.Match[str]) -> str:
    char = match.group()
    named = _NAMED_ESCAPES.get(char)
    if named is not None:
        return named
    code = ord(char)
    if 0xDC80 <= code <= 0xDCFF:  # an undecodable byte
        return f"\\x{code - 0xDC00:02x}"
    return f"\\x{code:02x}" if code <= 0xFF else f"\\u{code:04x}"


def terminal_safe(data: bytes) -> str:
    """``data`` as text that is safe to print: one line, no control character, valid UTF-8.

    Valid UTF-8 text prints as itself; control characters and undecodable bytes print as
    Python-style escapes (``\\x1b``, ``\\r``, ``\\xff``) and a backslash as ``\\\\``.
    """
    return _UNSAFE.sub(_escape, data.decode("utf-8", "surrogateescape"))


class Printer:
    """Where the print modes' lines go: ``print()`` (in-process, the demo, tests)."""

    async def line(self, conn: Connection, text: str) -> None:
        """Print a line of ``conn``'s data (may wait for the output to catch up)."""
        print(text, flush=True)

    def status(self, text: str) -> None:
        """Print a status line (connected, closed, listening): never waits."""
        print(text, flush=True)


class ThreadedPrinter(Printer):
    """Lines go through an :class:`FdWriter`: only the connection whose output waits waits."""

    def __init__(self, writer: FdWriter) -> None:
        self.writer = writer

    async def line(self, conn: Connection, text: str) -> None:
        await self.writer.write(conn, (text + "\n").encode("utf-8", "replace"))

    def status(self, text: str) -> None:
        self.writer.write_nowait((text + "\n").encode("utf-8", "replace"))


def _tag(conn: Connection) -> str:
    return f"#{conn.id}"


def make_mode(
    name: str,
    *,
    max_line_length: int = DEFAULT_MAX_LINE_LENGTH,
    printer: Printer | None = None,
) -> Mode:
    """The connection handler for ``serve --mode NAME``.

    The line modes read with ``max_line_length``: a peer that sends a longer line gets
    ``LineTooLongError``, which the server logs (bounded) before closing that connection
    (everyone else is still served).

    An unterminated last line follows the library's rule (never lost, never passed off as
    whole): ``lines`` prints it marked ``(no line ending)``, ``echo-lines`` echoes it back as
    it came, without adding an ending (``allow_partial=True, keep_ends=True``).

    Shutdown (see ``serve``): ``lines``, ``echo-lines`` and ``print`` end at a boundary
    (a line, a chunk) once the server is closing and the peer is quiet; ``echo`` and
    ``discard`` serve each connection until the peer's EOF or the grace deadline. The
    byte modes read exactly as a plain library handler does (nothing extra per read).
    """
    out = printer if printer is not None else Printer()

    async def lines_mode(conn: Connection) -> None:
        tag = _tag(conn)
        out.status(f"{tag} connected from {format_address(conn.peer)}")
        try:
            async for line in conn.lines(max_length=max_line_length, until_closing=True):
                await out.line(conn, f"{tag} {terminal_safe(line)}")
        except IncompleteFrameError as exc:  # the last line had no ending: show it anyway
            out.status(f"{tag} {terminal_safe(exc.partial)} (no line ending)")
        finally:
            out.status(f"{tag} closed ({_plural(conn.bytes_received, 'byte')} received)")

    async def echo_lines_mode(conn: Connection) -> None:
        # Each line with the ending it came with; a last line without one comes back as is.
        async for line in conn.lines(
            max_length=max_line_length, keep_ends=True, allow_partial=True, until_closing=True
        ):
            await conn.send_all(line)

    async def print_mode(conn: Connection) -> None:
        tag = _tag(conn)
        out.status(f"{tag} connected from {format_address(conn.peer)}")
        try:
            async for chunk in conn.chunks(until_closing=True):
                await out.line(conn, f"{tag} {format_buffer(chunk)}")
        finally:
            out.status(f"{tag} closed ({_plural(conn.bytes_received, 'byte')} received)")

    async def echo_mode(conn: Connection) -> None:
        while chunk := await conn.receive_some():
            await conn.send_all(chunk)

    async def discard_mode(conn: Connection) -> None:
        while await conn.receive_some():
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


def _unix_path(text: str) -> str:
    """argparse type: a Unix socket path; an empty one would silently mean something else."""
    if not text:
        raise argparse.ArgumentTypeError("expected a socket path, not an empty string")
    return text


def _seconds(text: str) -> float:
    """argparse type: a duration in seconds, ``>= 0``; ``inf`` is accepted."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected seconds, not {text!r}") from None
    if not value >= 0:  # also refuses nan
        raise argparse.ArgumentTypeError(f"expected seconds >= 0, not {text!r}")
    return value


def _timeout(text: str) -> float | None:
    """argparse type of every timeout option: seconds, where ``0`` and ``inf`` mean no limit.

    One rule for ``--timeout``, ``--reply-idle`` and ``--idle-timeout`` (``None``: no limit),
    as ``socket.settimeout(None)`` and ``trio.move_on_after(inf)`` spell "wait forever".
    """
    value = _seconds(text)
    return None if value == 0 or math.isinf(value) else value


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
        # default=None so that an explicit --host/--port can be told apart (see _check_where)
        sub.add_argument("--host", help="default 127.0.0.1 (loopback)")
        sub.add_argument("--port", type=_port, help=f"default {DEFAULT_PORT}")
        sub.add_argument(
            "--unix",
            type=_unix_path,
            metavar="PATH",
            help="a Unix socket instead of TCP (not with --host/--port)",
        )

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
    s.add_argument(
        "--idle-timeout",
        type=_timeout,
        metavar="S",
        help="close peers silent for S seconds (default, 0 or inf: never)",
    )
    s.add_argument(
        "--grace-period",
        type=_seconds,
        default=DEFAULT_GRACE_PERIOD,
        metavar="S",
        help=f"after SIGINT/SIGTERM, serve open connections up to S more seconds (default "
        f"{DEFAULT_GRACE_PERIOD:g}; 0: cut at once, inf: wait for every connection); "
        "a second signal stops at once",
    )
    s.add_argument(
        "-v",
        "--verbose",
        action="count",
        default=0,
        help="log more: -v each connection's open and close, -vv debug",
    )
    add_serve_options(s)

    c = commands.add_parser(
        "send",
        help="the tutorial's sender (default payload: 0c 22)",
        usage="trio-tcp send [-h] [--host HOST] [--port PORT | --unix PATH]\n"
        "                     [--hex HEX | --text TEXT | --file PATH | - | --lines]\n"
        "                     [--reply] [--reply-idle S] [--timeout S]\n"
        "                     [--tls] [--cafile FILE] [--insecure]",
    )
    where(c)
    payload = c.add_argument_group("payload (one of; default: the bytes 0c 22)")
    payload.add_argument("--hex", type=_hex, help="bytes as hex, e.g. 0c22 or '0c 22'")
    payload.add_argument("--text", help="UTF-8 text")
    payload.add_argument("--file", metavar="PATH", help="the bytes of a file (- for stdin)")
    payload.add_argument(
        "source", nargs="*", metavar="-", help="- sends stdin as it comes, until its end"
    )
    payload.add_argument(
        "--lines",
        action="store_true",
        help="send stdin line by line as it is typed (with --reply: print reply lines)",
    )
    c.add_argument(
        "--reply",
        action="store_true",
        help="print what comes back, read while sending; it ends at the peer's EOF or "
        "after --reply-idle",
    )
    c.add_argument(
        "--reply-idle",
        type=_timeout,
        default=DEFAULT_REPLY_IDLE,
        metavar="S",
        help=f"with --reply: stop once nothing came back for S seconds after sending "
        f"(default {DEFAULT_REPLY_IDLE:g}; 0 or inf: wait for the peer's EOF)",
    )
    c.add_argument(
        "--timeout",
        type=_timeout,
        default=DEFAULT_SEND_TIMEOUT,
        metavar="S",
        help=f"give up (exit 1) if connecting, sending and the reply take more than S seconds "
        f"(default {DEFAULT_SEND_TIMEOUT:g}; 0 or inf: no limit; --lines: time spent waiting "
        "for stdin is not counted)",
    )
    add_send_options(c)

    commands.add_parser("demo", help="server and sender in one process: prints <Buffer 0c 22>")
    return parser


# ---------------------------------------------------------------------- commands


_LOG_FORMAT = "trio-tcp: %(levelname)s: %(message)s"


def _configure_logging(verbose: int, *, threaded: bool = False) -> None:
    """Log records of the ``trio_tcp`` logger to stderr, once (idempotent).

    ``threaded`` (``serve``): through a queue to a writer thread, so a stderr nobody reads
    never blocks the event loop (records beyond the queue's bound are dropped and counted).
    """
    level = logging.WARNING if verbose == 0 else logging.INFO if verbose == 1 else logging.DEBUG
    root = logging.getLogger("trio_tcp")
    for old in [h for h in root.handlers if getattr(h, "_trio_tcp_cli", False)]:
        root.removeHandler(old)
    handler: logging.Handler
    if threaded:
        handler = ThreadedLogHandler(writer_for(sys.stderr.fileno()))
    else:
        handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter(_LOG_FORMAT))
    setattr(handler, "_trio_tcp_cli", True)  # noqa: B010 (marks ours, for idempotence)
    root.addHandler(handler)
    root.setLevel(level)
    # -v: each connection's open and close too (DEBUG records of their own logger).
    connections = logging.getLogger("trio_tcp.connections")
    connections.setLevel(logging.DEBUG if verbose >= 1 else logging.NOTSET)


def _listening_line(server: Server) -> str:
    return "listening on " + ", ".join(format_address(a) for a in server.addresses)


class HardStop(Exception):
    """A second signal stopped the server without its grace period: exit 1."""


async def _serve_command(args: argparse.Namespace) -> None:
    if args.workers > 1 and args.worker_index is None:
        try:
            await run_workers(args)
        except OptionError as exc:
            raise (UsageError if exc.usage else RuntimeFailure)(str(exc)) from None
        return
    stdout, stderr = writer_for(sys.stdout.fileno()), writer_for(sys.stderr.fileno())
    stdout.attach()
    stderr.attach()
    printer = ThreadedPrinter(stdout)
    handler = make_mode(args.mode, max_line_length=args.max_line_length, printer=printer)
    # Output may wait at most until the grace period ends (then it is dropped and counted).
    flush_deadline = math.inf
    hard_stop = False
    write_failed: OSError | None = None
    with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
        async with trio.open_nursery() as nursery:
            server: Server = await nursery.start(_serve_task, handler, args)

            def reader_gone(exc: OSError) -> None:
                # `trio-tcp serve | head -1`: nobody reads our output any more. Stop quietly
                # (like cat on EPIPE), gracefully: connections in flight still finish.
                # Any other failure (a full disk under `> serve.log`) is an error: exit 1.
                nonlocal write_failed
                if exc.errno != errno.EPIPE:
                    write_failed = exc
                server.close()

            stdout.on_broken = reader_gone
            nursery.start_soon(_cancel_when_closed, server, nursery.cancel_scope)
            if args.parent_fd is not None:
                nursery.start_soon(_watch_parent, args.parent_fd, server, stderr)
            if args.ready_fd is not None:  # a worker of `--workers N`: tell the parent
                _tell_ready(args.ready_fd)
            else:
                printer.status(_listening_line(server))
            if args.stats_interval is not None:
                nursery.start_soon(
                    print_stats,
                    server,
                    args.stats_interval,
                    lambda line: stderr.write_nowait(line.encode() + b"\n"),
                )
            async for signum in signals:
                if server.is_closing:  # a second signal: stop now
                    hard_stop = True
                    nursery.cancel_scope.cancel()
                    break
                stderr.write_nowait(
                    f"trio-tcp: {signal.Signals(signum).name}: shutting down "
                    f"(grace period {server.grace_period:g} s)\n".encode()
                )
                flush_deadline = trio.current_time() + server.grace_period
                server.close()
    if hard_stop:
        cut = server.stats.cut
        stderr.write_nowait(
            f"trio-tcp: hard stop: cut {cut} connection{'' if cut == 1 else 's'}\n".encode()
        )
    with trio.CancelScope(shield=True):
        budget = max(flush_deadline - trio.current_time(), 0.1) if not hard_stop else 0.1
        for writer in (stdout, stderr):
            if not await writer.drain(budget):
                writer.discard_queued()
    if write_failed is not None:  # the one line that says why, instead of a count
        raise RuntimeFailure(f"cannot write to stdout: {write_failed.strerror or write_failed}")
    report_dropped({"stdout": stdout, "stderr": stderr}, stderr.fd)
    if hard_stop:
        raise HardStop


async def _watch_parent(fd: int, server: Server, stderr: FdWriter) -> None:
    """A worker: shut down gracefully once the parent's lifeline pipe reads EOF."""
    async with trio.lowlevel.FdStream(fd) as lifeline:
        while await lifeline.receive_some():
            pass
    if not server.is_closing:
        stderr.write_nowait(b"trio-tcp: the parent process exited: shutting down\n")
        server.close()


def _tell_ready(fd: int) -> None:
    """Write ``ready`` to the parent's pipe and close it (a few bytes: never blocks)."""
    try:
        os.write(fd, b"ready\n")
    except OSError:
        pass  # the parent is gone: the lifeline (--parent-fd) stops us
    finally:
        os.close(fd)


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
            idle_timeout=args.idle_timeout,
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


def _checked(build: Callable[[argparse.Namespace], T], args: argparse.Namespace) -> T:
    """Run an option builder of ``_cli_options``, turning its errors into exit codes."""
    try:
        return build(args)
    except OptionError as exc:
        raise (UsageError if exc.usage else RuntimeFailure)(str(exc)) from None


# ---------------------------------------------------------------------- send

#: ``send --reply``: the reply ends at the peer's EOF, or once nothing has come back for this
#: many seconds after the payload is sent. A server with TLS cannot see our half-close (TLS 1.3
#: has no half-close in ``ssl``), so without a quiet period an echo over TLS would wait for
#: ``--timeout``. 1 s is many round trips on any network a terminal user types over.
DEFAULT_REPLY_IDLE = 1.0

#: ``send --timeout``: the whole exchange (connect, send, reply) must fit in this many seconds.
DEFAULT_SEND_TIMEOUT = 10.0

#: Bytes handed to ``send_all`` at a time: progress for the timeout message, at no cost.
SEND_SLICE = 64 * 1024

#: Bytes read from stdin at a time.
STDIN_CHUNK = 65536


def _plural(count: int, word: str) -> str:
    return f"{count} {word}{'' if count == 1 else 's'}"


def _describe(head: bytes, total: int) -> str:
    """``format_buffer`` of a payload of which only the first bytes were kept."""
    shown = format_buffer(head[:INSPECT_MAX_BYTES])
    remaining = total - min(len(head), INSPECT_MAX_BYTES)
    if remaining > 0:
        shown = f"{shown[:-1]} ... {_plural(remaining, 'more byte')}>"
    return shown


@dataclass
class _Exchange:
    """What ``send`` has done so far: for its lines and for the one-line timeout message."""

    where: str
    sent: int = 0
    lines: int = 0
    to_send: int | None = None
    head: bytes = b""
    conn: Connection | None = None

    def timeout_message(self, timeout: float) -> str:
        if self.conn is None:
            return f"cannot connect to {self.where}: timed out after {timeout:g} s"
        of = f" of {self.to_send}" if self.to_send is not None else ""
        return (
            f"timed out after {timeout:g} s: sent {self.sent}{of} bytes to {self.where}, "
            f"received {_plural(self.conn.bytes_received, 'byte')}"
        )


def _send_source(args: argparse.Namespace) -> bytes | None:
    """The payload of ``send``, or ``None`` when it is streamed from stdin.

    Raises:
      UsageError: a stray positional argument, or two payloads at once.
      RuntimeFailure: ``--file`` cannot be read.
    """
    extra = [arg for arg in args.source if arg != "-"]
    if extra:
        hint = ""
        if args.hex is not None:
            hint = f" (several hex bytes go in one argument: --hex '0c 22 {extra[0]}')"
        elif args.text is not None:
            hint = " (quote text with spaces: --text 'hello world')"
        raise UsageError(
            f"unexpected argument {extra[0]!r}{hint}; the payload is --hex, --text, "
            "--file, --lines or - (stdin)"
        )
    given = [
        name
        for name, present in (
            ("--hex", args.hex is not None),
            ("--text", args.text is not None),
            ("--file", args.file is not None),
            ("--lines", args.lines),
            ("-", bool(args.source)),
        )
        if present
    ]
    if len(given) > 1:
        raise UsageError(f"argument {given[1]}: not allowed with argument {given[0]}")
    if args.hex is not None:
        return bytes(args.hex)
    if args.text is not None:
        return str(args.text).encode()
    if args.file is not None and args.file != "-":
        try:
            with open(args.file, "rb") as file:
                return file.read()
        except IsADirectoryError:
            raise RuntimeFailure(f"cannot read {args.file}: it is a directory") from None
        except OSError as exc:
            raise RuntimeFailure(f"cannot read {args.file}: {_os_reason(exc)}") from None
    if args.file == "-" or args.source or args.lines:
        return None
    return TUTORIAL_PAYLOAD


def _os_reason(exc: OSError) -> str:
    if isinstance(exc, FileNotFoundError):
        return "no such file"
    if isinstance(exc, PermissionError):
        return "permission denied"
    return (exc.strerror or str(exc)).lower()


def _open_stdin() -> trio.lowlevel.FdStream | None:
    """Stdin as a Trio stream that Ctrl-C can abandon at any moment.

    ``sys.stdin.buffer.readline`` in a worker thread holds the BufferedReader's lock while it
    waits; a Ctrl-C then leaves that thread blocked at interpreter shutdown, and CPython
    aborts ("Fatal Python error: _enter_buffered_busy"). ``FdStream`` reads a duplicate of
    fd 0 in non-blocking mode from the event loop instead: nothing to abandon. (It restores
    blocking mode when closed, so the terminal is left as it was found.)
    """
    try:
        return trio.lowlevel.FdStream(os.dup(sys.stdin.fileno()))
    except (OSError, ValueError, AttributeError):  # no stdin at all: an empty one
        return None


async def _read_stdin(stdin: trio.lowlevel.FdStream | None) -> bytes:
    if stdin is None:
        return b""
    try:
        return await stdin.receive_some(STDIN_CHUNK)
    except trio.BrokenResourceError as exc:
        raise RuntimeFailure(f"cannot read stdin: {exc.__cause__ or exc}") from None


async def _connect(args: argparse.Namespace) -> Connection:
    """Connect as ``send`` asks; the caller's cancel scope bounds the time it takes."""
    if args.port == 0 and not args.unix:
        raise UsageError("argument --port: cannot send to port 0")
    where = _target(args)
    try:
        if args.unix:
            return await open_unix_connection(args.unix)
        context = _checked(client_ssl_context, args)
        return await open_connection(args.host, args.port, ssl_context=context)
    except trio.BrokenResourceError as exc:  # the TLS handshake failed
        reason = getattr(exc.__cause__, "reason", None) or exc.__cause__ or "connection closed"
        detail = getattr(exc.__cause__, "verify_message", None)  # ssl.SSLCertVerificationError
        if detail:  # which check failed: untrusted issuer, expired, wrong host name
            reason = f"{reason}: {detail}"
        raise RuntimeFailure(f"cannot connect to {where}: TLS handshake failed: {reason}") from None
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


class _Replies:
    """The receiving half of ``send --reply``: prints what comes back, concurrently.

    It runs beside the sender (Trio's tutorial: a sender task and a receiver task), so a
    peer that echoes can never fill both socket buffers and deadlock us. It ends at the
    peer's EOF, or once the peer has been quiet for ``idle`` seconds after sending ended.
    """

    def __init__(self, conn: Connection, where: str, idle: float | None) -> None:
        self.conn = conn
        self.where = where
        self.idle = idle
        self.quiet = trio.CancelScope()
        self._sending_done = False

    def sending_done(self) -> None:
        self._sending_done = True
        self._rearm()

    def _rearm(self) -> None:
        if self.idle is not None and self._sending_done:
            self.quiet.deadline = trio.current_time() + self.idle

    async def run(self, *, lines: bool) -> None:
        where = self.where
        with self.quiet:
            try:
                if lines:
                    await self._lines()
                else:
                    async for chunk in self.conn:
                        self._rearm()
                        _say(f"reply {format_buffer(chunk)}")
            except LineTooLongError as exc:
                raise RuntimeFailure(f"reply from {where}: {exc}") from None
            except trio.BrokenResourceError as exc:
                raise RuntimeFailure(f"connection to {where} broke: {exc}") from None

    async def _lines(self) -> None:
        conn = self.conn
        try:
            async for reply in conn.lines():
                self._rearm()
                _say(f"reply {terminal_safe(reply)}")  # a peer's ESC never reaches the tty
        except IncompleteFrameError as exc:
            _say(f"reply {terminal_safe(exc.partial)} (no line ending)")


async def _discard_replies(conn: Connection) -> None:
    """Read and drop whatever the peer sends (``send`` without ``--reply``) until cancelled."""
    async for _ in conn:
        pass


async def _send_stream(
    conn: Connection,
    exchange: _Exchange,
    payload: bytes | None,
    *,
    lines: bool,
    clock: Callable[[bool], None],
) -> None:
    """Send ``payload``, or stdin as it comes (``--lines``: a last line gets its ending).

    ``clock(True)`` is called before each send and ``clock(False)`` before each stdin read,
    so that ``--lines`` can leave a person's typing untimed.
    """
    if payload is not None:
        exchange.to_send = len(payload)
        exchange.head = payload[:INSPECT_MAX_BYTES]
        with memoryview(payload) as view:
            # In slices, so that a timeout can say how far it got.
            for start in range(0, len(view), SEND_SLICE):
                with view[start : start + SEND_SLICE] as piece:
                    await conn.send_all(piece)
                    exchange.sent += len(piece)
        return
    stdin = _open_stdin()
    try:
        last = b"\n"
        clock(False)
        while chunk := await _read_stdin(stdin):
            if len(exchange.head) < INSPECT_MAX_BYTES:
                exchange.head += chunk[: INSPECT_MAX_BYTES - len(exchange.head)]
            last = chunk[-1:]
            clock(True)
            await conn.send_all(chunk)
            clock(False)
            exchange.sent += len(chunk)
            exchange.lines += chunk.count(b"\n")
        clock(True)
        if lines and last != b"\n":
            await conn.send_all(b"\n")
            exchange.sent += 1
            exchange.lines += 1
    finally:
        if stdin is not None:
            await stdin.aclose()


async def _send_command(args: argparse.Namespace) -> None:
    payload = _send_source(args)
    exchange = _Exchange(_target(args))
    timeout: float | None = args.timeout
    with trio.move_on_after(float("inf") if timeout is None else timeout) as scope:
        paused_with = 0.0  # seconds left on the clock while --lines waits for stdin

        def clock(timed: bool) -> None:
            # --lines is typed by a person: the time spent waiting for stdin is not counted.
            nonlocal paused_with
            if not args.lines or timeout is None:
                return
            now = trio.current_time()
            if timed and math.isinf(scope.deadline):
                scope.deadline = now + paused_with
            elif not timed and not math.isinf(scope.deadline):
                paused_with = scope.deadline - now
                scope.deadline = float("inf")

        async with await _connect(args) as conn:
            exchange.conn = conn
            replies = _Replies(conn, exchange.where, args.reply_idle)
            try:
                async with trio.open_nursery() as nursery:
                    if args.reply:
                        nursery.start_soon(partial(replies.run, lines=args.lines))
                    else:
                        # Nobody asked for a reply, but a peer that answers (an echo server)
                        # must not fill both socket buffers while we send: drop it unread.
                        nursery.start_soon(_discard_replies, conn)
                    await _send_stream(conn, exchange, payload, lines=args.lines, clock=clock)
                    if not args.lines:  # at once: replies print concurrently from here on
                        _say(f"sent {_describe(exchange.head, exchange.sent)} to {exchange.where}")
                    if not args.tls:  # TLS cannot half-close: the server ends the conversation
                        await conn.send_eof()
                    replies.sending_done()
                    if not args.reply:
                        nursery.cancel_scope.cancel()  # sent: what the peer says is not wanted
                if args.lines:  # a summary, after the replies
                    _say(
                        f"sent {_plural(exchange.lines, 'line')} ({exchange.sent} bytes) "
                        f"to {exchange.where}"
                    )
            except* trio.BrokenResourceError as group:  # the peer closed or reset mid-send
                exc = group.exceptions[0]
                raise RuntimeFailure(f"connection to {exchange.where} broke: {exc}") from None
    if scope.cancelled_caught:
        raise RuntimeFailure(exchange.timeout_message(timeout or 0.0))


async def _demo_command(args: argparse.Namespace) -> None:
    print_mode = make_mode("print")
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
        elif isinstance(
            exc, UsageError | RuntimeFailure | KeyboardInterrupt | HardStop | BrokenPipeError
        ):
            return exc
    return None


def _check_where(args: argparse.Namespace) -> None:
    """``--unix`` and ``--host``/``--port`` name different places: refuse both at once."""
    if not hasattr(args, "unix"):
        return
    if args.unix is not None:
        for flag in ("host", "port"):
            if getattr(args, flag) is not None:
                raise UsageError(f"argument --{flag}: not allowed with argument --unix")
    if args.host is None:
        args.host = "127.0.0.1"
    if args.port is None:
        args.port = DEFAULT_PORT


def _print_error(line: str) -> None:
    """The last line on stderr; never blocks if ``serve`` found stderr unread (then lost)."""
    if writing_to(sys.stderr.fileno()):
        write_if_writable(sys.stderr.fileno(), (line + "\n").encode("utf-8", "replace"))
    else:
        print(line, file=sys.stderr)


def run(argv: Sequence[str] | None = None) -> int:
    """Run the command line and return its exit code (``main`` exits with it)."""
    prog = "trio-tcp"
    try:
        args = build_parser().parse_args(argv)
        _check_where(args)
        args.argv = list(sys.argv[1:] if argv is None else argv)  # for `serve --workers`
        _configure_logging(getattr(args, "verbose", 0), threaded=args.command == "serve")
        try:
            trio.run(_COMMANDS[args.command], args)
        except BaseExceptionGroup as group:
            leaf = _user_facing_leaf(group)
            if leaf is None:
                raise
            raise leaf from None
    except UsageError as exc:
        _print_error(f"{prog}: error: {exc}")
        return EXIT_USAGE
    except RuntimeFailure as exc:
        _print_error(f"{prog}: error: {exc}")
        return EXIT_RUNTIME
    except KeyboardInterrupt:
        print(f"{prog}: interrupted", file=sys.stderr)
        return 130
    except HardStop:
        return EXIT_RUNTIME
    except BrokenPipeError:
        # stdout went away (`trio-tcp serve | head`, `send --reply | head`): exit quietly,
        # like cat does.
        _stdout_to_devnull()
        return EXIT_RUNTIME
    return EXIT_OK


def main(argv: Sequence[str] | None = None) -> NoReturn:
    """Entry point of the ``trio-tcp`` console script."""
    sys.exit(run(argv))
