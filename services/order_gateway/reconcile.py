"""Reconciliation: make Redis agree with the venue (on start, after gaps, on demand).

Every PENDING_SUBMIT / UNKNOWN / open record is checked against the venue by its cid; what
happened while the gateway was down (fills, cancels) is emitted as ordinary order updates;
orders at the venue with a bot's prefix but no record are adopted; foreign orders are only
counted and reported, never touched.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass

import msgspec

from services.order_gateway.router import CommandRouter
from services.order_gateway.tracker import OrderTracker
from services.order_gateway.venues.base import OrderNotFound, OutcomeUnknown, RateLimited
from services.order_gateway.wal import Wal
from shared import metrics
from shared.ids import bot_of
from shared.messages import Notification, OrderStatus

log = logging.getLogger("automata.reconcile")

ADOPT_LOOKBACK_MS = 24 * 3600 * 1000


@dataclass
class Summary:
    venue: str
    checked: int = 0
    filled_while_down: int = 0
    closed_while_down: int = 0
    adopted: int = 0
    resent: int = 0
    foreign: int = 0
    unresolved: int = 0

    def line(self) -> str:
        return (
            f"reconciled {self.venue}: checked {self.checked}, filled while down {self.filled_while_down}, "
            f"closed while down {self.closed_while_down}, adopted {self.adopted}, resent {self.resent}, "
            f"foreign {self.foreign}, unresolved {self.unresolved}"
        )

    def notification(self) -> Notification:
        now = int(time.time() * 1000)
        return Notification(
            id=f"reconcile:{self.venue}:{now}",
            kind="reconciliation",
            text=self.line(),
            venue=self.venue,
            data=msgspec.to_builtins(self.__dict__),
            ts=now,
        )


async def reconcile(
    wal: Wal, tracker: OrderTracker, router: CommandRouter, symbols: list[str] = ()
) -> Summary:
    adapter = tracker.adapter
    summary = Summary(wal.venue)
    seen_symbols = set(symbols)
    for cid in await wal.open_cids():
        record = await wal.get(cid)
        if record is None:
            continue
        summary.checked += 1
        seen_symbols.add(record.symbol)
        if record.status in (OrderStatus.PENDING_SUBMIT, OrderStatus.UNKNOWN):
            before = record.send_attempts
            result = await router.resolve(record, None)
            if result is None:
                summary.unresolved += 1
            elif result.send_attempts > before:
                summary.resent += 1
            continue
        try:
            report = await adapter.query(record.symbol, cid)
        except OrderNotFound:
            log.error("%s: %s is open in Redis but unknown to the venue", wal.venue, cid)
            summary.unresolved += 1
            continue
        except (OutcomeUnknown, RateLimited) as exc:
            log.warning("%s: cannot check %s now (%s)", wal.venue, cid, exc)
            summary.unresolved += 1
            continue
        new = await tracker.apply(report, reconciled=True)
        if new is not None:
            if new.cum_filled_qty > record.cum_filled_qty:
                summary.filled_while_down += 1
            elif new.terminal:
                summary.closed_while_down += 1
    # orders the venue has that Redis does not: adopt ours, report foreign ones
    since = int(time.time() * 1000) - ADOPT_LOOKBACK_MS
    venue_orders = {r.cid: r for r in await adapter.open_orders()}
    for symbol in sorted(seen_symbols):
        for report in await adapter.recent_orders(symbol, since):
            venue_orders.setdefault(report.cid, report)
    for cid, report in venue_orders.items():
        if bot_of(cid) is None:
            if report.status in (OrderStatus.NEW, OrderStatus.PARTIALLY_FILLED):
                summary.foreign += 1
            continue
        if await wal.get(cid) is None and await tracker.adopt(report) is not None:
            summary.adopted += 1
    counts = metrics.counter(
        "automata_reconciliation_total", "Orders reconciliation found, by outcome", ("venue", "outcome")
    )
    for outcome in (
        "checked",
        "filled_while_down",
        "closed_while_down",
        "adopted",
        "resent",
        "foreign",
        "unresolved",
    ):
        counts.labels(wal.venue, outcome).inc(getattr(summary, outcome))
    log.info(summary.line())
    return summary
