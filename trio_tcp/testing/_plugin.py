"""The pytest plugin of trio_tcp (registered through the ``pytest11`` entry point).

Importing this module must stay cheap and must not fail when only trio_tcp is installed:
it imports pytest and the standard library only; trio_tcp itself is imported lazily.
"""

from __future__ import annotations
