"""A person's cancel of one of a bot's orders (BotControl CANCEL, shared/strategy/cancel_asked.py),
step by step with the Driver: the bot sends the cancel itself, once, says so in a decision and a
notification naming who asked, and answers a cancel it cannot send; each built-in strategy then
takes the CANCELED update as any cancel, without booking anything twice."""

from __future__ import annotations

from decimal import Decimal as D

from shared.messages import CancelOrder, Notification, OrderStatus, OrderType, OrderUpdate, PlaceOrder, Side
from shared.strategy.cancel_asked import CancelOutcome
from shared.strategy.state import Mode
from shared.strategy.testing import Driver
from strategies.dca import DcaStrategy
from strategies.fractal_trailing import FractalTrailingStrategy
from strategies.grid import GridStrategy

CANCEL = "cancel"  # the Driver takes a control action by its value too


def cancels(cmds: list) -> list[str]:
    return [c.cid for c in cmds if isinstance(c, CancelOrder)]


def placed(cmds: list) -> list[PlaceOrder]:
    return [c for c in cmds if isinstance(c, PlaceOrder)]


def outcome(d: Driver) -> str:
    return d.decisions[-1].fields["outcome"]


def by_tag(d: Driver, tag: str):
    return next(r for r in d.state.orders.values() if r.tag == tag)


def test_a_dca_safety_order_cancelled_on_request_once_then_put_back_without_double_counting():
    d = Driver(DcaStrategy(), {"fee": "0"})
    base = d.candle("100", "100", "100", "100")[0]
    d.fill(base.cid, price="100")
    so1 = by_tag(d, "so1")
    position = d.state.position
    cmds = d.control(CANCEL, cid=so1.cid, source="web")
    assert cancels(cmds) == [so1.cid] and placed(cmds) == []
    assert outcome(d) == CancelOutcome.SENT and d.decisions[-1].fields["source"] == "web"
    (note,) = [c for c in cmds if isinstance(c, Notification)]
    assert note.kind == "bot_cancel" and "(web)" in note.text and so1.cid in note.text
    assert d.state.orders[so1.cid].cancel_requested and d.state.mode == Mode.RUNNING

    again = d.control(CANCEL, cid=so1.cid, source="web")  # the same request again: nothing sent
    assert cancels(again) == [] and outcome(d) == CancelOutcome.ALREADY_ASKED

    cmds = d.update(so1.cid, OrderStatus.CANCELED)
    assert so1.cid not in d.state.orders and d.state.position == position  # nothing filled, nothing booked
    assert d.state.level == 0  # the level is not done: the ladder puts it back (acceptable)
    assert [p.side for p in placed(cmds)] in ([], [Side.BUY])
    assert d.update(so1.cid, OrderStatus.CANCELED) == []  # a late duplicate changes nothing
    after = d.control(CANCEL, cid=so1.cid)
    assert (
        cancels(after) == []
        and outcome(d) == CancelOutcome.NOT_OPEN
        and "finished already" in d.decisions[-1].text
    )


def test_an_unknown_order_is_answered_and_nothing_is_sent():
    d = Driver(DcaStrategy(), {"fee": "0"})
    cmds = d.control(CANCEL, cid="t1-000099", source="cli")
    assert cancels(cmds) == [] and outcome(d) == CancelOutcome.NOT_OPEN
    assert "holds no such open order" in d.decisions[-1].text
    assert [c.level for c in cmds if isinstance(c, Notification)] == ["warning"]


def test_a_paused_grids_level_cancelled_on_request_the_mode_stays():
    d = Driver(
        GridStrategy(), {"lower": "90", "upper": "110", "levels": 5, "quote_per_level": "100", "fee": "0"}
    )
    init = next(c for c in placed(d.candle("101", "101", "101", "101")) if c.order_type == OrderType.MARKET)
    d.fill(init.cid, price="101")
    d.control("pause")
    buy = next(r for r in d.state.orders.values() if r.side == Side.BUY)
    position = d.state.position
    assert cancels(
        d.control(
            CANCEL,
            cid=buy.cid,
            source="telegram",
        )
    ) == [buy.cid]
    assert d.state.mode == Mode.PAUSED
    d.update(buy.cid, OrderStatus.CANCELED)
    assert buy.cid not in d.state.orders and d.state.position == position
    (again,) = [p for p in placed(d.control("resume")) if p.price == buy.price]  # the level again
    assert again.cid != buy.cid and again.side == Side.BUY


def test_a_fractal_stop_cancelled_on_request_is_forgotten_and_nothing_sold_twice():
    d = Driver(FractalTrailingStrategy(), {"entry": "100", "quantity": "1", "interval": "1m", "pad": "1"})
    stop = None
    for low in ["105", "104", "102", "104", "106"]:
        c = str(D(low) + 2)
        stop = placed(d.candle(c, str(D(c) + 1), low, c)) or stop
    (stop,) = stop
    d.update(stop.cid, OrderStatus.NEW)
    assert cancels(d.control(CANCEL, cid=stop.cid)) == [stop.cid]
    d.update(stop.cid, OrderStatus.CANCELED)
    assert d.state.stop_cid != stop.cid and d.state.position.base == 1
    sells = [r for r in d.state.orders.values() if r.side == Side.SELL]
    assert sum((r.quantity for r in sells), D(0)) <= 1  # a stop put back sells the position once


def test_a_held_order_from_before_a_restart_is_booked_then_cancelled():
    d = Driver(DcaStrategy(), {"fee": "0"})
    held = OrderUpdate(cid="t1-000005", bot="t1", venue="sim", symbol="BTCUSDT", status=OrderStatus.NEW,
                       side=Side.BUY, order_type=OrderType.LIMIT, price=D(90), orig_qty=D("0.1"), ts=1)  # fmt: skip
    d.send(held)
    assert "t1-000005" in d.state.adopted
    cmds = d.control(CANCEL, cid="t1-000005")
    assert cancels(cmds) == ["t1-000005"] and outcome(d) == CancelOutcome.SENT
    assert d.state.orders["t1-000005"].cancel_requested and "t1-000005" not in d.state.adopted
