"""The example breakout bot keeps trading after an exit when its buys pay their fee in the base
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
    assert entries and all(f.fee_asset == "BTC" for f in entries)  # the fee is taken in the base bought
    assert result.state.trades >= 2, f"{result.state.trades} trade(s), {len(entries)} entries"
    assert (
        0 < result.state.position.base < BTC_FILTERS.step_size or result.state.orders
    )  # only dust, or a trade on
