"""Delivery of `notify` entries to one channel: at-least-once, deduplicated, never blocking others.

Why one consumer group per channel (`notifier:telegram`, `notifier:webhook`, `notifier:console`)
rather than one group fanning out: Redis then keeps, per channel, its own read position and its
own pending list. Telegram being down leaves Telegram's entries pending (and the newer ones
unread) in Telegram's group only; the webhook and console groups go on, and nothing is lost on a
crash because an entry is acked in a channel's group only after that channel delivered it. The
backlog of each channel is visible with `XINFO GROUPS notify`, and the bus's replay, takeover
(XAUTOCLAIM) and dead-lettering work per channel without any code of our own.

Per entry (ChannelWorker.handle):
1. not routed to this channel: acked, nothing sent;
2. for each target (Telegram chat, webhook URL) not yet in `notifier:sent:{channel}:{id}`:
   send, retrying in place with exponential backoff (or Telegram's retry_after) while the
   channel is down (ChannelDown) -- an outage is not the message's fault and is not counted;
   then record the target in that hash (TTL `dedupe_ttl_s`), so a redelivered entry (crash
   between send and ack, a takeover) is not sent twice;
3. returns, and the bus acks it. A Rejected send raises: the bus leaves the entry pending,
   retries it and moves it to `dlq:notify` after `bus.max_deliveries` deliveries.
"""

from __future__ import annotations

import asyncio
import logging
import time

import redis.asyncio as aioredis

from services.notifier.channels import Channel, ChannelDown, Router, Stopping, sleep_or_stop
from shared import metrics
from shared.bus import Consumer, Entry
from shared.messages import Notification
from shared.streams import notifier_sent

log = logging.getLogger("automata.notifier")


def _metrics() -> tuple:
    return (
        metrics.counter("automata_notifier_delivered_total", "Notifications delivered", ("channel",)),
        metrics.counter(
            "automata_notifier_retries_total", "Sends retried because the channel was down", ("channel",)
        ),
        metrics.counter("automata_notifier_duplicates_total", "Redeliveries skipped by dedupe", ("channel",)),
        metrics.gauge("automata_notifier_channel_up", "1 while the channel's last send worked", ("channel",)),
    )


class ChannelWorker:
    """The bus handler of one channel."""

    def __init__(
        self,
        redis: aioredis.Redis,
        channel: Channel,
        router: Router,
        stopping: asyncio.Event,
        *,
        retry_initial_s: float = 1.0,
        retry_max_s: float = 60.0,
        dedupe_ttl_s: int = 7 * 24 * 3600,
    ) -> None:
        self.redis, self.channel, self.router, self.stopping = redis, channel, router, stopping
        self.retry_initial_s, self.retry_max_s = retry_initial_s, retry_max_s
        self.dedupe_ttl_ms = dedupe_ttl_s * 1000
        self.down_since: float | None = None
        delivered, retries, dupes, up = _metrics()
        name = channel.name
        self._m_delivered, self._m_retries = delivered.labels(name), retries.labels(name)
        self._m_dupes, self._m_up = dupes.labels(name), up.labels(name)
        self._m_up.set(1)

    async def handle(self, entry: Entry) -> None:
        note = entry.message
        if not isinstance(note, Notification):
            log.warning(
                "%s: %s on %s is not a notification; skipped", self.channel.name, entry.id, entry.stream
            )
            return
        if self.channel.name not in self.router.channels_for(note.kind):
            return
        key = notifier_sent(self.channel.name, note.id)
        done = {t.decode() for t in await self.redis.hkeys(key)}
        for target in self.channel.targets():
            if target in done:
                self._m_dupes.inc()
                log.info("%s: %s already delivered to %s; not sent again", self.channel.name, note.id, target)
                continue
            await self._send(target, note)
            async with self.redis.pipeline(transaction=True) as pipe:
                pipe.hset(key, target, int(time.time() * 1000))
                pipe.pexpire(key, self.dedupe_ttl_ms)
                await pipe.execute()
            self._m_delivered.inc()

    async def _send(self, target: str, note: Notification) -> None:
        """Send, waiting out a channel outage (interruptible by SIGTERM: the entry stays pending)."""
        delay = self.retry_initial_s
        while True:
            try:
                await self.channel.send(target, note)
            except ChannelDown as exc:
                wait = exc.retry_after if exc.retry_after is not None else delay
                delay = min(delay * 2, self.retry_max_s)
                self._went_down(exc, wait)
                self._m_retries.inc()
                await sleep_or_stop(wait, self.stopping)
                continue
            self._came_back()
            return

    def _went_down(self, exc: ChannelDown, wait: float) -> None:
        if self.down_since is None:
            self.down_since = time.monotonic()
            self._m_up.set(0)
            log.warning(
                "%s is down (%s); holding its notifications, retrying in %.1fs", self.channel.name, exc, wait
            )
        else:
            log.info("%s still down (%s); retrying in %.1fs", self.channel.name, exc, wait)

    def _came_back(self) -> None:
        if self.down_since is not None:
            log.warning("%s is back after %.0fs", self.channel.name, time.monotonic() - self.down_since)
            self.down_since = None
            self._m_up.set(1)


class ChannelConsumer:
    """A service component: the bus Consumer of one channel's group. stop() while a delivery waits
    for the channel unwinds it (Stopping) with the entry left pending for the next start."""

    def __init__(self, consumer: Consumer, worker: ChannelWorker) -> None:
        self.consumer, self.worker = consumer, worker

    async def run(self) -> None:
        try:
            await self.consumer.run()
        except Stopping:
            log.info(
                "%s: stopped while waiting for the channel; its entry stays pending", self.worker.channel.name
            )
        finally:
            await self.worker.channel.close()

    def stop(self) -> None:
        self.consumer.stop()
