"""The example breakout bot declares its exits (a take profit and a stop: an OCO carried out by
the strategy interface) and keeps trading after an exit when its buys pay their fee in the base
bought (the venue's default, and the backtester's): the dust that fee leaves cannot be sold and
must not count as a position, or the bot waits for a sale that can never happen."""

from __future__ import annotations

from backtest.engine import Setup, run_backtest
from backtest.series import synthetic
from examples.breakout import Breakout
from shared.strategy.testing import BTC_FILTERS


def test_the_example_bot_trades_again_after_its_first_exit_with_dust_left() -> None:
    strategy = Breakout()
    setup = Setup(strategy=strategy, params=strategy.parse_params({}), filters=BTC_FILTERS)
    result = run_backtest(setup, synthetic(20_000, seed=3))
    entries = [f for f in result.fills if f.tag == "entry"]
    exits = {f.order_type for f in result.fills if f.tag == "entry:exit"}
    assert entries and all(f.fee_asset == "BTC" for f in entries)  # the fee is taken in the base bought
    assert exits == {"LIMIT_MAKER", "STOP_LOSS"}  # both legs of its OCO have sold: targets and stops
    closed = [n for n in result.notifications if n.kind == "cycle_closed"]
    assert result.state.trades >= 2 and len(closed) >= result.state.trades - 1, (
        f"{result.state.trades} trade(s)"
    )
    assert not result.rejected
    # what is left: dust under a step per trade, plus the trade on (its entry and its exits' OCO)
    on = result.state.trade.qty if result.state.trade is not None else 0
    assert 0 <= result.state.position.base - on < BTC_FILTERS.step_size * result.state.trades
