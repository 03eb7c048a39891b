"""Reconciliation: make Redis agree with the venue (on start, after gaps, on demand).

Every PENDING_SUBMIT / UNKNOWN / open record is checked against the venue by its cid; what
happened while the gateway was down (fills, cancels) is emitted as ordinary order updates;
orders at the venue with a bot's prefix but no record are adopted; foreign orders are only
counted and reported, never touched.

Orders lost with Redis (a power cut takes its last second of writes, the venue keeps every
order it took) may be closed already and on any symbol, so the venue is asked for the latest
orders of every symbol the log has ever recorded (`og:symbols:{venue}`), the symbols of open
records, and the symbols of the bots file's bots on this venue — without a lower time bound:
the venue's clock (the paper venue's market time) can be anywhere, so the local clock never
bounds a venue query. A record that cannot be handled (a corrupt hash, amounts no arithmetic
takes) is reported and skipped, never a reason to stop the gateway.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

import msgspec

from services.order_gateway.tracker import OrderTracker
from services.order_gateway.venues.base import (
    OrderNotFound,
    OutcomeUnknown,
    RateLimited,
    Rejected,
)
from services.order_gateway.wal import Wal
from shared import metrics
from shared.config import ConfigError
from shared.ids import bot_of
from shared.messages import Notification, OrderStatus
from shared.order_record import CorruptRecord, OrderRecord
from shared.order_report import OrderReport
from shared.streams import og_order, og_symbols

if TYPE_CHECKING:
    from services.strategy_runner.bots import BotConfig

log = logging.getLogger("automata.reconcile")

# What handling one record may raise when the record itself is bad (a corrupt hash, an older
# version's NaN, an arithmetic error): that record is skipped, the others go on.
UNHANDLED = (CorruptRecord, msgspec.ValidationError, ArithmeticError, ValueError, KeyError, TypeError)
OUTCOMES = ("checked", "filled_while_down", "closed_while_down", "adopted", "resent", "foreign",
            "unresolved", "skipped")  # fmt: skip


class Resolver(Protocol):
    """Finds out what happened to a PENDING_SUBMIT / UNKNOWN record: the gateway's
    CommandRouter, or cli/reconcile.py's query-only stand-in."""

    async def resolve(self, record: OrderRecord, entry: None) -> OrderRecord | None: ...


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
    skipped: int = 0  # records reconciliation could not handle (logged with the reason)

    def line(self) -> str:
        return (
            f"reconciled {self.venue}: checked {self.checked}, filled while down {self.filled_while_down}, "
            f"closed while down {self.closed_while_down}, adopted {self.adopted}, resent {self.resent}, "
            f"foreign {self.foreign}, unresolved {self.unresolved}, skipped {self.skipped}"
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


async def reconcile(wal: Wal, tracker: OrderTracker, router: Resolver, symbols: list[str] = ()) -> Summary:
    adapter = tracker.adapter
    summary = Summary(wal.venue)
    seen_symbols = set(symbols) | await logged_symbols(wal) | bot_symbols(wal.venue)
    for cid in await wal.open_cids():
        try:
            symbol = await _check_open(wal, tracker, router, cid, summary)
        except UNHANDLED as exc:
            _skip(summary, wal.venue, cid, exc)
            continue
        if symbol:
            seen_symbols.add(symbol)
    # orders the venue has that Redis does not: adopt ours, report foreign ones
    venue_orders = {r.cid: r for r in await adapter.open_orders()}
    for symbol in sorted(seen_symbols):
        try:
            recent = await adapter.recent_orders(symbol)
        except Rejected as exc:  # a symbol the venue no longer lists
            log.warning("%s: recent orders of %s refused: %s", wal.venue, symbol, exc)
            continue
        for report in recent:
            venue_orders.setdefault(report.cid, report)
    for cid, report in venue_orders.items():
        if bot_of(cid) is None:
            if report.status in (OrderStatus.NEW, OrderStatus.PARTIALLY_FILLED):
                summary.foreign += 1
            continue
        try:
            if await _adopt(wal, tracker, report):
                summary.adopted += 1
        except UNHANDLED as exc:
            _skip(summary, wal.venue, cid, exc)
    counts = metrics.counter(
        "automata_reconciliation_total", "Orders reconciliation found, by outcome", ("venue", "outcome")
    )
    for outcome in OUTCOMES:
        counts.labels(wal.venue, outcome).inc(getattr(summary, outcome))
    log.info(summary.line())
    return summary


async def _check_open(wal: Wal, tracker: OrderTracker, router: Resolver, cid: str, summary: Summary) -> str:
    """Bring one open record up to the venue's view; returns its symbol ("" if it is gone)."""
    record = await wal.get(cid)
    if record is None:
        return ""
    summary.checked += 1
    if record.status in (OrderStatus.PENDING_SUBMIT, OrderStatus.UNKNOWN):
        before = record.send_attempts
        result = await router.resolve(record, None)
        if result is None:
            summary.unresolved += 1
        elif result.send_attempts > before:
            summary.resent += 1
        return record.symbol
    try:
        report = await tracker.adapter.query(record.symbol, cid)
    except OrderNotFound:
        log.error("%s: %s is open in Redis but unknown to the venue", wal.venue, cid)
        summary.unresolved += 1
        return record.symbol
    except (OutcomeUnknown, RateLimited) as exc:
        log.warning("%s: cannot check %s now (%s)", wal.venue, cid, exc)
        summary.unresolved += 1
        return record.symbol
    new = await tracker.apply(report, reconciled=True)
    if new is not None:
        if new.cum_filled_qty > record.cum_filled_qty:
            summary.filled_while_down += 1
        elif new.terminal:
            summary.closed_while_down += 1
    return record.symbol


async def _adopt(wal: Wal, tracker: OrderTracker, report: OrderReport) -> bool:
    """Adopt an order of a bot's prefix that has no record; True when this call did."""
    if await wal.redis.exists(og_order(report.cid)):
        return False
    return await tracker.adopt(report) is not None


def _skip(summary: Summary, venue: str, cid: str, exc: BaseException) -> None:
    summary.skipped += 1
    log.error("%s: reconciliation skipped %s: %s: %s", venue, cid, type(exc).__name__, exc)


async def logged_symbols(wal: Wal) -> set[str]:
    """Every symbol the log has recorded an order on at this venue (`og:symbols:{venue}`).

    A log from before that set existed, or one that lost it with Redis, rebuilds it once from
    the records themselves (one SCAN of og:order:*)."""
    key = og_symbols(wal.venue)
    found = {s.decode() for s in await wal.redis.smembers(key)}
    if found:
        return found
    names = [name async for name in wal.redis.scan_iter(match=og_order("*"), count=1000)]
    for start in range(0, len(names), 1000):
        async with wal.redis.pipeline(transaction=False) as pipe:
            for name in names[start : start + 1000]:
                pipe.hmget(name, ["venue", "symbol"])
            rows = await pipe.execute()
        for venue, symbol in rows:
            if venue is not None and venue.decode(errors="replace") == wal.venue and symbol:
                found.add(symbol.decode(errors="replace"))
    if found:
        await wal.redis.sadd(key, *sorted(found))
    return found


def bot_symbols(venue: str) -> set[str]:
    """The symbols of the bots file's bots on this venue, so a bot's orders are looked for even
    when the log lost every record of its symbol."""
    return {b.symbol for b in venue_bots(venue)}


def venue_bots(venue: str) -> list[BotConfig]:
    """The bots file's bots on this venue (AUTOMATA_BOTS, else bots.toml); none when there is no
    file or it does not load (logged: the gateway serves on, reconciling what its log knows)."""
    from services.strategy_runner.bots import bots_path, load_bots  # the runner's own loader

    if not bots_path().exists():
        return []
    try:
        return [b for b in load_bots(check_params=False) if b.venue == venue]
    except ConfigError as exc:
        log.warning("%s: bots file not read: %s", venue, exc)
        return []
