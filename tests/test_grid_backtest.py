"""The grid over real candles (BTCUSDT 1m, March 2023: 23.1k, down to 19.6k, up to 28.4k) in the
backtester. Invariants checked from the fills alone: every sell sits one level above the buy
that bought its base (or sells base of the opening buy), each interval alternates buy / sell,
and the realised profit the bot reports is the sum of its round trips, recomputed here."""

from __future__ import annotations

from decimal import Decimal as D

import pytest

from backtest.engine import RunResult, Setup, run_backtest
from backtest.series import CandleSeries
from shared.messages import Side
from shared.strategy.testing import BTC_FILTERS
from strategies.grid import GridStrategy
from strategies.grid_state import GridEnd, GridPhase
from tests.helpers.sample_data import SAMPLE_CANDLES

DATA = SAMPLE_CANDLES  # optional, beside the clone: tests/helpers/sample_data.py


@pytest.fixture(scope="module")
def series() -> CandleSeries:
    if not DATA.exists():
        pytest.skip(f"{DATA} not found")
    return CandleSeries.from_csv(DATA)


def run(series: CandleSeries, fast: bool = True, **params) -> RunResult:
    s = GridStrategy()
    p = s.parse_params(params)
    return run_backtest(
        Setup(strategy=s, params=p, filters=BTC_FILTERS, capital=D(20000), fee_rate=p.fee), series, fast=fast
    )


def round_trips(r: RunResult) -> list[D]:
    """Each sell's profit, pairing it with its buy from the fills alone."""
    prices = r.state.prices
    lots: dict[int, tuple[D, D]] = {}  # interval -> (qty, cost) of the lot a level buy bought
    unit = None  # cost per base of the opening buy
    history: dict[int, list[str]] = {}
    profits = []
    for f in r.fills:
        if f.tag == "init":
            unit = (f.quote + f.fee) / f.qty
            continue
        if f.tag == "exit":  # the stop-loss sale: not a round trip
            continue
        level = int(f.tag[1:])
        assert f.price == prices[level], f"{f.tag} filled at {f.price}, its level is {prices[level]}"
        if f.side == Side.BUY:
            history.setdefault(level, []).append("b")
            lots[level] = (f.qty, f.quote + f.fee)
            continue
        j = level - 1  # a sell at level j+1 sells what interval j bought at level j (one level down)
        history.setdefault(j, []).append("s")
        if j in lots:
            qty, cost = lots.pop(j)
            assert qty == f.qty
        else:  # base from the opening buy: only the first sell of an interval that started selling
            assert history[j] == ["s"] and unit is not None
            cost = f.qty * unit
        profits.append(f.quote - f.fee - cost)
    for seq in history.values():  # one order per interval: buys and sells alternate
        assert all(a != b for a, b in zip(seq, seq[1:], strict=False)), seq
    return profits


def test_grid_over_march_2023(series):
    params = {
        "lower": 20000,
        "upper": 28000,
        "levels": 21,
        "spacing": "geometric",
        "quote_per_level": 300,
        "stop_loss": 19000,
        "take_profit": 29000,
        # without fees each sell sells exactly what its buy bought, which round_trips() checks (the
        # venue takes a buy's fee in the base bought, topped up from spare base: test_grid_rules.py)
        "fee": "0",
    }
    r = run(series, **params)
    assert not r.rejected and r.state.phase == "active"
    profits = round_trips(r)
    assert len(profits) == r.state.round_trips >= 30
    assert sum(profits) == r.state.profit_total > 0
    notes = [n for n in r.notifications if n.kind == "round_trip"]
    assert len(notes) == len(profits) and sum(D(n.data["profit"]) for n in notes) == r.state.profit_total
    assert all(p > 0 for p in profits)  # 1.7 % between geometric levels
    # the fast path (only stop-loss / take-profit candles and order triggers) gives the very same fills
    plain = run(series, fast=False, **params)
    assert [(f.index, f.tick, f.cid, f.price, f.qty) for f in plain.fills] == [
        (f.index, f.tick, f.cid, f.price, f.qty) for f in r.fills
    ]
    assert r.processed < len(series) // 100 < plain.processed


def test_stop_loss_on_the_march_10_drop(series):
    r = run(series, lower=21000, upper=25000, levels=11, quote_per_level=200, stop_loss=20500, fee="0")
    exit_ = r.fills[-1]
    assert exit_.tag == "exit" and exit_.side == Side.SELL and exit_.order_type == "MARKET"
    assert [f.tag for f in r.fills].count("exit") == 1
    assert r.state.phase == GridPhase.ENDED and r.state.ended is GridEnd.STOP_LOSS and r.state.orders == {}
    assert r.state.position.base == 0 and r.final_base == 0  # everything it held was sold
    low = min(series.price(series.low[i]) for i in range(exit_.index))
    assert low <= 20500 < min(series.price(series.low[i]) for i in range(exit_.index - 1))
    assert sum(round_trips(r)) == r.state.profit_total
