"""Failpoints: named places where a crash test can make this process die with SIGKILL.

`AUTOMATA_FAILPOINTS="og.after_wal"` (comma-separated names) kills the process the first time
it reaches `failpoint("og.after_wal")`. Unset (always, outside crash tests) it costs one set
lookup. This is how tests prove that a crash at each step of a path loses and duplicates
nothing, instead of hoping a timed kill lands in the right place.
"""

from __future__ import annotations

import os
import signal

_ARMED = frozenset(p.strip() for p in os.environ.get("AUTOMATA_FAILPOINTS", "").split(",") if p.strip())


def failpoint(name: str) -> None:
    if name in _ARMED:
        os.kill(os.getpid(), signal.SIGKILL)
