"""python -m services.market_gateway: market data from the venues into `md:*` streams.

Closed candles go to `md:candles:{venue}:{SYMBOL}:{interval}` (entry id `{open_time_ms}-1`, gap-free
through REST backfill), book tickers to `md:book:{venue}:{SYMBOL}`. What to read comes from
`[market_gateway]` in the config (see shared/config.py MarketGatewayConfig).
"""

from __future__ import annotations

import logging

from services.market_gateway.feed import VenueFeed
from services.market_gateway.plan import build_plan
from shared.config import ConfigError
from shared.service import ServiceContext, run_service

log = logging.getLogger("automata.market_gateway")


async def start(ctx: ServiceContext) -> None:
    try:
        plans = build_plan(ctx.config)
    except ConfigError as exc:  # a feed names an unknown venue, or an interval the venue lacks
        log.error("configuration error: %s", exc)
        raise SystemExit(2) from None
    ctx.info["venues"] = [p.name for p in plans]
    ctx.info["candle_streams"] = [k.stream for p in plans for k in p.candles]
    if not plans:
        log.warning("no [[market_gateway.feeds]] configured: nothing to read")
    for plan in plans:
        feed = VenueFeed(
            ctx.redis, plan, ctx.config.market_gateway, weight_limit=ctx.config.order_gateway.weight_limit
        )
        ctx.add(feed)

        async def check(feed: VenueFeed = feed) -> bool:
            return feed.healthy()

        ctx.health_checks[f"feed_{plan.name}"] = check
        log.info(
            "%s (%s): %d candle stream(s), %d book ticker(s)",
            plan.name,
            plan.protocol,
            len(plan.candles),
            len(plan.books),
        )


if __name__ == "__main__":
    run_service("market_gateway", start)
