"""The paper venue answers in the shapes the exchanges document.

For each documented response or event (tests/fixtures/venues), the paper venue is driven through
the real python-binance and pybit clients to produce the same kind of payload, which must have
every documented key, each value of the documented JSON type (decimals as strings, times as
numbers where the exchange sends numbers), and enum values from the documented sets. Keys the
docs mark conditional, or that belong to other products than spot, are named where allowed.
"""

from __future__ import annotations

import asyncio
import json
import urllib.error
import urllib.request
from collections.abc import Callable
from decimal import Decimal as D
from typing import Any

import pytest
from websockets.sync.client import connect

from tests.helpers.bybit import bybit_http, private_socket
from tests.helpers.procs import wait_until
from tests.helpers.sim import SimVenue, binance_client_fixture, sim_fixture, socket_manager
from tests.helpers.venue_docs import documented, shape_gaps

sim = sim_fixture()

# enums.md (Binance) and enum.mdx (Bybit): the values the venue may send
BINANCE_ENUMS = {
    "status": {"NEW", "PENDING_NEW", "PARTIALLY_FILLED", "FILLED", "CANCELED", "PENDING_CANCEL", "REJECTED",
               "EXPIRED", "EXPIRED_IN_MATCH"},
    "type": {"LIMIT", "MARKET", "STOP_LOSS", "STOP_LOSS_LIMIT", "TAKE_PROFIT", "TAKE_PROFIT_LIMIT", "LIMIT_MAKER"},
    "side": {"BUY", "SELL"},
    "timeInForce": {"GTC", "IOC", "FOK"},
    "selfTradePreventionMode": {"NONE", "EXPIRE_TAKER", "EXPIRE_MAKER", "EXPIRE_BOTH", "DECREMENT", "TRANSFER"},
}  # fmt: skip
EXECUTION_ENUMS = {
    "x": {"NEW", "CANCELED", "REPLACED", "REJECTED", "TRADE", "EXPIRED", "TRADE_PREVENTION"},
    "X": BINANCE_ENUMS["status"], "o": BINANCE_ENUMS["type"], "S": BINANCE_ENUMS["side"],
    "f": BINANCE_ENUMS["timeInForce"], "V": BINANCE_ENUMS["selfTradePreventionMode"],
}  # fmt: skip
BYBIT_ENUMS = {
    "orderStatus": {"New", "PartiallyFilled", "Untriggered", "Rejected", "PartiallyFilledCanceled", "Filled",
                    "Cancelled", "Triggered", "Deactivated"},
    "side": {"Buy", "Sell"}, "orderType": {"Market", "Limit"},
    "timeInForce": {"GTC", "IOC", "FOK", "PostOnly", "RPI"},
    "execType": {"Trade", "AdlTrade", "Funding", "BustTrade", "Delivery", "Settle", "BlockTrade", "MovePosition"},
    "stopOrderType": {"", "UNKNOWN", "TakeProfit", "StopLoss", "TrailingStop", "Stop", "PartialTakeProfit",
                      "PartialStopLoss", "tpslOrder", "OcoOrder", "MmRateClose", "BidirectionalTpslOrder"},
}  # fmt: skip
# conditional keys (rest-api.md "Conditional fields in Order Responses", user-data-stream.md
# "Conditional Fields in Execution Report"): v only after self-trade prevention
BINANCE_CONDITIONAL = frozenset({"v"})
# keys of the docs' linear / option examples that spot orders and fills do not carry
NOT_SPOT = frozenset({"tpslMode", "slippageToleranceType", "slippageTolerance", "rpiTakerAccess", "rpiMatchedQty",
                      "execPnl", "createType", "marketUnit", "extraFees"})  # fmt: skip


def check(doc: Any, served: Any, enums: dict[str, set[str]], optional: frozenset[str] = frozenset()) -> None:
    """`served` has the documented shape, and its enum fields documented values."""
    gaps = shape_gaps(doc, served, optional=optional)
    items = served if isinstance(served, list) else [served]
    for item in items:
        gaps += [f"{k}={item[k]!r} is not a documented value" for k, allowed in enums.items()
                 if k in item and item[k] not in allowed]  # fmt: skip
    assert not gaps, "\n".join(gaps)


def raw_json(url: str) -> tuple[int, Any]:
    """An unsigned request's status and JSON body (no client library in between)."""
    try:
        with urllib.request.urlopen(url, timeout=10) as reply:
            return reply.status, json.loads(reply.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


# ---------------------------------------------------------------------------------- Binance
client = binance_client_fixture()


async def last(client: Any) -> D:
    return D((await client.get_symbol_ticker(symbol="BTCUSDT"))["price"])


@pytest.mark.parametrize("resp_type", ["ACK", "RESULT", "FULL"])
async def test_binance_new_order_responses(client: Any, resp_type: str) -> None:
    served = await client.create_order(
        symbol="BTCUSDT", side="SELL", type="MARKET", quantity="0.01", newOrderRespType=resp_type
    )
    check(documented("binance", f"order_{resp_type.lower()}"), served, BINANCE_ENUMS)
    assert set(served) <= set(documented("binance", "order_full")) | {"stopPrice"}  # no key of our own


async def test_binance_query_cancel_open_orders_and_my_trades(sim: SimVenue, client: Any) -> None:
    price = str(await last(client) + 50)
    await client.create_order(symbol="BTCUSDT", side="SELL", type="LIMIT", timeInForce="GTC", quantity="0.02",
                              price=price, newClientOrderId="w-000001")  # fmt: skip
    sim.control.market("BTCUSDT", max_fill="0.01")
    sim.control.set_price("BTCUSDT", price)
    check(documented("binance", "order_query"), await client.get_order(symbol="BTCUSDT", origClientOrderId="w-000001"),
          BINANCE_ENUMS)  # fmt: skip
    check(documented("binance", "open_orders"), await client.get_open_orders(symbol="BTCUSDT"), BINANCE_ENUMS)
    canceled = await client.cancel_order(symbol="BTCUSDT", origClientOrderId="w-000001")
    check(documented("binance", "order_cancel"), canceled, BINANCE_ENUMS)
    check(documented("binance", "my_trades"), await client.get_my_trades(symbol="BTCUSDT"), {})


async def test_binance_account_and_exchange_info(client: Any) -> None:
    check(documented("binance", "account"), await client.get_account(), {})
    info = await client.get_exchange_info()
    doc = documented("binance", "exchange_info")
    check(doc, info, {}, frozenset({"sors"}))  # no smart order routing
    [btc] = [s for s in info["symbols"] if s["symbol"] == "BTCUSDT"]
    # what it takes (binance_lists.py) and what it does not: a client reads these before trying
    assert (btc["ocoAllowed"], btc["otoAllowed"]) == (True, True)
    assert not (btc["opoAllowed"] or btc["amendAllowed"] or btc["pegInstructionsAllowed"])
    served = {f["filterType"]: f for f in btc["filters"]}
    for documented_filter in documented("binance", "filters"):
        kind = documented_filter["filterType"]
        if kind in served:
            check(documented_filter, served[kind], {})
    assert {
        "PRICE_FILTER",
        "LOT_SIZE",
        "NOTIONAL",
        "PERCENT_PRICE_BY_SIDE",
        "MARKET_LOT_SIZE",
        "MAX_NUM_ORDERS",
    } <= set(served)


async def test_binance_public_trades_and_order_count(sim: SimVenue, client: Any) -> None:
    """python-binance's get_recent_trades, get_historical_trades, get_aggregate_trades and
    get_current_order_count (they answered 404 before the venue had a tape)."""
    sim.control.advance(steps=4)
    trades = await client.get_recent_trades(symbol="BTCUSDT", limit=3)
    assert len(trades) == 3
    check(documented("binance", "trades"), trades, {})
    check(documented("binance", "trades"), await client.get_historical_trades(symbol="BTCUSDT"), {})
    check(documented("binance", "agg_trades"), await client.get_aggregate_trades(symbol="BTCUSDT"), {})
    check(documented("binance", "rate_limit_order"), await client.get_current_order_count(), {})


async def recv(stream: Any, want: Callable[[dict[str, Any]], bool]) -> dict[str, Any]:
    while True:
        message = await asyncio.wait_for(stream.recv(), 5)
        if want(message):
            return message


async def test_binance_user_stream_events(sim: SimVenue, client: Any) -> None:
    doc_new = documented("binance", "ws_execution_report")["event"]
    doc_position = documented("binance", "ws_account_position")["event"]
    async with socket_manager(client, sim).user_socket() as stream:
        price = str(await last(client) + 50)
        await client.create_order(symbol="BTCUSDT", side="SELL", type="LIMIT", timeInForce="GTC", quantity="0.02",
                                  price=price, newClientOrderId="w-000002")  # fmt: skip
        new = await recv(stream, lambda m: m.get("e") == "executionReport")
        check(doc_new, new, EXECUTION_ENUMS, BINANCE_CONDITIONAL)
        check(doc_position, await recv(stream, lambda m: m.get("e") == "outboundAccountPosition"), {})
        sim.control.market("BTCUSDT", max_fill="0.01")
        sim.control.set_price("BTCUSDT", price)
        trade = await recv(stream, lambda m: m.get("x") == "TRADE")
        [doc_trade] = [e for e in documented("binance", "ws_market_order_events") if e.get("x") == "TRADE"][
            :1
        ]
        check(doc_trade, trade, EXECUTION_ENUMS, BINANCE_CONDITIONAL)
        await client.cancel_order(symbol="BTCUSDT", origClientOrderId="w-000002")
        canceled = await recv(stream, lambda m: m.get("x") == "CANCELED")
        check(documented("binance", "ws_execution_report_derived")["canceled"], canceled, EXECUTION_ENUMS)
        assert canceled["C"] == "w-000002" and canceled["c"] != "w-000002"  # C: the order's own id
        await client.create_order(symbol="BTCUSDT", side="BUY", type="LIMIT", timeInForce="IOC", quantity="0.01",
                                  price=str(D(price) - 500), newClientOrderId="w-000003")  # fmt: skip
        expired = await recv(stream, lambda m: m.get("x") == "EXPIRED")
        [doc_expired] = [
            e for e in documented("binance", "ws_market_order_events") if e.get("x") == "EXPIRED"
        ]
        check(doc_expired, expired, EXECUTION_ENUMS, BINANCE_CONDITIONAL)
        sim.control.set_balance("USDT", "20000")
        update = await recv(stream, lambda m: m.get("e") == "balanceUpdate")
        check(documented("binance", "ws_balance_update")["event"], update, {})


LIST_ENUMS = {  # enums.md: ContingencyType, listStatusType, listOrderStatus
    "contingencyType": {"OCO", "OTO"}, "listStatusType": {"RESPONSE", "EXEC_STARTED", "UPDATED", "ALL_DONE"},
    "listOrderStatus": {"EXECUTING", "ALL_DONE", "REJECT"},
}  # fmt: skip
LIST_EVENT_ENUMS = {"c": LIST_ENUMS["contingencyType"], "l": LIST_ENUMS["listStatusType"],
                    "L": LIST_ENUMS["listOrderStatus"]}  # fmt: skip
ICEBERG = frozenset({"icebergQty"})  # only with an iceberg quantity, which the venue does not take


def stop_first(body: dict[str, Any]) -> dict[str, Any]:
    """The list with its stop leg's report first, as the docs' example prints its legs."""
    reports = sorted(body["orderReports"], key=lambda r: r["type"] != "STOP_LOSS_LIMIT")
    return {**body, "orderReports": reports}


async def test_binance_order_list_responses_and_events(sim: SimVenue, client: Any) -> None:
    price = await last(client)
    async with socket_manager(client, sim).user_socket() as stream:
        placed = await client.create_oco_order(
            symbol="BTCUSDT", side="SELL", quantity="0.01", listClientOrderId="w-list-1", newOrderRespType="RESULT",
            aboveType="LIMIT_MAKER", abovePrice=str(price + 100), belowType="STOP_LOSS_LIMIT",
            belowStopPrice=str(price - 100), belowPrice=str(price - 110), belowTimeInForce="GTC",
        )  # fmt: skip
        check(
            documented("binance", "order_list_oco"), stop_first(placed), BINANCE_ENUMS | LIST_ENUMS, ICEBERG
        )
        leg = await recv(stream, lambda m: m.get("e") == "executionReport")
        check(
            documented("binance", "ws_execution_report_leg_derived")["event"],
            leg,
            EXECUTION_ENUMS,
            BINANCE_CONDITIONAL,
        )
        assert leg["g"] == placed["orderListId"]
        status = await recv(stream, lambda m: m.get("e") == "listStatus")
        check(documented("binance", "ws_list_status")["event"], status, LIST_EVENT_ENUMS)
    query = await client.v3_get_order_list(origClientOrderId="w-list-1")
    check(documented("binance", "order_list_query"), query, LIST_ENUMS)
    check(documented("binance", "open_order_lists"), await client.get_open_oco_orders(), LIST_ENUMS)
    check(documented("binance", "all_order_lists"), await client.v3_get_all_order_list(), LIST_ENUMS)
    cancelled = await client.v3_delete_order_list(symbol="BTCUSDT", listClientOrderId="w-list-1")
    check(
        documented("binance", "order_list_cancel"), stop_first(cancelled), BINANCE_ENUMS | LIST_ENUMS, ICEBERG
    )


def test_binance_error_body(sim: SimVenue) -> None:
    status, body = raw_json(f"{sim.base_url}/api/v3/ticker/price?symbol=NOSUCH")
    assert status == 400
    check({"code": -1121, "msg": "Invalid symbol."}, body, {})
    assert body == documented("binance", "errors")[0]["body"]


# ------------------------------------------------------------------------------------ Bybit
SPOT = {"category": "spot", "symbol": "BTCUSDT"}


def bybit_price(sim: SimVenue) -> D:
    return D(str(sim.control.state()["prices"]["BTCUSDT"]))


def check_list_reply(name: str, served: dict[str, Any]) -> None:
    """A Bybit list reply: the envelope's shape, then each row's enums."""
    doc = documented("bybit", name)
    check(doc, served, {}, NOT_SPOT)
    check(doc["result"]["list"], served["result"]["list"], BYBIT_ENUMS, NOT_SPOT)


def test_bybit_order_endpoints(sim: SimVenue) -> None:
    s = bybit_http(sim)
    price = bybit_price(sim) - 50
    created = s.place_order(
        **SPOT, side="Buy", orderType="Limit", qty="0.02", price=str(price), orderLinkId="w-1"
    )
    check(documented("bybit", "order_create"), created, {})
    sim.control.market("BTCUSDT", max_fill="0.01")
    sim.control.set_price("BTCUSDT", str(price))
    check_list_reply("order_realtime", s.get_open_orders(**SPOT))
    check(documented("bybit", "order_cancel"), s.cancel_order(**SPOT, orderLinkId="w-1"), {})
    check_list_reply("order_history", s.get_order_history(**SPOT))
    check_list_reply("execution_list", s.get_executions(**SPOT))


def test_bybit_wallet_and_instruments(sim: SimVenue) -> None:
    s = bybit_http(sim)
    check(documented("bybit", "wallet_balance"), s.get_wallet_balance(accountType="UNIFIED"), {})
    check(documented("bybit", "instruments_info_spot"), s.get_instruments_info(**SPOT), {}, NOT_SPOT)


def test_bybit_error_envelope(sim: SimVenue) -> None:
    status, body = raw_json(f"{sim.base_url}/v5/market/kline?category=spot&symbol=NOSUCH&interval=1")
    assert status == 200  # Bybit's errors are in the envelope
    check(documented("bybit", "errors")[0]["body"], body, {})
    assert body["retCode"] != 0


def test_bybit_orderbook_level1_topic(sim: SimVenue) -> None:
    """`orderbook.1.{symbol}` as sent on the wire (no client in between): the documented shape,
    a snapshot (level 1 has no deltas), "ts" before "type" as on Bybit's spot books."""
    with connect(sim.ws_url("/v5/public/spot")) as ws:
        ws.send(json.dumps({"op": "subscribe", "req_id": "b1", "args": ["orderbook.1.BTCUSDT"]}))
        assert json.loads(ws.recv(timeout=5))["success"] is True
        text = ws.recv(timeout=5)
    served = json.loads(text)
    check(documented("bybit", "ws_orderbook"), served, {"type": {"snapshot"}})
    assert served["topic"] == "orderbook.1.BTCUSDT"
    assert len(served["data"]["b"]) == len(served["data"]["a"]) == 1
    assert list(served).index("ts") < list(served).index("type")


def test_bybit_private_topics(sim: SimVenue) -> None:
    with private_socket(sim) as (_ws, inbox):
        price = bybit_price(sim) - 50
        bybit_http(sim).place_order(**SPOT, side="Buy", orderType="Limit", qty="0.01", price=str(price),
                                    orderLinkId="w-2")  # fmt: skip
        sim.control.set_price("BTCUSDT", str(price))
        inbox.wait_item("order", lambda o: o["orderStatus"] == "Filled")
        wait_until(lambda: inbox.all("execution") and inbox.all("wallet"), what="execution and wallet pushes")
        for topic, name in (("order", "ws_order"), ("execution", "ws_execution"), ("wallet", "ws_wallet")):
            doc = documented("bybit", name)
            for item in doc["data"]:  # "returned only for kyc=Indian user or ..." (execution.mdx)
                item.pop("extraFees", None)
            check(doc, inbox.all(topic)[-1], BYBIT_ENUMS, NOT_SPOT)
            check(doc["data"], inbox.all(topic)[-1]["data"], BYBIT_ENUMS, NOT_SPOT)


def test_bybit_conditional_order_shapes(sim: SimVenue) -> None:
    """A conditional Sell as order/realtime and the `order` topic show it, Untriggered then
    Triggered, against the composed examples (the docs have none of a conditional order)."""
    with private_socket(sim) as (_ws, inbox):
        s = bybit_http(sim)
        trigger = bybit_price(sim) - 100
        s.place_order(**SPOT, side="Sell", orderType="Market", qty="0.01", marketUnit="baseCoin",
                      triggerPrice=str(trigger), triggerDirection=2, orderFilter="StopOrder",
                      orderLinkId="w-3")  # fmt: skip
        served = s.get_open_orders(**SPOT, orderFilter="StopOrder")
        check_list_reply("order_realtime_conditional", served)
        [row] = served["result"]["list"]
        assert (row["orderStatus"], row["stopOrderType"], row["triggerDirection"]) == (
            "Untriggered",
            "Stop",
            2,
        )
        sim.control.set_price("BTCUSDT", str(trigger))
        inbox.wait_item("order", lambda o: o["orderStatus"] == "Filled")
        pushed = inbox.all("order")
        for doc, message in zip(documented("bybit", "ws_order_conditional"), pushed, strict=True):
            check(doc, message, BYBIT_ENUMS, NOT_SPOT)
            check(doc["data"], message["data"], BYBIT_ENUMS, NOT_SPOT)
            assert message["data"][0]["orderStatus"] == doc["data"][0]["orderStatus"]
