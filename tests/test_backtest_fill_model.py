"""The backtester's fill model (backtest/sim.py): the tick path through each candle, market
orders at the next tick, limits at their limit, stop-loss-limit triggers, orders placed while a
tick is handled matched from the next tick, fees, balances and filter rejections."""

from __future__ import annotations

from decimal import Decimal as D

import msgspec

from backtest.engine import Setup, run_backtest
from backtest.series import CandleSeries
from shared.candle_files import RawCandle
from shared.messages import OrderStatus, OrderType, Side
from shared.strategy import ORDERS_ONLY, Strategy, StrategyState, place_order
from shared.strategy.testing import BTC_FILTERS


class Spec(msgspec.Struct, frozen=True):
    tag: str
    side: Side
    order_type: OrderType = OrderType.LIMIT
    qty: D | None = None
    price: D | None = None
    stop: D | None = None
    quote: D | None = None


class ScriptParams(msgspec.Struct, frozen=True):
    at_close: dict[int, list[Spec]] = {}  # candle index -> orders placed when it closes
    on_fill: dict[str, list[Spec]] = {}  # tag of a filled order -> orders placed in reaction


class Script(Strategy[ScriptParams, StrategyState]):
    """Places scripted orders: when a candle closes, and in reaction to fills."""

    name = "script"
    params_type = ScriptParams

    def _place(self, state, specs, ctx):
        cmds = []
        for s in specs:
            state, cmd = place_order(
                state,
                ctx,
                side=s.side,
                order_type=s.order_type,
                quantity=s.qty,
                quote_quantity=s.quote,
                price=s.price,
                stop_price=s.stop,
                tag=s.tag,
            )
            cmds.append(cmd)
        return state, cmds

    def on_candle(self, params, state, candle, ctx):
        return self._place(state, params.at_close.get(candle.open_time // 60_000, []), ctx)

    def on_order_update(self, params, state, change, update, ctx):
        if update.status != OrderStatus.FILLED:
            return state, []
        return self._place(state, params.on_fill.get(change.after.tag, []), ctx)

    def wake(self, params, state):
        return ORDERS_ONLY


def series(*rows):
    return CandleSeries.from_raw([RawCandle(60_000 * i, *row, "1") for i, row in enumerate(rows)])


def run(rows, params: ScriptParams, *, capital="100000", base="0", fee="0", fee_asset="quote", fast=False):
    setup = Setup(
        strategy=Script(),
        params=params,
        filters=BTC_FILTERS,
        capital=D(capital),
        base=D(base),
        fee_rate=D(fee),
        fee_asset=fee_asset,
    )
    return run_backtest(setup, series(*rows), fast=fast)


def buy(tag, price, qty="1", **kw):
    return Spec(tag, Side.BUY, qty=D(qty), price=D(price), **kw)


def sell(tag, price, qty="1", **kw):
    return Spec(tag, Side.SELL, qty=D(qty), price=D(price), **kw)


FLAT = ("100", "100", "100", "100")


def test_falling_candle_goes_open_high_low_close_and_rising_open_low_high_close():
    orders = {0: [buy("b", "99"), sell("s", "101")]}
    falling = run([FLAT, ("100", "101.5", "98.5", "99")], ScriptParams(at_close=orders), base="1")
    assert [(f.tag, f.tick, f.price) for f in falling.fills] == [("s", 1, D(101)), ("b", 2, D(99))]
    rising = run([FLAT, ("100", "101.5", "98.5", "101")], ScriptParams(at_close=orders), base="1")
    assert [(f.tag, f.tick, f.price) for f in rising.fills] == [("b", 1, D(99)), ("s", 2, D(101))]


def test_market_order_fills_at_the_next_price_point():
    mkt = Spec("m", Side.BUY, OrderType.MARKET, quote=D("500"))
    r = run([FLAT, ("100.5", "103", "99", "102"), FLAT], ScriptParams(at_close={0: [mkt]}))
    (f,) = r.fills
    assert (f.index, f.tick, f.price) == (1, 0, D("100.5"))  # the next candle's open
    assert f.qty == D("4.97512") and f.quote == D("4.97512") * D("100.5")  # qty rounded down to the step


def test_limits_fill_at_their_price_not_at_the_tick():
    r = run([FLAT, ("100", "100", "95", "96")], ScriptParams(at_close={0: [buy("b", "99.37")]}))
    assert [(f.price, f.tick) for f in r.fills] == [(D("99.37"), 2)]


def test_order_placed_while_a_tick_is_handled_matches_from_the_next_tick():
    # b fills at the low tick (1); the reaction sell at 99.5 is only matched from tick 2 (high, 101)
    # even though the low tick (98) would not have reached it anyway; the market order placed when
    # the sell fills at tick 2 fills at tick 3 (close); one placed at the close tick waits for the
    # next candle's open
    params = ScriptParams(
        at_close={0: [buy("b", "99")]},
        on_fill={
            "b": [sell("s", "99.5")],
            "s": [Spec("m", Side.BUY, OrderType.MARKET, quote=D("10"))],
            "m": [Spec("m2", Side.BUY, OrderType.MARKET, quote=D("10"))],
        },
    )
    r = run([FLAT, ("100", "101", "98", "100.7"), ("100.9", "101", "100", "100.2")], params)
    assert [(f.tag, f.index, f.tick, f.price) for f in r.fills] == [
        ("b", 1, 1, D(99)),
        ("s", 1, 2, D("99.5")),
        ("m", 1, 3, D("100.7")),
        ("m2", 2, 0, D("100.9")),
    ]


def test_a_buy_limit_placed_above_the_price_fills_at_its_limit_on_the_next_tick():
    params = ScriptParams(at_close={0: [buy("b", "105")]})
    r = run([FLAT, ("100", "101", "99", "100")], params)
    assert [(f.price, f.index, f.tick) for f in r.fills] == [(D(105), 1, 0)]


def test_stop_loss_limit_triggers_on_the_stop_then_rests_at_its_limit():
    stop = Spec("sl", Side.SELL, OrderType.STOP_LOSS_LIMIT, qty=D("1"), price=D("98.9"), stop=D("99"))
    # the low (98.95) crosses the stop and is above the limit: triggered and filled on that tick
    same = run([FLAT, ("100", "100.5", "98.95", "99.5")], ScriptParams(at_close={0: [stop]}), base="1")
    assert [(f.tag, f.tick, f.price) for f in same.fills] == [("sl", 2, D("98.9"))]  # falling: O, H, L, C
    # the low (98) gaps under the limit: triggered, then filled when a later tick is back at 98.9
    later = run(
        [
            FLAT,
            ("100", "100.5", "98", "98.5"),
            ("98.5", "98.6", "98.4", "98.6"),
            ("98.6", "99.2", "98.5", "99"),
        ],
        ScriptParams(at_close={0: [stop]}),
        base="1",
    )
    assert [(f.index, f.tick, f.price) for f in later.fills] == [(3, 2, D("98.9"))]
    # a stop never reached never triggers
    never = run([FLAT, ("100", "101", "99.01", "100")], ScriptParams(at_close={0: [stop]}), base="1")
    assert never.fills == [] and never.rejected == []


def test_fees_in_quote_and_in_base():
    mkt = Spec("m", Side.BUY, OrderType.MARKET, qty=D("1"))
    params = ScriptParams(at_close={0: [mkt]}, on_fill={"m": [sell("s", "110", qty="0.999")]})
    q = run([FLAT, FLAT, ("100", "111", "100", "111")], params, fee="0.001")
    assert (q.final_base, q.final_quote) == (D("0.001"), 100000 - D("100.1") + D("109.89") - D("0.10989"))
    b = run([FLAT, FLAT, ("100", "111", "100", "111")], params, fee="0.001", fee_asset="base")
    assert b.fills[0].fee == D("0.001") and b.fills[0].fee_asset == "BTC"
    assert (b.final_base, b.final_quote) == (D(0), 100000 - D(100) + D("109.89") - D("0.10989"))


def test_orders_breaking_filters_or_balance_are_rejected_with_a_reason():
    params = ScriptParams(
        at_close={
            0: [
                buy("tiny", "100", qty="0.04"),  # 4 USDT < min notional 5
                buy("odd", "100", qty="1.000001"),  # not a multiple of the step size
                buy("pricey", "100.001"),  # not a multiple of the tick size
                buy("big", "100", qty="2000"),  # 200,000 USDT > 100,000 free
                sell("nobase", "100"),  # no base to sell
            ]
        }
    )
    r = run([FLAT, FLAT], params)
    reasons = [u.reason for u in r.rejected]
    assert len(reasons) == 5 and r.fills == []
    assert "NOTIONAL" in reasons[0] and "LOT_SIZE" in reasons[1] and "PRICE_FILTER" in reasons[2]
    assert "insufficient balance" in reasons[3] and "insufficient balance" in reasons[4]
    assert all(u.status == OrderStatus.REJECTED for u in r.rejected)


def test_locked_quote_counts_as_committed_and_is_released_on_fill():
    r = run([FLAT, ("100", "100", "90", "91")], ScriptParams(at_close={0: [buy("b", "95", qty="10")]}))
    assert r.max_committed == D(950)  # locked while open, then the position's cost
    assert r.final_quote == 100000 - 950 and r.final_base == D(10)
