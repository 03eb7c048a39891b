"""The pure strategy interface (shared/strategy): forward-only order updates, position and
fees, order helpers and filters, state persistence, dispatch, generic control, registry."""

from __future__ import annotations

from decimal import Decimal as D

import msgspec
import pytest

from shared.messages import (
    CancelOrder,
    Candle,
    ControlAction,
    Notification,
    OrderStatus,
    OrderType,
    PlaceOrder,
    Side,
)
from shared.strategy import (
    ORDERS_ONLY,
    Mode,
    ParamsError,
    SetTimer,
    Strategy,
    StrategyLoadError,
    StrategyState,
    decode_state,
    encode_state,
    limit_order,
    load_strategy,
    market_order,
    set_timer,
    stop_limit_order,
)
from shared.strategy.params import load_params
from shared.strategy.testing import Driver


class BuyOnceState(StrategyState, frozen=True, kw_only=True):
    bought: bool = False
    timer_fired: int = 0


class BuyOnceParams(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    qty: D = D("0.01")
    price: D = D("20000")


class BuyOnce(Strategy[BuyOnceParams, BuyOnceState]):
    """Places one limit buy on the first candle and a 60 s timer; counts timer firings."""

    name = "buy_once"
    params_type = BuyOnceParams
    state_type = BuyOnceState
    param_aliases = {"quantidade": "qty"}

    def on_candle(self, params, state, candle, ctx):
        if state.bought:
            return state, []
        state, cmd = limit_order(state, ctx, Side.BUY, params.qty, params.price, tag="entry")
        state, timer = set_timer(state, "check", candle.close_time + 60_000)
        return msgspec.structs.replace(state, bought=True), [cmd, timer]

    def on_timer(self, params, state, timer, ctx):
        return msgspec.structs.replace(state, timer_fired=state.timer_fired + 1), []

    def wake(self, params, state):
        return ORDERS_ONLY


def echo_step(params, state, event, ctx):
    """A plain-function strategy, loaded by name in a test."""
    if isinstance(event, Candle):
        return msgspec.structs.replace(state, seq=state.seq + 1), []
    return state, []


def first_place(cmds) -> PlaceOrder:
    return next(c for c in cmds if isinstance(c, PlaceOrder))


def test_cids_count_up_from_state_and_orders_are_recorded():
    d = Driver(BuyOnce())
    cmds = d.candle("20100", "20200", "20000", "20150")
    place = first_place(cmds)
    assert place.cid == "t1-000001"
    assert place.price == D("20000") and place.quantity == D("0.01") and place.order_type == OrderType.LIMIT
    assert d.state.orders["t1-000001"].tag == "entry"
    assert SetTimer(name="check", due=60_000 + 59_999 + 60_000) in cmds
    assert d.state.timers == {"check": 179_999}


def test_duplicate_and_stale_updates_are_harmless():
    d = Driver(BuyOnce())
    cid = first_place(d.candle("20100", "20200", "20000", "20150")).cid
    d.update(cid, OrderStatus.NEW)
    d.update(cid, OrderStatus.PARTIALLY_FILLED, cum_qty="0.004", cum_quote="80", fee="0.08")
    after_partial = d.state
    # the same update again, then an older one: nothing moves, nothing is emitted
    assert d.update(cid, OrderStatus.PARTIALLY_FILLED, cum_qty="0.004", cum_quote="80", fee="0.08") == []
    assert d.update(cid, OrderStatus.NEW) == []
    assert d.state == after_partial
    assert d.state.position.base == D("0.004") and d.state.position.cost == D("80.08")
    d.update(cid, OrderStatus.FILLED, cum_qty="0.01", cum_quote="200", fee="0.2")
    assert d.state.position.base == D("0.01")
    assert d.state.position.cost == D("200.2")  # only the deltas counted: 80 + 120, fee 0.08 + 0.12
    assert cid not in d.state.orders and cid in d.state.recent
    final = d.state
    # a replay of a finished order: no change, no warning
    assert d.update(cid, OrderStatus.FILLED, cum_qty="0.01", cum_quote="200", fee="0.2") == []
    assert d.state == final


def test_update_for_an_unknown_order_warns_once_per_content():
    d = Driver(BuyOnce())
    cmds = d.update("t1-000099", OrderStatus.FILLED, cum_qty="1", cum_quote="1")
    assert len(cmds) == 1 and isinstance(cmds[0], Notification) and cmds[0].kind == "reconciliation"
    again = d.update("t1-000099", OrderStatus.FILLED, cum_qty="1", cum_quote="1")
    assert again[0].id == cmds[0].id  # the notifier drops the duplicate by id


def test_fee_in_base_reduces_the_position_and_sale_realises_profit():
    d = Driver(BuyOnce())
    cid = first_place(d.candle("20100", "20200", "20000", "20150")).cid
    d.update(cid, OrderStatus.FILLED, cum_qty="0.01", cum_quote="200", fee="0.00001", fee_asset="BTC")
    pos = d.state.position
    assert pos.base == D("0.00999") and pos.cost == D("200") and pos.fees_base == D("0.00001")
    assert pos.avg_price == D("200") / D("0.00999")
    # sell 0.00999 at 21000 with a quote fee of 0.1 %: realised = 209.79 - 0.20979 - 200
    state, sell = limit_order(d.state, d.ctx(), Side.SELL, D("0.00999"), D("21000"), tag="tp")
    d.state = state
    d.update(sell.cid, OrderStatus.FILLED, cum_qty="0.00999", cum_quote="209.79", fee="0.20979")
    pos = d.state.position
    assert pos.base == 0 and pos.cost == 0
    assert pos.realised == D("209.79") - D("0.20979") - D("200")
    assert pos.fees_quote == D("0.20979")


def test_partial_sale_takes_out_cost_at_the_average():
    d = Driver(BuyOnce())
    cid = first_place(d.candle("20100", "20200", "20000", "20150")).cid
    d.update(cid, OrderStatus.FILLED, cum_qty="0.01", cum_quote="200")
    state, sell = limit_order(d.state, d.ctx(), Side.SELL, D("0.004"), D("25000"))
    d.state = state
    d.update(sell.cid, OrderStatus.FILLED, cum_qty="0.004", cum_quote="100")
    assert d.state.position.base == D("0.006")
    assert d.state.position.cost == D("120")  # 200 × 0.6
    assert d.state.position.realised == D("20")  # 100 - 80


def test_order_helpers_round_and_refuse_what_breaks_filters():
    d = Driver(BuyOnce())
    ctx = d.ctx()
    held = msgspec.structs.replace(d.state.position, base=D("1"), cost=D("20000"))  # sells need base
    state, buy = limit_order(
        msgspec.structs.replace(d.state, position=held), ctx, Side.BUY, D("0.0123456"), D("20000.019")
    )
    assert buy.quantity == D("0.01234") and buy.price == D("20000.01")  # qty down, buy price down
    state, sell = limit_order(state, ctx, Side.SELL, D("0.0123456"), D("20000.011"))
    assert sell.price == D("20000.02")  # sell price up
    state, tiny = limit_order(state, ctx, Side.SELL, D("0.0002"), D("20000"))  # 4 USDT < min notional 5
    assert tiny is None and state.seq == 2  # nothing sent, no cid used
    state, mkt = market_order(state, ctx, Side.BUY, quote=D("300.123456789"))
    assert mkt.quote_quantity == D("300.12345678") and mkt.order_type == OrderType.MARKET
    state, none = market_order(state, ctx, Side.BUY, quote=D("4.99"))
    assert none is None
    state, stop = stop_limit_order(state, ctx, Side.SELL, D("0.01"), D("19000.001"), D("18999.999"))
    assert stop.order_type == OrderType.STOP_LOSS_LIMIT
    assert stop.stop_price == D("19000.01") and stop.price == D("19000.00")


def test_paused_strategy_sends_nothing_new_unless_forced():
    d = Driver(BuyOnce())
    d.control(ControlAction.PAUSE)
    assert d.state.mode == Mode.PAUSED
    assert d.candle("20100", "20200", "20000", "20150") == []  # candles do not reach a paused strategy
    state, cmd = limit_order(d.state, d.ctx(), Side.BUY, D("0.01"), D("20000"))
    assert cmd is None
    state, cmd = limit_order(d.state, d.ctx(), Side.BUY, D("0.01"), D("20000"), force=True)
    assert cmd is not None
    cmds = d.control(ControlAction.RESUME)
    assert d.state.mode == Mode.RUNNING and any(isinstance(c, Notification) for c in cmds)
    assert first_place(d.candle("20100", "20200", "20000", "20150")).cid == "t1-000001"


def test_stop_cancels_open_orders_and_close_also_sells_the_position():
    d = Driver(BuyOnce())
    cid = first_place(d.candle("20100", "20200", "20000", "20150")).cid
    d.update(cid, OrderStatus.PARTIALLY_FILLED, cum_qty="0.004", cum_quote="80")
    cmds = d.control(ControlAction.STOP)
    assert [c.cid for c in cmds if isinstance(c, CancelOrder)] == [cid]
    assert d.state.mode == Mode.STOPPED and d.state.orders[cid].cancel_requested
    # the cancel confirmation still counts the part that filled
    d.update(cid, OrderStatus.CANCELED, cum_qty="0.004", cum_quote="80")
    assert d.state.orders == {} and d.state.position.base == D("0.004")
    cmds = d.control(ControlAction.CLOSE)
    sell = first_place(cmds)
    assert sell.side == Side.SELL and sell.order_type == OrderType.MARKET and sell.quantity == D("0.004")
    d.fill(sell.cid, price="21000")
    assert d.state.position.base == 0 and d.state.position.realised == D("4")


def test_timers_fire_once_and_stale_ones_are_ignored():
    d = Driver(BuyOnce())
    d.candle("20100", "20200", "20000", "20150")
    due = d.state.timers["check"]
    d.timer("check", due - 5)  # not the due we hold: stale
    assert d.state.timer_fired == 0
    d.timer("check", due)
    assert d.state.timer_fired == 1 and d.state.timers == {}
    d.timer("check", due)  # a replay after it fired
    assert d.state.timer_fired == 1


def test_state_round_trips_through_json():
    d = Driver(BuyOnce())
    cid = first_place(d.candle("20100", "20200", "20000", "20150")).cid
    d.update(
        cid, OrderStatus.PARTIALLY_FILLED, cum_qty="0.004", cum_quote="80", fee="0.00000400", fee_asset="BNB"
    )
    data = encode_state(d.state)
    assert b'"cum_filled_qty":"0.004"' in data  # Decimals travel as strings
    back = decode_state(data, BuyOnceState)
    assert back == d.state and isinstance(back, BuyOnceState)
    assert back.position.fees_other == {"BNB": D("0.000004")}
    assert BuyOnce().decode_state(BuyOnce().encode_state(back)) == back


def test_params_accept_aliases_with_accents_and_refuse_unknown_or_doubled_keys():
    s = BuyOnce()
    assert s.parse_params({"quantidade": 0.02}).qty == D("0.02")  # float -> its shortest text
    assert load_params(BuyOnceParams, {"QUANTIDADE": "1"}, {"quantidade": "qty"}).qty == D(1)
    with pytest.raises(ParamsError, match="given twice"):
        s.parse_params({"quantidade": 1, "qty": 2})
    with pytest.raises(ParamsError, match="colour"):
        s.parse_params({"colour": "red"})
    with pytest.raises(ParamsError, match="qty"):
        s.parse_params({"qty": "lots"})


def test_registry_loads_builtins_modules_and_functions():
    assert load_strategy("dca").name == "dca"
    cls = load_strategy("tests.test_strategy_interface:BuyOnce")
    assert isinstance(cls, BuyOnce)
    fn = load_strategy("tests.test_strategy_interface:echo_step")
    d = Driver(fn)
    d.candle("1", "1", "1", "1")
    assert d.state.seq == 1
    with pytest.raises(StrategyLoadError, match="unknown strategy"):
        load_strategy("martingale")
    with pytest.raises(StrategyLoadError, match="no Nope"):
        load_strategy("tests.test_strategy_interface:Nope")
    with pytest.raises(StrategyLoadError, match="cannot import"):
        load_strategy("no_such_pkg.mod:X")
