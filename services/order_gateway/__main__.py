"""python -m services.order_gateway: joins `orders:cmd:{venue}` in group `order_gateway`."""

from __future__ import annotations

from shared.bus import ensure_group
from shared.service import ServiceContext, run_service
from shared.streams import GROUP_ORDER_GATEWAY, order_commands


async def start(ctx: ServiceContext) -> None:
    for venue in ctx.config.venues:
        await ensure_group(ctx.redis, order_commands(venue), GROUP_ORDER_GATEWAY)


if __name__ == "__main__":
    run_service("order_gateway", start)
