"""Failpoints: named places where a crash test can make this process die with SIGKILL.

`AUTOMATA_FAILPOINTS="og.after_wal"` (comma-separated names) kills the process the first time
it reaches `failpoint("og.after_wal")`; `og.after_wal:stop` freezes it there once (SIGSTOP).
Unset (always, outside crash tests) it costs two set lookups. This is how tests prove that a
crash at each step of a path loses and duplicates nothing, instead of hoping a timed kill lands
in the right place.
"""

from __future__ import annotations

import os
import signal

_ARMED = frozenset(p.strip() for p in os.environ.get("AUTOMATA_FAILPOINTS", "").split(",") if p.strip())
# `name:stop` freezes the process there instead (SIGSTOP, once): a test can then let another
# process act while this one is frozen at an exact point, and SIGCONT it afterwards.
_STOPS = {p.removesuffix(":stop") for p in _ARMED if p.endswith(":stop")}


def failpoint(name: str) -> None:
    if name in _ARMED:
        os.kill(os.getpid(), signal.SIGKILL)
    elif name in _STOPS:
        _STOPS.discard(name)
        os.kill(os.getpid(), signal.SIGSTOP)
