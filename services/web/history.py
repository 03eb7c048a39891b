"""Reading the trading history from the ledger (shared/ledger): fills, orders, cycles, profit,
equity, with the queries `automata trades|profit|equity` use. Nothing here writes."""

from __future__ import annotations

import threading
from datetime import UTC, datetime
from decimal import Decimal

import sqlalchemy as sa

from services.web import views
from shared.ledger import profit as ledger_profit
from shared.ledger import queries, schema
from shared.ledger.schema import cycles, orders


def ms(at: datetime) -> int:
    return int(at.timestamp() * 1000)


def from_ms(value: int | None) -> datetime | None:
    return None if value is None else datetime.fromtimestamp(value / 1000, UTC)


def fill_view(t: queries.Trade) -> views.Fill:
    return views.Fill(**{**vars(t), "time": ms(t.time)})


def fills(
    conn: sa.Connection | None,
    *,
    bot: str | None,
    limit: int,
    since: int | None = None,
    until: int | None = None,
) -> list[views.Fill]:
    """Newest first."""
    if conn is None:
        return []
    found = queries.trades(conn, bot=bot, since=from_ms(since), until=from_ms(until), limit=limit)
    return [fill_view(t) for t in found]


def order_rows(conn: sa.Connection | None, *, bot: str, limit: int) -> list[views.OrderRow]:
    """The bot's orders as the ledger recorded them, newest first."""
    if conn is None:
        return []
    c = orders.c
    query = sa.select(c.cid, c.bot, c.venue, c.symbol, c.side, c.order_type, c.status, c.price, c.stop_price,
                      c.orig_qty, c.cum_filled_qty, c.cum_quote_qty, c.fee, c.fee_asset, c.reason, c.created_at,
                      c.updated_at)  # fmt: skip
    query = query.where(c.bot == bot).order_by(c.created_at.desc(), c.cid.desc()).limit(limit)
    return [views.OrderRow(*row[:-2], ms(row[-2]), ms(row[-1])) for row in conn.execute(query)]


def cycle_rows(conn: sa.Connection | None, *, bot: str, limit: int) -> list[views.Cycle]:
    """The bot's cycles (round trips), newest first, the open one included."""
    if conn is None:
        return []
    c = cycles.c
    query = sa.select(c.bot, c.number, c.venue, c.symbol, c.quote_asset, c.opened_at, c.closed_at, c.buys,
                      c.sells, c.bought_qty, c.sold_qty, c.spent, c.received, c.fees, c.profit)  # fmt: skip
    query = query.where(c.bot == bot).order_by(c.number.desc()).limit(limit)
    out = []
    for row in conn.execute(query):
        values = list(row)
        values[5] = ms(values[5])
        values[6] = None if values[6] is None else ms(values[6])
        out.append(views.Cycle(*values))
    return out


class ProfitCache:
    """The profit summary sums every closed cycle (on SQLite in Python: ~0.3 s for 50,000); it
    changes only with a new fill, so it is kept until the ledger's newest fill time moves."""

    def __init__(self) -> None:
        self._kept: dict[str | None, tuple[datetime | None, list[views.ProfitRow]]] = {}
        self._lock = threading.Lock()

    def rows(self, conn: sa.Connection, bot: str | None) -> list[views.ProfitRow]:
        mark = queries.newest(conn, schema.fills.c.time)
        with self._lock:
            kept = self._kept.get(bot)
        if kept is not None and kept[0] == mark and mark is not None:
            return kept[1]
        rows = profit_rows(conn, bot=bot)
        with self._lock:
            if len(self._kept) > 100:  # one entry per bot asked about: bounded all the same
                self._kept.clear()
            self._kept[bot] = (mark, rows)
        return rows


def profit_rows(conn: sa.Connection | None, *, bot: str | None = None) -> list[views.ProfitRow]:
    """Per bot and quote asset, then the totals (as `automata profit`)."""
    if conn is None:
        return []
    rows = ledger_profit.with_totals(ledger_profit.profit(conn, bot=bot))
    return [
        views.ProfitRow(
            p.bot,
            p.quote_asset,
            p.realised,
            p.unrealised,
            p.fees,
            p.closed,
            p.wins,
            p.win_rate,
            p.best,
            p.worst,
            p.fills,
            len(p.open),
        )  # fmt: skip
        for p in rows
    ]


def unrealised_by_bot(conn: sa.Connection | None, bots: list[str]) -> dict[str, Decimal | None]:
    """Each bot's unrealised profit: its open cycles at the last price (shared/ledger/profit.py),
    0 without one, None when one has no price or there is no ledger yet. Only the open cycles
    are read, whatever the length of the history."""
    if conn is None:
        return dict.fromkeys(bots)
    out: dict[str, Decimal | None] = dict.fromkeys(bots, Decimal(0))
    for cycle in ledger_profit.open_cycles(conn):
        if cycle.bot in out:
            value, so_far = cycle.unrealised, out[cycle.bot]
            out[cycle.bot] = None if value is None or so_far is None else so_far + value
    return out


def profit(
    conn: sa.Connection | None,
    cache: ProfitCache,
    period: ledger_profit.Period,
    n: int | None,
    bot: str | None,
) -> views.Profit:
    if conn is None:
        return views.Profit([], period, [], None)
    buckets, last = ledger_profit.recent_periods(conn, period, n, bot=bot)
    periods = [
        views.Period(ms(b.start), ms(b.end), b.profit, b.fees, b.closed, b.wins, b.fills) for b in buckets
    ]
    return views.Profit(cache.rows(conn, bot), period, periods, None if last is None else ms(last))


def _point(p: queries.EquityPoint) -> views.EquityPoint:
    return views.EquityPoint(ms(p.at), p.value)


def equity(conn: sa.Connection | None, venue: str | None, since: int | None, n: int | None) -> views.Equity:
    """The series `automata equity` shows (queries.equity_window: the last n days, or from since)."""
    if conn is None:
        return views.Equity([])
    series = queries.equity_window(conn, venue=venue, since=from_ms(since), n=n or queries.EQUITY_DAYS).series
    return views.Equity([
        views.EquitySeries(e.venue, e.quote_asset, _point(e.first), _point(e.last), _point(e.high), _point(e.low),
                           e.drawdown, e.drawdown_pct, [_point(p) for p in e.daily])
        for e in series
    ])  # fmt: skip


def opening_price(conn: sa.Connection | None, bot: str) -> Decimal | None:
    """The average price of the opening buy of the bot's open cycle in the ledger: its earliest
    buy fill's order, as the DCA bot itself reads it (cum_quote_qty / cum_filled_qty). None
    without a ledger, an open cycle or a buy in it yet."""
    if conn is None:
        return None
    f, c, o = schema.fills.c, cycles.c, orders.c
    number = sa.select(c.number).where(c.bot == bot, c.closed_at.is_(None)).order_by(c.number.desc()).limit(1)
    first = (
        sa.select(f.cid)
        .where(f.bot == bot, f.side == "BUY", f.cycle == number.scalar_subquery())
        .order_by(f.time, f.id)
        .limit(1)
    )
    row = conn.execute(
        sa.select(o.cum_quote_qty, o.cum_filled_qty).where(o.cid == first.scalar_subquery())
    ).first()
    if row is None or not row.cum_filled_qty:
        return None
    return Decimal(row.cum_quote_qty) / Decimal(row.cum_filled_qty)
