"""Applies venue reports to the write-ahead log and tells the bot, forward-only.

Every path that learns something about an order — the reply to a request, the user-data
stream, polling, reconciliation — goes through `OrderTracker.apply`, so there is one rule for
what a report may change and one place that emits `orders:events:{bot}`.
"""

from __future__ import annotations

import time

from services.order_gateway.venues.base import VenueAdapter
from services.order_gateway.wal import Wal
from shared import metrics
from shared.bus import Entry
from shared.ids import bot_of
from shared.messages import OrderStatus
from shared.order_lifecycle import moves_forward
from shared.order_record import OrderRecord, apply_report, fee_after, to_update
from shared.order_report import OrderReport
from shared.streams import order_events


def now_ms() -> int:
    return int(time.time() * 1000)


class OrderTracker:
    def __init__(self, wal: Wal, adapter: VenueAdapter) -> None:
        self.wal, self.adapter = wal, adapter
        self._m_updates = metrics.counter(
            "automata_order_updates_total", "Order updates emitted to bots", ("venue", "status", "source")
        )

    async def apply(
        self, report: OrderReport, *, reconciled: bool, ack: Entry | None = None
    ) -> OrderRecord | None:
        """Move the order's record forward with this report and emit the update; None if stale."""

        async def mutate(record: OrderRecord):
            if not moves_forward(record, report):
                return None
            fee = fee_after(record, report)
            fee_asset = report.fee_asset
            if fee is None:
                venue_id = report.venue_order_id or record.venue_order_id
                fee, fee_asset = await self.adapter.order_fees(report.symbol, venue_id)
            new = apply_report(record, report, fee, fee_asset, now_ms())
            return new, [
                (
                    order_events(new.bot),
                    to_update(new, record, reconciled=reconciled, now_ms=now_ms(), report=report),
                )
            ]

        result = await self.wal.update(report.cid, mutate, ack=ack)
        if result is not None:
            self._m_updates.labels(
                self.wal.venue, result.status.value, "reconcile" if reconciled else "live"
            ).inc()
        return result

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
