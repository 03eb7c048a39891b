"""Writing one stream entry to the ledger's database, exactly once.

One batch of entries, one transaction: the rows they produce and their (stream, entry_id) keys in
`ingested` commit together, so after a crash an entry is either wholly written or not at all;
the caller acks them in Redis only after the commit. An entry whose key is already in `ingested` was written
before (a replay): nothing is written again, and the caller acks it.

Order updates follow the bots' own rules: an update is applied only when it moves the order
forward (shared/strategy/orders.py `advance`), and what it adds is a fill; the fill moves the
bot's position by the same average-cost arithmetic as the bots (shared/strategy/position.py),
so the realised profit here equals the bot's; a bot that took over a position at its start (the
fractal stop's) has that as its position before its first fill (`opening_of`: the `opening` of
its state document, bot_view.opening_position). The position after each fill is kept on the fill's
row: the next one continues from there, whatever restarted in between. A fill carries the
venue's trade id when the update's growth is exactly the one trade it names (`last_fill_qty`),
else none (a derived row, which `automata ledger sync` settles: services/ledger/sync.py).
"""

from __future__ import annotations

import functools
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any, NamedTuple

import redis.asyncio as aioredis
import sqlalchemy as sa

from shared.account_view import valuation
from shared.bot_view import opening_position
from shared.filters import SymbolFilters
from shared.ids import IdError
from shared.ledger import schema as t
from shared.messages import BalanceUpdate, Candle, Message, Notification, OrderUpdate
from shared.money import ZERO
from shared.strategy.orders import BotOrder, FillDelta, advance
from shared.strategy.position import Position, apply_fill, fee_in_quote, is_flat
from shared.streams import bot_state

# (venue, symbol) -> its filters, None when the order gateway has not published them
FiltersOf = Callable[[str, str], SymbolFilters | None]
# bot -> the position it took over at its start (StrategyState.opening), None for none
OpeningOf = Callable[[str], Position | None]


async def read_opening(redis: aioredis.Redis, bot: str) -> Position | None:
    """The position the bot took over at its start, from its state document (None: none, no
    state, or an id no bot can have)."""
    try:
        key = bot_state(bot)
    except IdError:
        return None
    return opening_position(await redis.get(key))


def utc(ms: int) -> datetime:
    return datetime.fromtimestamp(ms / 1000, UTC)


def told_at(ms: int | None, entry_at: datetime) -> datetime:
    """A message's own time (the venue's, else its sender's), else its stream entry's."""
    return utc(ms) if ms else entry_at


def entry_ms(entry_id: str) -> int:
    return int(entry_id.split("-", 1)[0])


class Fact(NamedTuple):
    """One fill as the ledger records it, before the position arithmetic: from an order
    update's growth, or from the venue's trade list (`automata ledger sync`)."""

    bot: str
    venue: str
    symbol: str
    cid: str
    cum: Decimal  # the order's filled quantity after this fill: the row's key with cid
    fill: FillDelta
    time: datetime
    trade_id: str | None = None  # the venue's trade, None for a derived row
    is_maker: bool | None = None
    price: Decimal | None = None  # the trade's own price (else the fill's quote / qty)
    published: datetime | None = None  # when the bot's stream told it: the bots' order of fills


@functools.cache
def _insert_new_stmt(dialect_name: str, table: sa.Table) -> Any:
    if dialect_name == "postgresql":  # imported only for PostgreSQL: its dialect costs ~2 MB
        from sqlalchemy.dialects.postgresql import insert
    else:
        from sqlalchemy.dialects.sqlite import insert
    return insert(table).on_conflict_do_nothing()


def insert_new(conn: sa.Connection, table: sa.Table, row: dict[str, Any]) -> bool:
    """INSERT unless a row with the same unique key exists (two entries telling one fact make
    one row). True when inserted. (Statements are built once: building one costs more than
    SQLite takes to run it.)"""
    return bool(conn.execute(_insert_new_stmt(conn.dialect.name, table), row).rowcount)


def default_filters(symbol: str, quote_asset: str) -> SymbolFilters:
    """Filters for a symbol the order gateway never described: the base is what precedes the
    quote asset, flat means no base left at all."""
    base = symbol[: -len(quote_asset)] if symbol.endswith(quote_asset) else symbol
    return SymbolFilters(
        symbol=symbol,
        base_asset=base,
        quote_asset=quote_asset,
        tick_size=Decimal("1e-18"),
        step_size=Decimal("1e-18"),
    )


_ORDER_UPDATE = t.orders.update().where(t.orders.c.cid == sa.bindparam("b_cid"))  # SET: the parameters
_CYCLE_KEY = sa.and_(t.cycles.c.bot == sa.bindparam("b_bot"), t.cycles.c.number == sa.bindparam("b_number"))
_CYCLE_UPDATE = t.cycles.update().where(_CYCLE_KEY)  # SET: the parameters given


IN_CHUNK = 500  # values per IN (...) list


@dataclass
class Pending:
    """What one batch writes, held until its end and then written with one executemany per
    table and kind: the orders it touches as they now stand (read in one SELECT with their
    fills' keys), the cycles it opens or moves (whole rows), the rows it adds."""

    orders: dict[str, dict[str, Any]]  # cid -> the order's row as it now stands
    stored: set[str]  # cids already in the database
    fill_keys: set[tuple[str, Decimal]]  # (cid, cum_filled_qty) of the fills of those orders
    changed: set[str] = field(default_factory=set)  # cids to write
    cycles: dict[tuple[str, int], dict[str, Any]] = field(default_factory=dict)  # (bot, number) -> row
    new_cycles: set[tuple[str, int]] = field(default_factory=set)
    rows: dict[sa.Table, list[dict[str, Any]]] = field(default_factory=lambda: defaultdict(list))
    unique_rows: dict[sa.Table, list[dict[str, Any]]] = field(default_factory=lambda: defaultdict(list))

    @classmethod
    def prefetch(cls, conn: sa.Connection, updates: Sequence[OrderUpdate]) -> Pending:
        cids = list(dict.fromkeys(u.cid for u in updates))
        orders: dict[str, dict[str, Any]] = {}
        keys: set[tuple[str, Decimal]] = set()
        f = t.fills.c
        for start in range(0, len(cids), IN_CHUNK):
            chunk = cids[start : start + IN_CHUNK]
            for row in conn.execute(sa.select(t.orders).where(t.orders.c.cid.in_(chunk))).mappings():
                orders[row["cid"]] = dict(row)
            rows = conn.execute(sa.select(f.cid, f.cum_filled_qty).where(f.cid.in_(chunk)))
            keys.update((cid, cum) for cid, cum in rows)
        return cls(orders, set(orders), keys)

    def insert_new(self, table: sa.Table, row: dict[str, Any]) -> None:
        """`insert_new` at the end of the batch."""
        self.unique_rows[table].append(row)

    def flush(self, conn: sa.Connection) -> None:
        changed = [self.orders[cid] for cid in self.changed]
        if inserts := [row for row in changed if row["cid"] not in self.stored]:
            conn.execute(t.orders.insert(), inserts)
        if updates := [_keyed(row, b_cid=row["cid"]) for row in changed if row["cid"] in self.stored]:
            conn.execute(_ORDER_UPDATE, updates)
        if inserts := [row for key, row in self.cycles.items() if key in self.new_cycles]:
            conn.execute(t.cycles.insert(), inserts)
        if updates := [
            _keyed(row, b_bot=bot, b_number=number)
            for (bot, number), row in self.cycles.items()
            if (bot, number) not in self.new_cycles
        ]:
            conn.execute(_CYCLE_UPDATE, updates)
        for table, rows in self.rows.items():
            conn.execute(table.insert(), rows)
        for table, rows in self.unique_rows.items():
            conn.execute(_insert_new_stmt(conn.dialect.name, table), rows)


def _keyed(row: dict[str, Any], **key: Any) -> dict[str, Any]:
    """An UPDATE's parameters: the row's columns but its key (SET), the key under other names."""
    names = {k[2:] for k in key}
    return {**{k: v for k, v in row.items() if k not in names}, **key}


class Writer:
    """Writes entries into the ledger's tables. Prices it learns (closed candles, fills) value
    the account in its quote asset; balances are folded per venue as cli/balance.py does."""

    def __init__(
        self,
        engine: sa.Engine,
        filters_of: FiltersOf,
        quote_of: Callable[[str], str],
        opening_of: OpeningOf = lambda _bot: None,
    ) -> None:
        self.engine = engine
        self.filters_of = filters_of
        self.quote_of = quote_of
        self.opening_of = opening_of
        self.prices: dict[tuple[str, str], Decimal] = {}  # (venue, symbol) -> last price known
        self.accounts: dict[str, dict[str, Any]] = {}  # venue -> asset -> Balance (after a snapshot)
        self.positions: dict[tuple[str, str], Position] = {}  # (bot, symbol) -> after its last fill
        self.cycles: dict[str, dict[str, Any] | None] = {}  # bot -> its open cycle (None: flat)
        self.numbers: dict[str, int] = {}  # bot -> the number of its newest cycle
        self.sync_seen: int | None = None  # the newest `syncs` row these were read after
        self._pending = Pending({}, set(), set())
        self._stage()

    def _stage(self) -> None:
        """Work on copies while a batch is written: a rolled-back batch leaves no trace here."""
        self._prices, self._accounts = dict(self.prices), dict(self.accounts)
        self._positions, self._cycles = dict(self.positions), dict(self.cycles)
        self._numbers = dict(self.numbers)
        self._sync_seen = self.sync_seen

    def load_prices(self) -> None:
        """The last price of each symbol the database knows (newest candle close, else newest
        fill), so equity is valued after a restart before any new candle or fill arrives."""
        with self.engine.connect() as conn:
            for table, order in ((t.fills, t.fills.c.id), (t.candles, t.candles.c.open_time)):
                price = t.fills.c.price if table is t.fills else t.candles.c.close
                newest = (
                    sa.select(table.c.venue, table.c.symbol, sa.func.max(order).label("newest"))
                    .group_by(table.c.venue, table.c.symbol)
                    .subquery()
                )
                rows = conn.execute(
                    sa.select(table.c.venue, table.c.symbol, price).join(
                        newest,
                        sa.and_(
                            table.c.venue == newest.c.venue,
                            table.c.symbol == newest.c.symbol,
                            order == newest.c.newest,
                        ),
                    )
                )
                self.prices.update({(venue, symbol): value for venue, symbol, value in rows})

    def write(self, stream: str, entry_id: str, msg: Message | None) -> bool:
        """Write one entry; False when it was written before."""
        return self.write_many([(stream, entry_id, msg)]) == 1

    def write_many(self, batch: Sequence[tuple[str, str, Message | None]]) -> int:
        """Write the entries (stream, entry id, message) in one transaction, in order, skipping
        those written before; how many were new. On any error nothing is written, and the
        prices and accounts it learnt are forgotten with the transaction.

        Fast by doing per batch what costs per statement: the batch's keys go into `ingested` in
        one INSERT that returns those that were new, the orders the batch touches (and their
        fills' keys) are read in one SELECT, the rows it makes are kept in `Pending` and go in
        with one executemany per table and kind at the end."""
        self._stage()
        with self.engine.begin() as conn:
            written = self._claim(conn, batch)
            self._check_syncs(conn)
            todo = set(written)
            new = [e for e in batch if (e[0], e[1]) in written]
            self._pending = Pending.prefetch(conn, [m for _s, _i, m in new if isinstance(m, OrderUpdate)])
            for stream, entry_id, msg in new:
                if (stream, entry_id) not in todo:
                    continue  # twice in the batch
                todo.discard((stream, entry_id))
                at = utc(entry_ms(entry_id))
                if isinstance(msg, OrderUpdate):
                    self._order(conn, msg, at)
                elif isinstance(msg, BalanceUpdate):
                    self._balances(msg, at)
                elif isinstance(msg, Candle):
                    self._candle(msg)
                elif isinstance(msg, Notification):
                    self._notification(msg, at)
            self._pending.flush(conn)
        self.prices, self.accounts = self._prices, self._accounts
        self.positions, self.cycles, self.numbers = self._positions, self._cycles, self._numbers
        self.sync_seen = self._sync_seen
        return len(written)

    def _check_syncs(self, conn: sa.Connection) -> None:
        """Forget the positions and cycles held in memory when a sync rewrote fills since they
        were read. Called after the batch's first write: `automata ledger sync` takes the same
        lock first (services/ledger/sync.py), so it cannot commit between this and the batch's
        end."""
        newest = conn.execute(sa.select(sa.func.max(t.syncs.c.id))).scalar()
        if newest != self.sync_seen:
            self._positions, self._cycles, self._numbers = {}, {}, {}
            self._sync_seen = newest

    @staticmethod
    def _claim(conn: sa.Connection, batch: Sequence[tuple[str, str, Any]]) -> set[tuple[str, str]]:
        """Insert the batch's keys into `ingested`; those that were not there yet (the others
        were written before: a replay). In the batch's transaction, so they go with its rows."""
        keys = list(dict.fromkeys((stream, entry_id) for stream, entry_id, _msg in batch))
        if not keys:
            return set()
        now, c = datetime.now(UTC), t.ingested.c
        if not conn.dialect.insert_executemany_returning:  # SQLite before 3.35: no RETURNING
            by_stream: dict[str, list[str]] = {}
            for stream, entry_id in keys:
                by_stream.setdefault(stream, []).append(entry_id)
            seen = {
                (stream, entry_id)
                for stream, ids in by_stream.items()
                for (entry_id,) in conn.execute(
                    sa.select(c.entry_id).where(c.stream == stream, c.entry_id.in_(ids))
                )
            }
            new = [key for key in keys if key not in seen]
            if new:
                conn.execute(t.ingested.insert(), [{"stream": s, "entry_id": i, "at": now} for s, i in new])
            return set(new)
        rows = conn.execute(
            _insert_new_stmt(conn.dialect.name, t.ingested).returning(c.stream, c.entry_id),
            [{"stream": stream, "entry_id": entry_id, "at": now} for stream, entry_id in keys],
        )
        return {(stream, entry_id) for stream, entry_id in rows}

    # -- orders, fills, cycles -----------------------------------------------------------------

    def _filters(self, venue: str, symbol: str) -> SymbolFilters:
        return self.filters_of(venue, symbol) or default_filters(symbol, self.quote_of(venue))

    def _order(self, conn: sa.Connection, u: OrderUpdate, at: datetime) -> None:
        when = told_at(u.venue_ts or u.ts, at)
        row = self._pending.orders.get(u.cid)
        side = u.side or (row["side"] if row else None)
        kind = u.order_type or (row["order_type"] if row else None)
        record = BotOrder(
            cid=u.cid,
            side=side or "BUY",
            order_type=kind or "LIMIT",
            **(
                {k: row[k] for k in ("status", "cum_filled_qty", "cum_quote_qty", "fee", "fee_asset")}
                if row
                else {}
            ),
        )
        moved = advance(record, u)
        if moved is None:
            return  # stale or a duplicate: the order is already further on
        new, fill = moved
        values = {
            "bot": u.bot, "venue": u.venue, "symbol": u.symbol, "venue_order_id": u.venue_order_id,
            "side": side, "order_type": kind, "status": new.status, "price": u.price,
            "stop_price": u.stop_price, "orig_qty": u.orig_qty, "orig_quote_qty": u.orig_quote_qty,
            "cum_filled_qty": new.cum_filled_qty, "cum_quote_qty": new.cum_quote_qty, "fee": new.fee,
            "fee_asset": new.fee_asset, "reason": u.reason, "adopted": u.adopted, "updated_at": when,
        }  # fmt: skip
        if row is None:
            self._pending.orders[u.cid] = {"cid": u.cid, "created_at": when, **values}
        else:
            # what an update leaves out (no price, no venue id, orig_qty 0) keeps what is known
            keep = {
                k: v
                for k, v in values.items()
                if k == "status" or (v not in (None, "") and (v or k != "orig_qty"))
            }
            self._pending.orders[u.cid] = {**row, **keep}
        self._pending.changed.add(u.cid)
        if fill is not None and side is not None and fill.qty > 0:
            # the venue's trade id only when this growth is that one trade (docs/ARCHITECTURE.md)
            trade_id = u.trade_id if u.trade_id and u.last_fill_qty == fill.qty else None
            maker = u.maker if trade_id else None
            fact = Fact(
                u.bot, u.venue, u.symbol, u.cid, new.cum_filled_qty, fill, when, trade_id, maker, published=at
            )
            self._fill(conn, fact)

    def replay(self, conn: sa.Connection, bot: str, facts: Sequence[Fact]) -> None:
        """Write the bot's whole fill history again, in this order, with its positions and
        cycles recomputed from nothing (`automata ledger sync` after it added or replaced fills:
        every later row depends on the earlier ones). In the caller's transaction."""
        conn.execute(t.fills.delete().where(t.fills.c.bot == bot))
        conn.execute(t.cycles.delete().where(t.cycles.c.bot == bot))
        self._stage()
        self._pending = Pending({}, set(), set())
        self._positions = {k: v for k, v in self._positions.items() if k[0] != bot}
        self._cycles.pop(bot, None)
        self._numbers[bot] = 0
        for fact in facts:
            self._fill(conn, fact)
        self._pending.flush(conn)
        self._positions = {k: v for k, v in self._positions.items() if k[0] != bot}
        self._cycles.pop(bot, None)
        self._numbers.pop(bot, None)  # the service's own Writer reads them again (syncs)

    def _fill(self, conn: sa.Connection, x: Fact) -> None:
        if (x.cid, x.cum) in self._pending.fill_keys:
            return  # this growth is in already (another entry told it: the venue's trade list)
        self._pending.fill_keys.add((x.cid, x.cum))
        f, fill = self._filters(x.venue, x.symbol), x.fill
        price = x.price or fill.price
        before = self._position(conn, x.bot, x.symbol)
        pos = apply_fill(before, fill, f.base_asset, f.quote_asset)
        fee_quote = fee_in_quote(fill.fee, fill.fee_asset, price, f)
        cycle = self._cycle(conn, x, fee_quote, pos, before, f)
        self._positions[(x.bot, x.symbol)] = pos
        self._pending.rows[t.fills].append(
            {
                "venue": x.venue, "symbol": x.symbol, "trade_id": x.trade_id, "cid": x.cid,
                "cum_filled_qty": x.cum, "bot": x.bot, "side": fill.side, "price": price, "qty": fill.qty,
                "quote_qty": fill.quote, "fee": fill.fee, "fee_asset": fill.fee_asset,
                "fee_in_quote": fee_quote, "is_maker": x.is_maker, "time": x.time,
                "realised": pos.realised - before.realised, "realised_total": pos.realised,
                "position_base": pos.base, "position_cost": pos.cost, "cycle": cycle,
                "published_at": x.published,
            },
        )  # fmt: skip
        self._prices[(x.venue, x.symbol)] = price

    def _position(self, conn: sa.Connection, bot: str, symbol: str) -> Position:
        """The bot's position on symbol after its last fill (from that fill's row, once); before
        its first fill, the position it took over at its start (nothing, for most bots)."""
        key = (bot, symbol)
        if key not in self._positions:
            f = t.fills.c
            last = conn.execute(
                sa.select(f.realised_total, f.position_base, f.position_cost)
                .where(f.bot == bot, f.symbol == symbol, f.realised_total.is_not(None))
                .order_by(f.id.desc())
                .limit(1)
            ).first()
            self._positions[key] = (
                Position(realised=last[0], base=last[1], cost=last[2]) if last else self._opening(bot)
            )
        return self._positions[key]

    def _opening(self, bot: str) -> Position:
        taken = self.opening_of(bot)
        return Position() if taken is None else Position(base=taken.base, cost=taken.cost)

    def _open_cycle(self, conn: sa.Connection, bot: str) -> dict[str, Any] | None:
        """The bot's open round trip with the profit its fills realised so far (from the
        database, once)."""
        if bot not in self._cycles:
            c = t.cycles.c
            row = conn.execute(
                sa.select(t.cycles).where(c.bot == bot, c.closed_at.is_(None)).order_by(c.number.desc()).limit(1)
            ).mappings().first()  # fmt: skip
            if row is not None:
                realised = conn.execute(
                    sa.select(t.fills.c.realised).where(
                        t.fills.c.bot == bot, t.fills.c.cycle == row["number"]
                    )
                ).scalars()
                row = {**row, "realised": sum((r or ZERO for r in realised), ZERO)}
            self._cycles[bot] = row
        return self._cycles[bot]

    def _cycle(
        self, conn: sa.Connection, u: Fact, fee_quote: Decimal | None, pos: Position, before: Position,
        f: SymbolFilters,
    ) -> int:  # fmt: skip
        """Count the fill into the bot's open round trip (opening one if the bot was flat) and
        close it when the position is back to nothing; the cycle's number."""
        fill, when = u.fill, u.time
        c = t.cycles.c
        open_row = self._open_cycle(conn, u.bot)
        if open_row is None:
            newest = self._numbers.get(u.bot)
            if newest is None:
                newest = conn.execute(sa.select(sa.func.max(c.number)).where(c.bot == u.bot)).scalar() or 0
            # a cycle opened by a sale holds a position the bot took over (Writer._opening): it
            # counts as bought at its cost, as the bot counts it
            taken = fill.side != "BUY" and before.base > 0
            open_row = {"bot": u.bot, "number": newest + 1, "venue": u.venue, "symbol": u.symbol,
                        "quote_asset": f.quote_asset, "opened_at": when, "closed_at": None, "buys": 0,
                        "sells": 0, "bought_qty": before.base if taken else ZERO, "sold_qty": ZERO,
                        "spent": before.cost if taken else ZERO, "received": ZERO,
                        "fees": ZERO, "profit": None, "realised": ZERO}  # fmt: skip
            self._pending.new_cycles.add((u.bot, newest + 1))
        number = self._numbers[u.bot] = open_row["number"]
        buy = fill.side == "BUY"
        values: dict[str, Any] = {
            "buys": open_row["buys"] + buy,
            "sells": open_row["sells"] + (not buy),
            "bought_qty": open_row["bought_qty"] + (fill.qty if buy else ZERO),
            "sold_qty": open_row["sold_qty"] + (ZERO if buy else fill.qty),
            "spent": open_row["spent"] + (fill.quote if buy else ZERO),
            "received": open_row["received"] + (ZERO if buy else fill.quote),
            "fees": open_row["fees"] + (fee_quote or ZERO),
        }
        realised = open_row["realised"] + (pos.realised - before.realised)
        closed = not buy and is_flat(f, pos, fill.price)
        if closed:
            values["closed_at"], values["profit"] = when, realised
        row = {**{k: v for k, v in open_row.items() if k != "realised"}, **values}
        self._pending.cycles[(u.bot, number)] = row
        self._cycles[u.bot] = None if closed else {**row, "realised": realised}
        return number

    # -- balances, equity, candles, notifications ------------------------------------------------

    def _balances(self, msg: BalanceUpdate, at: datetime) -> None:
        # the gateway's clock, not the venue's: a snapshot (REST) carries none, and the paper
        # venue's market clock (2024-01-01 at 120x) would interleave two series in `equity`
        when = told_at(msg.ts, at)
        for bal in msg.balances:
            self._pending.insert_new(
                t.balances,
                {"venue": msg.venue, "asset": bal.asset, "free": bal.free, "locked": bal.locked,
                 "total": bal.total, "at": when},
            )  # fmt: skip
        known = self._accounts.get(msg.venue)
        if msg.snapshot:
            account = {b.asset: b for b in msg.balances}
        elif known is not None:
            account = {**known, **{b.asset: b for b in msg.balances}}
        else:
            return  # only deltas seen yet: the account is not known whole, no equity
        quote = self.quote_of(msg.venue)
        _rows, value, unvalued = valuation(
            account, quote, lambda symbol: self._prices.get((msg.venue, symbol))
        )
        self._pending.insert_new(  # the valued part, the rest named (as `automata balance` shows it)
            t.equity,
            {
                "venue": msg.venue,
                "quote_asset": quote,
                "value": value,
                "unvalued": " ".join(unvalued),
                "at": when,
            },
        )
        self._accounts[msg.venue] = account

    def _candle(self, c: Candle) -> None:
        if not c.closed:
            return
        self._pending.insert_new(
            t.candles,
            {"venue": c.venue, "symbol": c.symbol, "interval": c.interval, "open_time": utc(c.open_time),
             "close_time": utc(c.close_time), "open": c.open, "high": c.high, "low": c.low, "close": c.close,
             "volume": c.volume, "quote_volume": c.quote_volume, "trades": c.trades},
        )  # fmt: skip
        self._prices[(c.venue, c.symbol)] = c.close

    def _notification(self, n: Notification, at: datetime) -> None:
        self._pending.insert_new(
            t.notifications,
            {"notification_id": n.id, "kind": n.kind, "level": str(n.level), "bot": n.bot, "venue": n.venue,
             "title": n.title, "text": n.text, "data": n.data or None, "at": told_at(n.ts, at)},
        )  # fmt: skip
