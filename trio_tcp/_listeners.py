"""Listening sockets: TCP on every address of a host with one port, and Unix sockets.

Built on Trio's own ``trio.SocketListener``; this adds what ``trio.open_tcp_listeners``
leaves out: the same port on every address family when port 0 asks for a free one,
``SO_REUSEPORT``, and a Unix listener that removes its socket file and never clobbers a file
that is not a stale socket.
"""

from __future__ import annotations

import errno
import os
import socket as stdlib_socket
import stat
from collections.abc import Sequence

import trio

__all__ = ["UnixSocketListener", "open_tcp_listeners", "open_unix_listener"]

# Linux truncates the backlog to net.core.somaxconn; asking for the most lets the kernel
# decide (the same choice as trio's open_tcp_listeners).
_MAX_BACKLOG = 0xFFFF
# When port 0 gives the first address family a free port that another family already uses,
# try again with a fresh port this many times.
_PORT_ZERO_ATTEMPTS = 20


def _backlog(backlog: int | None) -> int:
    return _MAX_BACKLOG if backlog is None else min(backlog, _MAX_BACKLOG)


async def _resolve(host: str | Sequence[str] | None, port: int) -> list[tuple[int, object]]:
    hosts: Sequence[str | None]
    hosts = [host] if host is None or isinstance(host, str) else list(host)
    found: list[tuple[int, object]] = []
    for one in hosts:
        infos = await trio.socket.getaddrinfo(
            one, port, type=trio.socket.SOCK_STREAM, flags=trio.socket.AI_PASSIVE
        )
        for family, _type, _proto, _name, sockaddr in infos:
            entry = (int(family), sockaddr)
            if entry not in found:
                found.append(entry)
    return found


async def _bind_one(
    family: int, sockaddr: object, port: int, backlog: int, reuse_port: bool
) -> trio.SocketListener:
    sock = trio.socket.socket(family, trio.socket.SOCK_STREAM)
    try:
        # SO_REUSEADDR: rebinding right after a restart must not wait out TIME_WAIT.
        sock.setsockopt(trio.socket.SOL_SOCKET, trio.socket.SO_REUSEADDR, 1)
        if reuse_port:
            if not hasattr(stdlib_socket, "SO_REUSEPORT"):
                raise OSError(errno.ENOPROTOOPT, "SO_REUSEPORT is not available on this OS")
            sock.setsockopt(trio.socket.SOL_SOCKET, stdlib_socket.SO_REUSEPORT, 1)
        if family == trio.socket.AF_INET6:
            # One socket per family: the IPv6 socket must not also claim IPv4.
            sock.setsockopt(trio.socket.IPPROTO_IPV6, trio.socket.IPV6_V6ONLY, 1)
        assert isinstance(sockaddr, tuple)
        address = (sockaddr[0], port, *sockaddr[2:])
        await sock.bind(address)
        sock.listen(backlog)
        return trio.SocketListener(sock)
    except BaseException:
        sock.close()
        raise


async def open_tcp_listeners(
    port: int,
    *,
    host: str | Sequence[str] | None = "127.0.0.1",
    backlog: int | None = None,
    reuse_port: bool = False,
) -> list[trio.SocketListener]:
    """Listen on ``port`` at every address ``host`` resolves to.

    With ``port=0`` the first address gets a free port from the OS and every other address
    is bound to that same port, so ``server.port`` means one thing. ``host=None`` listens
    on every interface.

    Raises:
      OSError: binding failed (``errno.EADDRINUSE``: the address is in use).
      socket.gaierror: ``host`` cannot be resolved.

    Cancellation: a cancelled call leaves no socket open (listeners already bound are
    closed).
    """
    if not 0 <= port <= 65535:
        raise ValueError(f"port must be 0-65535, not {port}")
    addresses = await _resolve(host, port)
    if not addresses:
        raise OSError(f"{host!r} resolved to no address")
    attempts = _PORT_ZERO_ATTEMPTS if port == 0 and len(addresses) > 1 else 1
    for attempt in range(attempts):
        listeners: list[trio.SocketListener] = []
        chosen = port
        try:
            for family, sockaddr in addresses:
                listener = await _bind_one(family, sockaddr, chosen, _backlog(backlog), reuse_port)
                listeners.append(listener)
                if chosen == 0:
                    chosen = int(listener.socket.getsockname()[1])
            return listeners
        except BaseException as exc:  # a cancellation part way must not leak the bound ones
            for listener in listeners:
                listener.socket.close()
            retry = isinstance(exc, OSError) and exc.errno == errno.EADDRINUSE and port == 0
            if not retry or attempt == attempts - 1:
                raise
    raise AssertionError("unreachable")  # pragma: no cover


class UnixSocketListener(trio.abc.Listener[trio.SocketStream]):
    """A ``trio.SocketListener`` on a Unix socket that removes its socket file on close.

    The file is removed only if it is still the one this listener created (same inode),
    so a newer server that took over the path keeps its socket.
    """

    def __init__(self, listener: trio.SocketListener, path: str) -> None:
        self.listener = listener
        self.path = path
        self._identity = _identity(path)

    @property
    def socket(self) -> trio.socket.SocketType:
        """The listening socket."""
        return self.listener.socket

    async def accept(self) -> trio.SocketStream:
        """Accept the next connection (see ``trio.SocketListener.accept``).

        Cancellation: no connection is lost; one not yet accepted waits in the backlog.
        """
        return await self.listener.accept()

    async def aclose(self) -> None:
        """Close the socket and remove its file. Harmless to call twice.

        Cancellation: the socket is closed and its file removed even if the call is
        cancelled (Trio's rule for ``aclose``).
        """
        try:
            if self.socket.fileno() != -1 and self._identity == _identity(self.path):
                os.unlink(self.path)
        except OSError:
            pass
        finally:
            await self.listener.aclose()


def _identity(path: str) -> tuple[int, int] | None:
    try:
        info = os.stat(path)
    except OSError:
        return None
    return (info.st_dev, info.st_ino)


async def _remove_stale_socket(path: str) -> None:
    """Remove ``path`` if it is a Unix socket that nobody listens on; refuse anything else."""
    try:
        mode = os.lstat(path).st_mode
    except FileNotFoundError:
        return
    if not stat.S_ISSOCK(mode):
        raise FileExistsError(
            errno.EEXIST, f"{path} exists and is not a socket; refusing to replace it", path
        )
    probe = trio.socket.socket(trio.socket.AF_UNIX, trio.socket.SOCK_STREAM)
    try:
        await probe.connect(path)
    except ConnectionRefusedError:
        os.unlink(path)  # stale: its server is gone
        return
    except OSError:
        return  # let bind() report whatever is wrong
    finally:
        probe.close()
    raise OSError(errno.EADDRINUSE, f"{path} is in use by a running server", path)


async def open_unix_listener(
    path: str | os.PathLike[str], *, backlog: int | None = None, mode: int | None = None
) -> UnixSocketListener:
    """Listen on the Unix socket ``path``.

    A stale socket file (nobody accepts on it) is replaced; a live one raises
    ``OSError(EADDRINUSE)``; any other file raises ``FileExistsError`` and is left alone.
    An empty ``path`` raises ``ValueError`` (Linux would bind an unnamed, "autobind" address).

    Args:
      mode: if given, ``chmod`` the socket file to this mode (e.g. ``0o600``).

    Cancellation: a cancelled call leaves no socket open.
    """
    if not hasattr(trio.socket, "AF_UNIX"):
        raise OSError(errno.EAFNOSUPPORT, "Unix sockets are not available on this OS")
    path = os.fspath(path)
    if not path:
        raise ValueError("a Unix socket path must not be empty")
    await _remove_stale_socket(path)
    sock = trio.socket.socket(trio.socket.AF_UNIX, trio.socket.SOCK_STREAM)
    try:
        await sock.bind(path)
        if mode is not None:
            os.chmod(path, mode)
        sock.listen(_backlog(backlog))
    except BaseException:
        sock.close()
        raise
    return UnixSocketListener(trio.SocketListener(sock), path)
