"""``trio-tcp serve --workers N``: N processes, each its own ``trio.run``, on one port.

Trio runs one thread; to use every core, run one server per core. Each worker is a child
``trio-tcp serve`` bound with ``SO_REUSEPORT``, so the kernel spreads incoming connections
over the workers' listen queues (Linux hashes the 4-tuple; no thundering herd, no shared
accept lock). The parent holds no listening socket, only a bound placeholder that reserves
the port when ``--port 0`` asked for a free one.

Signals: the workers run in their own sessions, so a terminal's Ctrl-C reaches the parent
alone, which sends each worker one SIGTERM (graceful: its grace period applies) and on a
second signal another (a worker's second signal means stop now). Every worker gets exactly
what the parent got, once.

A worker that dies is reported on stderr with its exit status and is *not* restarted: a
crash is a bug, and restarting it in a loop in-process hides it from the one place that has
restart policy, back-off and alerting (systemd's ``Restart=``, Kubernetes). The other workers
keep serving: the kernel stops routing to a closed ``SO_REUSEPORT`` socket at once. When the
last worker is gone the parent exits 1, so that supervisor restarts the whole group.

Coordination does not parse output: each worker gets the write end of a pipe
(``--ready-fd``) and writes ``ready`` to it once it listens. Its stdout and stderr are pipes
the parent copies to its own, whole lines at a time, each tagged ``[w2]``, through the
parent's output threads (a blocked terminal holds up the workers' output, never the parent's
event loop).
"""

from __future__ import annotations

import argparse
import errno
import os
import signal
import socket
import subprocess
import sys
from dataclasses import dataclass, field

import trio

from ._cli_options import OptionError
from ._output import FdWriter, writer_for

__all__ = ["run_workers"]


@dataclass
class _Worker:
    index: int
    process: trio.Process
    listening: trio.Event = field(default_factory=trio.Event)


def _reserve_port(host: str, port: int) -> socket.socket:
    """Bind (never listen) a SO_REUSEPORT socket to ``host:port``: holds the port for us."""
    if not hasattr(socket, "SO_REUSEPORT"):
        raise OptionError("--workers needs SO_REUSEPORT, which this OS does not have", usage=False)
    try:
        family = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0][0]
    except OSError:
        raise OptionError(f"cannot resolve host {host!r}", usage=False) from None
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        where = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
        # The same words as a single server's `cannot listen on ...: address already in use`.
        reason = "address already in use" if exc.errno == errno.EADDRINUSE else exc.strerror or exc
        raise OptionError(f"cannot listen on {where}: {reason}", usage=False) from None
    return sock


# Seconds the parent waits, after the last worker exited, for the workers' last lines.
_FORWARD_LINGER = 2.0


async def _forward_output(
    worker: _Worker, pipe: trio.abc.ReceiveStream, out: FdWriter, copied: trio.Event
) -> None:
    """Copy a worker's pipe to ``out`` whole lines at a time, each tagged ``[w1]``."""
    tag = f"[w{worker.index}] ".encode()
    pending = bytearray()
    try:
        await _copy_lines(pipe, out, tag, pending)
    finally:
        copied.set()


async def _copy_lines(
    pipe: trio.abc.ReceiveStream, out: FdWriter, tag: bytes, pending: bytearray
) -> None:
    async with pipe:
        while chunk := await pipe.receive_some():
            pending += chunk
            end = pending.rfind(b"\n") + 1
            if end:
                lines = bytes(pending[:end]).splitlines(keepends=True)
                del pending[:end]
                await out.write(tag, b"".join(tag + line for line in lines))
        if pending:  # a last line without its ending (the worker died mid-write)
            await out.write(tag, tag + bytes(pending) + b"\n")


async def _wait_ready(worker: _Worker, ready_fd: int) -> None:
    """Set ``worker.listening`` when the worker writes ``ready`` to its pipe."""
    async with trio.lowlevel.FdStream(ready_fd) as pipe:
        received = b""
        while chunk := await pipe.receive_some():
            received += chunk
        if received.startswith(b"ready"):
            worker.listening.set()


async def run_workers(args: argparse.Namespace) -> None:
    """Run ``args.workers`` copies of this ``trio-tcp serve`` command; return when all exit.

    Raises:
      OptionError: SO_REUSEPORT is missing, ``--unix`` was given, the port cannot be
        reserved, or a worker ended badly (any non-zero exit, or all workers died).

    Cancellation: cancelling it kills the workers (SIGKILL) and waits for them.
    """
    if args.unix:
        raise OptionError("--workers needs a TCP port, not --unix", usage=True)
    placeholder = _reserve_port(args.host, args.port)
    port = int(placeholder.getsockname()[1])
    command = [sys.executable, "-m", "trio_tcp", *args.argv, "--port", str(port)]
    workers: list[_Worker] = []
    stdout, stderr = writer_for(sys.stdout.fileno()), writer_for(sys.stderr.fileno())
    stdout.attach()
    stderr.attach()
    forwarded: list[trio.Event] = []
    # The lifeline: every worker holds the read end, only we hold the write end. When we
    # exit, however we die (even SIGKILL), the kernel closes it and the workers read EOF
    # and shut down. (Linux's PR_SET_PDEATHSIG is no substitute: it fires when the parent
    # *thread* exits, and Trio forks from a worker thread that exits after 10 s idle.)
    lifeline_read, lifeline_write = os.pipe()
    shutting_down = False
    died: list[str] = []
    try:
        with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
            async with trio.open_nursery() as nursery:
                for index in range(1, args.workers + 1):
                    ready_read, ready_write = os.pipe()
                    try:
                        process = await trio.lowlevel.open_process(
                            [
                                *command,
                                "--worker-index",
                                str(index),
                                "--ready-fd",
                                str(ready_write),
                                "--parent-fd",
                                str(lifeline_read),
                            ],
                            stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE,
                            pass_fds=(ready_write, lifeline_read),
                            start_new_session=True,  # a terminal's Ctrl-C reaches only us
                        )
                    except BaseException:
                        os.close(ready_read)
                        raise
                    finally:
                        os.close(ready_write)
                    worker = _Worker(index, process)
                    workers.append(worker)
                    assert process.stdout is not None and process.stderr is not None
                    nursery.start_soon(_wait_ready, worker, ready_read)
                    for pipe, out in ((process.stdout, stdout), (process.stderr, stderr)):
                        copied = trio.Event()
                        forwarded.append(copied)
                        nursery.start_soon(_forward_output, worker, pipe, out, copied)

                async def watch(worker: _Worker) -> None:
                    code = await worker.process.wait()
                    if not worker.listening.is_set():  # it never started: give up on all
                        died.append(f"worker {worker.index} failed to start (exit code {code})")
                        nursery.cancel_scope.cancel()
                        return
                    if shutting_down and code == 0:
                        return
                    what = f"exited with code {code}" if code >= 0 else f"killed by signal {-code}"
                    alive = sum(w.process.returncode is None for w in workers)
                    died.append(f"worker {worker.index} {what}")
                    stderr.write_nowait(
                        f"trio-tcp: worker {worker.index} (pid {worker.process.pid}) {what}; "
                        f"not restarted ({alive} of {len(workers)} left)\n".encode()
                    )
                    if not alive:
                        nursery.cancel_scope.cancel()

                for worker in workers:
                    nursery.start_soon(watch, worker)
                for worker in workers:
                    await worker.listening.wait()
                os.close(lifeline_read)
                lifeline_read = -1
                where = f"[{args.host}]" if ":" in args.host else args.host
                stdout.write_nowait(
                    f"listening on {where}:{port} ({len(workers)} workers)\n".encode()
                )
                placeholder.close()

                async def relay() -> None:
                    nonlocal shutting_down
                    async for signum in signals:
                        if not shutting_down:
                            stderr.write_nowait(
                                f"trio-tcp: {signal.Signals(signum).name}: shutting down "
                                f"{len(workers)} workers\n".encode()
                            )
                        shutting_down = True
                        for worker in workers:
                            if worker.process.returncode is None:
                                worker.process.send_signal(signal.SIGTERM)

                nursery.start_soon(relay)
                for worker in workers:
                    await worker.process.wait()
                # The forwarders end at the workers' EOF: every last line is copied (unless
                # our own output is blocked: then give up after a moment).
                with trio.move_on_after(_FORWARD_LINGER):
                    for copied in forwarded:
                        await copied.wait()
                nursery.cancel_scope.cancel()
    finally:
        placeholder.close()
        if lifeline_read != -1:
            os.close(lifeline_read)
        with trio.CancelScope(shield=True):
            for worker in workers:
                if worker.process.returncode is None:
                    worker.process.kill()
                await worker.process.wait()
        os.close(lifeline_write)
    if died:
        raise OptionError("; ".join(died), usage=False)
