"""Profit from the ledger, as Freqtrade's /profit and /daily tell it, but exact.

Realised profit is the bots' closed cycles (round trips): `cycles.profit` = received - spent -
fees, in the cycle's quote asset, net of every fee. Fees are the cycles' fees in quote (open
cycles included in the totals: they are paid). Win rate: the share of closed cycles whose profit
is above zero. Unrealised: each open cycle's position at the last price less what it cost so far,
`(bought - sold) x last - (spent - received + fees)`, its profit were it sold at that price
before the selling fee. The last price is the close of the newest candle of the symbol in
`candles` (any interval), else the price of the bot's newest fill of it; each open cycle says
which (`LastPrice.source`).

By period: UTC buckets (days from midnight, weeks from Monday 00:00, months from the 1st), the
current one first. A bucket holds the cycles closed in it (their profit and fees) and counts the
fills made in it. Bucketing and sums run in SQL (shared/ledger/aggregate.py keeps them exact on
SQLite) and fills are counted on their index, so no fill row reaches Python.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import get_args

import sqlalchemy as sa

from shared.config import Interval
from shared.ledger import aggregate
from shared.ledger.queries import newest
from shared.ledger.rows import DEFAULT_BUCKETS, MAX_BUCKETS, Period
from shared.ledger.schema import candles, cycles, fills
from shared.money import ZERO


@dataclass(frozen=True)
class LastPrice:
    price: Decimal
    at: datetime
    source: str  # "candle 1m" or "last fill"


@dataclass(frozen=True)
class OpenCycle:
    bot: str
    number: int
    venue: str
    symbol: str
    quote_asset: str
    qty: Decimal  # base held: bought - sold
    cost: Decimal  # spent - received + fees, in quote
    last: LastPrice | None

    @property
    def unrealised(self) -> Decimal | None:
        return None if self.last is None else self.qty * self.last.price - self.cost


@dataclass
class Profit:
    """One bot's (or, with bot "total", every bot's) profit in one quote asset."""

    bot: str
    quote_asset: str
    realised: Decimal = ZERO
    fees: Decimal = ZERO
    closed: int = 0
    wins: int = 0
    best: Decimal | None = None
    worst: Decimal | None = None
    fills: int = 0
    open: list[OpenCycle] = field(default_factory=list)

    @property
    def win_rate(self) -> Decimal | None:
        """Wins over closed cycles (0..1); None before any cycle closed."""
        return Decimal(self.wins) / self.closed if self.closed else None

    @property
    def unrealised(self) -> Decimal | None:
        """The open cycles' unrealised profit; None when one of them has no price to go by."""
        values = [c.unrealised for c in self.open]
        return None if any(v is None for v in values) else sum((v for v in values if v is not None), ZERO)


def profit(conn: sa.Connection, *, bot: str | None = None) -> list[Profit]:
    """Per bot and quote asset, sorted by bot: realised profit, fees, cycles, open positions."""
    aggregate.prepare(conn)
    closed = cycles.c.closed_at.is_not(None)
    query = sa.select(
        cycles.c.bot,
        cycles.c.quote_asset,
        aggregate.total(conn, sa.case((closed, cycles.c.profit))),
        aggregate.total(conn, cycles.c.fees),
        aggregate.count_if(closed),
        aggregate.count_if(closed & aggregate.positive(conn, cycles.c.profit)),
        aggregate.largest(conn, sa.case((closed, cycles.c.profit))),
        aggregate.smallest(conn, sa.case((closed, cycles.c.profit))),
    ).group_by(cycles.c.bot, cycles.c.quote_asset)
    if bot is not None:
        query = query.where(cycles.c.bot == bot)
    rows: dict[tuple[str, str], Profit] = {}
    for b, quote, realised, fees, n_closed, wins, best, worst in conn.execute(query):
        rows[b, quote] = Profit(b, quote, realised or ZERO, fees or ZERO, n_closed, wins, best, worst)
    first = {}  # a bot that traded in two quote assets: its fills counted once, on its first row
    for key in sorted(rows):
        first.setdefault(key[0], rows[key])
    for b, n in conn.execute(_fill_counts(bot)):
        if b in first:
            first[b].fills = n
    for cycle in open_cycles(conn, bot=bot):
        rows[cycle.bot, cycle.quote_asset].open.append(cycle)
    return [rows[key] for key in sorted(rows)]


def _fill_counts(bot: str | None) -> sa.Select:
    query = sa.select(fills.c.bot, sa.func.count()).group_by(fills.c.bot)
    return query if bot is None else query.where(fills.c.bot == bot)


def totals(rows: list[Profit]) -> list[Profit]:
    """Every bot's figures added up, one Profit (bot "total") per quote asset."""
    out: dict[str, Profit] = {}
    for row in rows:
        t = out.setdefault(row.quote_asset, Profit("total", row.quote_asset))
        t.realised += row.realised
        t.fees += row.fees
        t.closed += row.closed
        t.wins += row.wins
        t.fills += row.fills
        t.best = row.best if t.best is None or (row.best is not None and row.best > t.best) else t.best
        t.worst = row.worst if t.worst is None or (row.worst is not None and row.worst < t.worst) else t.worst
        t.open.extend(row.open)
    return [out[q] for q in sorted(out)]


def with_totals(rows: list[Profit]) -> list[Profit]:
    """The bots' rows, then a total for each quote asset more than one bot trades in."""
    shared = {q for q in {r.quote_asset for r in rows} if sum(r.quote_asset == q for r in rows) > 1}
    return rows + [t for t in totals(rows) if t.quote_asset in shared]


def open_cycles(conn: sa.Connection, *, bot: str | None = None) -> list[OpenCycle]:
    """The cycles not closed yet, each with its symbol's last price."""
    query = sa.select(cycles).where(cycles.c.closed_at.is_(None)).order_by(cycles.c.bot, cycles.c.number)
    if bot is not None:
        query = query.where(cycles.c.bot == bot)
    out = []
    prices: dict[tuple[str, str, str], LastPrice | None] = {}
    for c in conn.execute(query).all():
        key = (c.venue, c.symbol, c.bot)
        if key not in prices:
            prices[key] = last_price(conn, c.venue, c.symbol, bot=c.bot)
        qty = c.bought_qty - c.sold_qty
        cost = c.spent - c.received + c.fees
        out.append(OpenCycle(c.bot, c.number, c.venue, c.symbol, c.quote_asset, qty, cost, prices[key]))
    return out


def last_price(conn: sa.Connection, venue: str, symbol: str, *, bot: str | None = None) -> LastPrice | None:
    """The newest candle's close (one primary-key lookup per interval), else the bot's newest fill."""
    best: LastPrice | None = None
    for interval in get_args(Interval):
        row = conn.execute(
            sa.select(candles.c.close, candles.c.close_time)
            .where(candles.c.venue == venue, candles.c.symbol == symbol, candles.c.interval == interval)
            .order_by(candles.c.open_time.desc())
            .limit(1)
        ).first()
        if row is not None and (best is None or row.close_time > best.at):
            best = LastPrice(row.close, row.close_time, f"candle {interval}")
    if best is not None:
        return best
    query = sa.select(fills.c.price, fills.c.time).where(fills.c.venue == venue, fills.c.symbol == symbol)
    if bot is not None:
        query = query.where(fills.c.bot == bot)
    row = conn.execute(query.order_by(fills.c.time.desc(), fills.c.id.desc()).limit(1)).first()
    return None if row is None else LastPrice(row.price, row.time, "last fill")


@dataclass(frozen=True)
class Bucket:
    """One period, [start, end) in UTC: the cycles closed in it (profit net of fees, and fees, per
    quote asset) and the fills made in it."""

    start: datetime
    end: datetime
    profit: dict[str, Decimal] = field(default_factory=dict)
    fees: dict[str, Decimal] = field(default_factory=dict)
    closed: int = 0
    wins: int = 0
    fills: int = 0


def bucket_starts(period: Period, n: int, now: datetime) -> list[datetime]:
    """The starts of the last n buckets, the one holding `now` first (UTC)."""
    now = now.astimezone(UTC)
    day = now.replace(hour=0, minute=0, second=0, microsecond=0)
    if period == "daily":
        return [day - timedelta(days=i) for i in range(n)]
    if period == "weekly":
        monday = day - timedelta(days=day.weekday())
        return [monday - timedelta(weeks=i) for i in range(n)]
    starts = []
    year, month = day.year, day.month
    for _ in range(n):
        starts.append(day.replace(year=year, month=month, day=1))
        year, month = (year, month - 1) if month > 1 else (year - 1, 12)
    return starts


def _next_start(period: Period, start: datetime) -> datetime:
    if period == "daily":
        return start + timedelta(days=1)
    if period == "weekly":
        return start + timedelta(weeks=1)
    return (
        start.replace(year=start.year + 1, month=1)
        if start.month == 12
        else start.replace(month=start.month + 1)
    )


def _bucket_of(column: sa.ColumnElement[datetime], starts: list[datetime]) -> sa.ColumnElement[int]:
    """The index of the bucket a time falls in (starts newest first; the WHERE bounds the range)."""
    return sa.case(*((column >= start, i) for i, start in enumerate(starts)))


def by_period(
    conn: sa.Connection,
    period: Period,
    n: int | None = None,
    *,
    bot: str | None = None,
    now: datetime | None = None,
) -> list[Bucket]:
    """The last n buckets (default as Freqtrade: 7 days, 8 weeks, 6 months), newest first."""
    n = min(max(1, n or DEFAULT_BUCKETS[period]), MAX_BUCKETS)
    starts = bucket_starts(period, n, now or datetime.now(UTC))
    end = _next_start(period, starts[0])
    aggregate.prepare(conn)

    where = [cycles.c.closed_at >= starts[-1], cycles.c.closed_at < end]
    if bot is not None:
        where.append(cycles.c.bot == bot)
    inner = sa.select(
        _bucket_of(cycles.c.closed_at, starts).label("bucket"),
        cycles.c.quote_asset,
        cycles.c.profit,
        cycles.c.fees,
    ).where(*where)
    sub = inner.subquery()
    closed_rows = conn.execute(
        sa.select(
            sub.c.bucket,
            sub.c.quote_asset,
            aggregate.total(conn, sub.c.profit),
            aggregate.total(conn, sub.c.fees),
            sa.func.count(),
            aggregate.count_if(aggregate.positive(conn, sub.c.profit)),
        ).group_by(sub.c.bucket, sub.c.quote_asset)
    )
    buckets = [Bucket(start, stop) for start, stop in zip(starts, [end, *starts[:-1]], strict=True)]
    counts: dict[int, dict[str, int]] = {}
    for i, quote, total, fees, n_closed, wins in closed_rows:
        buckets[i].profit[quote] = total or ZERO
        buckets[i].fees[quote] = fees or ZERO
        c = counts.setdefault(i, {"closed": 0, "wins": 0})
        c["closed"] += n_closed
        c["wins"] += wins

    for i, b in enumerate(buckets):  # a COUNT per bucket reads only the index: (bot, time) or time
        where = [fills.c.time >= b.start, fills.c.time < b.end]
        if bot is not None:
            where.append(fills.c.bot == bot)
        counts.setdefault(i, {})["fills"] = conn.execute(
            sa.select(sa.func.count()).where(*where)
        ).scalar_one()
    return [replace(b, **counts.get(i, {})) for i, b in enumerate(buckets)]


def recent_periods(
    conn: sa.Connection, period: Period, n: int | None = None, *, bot: str | None = None
) -> tuple[list[Bucket], datetime | None]:
    """The last n buckets up to now; when no fill falls in them but older ones exist (the paper
    venue's market runs on its own clock, the demo's from 2024-01-01), the n buckets up to the
    newest fill instead, and that fill's time (None: the window ends now)."""
    buckets = by_period(conn, period, n, bot=bot)
    last = newest(conn, fills.c.time, bot)
    if last is None or last >= buckets[-1].start:
        return buckets, None
    return by_period(conn, period, n, bot=bot, now=last), last
