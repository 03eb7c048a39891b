"""The range bot (strategies/range_oco.py): its params' checks, the worked example of
docs/STRATEGIES.md §4 as a backtest on its scripted price path (the exact orders and fills), and a
backtest on the March 2023 minutes that trades and ends consistent (position against fills)."""

from __future__ import annotations

from decimal import Decimal as D

import pytest

from backtest.engine import RunResult, Setup, run_backtest
from backtest.series import CandleSeries
from shared.candle_files import RawCandle
from shared.messages import OrderType, PlaceOrderList
from shared.strategy import ParamsError, load_strategy
from shared.strategy.testing import BTC_FILTERS, Driver
from strategies.range_oco import RangeOcoStrategy
from tests.helpers.order_recorder import Recorder
from tests.helpers.sample_data import SAMPLE_CANDLES


class Recorded(Recorder, RangeOcoStrategy):
    """The range bot, its orders written down with the candle they happen in."""


WORKED = {"top": 100, "bottom": 90, "percent": 1, "quote_amount": 101}  # take_profits [2], stop_loss 1
# candle: open high low close
PATH = ["95 95 95 95", "95 101 95 101", "101 103.5 101 103", "103 103 99 99.5", "99.5 99.5 89 89.5",
        "89.5 91 89.5 90.9"]  # fmt: skip


def test_the_worked_example_buys_the_break_up_then_the_fall_and_rearms_after_each_trade():
    bot = Recorded()
    series = CandleSeries.from_raw(
        [RawCandle(60_000 * i, *row.split(), "1000") for i, row in enumerate(PATH)]
    )
    setup = Setup(strategy=bot, params=bot.parse_params(WORKED), filters=BTC_FILTERS, capital=D(1000),
                  fee_rate=D(0), spread_ticks=0, book_qty=D(10**6))  # fmt: skip
    result = run_backtest(setup, series, fast=False)
    armed = (("BUY", "STOP_LOSS", D(1), D("101.00")), ("BUY", "LIMIT_MAKER", D(1), D("89.10")))
    assert bot.said == [
        (0, "oco", *armed),  # close 95 inside 89.10 - 101.00: armed; 101 / 101.00 = 1 BTC
        (1, "oco", ("SELL", "LIMIT_MAKER", D(1), D("103.02")), ("SELL", "STOP_LOSS", D(1), D("99.99"))),
        # candle 2: the take profit sells; its close 103 is outside the band: not armed
        (3, "oco", *armed),  # close 99.5: armed again
        (4, "oco", ("SELL", "LIMIT_MAKER", D(1), D("90.89")), ("SELL", "STOP_LOSS", D(1), D("88.21"))),
        (5, "oco", *armed),  # the second trade ended, close 90.9 inside: armed a third time
    ]
    assert [(f.index, f.side, f.order_type, f.price, f.qty) for f in result.fills] == [
        (1, "BUY", "STOP_LOSS", D("101.00"), D(1)),  # the break above 101.00 (the limit leg expired)
        (2, "SELL", "LIMIT_MAKER", D("103.02"), D(1)),  # +2 %
        (4, "BUY", "LIMIT_MAKER", D("89.10"), D(1)),  # the fall to 89.10 (the stop leg expired)
        (5, "SELL", "LIMIT_MAKER", D("90.89"), D(1)),
    ]
    assert [n.data["profit"] for n in result.notifications if n.kind == "cycle_closed"] == ["2.02", "1.79"]
    assert result.final_quote == D("1003.81") and result.final_base == 0 and not result.rejected
    assert "not armed: close 103.00 outside 89.10 - 101.00" in [d.text for d in result.decisions]


def test_without_rearm_it_trades_once():
    bot = Recorded()
    series = CandleSeries.from_raw(
        [RawCandle(60_000 * i, *row.split(), "1000") for i, row in enumerate(PATH)]
    )
    setup = Setup(strategy=bot, params=bot.parse_params({**WORKED, "rearm": False}), filters=BTC_FILTERS,
                  capital=D(1000), fee_rate=D(0), spread_ticks=0, book_qty=D(10**6))  # fmt: skip
    result = run_backtest(setup, series, fast=False)
    assert [s[0] for s in bot.said] == [0, 1] and len(result.fills) == 2


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"top": 90, "bottom": 100}, "bottom (100) must be below top (90)"),
        ({"top": 100, "bottom": 90, "percent": 0}, "percent must be a percent"),
        ({"top": 100, "bottom": 90, "stop_loss": 100}, "stop_loss must be a percent"),
        ({"top": 100, "bottom": 90, "quote_amount": -1}, "quote_amount must be above 0"),
        ({"top": 100, "bottom": 90, "take_profits": [0]}, "take_profits must be percents above 0"),
        ({"top": 100}, "bottom"),
        ({"top": 100, "bottom": 90, "nope": 1}, "nope"),
    ],
)
def test_bad_params_are_refused_naming_the_field(params, field):
    with pytest.raises(ParamsError, match=field.replace("(", r"\(").replace(")", r"\)")):
        load_strategy("range_oco").parse_params(params)


def test_it_is_a_builtin_with_sensible_default_exits():
    strategy = load_strategy("range_oco")
    exits = strategy.parse_params({"top": 100, "bottom": 90}).exits()
    assert isinstance(strategy, RangeOcoStrategy)
    assert [t.gain for t in exits.take_profits] == [D("0.02")] and exits.stop_loss == D("0.01")


def test_stop_loss_0_is_none_and_one_target_may_be_given_alone():
    """docs/STRATEGIES.md §4 said "none: leave it out" of stop_loss, whose default is 1: left out,
    it was 1 %. `stop_loss = 0` is none now. `take_profits = 2` (and `--sweep take_profits=1,2`,
    whose values come as text) was refused: "Expected `array`, got `int`"."""
    strategy = load_strategy("range_oco")
    exits = strategy.parse_params({"top": 100, "bottom": 90, "stop_loss": 0, "trailing_stop": 1}).exits()
    assert exits.stop_loss is None and exits.trailing_stop == D("0.01")
    for given in (2, "2", D(2), [2]):
        params = strategy.parse_params({"top": 100, "bottom": 90, "take_profits": given}, source="sweep")
        assert params.take_profits == (D(2),)
    bot = Recorded()
    series = CandleSeries.from_raw(
        [RawCandle(60_000 * i, *row.split(), "1000") for i, row in enumerate(PATH)]
    )
    setup = Setup(strategy=bot, params=bot.parse_params({**WORKED, "stop_loss": 0}), filters=BTC_FILTERS,
                  capital=D(1000), fee_rate=D(0), spread_ticks=0, book_qty=D(10**6))  # fmt: skip
    run_backtest(setup, series, fast=False)
    assert (1, "SELL", "LIMIT", D(1), D("103.02")) in bot.said  # the target alone: a limit, no stop


def consistent(result: RunResult, capital: D) -> None:
    """The bot's position and the account agree with its fills, to the unit."""
    buys = [f for f in result.fills if f.side == "BUY"]
    sells = [f for f in result.fills if f.side == "SELL"]
    base = sum(f.qty - f.fee for f in buys) - sum(f.qty for f in sells)
    quote = capital - sum(f.quote for f in buys) + sum(f.quote - f.fee for f in sells)
    assert result.state.position.base == base == result.final_base
    assert result.final_quote == quote
    assert result.state.position.base < BTC_FILTERS.step_size * len(buys) or result.state.trade is not None


@pytest.mark.parametrize(
    "extra",
    [{}, {"take_profits": [2, 4], "trailing_stop": 1, "trailing_take_profit": 0.5, "break_even": True}],
    ids=["target_and_stop", "trailing"],
)
def test_the_range_bot_on_march_2023_trades_and_ends_consistent(extra):
    if not SAMPLE_CANDLES.exists():
        pytest.skip(f"{SAMPLE_CANDLES} not found")
    strategy = RangeOcoStrategy()
    params = strategy.parse_params(
        {"top": 23500, "bottom": 22000, "percent": 0.5, "quote_amount": 1000, **extra}
    )
    result = run_backtest(Setup(strategy=strategy, params=params, filters=BTC_FILTERS, capital=D(10000)),
                          CandleSeries.from_csv(SAMPLE_CANDLES))  # fmt: skip
    kinds = {(f.side, f.order_type) for f in result.fills}
    assert {
        ("BUY", "STOP_LOSS"),
        ("BUY", "LIMIT_MAKER"),
        ("SELL", "STOP_LOSS"),
    } <= kinds  # both breaks, stops
    assert len([n for n in result.notifications if n.kind == "cycle_closed"]) >= 5 and not result.rejected
    consistent(result, D(10000))


def test_with_limit_percent_the_break_up_leg_is_a_stop_limit():
    d = Driver(RangeOcoStrategy(), {**WORKED, "quote_amount": 102.01, "limit_percent": 1})
    (oco,) = [c for c in d.candle("95", "95", "95", "95") if isinstance(c, PlaceOrderList)]
    stop, maker = oco.legs
    assert (stop.order_type, stop.stop_price, stop.price, stop.quantity) == (
        OrderType.STOP_LOSS_LIMIT, D("101.00"), D("102.01"), D(1))  # fmt: skip
    assert (maker.order_type, maker.price, maker.quantity) == (OrderType.LIMIT_MAKER, D("89.10"), D(1))
