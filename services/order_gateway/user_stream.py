"""The user-data stream plus polling, because the stream alone is not trusted.

Order events update records through the tracker (forward-only); balance events go to
`account:{venue}`. After every (re)connect, and every `poll_every_s`, open orders are polled
and diffed so fills the stream missed still reach the bots.
"""

from __future__ import annotations

import asyncio
import logging
import time

from services.order_gateway.tracker import OrderTracker
from services.order_gateway.venues.base import BalanceReport, OrderNotFound, StreamGap, VenueError
from services.order_gateway.wal import Wal
from shared import metrics
from shared.bus import publish
from shared.ids import bot_of
from shared.messages import BalanceUpdate, OrderStatus
from shared.order_lifecycle import moves_forward
from shared.order_record import CorruptRecord
from shared.order_report import OrderReport
from shared.ratelimit import polling_task
from shared.streams import account

log = logging.getLogger("automata.user_stream")


class UserStream:
    """Component: runs the venue's user events and the poller until stop()."""

    def __init__(
        self, wal: Wal, tracker: OrderTracker, poll_every_s: float = 10.0, balance_every_s: float = 60.0
    ) -> None:
        self.wal, self.tracker, self.adapter = wal, tracker, tracker.adapter
        self.poll_every_s, self.balance_every_s = poll_every_s, balance_every_s
        self._stop = asyncio.Event()
        self._poll_now = asyncio.Event()
        self._m_events = metrics.counter(
            "automata_user_stream_events_total", "User stream events", ("venue", "kind")
        )
        self._m_open = metrics.gauge(
            "automata_open_orders", "Orders the gateway holds open", ("venue",)
        ).labels(wal.venue)
        self._m_recovered = metrics.counter(
            "automata_poll_recovered_total", "Order updates found by polling", ("venue",)
        )

    def stop(self) -> None:
        self._stop.set()

    async def run(self) -> None:
        tasks = [asyncio.create_task(self._stream()), asyncio.create_task(self._poller())]
        await self._stop.wait()
        for task in tasks:
            task.cancel()
        # a websocket library that hangs in its close must not hold up a clean stop
        await asyncio.wait(tasks, timeout=2.0)

    async def _stream(self) -> None:
        async for event in self.adapter.user_events():
            try:
                await self._handle(event)
            except VenueError as exc:
                log.warning("%s: user event not applied (%s); the poller will catch up", self.wal.venue, exc)
                self._poll_now.set()
            except ValueError as exc:  # an unreadable record (CorruptRecord): must not end the stream
                log.error("%s: user event not applied: %s: %s", self.wal.venue, type(exc).__name__, exc)

    async def _handle(self, event: object) -> None:
        venue = self.wal.venue
        if isinstance(event, OrderReport):
            self._m_events.labels(venue, "order").inc()
            if bot_of(event.cid) is None:
                return  # foreign order: not ours to track
            progress = await self.wal.progress(event.cid)
            if progress is None:
                await self.tracker.adopt(event)
            elif moves_forward(progress, event):  # stale now is stale for good: records only move forward
                await self.tracker.apply(event, reconciled=False)
        elif isinstance(event, BalanceReport):
            self._m_events.labels(venue, "balance").inc()
            await publish(self.wal.redis, account(venue), BalanceUpdate(venue=venue, balances=event.balances,
                          snapshot=event.snapshot, venue_ts=event.venue_ts, ts=int(time.time() * 1000)), maxlen=10_000)  # fmt: skip
        elif isinstance(event, StreamGap):
            self._m_events.labels(venue, "gap").inc()
            log.info("%s: %s: polling open orders", venue, event.reason)
            self._poll_now.set()

    async def _poller(self) -> None:
        polling_task()  # this task's listings are the venue budget's least urgent use
        next_balance = 0.0
        while True:
            try:
                await asyncio.wait_for(self._poll_now.wait(), timeout=self._poll_interval())
            except TimeoutError:
                pass
            self._poll_now.clear()
            try:
                await self.poll_once()
                if time.monotonic() >= next_balance:
                    await self.publish_balances()
                    next_balance = time.monotonic() + self.balance_every_s
            except VenueError as exc:
                log.warning("%s: poll failed (%s)", self.wal.venue, exc)
            except Exception:
                log.exception("%s: poll crashed", self.wal.venue)

    def _poll_interval(self) -> float:
        """poll_every_s, longer while the venue's shared weight budget is tight: polling is its
        least urgent use (shared/ratelimit.py). A stream gap still polls at once."""
        stretch = getattr(getattr(self.adapter, "limiter", None), "poll_interval", None)
        return stretch(self.poll_every_s) if stretch is not None else self.poll_every_s

    async def poll_once(self) -> int:
        """Diff the venue's open orders against og:open; query the ones that left. Returns updates."""
        open_cids = await self.wal.open_cids()
        self._m_open.set(len(open_cids))
        if not open_cids:
            return 0
        at_venue = {r.cid: r for r in await self.adapter.open_orders()}
        changed = 0
        for cid in open_cids:
            report = at_venue.get(cid)
            try:
                record = await self.wal.get(cid)
            except CorruptRecord as exc:  # reported by reconciliation; the others still polled
                log.debug("%s: poll skips %s: %s", self.wal.venue, cid, exc)
                continue
            if record is None or record.status is OrderStatus.PENDING_SUBMIT or record.held:
                continue  # in flight (or held back by an emulated list): its own path resolves it
            if report is None:
                try:
                    report = await self.adapter.query(record.symbol, cid)
                except OrderNotFound:
                    continue  # PENDING_SUBMIT not yet at the venue: the command path resolves it
            if (
                moves_forward(record, report)
                and await self.tracker.apply(report, reconciled=True) is not None
            ):
                changed += 1
        if changed:
            self._m_recovered.labels(self.wal.venue).inc(changed)
        return changed

    async def publish_balances(self) -> None:
        venue = self.wal.venue
        balances = tuple(b for b in await self.adapter.balances() if b.free or b.locked)
        msg = BalanceUpdate(venue=venue, balances=balances, snapshot=True, ts=int(time.time() * 1000))
        await publish(self.wal.redis, account(venue), msg, maxlen=10_000)
