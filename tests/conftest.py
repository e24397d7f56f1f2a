"""Shared test settings.

Hypothesis explores new random examples on every local run (that is how it found the
netstring chunking bug), but CI (``CI`` set in the environment) runs a derandomized profile:
the same examples every time, so a red CI run always means a change broke something.
"""

from __future__ import annotations

import os

from hypothesis import settings

settings.register_profile("ci", derandomize=True, deadline=None, print_blob=True)
settings.register_profile("dev", deadline=None)
settings.load_profile("ci" if os.environ.get("CI") else "dev")
