"""A small hand-built trading history for the ledger's readers: cycles closed on either side of
UTC day, week (Monday) and month boundaries, open cycles priced by a candle and by a fill, fills
paying fees in quote, base and a third asset, and an equity series with one drawdown.

NOW is Sunday 2026-12-06 12:00 UTC. The figures the tests expect are worked out by hand below.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import sqlalchemy as sa

from shared.ledger import schema
from shared.ledger.db import open_ledger, upgrade

D = Decimal
NOW = datetime(2026, 12, 6, 12, 0, tzinfo=UTC)  # a Sunday
MIDNIGHT = datetime(2026, 12, 6, tzinfo=UTC)
MONDAY = datetime(2026, 11, 30, tzinfo=UTC)
TICK = timedelta(microseconds=1)


def _cycle(
    bot: str, number: int, closed_at: datetime | None, profit: str | None, fees: str, **kw: object
) -> dict:
    venue_symbol = {"b1": ("BTCUSDT", "USDT"), "g1": ("ETHUSDT", "USDT"), "x1": ("ETHBTC", "BTC")}[bot]
    row: dict[str, object] = dict(
        bot=bot, number=number, venue="sim", symbol=venue_symbol[0], quote_asset=venue_symbol[1],
        opened_at=(closed_at or NOW) - timedelta(hours=5), closed_at=closed_at, buys=1, sells=1 if closed_at else 0,
        bought_qty=D("0.1"), sold_qty=D("0.1") if closed_at else D(0), spent=D("10"), received=D("11"),
        fees=D(fees), profit=None if profit is None else D(profit),
    )  # fmt: skip
    row.update(kw)
    return row


CYCLES = [
    _cycle("b1", 1, MONDAY, "1.5", "0.1"),  # exactly at the week's (and the daily window's) start
    _cycle("b1", 2, MONDAY - TICK, "-0.25", "0.05"),  # the Sunday before: last week
    _cycle("b1", 3, MIDNIGHT, "0.000000000000000001", "0.02"),  # today, a win by one unit in 10^18
    # open: 0.2 BTC held, cost 30 - 11 + 0.04 = 19.04; the newest candle says 105: 21 - 19.04 = 1.96
    _cycle("b1", 4, None, None, "0.04", bought_qty=D("0.3"), sold_qty=D("0.1"), spent=D(30), received=D(11)),
    _cycle("g1", 1, datetime(2026, 12, 1, 10, tzinfo=UTC), "2", "0.3"),
    _cycle("g1", 2, datetime(2026, 11, 1, tzinfo=UTC) - timedelta(seconds=1), "0.1", "0.01"),  # October
    _cycle(
        "g1", 3, datetime(2026, 12, 2, 8, tzinfo=UTC), "10", "0.5"
    ),  # '10' < '2' as text: MAX must not say 2
    # open in BTC, no candle: priced at its last fill, 0.035: 0.035 - (0.035 + 0.000035) = -0.000035
    _cycle("x1", 1, None, None, "0.000035", bought_qty=D(1), sold_qty=D(0), spent=D("0.035"), received=D(0)),
]


def _fill(
    n: int, bot: str, symbol: str, side: str, time: datetime, price: str, qty: str, **kw: object
) -> dict:
    row: dict[str, object] = dict(
        venue="sim", symbol=symbol, trade_id=f"t{n}", cid=f"{bot}-{n:06d}", cum_filled_qty=D(qty), bot=bot,
        side=side, price=D(price), qty=D(qty), quote_qty=D(price) * D(qty), fee=D("0.01"), fee_asset="USDT",
        fee_in_quote=D("0.01"), is_maker=False, time=time,
    )  # fmt: skip
    row.update(kw)
    return row


FILLS = [
    _fill(1, "b1", "BTCUSDT", "BUY", MIDNIGHT, "100", "0.1"),  # today
    _fill(2, "b1", "BTCUSDT", "SELL", MIDNIGHT - TICK, "110", "0.1"),  # yesterday
    _fill(3, "g1", "ETHUSDT", "BUY", datetime(2026, 12, 1, 9, tzinfo=UTC), "3000", "0.01"),
    # a fee in the base asset, not converted by whoever wrote it: 0.001 ETH at 0.035 = 0.000035 BTC
    _fill(
        4,
        "x1",
        "ETHBTC",
        "BUY",
        datetime(2026, 12, 3, tzinfo=UTC),
        "0.035",
        "1",
        fee=D("0.001"),
        fee_asset="ETH",
        fee_in_quote=None,
        trade_id=None,
    ),  # fmt: skip
    _fill(
        5,
        "b1",
        "BTCUSDT",
        "BUY",
        datetime(2026, 11, 2, tzinfo=UTC),
        "90",
        "0.2",
        fee=D("0.0001"),
        fee_asset="BNB",
        fee_in_quote=None,
    ),  # fmt: skip  a fee in BNB: no price for it
]

CANDLES = [
    # the 1h candle closed earlier than the 1m one: the 1m close (105) is the last price
    dict(
        interval="1h", open_time=NOW - timedelta(hours=2), close_time=NOW - timedelta(hours=1), close=D(104)
    ),
    dict(
        interval="1m",
        open_time=NOW - timedelta(minutes=2),
        close_time=NOW - timedelta(minutes=1),
        close=D(105),
    ),
    dict(
        interval="1m",
        open_time=NOW - timedelta(minutes=3),
        close_time=NOW - timedelta(minutes=2),
        close=D(99),
    ),
]

# equity: up to 1100, down to 990 (a fall of 110, 10% of the high), back to 1050, each value
# leaving out the ETH held (no price known); before that, one value without BTC's price either
EQUITY = [
    (datetime(2026, 12, 4, 9, tzinfo=UTC), "100", "BTC ETH"),
    (datetime(2026, 12, 4, 10, tzinfo=UTC), "1000", "ETH"),
    (datetime(2026, 12, 4, 11, tzinfo=UTC), "1100", "ETH"),
    (datetime(2026, 12, 5, 10, tzinfo=UTC), "990", "ETH"),
    (datetime(2026, 12, 6, 10, tzinfo=UTC), "1050", "ETH"),
]


def seed(engine: sa.Engine) -> None:
    """Write the history above into a migrated ledger."""
    with engine.begin() as conn:
        conn.execute(schema.cycles.insert(), CYCLES)
        conn.execute(schema.fills.insert(), FILLS)
        for c in CANDLES:
            prices = {k: c["close"] for k in ("open", "high", "low", "close")}
            conn.execute(
                schema.candles.insert().values(venue="sim", symbol="BTCUSDT", volume=D(1), **{**c, **prices})
            )
        conn.execute(
            schema.equity.insert(),
            [dict(venue="sim", quote_asset="USDT", at=at, value=D(v), unvalued=u) for at, v, u in EQUITY],
        )


def seeded(url: str) -> None:
    """A ledger at url, migrated and holding the history above."""
    engine = open_ledger(url, source="test")
    try:
        upgrade(engine)
        seed(engine)
    finally:
        engine.dispose()
