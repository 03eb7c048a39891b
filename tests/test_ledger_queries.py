"""The ledger's readers on SQLite and a real PostgreSQL, over the hand-built history of
tests/helpers/ledger_data.py: exact Decimal results, UTC bucket boundaries (midnight, Monday,
the 1st), win rate, unrealised profit and where its price came from, equity drawdown."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from decimal import Decimal

import pytest
import sqlalchemy as sa

from shared.ledger import profit, queries
from shared.ledger.db import open_ledger, upgrade
from tests.helpers.ledger_data import MIDNIGHT, MONDAY, NOW, seed

D = Decimal


@pytest.fixture
def conn(ledger_url: str) -> Iterator[sa.Connection]:
    engine = open_ledger(ledger_url, source="test")
    upgrade(engine)
    seed(engine)
    try:
        with engine.connect() as connection:
            yield connection
    finally:
        engine.dispose()


def test_profit_per_bot_and_in_total(conn: sa.Connection) -> None:
    rows = {p.bot: p for p in profit.profit(conn)}
    b1, g1, x1 = rows["b1"], rows["g1"], rows["x1"]
    assert b1.realised == D("1.250000000000000001") and b1.fees == D("0.21")
    assert (b1.closed, b1.wins, b1.best, b1.worst) == (3, 2, D("1.5"), D("-0.25"))
    assert b1.win_rate == D(2) / 3 and b1.fills == 3
    [open_b1] = b1.open
    assert (open_b1.qty, open_b1.cost) == (D("0.2"), D("19.04"))
    assert open_b1.last is not None and open_b1.last.source == "candle 1m" and open_b1.last.price == D(105)
    assert b1.unrealised == D("1.96")
    assert (g1.realised, g1.best, g1.worst, g1.win_rate) == (D("12.1"), D(10), D("0.1"), D(1))
    assert g1.unrealised == 0 and g1.open == []
    assert x1.quote_asset == "BTC" and x1.closed == 0 and x1.win_rate is None and x1.best is None
    assert x1.open[0].last is not None and x1.open[0].last.source == "last fill"
    assert x1.unrealised == D("-0.000035")

    btc, usdt = profit.totals(list(rows.values()))
    assert (usdt.quote_asset, usdt.realised, usdt.fees) == ("USDT", D("13.350000000000000001"), D("1.02"))
    assert (usdt.closed, usdt.wins, usdt.best, usdt.worst, usdt.unrealised) == (
        6,
        5,
        D(10),
        D("-0.25"),
        D("1.96"),
    )
    assert (btc.quote_asset, btc.unrealised) == ("BTC", D("-0.000035"))

    assert [(p.bot, p.quote_asset) for p in profit.with_totals(list(rows.values()))] == [
        ("b1", "USDT"),
        ("g1", "USDT"),
        ("x1", "BTC"),
        ("total", "USDT"),
    ]  # fmt: skip  x1 alone in BTC: its total would repeat it
    [only] = profit.profit(conn, bot="g1")
    assert only.bot == "g1" and only.fills == 1
    assert profit.profit(conn, bot="nobody") == []


def test_daily_buckets_split_at_utc_midnight(conn: sa.Connection) -> None:
    days = profit.by_period(conn, "daily", now=NOW)
    assert [b.start for b in days] == [datetime(2026, 12, d, tzinfo=UTC) for d in (6, 5, 4, 3, 2, 1)] + [
        MONDAY
    ]
    assert days[0].end == datetime(2026, 12, 7, tzinfo=UTC)
    today, yesterday = days[0], days[1]
    assert (today.profit, today.fees, today.closed, today.wins, today.fills) == (
        {"USDT": D("0.000000000000000001")}, {"USDT": D("0.02")}, 1, 1, 1,
    )  # fmt: skip
    assert (yesterday.closed, yesterday.fills, yesterday.profit) == (0, 1, {})  # 23:59:59.999999
    assert [(b.profit, b.closed) for b in days[3:]] == [
        ({}, 0),
        ({"USDT": D(10)}, 1),
        ({"USDT": D(2)}, 1),
        ({"USDT": D("1.5")}, 1),
    ]
    assert days[3].fills == 1  # the ETHBTC fill at 2026-12-03 00:00
    # b1's -0.25 closed a microsecond before Monday, out of the window
    assert sum(b.profit.get("USDT", 0) for b in days) == D("13.500000000000000001")

    [today_g1] = profit.by_period(conn, "daily", 1, bot="g1", now=NOW)
    assert (today_g1.closed, today_g1.fills) == (0, 0)


def test_weekly_buckets_start_on_monday_and_monthly_on_the_first(conn: sa.Connection) -> None:
    this_week, last_week = profit.by_period(conn, "weekly", 2, now=NOW)
    assert (this_week.start, last_week.start) == (MONDAY, datetime(2026, 11, 23, tzinfo=UTC))
    assert (this_week.profit["USDT"], this_week.closed, this_week.wins) == (D("13.500000000000000001"), 4, 4)
    assert (last_week.profit, last_week.fees) == ({"USDT": D("-0.25")}, {"USDT": D("0.05")})
    assert (last_week.closed, last_week.wins) == (1, 0)

    dec, nov, oct_ = profit.by_period(conn, "monthly", 3, now=NOW)
    assert [m.start.month for m in (dec, nov, oct_)] == [12, 11, 10] and dec.end == datetime(
        2027, 1, 1, tzinfo=UTC
    )
    assert [m.profit["USDT"] for m in (dec, nov, oct_)] == [D("12.000000000000000001"), D("1.25"), D("0.1")]
    assert (dec.fills, nov.fills, oct_.fills) == (4, 1, 0)
    jan = profit.bucket_starts("monthly", 2, datetime(2027, 1, 15, tzinfo=UTC))
    assert jan == [datetime(2027, 1, 1, tzinfo=UTC), datetime(2026, 12, 1, tzinfo=UTC)]


def test_trades_newest_first_with_filters(conn: sa.Connection) -> None:
    newest = queries.trades(conn, limit=2)
    assert [t.cid for t in newest] == ["b1-000001", "b1-000002"]
    assert newest[0].time == MIDNIGHT and newest[0].quote_qty == D("10.0")
    assert [t.cid for t in queries.trades(conn, bot="b1", since=MONDAY)] == ["b1-000001", "b1-000002"]
    assert [t.cid for t in queries.trades(conn, symbol="ETHBTC")] == ["x1-000004"]
    assert [t.cid for t in queries.trades(conn, until=MONDAY)] == ["b1-000005"]
    assert queries.trades(conn, bot="nobody") == []


def test_export_rows_are_oldest_first_with_fees_in_quote(conn: sa.Connection) -> None:
    rows = list(queries.all_trades(conn))
    assert [t.cid for t in rows] == ["b1-000005", "g1-000003", "x1-000004", "b1-000002", "b1-000001"]
    quotes = queries.quote_assets(conn)
    fees = {t.cid: queries.fee_in_quote(t, quotes.get((t.venue, t.symbol))) for t in rows}
    assert fees["x1-000004"] == D("0.000035")  # paid in the base asset, valued at the fill's price
    assert fees["b1-000005"] is None  # paid in BNB: nothing to value it with
    assert fees["b1-000001"] == D("0.01")
    assert [t.cid for t in queries.all_trades(conn, bot="b1", since=MONDAY, until=MIDNIGHT)] == ["b1-000002"]


def test_equity_extremes_and_drawdown(conn: sa.Connection) -> None:
    [eq] = queries.equity_history(conn)
    assert (eq.venue, eq.quote_asset, eq.points) == ("sim", "USDT", 4)
    assert (eq.first.value, eq.last.value, eq.change) == (D(1000), D(1050), D(50))
    assert (eq.low.value, eq.high.value, eq.drawdown, eq.drawdown_pct) == (D(990), D(1100), D(110), D(10))
    assert [p.value for p in eq.daily] == [D(1100), D(990), D(1050)]
    assert (eq.unvalued, eq.dropped) == (["ETH"], 1)  # the value before BTC's price: not comparable
    assert queries.equity_history(conn, venue="other") == []
    [recent] = queries.equity_history(conn, since=datetime(2026, 12, 5, tzinfo=UTC))
    assert (recent.points, recent.drawdown, recent.drawdown_pct) == (2, D(0), None)


def test_a_bot_in_two_quote_assets_has_a_row_for_each(conn: sa.Connection) -> None:
    from shared.ledger import schema
    from tests.helpers.ledger_data import CYCLES

    moved = {**CYCLES[0], "number": 9, "symbol": "BTCUSDC", "quote_asset": "USDC", "profit": D("0.5")}
    conn.execute(schema.cycles.insert().values(**moved))
    conn.commit()
    b1 = [(p.quote_asset, p.realised, p.fills) for p in profit.profit(conn, bot="b1")]
    assert b1 == [("USDC", D("0.5"), 3), ("USDT", D("1.250000000000000001"), 0)]
