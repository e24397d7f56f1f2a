"""The production options of ``trio-tcp serve`` and ``send``: TLS, PROXY protocol, admission.

A face, like ``_cli.py``: it turns command-line arguments into the keyword arguments of
:func:`trio_tcp.serve` and :func:`trio_tcp.open_connection`, and reports bad ones as
:class:`OptionError` (``_cli.py`` turns those into its exit codes). No protocol logic here.
"""

from __future__ import annotations

import argparse
import dataclasses
import math
import os
import ssl
import sys
from collections.abc import Callable
from typing import Any, Final

import trio

from ._address import parse_networks
from ._server import Server

__all__ = [
    "OptionError",
    "add_send_options",
    "add_serve_options",
    "client_ssl_context",
    "positive_int",
    "print_stats",
    "serve_options",
    "stats_line",
]


class OptionError(Exception):
    """A bad option: ``usage=True`` means exit 2 (usage), else exit 1 (runtime)."""

    def __init__(self, message: str, *, usage: bool) -> None:
        super().__init__(message)
        self.usage = usage


def add_serve_options(parser: argparse.ArgumentParser) -> None:
    """Add the TLS and PROXY protocol options to ``trio-tcp serve``."""
    tls = parser.add_argument_group("TLS")
    tls.add_argument("--tls-cert", metavar="FILE", help="PEM certificate chain: serve TLS")
    tls.add_argument("--tls-key", metavar="FILE", help="PEM private key (default: in the cert)")
    proxy = parser.add_argument_group("PROXY protocol (behind HAProxy, nginx, a cloud LB)")
    proxy.add_argument(
        "--proxy-protocol",
        action="store_true",
        help="every connection starts with a PROXY v1/v2 header naming the real client",
    )
    proxy.add_argument(
        "--trusted-proxy",
        action="append",
        metavar="ADDR_OR_CIDR",
        help="accept headers from here (repeatable; default: loopback only)",
    )
    admission = parser.add_argument_group("admission control and visibility")
    admission.add_argument(
        "--allow", action="append", metavar="ADDR_OR_CIDR", help="admit only these (repeatable)"
    )
    admission.add_argument(
        "--deny", action="append", metavar="ADDR_OR_CIDR", help="refuse these (repeatable)"
    )
    admission.add_argument(
        "--max-per-peer", type=positive_int, metavar="N", help="live connections per client IP"
    )
    admission.add_argument(
        "--max-accept-rate", type=_positive_float, metavar="R", help="new connections per second"
    )
    parser.add_argument(
        "--workers",
        type=worker_count,
        default=1,
        metavar="N",
        help="run N processes sharing the port with SO_REUSEPORT (default 1, at most 4 per core)",
    )
    parser.add_argument("--worker-index", type=int, help=argparse.SUPPRESS)
    # A worker writes "ready" to this descriptor once it listens (the parent's pipe).
    parser.add_argument("--ready-fd", type=int, help=argparse.SUPPRESS)
    # A worker shuts down when this descriptor reads EOF (the parent exited).
    parser.add_argument("--parent-fd", type=int, help=argparse.SUPPRESS)
    admission.add_argument(
        "--stats-interval", type=_positive_float, metavar="S", help="print a stats line every S s"
    )


def add_send_options(parser: argparse.ArgumentParser) -> None:
    """Add the TLS options to ``trio-tcp send``."""
    tls = parser.add_argument_group("TLS")
    tls.add_argument("--tls", action="store_true", help="connect with TLS")
    tls.add_argument("--cafile", metavar="FILE", help="trust the CA certificates in FILE")
    tls.add_argument(
        "--insecure", action="store_true", help="do not verify the server's certificate"
    )


def _read_pem(path: str, flag: str) -> bytes:
    """The bytes of a PEM file, or an OptionError naming the file and what is wrong."""
    try:
        with open(path, "rb") as file:
            return file.read()
    except FileNotFoundError:
        problem = "no such file"
    except IsADirectoryError:
        problem = "it is a directory"
    except PermissionError:
        problem = "permission denied"
    except OSError as exc:
        problem = (exc.strerror or str(exc)).lower()
    raise OptionError(f"{flag} {path}: cannot read it: {problem}", usage=False)


def _no_password() -> str:
    raise OptionError("encrypted", usage=False)


def _load_cert_chain(context: ssl.SSLContext, cert: str, key: str | None) -> None:
    """``context.load_cert_chain(cert, key)``, with errors that name the file and the problem.

    OpenSSL says ``[SSL] PEM lib`` for a missing key, a file that is not PEM and a key file
    that holds no key alike, so the files are looked at first.

    Raises:
      OptionError: a file is missing, unreadable, not PEM, holds no key, an encrypted key, or
        a key that does not match the certificate (``usage=False``: exit 1).
    """
    cert_pem = _read_pem(cert, "--tls-cert")
    if b"-----BEGIN CERTIFICATE-----" not in cert_pem:
        holds_key = b"PRIVATE KEY-----" in cert_pem
        detail = "it holds a private key but no certificate" if holds_key else "not PEM"
        raise OptionError(
            f"--tls-cert {cert}: {detail} (expected -----BEGIN CERTIFICATE-----)", usage=False
        )
    key_pem = cert_pem if key is None else _read_pem(key, "--tls-key")
    if b"PRIVATE KEY-----" not in key_pem:
        if key is None:
            raise OptionError(
                f"--tls-cert {cert}: no private key in it; give the key with --tls-key FILE",
                usage=False,
            )
        raise OptionError(
            f"--tls-key {key}: not a PEM private key (expected -----BEGIN PRIVATE KEY-----)",
            usage=False,
        )
    key_name = f"--tls-key {key}" if key is not None else f"the key in {cert}"
    try:
        context.load_cert_chain(cert, key, password=_no_password)
    except OptionError:  # the key asked for a password: there is no one to type it
        raise OptionError(
            f"{key_name}: the key is encrypted; decrypt it first (openssl pkey -in KEY -out NEW)",
            usage=False,
        ) from None
    except ssl.SSLError as exc:
        if exc.reason == "KEY_VALUES_MISMATCH":
            raise OptionError(
                f"{key_name} does not match the certificate in {cert}", usage=False
            ) from None
        raise OptionError(
            f"cannot load --tls-cert {cert}"
            + (f" and --tls-key {key}" if key is not None else "")
            + f": {exc.reason or exc}",
            usage=False,
        ) from None


def _server_ssl_context(args: argparse.Namespace) -> ssl.SSLContext | None:
    if args.tls_cert is None:
        if args.tls_key is not None:
            raise OptionError("argument --tls-key: needs --tls-cert", usage=True)
        return None
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    _load_cert_chain(context, args.tls_cert, args.tls_key)
    return context


def serve_options(args: argparse.Namespace) -> dict[str, Any]:
    """The keyword arguments for ``serve`` that these options ask for.

    Raises:
      OptionError: an option is inconsistent or a file cannot be loaded.
    """
    options: dict[str, Any] = {}
    context = _server_ssl_context(args)
    if context is not None:
        options["ssl_context"] = context
    if args.trusted_proxy is not None:
        if not args.proxy_protocol:
            raise OptionError("argument --trusted-proxy: needs --proxy-protocol", usage=True)
        try:
            parse_networks(args.trusted_proxy)
        except ValueError as exc:
            raise OptionError(f"argument --trusted-proxy: {exc}", usage=True) from None
        options["trusted_proxies"] = list(args.trusted_proxy)
    if args.proxy_protocol:
        options["proxy_protocol"] = True
    for flag in ("allow", "deny"):
        entries = getattr(args, flag)
        if entries is not None:
            try:
                parse_networks(entries)
            except ValueError as exc:
                raise OptionError(f"argument --{flag}: {exc}", usage=True) from None
            options[flag] = list(entries)
    if args.max_per_peer is not None:
        options["max_connections_per_peer"] = args.max_per_peer
    if args.max_accept_rate is not None:
        options["max_accept_rate"] = args.max_accept_rate
    if args.worker_index is not None:  # one of `--workers N`: share the port
        options["reuse_port"] = True
    return options


def positive_int(text: str) -> int:
    """argparse type: a whole number >= 1."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, not {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a number >= 1, not {value}")
    return value


#: ``serve --workers``: at most this many processes per CPU core. More workers than cores
#: only adds context switches (nginx's ``worker_processes auto`` is one per core); the cap
#: keeps a typo (``--workers 100000``) from forking the machine to a standstill.
WORKERS_PER_CORE: Final = 4


def worker_count(text: str) -> int:
    """argparse type: a number of worker processes, 1 to ``WORKERS_PER_CORE`` per core."""
    value = positive_int(text)
    cores = os.cpu_count() or 1
    limit = WORKERS_PER_CORE * cores
    if value > limit:
        raise argparse.ArgumentTypeError(
            f"expected at most {limit} workers ({WORKERS_PER_CORE} per CPU core, "
            f"{cores} core{'' if cores == 1 else 's'} here), not {value}"
        )
    return value


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, not {text!r}") from None
    if not (value > 0 and math.isfinite(value)):
        raise argparse.ArgumentTypeError(f"expected a number > 0, not {text!r}")
    return value


def stats_line(server: Server) -> str:
    """``stats: accepted=12 active=3 ...``: every counter of ``server.stats``, one line."""
    fields = dataclasses.asdict(server.stats)
    return "stats: " + " ".join(f"{name}={value}" for name, value in fields.items())


async def print_stats(
    server: Server, interval: float, write: Callable[[str], None] | None = None
) -> None:
    """Write :func:`stats_line` every ``interval`` seconds, until cancelled.

    ``write`` takes the line (``serve`` passes its non-blocking stderr writer); by default
    it is printed on stderr.
    """
    while True:
        await trio.sleep(interval)
        line = f"trio-tcp: {stats_line(server)}"
        if write is not None:
            write(line)
        else:
            print(line, file=sys.stderr, flush=True)


def client_ssl_context(args: argparse.Namespace) -> ssl.SSLContext | None:
    """The client TLS context ``send --tls [--cafile FILE] [--insecure]`` asks for.

    Raises:
      OptionError: ``--cafile``/``--insecure`` without ``--tls``, or an unreadable CA file.
    """
    if not args.tls:
        if args.cafile is not None or args.insecure:
            raise OptionError("--cafile and --insecure need --tls", usage=True)
        return None
    if args.cafile is not None and args.insecure:
        raise OptionError("--cafile and --insecure cannot be used together", usage=True)
    if args.cafile is not None:
        pem = _read_pem(args.cafile, "--cafile")
        if b"-----BEGIN CERTIFICATE-----" not in pem:
            raise OptionError(
                f"--cafile {args.cafile}: no PEM certificate in it "
                "(expected -----BEGIN CERTIFICATE-----)",
                usage=False,
            )
    try:
        context = ssl.create_default_context(cafile=args.cafile)
    except (ssl.SSLError, OSError) as exc:
        reason = getattr(exc, "reason", None) or exc
        raise OptionError(f"cannot load --cafile {args.cafile}: {reason}", usage=False) from None
    if args.insecure:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    return context
