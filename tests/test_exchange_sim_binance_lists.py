"""The paper venue's Binance order lists (services/exchange_sim/binance_lists.py), driven by the
real python-binance AsyncClient over loopback: OCO, the deprecated /order/oco, OTO, OTOCO, their
cancel and queries, the user stream's executionReport `g` and listStatus, and the refusals."""

from __future__ import annotations

from decimal import Decimal as D
from typing import Any

import pytest

from tests.helpers.sim import SimVenue, binance_client_fixture, sim_fixture, socket_manager
from tests.test_exchange_sim_binance import api_error, is_report, price, recv

sim = sim_fixture()
client = binance_client_fixture()


def funds(sim: SimVenue, asset: str) -> tuple[D, D]:
    """(free, locked) of the Binance account."""
    row = sim.control.balances()[asset]
    return D(row["free"]), D(row["locked"])


def is_list(message: dict[str, Any]) -> bool:
    return message.get("e") == "listStatus"


async def sell_oco(client: Any, last: D, lcid: str = "L-000001", **extra: Any) -> dict[str, Any]:
    params = {
        "symbol": "BTCUSDT", "side": "SELL", "quantity": "0.1", "listClientOrderId": lcid,
        "aboveType": "LIMIT_MAKER", "abovePrice": str(last + 100), "aboveClientOrderId": lcid + "-tp",
        "belowType": "STOP_LOSS_LIMIT", "belowStopPrice": str(last - 100), "belowPrice": str(last - 110),
        "belowTimeInForce": "GTC", "belowClientOrderId": lcid + "-sl",
    }  # fmt: skip
    return await client.create_oco_order(**{k: v for k, v in (params | extra).items() if v is not None})


async def test_oco_limit_leg_fills_the_stop_expires_and_list_status_follows(
    sim: SimVenue, client: Any
) -> None:
    async with socket_manager(client, sim).user_socket() as stream:
        last = await price(client)
        placed = await sell_oco(client, last)
        list_id = placed["orderListId"]
        assert (placed["contingencyType"], placed["listStatusType"], placed["listOrderStatus"]) == (
            "OCO", "EXEC_STARTED", "EXECUTING",
        )  # fmt: skip
        assert [o["clientOrderId"] for o in placed["orders"]] == ["L-000001-tp", "L-000001-sl"]
        assert [(r["type"], r["status"], r["orderListId"]) for r in placed["orderReports"]] == [
            ("LIMIT_MAKER", "NEW", list_id), ("STOP_LOSS_LIMIT", "NEW", list_id),
        ]  # fmt: skip
        assert funds(sim, "BTC") == (D("0.90000000"), D("0.10000000"))  # once
        news = [await recv(stream, is_report) for _ in range(2)]
        assert [(r["c"], r["X"], r["g"]) for r in news] == [
            ("L-000001-tp", "NEW", list_id),
            ("L-000001-sl", "NEW", list_id),
        ]
        started = await recv(stream, is_list)
        assert (started["g"], started["c"], started["l"], started["L"], started["C"]) == (
            list_id, "OCO", "EXEC_STARTED", "EXECUTING", "L-000001",
        )  # fmt: skip
        assert [o["c"] for o in started["O"]] == ["L-000001-tp", "L-000001-sl"]

        await recv(stream, lambda m: m.get("e") == "outboundAccountPosition")  # the placing's
        sim.control.set_price("BTCUSDT", str(last + 100))
        events = [await recv(stream)]
        while events[-1]["e"] != "outboundAccountPosition":
            events.append(await recv(stream))
        # as PAPER_VENUE.md says: the other leg expires as this one starts to trade, then the
        # trade, then the list is done, then the balances
        assert [(e["e"], e.get("c"), e.get("x")) for e in events] == [
            ("executionReport", "L-000001-sl", "EXPIRED"), ("executionReport", "L-000001-tp", "TRADE"),
            ("listStatus", "OCO", None), ("outboundAccountPosition", None, None),
        ]  # fmt: skip
        sl, tp, done = events[:3]
        assert (tp["X"], tp["g"]) == ("FILLED", list_id) and "eR" not in tp
        assert (sl["x"], sl["X"], sl["eR"], sl["g"]) == ("EXPIRED", "EXPIRED", "OCO_TRIGGER", list_id)
        assert (done["l"], done["L"], done["g"], done["C"]) == ("ALL_DONE", "ALL_DONE", list_id, "L-000001")
    balances = sim.control.balances()
    assert funds(sim, "BTC") == (D("0.9"), 0)
    fee = (last + 100) * D("0.1") * D("0.001")
    assert D(balances["USDT"]["free"]) == D(10000) + (last + 100) * D("0.1") - fee
    queried = await client.v3_get_order_list(origClientOrderId="L-000001")
    assert (queried["listOrderStatus"], queried["orderListId"]) == ("ALL_DONE", list_id)
    assert "orderReports" not in queried
    assert await client.get_open_oco_orders() == []
    [every] = await client.v3_get_all_order_list()
    assert every == queried


async def test_stop_leg_triggers_and_the_limit_expires(sim: SimVenue, client: Any) -> None:
    last = await price(client)
    await sell_oco(client, last)
    sim.control.set_price("BTCUSDT", str(last - 100))
    tp = await client.get_order(symbol="BTCUSDT", origClientOrderId="L-000001-tp")
    sl = await client.get_order(symbol="BTCUSDT", origClientOrderId="L-000001-sl")
    assert (tp["status"], sl["status"]) == ("EXPIRED", "FILLED")
    assert funds(sim, "BTC") == (D("0.90000000"), D("0.00000000"))
    # the leg's fills name its list in myTrades, as on Binance (a plain order's: -1)
    fills = await client.get_my_trades(symbol="BTCUSDT", orderId=sl["orderId"])
    assert fills and {f["orderListId"] for f in fills} == {sl["orderListId"]} != {-1}


async def test_cancel_list_unknown_list_and_duplicate_list_id(sim: SimVenue, client: Any) -> None:
    last = await price(client)
    placed = await sell_oco(client, last)
    err = await api_error(sell_oco(client, last, aboveClientOrderId="x1", belowClientOrderId="x2"))
    assert (err.code, err.message) == (-2010, "Duplicate order sent.")
    [open_list] = await client.get_open_oco_orders()
    assert open_list["listClientOrderId"] == "L-000001"
    cancelled = await client.v3_delete_order_list(symbol="BTCUSDT", listClientOrderId="L-000001")
    assert cancelled["listStatusType"] == "ALL_DONE" and cancelled["orderListId"] == placed["orderListId"]
    assert [(r["origClientOrderId"], r["status"]) for r in cancelled["orderReports"]] == [
        ("L-000001-tp", "CANCELED"), ("L-000001-sl", "CANCELED"),
    ]  # fmt: skip
    # one cancel request, one made-up cancel id on both legs (as rest-api.md's example shows)
    [cancel_cid] = {r["clientOrderId"] for r in cancelled["orderReports"]}
    assert cancel_cid not in ("L-000001-tp", "L-000001-sl")
    assert funds(sim, "BTC") == (D("1.00000000"), D("0.00000000"))
    err = await api_error(client.v3_delete_order_list(symbol="BTCUSDT", listClientOrderId="L-000001"))
    assert (err.code, err.message) == (-2011, "Unknown order list sent.")
    err = await api_error(client.v3_get_order_list(origClientOrderId="nope"))
    assert (err.code, err.message) == (-2013, "Order list does not exist.")
    # done, its id may be used again (Binance: once the previous list is filled or expired)
    again = await sell_oco(client, last)
    assert again["orderListId"] != placed["orderListId"]


async def test_cancelling_one_leg_cancels_the_list(sim: SimVenue, client: Any) -> None:
    last = await price(client)
    await sell_oco(client, last)
    async with socket_manager(client, sim).user_socket() as stream:
        answer = await client.cancel_order(symbol="BTCUSDT", origClientOrderId="L-000001-tp")
        reports = [await recv(stream, lambda m: is_report(m) and m["x"] == "CANCELED") for _ in range(2)]
    sl = await client.get_order(symbol="BTCUSDT", origClientOrderId="L-000001-sl")
    assert sl["status"] == "CANCELED"
    # the events name each leg in C, and the one cancel that took both in c
    assert [(r["C"], r["c"]) for r in reports] == [
        ("L-000001-tp", answer["clientOrderId"]), ("L-000001-sl", answer["clientOrderId"]),
    ]  # fmt: skip


async def test_cancel_open_orders_answers_a_list_as_a_list(sim: SimVenue, client: Any) -> None:
    last = await price(client)
    await sell_oco(client, last)
    await client.create_order(symbol="BTCUSDT", side="BUY", type="LIMIT", timeInForce="GTC", quantity="0.01",
                              price=str(last - 300), newClientOrderId="single")  # fmt: skip
    answer = await client._delete("openOrders", True, data={"symbol": "BTCUSDT"})
    assert [(x.get("listClientOrderId"), x.get("origClientOrderId")) for x in answer] == [
        ("L-000001", None),
        (None, "single"),
    ]
    assert [r["status"] for r in answer[0]["orderReports"]] == ["CANCELED", "CANCELED"]


@pytest.mark.parametrize(
    ("change", "code", "message"),
    [
        ({"abovePrice": "{below}"}, -2010, "The relationship of the prices for the orders is not correct."),
        ({"aboveType": "STOP_LOSS", "abovePrice": None, "aboveStopPrice": "{above}",
          "belowType": "LIMIT_MAKER", "belowStopPrice": None, "belowTimeInForce": None}, -1197,
         "A stop loss order in a sell OCO must be below."),
        ({"aboveType": "LIMIT"}, -1158, "Order type not supported in OCO."),
        ({"belowType": "LIMIT_MAKER", "belowStopPrice": None, "belowTimeInForce": None}, -1168,
         "At least one OCO order must be contingent."),
        ({"quantity": "5"}, -2010, "Account has insufficient balance for requested action."),
        ({"belowTimeInForce": None}, -1102, "Mandatory parameter 'belowTimeInForce' was not sent, was empty/null, or malformed."),
    ],
)  # fmt: skip
async def test_oco_refusals_carry_binance_codes(
    sim: SimVenue, client: Any, change: dict, code: int, message: str
) -> None:
    last = await price(client)
    fill = {"{below}": str(last - 100), "{above}": str(last + 100)}
    extra = {k: fill.get(v, v) for k, v in change.items()} | (
        {"aboveTimeInForce": "GTC"} if code == -1158 else {}
    )
    err = await api_error(sell_oco(client, last, **extra))
    assert (err.code, err.message) == (code, message)
    assert await client.get_open_orders() == [] and await client.get_open_oco_orders() == []


async def test_deprecated_order_oco(sim: SimVenue, client: Any) -> None:
    last = await price(client)
    placed = await client._post("order/oco", True, data={
        "symbol": "BTCUSDT", "side": "BUY", "quantity": "0.01", "price": str(last - 100),
        "stopPrice": str(last + 100), "stopLimitPrice": str(last + 110), "stopLimitTimeInForce": "GTC",
        "listClientOrderId": "old-1", "limitClientOrderId": "old-lm", "stopClientOrderId": "old-sl",
    })  # fmt: skip
    assert [o["clientOrderId"] for o in placed["orders"]] == ["old-sl", "old-lm"]  # [above, below]
    locked = D(sim.control.balances()["USDT"]["locked"])
    assert locked == (last + 110) * D("0.01")  # the buy locks its neediest leg, once


async def test_oto_pending_leg_is_pending_new_until_the_working_leg_fills(sim: SimVenue, client: Any) -> None:
    last = await price(client)
    placed = await client.v3_post_order_list_oto(
        symbol="BTCUSDT", listClientOrderId="O-1",
        workingType="LIMIT", workingSide="BUY", workingPrice=str(last - 50), workingQuantity="0.01",
        workingTimeInForce="GTC", workingClientOrderId="O-1-w",
        pendingType="LIMIT_MAKER", pendingSide="SELL", pendingPrice=str(last + 100), pendingQuantity="0.01",
        pendingClientOrderId="O-1-p",
    )  # fmt: skip
    assert placed["contingencyType"] == "OTO"
    assert [r["status"] for r in placed["orderReports"]] == ["NEW", "PENDING_NEW"]
    sim.control.set_price("BTCUSDT", str(last - 50))
    pending = await client.get_order(symbol="BTCUSDT", origClientOrderId="O-1-p")
    assert pending["status"] == "NEW" and pending["isWorking"] is True
    sim.control.set_price("BTCUSDT", str(last + 100))
    assert (await client.v3_get_order_list(orderListId=placed["orderListId"]))[
        "listOrderStatus"
    ] == "ALL_DONE"


async def test_otoco_over_the_websocket_api(sim: SimVenue, client: Any) -> None:
    last = await price(client)
    placed = await client.ws_create_otoco_order(
        symbol="BTCUSDT", listClientOrderId="T-1",
        workingType="LIMIT", workingSide="BUY", workingPrice=str(last - 50), workingQuantity="0.01",
        workingTimeInForce="GTC", pendingSide="SELL", pendingQuantity="0.01",
        pendingAboveType="LIMIT_MAKER", pendingAbovePrice=str(last + 100),
        pendingBelowType="STOP_LOSS", pendingBelowStopPrice=str(last - 200),
    )  # fmt: skip
    assert [r["status"] for r in placed["orderReports"]] == ["NEW", "PENDING_NEW", "PENDING_NEW"]
    sim.control.set_price("BTCUSDT", str(last - 50))
    sim.control.set_price("BTCUSDT", str(last - 200))
    statuses = [
        (await client.get_order(symbol="BTCUSDT", orderId=o["orderId"]))["status"] for o in placed["orders"]
    ]
    assert statuses == ["FILLED", "EXPIRED", "FILLED"]
