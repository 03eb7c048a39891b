"""The fast path's numpy kernel: the next candle on which any open order could trigger.

A candle's ticks all lie within [low, high] and include both, so an order can only fill or
trigger on a candle whose low <= `below` or high >= `above` (exact scaled integers). Candles
before that one are quiet and can be skipped. The search looks at growing windows, so a
nearby hit costs little and a long quiet stretch is crossed in a few vector operations.
"""

from __future__ import annotations

import numpy as np

FIRST_WINDOW = 1024  # most March gaps are under it: one window (256 took two for a third of them)
MAX_WINDOW = 1 << 16


def next_candidate(low: np.ndarray, high: np.ndarray, start: int, below: int, above: int, stop: int) -> int:
    """First i in [start, stop) with low[i] <= below or high[i] >= above; stop if none."""
    i, size = start, FIRST_WINDOW
    while i < stop:
        end = min(stop, i + size)
        hit = low[i:end] <= below
        hit |= high[i:end] >= above
        k = int(hit.argmax())
        if hit[k]:
            return i + k
        i, size = end, min(size * 4, MAX_WINDOW)
    return stop
