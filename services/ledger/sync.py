"""`automata ledger sync`: one fill row per venue trade, from the venue's own trade list.

The ledger writes a fill for each growth of an order's filled quantity. When the growth is one
trade the update names (OrderUpdate.trade_id) the row carries its id; otherwise (several trades
told at once: a coalesced update, polling, reconciliation) the row is derived and its trade_id
is NULL; and entries trimmed from a stream before the ledger read them leave no row at all
(services/ledger/gaps.py). Sync reads the venue's trades (myTrades, execution/list) and the order
gateway's write-ahead records, and for each order of the bots it settles:

- a derived row that is exactly one trade (same quantity, same cum_filled_qty after it) gets
  that trade's id and maker flag: nothing else changes;
- a derived row that is several trades is replaced by one row per trade, and trades no row
  holds are added; the bot's fills are then written again with its positions and cycles
  recomputed (Writer.replay: the same arithmetic as the service and the bots), in the order
  the bot heard them (fills.published_at; a gap's trades at the gateway's last update of their
  order), so its realised profit stays the bot's own.

An order is settled only when its history can no longer grow: final in the ledger with the
filled quantity its trades add up to, or final in the write-ahead log (then its `orders` row is
written from that record) while the ledger has read every entry of the bot's stream. A second
sync finds every row with its id and changes nothing. The changes commit in one transaction
with a `syncs` row, taken under the lock the service's batches take first (in `_lock`), so the
service, which checks `syncs` in each batch, reads its positions again afterwards.
"""

from __future__ import annotations

import asyncio
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import redis.asyncio as aioredis
import sqlalchemy as sa
from redis.exceptions import ResponseError

from services.ledger.writer import Fact, FiltersOf, OpeningOf, Writer, read_opening, utc
from services.order_gateway.venues.base import VenueAdapter, VenueTrade
from shared import streams as s
from shared.bus.groups import as_text, id_key
from shared.display import filters_from_hash
from shared.ledger import schema as t
from shared.messages import TERMINAL_STATUSES
from shared.money import ZERO
from shared.order_record import CorruptRecord, OrderRecord
from shared.strategy.orders import FillDelta


@dataclass
class Summary:
    """What one sync of a venue did, for its one-line report."""

    venue: str
    trades: int = 0  # venue trades read
    annotated: int = 0  # derived rows given their trade id
    inserted: int = 0  # rows added from venue trades
    replaced: int = 0  # derived rows replaced by the trades they were
    orders: int = 0  # orders rows written from the write-ahead log
    bots: set[str] = field(default_factory=set)  # bots whose fills were written again
    skipped: list[str] = field(default_factory=list)  # orders left as they are, with why

    @property
    def changed(self) -> bool:
        return bool(self.annotated or self.inserted or self.replaced or self.orders)

    def line(self) -> str:
        done = (
            f"{self.annotated} fill(s) given their trade id, {self.inserted} added from the venue's trades, "
            f"{self.replaced} derived fill(s) replaced"
            if self.changed
            else "every fill already has its trade id"
        )
        left = f"; {len(self.skipped)} order(s) left for a later sync" if self.skipped else ""
        return f"{self.venue}: {self.trades} venue trade(s) read: {done}{left}"


async def wal_records(redis: aioredis.Redis, venue: str) -> list[OrderRecord]:
    """The order gateway's write-ahead records of the venue (unreadable ones skipped)."""
    keys = [k async for k in redis.scan_iter(match=s.og_order("*"), count=1000)]
    out = []
    for start in range(0, len(keys), 500):
        pipe = redis.pipeline(transaction=False)
        for key in keys[start : start + 500]:
            pipe.hgetall(key)
        for raw in await pipe.execute():
            try:
                record = OrderRecord.from_hash(raw) if raw else None
            except CorruptRecord:
                continue
            if record is not None and record.venue == venue:
                out.append(record)
    return out


async def caught_up(redis: aioredis.Redis, bot: str) -> bool:
    """The ledger has read and written every entry the bot's order stream holds (no stream:
    nothing more can come): its group was handed the newest entry there and holds none
    unacked. (Not Redis's `lag`, which counts deleted entries as unread.)"""
    stream = s.order_events(bot)
    try:
        groups = await redis.xinfo_groups(stream)
        newest = (await redis.xinfo_stream(stream)).get("last-entry")
    except ResponseError:
        return True
    for g in groups:
        if as_text(g["name"]) == s.GROUP_LEDGER:
            handed = id_key(as_text(g["last-delivered-id"]))
            return not g["pending"] and (newest is None or handed >= id_key(as_text(newest[0])))
    return False


def _lock(conn: sa.Connection) -> None:
    """Hold off the service's batches until this transaction ends: on PostgreSQL the lock its
    first statement (INSERT into `ingested`) waits for; on SQLite the first write below takes
    the one write lock."""
    if conn.dialect.name == "postgresql":
        conn.execute(sa.text("LOCK TABLE ingested IN SHARE ROW EXCLUSIVE MODE"))


def _order_row(r: OrderRecord) -> dict[str, Any]:
    """An `orders` row from the gateway's record of the order."""
    return {
        "cid": r.cid, "bot": r.bot, "venue": r.venue, "symbol": r.symbol, "venue_order_id": r.venue_order_id,
        "side": r.side, "order_type": r.order_type, "status": str(r.status), "price": r.price,
        "stop_price": r.stop_price, "orig_qty": r.orig_qty, "orig_quote_qty": r.orig_quote_qty,
        "cum_filled_qty": r.cum_filled_qty, "cum_quote_qty": r.cum_quote_qty, "fee": r.fee,
        "fee_asset": r.fee_asset, "reason": r.reason, "adopted": r.adopted,
        "created_at": utc(r.created_ts or r.updated_ts), "updated_at": utc(r.venue_ts or r.updated_ts),
    }  # fmt: skip


def _row_fact(r: Any, trade: VenueTrade | None = None) -> Fact:
    fill = FillDelta(r.side, r.qty, r.quote_qty, r.fee, r.fee_asset)
    trade_id, maker = (trade.trade_id, trade.is_maker) if trade else (r.trade_id, r.is_maker)
    return Fact(
        r.bot,
        r.venue,
        r.symbol,
        r.cid,
        r.cum_filled_qty,
        fill,
        r.time,
        trade_id,
        maker,
        r.price,
        r.published_at,
    )


def _trade_fact(bot: str, venue: str, cid: str, cum: Decimal, tr: VenueTrade) -> Fact:
    fill = FillDelta(tr.side, tr.qty, tr.quote, tr.fee, tr.fee_asset)
    return Fact(bot, venue, tr.symbol, cid, cum, fill, utc(tr.time), tr.trade_id, tr.is_maker, tr.price)


@dataclass
class Plan:
    """One bot's changes: rows to annotate (id -> trade), derived rows to drop, trades to add."""

    annotate: dict[int, VenueTrade] = field(default_factory=dict)
    drop: set[int] = field(default_factory=set)
    add: dict[str, list[Fact]] = field(default_factory=lambda: defaultdict(list))  # cid -> its facts


class Syncer:
    """Settles one venue's orders against its trade list, in one transaction."""

    def __init__(
        self,
        engine: sa.Engine,
        venue: str,
        filters_of: FiltersOf,
        quote_of: Callable[[str], str],
        opening_of: OpeningOf = lambda _bot: None,
    ):
        self.engine, self.venue = engine, venue
        self.writer = Writer(engine, filters_of, quote_of, opening_of)
        self.wal: dict[str, OrderRecord] = {}  # cid -> the gateway's record (run's `records`)

    def run(
        self, records: Iterable[OrderRecord], trades: Iterable[VenueTrade], settled_bots: set[str]
    ) -> Summary:
        """records: the write-ahead log's; settled_bots: those whose streams the ledger has read
        to the end (caught_up)."""
        summary = Summary(self.venue)
        wal = self.wal = {r.cid: r for r in records}
        with self.engine.connect() as conn, conn.begin():
            _lock(conn)
            sync_id = conn.execute(
                t.syncs.insert().values(venue=self.venue, at=datetime.now(UTC), trades=0, annotated=0,
                                        inserted=0, replaced=0)
            ).inserted_primary_key[0]  # fmt: skip
            orders = {
                r.cid: r for r in conn.execute(sa.select(t.orders).where(t.orders.c.venue == self.venue))
            }
            of_order = {r.venue_order_id: r.cid for r in wal.values() if r.venue_order_id}
            of_order.update({r.venue_order_id: cid for cid, r in orders.items() if r.venue_order_id})
            by_cid: dict[str, list[VenueTrade]] = defaultdict(list)
            for tr in trades:
                summary.trades += 1
                cid = tr.cid or of_order.get(tr.venue_order_id, "")
                if cid in orders or cid in wal:
                    by_cid[cid].append(tr)
            plans: dict[str, Plan] = defaultdict(Plan)
            for cid, its in sorted(by_cid.items()):
                its.sort(key=lambda tr: tr.time)  # stable: the venue's order within a millisecond
                bot = self._settle(conn, cid, its, orders.get(cid), wal.get(cid), settled_bots, summary)
                if bot is not None:
                    self._plan(conn, bot, cid, its, plans[bot])
            for bot, plan in sorted(plans.items()):
                self._apply(conn, bot, plan, summary)
            if not summary.changed:
                conn.rollback()  # nothing to say: no `syncs` row either
                return summary
            conn.execute(
                t.syncs.update().where(t.syncs.c.id == sync_id).values(
                    trades=summary.trades, annotated=summary.annotated, inserted=summary.inserted,
                    replaced=summary.replaced, bots=",".join(sorted(summary.bots)),
                )
            )  # fmt: skip
            for bot in summary.bots:
                conn.execute(
                    t.stream_gaps.update()
                    .where(t.stream_gaps.c.stream == s.order_events(bot), t.stream_gaps.c.filled_at.is_(None))
                    .values(filled_at=datetime.now(UTC))
                )
        return summary

    def _settle(
        self, conn: sa.Connection, cid: str, its: list[VenueTrade], row: Any, record: OrderRecord | None,
        settled_bots: set[str], summary: Summary,
    ) -> str | None:  # fmt: skip
        """The order's bot when its fills may be settled now (its `orders` row written from the
        write-ahead record if the ledger missed the end of it); None, with the reason kept."""
        total = sum((tr.qty for tr in its), ZERO)
        if row is not None and row.status in TERMINAL_STATUSES and row.cum_filled_qty == total:
            return row.bot
        if record is None or not record.terminal or record.cum_filled_qty != total:
            summary.skipped.append(f"{cid}: not final, or its trades add up to {total} not what it filled")
            return None
        if record.bot not in settled_bots:
            summary.skipped.append(f"{cid}: the ledger has not read all of {s.order_events(record.bot)} yet")
            return None
        values = _order_row(record)
        if row is None:
            conn.execute(t.orders.insert().values(**values))
        else:
            conn.execute(t.orders.update().where(t.orders.c.cid == cid).values(**values))
        summary.orders += 1
        return record.bot

    def _plan(self, conn: sa.Connection, bot: str, cid: str, its: list[VenueTrade], plan: Plan) -> None:
        rows = conn.execute(sa.select(t.fills).where(t.fills.c.cid == cid).order_by(t.fills.c.id)).all()
        by_trade = {r.trade_id: r for r in rows if r.trade_id is not None}
        used: set[int] = set()
        cum = ZERO
        for tr in its:
            cum += tr.qty
            if tr.trade_id in by_trade:
                used.add(by_trade[tr.trade_id].id)
                continue
            same = next(
                (r for r in rows if r.trade_id is None and r.id not in used and r.cum_filled_qty == cum and r.qty == tr.qty),
                None,
            )  # fmt: skip
            if same is not None:
                plan.annotate[same.id] = tr
                used.add(same.id)
            else:
                plan.add[cid].append(_trade_fact(bot, self.venue, cid, cum, tr))
        plan.drop |= {r.id for r in rows if r.trade_id is None and r.id not in used}

    def _apply(self, conn: sa.Connection, bot: str, plan: Plan, summary: Summary) -> None:
        if not plan.add and not plan.drop:
            for row_id, tr in plan.annotate.items():
                conn.execute(
                    t.fills.update()
                    .where(t.fills.c.id == row_id)
                    .values(trade_id=tr.trade_id, is_maker=tr.is_maker)
                )
            summary.annotated += len(plan.annotate)
            return
        facts: list[Fact] = []
        adding = dict(plan.add)
        for r in conn.execute(sa.select(t.fills).where(t.fills.c.bot == bot).order_by(t.fills.c.id)):
            if r.id in plan.drop:  # the trades it was, told when it was
                facts += [f._replace(published=r.published_at) for f in adding.pop(r.cid, [])]
                continue
            facts.append(_row_fact(r, plan.annotate.get(r.id)))
        for new in (fact for its in adding.values() for fact in its):  # no row at all: by time
            record = self.wal.get(new.cid)
            if record is not None and record.updated_ts:  # its last update: when the bot heard of it
                new = new._replace(published=utc(record.updated_ts))
            at = next((i for i, f in enumerate(facts) if f.time > new.time), len(facts))
            facts.insert(at, new)
        facts.sort(key=lambda f: f.published or f.time)  # stable: the ledger's order where it was told
        self.writer.replay(conn, bot, facts)
        summary.annotated += len(plan.annotate)
        summary.inserted += sum(len(v) for v in plan.add.values())
        summary.replaced += len(plan.drop)
        summary.bots.add(bot)


def _ledger_orders(engine: sa.Engine, venue: str) -> tuple[set[str], set[str]]:
    """The symbols and bots of the venue's orders in the ledger."""
    o = t.orders.c
    with engine.connect() as conn:
        rows = conn.execute(sa.select(o.symbol, o.bot).where(o.venue == venue).distinct()).all()
    return {r.symbol for r in rows}, {r.bot for r in rows}


async def sync_venue(
    redis: aioredis.Redis, engine: sa.Engine, adapter: VenueAdapter, venue: str, quote_asset: str
) -> Summary:
    """Read the write-ahead records, then the venue's trades of every symbol they or the ledger
    name, then whether the ledger has read each bot's stream to the end (in this order: an order
    final in the log has all its trades in the list and its last update in the stream), then
    settle (Syncer.run)."""
    records = await wal_records(redis, venue)
    symbols, bots = await asyncio.to_thread(_ledger_orders, engine, venue)
    trades = []
    for symbol in sorted(symbols | {r.symbol for r in records}):
        trades += await adapter.trades(symbol)
    settled = {bot for bot in bots | {r.bot for r in records} if await caught_up(redis, bot)}
    filters = filters_from_hash(await redis.hgetall(s.venue_symbols(venue)))
    openings = {bot: await read_opening(redis, bot) for bot in bots | {r.bot for r in records}}
    syncer = Syncer(
        engine, venue, lambda _venue, symbol: filters.get(symbol), lambda _venue: quote_asset, openings.get
    )
    return await asyncio.to_thread(syncer.run, records, trades, settled)
