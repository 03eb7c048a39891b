"""A smart trade's sale the bot forgot across a power cut, booked from the venue (adoption.py
book_held): its exit takes it as a fill (shared/strategy/smart_booked.py), a finished one as
soon as it is held. Without it the position moved but the exit did not: it was placed and sold
again, or the trade never ended (the soak test_soak_smart_trades_whose_stop_fired_before_a_cut,
seeds 7 and 12)."""

from __future__ import annotations

from decimal import Decimal

from shared.exits import Exits, Target
from shared.messages import (
    CancelOrder,
    CancelOrderList,
    OrderStatus,
    OrderType,
    OrderUpdate,
    PlaceOrder,
    PlaceOrderList,
    Side,
    TradeRequest,
)
from shared.strategy.commands import Command
from shared.strategy.testing import Driver
from strategies.manual import ManualStrategy
from tests.test_manual_strategy import an_oco_out

D = Decimal


def held_sale(d: Driver, cid: str, order_type: OrderType, qty: str, *, filled: str, price: str,
              status: OrderStatus = OrderStatus.FILLED) -> list[Command]:  # fmt: skip
    """The gateway's update of a sale of the bot it adopted from the venue (the bot's state, rolled
    back by the cut, lacks it: held); `price`: its fills' (and a limit's own) price."""
    d.now += 1
    return d.send(OrderUpdate(cid=cid, bot="t1", venue="sim", symbol="BTCUSDT", status=status, side=Side.SELL,
                              order_type=order_type, price=D(price) if order_type != OrderType.MARKET else None,
                              orig_qty=D(qty), cum_filled_qty=D(filled), cum_quote_qty=D(filled) * D(price),
                              venue_ts=d.now, ts=d.now, adopted=True))  # fmt: skip


def placed(cmds: list[Command]) -> list[Command]:
    return [c for c in cmds if isinstance(c, (PlaceOrder, PlaceOrderList))]


def cancelled_lists(cmds: list[Command]) -> list[str]:
    return [c.list_cid for c in cmds if isinstance(c, CancelOrderList)]


def two_exits() -> tuple[Driver, PlaceOrderList, PlaceOrderList]:
    """A trade of 1 BTC at 100 whose two exits of 0.5 (targets 102 and 104, stop 99) are out."""
    d = Driver(ManualStrategy())
    d.candle("100", "100", "100", "100")
    exits = Exits(take_profits=(Target(gain=D("0.02"), share=D("0.5")), Target(gain=D("0.04"))),
                  stop_loss=D("0.01"))  # fmt: skip
    (entry, _) = d.send(TradeRequest(id="b1", bot="t1", symbol="BTCUSDT", side=Side.BUY, quote=D("100"),
                                     exits=exits, ts=1))  # fmt: skip
    first, second = [c for c in d.fill(entry.cid, price="100") if isinstance(c, PlaceOrderList)]
    return d, first, second


def test_a_held_stop_sale_of_an_exit_the_bot_watched_ends_the_trade() -> None:
    """Seed 12: the venue cancelled the exit's OCO (its stop moved) and sold the exit at market
    (the moved list's stop fired), Redis kept the bot's state from before. The OCO's cancels
    leave the exit on the bot's watch; the held sale, booked, sells the exit and ends the trade:
    nothing sold again when the close goes under its stop."""
    d, _, _, oco = an_oco_out()
    for leg in oco.legs:
        d.update(leg.cid, OrderStatus.CANCELED)
    assert not placed(held_sale(d, "t1-000007", OrderType.MARKET, "1", filled="1", price="99.5"))
    assert d.state.trade is None and d.state.position.base == 0 and not d.state.adopted
    said = "exit 1 sold 1 BTC by t1-000007 (MARKET), placed before a restart and booked now; sold"
    assert said in d.said()[-2]
    assert "trade b1 closed" in d.said()[-1]
    assert not placed(d.candle("98", "98", "97", "97"))


def test_a_held_sale_of_a_whole_exit_cancels_its_list_still_out() -> None:
    """Seed 7: the exit's OCO is out while a sale of the whole exit placed before the cut comes:
    the OCO would sell it again. It is cancelled; once it is gone the trade is over."""
    d, _, _, oco = an_oco_out()
    cmds = held_sale(d, "t1-000007", OrderType.MARKET, "1", filled="1", price="99.5")
    assert cancelled_lists(cmds) == [oco.list_cid]
    assert d.state.trade is not None and d.state.trade.slots[0].left == 0
    d.update(oco.legs[0].cid, OrderStatus.CANCELED)
    cmds = d.update(oco.legs[1].cid, OrderStatus.CANCELED)
    assert not placed(cmds) and d.state.trade is None and not d.state.orders


def test_a_held_sale_of_part_of_an_exit_puts_its_list_out_again_for_the_rest() -> None:
    d, _, _, oco = an_oco_out()
    cmds = held_sale(d, "t1-000007", OrderType.MARKET, "0.4", filled="0.4", price="99.5")
    assert cancelled_lists(cmds) == [oco.list_cid]
    d.update(oco.legs[0].cid, OrderStatus.CANCELED)
    (again,) = placed(d.update(oco.legs[1].cid, OrderStatus.CANCELED))
    assert isinstance(again, PlaceOrderList)
    assert [(leg.quantity, leg.price, leg.stop_price) for leg in again.legs] == [
        (D("0.60000"), D("102.00"), None),
        (D("0.60000"), None, D("99.00")),
    ]
    assert d.state.position.base == D("0.6") and d.state.trade.slots[0].sold == D("0.4")


def test_a_held_sale_skips_an_exit_whose_market_sale_claimed_its_twin() -> None:
    """Both exits, of the same size, sold at market before the cut (the venue reports them open
    first). After it the first is on the bot's watch, whose sale, asked again, claims one of
    them; the second's OCO is out. The other sale, finished, is the second exit's, its OCO
    cancelled: told to the first, sold already, it would leave the second to sell again."""
    d, first, second = two_exits()
    for leg in first.legs:
        d.update(leg.cid, OrderStatus.CANCELED)
    for cid in ("t1-000011", "t1-000012"):
        held_sale(d, cid, OrderType.MARKET, "0.5", filled="0", price="98.9", status=OrderStatus.NEW)
    (sale,) = placed(d.candle("99", "99", "98.9", "98.9"))  # the first exit's stop 99, on its watch
    assert sale.cid == "t1-000011" and d.state.adopted.keys() == {"t1-000012"}
    cmds = held_sale(d, "t1-000012", OrderType.MARKET, "0.5", filled="0.5", price="98.9")
    assert cancelled_lists(cmds) == [second.list_cid]
    assert d.state.trade.slots[1].left == 0 and d.state.trade.slots[0].left == D("0.5")
    d.update("t1-000011", OrderStatus.FILLED, cum_qty="0.5", cum_quote="49.45")
    for leg in second.legs:
        assert not placed(d.update(leg.cid, OrderStatus.CANCELED))
    assert d.state.trade is None and d.state.position.base == 0


def test_a_held_limit_sale_goes_to_the_exit_whose_target_it_sells_at() -> None:
    """The second exit's limit leg traded under ids the bot forgot. It is that exit's (its
    target hit); the first exit's OCO stays out, and the trade ends with its sale."""
    d, first, second = two_exits()
    for leg in second.legs:  # the second exit's stop moved: its list cancelled, another sent
        d.update(leg.cid, OrderStatus.CANCELED)
    cmds = held_sale(d, "t1-000012", OrderType.LIMIT_MAKER, "0.5", filled="0.5", price="104")
    assert not [c for c in cmds if isinstance(c, (CancelOrder, CancelOrderList))] and not placed(cmds)
    one, two = d.state.trade.slots
    assert (one.sold, one.cids) == (0, tuple(leg.cid for leg in first.legs))
    assert (two.sold, two.hit, two.cids) == (D("0.5"), True, ())
    d.fill(first.legs[0].cid)
    d.update(first.legs[1].cid, OrderStatus.EXPIRED)
    assert d.state.trade is None and d.state.position.base == 0
    assert D(d.decisions[-1].fields["profit"]) == 3


def test_an_open_held_sale_booked_on_a_candle_stays_its_exits_until_it_ends() -> None:
    """An open limit leg at the exit's target, placed before the cut, booked on the first candle
    that opened after it and cancelled: a fill that comes before its cancel does is the exit's;
    once it ended, the rest of the exit goes out again."""
    d, _, _, oco = an_oco_out()
    for leg in oco.legs:
        d.update(leg.cid, OrderStatus.CANCELED)
    held_sale(d, "t1-000006", OrderType.LIMIT_MAKER, "1", filled="0", price="102", status=OrderStatus.NEW)
    assert not [c for c in d.candle("101", "101", "101", "101") if isinstance(c, CancelOrder)]  # its candle
    cmds = d.candle("101", "101.5", "101", "101")
    assert [c.cid for c in cmds if isinstance(c, CancelOrder)] == ["t1-000006"]
    assert d.state.trade.slots[0].cids == ("t1-000006",)
    (again,) = placed(d.update("t1-000006", OrderStatus.CANCELED, cum_qty="0.3", cum_quote="30.6"))
    assert d.state.trade.slots[0].sold == D("0.3") and d.state.position.base == D("0.7")
    assert [leg.quantity for leg in again.legs] == [D("0.70000")] * 2
