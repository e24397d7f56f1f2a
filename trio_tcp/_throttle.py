"""`LogThrottle`: bounded logs for events a peer can repeat at will.

A client can make a server refuse, reset, time out or reject it as often as it can connect;
one log line per event lets it flood the log (and, with a slow log reader, the server). So
each *kind* of event is logged in full the first time, then counted: the server calls
:meth:`LogThrottle.flush` once per interval, which writes one summary line per kind that
happened again ("... 1,369 more in the last 10 s"), and a kind that stayed silent for a
whole interval starts a new episode (its next event is logged in full again). The output is
at most two lines per kind per interval however hard the flood; the exact numbers live in
``server.stats``. (nginx's ``limit_req_log_level`` and syslog's "last message repeated N
times" are the precedents.)
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final

import trio

__all__ = ["DEFAULT_LOG_INTERVAL", "LogThrottle"]

#: Seconds between summary lines of a repeating event (syslog repeats its summary every
#: 30 s; 10 s is short enough for someone watching a terminal to see a flood start and end).
DEFAULT_LOG_INTERVAL: Final = 10.0


@dataclass(slots=True)
class _Episode:
    level: int
    summary: str
    since: float
    repeated: int = 0
    last: str = ""


class LogThrottle:
    """Log the first event of each kind, then at most one summary per :meth:`flush`."""

    def __init__(
        self,
        logger: logging.Logger,
        interval: float = DEFAULT_LOG_INTERVAL,
        *,
        clock: Callable[[], float] = trio.current_time,
    ) -> None:
        if not interval > 0:
            raise ValueError("the log interval must be > 0")
        self.logger = logger
        self.interval = interval
        self._clock = clock
        self._episodes: dict[str, _Episode] = {}

    def event(
        self,
        kind: str,
        level: int,
        summary: str,
        message: str,
        *args: object,
        exc_info: BaseException | None = None,
    ) -> None:
        """Record one event of ``kind``: logged now if it starts an episode, else counted.

        ``summary`` names the repeated event in the summary line ("connections refused
        (per-peer limit)"); ``message % args`` is the full line. A counted event is
        formatted too (the summary quotes the last one, and its arguments may change
        after the event, a closed connection's address for one) but not written.
        """
        episode = self._episodes.get(kind)
        if episode is None:
            self._episodes[kind] = _Episode(level, summary, self._clock())
            self.logger.log(level, message, *args, exc_info=exc_info, stacklevel=2)
            return
        episode.repeated += 1
        if self.logger.isEnabledFor(level):
            episode.last = message % args if args else message

    def flush(self) -> None:
        """Write one summary line per kind that repeated since the last flush.

        A kind with nothing new ends its episode: its next event is logged in full.
        """
        now = self._clock()
        for kind, episode in list(self._episodes.items()):
            if not episode.repeated:
                del self._episodes[kind]
                continue
            if self.logger.isEnabledFor(episode.level):
                self.logger.log(
                    episode.level,
                    "%s: %s more in the last %.3g s (last: %s)",
                    episode.summary,
                    f"{episode.repeated:,}",
                    now - episode.since,
                    episode.last,
                )
            episode.repeated = 0
            episode.since = now

    async def run(self) -> None:
        """Flush every ``interval`` seconds, forever (a task of the server's nursery)."""
        while True:
            await trio.sleep(self.interval)
            self.flush()
