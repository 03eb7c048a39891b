"""One venue's gateway: adapter + write-ahead log + command consumer + user stream, wired.

Commands run in per-bot lanes (shared/bus/lanes.py): concurrently across bots, strictly in
order within a bot, so one bot's stuck order (resolve retries, venue timeouts, a failing
cancel) never delays another bot's orders.
"""

from __future__ import annotations

import asyncio
import logging

from services.order_gateway.reconcile import reconcile
from services.order_gateway.router import CommandRouter
from services.order_gateway.symbols import SymbolCache
from services.order_gateway.tracker import OrderTracker
from services.order_gateway.user_stream import UserStream
from services.order_gateway.venues import make_adapter
from services.order_gateway.venues.base import VenueError
from services.order_gateway.wal import Wal
from shared.bus import Consumer, Entry, publish
from shared.bus.lanes import Lanes
from shared.messages import Notification
from shared.service import ServiceContext
from shared.streams import GROUP_ORDER_GATEWAY, NOTIFY, order_commands

log = logging.getLogger("automata.order_gateway")

MAX_IN_FLIGHT = 1000  # commands held in lanes at once; the consumer stops reading beyond


def bot_lane(entry: Entry) -> str:
    """The lane of a command: its bot (every order command carries one)."""
    return str(getattr(entry.message, "bot", "") or "")


class VenueGateway:
    """Component (run/stop) for one venue."""

    def __init__(self, ctx: ServiceContext, venue: str) -> None:
        self.ctx, self.venue = ctx, venue
        self.ready = False
        self.consumer_name = f"{ctx.consumer_name}-{venue}"
        og = ctx.config.order_gateway
        self.adapter = make_adapter(ctx.config, venue)
        self.wal = Wal(ctx.redis, venue)
        self.tracker = OrderTracker(self.wal, self.adapter)
        self.symbols = SymbolCache(self.adapter, ctx.redis)
        self.router = CommandRouter(
            venue, self.wal, self.tracker, self.adapter, self.symbols, self.notify, ctx.stopping
        )
        self.user_stream = UserStream(self.wal, self.tracker, og.poll_every_s, og.balance_every_s)
        bus = ctx.config.bus
        self.lanes = Lanes(
            ctx.redis,
            self.router.handle,
            bot_lane,
            self.consumer_name,
            max_deliveries=bus.max_deliveries,
            max_in_flight=MAX_IN_FLIGHT,
        )
        self.consumer = Consumer(
            ctx.redis,
            [order_commands(venue)],
            GROUP_ORDER_GATEWAY,
            self.consumer_name,
            self.lanes.submit,
            count=bus.read_count,
            claim_idle_ms=bus.claim_idle_ms,
            max_deliveries=bus.max_deliveries,
            holds=self.lanes.holds,
        )

    async def notify(self, note: Notification) -> None:
        await publish(self.ctx.redis, NOTIFY, note, maxlen=100_000)

    async def connect(self) -> bool:
        """Connect to the venue and reconcile before taking any new command; retry until it
        works or the service stops (a venue that is down must not crash-loop the process)."""
        delay = 0.5
        while not self.ctx.stopping.is_set():
            try:
                await self.adapter.start()
                await self.symbols.refresh()
                summary = await reconcile(self.wal, self.tracker, self.router)
                await self.notify(summary.notification())
                self.ready = True
                return True
            except (VenueError, OSError) as exc:
                log.warning(
                    "%s: venue not reachable (%s: %s); retrying in %.1fs",
                    self.venue,
                    type(exc).__name__,
                    exc,
                    delay,
                )
                await self.adapter.close()
            try:
                await asyncio.wait_for(self.ctx.stopping.wait(), timeout=delay)
            except TimeoutError:
                pass
            delay = min(delay * 2, 15.0)
        return False

    async def run(self) -> None:
        try:
            if await self.connect():
                await asyncio.gather(self.consumer.run(), self.lanes.run(), self.user_stream.run())
        finally:
            try:
                await asyncio.wait_for(self.adapter.close(), timeout=2.0)
            except (TimeoutError, Exception) as exc:  # closing is best effort
                log.warning("%s: adapter close: %s", self.venue, type(exc).__name__)

    def stop(self) -> None:
        self.consumer.stop()
        self.lanes.stop()
        self.user_stream.stop()
