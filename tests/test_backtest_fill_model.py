"""The backtester on the paper venue's matching engine (backtest/sim.py, shared/matching): the
waypoints of each candle, market orders at the next waypoint walking the venue's book, resting
limits at their limit, an order that crosses the book taken at once, stop-loss-limit triggers,
partial fills where a step's liquidity is short, fees in the asset received, and commands
rounded and checked as the order gateway does before the engine's own checks."""

from __future__ import annotations

from decimal import Decimal as D

import msgspec
import pytest

from backtest.engine import RunResult, Setup, run_backtest
from backtest.series import CandleSeries
from services.order_gateway.validate import prepare
from shared.candle_files import RawCandle
from shared.filters import FilterError
from shared.messages import OrderStatus, OrderType, PlaceOrder, Side
from shared.strategy import ORDERS_ONLY, Strategy, StrategyState, place_order
from shared.strategy.testing import BTC_FILTERS
from strategies.dca import DcaStrategy
from tests.helpers.procs import ROOT


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


def series(*rows, volume="1000"):
    """Candles of (open, high, low, close[, volume]); the volume is the liquidity of their steps."""
    return CandleSeries.from_raw(
        [RawCandle(60_000 * i, *row[:4], row[4] if len(row) > 4 else volume) for i, row in enumerate(rows)]
    )


# A book at the candles' own prices, deep enough for any order: worked numbers stay round.
FLAT_BOOK = {"spread_ticks": 0, "book_qty": D(10**6)}


def run(
    rows, params: ScriptParams, *, capital="100000", base="0", fee="0", fast=False, book=None
) -> RunResult:
    setup = Setup(
        strategy=Script(),
        params=params,
        filters=BTC_FILTERS,
        capital=D(capital),
        base=D(base),
        fee_rate=D(fee),
        **(FLAT_BOOK if book is None else book),
    )
    return run_backtest(setup, series(*rows), fast=fast)


VENUE_BOOK: dict = {}  # the paper venue's BTCUSDT book: bid = the price, ask a tick above, 0.5 BTC a level


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


def test_market_order_fills_at_the_next_price_point_at_the_venues_ask():
    mkt = Spec("m", Side.BUY, OrderType.MARKET, quote=D("40"))
    r = run([FLAT, ("100.5", "103", "99", "102"), FLAT], ScriptParams(at_close={0: [mkt]}), book=VENUE_BOOK)
    (f,) = r.fills
    assert (f.index, f.tick, f.price) == (1, 0, D("100.51"))  # the next candle's open, plus the spread
    assert f.qty == D("0.39797") and f.quote == D("0.39797") * D("100.51")  # qty rounded down to the step
    now = run([FLAT, ("100.5", "103", "99", "102"), FLAT], ScriptParams(at_close={0: [mkt]}),
              book={"market_fill": "now"})  # fmt: skip
    assert [(f.index, f.tick, f.price) for f in now.fills] == [(0, 3, D("100.01"))]  # the option: at once


def test_a_market_order_walks_the_venues_book_level_by_level():
    mkt = Spec("m", Side.BUY, OrderType.MARKET, qty=D("1"))
    r = run([FLAT, FLAT], ScriptParams(at_close={0: [mkt]}), book=VENUE_BOOK)
    assert [(f.price, f.qty) for f in r.fills] == [(D("100.01"), D("0.5")), (D("100.02"), D("0.5"))]
    assert r.final_base == D(1) and r.final_quote == 100000 - D("100.015")


def test_limits_fill_at_their_price_not_at_the_tick():
    r = run([FLAT, ("100", "100", "95", "96")], ScriptParams(at_close={0: [buy("b", "99.37")]}))
    assert [(f.price, f.tick) for f in r.fills] == [(D("99.37"), 2)]


def test_order_placed_while_a_tick_is_handled_matches_from_the_next_tick():
    # b fills at the low tick (1); the reaction sell at 99.5 rests (the bid, 98, is under it) and
    # fills at tick 2 (high, 101); the market order placed when the sell fills at tick 2 fills at
    # tick 3 (close); one placed at the close tick waits for the next candle's open
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


def test_a_limit_order_that_crosses_the_book_is_taken_at_once_as_the_venue_takes_it():
    # a buy at 105 with the market at 100: the venue fills it against its book when it arrives
    # (at the ask and the levels above, never above 105), not at 105 on a later tick
    params = ScriptParams(at_close={0: [buy("b", "105")]})
    r = run([FLAT, ("100", "101", "99", "100")], params, book=VENUE_BOOK)
    assert [(f.index, f.tick, f.price, f.qty) for f in r.fills] == [
        (0, 3, D("100.01"), D("0.5")),
        (0, 3, D("100.02"), D("0.5")),
    ]
    assert r.fills[0].order_type == "LIMIT" and r.final_base == D(1)


def test_stop_loss_limit_triggers_on_the_stop_then_rests_at_its_limit():
    stop = Spec("sl", Side.SELL, OrderType.STOP_LOSS_LIMIT, qty=D("1"), price=D("98.9"), stop=D("99"))
    # the low (98.95) crosses the stop and is above the limit: triggered, it takes the bid at once
    same = run([FLAT, ("100", "100.5", "98.95", "99.5")], ScriptParams(at_close={0: [stop]}), base="1")
    assert [(f.tag, f.tick, f.price) for f in same.fills] == [("sl", 2, D("98.95"))]  # falling: O, H, L, C
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


def test_fees_in_the_asset_received_rounded_up_to_1e_8():
    mkt = Spec("m", Side.BUY, OrderType.MARKET, qty=D("1"))
    params = ScriptParams(at_close={0: [mkt]}, on_fill={"m": [sell("s", "110", qty="0.999")]})
    r = run([FLAT, FLAT, ("100", "111", "100", "111")], params, fee="0.001")
    assert [(f.fee, f.fee_asset) for f in r.fills] == [(D("0.001"), "BTC"), (D("0.10989"), "USDT")]
    assert (r.final_base, r.final_quote) == (D(0), 100000 - D(100) + D("109.89") - D("0.10989"))
    odd = run([FLAT, FLAT], ScriptParams(at_close={0: [buy("b", "100", qty="0.05001")]}), fee="0.00075")
    assert [f.fee for f in odd.fills] == [D("0.00003751")]  # 0.0000375075 BTC, rounded up


def test_orders_breaking_filters_or_balance_are_rejected_with_a_reason():
    params = ScriptParams(
        at_close={
            0: [
                buy("tiny", "100", qty="0.04"),  # 4 USDT < min notional 5
                buy("low", "10"),  # under 0.2 × the price: PERCENT_PRICE
                buy("big", "100", qty="2000"),  # 200,000 USDT > 100,000 free
                sell("nobase", "100"),  # no base to sell
            ]
        }
    )
    r = run([FLAT, FLAT], params)
    reasons = [u.reason for u in r.rejected]
    assert len(reasons) == 4 and r.fills == []
    assert "NOTIONAL" in reasons[0] and "PERCENT_PRICE" in reasons[1]
    assert "INSUFFICIENT_BALANCE" in reasons[2] and "INSUFFICIENT_BALANCE" in reasons[3]
    assert all(u.status == OrderStatus.REJECTED for u in r.rejected)


def test_unrounded_and_out_of_band_orders_are_handled_as_the_order_gateway_handles_them():
    """The backtester rounds and checks a command with the gateway's own `prepare` before the
    engine sees it: an unrounded quantity or price is rounded (a buy price down), not refused, and
    a price outside the percent-price band is refused with the very reason the gateway gives."""
    params = ScriptParams(at_close={0: [buy("odd", "100.009", qty="1.000001"), buy("low", "10")]})
    r = run([FLAT, FLAT], params)
    assert [(f.tag, f.price, f.qty) for f in r.fills] == [("odd", D(100), D(1))]
    (rejected,) = r.rejected
    cmd = PlaceOrder(cid=rejected.cid, bot="backtest", venue="sim", symbol="BTCUSDT", side=Side.BUY,
                     order_type=OrderType.LIMIT, quantity=D(1), price=D(10))  # fmt: skip
    with pytest.raises(FilterError, match="PERCENT_PRICE") as refused:
        prepare(cmd, BTC_FILTERS, D(100))  # what the order gateway does with it live
    assert rejected.reason == str(refused.value)


def test_locked_quote_counts_as_committed_and_is_released_on_fill():
    r = run([FLAT, ("100", "100", "90", "91")], ScriptParams(at_close={0: [buy("b", "95", qty="10")]}))
    assert r.max_committed == D(950)  # locked while open, then the position's cost
    assert r.final_quote == 100000 - 950 and r.final_base == D(10)


def test_a_resting_order_fills_partly_where_a_steps_liquidity_is_short():
    """Candle 1 traded 2 BTC: a quarter a step, so the buy of 1 BTC at 99 gets 0.5 at the low and
    0.5 at the close (both at or under 99); candle 2 traded 0.4: 0.1 a step. The strategy hears
    each fill as PARTIALLY_FILLED with cumulative quantities, then FILLED."""
    seen = []

    class Recorder(Script):
        def on_order_update(self, params, state, change, update, ctx):
            seen.append((update.status, update.cum_filled_qty, update.last_fill_qty))
            return super().on_order_update(params, state, change, update, ctx)

    setup = Setup(strategy=Recorder(), params=ScriptParams(at_close={0: [buy("b", "99", qty="1.2")]}),
                  filters=BTC_FILTERS, capital=D(100000), fee_rate=D(0))  # fmt: skip
    rows = [(*FLAT, "1000"), ("100", "100", "98", "99", "2"), ("99", "99", "99", "99", "0.4")]
    r = run_backtest(setup, series(*rows))
    assert [(f.index, f.tick, f.qty) for f in r.fills] == [
        (1, 2, D("0.5")),
        (1, 3, D("0.5")),
        (2, 0, D("0.1")),
        (2, 1, D("0.1")),
    ]
    assert seen == [
        (OrderStatus.NEW, D(0), D(0)),
        (OrderStatus.PARTIALLY_FILLED, D("0.5"), D("0.5")),
        (OrderStatus.PARTIALLY_FILLED, D("1.0"), D("0.5")),
        (OrderStatus.PARTIALLY_FILLED, D("1.1"), D("0.1")),
        (OrderStatus.FILLED, D("1.2"), D("0.1")),
    ]


def test_dca_follows_a_partly_filled_safety_order_with_its_take_profit():
    """DCA's partial-fill handling runs in a backtest: its safety buy at 99 gets 2 of its 3.0909
    BTC on a thin candle (1 BTC a step at the low and the close), and the take profit is re-placed
    for the whole position (3 + 2 BTC) while the rest of the safety order still rests."""
    strategy = DcaStrategy()
    params = strategy.parse_params({"fee": "0"})
    setup = Setup(strategy=strategy, params=params, filters=BTC_FILTERS, capital=D(100000), fee_rate=D(0),
                  **FLAT_BOOK)  # fmt: skip
    rows = [(*FLAT, "1000"), (*FLAT, "1000"), ("100", "100", "99", "99", "4")]
    r = run_backtest(setup, series(*rows), fast=False)
    so = [f for f in r.fills if f.tag == "so1"]
    assert [(f.tick, f.qty) for f in so] == [(2, D(1)), (3, D(1))]
    orders = {o.tag: o for o in r.state.orders.values()}
    assert orders["so1"].cum_filled_qty == D(2) and orders["tp1"].quantity == D(5)
    assert r.state.position.base == D(5)


def test_the_paper_venue_and_the_backtester_run_the_same_matching_engine():
    import backtest.engine
    import backtest.sim
    import services.exchange_sim.market
    import services.exchange_sim.venue
    from shared.matching import candles, engine

    assert backtest.sim.Engine is services.exchange_sim.venue.Engine is engine.Engine
    assert backtest.engine.step_volumes is services.exchange_sim.market.step_volumes is candles.step_volumes
    for path in ("backtest/sim.py", "services/exchange_sim/venue.py"):
        assert "from shared.matching.engine import" in (ROOT / path).read_text()
