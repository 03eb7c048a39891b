"""The fast path (skipping quiet candles) gives exactly the fills, state, balances and
notifications of the plain candle-by-candle path: on the real March 2023 data, on random
data with random DCA params, and for a strategy that uses timers and its own wake levels."""

from __future__ import annotations

from decimal import Decimal as D

import msgspec
import numpy as np
import pytest

from backtest.engine import RunResult, Setup, run_backtest
from backtest.report import build_report
from backtest.series import CandleSeries, synthetic
from shared.messages import Side
from shared.strategy import Strategy, StrategyState, Wake, encode_state, market_order, set_timer
from shared.strategy.testing import BTC_FILTERS
from strategies.dca import DcaStrategy
from tests.helpers.sample_data import SAMPLE_CANDLES

DATA = SAMPLE_CANDLES  # optional, beside the clone: tests/helpers/sample_data.py
needs_data = pytest.mark.skipif(not DATA.exists(), reason=f"{DATA} not present")


def both_paths(setup: Setup, series: CandleSeries) -> tuple[RunResult, RunResult]:
    return run_backtest(setup, series, fast=False), run_backtest(setup, series, fast=True)


def assert_same(plain: RunResult, fast: RunResult) -> None:
    assert fast.fills == plain.fills
    assert encode_state(fast.state) == encode_state(plain.state)
    assert (fast.final_base, fast.final_quote) == (plain.final_base, plain.final_quote)
    assert fast.max_committed == plain.max_committed
    assert fast.notifications == plain.notifications
    assert fast.orders_placed == plain.orders_placed and fast.rejected == plain.rejected
    skip = {"elapsed_s", "path", "candles_processed"}
    rp, rf = build_report(plain), build_report(fast)
    assert {k: v for k, v in rf.items() if k not in skip} == {k: v for k, v in rp.items() if k not in skip}


@pytest.fixture(scope="module")
def march() -> CandleSeries:
    return CandleSeries.from_csv(DATA)


@needs_data
@pytest.mark.parametrize(
    "params",
    [
        {},
        {"step": "0.004", "take_profit": "0.006", "take_profit_min": "0.003", "order_size_multiplier": "1.3"},
        {"budget": "0", "max_safety_orders": 40, "step_multiplier": "1.1", "reinvest_profit": "n"},
    ],
)
def test_fast_path_equals_plain_path_on_real_data(march, params):
    strategy = DcaStrategy()
    p = strategy.parse_params(params)
    setup = Setup(
        strategy=strategy,
        params=p,
        filters=BTC_FILTERS,
        capital=D(10000),
        fee_rate=p.fee,
    )
    plain, fast = both_paths(setup, march)
    assert len(plain.fills) > 20  # the run does something worth comparing
    assert_same(plain, fast)
    assert plain.processed == len(march) and fast.processed < len(march) // 10  # it really skips


@pytest.mark.parametrize("seed", range(8))
def test_fast_path_equals_plain_path_on_random_data(seed):
    rng = np.random.default_rng(seed)
    series = synthetic(
        3000, seed=seed, vol=float(rng.uniform(0.001, 0.005)), start_price=float(rng.uniform(50, 5e4))
    )
    strategy = DcaStrategy()
    lo = rng.uniform(0.002, 0.01)
    params = {
        "base_order_quote": f"{rng.uniform(20, 400):.2f}",
        "order_size_multiplier": f"{rng.uniform(0.8, 1.4):.3f}",
        "take_profit": f"{rng.uniform(0.003, 0.03):.4f}",
        "take_profit_multiplier": f"{rng.uniform(0.8, 1.2):.3f}",
        "take_profit_min": "0.002",
        "step": f"{lo:.4f}",
        "step_multiplier": f"{rng.uniform(0.9, 1.3):.3f}",
        "step_min": "0.001",
        "max_safety_orders": int(rng.integers(0, 25)),
        "budget": str(int(rng.choice([0, 1000, 3000]))),
        "reinvest_profit": bool(rng.integers(0, 2)),
        "fee": str(rng.choice(["0", "0.001", "0.00075"])),
    }
    if params["budget"] != "0" and D(params["budget"]) < D(params["base_order_quote"]):
        params["budget"] = "0"
    p = strategy.parse_params(params)
    setup = Setup(
        strategy=strategy,
        params=p,
        filters=BTC_FILTERS,
        capital=D(5000),
        fee_rate=p.fee,
    )
    plain, fast = both_paths(setup, series)
    assert plain.fills, params
    assert_same(plain, fast)


class DipState(StrategyState, frozen=True, kw_only=True):
    level: D = D(0)  # buy when a candle's low reaches it
    holding: bool = False


class DipParams(msgspec.Struct, frozen=True):
    drop: D = D("0.01")
    hold_ms: int = 45 * 60_000


class DipBuyer(Strategy[DipParams, DipState]):
    """Buys at market when a candle's low falls 1 % under the last reference close, sells 45
    minutes later on a timer. It needs only the candles that reach its level: Wake.below."""

    name = "dip"
    params_type = DipParams
    state_type = DipState
    history_size = 1

    def on_candle(self, params, state, candle, ctx):
        if state.holding:
            return state, []
        if state.level == 0:
            return msgspec.structs.replace(state, level=candle.close * (1 - params.drop)), []
        if candle.low > state.level:
            return state, []
        state, buy = market_order(state, ctx, Side.BUY, quote=D(100), tag="dip")
        state, timer = set_timer(state, "exit", candle.close_time + params.hold_ms)
        return msgspec.structs.replace(state, holding=True), [buy, timer]

    def on_timer(self, params, state, timer, ctx):
        state, sell = market_order(state, ctx, Side.SELL, qty=state.position.base, tag="exit", ref_price=None)
        level = (ctx.last_price or D(0)) * (1 - params.drop)
        return msgspec.structs.replace(state, holding=False, level=level), [c for c in [sell] if c]

    def wake(self, params, state):
        if state.level == 0:
            return Wake()
        return Wake(every_candle=False, below=None if state.holding else state.level)


@pytest.mark.parametrize("seed", [1, 2, 4])
def test_fast_path_equals_plain_path_with_timers_and_wake_levels(seed):
    series = synthetic(4000, seed=100 + seed, vol=0.003)
    setup = Setup(strategy=DipBuyer(), params=DipParams(), filters=BTC_FILTERS, capital=D(10000))
    plain, fast = both_paths(setup, series)
    assert len([f for f in plain.fills if f.tag == "exit"]) >= 3  # timers fired and sold
    assert_same(plain, fast)
    assert fast.processed < plain.processed
