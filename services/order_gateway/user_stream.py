"""The user-data stream plus polling, because the stream alone is not trusted.

Order events update records through the tracker (forward-only); balance events go to
`account:{venue}`. After every (re)connect, and every `poll_every_s`, open orders are polled
and diffed so fills the stream missed still reach the bots.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable

from services.order_gateway.reconcile_rules import LOST_REASON, LostWatch, lost
from services.order_gateway.tracker import OrderTracker, now_ms
from services.order_gateway.venues.base import BalanceReport, OrderNotFound, StreamGap, VenueError
from services.order_gateway.wal import Wal
from shared import metrics
from shared.bus import publish
from shared.ids import bot_of
from shared.messages import BalanceUpdate, Level, Message, Notification, OrderStatus
from shared.money import fmt
from shared.order_lifecycle import moves_forward
from shared.order_record import CorruptRecord, OrderRecord, to_update
from shared.order_report import OrderReport
from shared.ratelimit import polling_task
from shared.streams import NOTIFY, account, order_events

log = logging.getLogger("automata.user_stream")


class UserStream:
    """Component: runs the venue's user events and the poller until stop()."""

    def __init__(
        self,
        wal: Wal,
        tracker: OrderTracker,
        poll_every_s: float = 10.0,
        balance_every_s: float = 60.0,
        *,
        clock: Callable[[], float] = time.monotonic,
        halted: Callable[[], bool] = lambda: False,
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
        self._m_lost = metrics.counter(
            "automata_orders_lost_total", "Acknowledged orders the venue no longer knew, closed", ("venue",)
        )
        self.lost = LostWatch()
        self.clock, self.halted = clock, halted
        self._next_balance = 0.0  # monotonic time the poller publishes the balances again

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
        while True:
            try:
                await asyncio.wait_for(self._poll_now.wait(), timeout=self._poll_interval())
            except TimeoutError:
                pass
            self._poll_now.clear()
            try:
                await self.poll_round()
            except VenueError as exc:
                log.warning("%s: poll failed (%s)", self.wal.venue, exc)
            except Exception:
                log.exception("%s: poll crashed", self.wal.venue)

    async def poll_round(self) -> bool:
        """One round of the poller: open orders, and the balances when they are due; nothing
        while the venue has banned us (asking it then would only make the ban longer: Bybit
        counts every request). Returns whether the venue was asked."""
        if self.halted():
            return False
        await self.poll_once()
        if time.monotonic() >= self._next_balance:
            await self.publish_balances()
            self._next_balance = time.monotonic() + self.balance_every_s
        return True

    def _poll_interval(self) -> float:
        """poll_every_s, longer while the venue's shared weight budget is tight: polling is its
        least urgent use (shared/ratelimit.py). A stream gap still polls at once."""
        stretch = getattr(getattr(self.adapter, "limiter", None), "poll_interval", None)
        return stretch(self.poll_every_s) if stretch is not None else self.poll_every_s

    async def poll_once(self) -> int:
        """Diff the venue's open orders against og:open; query the ones that left. Returns updates."""
        open_cids = await self.wal.open_cids()
        self._m_open.set(len(open_cids))
        self.lost.keep(open_cids)
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
                except OrderNotFound:  # UNKNOWN: its command path resolves it; an acknowledged one:
                    if self.lost.unknown(record, int(self.clock() * 1000)):  # gone from the venue
                        changed += await self._close_lost(record)
                    continue
            self.lost.known(cid)
            if (
                moves_forward(record, report)
                and await self.tracker.apply(report, reconciled=True) is not None
            ):
                changed += 1
        if changed:
            self._m_recovered.labels(self.wal.venue).inc(changed)
        return changed

    async def _close_lost(self, record: OrderRecord) -> int:
        """Close an order the venue no longer knows (reconcile_rules.lost): the bot gets its
        CANCELED update and a notification says why, in one MULTI/EXEC; 1 if it was closed."""

        async def close(current: OrderRecord) -> tuple[OrderRecord, list[tuple[str, Message]]] | None:
            if current.status != record.status or current.cum_filled_qty != record.cum_filled_qty:
                return None  # it moved since the venue was asked: the next poll judges it again
            now = now_ms()
            closed = lost(current, now)
            filled = f", {fmt(current.cum_filled_qty)} of it filled" if current.cum_filled_qty else ""
            note = Notification(
                id=f"og:{self.wal.venue}:order_lost:{current.cid}",
                kind="order_lost",
                text=f"{self.wal.venue}: {current.bot}: order {current.cid} ({current.side or ''} "
                f"{fmt(current.orig_qty)} {current.symbol}){filled}: {LOST_REASON}; closed as CANCELED",
                level=Level.ERROR,
                bot=current.bot,
                venue=self.wal.venue,
                data={"cid": current.cid, "venue_order_id": current.venue_order_id},
                ts=now,
            )
            update = to_update(closed, current, reconciled=True, now_ms=now)
            return closed, [(order_events(current.bot), update), (NOTIFY, note)]

        closed = await self.wal.update(record.cid, close)
        if closed is None:
            return 0
        self.lost.known(record.cid)
        self._m_lost.labels(self.wal.venue).inc()
        log.error("%s: %s: %s; closed as CANCELED", self.wal.venue, record.cid, LOST_REASON)
        return 1

    async def publish_balances(self) -> None:
        venue = self.wal.venue
        balances = tuple(b for b in await self.adapter.balances() if b.free or b.locked)
        msg = BalanceUpdate(venue=venue, balances=balances, snapshot=True, ts=int(time.time() * 1000))
        await publish(self.wal.redis, account(venue), msg, maxlen=10_000)
