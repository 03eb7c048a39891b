"""REST request-weight budget: a token bucket per venue, plus what the venue itself reports.

Binance counts request weight per IP per minute (header `X-MBX-USED-WEIGHT-1M`) and answers 429
(then 418, a ban) when it is exceeded; Bybit counts requests per 5 s. Backfill after a long outage
can mean many kline pages, so every REST call waits for its weight here first. The market
gateway and the order gateway's Binance adapter both spend their REST weight through it.
"""

from __future__ import annotations

import asyncio
import logging
import time

log = logging.getLogger("automata.ratelimit")


class WeightLimiter:
    """Allows `per_minute` weight per minute on average, in bursts of at most a fifth of it."""

    def __init__(self, per_minute: int, *, clock=time.monotonic) -> None:
        self.per_minute = per_minute
        self.rate = per_minute / 60.0
        self.capacity = max(1.0, per_minute / 5.0)
        self._clock = clock
        self._tokens = self.capacity
        self._stamp = clock()
        self._blocked_until = 0.0
        self._lock = asyncio.Lock()

    def _refill(self) -> None:
        now = self._clock()
        self._tokens = min(self.capacity, self._tokens + (now - self._stamp) * self.rate)
        self._stamp = now

    def delay_for(self, weight: int) -> float:
        """Seconds to wait before `weight` may be spent (0 = now). Spends it when 0."""
        self._refill()
        now = self._clock()
        if now < self._blocked_until:
            return self._blocked_until - now
        weight = min(float(weight), self.capacity)
        if self._tokens >= weight:
            self._tokens -= weight
            return 0.0
        return (weight - self._tokens) / self.rate

    async def acquire(self, weight: int = 1) -> None:
        async with self._lock:  # FIFO: a big backfill cannot starve a small poll forever
            delay = self.delay_for(weight)
            while delay > 0:  # a token bucket: the wait is computed, not polled
                await asyncio.sleep(delay)
                delay = self.delay_for(weight)

    def block(self, seconds: float, why: str) -> None:
        """The venue said stop (429/418 Retry-After, or its weight header near our budget)."""
        until = self._clock() + seconds
        if until > self._blocked_until:
            log.warning("REST paused for %.1fs: %s", seconds, why)
            self._blocked_until = until

    def observe_used(self, used_1m: int) -> None:
        """Binance's own count for this minute: above our budget (other processes on this IP
        count too), wait for the next minute."""
        if used_1m >= self.per_minute:
            self.block(60.0 - time.time() % 60.0 + 0.5, f"venue reports weight {used_1m} used this minute")
