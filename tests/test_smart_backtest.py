"""Smart trades in the backtester, on hand-written price paths: the exact candle and price at
which each stop moves (its cancel, then the replacement) and at which each exit fills, for a
trailing stop, a trailing take profit, break-even, several targets and the time limit. The
exits go through the matching engine's own order lists, as at the paper venue."""

from __future__ import annotations

from decimal import Decimal as D

import pytest

from backtest.engine import RunResult, Setup, run_backtest
from backtest.series import CandleSeries
from shared.candle_files import RawCandle
from shared.exits import Exits, Target
from shared.messages import Notification
from shared.strategy import ORDERS_ONLY
from shared.strategy.testing import BTC_FILTERS
from tests.helpers.order_recorder import Recorder
from tests.test_smart_rules import OneTrade, OneTradeBot


class Recorded(Recorder, OneTradeBot):
    """OneTradeBot whose orders and cancels are written down with the candle they happen in."""


class Sleepy(Recorded):
    """Says it needs no candle (Wake): the backtester's fast path would skip every quiet one."""

    def wake(self, params, state):
        return ORDERS_ONLY


def run(rows: list[str], fast: bool = False, **exits) -> tuple[RunResult, list[tuple]]:
    """The trade of 1 BTC bought at market after candle 0, on candles given as 'open high low close'."""
    bot = Sleepy() if fast else Recorded()
    series = CandleSeries.from_raw(
        [RawCandle(60_000 * i, *row.split(), "1000") for i, row in enumerate(rows)]
    )
    setup = Setup(strategy=bot, params=OneTrade(exits=Exits(**exits)), filters=BTC_FILTERS, capital=D(100000),
                  fee_rate=D(0), spread_ticks=0, book_qty=D(10**6))  # fmt: skip
    result = run_backtest(setup, series, fast=fast)
    assert result.rejected == [] and result.state.orders == {} and result.state.trade is None
    assert result.state.position.base == 0 and result.final_base == 0
    return result, bot.said


def fills(result: RunResult) -> list[tuple]:
    return [(f.index, f.side, f.order_type, f.qty, f.price) for f in result.fills if f.side == "SELL"]


def profit(result: RunResult) -> str:
    (note,) = [n for n in result.notifications if n.kind == "cycle_closed"]
    return note.data["profit"]


@pytest.mark.parametrize("fast", [False, True], ids=["every_candle", "fast_path"])
def test_a_trailing_stop_moves_on_the_closes_that_raise_it_enough_and_fills_where_it_stands(fast: bool):
    """The same on the fast path for a bot that says it needs no candle: its trade's exits do."""
    result, said = run(
        [
            "100 100 100 100",
            "100 101 100 101",
            "101 101.3 101 101.2",
            "101.2 103 101.2 103",
            "103 103 100.94 101",
        ],
        fast,
        trailing_stop=D("0.02"),
    )
    assert said == [
        (0, "BUY", "MARKET", D(1), None),
        (1, "SELL", "STOP_LOSS", D(1), D("98.00")),  # bought at 100 at candle 1's open: 2 % below
        (1, "cancel"), (1, "SELL", "STOP_LOSS", D(1), D("98.98")),  # peak 101
        # candle 2: peak 101.3 would make 99.28, less than 2 %/4 of the price above 98.98: not moved
        (3, "cancel"), (3, "SELL", "STOP_LOSS", D(1), D("100.94")),  # peak 103
    ]  # fmt: skip
    assert fills(result) == [(4, "SELL", "STOP_LOSS", D(1), D("100.94"))]
    assert profit(result) == "0.94"


def test_a_trailing_take_profit_sells_half_at_the_first_target_and_trails_the_rest_from_the_last():
    result, said = run(
        ["100 100 100 100", "100 102.5 100 102", "102 104.5 102 104", "104 106 104 105.8", "105.8 106.1 105.8 106",
         "106 106 104.94 105"],
        take_profits=(Target(gain=D("0.02"), share=D("0.5")), Target(gain=D("0.04"))), stop_loss=D("0.01"),
        trailing_take_profit=D("0.01"),
    )  # fmt: skip
    assert said == [
        (0, "BUY", "MARKET", D(1), None),
        (1, "oco", ("SELL", "LIMIT_MAKER", D("0.5"), D("102.00")), ("SELL", "STOP_LOSS", D("0.5"), D("99.00"))),
        (1, "SELL", "STOP_LOSS", D("0.5"), D("99.00")),  # the last share: a stop alone until 104 is reached
        (2, "cancel"), (2, "SELL", "STOP_LOSS", D("0.5"), D("103.46")),  # high 104.5 reached 104: 104.5 x 0.99
        (3, "cancel"), (3, "SELL", "STOP_LOSS", D("0.5"), D("104.94")),  # peak 106
        # candle 4: peak 106.1 would make 105.04, less than 1 %/4 of the price above 104.94: not moved
    ]  # fmt: skip
    assert fills(result) == [
        (1, "SELL", "LIMIT_MAKER", D("0.5"), D("102.00")),
        (5, "SELL", "STOP_LOSS", D("0.5"), D("104.94")),
    ]
    assert profit(result) == "3.470"


def test_break_even_moves_the_second_targets_stop_to_the_entry_after_the_first_target():
    result, said = run(
        ["100 100 100 100", "100 101.5 100 101", "101 101 100 100.2"],
        take_profits=(Target(gain=D("0.01")), Target(gain=D("0.03"))), stop_loss=D("0.02"), break_even=True,
    )  # fmt: skip
    assert said == [
        (0, "BUY", "MARKET", D(1), None),
        (
            1,
            "oco",
            ("SELL", "LIMIT_MAKER", D("0.5"), D("101.00")),
            ("SELL", "STOP_LOSS", D("0.5"), D("98.00")),
        ),
        (
            1,
            "oco",
            ("SELL", "LIMIT_MAKER", D("0.5"), D("103.00")),
            ("SELL", "STOP_LOSS", D("0.5"), D("98.00")),
        ),
        (1, "cancel"),
        (
            1,
            "oco",
            ("SELL", "LIMIT_MAKER", D("0.5"), D("103.00")),
            ("SELL", "STOP_LOSS", D("0.5"), D("100.00")),
        ),
    ]
    assert fills(result) == [
        (1, "SELL", "LIMIT_MAKER", D("0.5"), D("101.00")),
        (2, "SELL", "STOP_LOSS", D("0.5"), D("100.00")),
    ]
    assert profit(result) == "0.500"


def test_three_targets_each_sell_their_share_the_last_the_rest():
    result, said = run(
        ["100 100 100 100", "100 101.2 100 101", "101 102.5 101 102", "102 103.5 102 103"],
        take_profits=(Target(gain=D("0.01")), Target(gain=D("0.02")), Target(gain=D("0.03"))), stop_loss=D("0.05"),
    )  # fmt: skip
    assert [s[2][2:] for s in said if s[1] == "oco"] == [
        (D("0.33333"), D("101.00")), (D("0.33333"), D("102.00")), (D("0.33334"), D("103.00"))
    ]  # fmt: skip
    assert fills(result) == [
        (1, "SELL", "LIMIT_MAKER", D("0.33333"), D("101.00")),
        (2, "SELL", "LIMIT_MAKER", D("0.33333"), D("102.00")),
        (3, "SELL", "LIMIT_MAKER", D("0.33334"), D("103.00")),
    ]
    assert profit(result) == "2.0000100"


def test_the_time_limit_sells_what_is_held_at_market():
    result, said = run(
        ["100 100 100 100", "100 100.5 99.8 100.2", "100.2 100.4 100 100.1", "100.1 100.3 100 100.2",
         "100.3 100.3 100.3 100.3", "100.3 100.3 100.3 100.3"],
        take_profits=(Target(gain=D("0.05")),), stop_loss=D("0.05"), time_limit_s=180,
    )  # fmt: skip
    assert said[-2:] == [(4, "cancel"), (4, "SELL", "MARKET", D(1), None)]
    assert fills(result) == [(5, "SELL", "MARKET", D(1), D("100.30"))]
    assert profit(result) == "0.30"
    assert any("time limit of 180 s reached" in d.text for d in result.decisions)
    assert [n for n in result.notifications if isinstance(n, Notification) and n.kind == "cycle_closed"]
