"""trio_tcp.lessons: what the teaching notebooks teach, importable and tested.

The notebooks show these handlers' code and run them; ``tests/test_lessons.py`` runs every one
through :mod:`trio_tcp.testing` (cancellation sweep, concurrent clients, faults, a member that
never reads), so a pattern a learner copies from a notebook is one that holds under concurrency
and cancellation.

* Handlers: :func:`print_chunks` (plain Trio), :func:`print_buffers`, :func:`echo`,
  :func:`shout_lines`, :func:`greeting_then_lines`, :class:`ChatRoom` (a queue and a
  writer task per member), :func:`calculator`, :func:`polite_echo`.
* Kept to show a mistake, never to copy: :func:`shout_chunks` (a chunk taken for a line),
  :class:`NaiveChatRoom` (a broadcast that waits for the slowest member and collides with
  ``trio.BusyResourceError``).
* :func:`kernel_sockets`: the kernel's TCP table (``/proc/net/tcp``), for notebook 7.
* Exercise checks: ``check_*_exercise(handler)`` returns a :class:`Verdict` that says in plain
  words what is wrong; reference solutions are in :mod:`trio_tcp.lessons.solutions`.
"""

from __future__ import annotations

from ._exercises import (
    Verdict,
    check_batching_exercise,
    check_byte_count_exercise,
    check_chat_exercise,
    check_echo_exercise,
    check_line_length_exercise,
    check_polite_exercise,
    check_shout_exercise,
)
from ._handlers import (
    ChatRoom,
    NaiveChatRoom,
    calculator,
    echo,
    greeting_then_lines,
    polite_echo,
    print_buffers,
    print_chunks,
    shout_chunks,
    shout_lines,
)
from ._wire import KernelSocket, kernel_sockets

__all__ = [
    "ChatRoom",
    "KernelSocket",
    "NaiveChatRoom",
    "Verdict",
    "calculator",
    "check_batching_exercise",
    "check_byte_count_exercise",
    "check_chat_exercise",
    "check_echo_exercise",
    "check_line_length_exercise",
    "check_polite_exercise",
    "check_shout_exercise",
    "echo",
    "greeting_then_lines",
    "kernel_sockets",
    "polite_echo",
    "print_buffers",
    "print_chunks",
    "shout_chunks",
    "shout_lines",
]
