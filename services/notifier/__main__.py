"""python -m services.notifier: consume `notify` in group `notifier` and deliver."""

from __future__ import annotations

import logging

from shared.bus import Consumer, Entry
from shared.messages import Notification
from shared.service import ServiceContext, run_service
from shared.streams import GROUP_NOTIFIER, NOTIFY

log = logging.getLogger("automata.notifier")


async def deliver_console(entry: Entry) -> None:
    """The console channel: one log line a notification."""
    msg = entry.message
    if isinstance(msg, Notification):
        log.info("[%s] %s%s", msg.kind, f"{msg.bot}: " if msg.bot else "", msg.text)


async def start(ctx: ServiceContext) -> None:
    bus = ctx.config.bus
    ctx.add(
        Consumer(
            ctx.redis,
            [NOTIFY],
            GROUP_NOTIFIER,
            ctx.consumer_name,
            deliver_console,
            count=bus.read_count,
            claim_idle_ms=bus.claim_idle_ms,
            max_deliveries=bus.max_deliveries,
        )
    )


if __name__ == "__main__":
    run_service("notifier", start)
