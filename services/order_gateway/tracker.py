"""Applies venue reports to the write-ahead log and tells the bot, forward-only.

Every path that learns something about an order — the reply to a request, the user-data
stream, polling, reconciliation — goes through `OrderTracker.apply`, so there is one rule for
what a report may change and one place that emits `orders:events:{bot}`.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Callable

from services.order_gateway.retry import FEES
from services.order_gateway.venues.base import VenueAdapter
from services.order_gateway.wal import Mutation, Wal
from shared import metrics
from shared.bus import Entry
from shared.ids import bot_of
from shared.messages import OrderStatus
from shared.order_record import FeesNeeded, OrderRecord, advance_record, to_update
from shared.order_report import OrderFees, OrderReport
from shared.streams import order_events

log = logging.getLogger("automata.order_gateway")


def now_ms() -> int:
    return int(time.time() * 1000)


class OrderTracker:
    def __init__(self, wal: Wal, adapter: VenueAdapter) -> None:
        self.wal, self.adapter = wal, adapter
        # told of every leg of a list that moved (lists.py reviews its list; never I/O here)
        self.on_leg: Callable[[OrderRecord], None] | None = None
        self._m_updates = metrics.counter(
            "automata_order_updates_total", "Order updates emitted to bots", ("venue", "status", "source")
        )

    async def apply(
        self, report: OrderReport, *, reconciled: bool, ack: Entry | None = None
    ) -> OrderRecord | None:
        """Move the order's record forward with this report and emit the update; None if stale.

        The transaction body is pure: when missed fills' fees must come from the venue's trades,
        the WATCH is given up, the fees fetched with no watch held, and the update tried again
        on the record as it then is (it may have moved meanwhile)."""
        fees: OrderFees | None = None
        fetches = 0
        while True:
            last_try = fetches == FEES.attempts
            try:
                mutation = self._mutation(report, fees, reconciled, last_try=last_try)
                result = await self.wal.update(report.cid, mutation, ack=ack)
                break
            except FeesNeeded as need:  # the last try takes what the venue lists: it cannot raise
                if fetches:  # the list lagged the report: wait a moment, as the policy says
                    await asyncio.sleep(FEES.delay(fetches, random.random()))
                fetches += 1
                fees = await self.adapter.order_fees(report.symbol, need.venue_order_id)
        if (
            result is not None
            and last_try
            and fees is not None
            and fees.through(report.cum_filled_qty) is None
        ):
            log.warning("%s: the venue lists trades short of %s filled; its fee total was used",
                        report.cid, report.cum_filled_qty)  # fmt: skip
        if result is not None and result.list_cid and self.on_leg is not None:
            self.on_leg(result)
        if result is not None:
            self._m_updates.labels(
                self.wal.venue, result.status.value, "reconcile" if reconciled else "live"
            ).inc()
        return result

    @staticmethod
    def _mutation(
        report: OrderReport, fees: OrderFees | None, reconciled: bool, *, last_try: bool
    ) -> Mutation:
        async def mutate(record: OrderRecord):
            new = advance_record(record, report, fees, now_ms(), last_try=last_try)
            if new is None:
                return None
            update = to_update(new, record, reconciled=reconciled, now_ms=now_ms(), report=report)
            return new, [(order_events(new.bot), update)]

        return mutate

    async def adopt(self, report: OrderReport) -> OrderRecord | None:
        """An order at the venue with a bot's prefix but no record (Redis lost a write): record it
        with the venue's terms. Returns the record, or None when another path recorded it first.

        The bare record (UNKNOWN, adopted) is created first, then the report goes through
        `apply` like any other: two paths adopting one order at once (the user stream, a sync,
        reconciliation) can then never write an older state over a newer one, and every update
        of the order says `adopted`."""
        bot = bot_of(report.cid)
        if bot is None:
            return None
        base = OrderRecord(
            cid=report.cid,
            bot=bot,
            venue=self.wal.venue,
            symbol=report.symbol,
            status=OrderStatus.UNKNOWN,
            adopted=True,
            created_ts=now_ms(),
        )
        if not await self.wal.create(base):
            return None  # someone recorded it meanwhile; the normal path applies the report
        return await self.apply(report, reconciled=True) or await self.wal.get(report.cid)

    async def emit_current(self, record: OrderRecord, ack: Entry | None = None) -> None:
        """Re-send the record's current state (a bot ignores it if it already knows it)."""
        update = to_update(record, record, reconciled=True, now_ms=now_ms())
        await self.wal.save(record, [(order_events(record.bot), update)], ack=ack)
