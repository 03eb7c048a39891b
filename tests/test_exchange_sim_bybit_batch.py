"""The paper venue's Bybit V5 spot batch endpoints (order/create-batch, amend-batch,
cancel-batch), driven by pybit's place_batch_order / amend_batch_order / cancel_batch_order as a
Bybit Demo Trading user would: items independent, each checked as its single endpoint checks
it, `result.list` paired with `retExtInfo.list`; at most 10 a request on spot.

The venue runs in step mode: prices move only when a test pushes one.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest
from pybit.exceptions import InvalidRequestError

from tests.helpers.bybit import bybit_http
from tests.helpers.sim import SimVenue, sim_fixture

sim = sim_fixture()


def last_price(sim: SimVenue) -> Decimal:
    return Decimal(str(sim.control.state()["prices"]["BTCUSDT"]))


def item(price: Decimal, link_id: str, **extra: Any) -> dict[str, Any]:
    return {"symbol": "BTCUSDT", "side": "Buy", "orderType": "Limit", "qty": "0.01", "price": str(price),
            "orderLinkId": link_id, **extra}  # fmt: skip


def codes(answer: dict[str, Any]) -> list[int]:
    return [c["code"] for c in answer["retExtInfo"]["list"]]


def test_batch_place_amend_cancel_item_by_item(sim: SimVenue) -> None:
    s = bybit_http(sim)
    low = last_price(sim) - 500
    placed = s.place_batch_order(
        category="spot",
        request=[item(low, "b-1"), item(low, "b-1"), item(low - 1, "b-2"), item(Decimal("1.001"), "b-3")],
    )
    assert codes(placed) == [0, 110072, 0, 170134]  # a duplicate and a bad tick refused, the others placed
    rows = placed["result"]["list"]
    assert [(r["orderLinkId"], bool(r["orderId"]), bool(r["createAt"])) for r in rows] == [
        ("b-1", True, True),
        ("b-1", False, False),
        ("b-2", True, True),
        ("b-3", False, False),
    ]
    assert all(r["category"] == "spot" and r["symbol"] == "BTCUSDT" for r in rows)
    open_ids = {o["orderLinkId"] for o in s.get_open_orders(category="spot")["result"]["list"]}
    assert open_ids == {"b-1", "b-2"}

    amended = s.amend_batch_order(
        category="spot",
        request=[
            {"symbol": "BTCUSDT", "orderLinkId": "b-1", "price": str(low - 10)},
            {"symbol": "BTCUSDT", "orderLinkId": "nobody", "price": str(low - 10)},
        ],
    )
    assert codes(amended) == [0, 110001]
    [b1] = s.get_open_orders(category="spot", orderLinkId="b-1")["result"]["list"]
    assert Decimal(b1["price"]) == low - 10

    cancelled = s.cancel_batch_order(
        category="spot",
        request=[
            {"symbol": "BTCUSDT", "orderLinkId": "b-1"},
            {"symbol": "BTCUSDT", "orderId": rows[2]["orderId"]},
        ],
    )
    assert codes(cancelled) == [0, 0]
    assert s.get_open_orders(category="spot")["result"]["list"] == []


def test_a_spot_batch_holds_at_most_10_orders(sim: SimVenue) -> None:
    s = bybit_http(sim)
    low = last_price(sim) - 500
    with pytest.raises(InvalidRequestError) as info:
        s.place_batch_order(category="spot", request=[item(low, f"m-{i}") for i in range(11)])
    assert info.value.status_code == 10001 and "10" in info.value.message
    assert s.get_open_orders(category="spot")["result"]["list"] == []
