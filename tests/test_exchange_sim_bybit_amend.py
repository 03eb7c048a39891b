"""The paper venue's Bybit V5 `order/amend`, and TP/SL attached to an order, driven by the
real pybit clients as a Bybit Demo Trading user would.

Amend changes an open order's qty, price or (before its trigger) triggerPrice in place: same
orderId, the lock follows the new terms, the `order` topic tells the new terms. TP/SL attached
to an order (takeProfit / stopLoss ...) is refused by name, never silently dropped.

The venue runs in step mode: prices move only when a test pushes one (`set_price`).
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest
from pybit.exceptions import InvalidRequestError

from tests.helpers.bybit import Inbox, bybit_http, private_fixture
from tests.helpers.sim import SimVenue, sim_fixture

sim = sim_fixture()
private = private_fixture()
SPOT = {"category": "spot", "symbol": "BTCUSDT"}


def last_price(sim: SimVenue) -> Decimal:
    return Decimal(str(sim.control.state()["prices"]["BTCUSDT"]))


def the_order(session: Any, link_id: str) -> dict[str, Any]:
    [row] = session.get_open_orders(category="spot", orderLinkId=link_id)["result"]["list"]
    return row


def locked(session: Any, coin: str) -> Decimal:
    wallet = session.get_wallet_balance(accountType="UNIFIED", coin=coin)["result"]["list"][0]
    return Decimal(next(c for c in wallet["coin"] if c["coin"] == coin)["locked"])


def ret_code(call: Any, **kwargs: Any) -> int:
    with pytest.raises(InvalidRequestError) as info:
        call(**kwargs)
    return info.value.status_code


def test_amend_changes_price_and_qty_in_place_and_the_lock_follows(
    sim: SimVenue, private: tuple[Any, Inbox]
) -> None:
    _ws, inbox = private
    s = bybit_http(sim)
    low = last_price(sim) - 500
    placed = s.place_order(
        **SPOT, side="Buy", orderType="Limit", qty="0.01", price=str(low), orderLinkId="am-1"
    )
    order_id = placed["result"]["orderId"]
    assert locked(s, "USDT") == Decimal("0.01") * low

    lower = low - 100
    answer = s.amend_order(**SPOT, orderLinkId="am-1", price=str(lower), qty="0.02")["result"]
    assert answer == {"orderId": order_id, "orderLinkId": "am-1"}
    row = the_order(s, "am-1")
    assert (row["orderId"], row["orderStatus"], Decimal(row["price"]), row["qty"]) == (
        order_id,
        "New",
        lower,
        "0.02",
    )
    assert locked(s, "USDT") == Decimal("0.02") * lower
    pushed = inbox.wait_item("order", lambda o: o["orderLinkId"] == "am-1" and o["qty"] == "0.02")
    assert pushed["orderStatus"] == "New" and Decimal(pushed["price"]) == lower

    sim.control.set_price("BTCUSDT", str(lower))  # fills at the amended price
    filled = inbox.wait_item("order", lambda o: o["orderLinkId"] == "am-1" and o["orderStatus"] == "Filled")
    assert filled["cumExecQty"] == "0.02" and Decimal(filled["avgPrice"]) == lower
    assert locked(s, "USDT") == 0


def test_amend_moves_a_conditional_trigger_before_it_fires(sim: SimVenue) -> None:
    s = bybit_http(sim)
    last = last_price(sim)
    s.place_order(
        **SPOT, side="Sell", orderType="Limit", qty="0.01", price=str(last - 300),
        triggerPrice=str(last - 200), orderFilter="StopOrder", orderLinkId="am-stop",
    )  # fmt: skip
    s.amend_order(**SPOT, orderLinkId="am-stop", triggerPrice=str(last - 400), price=str(last - 500))
    row = the_order(s, "am-stop")
    assert (row["orderStatus"], Decimal(row["triggerPrice"]), Decimal(row["price"])) == (
        "Untriggered",
        last - 400,
        last - 500,
    )
    sim.control.set_price("BTCUSDT", str(last - 250))  # the old trigger: nothing happens now
    assert the_order(s, "am-stop")["orderStatus"] == "Untriggered"
    # a trigger the price has already passed: refused with create's code, nothing changed
    with pytest.raises(InvalidRequestError) as info:
        s.amend_order(**SPOT, orderLinkId="am-stop", triggerPrice=str(last))
    assert info.value.status_code == 110093 and f"trigger_price[{last}]" in info.value.message
    assert Decimal(the_order(s, "am-stop")["triggerPrice"]) == last - 400


def test_amend_refusals_use_bybit_codes_and_change_nothing(sim: SimVenue) -> None:
    s = bybit_http(sim)
    low = last_price(sim) - 500
    s.place_order(**SPOT, side="Buy", orderType="Limit", qty="0.01", price=str(low), orderLinkId="am-r")
    assert ret_code(s.amend_order, **SPOT, orderLinkId="nobody", price=str(low)) == 110001
    assert ret_code(s.amend_order, **SPOT, orderLinkId="am-r") == 10001  # nothing to change
    assert ret_code(s.amend_order, **SPOT, orderLinkId="am-r", price="1.001") == 170134
    assert ret_code(s.amend_order, **SPOT, orderLinkId="am-r", qty="0.000001") == 170137
    assert ret_code(s.amend_order, **SPOT, orderLinkId="am-r", qty="100") == 110007
    row = the_order(s, "am-r")
    assert (row["qty"], Decimal(row["price"])) == ("0.01", low)
    s.cancel_order(**SPOT, orderLinkId="am-r")
    assert ret_code(s.amend_order, **SPOT, orderLinkId="am-r", price=str(low - 1)) == 110008


@pytest.mark.parametrize(
    "extra",
    [
        {"takeProfit": "99000", "tpOrderType": "Market"},
        {"stopLoss": "1000", "slOrderType": "Market"},
        {"takeProfit": "99000", "tpLimitPrice": "99100", "tpOrderType": "Limit"},
    ],
)
def test_tp_sl_attached_to_an_order_is_refused_by_name_never_dropped(
    sim: SimVenue, extra: dict[str, str]
) -> None:
    s = bybit_http(sim)
    price = str(last_price(sim) - 500)
    with pytest.raises(InvalidRequestError) as info:
        s.place_order(
            **SPOT, side="Buy", orderType="Limit", qty="0.01", price=price, orderLinkId="tp-1", **extra
        )
    assert info.value.status_code == 10001
    assert next(iter(extra)) in info.value.message and "tpslOrder" in info.value.message
    assert s.get_open_orders(category="spot")["result"]["list"] == []
    # "0" is Bybit's "none": accepted as a plain order
    s.place_order(
        **SPOT, side="Buy", orderType="Limit", qty="0.01", price=price, takeProfit="0", stopLoss="0"
    )


def test_amend_of_a_partly_filled_order_keeps_its_fills_and_locks_what_is_left(sim: SimVenue) -> None:
    s = bybit_http(sim)
    price = last_price(sim) - 500
    sim.control.market("BTCUSDT", max_fill="0.004")
    s.place_order(**SPOT, side="Buy", orderType="Limit", qty="0.01", price=str(price), orderLinkId="am-p")
    sim.control.set_price("BTCUSDT", str(price))  # 0.004 of 0.01 fills
    assert the_order(s, "am-p")["cumExecQty"] == "0.004"
    assert ret_code(s.amend_order, **SPOT, orderLinkId="am-p", qty="0.004") == 10001  # not above the fills
    s.amend_order(**SPOT, orderLinkId="am-p", qty="0.006")
    row = the_order(s, "am-p")
    assert (row["orderStatus"], row["qty"], row["cumExecQty"], row["leavesQty"]) == (
        "PartiallyFilled",
        "0.006",
        "0.004",
        "0.002",
    )
    assert locked(s, "USDT") == Decimal("0.002") * price
    sim.control.set_price("BTCUSDT", str(price))  # the rest
    assert (
        s.get_order_history(category="spot", orderLinkId="am-p")["result"]["list"][0]["orderStatus"]
        == "Filled"
    )
    assert locked(s, "USDT") == 0
