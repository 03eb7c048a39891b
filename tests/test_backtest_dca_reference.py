"""A DCA run on the real March 2023 data (a 20 % fall then a 45 % rise), checked against an
independent calculation: a plain loop over the candles written from docs/STRATEGIES.md §1 and the
tick path's rules, sharing no code with the strategy or the backtester.

The loop fills whole orders at one price and charges no fee, so the backtest runs with the paper
venue's engine set to that: a book without spread and deep enough for any order, a liquidity per
step above any order, and no fee (the venue's own fees, book and liquidity are tested in
test_backtest_fill_model.py and test_parity_live.py)."""

from __future__ import annotations

import csv
from decimal import ROUND_CEILING, ROUND_FLOOR
from decimal import Decimal as D

import pytest

from backtest.engine import Setup, run_backtest
from backtest.report import build_report
from backtest.series import CandleSeries
from shared.strategy.testing import BTC_FILTERS
from strategies.dca import DcaStrategy
from tests.helpers.sample_data import SAMPLE_CANDLES

DATA = SAMPLE_CANDLES  # optional, beside the clone: tests/helpers/sample_data.py
pytestmark = pytest.mark.skipif(not DATA.exists(), reason=f"{DATA} not present")

TICK, STEP, MIN_NOTIONAL = D("0.01"), D("0.00001"), D(5)


def floor(x: D, q: D) -> D:
    return (x / q).to_integral_value(rounding=ROUND_FLOOR) * q


def ceil(x: D, q: D) -> D:
    return (x / q).to_integral_value(rounding=ROUND_CEILING) * q


def clamp(x: D, lo: D, hi: D) -> D:
    return max(lo, min(x, hi))


def reference_dca(rows: list[list[str]]) -> dict:
    """DcaParams' defaults without a fee, one tick path per candle (O,L,H,C rising,
    O,H,L,C falling); an order placed at tick t rests from tick t+1 on, unless it crosses the
    book when placed: then it fills at once at the tick price, as the venue's engine takes it."""
    base_q, m_q, q_min, q_max = D(300), D("1.02"), D(50), D(600)
    tp0, m_tp, tp_min, tp_max = D("0.035"), D("0.95"), D("0.005"), D("0.05")
    step0, m_step, step_min, step_max = D("0.01"), D(1), D("0.005"), D("0.03")
    n_max, fee, budget = 20, D(0), D(5000)
    cycles = safety_fills = 0
    profit_total = D(0)
    fills: list[tuple[str, D, D]] = []
    market = None  # (quote, eligible tick)
    tp = so = None  # dicts with price, qty, eligible tick (so: level, step, raw too)
    base = cost = spent = D(0)
    target, level, bonus = tp0, 0, D(0)
    tick = 0

    def place_tp(now: int) -> dict:
        return {"price": ceil(cost / base * (1 + target), TICK), "qty": floor(base, STEP), "at": now + 1}

    def place_so(now: int, last_price: D, prev_step, prev_raw: D, lvl: int):
        if lvl > n_max:
            return None
        step = step0 if prev_step is None else clamp(prev_step * m_step, step_min, step_max)
        raw = clamp(prev_raw * m_q, q_min, q_max)
        quote = raw + bonus
        price = floor(last_price * (1 - step), TICK)
        if spent + quote > budget:
            quote = floor(budget - spent, D("1E-8"))
            if quote < q_min or quote < MIN_NOTIONAL:
                return None
        qty = floor(quote / price, STEP)
        if qty * price < MIN_NOTIONAL:
            return None
        return {"price": price, "qty": qty, "at": now + 1, "level": lvl, "step": step, "raw": raw}

    for i, row in enumerate(rows):
        o, h, lo, c = (D(x) for x in row[1:5])
        path = (o, lo, h, c) if c >= o else (o, h, lo, c)
        for p in path:
            if market is not None and market[1] <= tick:
                qty = floor(market[0] / p, STEP)
                base, cost, spent = qty, qty * p * (1 + fee), qty * p
                fills.append(("BUY", p, qty))
                market, target, level = None, tp0, 0
                tp = place_tp(tick)
                so = place_so(tick, p, None, base_q, 1)
            elif tp is not None and tp["at"] <= tick and p >= tp["price"]:
                proceeds = tp["qty"] * tp["price"]
                profit_total += proceeds * (1 - fee) - cost
                fills.append(("SELL", tp["price"], tp["qty"]))
                cycles += 1
                tp = so = None
                bonus = floor(profit_total / (n_max + 1), D("1E-8"))
                market = (floor(base_q + bonus, D("1E-8")), tick + 1)
            elif so is not None and so["at"] <= tick and p <= so["price"]:
                fill = so["price"]
                while so is not None and so["price"] >= fill:  # a new one crossing the book fills at once
                    qty, price = so["qty"], so["price"]
                    base, cost, spent = base + qty, cost + qty * fill * (1 + fee), spent + qty * fill
                    fills.append(("BUY", fill, qty))
                    safety_fills += 1
                    level = so["level"]
                    target = clamp(target * m_tp, tp_min, tp_max)
                    tp = place_tp(tick)
                    so = place_so(tick, price, so["step"], so["raw"], level + 1)
                    fill = p  # at the ask: the tick price (no spread)
            tick += 1
        if i == 0:  # the first closed candle opens the first cycle
            market = (base_q, tick)
    return {"cycles": cycles, "safety_fills": safety_fills, "profit": profit_total, "fills": fills}


def test_dca_on_march_2023_matches_the_independent_calculation():
    with DATA.open() as fh:
        rows = list(csv.reader(fh))[1:]
    expected = reference_dca(rows)
    strategy = DcaStrategy()
    params = strategy.parse_params({"fee": "0"})
    setup = Setup(strategy=strategy, params=params, filters=BTC_FILTERS, capital=D(10000), fee_rate=params.fee,
                  spread_ticks=0, book_qty=D(10**6), max_fill=D(10**6))  # fmt: skip
    result = run_backtest(setup, CandleSeries.from_csv(DATA))
    report = build_report(result)
    assert [(f.side, f.price, f.qty) for f in result.fills] == expected["fills"]
    assert report["cycles"] == expected["cycles"] and expected["cycles"] >= 5
    assert report["safety_fills"] == expected["safety_fills"] and expected["safety_fills"] >= 10
    assert D(report["realised_profit"]) == expected["profit"] > 0
    assert result.state.profit_total == expected["profit"]
    assert D(report["max_committed"]) <= 5000  # the budget held
