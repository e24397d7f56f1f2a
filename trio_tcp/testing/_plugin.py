"""The pytest plugin of trio_tcp, registered through the ``pytest11`` entry point.

Installing trio_tcp makes these fixtures available to every test (they need pytest-trio:
``trio_mode = true`` in the pytest configuration, or ``@pytest.mark.trio`` on the test):

``tcp_server``
    A factory: ``server = await tcp_server(handler, **serve_options)`` starts the real
    :func:`trio_tcp.serve` on 127.0.0.1 with a free port, inside the test's nursery;
    ``client = await server.connect()``. Every server is shut down gracefully at teardown.
``memory_server``
    The same over memory streams (:func:`trio_tcp.testing.serve_memory`); also takes
    ``wrap=`` (faults on the server's side) and ``lockstep=``.
``transport_server``
    The same again, over the transport named by the ``transport`` parameter: a test that
    asks for it runs once per transport (``memory``, ``lockstep``, ``tcp``, ``unix``), or
    only over those listed by ``@pytest.mark.transports("memory", "tcp")``.

A handler that raises fails the test at teardown (with the
handler's traceback) -- the errors the server counts as ``failed``; a reset peer or a
protocol error is a connection's normal end, not a bug. Pass
``allow_handler_errors=True`` to the factory when the test expects them.

Importing this module is cheap and cannot fail when only trio_tcp is installed: it
imports pytest and the standard library; trio and trio_tcp are imported when a fixture
runs.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import traceback
from collections.abc import AsyncIterator, Sequence
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    import trio

    from .._connection import Connection
    from .._server import Handler, Server

__all__ = ["TRANSPORTS", "ServerFactory"]

#: What ``transport_server`` runs over, by default all of them.
TRANSPORTS: tuple[str, ...] = ("memory", "lockstep", "tcp", "unix")


def pytest_configure(config: pytest.Config) -> None:
    """Register the ``transports`` marker."""
    config.addinivalue_line(
        "markers",
        "transports(*names): run a test that uses transport_server (or the transport "
        f"parameter) only over these transports; default: {', '.join(TRANSPORTS)}",
    )


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """Parametrize every test that needs ``transport`` over the transports."""
    if "transport" not in metafunc.fixturenames:
        return
    marker = metafunc.definition.get_closest_marker("transports")
    names: Sequence[str] = marker.args if marker is not None else TRANSPORTS
    unknown = [name for name in names if name not in TRANSPORTS]
    if unknown or not names:
        raise pytest.UsageError(
            f"@pytest.mark.transports: unknown {unknown or 'empty list'}; "
            f"choose from {', '.join(TRANSPORTS)}"
        )
    metafunc.parametrize("transport", list(names))


class ServerFactory:
    """What the fixtures return: ``server = await factory(handler, **serve_options)``."""

    def __init__(self, nursery: trio.Nursery, transport: str) -> None:
        if transport not in TRANSPORTS:
            raise ValueError(f"unknown transport {transport!r}")
        self.nursery = nursery
        self.transport = transport
        #: Every server started, in order.
        self.servers: list[Server] = []
        #: Handler exceptions that will fail the test at teardown.
        self.failures: list[BaseException] = []
        self._directory: str | None = None

    async def __call__(
        self, handler: Handler, *, allow_handler_errors: bool = False, **serve_options: Any
    ) -> Server:
        """Start a server running ``handler``; returns once it accepts.

        Args:
          allow_handler_errors: do not fail the test when the handler raises.
          serve_options: for :func:`trio_tcp.serve` (``max_connections``,
            ``idle_timeout``, ``grace_period``, ``handler_errors``...); the memory
            transports also take ``wrap=`` (see :class:`trio_tcp.testing.MemoryListener`).
        """
        import functools

        from .._server import handler_error_kind, serve
        from ._memory import serve_memory

        async def recorded(conn: Connection) -> object:
            try:
                return await handler(conn)
            except Exception as exc:
                # Exactly what the server counts as `failed`: a peer's reset or framing
                # violation is the peer's doing, not a bug in the handler.
                if handler_error_kind(exc) == "failed" and not allow_handler_errors:
                    self.failures.append(exc)
                raise

        if self.transport in ("memory", "lockstep"):
            if self.transport == "lockstep":
                serve_options["lockstep"] = True
            start = functools.partial(serve_memory, recorded, **serve_options)
        elif self.transport == "tcp":
            start = functools.partial(serve, recorded, 0, host="127.0.0.1", **serve_options)
        else:
            if self._directory is None:
                # Not tmp_path: a Unix socket path must stay under ~100 bytes.
                self._directory = tempfile.mkdtemp(prefix="trio-tcp-")
            path = os.path.join(self._directory, f"{len(self.servers)}.sock")
            start = functools.partial(serve, recorded, unix_path=path, **serve_options)
        server: Server = await self.nursery.start(start)
        self.servers.append(server)
        return server

    async def aclose(self) -> None:
        """Shut every server down gracefully (each within its ``grace_period``).

        Cancellation: stops the waiting (as :meth:`trio_tcp.Server.aclose`); servers not yet
        closed are cancelled with the test's nursery, and the socket directory is removed
        either way.
        """
        try:
            for server in self.servers:
                await server.aclose()
        finally:
            if self._directory is not None:
                shutil.rmtree(self._directory, ignore_errors=True)

    def check(self) -> None:
        """Fail the test if a handler raised (see the module docstring)."""
        if self.failures:
            shown = "\n".join("".join(traceback.format_exception(exc)) for exc in self.failures[:3])
            pytest.fail(
                f"{len(self.failures)} handler(s) raised ({self.transport} server); pass "
                f"allow_handler_errors=True if that is expected:\n{shown}",
                pytrace=False,
            )


async def _run_factory(factory: ServerFactory) -> None:
    """Teardown: shut the servers down, then fail the test if a handler raised."""
    await factory.aclose()
    factory.check()


@pytest.fixture
async def tcp_server(nursery: trio.Nursery) -> AsyncIterator[ServerFactory]:
    """``server = await tcp_server(handler, **serve_options)``: real TCP on 127.0.0.1."""
    factory = ServerFactory(nursery, "tcp")
    yield factory
    await _run_factory(factory)


@pytest.fixture
async def memory_server(nursery: trio.Nursery) -> AsyncIterator[ServerFactory]:
    """``server = await memory_server(handler, **serve_options)``: the real server, in memory."""
    factory = ServerFactory(nursery, "memory")
    yield factory
    await _run_factory(factory)


@pytest.fixture
async def transport_server(nursery: trio.Nursery, transport: str) -> AsyncIterator[ServerFactory]:
    """``server = await transport_server(handler)`` over each transport in turn."""
    factory = ServerFactory(nursery, transport)
    yield factory
    await _run_factory(factory)
