"""How hard the fuzz suite tries: bounded and repeatable in `make test`, long and random in
`make soak` (AUTOMATA_FUZZ=long).

Every fuzz test decorates itself with FUZZ, so one switch sets the whole suite. The bounded run is
derandomized: the same inputs every run, so CI's verdict never depends on luck; the long run draws
new ones each time and prints a reproduction blob for any failure.
"""

from __future__ import annotations

import os

from hypothesis import HealthCheck, settings

LONG = os.environ.get("AUTOMATA_FUZZ") == "long"
EXAMPLES = int(os.environ.get("AUTOMATA_FUZZ_EXAMPLES") or (20_000 if LONG else 150))

FUZZ = settings(
    max_examples=EXAMPLES,
    deadline=None,  # tests never assert timings; a hang is caught by the test's own timeout
    derandomize=not LONG,
    print_blob=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much],
)
