"""Request-weight limiter: stay under the venue's per-minute weight instead of hitting 429.

Binance counts weight per IP in fixed one-minute windows and reports the running total in
`X-MBX-USED-WEIGHT-1M`; the limiter counts locally, takes the venue's figure when it is
higher (other processes share the IP), and makes callers wait for the next window when a
request would take the total past `limit * safety`.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

from shared import metrics


class WeightLimiter:
    def __init__(
        self,
        venue: str,
        limit: int = 6000,
        safety: float = 0.8,
        window_s: float = 60.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.venue, self.limit, self.safety, self.window_s, self.clock = venue, limit, safety, window_s, clock
        self._window = self._window_of(clock())
        self.used = 0
        self._lock = asyncio.Lock()
        self._gauge = metrics.gauge(
            "automata_venue_used_weight", "Request weight used this minute", ("venue",)
        ).labels(venue)

    def _window_of(self, now: float) -> int:
        return int(now // self.window_s)

    def _roll(self) -> None:
        window = self._window_of(self.clock())
        if window != self._window:
            self._window, self.used = window, 0

    async def acquire(self, weight: int) -> None:
        """Wait, if needed, until `weight` fits in the current window, then count it."""
        async with self._lock:
            while True:
                self._roll()
                if self.used + weight <= self.limit * self.safety or self.used == 0:
                    self.used += weight
                    self._gauge.set(self.used)
                    return
                wait = (self._window + 1) * self.window_s - self.clock()
                await asyncio.sleep(max(wait, 0.01))

    def observe(self, used_header: str | None) -> None:
        """Take the venue's own count when it is higher than ours."""
        if not used_header:
            return
        try:
            used = int(used_header)
        except ValueError:
            return
        self._roll()
        if used > self.used:
            self.used = used
            self._gauge.set(used)
