"""Optional sample data kept beside the clone, never part of the repository.

SAMPLE_CANDLES is the real Binance.US BTCUSDT 1-minute candles of 2023-03-01 to 2023-03-21
(30,240 rows), looked for at `shared/data/` in the folder that holds the checkout (or at
$AUTOMATA_SAMPLE_CANDLES, for a checkout elsewhere, such as a git worktree). Whoever has
the file gets the tests against real prices; everyone else sees those tests skipped (each says
so), and the rest of the suite needs nothing outside the repository.
"""

from __future__ import annotations

import os
from pathlib import Path

SAMPLE_CANDLES = Path(
    os.environ.get("AUTOMATA_SAMPLE_CANDLES")
    or Path(__file__).resolve().parents[3]
    / "shared"
    / "data"
    / "binanceus_BTCUSDT_1m_2023-03-01_2023-03-21.csv"
)
