"""A person's TradeRequest through the strategy interface (Strategy._trade, on_trade) and the
`manual` bot (strategies/manual.py): once per request id, only for the bot's symbol, refused
by a bot that takes no manual trades, by a paused bot, beyond max_quote; a SELL closes."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import msgspec

from shared.exits import Exits, Target
from shared.ids import seq_of
from shared.messages import (
    BotControl,
    BotSynced,
    CancelOrder,
    CancelOrderList,
    ControlAction,
    Notification,
    OrderStatus,
    OrderType,
    OrderUpdate,
    PlaceOrder,
    PlaceOrderList,
    Side,
    TradeRequest,
)
from shared.strategy.registry import load_strategy
from shared.strategy.state import RECENT_TRADES, Mode
from shared.strategy.testing import BTC_FILTERS, Driver
from shared.trade_control import TradeWatch
from strategies.dca import DcaStrategy
from strategies.manual import ManualStrategy

D = Decimal
replace = msgspec.structs.replace
EXITS = Exits(take_profits=(Target(gain=Decimal("0.02")),), stop_loss=Decimal("0.01"))


def trade(rid: str = "r1", *, side: Side = Side.BUY, symbol: str = "BTCUSDT", quote: str = "100",
          bot: str = "t1") -> TradeRequest:  # fmt: skip
    return TradeRequest(id=rid, bot=bot, symbol=symbol, side=side, quote=Decimal(quote) if side == Side.BUY else None,
                        exits=EXITS, ts=1)  # fmt: skip


def outcomes(d: Driver) -> list[tuple[str, str]]:
    return [(x.fields.get("request", ""), x.fields.get("outcome", "")) for x in d.decisions]


def test_the_manual_strategy_is_a_built_in() -> None:
    assert isinstance(load_strategy("manual"), ManualStrategy)


def test_a_bot_that_takes_no_manual_trades_refuses_with_a_notification() -> None:
    d = Driver(DcaStrategy(), {"base_order_quote": 100})
    cmds = d.send(trade())
    (note,) = cmds
    assert isinstance(note, Notification) and note.kind == "refused"
    assert "t1 takes no manual trades" in note.text
    assert outcomes(d) == [("r1", "refused")]
    assert d.state.trade_requests == ("r1",)


def test_another_symbol_is_refused_before_the_strategy_sees_it() -> None:
    d = Driver(ManualStrategy())
    d.candle("100", "100", "100", "100")
    d.send(trade(symbol="ETHUSDT"))
    assert outcomes(d) == [("r1", "refused")]
    assert "t1 trades BTCUSDT, not ETHUSDT" in d.said()[0]


def test_the_same_request_id_twice_is_one_answer_and_the_ids_are_bounded() -> None:
    d = Driver(DcaStrategy(), {"base_order_quote": 100})
    d.send(trade("r1"))
    assert d.send(trade("r1")) == []  # no second notification, no order
    assert outcomes(d) == [("r1", "refused"), ("r1", "duplicate")]
    for i in range(RECENT_TRADES + 5):
        d.send(trade(f"x{i}"))
    assert (
        len(d.state.trade_requests) == RECENT_TRADES and d.state.trade_requests[-1] == f"x{RECENT_TRADES + 4}"
    )


def test_a_paused_manual_bot_refuses_a_buy_naming_resume() -> None:
    d = Driver(ManualStrategy())
    d.control(ControlAction.PAUSE)
    d.send(trade())
    assert outcomes(d) == [("r1", "refused")]
    assert "t1 is paused: `automata resume t1` first" in d.said()[0]


def test_max_quote_refuses_a_bigger_trade() -> None:
    d = Driver(ManualStrategy(), {"max_quote": "50"})
    d.candle("100", "100", "100", "100")
    d.send(trade(quote="100"))
    assert outcomes(d) == [("r1", "refused")] and "above max_quote 50" in d.said()[0]


def test_a_sell_with_nothing_held_is_refused_and_with_a_position_closes() -> None:
    d = Driver(ManualStrategy())
    d.candle("100", "100", "100", "100")
    d.send(trade("s1", side=Side.SELL))
    assert outcomes(d) == [("s1", "refused")] and "holds nothing to sell" in d.said()[0]
    # a position (as a close's sale would find it): bought by a market order of the bot's own
    d.send(BotControl(bot="t1", action=ControlAction.RESUME, ts=2))
    from shared.strategy.actions import market_order

    d.state, buy = market_order(d.state, d.ctx(), Side.BUY, quote=Decimal(50))
    assert buy is not None
    d.fill(buy.cid, price="100")
    cmds = d.send(trade("s2", side=Side.SELL))
    sells = [c for c in cmds if isinstance(c, PlaceOrder)]
    assert [(s.side, s.order_type.value, s.quantity) for s in sells] == [
        (Side.SELL, "MARKET", Decimal("0.5"))
    ]
    assert outcomes(d)[-1] == ("s2", "closing") and d.state.mode == Mode.RUNNING
    d.fill(sells[0].cid, price="101")
    assert d.state.position.base == 0 and d.state.orders == {}


def test_the_request_ids_survive_the_state_round_trip() -> None:
    d = Driver(ManualStrategy())
    d.send(trade("r9", symbol="ETHUSDT"))
    strategy = ManualStrategy()
    assert strategy.decode_state(strategy.encode_state(d.state)).trade_requests == ("r9",)


def test_a_buy_opens_a_smart_trade_whose_exits_follow_the_fill_and_a_second_waits() -> None:
    d = Driver(ManualStrategy())
    d.candle("100", "100", "100", "100")
    (entry, note) = d.send(trade("b1"))
    assert isinstance(entry, PlaceOrder) and (entry.side, entry.quote_quantity) == (Side.BUY, Decimal(100))
    assert isinstance(note, Notification) and "entry t1-000001" in note.text
    assert outcomes(d)[-1] == ("b1", "sent") and d.decisions[-1].fields["cid"] == entry.cid
    assert "trade b1 (cli): buy BTCUSDT quote 100 at market tp 2% sl 1%; entry t1-000001" in d.said()
    # a second trade while this one is on: refused, saying how to close the first
    d.send(trade("b2"))
    assert outcomes(d)[-1] == ("b2", "refused") and "has a trade open already" in d.said()[-1]
    # the entry fills: the exit goes out (an OCO: take profit 2 % above, stop 1 % below)
    exits = d.fill(entry.cid, price="100")
    (oco,) = [c for c in exits if isinstance(c, PlaceOrderList)]
    assert [(leg.side, leg.price or leg.stop_price) for leg in oco.legs] == [
        (Side.SELL, D("102")),
        (Side.SELL, D("99")),
    ]
    # a sell closes: the list is cancelled, the position sold once its legs are gone
    cmds = d.send(trade("s1", side=Side.SELL))
    assert any(isinstance(c, CancelOrder | CancelOrderList) for c in cmds) and d.state.trade is None
    assert outcomes(d)[-1] == ("s1", "closing")


def test_a_closed_trade_leaves_the_bot_running_and_the_next_buy_waits_for_the_sale() -> None:
    """`trade sell` closes the trade, not the bot: a buy while the close still sells is refused,
    saying why; once the sale filled, the next trade goes out with no resume."""
    d = Driver(ManualStrategy())
    d.candle("100", "100", "100", "100")
    (entry, _) = d.send(trade("b1"))
    exits = d.fill(entry.cid, price="100")
    (oco,) = [c for c in exits if isinstance(c, PlaceOrderList)]
    d.send(trade("s1", side=Side.SELL))
    assert d.state.mode == Mode.RUNNING and d.state.closing
    d.send(trade("b2"))
    assert outcomes(d)[-1] == ("b2", "refused") and "still selling out its last trade" in d.said()[-1]
    # the exits' cancel answered: the sale goes out; its fill ends the close
    sale = [
        c for leg in oco.legs for c in d.update(leg.cid, OrderStatus.CANCELED) if isinstance(c, PlaceOrder)
    ]
    assert [(s.side, s.order_type.value) for s in sale] == [(Side.SELL, "MARKET")]
    d.fill(sale[0].cid, price="101")
    assert d.state.position.base == 0 and not d.state.closing and d.state.orders == {}
    (entry3, _) = d.send(trade("b3"))
    assert isinstance(entry3, PlaceOrder) and outcomes(d)[-1] == ("b3", "sent")


def test_a_close_says_whether_a_sale_follows_and_the_senders_watch_ends_on_it() -> None:
    """The close's decision carries `sells`: no when only a limit entry was open (nothing held,
    no sale will come: `automata trade sell` returns at once), yes when a position is sold."""
    d = Driver(ManualStrategy())
    d.candle("100", "100", "100", "100")
    buy = msgspec.structs.replace(trade("b1"), price=Decimal("90"))  # a limit entry, resting
    (entry, _) = d.send(buy)
    assert isinstance(entry, PlaceOrder) and entry.price == Decimal("90")
    close = TradeRequest(id="s1", bot="t1", symbol="BTCUSDT", side=Side.SELL, ts=2)
    d.send(close)
    said = d.decisions[-1]
    assert said.fields["outcome"] == "closing" and said.fields["sells"] == "no"
    watch = TradeWatch(close)
    watch.feed(said)
    assert watch.done  # nothing to wait for
    # with a position held, the watch waits for the sale's final update
    d.update(entry.cid, OrderStatus.CANCELED)
    (entry2, _) = d.send(trade("b2"))
    d.fill(entry2.cid, price="100")
    close2 = TradeRequest(id="s2", bot="t1", symbol="BTCUSDT", side=Side.SELL, ts=3)
    cmds = d.send(close2)
    said = d.decisions[-1]
    assert said.fields["sells"] == "yes"
    watch = TradeWatch(close2)
    watch.feed(said)
    assert not watch.done
    assert any(isinstance(c, CancelOrder | CancelOrderList) for c in cmds)
    answers = [c for cid in list(d.state.orders) for c in d.update(cid, OrderStatus.CANCELED)]
    (sale,) = [c for c in answers if isinstance(c, PlaceOrder)]
    assert (sale.side, sale.order_type) == (Side.SELL, OrderType.MARKET)
    sold = OrderUpdate(cid=sale.cid, bot="t1", venue=d.venue, symbol="BTCUSDT", status=OrderStatus.FILLED,
                       side=Side.SELL, order_type=OrderType.MARKET, orig_qty=sale.quantity or D(0),
                       cum_filled_qty=sale.quantity or D(0), cum_quote_qty=D(100), ts=4)  # fmt: skip
    watch.feed(sold)
    assert watch.done and watch.update is sold


def _priced(rid: str, *, quote: str = "100", qty: str | None = None, price: str | None = None,
            exits: Exits = EXITS) -> TradeRequest:  # fmt: skip
    return TradeRequest(id=rid, bot="t1", symbol="BTCUSDT", side=Side.BUY, exits=exits, ts=1,
                        quote=None if qty else D(quote), quantity=D(qty) if qty else None,
                        price=D(price) if price else None)  # fmt: skip


def test_a_target_price_under_the_market_is_refused_before_anything_is_bought() -> None:
    """`automata trade buy BTCUSDT --quote 100 --tp 2` (the % forgotten: a target PRICE of 2) was
    bought at market, then its exit was refused by the filters: a position with no exit at all,
    the command saying all went well. Now the bot refuses it, naming the percent."""
    d = Driver(ManualStrategy())
    d.candle("41000", "41000", "41000", "41000")
    d.send(_priced("r1", exits=Exits(take_profits=(Target(price=D("2")),))))
    assert outcomes(d) == [("r1", "refused")] and not d.state.orders and d.state.trade is None
    assert "the target 2.00 is not above the last price 41,000.00 (a bare number is a price; a percent " \
           "needs its sign: 2%)" in d.said()[0]  # fmt: skip
    # a fixed stop at or over the market, against a limit entry's price too
    d.send(_priced("r2", exits=Exits(stop_price=D("41500"))))
    assert "the stop 41,500.00 is not below the last price 41,000.00" in d.said()[-1]
    d.send(_priced("r3", price="40000", exits=Exits(take_profits=(Target(price=D("39000")),))))
    assert "the target 39,000.00 is not above the entry price 40,000.00" in d.said()[-1]
    assert [o for _, o in outcomes(d)] == ["refused"] * 3 and not d.state.orders
    # the same terms above the market go out
    d.send(_priced("r4", exits=Exits(take_profits=(Target(price=D("42000")),), stop_price=D("40000"))))
    assert outcomes(d)[-1] == ("r4", "sent")


def test_a_trade_under_the_minimum_order_is_refused_naming_the_minimum() -> None:
    # the venue's filters come with 8 decimals ("5.00000000"): shown as the person would write them
    filters = msgspec.structs.replace(BTC_FILTERS, min_notional=D("5.00000000"), step_size=D("0.00001000"))
    d = Driver(ManualStrategy(), filters=filters)
    d.candle("41000", "41000", "41000", "41000")
    d.send(_priced("r1", quote="1"))
    assert "the entry (1.00 USDT) is under BTCUSDT's minimum order of 5 USDT" in d.said()[-1]
    d.send(_priced("r2", qty="0.0001"))
    assert "the entry (4.10 USDT) is under BTCUSDT's minimum order of 5 USDT" in d.said()[-1]
    d.send(_priced("r3", qty="0.000009", price="1000000"))
    assert "the entry's quantity 0.000009 is under BTCUSDT's minimum of 0.00001 BTC" in d.said()[-1]
    assert [o for _, o in outcomes(d)] == ["refused"] * 3 and not d.state.orders


def an_oco_out() -> tuple[Driver, PlaceOrder, Any, PlaceOrderList]:
    """A trade whose entry filled at 100 and put its exit OCO out, with the bot's state from
    before that fill: what Redis still holds after a cut that took the fill's writes."""
    d = Driver(ManualStrategy())
    d.candle("100", "100", "100", "100")
    (entry, _) = d.send(trade("b1"))
    before = d.state
    (oco,) = [c for c in d.fill(entry.cid, price="100") if isinstance(c, PlaceOrderList)]
    return d, entry, before, oco


def test_a_rolled_back_bot_claims_its_exit_list_the_venue_kept() -> None:
    """A power cut takes the bot back to before its entry's fill was booked and its exit OCO
    sent, while the venue kept the OCO (the gateway reports its legs: held, adoption.py). The
    fill booked again, the smart trade asks for the same OCO: the held legs are claimed (the list
    goes out under their ids, the gateway answers with them), not left holding the position's
    room while the bot watches the stop itself and sells what they sell too."""
    d, entry, before, oco = an_oco_out()
    d.state = before
    for leg in oco.legs:  # the gateway adopted the legs from the venue: their updates are held
        d.now += 1
        d.send(OrderUpdate(cid=leg.cid, bot="t1", venue="sim", symbol="BTCUSDT", status=OrderStatus.NEW,
                           side=leg.side, order_type=leg.order_type, price=leg.price, stop_price=leg.stop_price,
                           orig_qty=leg.quantity, list_cid=oco.list_cid, venue_ts=d.now, ts=d.now, adopted=True))  # fmt: skip
    assert set(d.state.adopted) == {leg.cid for leg in oco.legs}
    (again,) = [c for c in d.fill(entry.cid, price="100") if isinstance(c, PlaceOrderList)]
    assert again.list_cid == oco.list_cid and [leg.cid for leg in again.legs] == [leg.cid for leg in oco.legs]
    assert d.state.adopted == {} and {leg.cid for leg in oco.legs} <= set(d.state.orders)
    d.update(
        oco.legs[0].cid,
        OrderStatus.FILLED,
        cum_qty=oco.legs[0].quantity,
        cum_quote=oco.legs[0].quantity * 102,
    )
    assert d.state.position.sold == oco.legs[0].quantity and d.state.trade.slots[0].hit


def test_a_rolled_back_bot_claims_an_emulated_list_from_its_limit_leg_the_venue_kept() -> None:
    """The same cut on an emulated list whose records Redis lost too: the venue kept only its
    limit leg (a single order there: held without a list), the gateway's held stop leg is gone.
    The OCO asked again goes out under the list's own ids (place_list's numbering), which the
    gateway emulates again from that leg; a held single order of the bot's own is not taken."""
    d, entry, before, oco = an_oco_out()
    limit = oco.legs[0]
    d.state = before
    d.now += 1
    d.send(OrderUpdate(cid=limit.cid, bot="t1", venue="sim", symbol="BTCUSDT", status=OrderStatus.NEW,
                       side=limit.side, order_type=limit.order_type, price=limit.price, orig_qty=limit.quantity,
                       venue_ts=d.now, ts=d.now, adopted=True))  # fmt: skip
    (again,) = [c for c in d.fill(entry.cid, price="100") if isinstance(c, PlaceOrderList)]
    assert (again.list_cid, [leg.cid for leg in again.legs]) == (oco.list_cid, [leg.cid for leg in oco.legs])
    # the stop leg's id (never held: the gateway held it) is past the sequence: the next order skips it
    assert d.state.adopted == {} and d.state.seq == seq_of(oco.legs[-1].cid, "t1")


def test_exits_the_sync_held_back_go_out_once_in_step_claiming_the_lists_the_venue_kept() -> None:
    """After the cut the entry's fill comes while the bot is still syncing (nothing may be sent:
    the exit is left on the bot's own watch), then the venue's copies of its OCO are held. Once
    the gateway's sync answer comes, the exit is placed again, which claims them."""
    d, entry, before, oco = an_oco_out()
    d.state = replace(before, sync="tok")
    assert not [c for c in d.fill(entry.cid, price="100") if isinstance(c, PlaceOrderList)]
    for leg in oco.legs:
        d.now += 1
        d.send(OrderUpdate(cid=leg.cid, bot="t1", venue="sim", symbol="BTCUSDT", status=OrderStatus.NEW,
                           side=leg.side, order_type=leg.order_type, price=leg.price, stop_price=leg.stop_price,
                           orig_qty=leg.quantity, list_cid=oco.list_cid, venue_ts=d.now, ts=d.now, adopted=True))  # fmt: skip
    cmds = d.send(BotSynced(bot="t1", venue="sim", token="tok", max_seq=4))
    (again,) = [c for c in cmds if isinstance(c, PlaceOrderList)]
    assert (again.list_cid, [leg.cid for leg in again.legs]) == (oco.list_cid, [leg.cid for leg in oco.legs])
    assert d.state.adopted == {} and d.state.trade.slots[0].cids == tuple(leg.cid for leg in oco.legs)


def test_a_rolled_back_bot_claims_an_emulated_list_whose_stop_had_fired_and_sells_once() -> None:
    """The cut came after the gateway had fired an emulated OCO's stop: the limit leg cancelled,
    the stop leg sold at market under its own id, the list's records lost. The venue's two
    orders are held (closed, without a list); the OCO asked again claims them (its stop leg as
    the MARKET it became), the gateway answers with their states, and the sale is booked once:
    the position sold, the trade over, nothing placed again."""
    d, entry, before, oco = an_oco_out()
    limit, stop = oco.legs
    d.state = before
    sold = {"cum_filled_qty": stop.quantity, "cum_quote_qty": stop.quantity * 99}
    venue = [
        (limit, OrderStatus.CANCELED, limit.order_type, {}),
        (stop, OrderStatus.FILLED, OrderType.MARKET, sold),
    ]
    for leg, status, order_type, fills in venue:
        d.now += 1
        d.send(OrderUpdate(cid=leg.cid, bot="t1", venue="sim", symbol="BTCUSDT", status=status, side=leg.side,
                           order_type=order_type, price=leg.price if order_type is OrderType.LIMIT_MAKER else None,
                           orig_qty=leg.quantity, venue_ts=d.now, ts=d.now, adopted=True, **fills))  # fmt: skip
    assert set(d.state.adopted) == {limit.cid, stop.cid}
    (again,) = [c for c in d.fill(entry.cid, price="100") if isinstance(c, PlaceOrderList)]
    assert (again.list_cid, [leg.cid for leg in again.legs]) == (oco.list_cid, [leg.cid for leg in oco.legs])
    assert d.state.adopted == {}
    d.update(limit.cid, OrderStatus.CANCELED)  # the gateway's answer: the venue's states
    cmds = d.update(stop.cid, OrderStatus.FILLED, cum_qty=stop.quantity, cum_quote=stop.quantity * 99)
    assert not [c for c in cmds if isinstance(c, (PlaceOrder, PlaceOrderList))]
    assert d.state.position.sold == stop.quantity == d.state.position.bought
    assert d.state.trade is None
    assert not [c for c in d.candle("98", "98", "98", "98") if isinstance(c, (PlaceOrder, PlaceOrderList))]


def test_a_held_market_sale_alone_is_not_claimed_as_a_fired_stop_leg() -> None:
    """The bot's own market sale with a stop leg's terms, held without the limit leg beside it,
    is not a list's fired stop: the OCO asked again takes new ids and the sale stays held."""
    d, entry, before, oco = an_oco_out()
    stop = oco.legs[1]
    d.state = before
    d.now += 1
    d.send(OrderUpdate(cid=stop.cid, bot="t1", venue="sim", symbol="BTCUSDT", status=OrderStatus.NEW, side=stop.side,
                       order_type=OrderType.MARKET, orig_qty=stop.quantity, venue_ts=d.now, ts=d.now, adopted=True))  # fmt: skip
    again = [c for c in d.fill(entry.cid, price="100") if isinstance(c, PlaceOrderList)]
    assert not again or again[0].list_cid != oco.list_cid
    assert set(d.state.adopted) == {stop.cid}
