"""The minimal bot of docs/STRATEGY_GUIDE.md ("Smart trades"): the guide shows examples/minimal.py
verbatim, and that code trades in a backtest, every trade closed by its declared exits."""

from __future__ import annotations

import re
from pathlib import Path

from backtest.engine import Setup, run_backtest
from backtest.report import cycles_of
from backtest.series import synthetic
from examples.minimal import Minimal
from shared.strategy.testing import BTC_FILTERS

ROOT = Path(__file__).resolve().parents[1]


def test_the_guide_shows_the_minimal_bot_verbatim_and_it_is_about_twenty_lines() -> None:
    guide = (ROOT / "docs" / "STRATEGY_GUIDE.md").read_text(encoding="utf-8")
    section = guide[guide.index("### Smart trades") :]
    block = re.search(r"```python\n(.*?)```", section, re.S)
    code = (ROOT / "examples" / "minimal.py").read_text(encoding="utf-8")
    assert block is not None and block.group(1) == code
    assert len([line for line in code.splitlines() if line.strip()]) <= 20


def test_the_minimal_bot_buys_on_its_signal_and_its_exits_sell() -> None:
    strategy = Minimal()
    setup = Setup(strategy=strategy, params=strategy.parse_params({}), filters=BTC_FILTERS)
    result = run_backtest(setup, synthetic(5_000, seed=11))
    buys = [f for f in result.fills if f.side == "BUY"]
    sells = {f.order_type for f in result.fills if f.side == "SELL"}
    closed = [n for n in result.notifications if n.kind == "cycle_closed"]
    assert len(buys) >= 3 and sells == {"LIMIT_MAKER", "STOP_LOSS"} and not result.rejected
    assert len(closed) >= len(buys) - 1  # every trade but the one on has ended
    on = result.state.trade.qty if result.state.trade is not None else 0
    assert 0 <= result.state.position.base - on < BTC_FILTERS.step_size  # the dust sold with each trade


def test_the_dust_of_fees_in_base_is_sold_with_the_next_trade_so_each_trade_is_one_cycle() -> None:
    """Each trade leaves under a step of base (its fee taken in base): the next trade's exits sell
    it too. Kept, it grew trade by trade over the minimum order and the position never looked flat
    again: the backtest merged 226 trades into one open cycle, their profit shown as unrealised."""
    strategy = Minimal()
    setup = Setup(strategy=strategy, params=strategy.parse_params({}), filters=BTC_FILTERS)
    result = run_backtest(setup, synthetic(20_000, seed=11))
    cycles = cycles_of(result)
    trades = [n for n in result.notifications if n.kind == "cycle_closed"]
    assert len(trades) > 200 and all(c.buys == 1 for c in cycles)
    assert len([c for c in cycles if c.end is not None]) == len(trades)
    on = result.state.trade.qty if result.state.trade is not None else 0
    assert 0 <= result.state.position.base - on < BTC_FILTERS.step_size
