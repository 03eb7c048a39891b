"""A long backtest keeps a bounded history of its orders (backtest/sim.py `_forget`, the engine's
`_forget_closed` without keep_record): a year of a 40-level grid kept every one of its 7,187
orders twice (the engine's and the backtester's records), about a third of its memory. The
ended ones are dropped once they pile up; their client order ids stay used."""

from __future__ import annotations

from decimal import Decimal

from backtest.engine import Backtester, Setup
from backtest.series import synthetic
from shared.matching.engine import FORGET_AFTER
from shared.messages import OrderStatus, OrderType, PlaceOrder, Side
from shared.strategy.testing import BTC_FILTERS
from strategies.grid import GridStrategy


def test_a_long_backtest_drops_ended_orders_and_still_refuses_their_ids() -> None:
    series = synthetic(300_000, seed=2024)
    first = series.price(int(series.close[0]))
    strategy = GridStrategy()
    params = strategy.parse_params(
        {
            "lower": str(round(first * Decimal("0.9"))),
            "upper": str(round(first * Decimal("1.1"))),
            "levels": 40,
        }
    )
    run = Backtester(
        Setup(strategy=strategy, params=params, filters=BTC_FILTERS, capital=Decimal(100_000)), series
    )
    result = run.run()
    venue = run.venue
    assert result.orders_placed > 3 * FORGET_AFTER and len(result.fills) > 2 * FORGET_AFTER
    kept = len(venue.engine.orders("backtest"))
    assert kept <= FORGET_AFTER + 2 * len(run.state.orders) + 64 < result.orders_placed / 2
    assert len(venue.records) < result.orders_placed / 2
    assert {r.cid for r in venue.records.values() if not r.terminal} == set(run.state.orders)
    used = result.fills[0].cid  # long forgotten: still refused, as a venue refuses a used id
    again = PlaceOrder(cid=used, bot="backtest", venue="sim", symbol="BTCUSDT", side=Side.BUY,
                       order_type=OrderType.LIMIT, quantity=Decimal("0.001"), price=first)  # fmt: skip
    [refused] = venue.place(again, int(series.open_time[-1]))
    assert refused.status is OrderStatus.REJECTED and "DUPLICATE_ORDER" in refused.reason
