"""The fractal trailing stop over real candles (BTCUSDT 1m, March 2023) in the backtester: 4h bars
built from 1-minute candles, the stop only ever moving up, one sell order at a time, and the
stop's fill closing the position with the result reported against the entry."""

from __future__ import annotations

from decimal import Decimal as D
from typing import Any

import pytest

from backtest.engine import Setup, run_backtest
from backtest.series import CandleSeries, parse_time
from shared.messages import OrderType, PlaceOrder, Side
from shared.strategy.testing import BTC_FILTERS
from strategies.fractal_trailing import FractalPhase, FractalTrailingStrategy
from strategies.fractals import stop_hit_index, trailing_stops
from tests.helpers.sample_data import SAMPLE_CANDLES

DATA = SAMPLE_CANDLES  # optional, beside the clone: tests/helpers/sample_data.py
FOUR_HOURS = 4 * 3_600_000


class Recording(FractalTrailingStrategy):
    """The strategy as it is, plus a log of its orders and of how many sells it had out at once."""

    def __init__(self) -> None:
        self.placed: list[PlaceOrder] = []
        self.most_sells_out = 0

    def step(self, params: Any, state: Any, event: Any, ctx: Any) -> Any:
        state, cmds = super().step(params, state, event, ctx)
        self.placed.extend(c for c in cmds if isinstance(c, PlaceOrder))
        sells = sum(1 for r in state.orders.values() if r.side == Side.SELL)
        self.most_sells_out = max(self.most_sells_out, sells)
        return state, cmds


@pytest.fixture(scope="module")
def series() -> CandleSeries:
    if not DATA.exists():
        pytest.skip(f"{DATA} not found")
    return CandleSeries.from_csv(DATA).between(parse_time("2023-03-10"), None)


def setup_for(strategy: FractalTrailingStrategy, params: Any) -> Setup:
    return Setup(strategy=strategy, params=params, filters=BTC_FILTERS, capital=D(0), base=D("0.5"))


def four_hour_bars(series: CandleSeries) -> tuple[list[D], list[D]]:
    """Lows and closes of the 4h bars, grouped here independently of the strategy's tracker."""
    lows: dict[int, D] = {}
    closes: dict[int, D] = {}
    for i in range(len(series)):
        k = int(series.open_time[i]) // FOUR_HOURS
        low = series.price(series.low[i])
        lows[k] = min(lows.get(k, low), low)
        closes[k] = series.price(series.close[i])
    keys = sorted(lows)
    return [lows[k] for k in keys], [closes[k] for k in keys]


def test_trailing_stop_over_march_2023(series):
    strategy = Recording()
    params = strategy.parse_params({"entry": 20000, "quantity": "0.5", "pad": 20})  # interval 4h, 14 days
    r = run_backtest(setup_for(strategy, params), series)

    stops = [c for c in strategy.placed if c.order_type == OrderType.STOP_LOSS_LIMIT]
    levels = [c.stop_price for c in stops]
    assert len(stops) >= 4 and levels == sorted(levels)  # the stop never moves down
    assert all(c.price == c.stop_price - 20 and c.quantity == D("0.5") for c in stops)
    assert strategy.most_sells_out == 1  # a replacement only once the old order is gone

    # the same stops as the rule read literally over every fractal of the 14-day window
    lows, closes = four_hour_bars(series)
    oracle = trailing_stops(lows, closes, entry=D(20000), lookback=14 * 6)
    hit = stop_hit_index(lows, oracle)
    assert hit is not None
    moves = [s for i, s in enumerate(oracle[:hit]) if s is not None and (i == 0 or oracle[i - 1] != s)]
    assert levels == moves

    # the stop order's fill closes the position: one sale, of everything, at the last stop's limit
    (fill,) = r.fills
    assert (fill.cid, fill.side, fill.qty, fill.price) == (stops[-1].cid, "SELL", D("0.5"), stops[-1].price)
    assert int(series.open_time[fill.index]) // FOUR_HOURS - int(series.open_time[0]) // FOUR_HOURS == hit
    assert r.state.phase == FractalPhase.DONE and r.state.position.base == 0 and r.state.orders == {}
    assert r.final_base == 0
    (closed,) = [n for n in r.notifications if n.kind == "position_closed"]
    profit = fill.quote - fill.fee - D(20000) * D("0.5")
    assert D(closed.data["profit"]) == profit == r.state.position.realised and profit > 0
    # nothing happens after it: the rest of the month is skipped by the fast path, which gives
    # the very same fills and orders as handing every candle to the strategy
    assert r.processed < len(series)
    reference = Recording()
    plain = run_backtest(setup_for(reference, params), series, fast=False)
    assert plain.processed == len(series)
    assert [(f.index, f.tick, f.cid, f.price, f.qty) for f in plain.fills] == [
        (f.index, f.tick, f.cid, f.price, f.qty) for f in r.fills
    ]
    assert reference.placed == strategy.placed
