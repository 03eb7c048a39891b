"""python -m services.notifier: deliver `notify` to Telegram, a webhook and the console, and
answer Telegram commands.

Each enabled channel reads `notify` in a consumer group of its own (`notifier:{channel}`), see
delivery.py for why. A channel's group is created `backfill_s` back in time (stream ids are
milliseconds): the first start still gets what was published just before it, while enabling a
channel later does not replay weeks of history into it.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

from services.notifier.channels import Channel, ConsoleChannel, Router
from services.notifier.checks import config_warnings
from services.notifier.delivery import ChannelConsumer, ChannelWorker
from services.notifier.redis_watch import RedisWatch
from shared.bus import Consumer, ensure_group
from shared.logs import register_secret
from shared.service import ServiceContext, run_service
from shared.streams import NOTIFY, notifier_group

if TYPE_CHECKING:
    import aiohttp

    from services.notifier.telegram import TelegramClient

log = logging.getLogger("automata.notifier")


def _channels(
    ctx: ServiceContext, session: aiohttp.ClientSession | None
) -> tuple[list[Channel], TelegramClient | None]:
    """The enabled channels. Telegram and webhook (and so aiohttp, ~13 MB) are imported only when
    configured: a console-only notifier, as in the demo, stays small."""
    cfg = ctx.config.notifier
    channels: list[Channel] = []
    client = None
    if cfg.telegram.token:
        from services.notifier.telegram import TelegramChannel, TelegramClient

        register_secret(cfg.telegram.token)
        client = TelegramClient(
            session,
            base_url=cfg.telegram.base_url,
            token=cfg.telegram.token,
            per_chat_rate=cfg.telegram.per_chat_rate,
            stopping=ctx.stopping,
            request_timeout_s=cfg.telegram.request_timeout_s,
        )
        channels.append(TelegramChannel(client, cfg.telegram.chat_ids))
    if cfg.webhook.url:
        from services.notifier.webhook import WebhookChannel

        register_secret(cfg.webhook.secret)
        channels.append(WebhookChannel(session, cfg.webhook.url, cfg.webhook.secret, cfg.webhook.timeout_s))
    if cfg.console.enabled:
        channels.append(ConsoleChannel())
    return channels, client


def _closer(close: Callable[[], None]) -> Callable[[], Awaitable[None]]:
    async def closing() -> None:
        close()

    return closing


async def start(ctx: ServiceContext) -> None:
    cfg, bus = ctx.config.notifier, ctx.config.bus
    session = None
    if cfg.telegram.token or cfg.webhook.url:
        import aiohttp

        session = aiohttp.ClientSession()
        ctx.on_stop.append(session.close)
    for warning in config_warnings(cfg):
        log.warning("%s", warning)
    channels, client = _channels(ctx, session)
    router = Router(cfg.routes, [c.name for c in channels])
    backfill_id = f"{max(0, int(time.time() * 1000) - cfg.backfill_s * 1000)}-0"
    for channel in channels:
        group = notifier_group(channel.name)
        if await ensure_group(ctx.redis, NOTIFY, group, start_id=backfill_id):
            log.info("created group %s on %s from %s", group, NOTIFY, backfill_id)
        worker = ChannelWorker(
            ctx.redis,
            channel,
            router,
            ctx.stopping,
            retry_initial_s=cfg.retry_initial_s,
            retry_max_s=cfg.retry_max_s,
            dedupe_ttl_s=cfg.dedupe_ttl_s,
        )
        consumer = Consumer(
            ctx.redis,
            [NOTIFY],
            group,
            ctx.consumer_name,
            worker.handle,
            count=bus.read_count,
            claim_idle_ms=bus.claim_idle_ms,
            max_deliveries=bus.max_deliveries,
        )
        ctx.add(ChannelConsumer(consumer, worker))
    if client is not None and cfg.telegram.commands:
        from services.notifier.commands import TelegramCommands

        commands = TelegramCommands(
            ctx.redis,
            client,
            cfg.telegram.chat_ids,
            cfg.telegram.allowed_users,
            list(ctx.config.venues),
            ctx.stopping,
            poll_timeout_s=cfg.telegram.poll_timeout_s,
            ledger_url=ctx.config.ledger.url,
        )
        ctx.add(commands)
        ctx.on_stop.append(_closer(commands.close))
    ctx.add(RedisWatch(ctx.redis_health, channels, router, alert_after_s=cfg.redis_alert_after_s))
    ctx.info["channels"] = [c.name for c in channels]
    log.info("channels: %s", ", ".join(c.name for c in channels) or "none")


if __name__ == "__main__":
    run_service("notifier", start)
