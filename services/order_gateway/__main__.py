"""python -m services.order_gateway [--venue NAME ...]: orders out, exactly once.

Per venue: take the venue's lease (a second gateway waits as a standby), reconcile with the
venue, then consume every bot's `orders:cmd:{venue}:{bot}` (group order_gateway) in per-bot lanes and run the
user-data stream + poller. `automata reconcile VENUE` reconciles on demand from its
own process with the same code (cli/reconcile.py); the WAL's forward-only updates make that safe
beside a running gateway.
"""

from __future__ import annotations

import argparse
import logging

from services.order_gateway.gateway import VenueGateway
from shared.config import ConfigError
from shared.service import ServiceContext, run_service

log = logging.getLogger("automata.order_gateway")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m services.order_gateway")
    parser.add_argument(
        "--venue", action="append", default=[], help="venue to serve (repeatable; default: all)"
    )
    return parser.parse_args(argv)


async def start(ctx: ServiceContext) -> None:
    venues = ctx.args.venue or ctx.config.order_gateway.venues or list(ctx.config.venues)
    for venue in venues:
        if venue not in ctx.config.venues:
            raise ConfigError(
                f"order gateway: venue {venue!r} is not configured (venues: {', '.join(ctx.config.venues)})"
            )
        gateway = ctx.add(VenueGateway(ctx, venue))
        ctx.health_checks[f"venue_{venue}"] = _ready(gateway)
    ctx.info["venues"] = venues


def _ready(gateway: VenueGateway):
    async def check() -> bool:
        return gateway.healthy  # serving, or a standby waiting for the venue's lease

    return check


if __name__ == "__main__":
    run_service("order_gateway", start, parse_args())
