"""Reading the ledger: fills (newest first, or all of them oldest first for an export) and the
account's equity over time. Profit is in shared/ledger/profit.py.

Every filter is in SQL on an indexed column (fills by (bot, time) or time; equity by venue), so a
reader costs what it shows, not what the ledger holds. Money comes back as exact Decimals.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import sqlalchemy as sa

from shared.ledger.rows import Trade as Trade  # the readers return it from here too
from shared.ledger.schema import cycles, equity, fills

CONNECT_TIMEOUT_ENV = "PGCONNECT_TIMEOUT"  # libpq's, which psycopg honours
CONNECT_TIMEOUT_S = "10"


def bound_connect_time() -> None:
    """A reader asking a PostgreSQL host that does not answer gets an error in seconds, not after
    the system's TCP timeout (minutes); PGCONNECT_TIMEOUT set by the user wins."""
    os.environ.setdefault(CONNECT_TIMEOUT_ENV, CONNECT_TIMEOUT_S)


def _select_trades(
    bot: str | None, symbol: str | None, since: datetime | None, until: datetime | None
) -> sa.Select:
    cols = [fills.c.time, fills.c.venue, fills.c.symbol, fills.c.bot, fills.c.side, fills.c.price]
    cols += [fills.c.qty, fills.c.quote_qty, fills.c.fee, fills.c.fee_asset, fills.c.fee_in_quote]
    cols += [fills.c.is_maker, fills.c.cid, fills.c.trade_id]
    query = sa.select(*cols)
    if bot is not None:
        query = query.where(fills.c.bot == bot)
    if symbol is not None:
        query = query.where(fills.c.symbol == symbol)
    if since is not None:
        query = query.where(fills.c.time >= since)
    if until is not None:
        query = query.where(fills.c.time < until)
    return query


def trades(
    conn: sa.Connection,
    *,
    bot: str | None = None,
    symbol: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    limit: int = 100,
) -> list[Trade]:
    """Fills matching the filters, newest first, at most `limit`."""
    query = _select_trades(bot, symbol, since, until)
    query = query.order_by(fills.c.time.desc(), fills.c.id.desc()).limit(limit)
    return [Trade(*row) for row in conn.execute(query)]


def all_trades(
    conn: sa.Connection,
    *,
    bot: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
) -> Iterator[Trade]:
    """Every fill matching the filters, oldest first, streamed (an export of years of fills
    never holds them all in memory)."""
    query = _select_trades(bot, None, since, until).order_by(fills.c.time, fills.c.id)
    result = conn.execution_options(yield_per=2000).execute(query)
    for row in result:
        yield Trade(*row)


def quote_assets(conn: sa.Connection) -> dict[tuple[str, str], str]:
    """The quote asset of each (venue, symbol) the bots' cycles name."""
    query = sa.select(cycles.c.venue, cycles.c.symbol, cycles.c.quote_asset).distinct()
    return {(venue, symbol): quote for venue, symbol, quote in conn.execute(query)}


def fee_in_quote(trade: Trade, quote_asset: str | None) -> Decimal | None:
    """The fill's fee in its quote asset: as recorded; else the fee itself when paid in the quote
    asset, the fee at the fill's price when paid in the base asset; None when it cannot be told
    (a fee in a third asset, such as BNB, with no price for it)."""
    if trade.fee_in_quote is not None:
        return trade.fee_in_quote
    if trade.fee == 0:
        return Decimal(0)
    quote = quote_asset or (trade.fee_asset if trade.symbol.endswith(trade.fee_asset) else None)
    if quote is not None and trade.fee_asset == quote:
        return trade.fee
    if quote is not None and trade.symbol == trade.fee_asset + quote:
        return trade.fee * trade.price
    return None


@dataclass(frozen=True)
class EquityPoint:
    at: datetime
    value: Decimal
    unvalued: tuple[str, ...] = ()  # assets left out of value: no price known for them then


@dataclass(frozen=True)
class Equity:
    """One account's value in its quote asset over time, with its extremes and worst drawdown
    (the largest fall from a high to a later low)."""

    venue: str
    quote_asset: str
    first: EquityPoint
    last: EquityPoint
    low: EquityPoint
    high: EquityPoint
    drawdown: Decimal  # quote units, >= 0
    drawdown_pct: Decimal | None  # of the high it fell from; None when that high was not > 0
    points: int
    daily: list[EquityPoint]  # the last value of each UTC day, oldest first
    unvalued: list[str]  # assets left out of every value (no price known): the values are of the rest
    dropped: int  # earlier points that left out other assets (before a price was known): not shown

    @property
    def change(self) -> Decimal:
        return self.last.value - self.first.value


def equity_history(
    conn: sa.Connection, *, venue: str | None = None, since: datetime | None = None
) -> list[Equity]:
    """Each (venue, quote asset)'s equity series, summed up; empty when the table holds none.

    A value leaves out the assets the ledger had no price for then, so values leaving out
    different assets do not compare (the day BTC's first price is known, equity seems to jump
    by the BTC held): the series is of the points that leave out the same assets as the newest
    one, and says how many earlier ones it drops."""
    query = sa.select(equity.c.venue, equity.c.quote_asset, equity.c.at, equity.c.value, equity.c.unvalued)
    if venue is not None:
        query = query.where(equity.c.venue == venue)
    if since is not None:
        query = query.where(equity.c.at >= since)
    query = query.order_by(equity.c.venue, equity.c.quote_asset, equity.c.at)
    series: dict[tuple[str, str], list[EquityPoint]] = {}
    for v, quote, at, value, unvalued in conn.execute(query):
        series.setdefault((v, quote), []).append(EquityPoint(at, value, tuple(unvalued.split())))
    return [_summary(v, quote, points) for (v, quote), points in series.items()]


EQUITY_DAYS = 30  # `automata equity` and the dashboard's equity: the last 30 UTC days by default


@dataclass(frozen=True)
class EquityWindow:
    series: list[Equity]
    start: datetime  # the window's first moment
    newest: datetime | None  # set when nothing was in the last n days: the window ends there instead


def equity_window(
    conn: sa.Connection, *, venue: str | None = None, since: datetime | None = None, n: int = EQUITY_DAYS
) -> EquityWindow:
    """The equity `automata equity` shows: from `since`, else the last n UTC days up to now, else
    (nothing in them) the n days up to the newest value. One window for the CLI and the
    dashboard: a ledger holding values on two clocks (written before the ledger timed every
    point by the order gateway's clock: the paper venue's market time, from 2024-01-01, and the
    wall clock of the balance snapshots) gives both the same series."""
    today = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    start = since or today - timedelta(days=n - 1)
    series = equity_history(conn, venue=venue, since=start)
    last = None
    if not series and not since:
        newest_at = sa.select(sa.func.max(equity.c.at))
        last = conn.execute(newest_at if venue is None else newest_at.where(equity.c.venue == venue)).scalar()
    if last is not None:
        start = last.replace(hour=0, minute=0, second=0, microsecond=0) - timedelta(days=n - 1)
        series = equity_history(conn, venue=venue, since=start)
    return EquityWindow(series, start, last)


def _summary(venue: str, quote: str, every: list[EquityPoint]) -> Equity:
    points = [p for p in every if p.unvalued == every[-1].unvalued]
    peak = low = high = points[0]
    drawdown, drawdown_pct = Decimal(0), None
    daily: dict[object, EquityPoint] = {}
    for point in points:
        if point.value > peak.value:
            peak = point
        fall = peak.value - point.value
        if fall > drawdown:
            drawdown = fall
            drawdown_pct = fall / peak.value * 100 if peak.value > 0 else None
        low = point if point.value < low.value else low
        high = point if point.value > high.value else high
        daily[point.at.date()] = point
    return Equity(
        venue,
        quote,
        points[0],
        points[-1],
        low,
        high,
        drawdown,
        drawdown_pct,
        len(points),
        list(daily.values()),
        list(points[-1].unvalued),
        len(every) - len(points),
    )


def newest(conn: sa.Connection, column: sa.Column, bot: str | None = None) -> datetime | None:
    """The newest time in `column` (fills.c.time, equity.c.at, ...), or None for an empty table.

    The readers' windows end now; a ledger whose newest record is older than the window (the
    paper venue's market runs on its own clock, e.g. from 2024-01-01) is shown up to that record
    instead of as empty periods."""
    query = sa.select(sa.func.max(column))
    if bot is not None and "bot" in column.table.c:
        query = query.where(column.table.c.bot == bot)
    return conn.execute(query).scalar()
