"""Shared test settings.

Hypothesis explores new random examples on every local run (that is how it found the
netstring chunking bug), but CI (``CI`` set in the environment) runs a derandomized profile:
the same examples every time, so a red CI run always means a change broke something.
"""

from __future__ import annotations

import os

import pytest
import trio
from hypothesis import settings

settings.register_profile("ci", derandomize=True, deadline=None, print_blob=True)
settings.register_profile("dev", deadline=None)
settings.load_profile("ci" if os.environ.get("CI") else "dev")


@pytest.fixture(params=["poller", "plain"])
def socket_waits(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Run a test with the fast socket stream waiting through the run's shared poller, and
    again through Trio's own waits (which it uses below ``_POLLER_MIN_STREAMS``)."""
    from trio_tcp import _socket_stream

    threshold = 1 if request.param == "poller" else 10**9
    monkeypatch.setattr(_socket_stream, "_POLLER_MIN_STREAMS", threshold)
    return str(request.param)


@pytest.fixture(params=["fast", "trio"])
def socket_checkpoints(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Run a test with the fast socket stream's one-frame checkpoints (what it uses on a Trio
    with the internals it reads) and again with Trio's own (its fallback)."""
    from trio_tcp import _socket_stream

    if request.param == "trio":
        monkeypatch.setattr(_socket_stream, "_checkpoint", trio.lowlevel.checkpoint)
        monkeypatch.setattr(
            _socket_stream, "_checkpoint_if_cancelled", trio.lowlevel.checkpoint_if_cancelled
        )
        monkeypatch.setattr(
            _socket_stream, "_cancel_shielded_checkpoint", trio.lowlevel.cancel_shielded_checkpoint
        )
        monkeypatch.setattr(_socket_stream, "_park", _socket_stream._park_public)
    return str(request.param)
