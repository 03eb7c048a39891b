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

What to do is decided by pure functions (reconcile_rules.py); this module is their I/O, the
one path that the gateway (at start, and to resolve an order whose outcome is unknown) and
`automata reconcile` share. Only the gateway passes a `resend`.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, TypeVar

import msgspec

from services.order_gateway.list_wal import list_path_owns
from services.order_gateway.reconcile_rules import (
    NOT_FOUND,
    Action,
    Answer,
    NoAnswer,
    NotFound,
    Verdict,
    adoptions,
    judge,
    latest_reports,
    outcome,
)
from services.order_gateway.retry import CHECK, RESOLVE, Backoff, Retry
from services.order_gateway.tracker import OrderTracker, now_ms
from services.order_gateway.venues.base import OrderNotFound, Rejected, VenueAdapter, VenueError
from services.order_gateway.wal import Wal
from shared import metrics
from shared.bus import Entry
from shared.config import ConfigError
from shared.ids import bot_of
from shared.messages import Notification
from shared.order_lifecycle import UNCONFIRMED
from shared.order_record import CorruptRecord, OrderRecord
from shared.streams import og_order, og_symbols

if TYPE_CHECKING:
    from services.strategy_runner.bots import BotConfig

log = logging.getLogger("automata.reconcile")
T = TypeVar("T")

# What handling one record may raise when the record itself is bad (a corrupt hash, an older
# version's NaN, an arithmetic error): that record is skipped, the others go on.
UNHANDLED = (CorruptRecord, msgspec.ValidationError, ArithmeticError, ValueError, KeyError, TypeError)
OUTCOMES = ("checked", "filled_while_down", "closed_while_down", "adopted", "resent", "foreign",
            "unresolved", "skipped")  # fmt: skip


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

    def count(self, outcome: str) -> None:
        if outcome:
            setattr(self, outcome, getattr(self, outcome) + 1)

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


Resend = Callable[[OrderRecord, Entry | None], Awaitable[OrderRecord | None]]


async def reconcile(
    wal: Wal,
    tracker: OrderTracker,
    retry: Retry,
    *,
    resend: Resend | None = None,
    symbols: Iterable[str] = (),
) -> Summary:
    """Reconcile the venue's log with the venue (the gateway at start, `automata reconcile`).

    `resend` is the gateway's: only the process that serialises a venue's commands may send
    an order again. Without it (the CLI) an order the venue never got is counted unresolved."""
    adapter = tracker.adapter
    summary = Summary(wal.venue)
    seen_symbols = set(symbols) | await logged_symbols(wal) | bot_symbols(wal.venue)
    for cid in await wal.open_cids():
        try:
            record = await wal.get(cid)
            if record is not None and await list_path_owns(wal.redis, record):
                seen_symbols.add(record.symbol)  # its list's reconciliation (lists.py) resolves it
            elif record is not None:
                seen_symbols.add(record.symbol)
                summary.checked += 1
                summary.count(await check(record, tracker, retry, resend=resend))
        except UNHANDLED as exc:
            _skip(summary, wal.venue, cid, exc)
    # orders the venue has that Redis does not: adopt ours, report foreign ones
    listed = await retry.run(adapter.open_orders, CHECK, what=f"{wal.venue}: open orders")
    for symbol in sorted(seen_symbols):
        try:
            listed += await retry.run(
                lambda s=symbol: adapter.recent_orders(s),
                CHECK,
                what=f"{wal.venue}: recent orders of {symbol}",
            )
        except Rejected as exc:  # a symbol the venue no longer lists
            log.warning("%s: recent orders of %s refused: %s", wal.venue, symbol, exc)
    latest = latest_reports(listed)
    found = adoptions(latest, await recorded(wal, [c for c in latest if bot_of(c) is not None]))
    summary.foreign = found.foreign
    for report in found.adopt:
        try:
            summary.adopted += await tracker.adopt(report) is not None
        except UNHANDLED as exc:
            _skip(summary, wal.venue, report.cid, exc)
    counts = metrics.counter(
        "automata_reconciliation_total", "Orders reconciliation found, by outcome", ("venue", "outcome")
    )
    for name in OUTCOMES:
        counts.labels(wal.venue, name).inc(getattr(summary, name))
    log.info(summary.line())
    return summary


async def find_out(
    record: OrderRecord, adapter: VenueAdapter, retry: Retry, backoff: Backoff = RESOLVE
) -> Verdict:
    """The verdict on an unfinished record once the venue was asked about its cid, and asked
    again after waiting out the first request's recvWindow when that may still arrive."""
    verdict = judge(record, await look_up(record, adapter, retry, backoff), now_ms(), adapter.recv_window_ms)
    if verdict.action is Action.WAIT:
        await retry.sleep(verdict.wait_ms / 1000)
        verdict = judge(
            record, await look_up(record, adapter, retry, backoff), now_ms(), adapter.recv_window_ms
        )
    return verdict


async def look_up(
    record: OrderRecord, adapter: VenueAdapter, retry: Retry, backoff: Backoff = RESOLVE
) -> Answer:
    """The venue's answer about the record's cid, its failures retried by the policy."""
    return await ask(lambda: adapter.query(record.symbol, record.cid), retry, backoff,
                     what=f"{adapter.name}: query of {record.cid}")  # fmt: skip


async def ask(
    op: Callable[[], Awaitable[T]], retry: Retry, backoff: Backoff, *, what: str
) -> T | NotFound | NoAnswer:
    """A query's answer, NOT_FOUND when the venue does not know it, or NoAnswer when it could
    not be asked (still failing after the retries)."""
    try:
        return await retry.run(op, backoff, what=what)
    except OrderNotFound:
        return NOT_FOUND
    except VenueError as exc:
        return NoAnswer(f"{type(exc).__name__}: {exc}")


async def settle(
    record: OrderRecord,
    tracker: OrderTracker,
    retry: Retry,
    *,
    resend: Resend | None,
    ack: Entry | None = None,
    backoff: Backoff = RESOLVE,
) -> tuple[Verdict, OrderRecord | None]:
    """Find out what happened to an unfinished record and act on it: the venue's report is
    applied (forward only), an order the venue never got and no longer can is resent when
    `resend` is given; anything else is left unresolved. Returns the verdict and the record
    as the action left it (None when nothing was written)."""
    verdict = await find_out(record, tracker.adapter, retry, backoff)
    if verdict.action is Action.APPLY and verdict.report is not None:
        return verdict, await tracker.apply(verdict.report, reconciled=True, ack=ack)
    if verdict.action is Action.RESEND and resend is not None:
        return verdict, await resend(record, ack)
    return verdict, None


async def check(record: OrderRecord, tracker: OrderTracker, retry: Retry, *, resend: Resend | None) -> str:
    """Bring one unfinished record up to the venue's view; the summary's outcome ("" for none)."""
    # an open record is asked about briefly: the poller asks again within poll_every_s, and a
    # venue that is down must not hold the start for the whole backoff of every open order
    backoff = RESOLVE if record.status in UNCONFIRMED else CHECK
    verdict, after = await settle(record, tracker, retry, resend=resend, backoff=backoff)
    if verdict.action is Action.APPLY:
        return outcome(record, after)
    if verdict.action is Action.RESEND and resend is not None:
        return "resent"
    if verdict.action is Action.RESEND:
        why = "the venue never got it; only the order gateway resends"
    else:
        why = verdict.reason or "its first request may still reach the venue"
    log.error("%s: %s unresolved: %s", record.venue, record.cid, why)
    return "unresolved"


async def recorded(wal: Wal, cids: list[str]) -> set[str]:
    """Which of these cids the log has a record of (one pipeline of EXISTS)."""
    async with wal.redis.pipeline(transaction=False) as pipe:
        for cid in cids:
            pipe.exists(og_order(cid))
        found = await pipe.execute()
    return {cid for cid, exists in zip(cids, found, strict=True) if exists}


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
