"""The paper venue's Bybit V5 spot conditional orders (orderFilter=StopOrder), driven by the
real pybit clients: placed Untriggered, pushed Triggered when the price reaches the trigger,
then the active order it became; cancelled only under their orderFilter, then Deactivated;
a trigger direction already reached refused with Bybit's 110092 / 110093.

The venue runs in step mode: prices move only when a test pushes one (`set_price`).
"""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from pybit.exceptions import InvalidRequestError

from services.exchange_sim.bybit_state import ACCOUNT, BybitFace
from services.exchange_sim.config import load_sim_config
from services.exchange_sim.venue import Venue
from shared.matching.engine import OrderRequest, OrderType, Side
from tests.helpers.bybit import Inbox, bybit_http, private_fixture
from tests.helpers.sim import SimVenue, sim_fixture

sim = sim_fixture()
private = private_fixture()
SPOT = {"category": "spot", "symbol": "BTCUSDT"}
RISE, FALL = 1, 2


def last_price(sim: SimVenue) -> Decimal:
    return Decimal(str(sim.control.state()["prices"]["BTCUSDT"]))


def conditional(session: Any, side: str, trigger: Decimal, link_id: str, **extra: Any) -> dict[str, Any]:
    """A conditional Market order of 0.01 BTC (a Limit one with `orderType="Limit", price=...`)."""
    params = {"orderType": "Market", "qty": "0.01", "marketUnit": "baseCoin", **extra}
    return session.place_order(
        **SPOT, side=side, triggerPrice=str(trigger), orderFilter="StopOrder", orderLinkId=link_id, **params
    )["result"]


def the_order(session: Any, link_id: str) -> dict[str, Any]:
    [row] = session.get_open_orders(category="spot", orderLinkId=link_id)["result"]["list"]
    return row


def statuses(inbox: Inbox, link_id: str) -> list[str]:
    return [o["orderStatus"] for o in inbox.items("order") if o["orderLinkId"] == link_id]


def test_a_trigger_already_reached_in_its_direction_is_refused(sim: SimVenue) -> None:
    s = bybit_http(sim)
    last = last_price(sim)
    with pytest.raises(InvalidRequestError) as info:
        conditional(s, "Sell", last + 100, "c-refused-1", triggerDirection=FALL)
    assert info.value.status_code == 110093 and f"trigger_price[{last + 100}]" in info.value.message
    with pytest.raises(InvalidRequestError) as info:
        conditional(s, "Buy", last - 100, "c-refused-2", triggerDirection=RISE)
    assert info.value.status_code == 110092
    with pytest.raises(InvalidRequestError) as info:
        conditional(s, "Buy", last + 100, "c-refused-3", triggerDirection=3)
    assert info.value.status_code == 10001
    assert s.get_open_orders(category="spot")["result"]["list"] == []


def test_a_stop_market_is_untriggered_then_triggered_then_filled(
    sim: SimVenue, private: tuple[Any, Inbox]
) -> None:
    _ws, inbox = private
    s = bybit_http(sim)
    last = last_price(sim)
    trigger = last - 100
    conditional(s, "Sell", trigger, "c-000001", triggerDirection=FALL)
    order = the_order(s, "c-000001")
    assert Decimal(order["lastPriceOnCreated"]) == last  # what tells a direction on Bybit spot
    assert (order["orderStatus"], order["stopOrderType"], order["orderType"], order["triggerDirection"]) == (
        "Untriggered", "Stop", "Market", FALL
    )  # fmt: skip
    assert Decimal(order["triggerPrice"]) == trigger
    sim.control.set_price("BTCUSDT", str(trigger + 1))
    assert the_order(s, "c-000001")["orderStatus"] == "Untriggered"
    sim.control.set_price("BTCUSDT", str(trigger))
    inbox.wait_item("order", lambda o: o["orderLinkId"] == "c-000001" and o["orderStatus"] == "Filled")
    assert statuses(inbox, "c-000001") == ["Untriggered", "Triggered", "Filled"]
    pushed = [o for o in inbox.items("order") if o["orderLinkId"] == "c-000001"]
    assert pushed[1]["cumExecQty"] == "0" and pushed[2]["cumExecQty"] == "0.01"
    assert {o["orderId"] for o in pushed} == {order["orderId"]}  # UTA: one orderId throughout
    assert all(o["stopOrderType"] == "Stop" and o["triggerDirection"] == FALL for o in pushed)
    assert {Decimal(o["lastPriceOnCreated"]) for o in pushed} == {last}  # not the price at the trigger
    assert the_order(s, "c-000001")["orderStatus"] == "Filled"


def test_a_stop_limit_triggered_rests_as_new(sim: SimVenue, private: tuple[Any, Inbox]) -> None:
    _ws, inbox = private
    s = bybit_http(sim)
    trigger = last_price(sim) - 100
    conditional(s, "Sell", trigger, "c-000002", orderType="Limit", price=str(trigger + 50))
    sim.control.set_price("BTCUSDT", str(trigger))
    inbox.wait_item("order", lambda o: o["orderLinkId"] == "c-000002" and o["orderStatus"] == "New")
    assert statuses(inbox, "c-000002") == ["Untriggered", "Triggered", "New"]
    assert the_order(s, "c-000002")["orderStatus"] == "New"
    # an active order now: a plain cancel (orderFilter Order) reaches it
    s.cancel_order(**SPOT, orderLinkId="c-000002")
    assert the_order(s, "c-000002")["orderStatus"] == "Cancelled"


def test_an_untriggered_order_is_cancelled_under_its_filter_and_deactivated(
    sim: SimVenue, private: tuple[Any, Inbox]
) -> None:
    _ws, inbox = private
    s = bybit_http(sim)
    trigger = last_price(sim) + 100
    conditional(s, "Sell", trigger, "c-000003", orderType="Limit", price=str(trigger))  # a take-profit
    assert the_order(s, "c-000003")["triggerDirection"] == RISE
    with pytest.raises(InvalidRequestError) as info:  # spot cancels orderFilter=Order by default
        s.cancel_order(**SPOT, orderLinkId="c-000003")
    assert info.value.status_code == 110001
    s.cancel_all_orders(**SPOT)  # Order by default too: the conditional order stays
    assert the_order(s, "c-000003")["orderStatus"] == "Untriggered"
    s.cancel_order(**SPOT, orderLinkId="c-000003", orderFilter="StopOrder")
    inbox.wait_item("order", lambda o: o["orderLinkId"] == "c-000003" and o["orderStatus"] == "Deactivated")
    assert statuses(inbox, "c-000003") == ["Untriggered", "Deactivated"]
    assert the_order(s, "c-000003")["orderStatus"] == "Deactivated"
    history = s.get_order_history(category="spot", orderStatus="Deactivated")["result"]["list"]
    assert [o["orderLinkId"] for o in history] == ["c-000003"]
    for order_filter, expected in (("StopOrder", ["c-000003"]), ("Order", []), (None, ["c-000003"])):
        extra = {"orderFilter": order_filter} if order_filter else {}
        rows = s.get_order_history(category="spot", **extra)["result"]["list"]
        assert [o["orderLinkId"] for o in rows] == expected
    sim.control.set_price("BTCUSDT", str(trigger))  # nothing left to trigger
    assert statuses(inbox, "c-000003") == ["Untriggered", "Deactivated"]


def test_a_resumed_venue_still_knows_a_conditional_order_for_one(tmp_path: Path) -> None:
    """A venue built again from its saved state (SIM_STATE_DIR) has lost what the Bybit face
    kept beside the engine: a waiting stop is still Stop, Untriggered, cancelled only as a
    StopOrder, and its trigger is still to be told."""
    config = {"SIM_SPEED": "0", "SIM_STATE_DIR": str(tmp_path)}
    first = Venue.build(load_sim_config(config))
    first.market.advance(candles=1)
    stop = first.market.price("BTCUSDT") - 100
    first.engine.place(ACCOUNT, OrderRequest(symbol="BTCUSDT", side=Side.SELL, type=OrderType.STOP_LOSS,
                       quantity=Decimal("0.01"), stop_price=stop, client_order_id="kept-1"))  # fmt: skip
    again = Venue.build(load_sim_config(config))  # `first` never closed: what a kill -9 leaves
    face = BybitFace(again)
    [order] = again.engine.open_orders(ACCOUNT)
    shown = face.order_json(order)
    assert (shown["orderStatus"], shown["stopOrderType"], shown["triggerDirection"]) == (
        "Untriggered",
        "Stop",
        2,
    )
    assert face.in_filter(order, "StopOrder") and not face.in_filter(order, "Order")
    assert list(face.untriggered) == [order.order_id]
