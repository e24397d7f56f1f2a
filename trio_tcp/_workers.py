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
"""

from __future__ import annotations

import argparse
import errno
import signal
import socket
import subprocess
import sys
from dataclasses import dataclass, field

import trio

from ._cli_options import OptionError

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


def _die_with_parent() -> None:
    """In the forked worker: get SIGTERM if the parent dies (Linux ``PR_SET_PDEATHSIG``).

    Without it a parent killed with SIGKILL would leave its workers serving forever, owned
    by init. Elsewhere this does nothing (the workers then outlive a SIGKILLed parent).
    """
    if sys.platform != "linux":
        return
    import ctypes

    libc = ctypes.CDLL(None, use_errno=True)
    pr_set_pdeathsig = 1
    libc.prctl(pr_set_pdeathsig, signal.SIGTERM, 0, 0, 0)


async def _forward_output(worker: _Worker) -> None:
    """Copy the worker's stdout to ours, line by line, tagged ``[w1]``."""
    stdout = worker.process.stdout
    assert stdout is not None
    pending = b""
    async with stdout:
        while chunk := await stdout.receive_some():
            pending += chunk
            *lines, pending = pending.split(b"\n")
            for line in lines:
                text = line.decode("utf-8", "replace")
                if text.startswith("listening on"):
                    worker.listening.set()
                    continue  # the parent prints one line for all workers
                print(f"[w{worker.index}] {text}", flush=True)


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
    shutting_down = False
    died: list[str] = []
    try:
        with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
            async with trio.open_nursery() as nursery:
                for index in range(1, args.workers + 1):
                    process = await trio.lowlevel.open_process(
                        [*command, "--worker-index", str(index)],
                        stdout=subprocess.PIPE,
                        start_new_session=True,  # a terminal's Ctrl-C reaches only us
                        preexec_fn=_die_with_parent,
                    )
                    worker = _Worker(index, process)
                    workers.append(worker)
                    nursery.start_soon(_forward_output, worker)

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
                    print(
                        f"trio-tcp: worker {worker.index} (pid {worker.process.pid}) {what}; "
                        f"not restarted ({alive} of {len(workers)} left)",
                        file=sys.stderr,
                        flush=True,
                    )
                    if not alive:
                        nursery.cancel_scope.cancel()

                for worker in workers:
                    nursery.start_soon(watch, worker)
                for worker in workers:
                    await worker.listening.wait()
                where = f"[{args.host}]" if ":" in args.host else args.host
                print(f"listening on {where}:{port} ({len(workers)} workers)", flush=True)
                placeholder.close()

                async def relay() -> None:
                    nonlocal shutting_down
                    async for signum in signals:
                        if not shutting_down:
                            print(
                                f"trio-tcp: {signal.Signals(signum).name}: shutting down "
                                f"{len(workers)} workers",
                                file=sys.stderr,
                                flush=True,
                            )
                        shutting_down = True
                        for worker in workers:
                            if worker.process.returncode is None:
                                worker.process.send_signal(signal.SIGTERM)

                nursery.start_soon(relay)
                for worker in workers:
                    await worker.process.wait()
                nursery.cancel_scope.cancel()
    finally:
        placeholder.close()
        with trio.CancelScope(shield=True):
            for worker in workers:
                if worker.process.returncode is None:
                    worker.process.kill()
                await worker.process.wait()
    if died:
        raise OptionError("; ".join(died), usage=False)
