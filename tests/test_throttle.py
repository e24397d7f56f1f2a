"""LogThrottle: the first event of a kind in full, then one summary per interval."""

from __future__ import annotations

import logging

import pytest
import trio
import trio.testing

from trio_tcp._throttle import LogThrottle


def messages(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [record.getMessage() for record in caplog.records if record.name == "throttle-test"]


async def test_first_event_in_full_then_a_summary_per_interval(
    autojump_clock: trio.testing.MockClock, caplog: pytest.LogCaptureFixture
) -> None:
    """1,000 events in 10 s are two lines; a quiet interval ends the episode."""
    caplog.set_level(logging.INFO, logger="throttle-test")
    throttle = LogThrottle(logging.getLogger("throttle-test"), interval=10)
    with trio.fail_after(100):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(throttle.run)
            for n in range(1000):
                throttle.event("reset", logging.INFO, "resets", "peer %d reset", n)
                await trio.sleep(0.009)  # 9 s in all: one interval
            assert messages(caplog) == ["peer 0 reset"]
            await trio.sleep(1.5)  # the flush at 10 s
            assert messages(caplog) == [
                "peer 0 reset",
                "resets: 999 more in the last 10 s (last: peer 999 reset)",
            ]
            await trio.sleep(10)  # a quiet interval: the episode ends
            throttle.event("reset", logging.INFO, "resets", "peer %d reset", 1000)
            nursery.cancel_scope.cancel()
    assert messages(caplog)[-1] == "peer 1000 reset"
    assert len(messages(caplog)) == 3


def test_kinds_are_throttled_separately(caplog: pytest.LogCaptureFixture) -> None:
    """Each kind gets its own first line and its own summary."""
    caplog.set_level(logging.INFO, logger="throttle-test")
    now = [100.0]
    throttle = LogThrottle(logging.getLogger("throttle-test"), interval=10, clock=lambda: now[0])
    for _ in range(3):
        throttle.event("a", logging.WARNING, "a events", "an a")
        throttle.event("b", logging.INFO, "b events", "a b")
    now[0] = 107.5  # a flush at close comes before the interval ends
    throttle.flush()
    assert messages(caplog) == [
        "an a",
        "a b",
        "a events: 2 more in the last 7.5 s (last: an a)",
        "b events: 2 more in the last 7.5 s (last: a b)",
    ]
    assert [r.levelno for r in caplog.records] == [30, 20, 30, 20]


def test_interval_must_be_positive() -> None:
    """A zero interval is refused."""
    with pytest.raises(ValueError, match="interval"):
        LogThrottle(logging.getLogger("throttle-test"), interval=0)
