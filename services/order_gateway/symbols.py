"""Symbol filters from exchangeInfo (cached, refreshed) and a short-lived last-price cache,
so commands are rounded and checked before they are sent, never rejected by the exchange."""

from __future__ import annotations

import time
from decimal import Decimal

import msgspec
import redis.asyncio as aioredis

from services.order_gateway.venues.base import VenueAdapter
from shared.filters import SymbolFilters
from shared.streams import venue_symbols


class SymbolCache:
    """Filters are also published to `venue:{venue}:symbols` for the strategy runners."""

    def __init__(
        self,
        adapter: VenueAdapter,
        redis: aioredis.Redis | None = None,
        refresh_s: float = 3600.0,
        price_ttl_s: float = 2.0,
    ) -> None:
        self.adapter, self.redis, self.refresh_s, self.price_ttl_s = adapter, redis, refresh_s, price_ttl_s
        self._filters: dict[str, SymbolFilters] = {}
        self._loaded_at = 0.0
        self._prices: dict[str, tuple[float, Decimal]] = {}

    async def filters(self, symbol: str) -> SymbolFilters | None:
        now = time.monotonic()
        if (
            not self._filters
            or now - self._loaded_at > self.refresh_s
            or (symbol not in self._filters and now - self._loaded_at > 60)
        ):
            await self.refresh()
        return self._filters.get(symbol)

    async def refresh(self) -> None:
        self._filters = await self.adapter.load_filters()
        self._loaded_at = time.monotonic()
        if self.redis is not None and self._filters:
            encoded = {s: msgspec.json.encode(f) for s, f in self._filters.items()}
            await self.redis.hset(venue_symbols(self.adapter.name), mapping=encoded)

    async def last_price(self, symbol: str) -> Decimal:
        now = time.monotonic()
        cached = self._prices.get(symbol)
        if cached and now - cached[0] < self.price_ttl_s:
            return cached[1]
        price = await self.adapter.last_price(symbol)
        self._prices[symbol] = (now, price)
        return price
