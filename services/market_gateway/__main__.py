"""python -m services.market_gateway: market data from the venues into `md:*` streams."""

from __future__ import annotations

from shared.service import ServiceContext, run_service


async def start(ctx: ServiceContext) -> None:
    ctx.info["venues"] = sorted(ctx.config.venues)


if __name__ == "__main__":
    run_service("market_gateway", start)
