"""Reading the kernel's socket table, for the "on the wire" notebook.

Linux lists every TCP socket in ``/proc/net/tcp`` (IPv4) and ``/proc/net/tcp6``: addresses,
the state of the connection's state machine (RFC 9293, section 3.3.2) and how many bytes wait
in its send and receive queues. ``ss -tan`` prints the same table; reading the file needs no
tool and works wherever ``/proc`` does.
"""

from __future__ import annotations

import socket
import struct
from dataclasses import dataclass
from pathlib import Path

__all__ = ["KernelSocket", "kernel_sockets"]

# The state numbers of include/net/tcp_states.h.
_STATES = {
    1: "ESTABLISHED",
    2: "SYN_SENT",
    3: "SYN_RECV",
    4: "FIN_WAIT1",
    5: "FIN_WAIT2",
    6: "TIME_WAIT",
    7: "CLOSE",
    8: "CLOSE_WAIT",
    9: "LAST_ACK",
    10: "LISTEN",
    11: "CLOSING",
}


@dataclass(frozen=True, slots=True)
class KernelSocket:
    """One row of the kernel's TCP table.

    Attributes:
      local, peer: ``(host, port)``; the peer of a listening socket is ``("0.0.0.0", 0)``.
      state: ``"LISTEN"``, ``"ESTABLISHED"``, ``"FIN_WAIT2"``, ``"TIME_WAIT"``, ...
      send_queue: bytes sent by the program and not yet acknowledged by the peer.
      receive_queue: bytes received by the kernel and not yet read by the program.
    """

    local: tuple[str, int]
    peer: tuple[str, int]
    state: str
    send_queue: int
    receive_queue: int


def _ipv4(field: str) -> tuple[str, int]:
    host, port = field.split(":")
    # The address is printed as the in-memory 32-bit word: little-endian on x86 and ARM.
    address = socket.inet_ntoa(struct.pack("=I", int(host, 16)))
    return address, int(port, 16)


def kernel_sockets(
    port: int | None = None, *, table: Path = Path("/proc/net/tcp")
) -> list[KernelSocket]:
    """The IPv4 TCP sockets the kernel knows, optionally only those with ``port`` at one end.

    Raises:
      OSError: the table cannot be read (not Linux, or ``/proc`` is not mounted).
    """
    rows = []
    for line in table.read_text().splitlines()[1:]:
        fields = line.split()
        local, peer = _ipv4(fields[1]), _ipv4(fields[2])
        if port is not None and port not in (local[1], peer[1]):
            continue
        send_queue, receive_queue = (int(n, 16) for n in fields[4].split(":"))
        state = _STATES.get(int(fields[3], 16), fields[3])
        rows.append(KernelSocket(local, peer, state, send_queue, receive_queue))
    return rows
