"""A bot's symbol filters, read from `venue:{venue}:symbols` (the order gateway publishes them
from exchangeInfo), so a runner never calls the exchange itself."""

from __future__ import annotations

import asyncio
import logging

import msgspec

from shared.filters import SymbolFilters
from shared.service import ServiceContext
from shared.streams import venue_symbols

log = logging.getLogger("automata.strategy_runner")


async def fetch_filters(ctx: ServiceContext, venue: str, symbol: str) -> SymbolFilters | None:
    """Wait until the order gateway has published the symbol's filters (None if stopped first)."""
    logged = False
    while not ctx.stopping.is_set():
        raw = await ctx.redis.hget(venue_symbols(venue), symbol)
        if raw:
            return msgspec.json.decode(raw, type=SymbolFilters)
        if not logged:
            log.info(
                "waiting for the order gateway to publish %s filters on %s", symbol, venue_symbols(venue)
            )
            logged = True
        try:
            await asyncio.wait_for(ctx.stopping.wait(), timeout=0.5)
        except TimeoutError:
            pass
    return None
