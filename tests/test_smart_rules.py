"""The smart-trade helper (shared/strategy/smart.py) step by step, the test playing the venue:
the exits it places when the entry fills, the stop moves (cancel-then-replace), the helper's own
watch, the time limit, and order lists from a strategy (shared/strategy/lists.py)."""

from __future__ import annotations

from decimal import Decimal as D

import msgspec
import pytest

from shared.exits import Exits, Target
from shared.messages import (
    CancelOrder,
    CancelOrderList,
    ControlAction,
    Level,
    ListKind,
    Notification,
    OrderStatus,
    OrderType,
    PlaceOrder,
    PlaceOrderList,
    Side,
)
from shared.strategy import (
    Leg,
    SetTimer,
    Strategy,
    StrategyState,
    cancel_list,
    open_trade,
    place_list,
    place_oco,
    sellable,
)
from shared.strategy.smart import named
from shared.strategy.testing import Driver


class OneTrade(msgspec.Struct, frozen=True, kw_only=True):
    exits: Exits = Exits()
    price: D | None = None


class OneTradeBot(Strategy[OneTrade, StrategyState]):
    """Opens one trade of 1 BTC on its first candle, with the exits its params declare."""

    name = "one_trade"
    params_type = OneTrade

    def on_candle(self, params, state, candle, ctx):
        if state.seq:
            return state, []
        return open_trade(state, ctx, params.exits, qty=D("1"), price=params.price, tag="t")


def bot(**exits) -> Driver:
    return Driver(OneTradeBot(), OneTrade(exits=Exits(**exits)))


def entered(d: Driver, at: str = "100", base_fee: str = "0") -> list:
    """The trade's 1 BTC bought at `at`, the fee taken in the BTC bought."""
    (buy,) = d.candle(at, at, at, at)
    return d.update(buy.cid, OrderStatus.FILLED, cum_qty="1", cum_quote=at, fee=base_fee, fee_asset="BTC")


def places(cmds) -> list:
    return [c for c in cmds if isinstance(c, (PlaceOrder, PlaceOrderList))]


def legs(oco: PlaceOrderList) -> list[tuple]:
    return [(leg.order_type, leg.quantity, leg.price, leg.stop_price) for leg in oco.legs]


def test_one_target_and_a_stop_make_one_sell_oco_for_the_whole_position():
    d = bot(take_profits=(Target(gain=D("0.02")),), stop_loss=D("0.01"))
    (oco,) = places(entered(d))
    assert isinstance(oco, PlaceOrderList) and oco.kind is ListKind.OCO
    assert [leg.side for leg in oco.legs] == [Side.SELL, Side.SELL]
    assert legs(oco) == [
        (OrderType.LIMIT_MAKER, D("1"), D("102.00"), None),
        (OrderType.STOP_LOSS, D("1"), None, D("99.00")),
    ]
    assert (oco.list_cid, *(leg.cid for leg in oco.legs)) == ("t1-000002", "t1-000003", "t1-000004")
    assert {r.list_cid for r in d.state.orders.values()} == {"t1-000002"}
    assert sellable(d.state) == 0  # the two legs count once: the OCO sells the whole position
    # the target fills: the stop is expired by the venue, the trade ends with its profit
    cmds = d.update("t1-000004", OrderStatus.EXPIRED)
    assert [c for c in cmds if isinstance(c, Notification) and c.kind == "fill"] == []  # it traded nothing
    cmds = d.fill("t1-000003")
    (note,) = [c for c in cmds if isinstance(c, Notification) and c.kind == "cycle_closed"]
    assert note.data["profit"] == "2.00" and d.state.trade is None
    assert "profit 2.00 USDT" in d.said()[-1]
    (sold,) = [c for c in cmds if isinstance(c, Notification) and c.kind == "fill"]  # as every bot's fills
    assert sold.id == "t1:fill:t1-000003" and sold.data["qty"] == "1" and "SELL 1" in sold.text


def test_the_entrys_fill_is_notified() -> None:
    d = bot(take_profits=(Target(gain=D("0.02")),), stop_loss=D("0.01"))
    (bought,) = [c for c in entered(d) if isinstance(c, Notification) and c.kind == "fill"]
    assert bought.id == "t1:fill:t1-000001" and "BUY 1" in bought.text


def test_several_targets_split_the_position_the_last_taking_the_rest():
    d = bot(take_profits=(Target(gain=D("0.01"), share=D("0.3")), Target(gain=D("0.02")), Target(gain=D("0.03"))),
            stop_loss=D("0.05"))  # fmt: skip
    a, b, c = places(entered(d, base_fee="0.001"))  # the fee taken in BTC: Q = 0.999
    assert [legs(x)[0][1:3] for x in (a, b, c)] == [(D("0.2997"), D("101.00")), (D("0.34965"), D("102.00")),
                                                    (D("0.34965"), D("103.00"))]  # fmt: skip
    assert {legs(x)[1][3] for x in (a, b, c)} == {D("95.00")}


def test_a_trailing_stop_moves_by_cancel_then_replace_only_when_the_move_is_worth_it():
    d = bot(trailing_stop=D("0.02"))
    (stop,) = places(entered(d))
    assert (stop.order_type, stop.quantity, stop.stop_price) == (OrderType.STOP_LOSS, D("1"), D("98.00"))
    assert d.candle("100", "100.40", "100", "100.3") == []  # 98.39 is less than 0.02/4 of the price above 98
    cmds = d.candle("100.3", "101", "100.2", "100.9")  # 98.98: moved
    assert [type(c) for c in cmds] == [CancelOrder] and cmds[0].cid == stop.cid
    assert "stop 98.00 -> 98.98 (trailing stop, peak 101.00)" in d.said()[-1]
    assert (
        d.candle("100.9", "102", "100.9", "101.9") == []
    )  # a move asked while the cancel is out: no second cancel
    (again,) = places(d.update(stop.cid, OrderStatus.CANCELED))
    assert (again.order_type, again.quantity, again.stop_price) == (OrderType.STOP_LOSS, D("1"), D("99.96"))
    # the stop triggers: sold, the trade ends at a loss of 0.04
    cmds = d.fill(again.cid, price="99.96")
    assert [c.data["profit"] for c in cmds if isinstance(c, Notification) and c.kind == "cycle_closed"] == [
        "-0.04"
    ]


def test_break_even_moves_the_stop_of_the_other_targets_to_the_entry_once_the_first_traded():
    d = bot(
        take_profits=(Target(gain=D("0.01")), Target(gain=D("0.03"))), stop_loss=D("0.02"), break_even=True
    )
    first, second = places(entered(d))
    d.update(first.legs[1].cid, OrderStatus.EXPIRED)
    d.fill(first.legs[0].cid)
    cmds = d.candle("100", "101.5", "100.5", "101")
    assert [type(c) for c in cmds] == [CancelOrderList] and cmds[0].list_cid == second.list_cid
    assert "stop 98.00 -> 100.00 (break-even after the first target" in d.said()[-1]
    d.update(second.legs[1].cid, OrderStatus.CANCELED)
    (again,) = places(d.update(second.legs[0].cid, OrderStatus.CANCELED))
    assert legs(again) == [(OrderType.LIMIT_MAKER, D("0.5"), D("103.00"), None),
                           (OrderType.STOP_LOSS, D("0.5"), None, D("100.00"))]  # fmt: skip


def test_a_trailing_take_profit_trails_the_last_share_once_its_target_is_reached():
    d = bot(take_profits=(Target(gain=D("0.02"), share=D("0.5")), Target(gain=D("0.04"))), stop_loss=D("0.01"),
            trailing_take_profit=D("0.01"))  # fmt: skip
    oco, stop = places(entered(d))
    assert legs(oco)[0][1:3] == (D("0.5"), D("102.00"))
    assert (stop.order_type, stop.quantity, stop.stop_price) == (OrderType.STOP_LOSS, D("0.5"), D("99.00"))
    assert d.candle("100", "103.9", "100", "103") == []  # the last target 104 not reached yet
    cmds = d.candle("103", "106", "103", "105.5")
    assert [type(c) for c in cmds] == [CancelOrder] and cmds[0].cid == stop.cid
    assert "stop 99.00 -> 104.94 (trailing take profit, peak 106.00)" in d.said()[-1]
    (again,) = places(d.update(stop.cid, OrderStatus.CANCELED))
    assert (again.quantity, again.stop_price) == (D("0.5"), D("104.94"))


def test_what_no_venue_stop_covers_is_watched_by_the_bot_and_sold_at_market():
    d = bot(take_profits=(Target(gain=D("0.02")),), stop_loss=D("0.01"))
    (oco,) = places(entered(d))
    limit, stop = (leg.cid for leg in oco.legs)
    d.fill(limit, qty="0.4", status=OrderStatus.PARTIALLY_FILLED)
    d.update(stop, OrderStatus.EXPIRED)  # the venue expires the stop: 0.6 left uncovered
    assert d.candle("102", "102", "99.5", "99.5") == []  # above the stop 99
    cmds = d.candle("99.5", "99.5", "98.5", "98.9")
    # what is left of the limit leg is cancelled first (as its list: the venue cancels lists whole)
    assert [type(c) for c in cmds] == [CancelOrderList] and cmds[0].list_cid == oco.list_cid
    assert "no venue stop covers: 0.6 sold at market" in d.said()[-1].replace("0.60000", "0.6")
    (sell,) = places(d.update(limit, OrderStatus.CANCELED, cum_qty="0.4", cum_quote="40.8"))
    assert (sell.order_type, sell.side, sell.quantity) == (OrderType.MARKET, Side.SELL, D("0.6"))
    d.fill(sell.cid, price="98.9")
    assert d.state.trade is None and d.state.position.base == 0


def test_the_time_limit_cancels_the_exits_and_sells_at_market():
    d = bot(take_profits=(Target(gain=D("0.05")),), stop_loss=D("0.05"), time_limit_s=600)
    cmds = entered(d)
    (timer,) = [c for c in cmds if isinstance(c, SetTimer)]
    (oco,) = places(cmds)
    assert timer.due == d.now + 600_000
    cmds = d.timer(timer.name, timer.due)
    assert [type(c) for c in cmds] == [CancelOrderList]
    d.update(oco.legs[0].cid, OrderStatus.CANCELED)
    (sell,) = places(d.update(oco.legs[1].cid, OrderStatus.CANCELED))
    assert (sell.order_type, sell.quantity) == (OrderType.MARKET, D("1"))
    assert "time limit of 600 s" in " ".join(d.said())


def test_the_time_limit_says_what_it_sells_not_the_dust_it_cannot():
    """An exit whose limit leg traded all but dust under the minimum order: the time limit sells
    nothing at market, and says so instead of "0.00005 BTC sold"."""
    d = bot(take_profits=(Target(gain=D("0.05")),), stop_loss=D("0.05"), time_limit_s=600)
    cmds = entered(d)
    (timer,) = [c for c in cmds if isinstance(c, SetTimer)]
    (oco,) = places(cmds)
    d.update(oco.legs[0].cid, OrderStatus.PARTIALLY_FILLED, cum_qty="0.99995", cum_quote="104.99475")
    d.timer(timer.name, timer.due)
    said = " ".join(d.said())
    assert (
        "time limit of 600 s reached: exits cancelled, 0 BTC sold at market (0.00005 BTC under a step or the minimum order stays)"
        in said
    ), said


def test_stop_and_close_cancel_lists_as_lists_and_end_the_trade():
    d = bot(take_profits=(Target(gain=D("0.02")), Target(gain=D("0.04"))), stop_loss=D("0.01"))
    a, b = places(entered(d))
    cmds = d.control(ControlAction.CLOSE)
    assert [c.list_cid for c in cmds if isinstance(c, CancelOrderList)] == [a.list_cid, b.list_cid]
    assert not [c for c in cmds if isinstance(c, CancelOrder)] and d.state.trade is None
    for leg in (*a.legs, *b.legs[:1]):
        assert not places(d.update(leg.cid, OrderStatus.CANCELED))
    (sale,) = places(d.update(b.legs[1].cid, OrderStatus.CANCELED))
    assert (sale.order_type, sale.quantity) == (OrderType.MARKET, D("1"))


def test_a_limit_entry_that_ends_unfilled_ends_the_trade():
    d = Driver(OneTradeBot(), OneTrade(exits=Exits(stop_loss=D("0.01")), price=D("99")))
    (buy,) = d.candle("100", "100", "100", "100")
    assert (buy.order_type, buy.price) == (OrderType.LIMIT, D("99"))
    d.update(buy.cid, OrderStatus.CANCELED)
    assert d.state.trade is None and "ended without a fill" in d.said()[-1]


def test_place_oco_rounds_like_the_single_helpers_and_refuses_what_a_filter_refuses():
    d = bot()
    d.candle("100", "100", "100", "100")
    ctx = d.ctx()
    state, oco = place_oco(
        d.state, ctx, Side.BUY, D("0.123456"), above=D("110.005"), below=D("89.999"), tag="r"
    )
    assert oco is not None and legs(oco) == [(OrderType.STOP_LOSS, D("0.12345"), None, D("110.00")),
                                             (OrderType.LIMIT_MAKER, D("0.12345"), D("89.99"), None)]  # fmt: skip
    assert (
        place_oco(state, ctx, Side.BUY, D("0.00001"), above=D("110"), below=D("90"))[1] is None
    )  # min notional
    with pytest.raises(ValueError, match="below"):
        place_oco(state, ctx, Side.SELL, D("1"), above=D("90"), below=D("110"))


def test_a_state_with_a_trade_on_saves_and_loads_and_an_old_state_has_none():
    d = bot(take_profits=(Target(gain=D("0.02")),), trailing_stop=D("0.01"), time_limit_s=60)
    entered(d)
    data = d.strategy.encode_state(d.state)
    assert d.strategy.decode_state(data) == d.state and d.state.trade is not None
    assert d.strategy.decode_state(b'{"seq":3}').trade is None  # saved before smart trades: loads as before


def test_paused_a_move_under_way_is_finished_and_no_new_one_starts():
    d = bot(trailing_stop=D("0.02"))
    (stop,) = places(entered(d))
    assert [type(c) for c in d.candle("100", "101", "100", "101")] == [CancelOrder]
    d.control(ControlAction.PAUSE)
    (again,) = places(d.update(stop.cid, OrderStatus.CANCELED))  # the position stays protected
    assert again.stop_price == D("98.98")
    assert d.candle("101", "105", "101", "105") == []  # paused: candles do not reach the helper


def test_place_list_takes_every_id_from_the_sequence_and_cancel_list_marks_every_leg():
    d = bot()
    d.candle("100", "100", "100", "100")
    ctx = d.ctx()
    legs = (
        Leg(Side.BUY, OrderType.LIMIT, D("1"), D("99")),
        Leg(Side.SELL, OrderType.LIMIT_MAKER, D("1"), D("105")),
    )
    state, oto = place_list(d.state, ctx, ListKind.OTO, legs, tag="oto")
    assert oto is not None and (oto.list_cid, *(leg.cid for leg in oto.legs)) == (
        "t1-000002",
        "t1-000003",
        "t1-000004",
    )
    assert [state.orders[leg.cid].list_cid for leg in oto.legs] == [oto.list_cid] * 2
    state, cancel = cancel_list(state, ctx, oto.list_cid)
    assert isinstance(cancel, CancelOrderList) and cancel.list_cid == oto.list_cid
    assert all(r.cancel_requested for r in state.orders.values() if r.list_cid == oto.list_cid)
    assert cancel_list(state, ctx, oto.list_cid)[1] is None  # asked already


def bracket(kind: ListKind = ListKind.OTO) -> tuple[Leg, ...]:
    """Buy 1 at 99, then (pending) sell it at 105 (OTO) or at 105 / stop 95 (OTOCO)."""
    buy = Leg(Side.BUY, OrderType.LIMIT, D("1"), D("99"))
    take = Leg(Side.SELL, OrderType.LIMIT_MAKER, D("1"), D("105"))
    if kind is ListKind.OTO:
        return buy, take
    return buy, take, Leg(Side.SELL, OrderType.STOP_LOSS, D("1"), stop_price=D("95"))


@pytest.mark.parametrize("kind", [ListKind.OTO, ListKind.OTOCO])
def test_a_brackets_pending_sells_sell_what_its_buy_brings_not_the_position_held(kind):
    d = bot()
    entered(d)  # 1 BTC held, nothing out
    ctx = d.ctx()
    state, first = place_list(d.state, ctx, kind, bracket(kind))
    assert first is not None
    assert [state.orders[leg.cid].pending for leg in first.legs] == [False] + [True] * (len(first.legs) - 1)
    assert sellable(state) == D("1")  # its sells wait for its own buy: the 1 BTC held is still free
    state, second = place_list(state, ctx, kind, bracket(kind))
    assert second is not None and sellable(state) == D("1")
    state, oco = place_oco(state, ctx, Side.SELL, D("1"), above=D("110"), below=D("90"))
    assert oco is not None and sellable(state) == D("0")  # the held 1 BTC is now out
    assert place_oco(state, ctx, Side.SELL, D("1"), above=D("110"), below=D("90"))[1] is None
    d.state = state
    d.update(first.legs[0].cid, OrderStatus.FILLED, cum_qty="1", cum_quote="99")
    assert d.state.position.base == D("2") and sellable(d.state) == D("0")  # its sells now sell that


def test_a_persons_cancel_of_one_leg_cancels_its_list():
    d = bot(take_profits=(Target(gain=D("0.02")),), stop_loss=D("0.01"))
    (oco,) = places(entered(d))
    cmds = d.control(ControlAction.CANCEL, cid=oco.legs[1].cid)
    assert [c.list_cid for c in cmds if isinstance(c, CancelOrderList)] == [oco.list_cid]
    d.update(oco.legs[0].cid, OrderStatus.CANCELED)
    cmds = d.update(oco.legs[1].cid, OrderStatus.CANCELED)
    assert "not placed: its orders ended unfilled; the bot watches its stop 99.00" in d.said()[-1]
    # a person hears it too: the position has no venue stop now
    (warn,) = [c for c in cmds if isinstance(c, Notification) and c.kind == "exit_not_placed"]
    assert warn.level == Level.WARNING and "the bot watches its stop 99.00" in warn.text
    assert d.candle("100", "100", "98", "98.5") and d.state.trade.slots[0].selling  # the watch sells


def test_an_entry_filled_in_part_by_a_close_is_cancelled_for_the_rest_and_what_it_bought_is_protected():
    d = Driver(OneTradeBot(), OneTrade(exits=Exits(stop_loss=D("0.01")), price=D("99")))
    (buy,) = d.candle("100", "100", "100", "100")
    d.fill(buy.cid, qty="0.4", status=OrderStatus.PARTIALLY_FILLED)
    assert [type(c) for c in d.candle("99", "99.5", "98.9", "99.2")] == [CancelOrder]
    (stop,) = places(d.update(buy.cid, OrderStatus.CANCELED, cum_qty="0.4", cum_quote="39.6"))
    assert (stop.order_type, stop.quantity, stop.stop_price) == (OrderType.STOP_LOSS, D("0.4"), D("98.01"))


def test_a_time_limit_due_while_paused_is_acted_on_at_resume():
    d = bot(take_profits=(Target(gain=D("0.05")),), stop_loss=D("0.05"), time_limit_s=600)
    (timer,) = [c for c in entered(d) if isinstance(c, SetTimer)]
    d.control(ControlAction.PAUSE)
    assert d.timer(timer.name, timer.due) == []  # paused: nothing sent
    cmds = d.control(ControlAction.RESUME)
    assert [type(c) for c in cmds if not isinstance(c, Notification)] == [CancelOrderList]
    assert "time limit of 600 s reached" in " ".join(d.said())


def test_a_sell_oco_for_more_than_the_position_is_not_sent():
    d = bot()
    entered(d)  # 1 BTC held, no exits (none declared)
    ctx = d.ctx()
    assert place_oco(d.state, ctx, Side.SELL, D("1"), above=D("102"), below=D("98"))[1] is not None
    state, oco = place_oco(d.state, ctx, Side.SELL, D("0.6"), above=D("102"), below=D("98"))
    assert (
        place_oco(state, ctx, Side.SELL, D("0.5"), above=D("103"), below=D("97"))[1] is None
    )  # 0.6 + 0.5 > 1
    assert place_oco(state, ctx, Side.SELL, D("0.4"), above=D("103"), below=D("97"))[1] is not None


def test_texts_name_a_trade_once() -> None:
    """The manual bot's trades are tagged "trade:{request id}": "trade trade:17..." said it twice."""
    assert [named(t) for t in ("trade", "trade:17-ab", "range3")] == ["trade", "trade 17-ab", "trade range3"]
