"""Free balances for a strategy's context, from the order gateway's `account:{venue}` stream.

The runner never calls the venue: the newest snapshot plus any later deltas give each asset's
free amount. They are read at most once a second (a strategy that sizes orders from the free
balance — DCA with budget 0, a fractal stop without a fixed quantity — needs a recent figure,
not a per-event one)."""

from __future__ import annotations

import time
from decimal import Decimal

import redis.asyncio as aioredis

from shared.account_view import fold_account
from shared.streams import account


async def latest_free(redis: aioredis.Redis, venue: str, lookback: int = 50) -> dict[str, Decimal] | None:
    """Free amount per asset (newest first wins, back to the last snapshot); None if unknown."""
    view = fold_account(await redis.xrevrange(account(venue), count=lookback))
    return {asset: bal.free for asset, bal in view.balances.items()} or None


class BalanceCache:
    def __init__(self, redis: aioredis.Redis, venue: str, max_age_s: float = 1.0) -> None:
        self.redis, self.venue, self.max_age_s = redis, venue, max_age_s
        self._at = -1e9
        self._free: dict[str, Decimal] | None = None

    async def get(self) -> dict[str, Decimal] | None:
        now = time.monotonic()
        if now - self._at >= self.max_age_s:
            self._free = await latest_free(self.redis, self.venue)
            self._at = now
        return self._free
