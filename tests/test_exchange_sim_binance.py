"""The paper venue's Binance face, driven by the real python-binance AsyncClient over loopback."""

from __future__ import annotations

import asyncio
import dataclasses
import time
from collections.abc import Callable
from decimal import Decimal as D
from typing import Any

import pytest
import websockets
from binance.exceptions import BinanceAPIException

from tests.helpers.procs import wait_until
from tests.helpers.sim import (
    SimVenue,
    binance_client,
    binance_client_class,
    binance_client_fixture,
    quick,
    sim_fixture,
    socket_manager,
    wait_for_sockets,
)

sim = sim_fixture()


client = binance_client_fixture()


async def price(client: Any, symbol: str = "BTCUSDT") -> D:
    return D((await client.get_symbol_ticker(symbol=symbol))["price"])


async def recv(
    stream: Any, want: Callable[[dict[str, Any]], bool] = lambda m: True, within: float = 5
) -> dict:
    """The next message the predicate accepts (others are skipped)."""
    while True:
        message = await asyncio.wait_for(stream.recv(), within)
        if want(message):
            return message


def is_report(message: dict[str, Any]) -> bool:
    return message.get("e") == "executionReport"


def fresh_minute() -> None:
    """Weight is counted per wall-clock minute: start a counting test well inside one."""
    wait_until(lambda: time.time() % 60 < 50, timeout=15, what="a fresh minute")


async def api_error(coro: Any) -> BinanceAPIException:
    with pytest.raises(BinanceAPIException) as err:
        await coro
    return err.value


# --------------------------------------------------------------------------- public data
async def test_create_public_endpoints_and_filters(sim: SimVenue) -> None:
    c = await binance_client_class(sim).create(sim.api_key, sim.api_secret)  # pings and syncs time
    try:
        info = await c.get_exchange_info()
        btc = next(s for s in info["symbols"] if s["symbol"] == "BTCUSDT")
        filters = {f["filterType"]: f for f in btc["filters"]}
        assert filters["PRICE_FILTER"]["tickSize"] == "0.01000000"
        assert filters["LOT_SIZE"]["stepSize"] == "0.00001000"
        assert filters["NOTIONAL"]["minNotional"] == "5.00000000"
        assert {"ETHUSDT", "BTCUSDC"} <= {s["symbol"] for s in info["symbols"]}
        last = await price(c)
        book = await c.get_orderbook_ticker(symbol="BTCUSDT")
        assert D(book["bidPrice"]) == last and D(book["askPrice"]) == last + D("0.01")
        depth = await c.get_order_book(symbol="BTCUSDT", limit=5)
        assert len(depth["bids"]) == 5 and D(depth["bids"][0][0]) > D(depth["bids"][1][0])
        klines = await c.get_klines(symbol="BTCUSDT", interval="1m", limit=3)
        assert len(klines) == 3 and D(klines[-1][4]) == last  # closed candles; the last close is the price
        assert klines[1][0] - klines[0][0] == 60_000
        day = await c.get_ticker(symbol="BTCUSDT")
        assert D(day["lastPrice"]) == last and D(day["highPrice"]) >= D(day["lowPrice"])
        assert D((await c.get_avg_price(symbol="BTCUSDT"))["price"]) > 0
        err = await api_error(c.get_klines(symbol="BTCUSDT", interval="7m"))
        assert err.code == -1120
    finally:
        await c.close_connection()


# --------------------------------------------------------------------------- orders over REST
async def test_market_order_full_result_and_ack_responses(client: Any) -> None:
    full = await client.create_order(
        symbol="BTCUSDT", side="BUY", type="MARKET", quantity="0.01", newClientOrderId="t-000001"
    )
    assert full["status"] == "FILLED" and full["clientOrderId"] == "t-000001"
    [fill] = full["fills"]
    assert fill["commissionAsset"] == "BTC" and D(fill["commission"]) == D("0.00001")
    assert D(full["cummulativeQuoteQty"]) == D(fill["price"]) * D("0.01")
    result = await client.create_order(
        symbol="BTCUSDT", side="SELL", type="MARKET", quantity="0.01", newOrderRespType="RESULT"
    )
    assert result["status"] == "FILLED" and "fills" not in result
    assert result["clientOrderId"].startswith("x-")  # python-binance's own id
    ack = await client.create_order(
        symbol="ETHUSDT", side="BUY", type="MARKET", quoteOrderQty="50", newOrderRespType="ACK"
    )
    assert set(ack) == {"symbol", "orderId", "orderListId", "clientOrderId", "transactTime"}
    order = await client.get_order(symbol="ETHUSDT", orderId=ack["orderId"])
    assert order["status"] == "FILLED" and D(order["cummulativeQuoteQty"]) <= 50
    assert D(order["origQuoteOrderQty"]) == 50
    account = await client.get_account()
    balances = {b["asset"]: D(b["free"]) for b in account["balances"]}
    assert balances["BTC"] == D("1") - D("0.00001")  # bought 0.01 (fee 0.00001 BTC), sold 0.01
    assert balances["ETH"] > 10
    assert account["commissionRates"]["taker"] == "0.00100000"


async def test_limit_order_partial_fill_query_cancel(sim: SimVenue, client: Any) -> None:
    last = await price(client)
    limit_price = str(last + 50)
    await client.create_order(
        symbol="BTCUSDT", side="SELL", type="LIMIT", timeInForce="GTC", quantity="0.03",
        price=limit_price, newClientOrderId="t-000002",
    )  # fmt: skip
    sim.control.market("BTCUSDT", max_fill="0.01")
    sim.control.set_price("BTCUSDT", str(last + 60))
    by_cid = await client.get_order(symbol="BTCUSDT", origClientOrderId="t-000002")
    assert by_cid["status"] == "PARTIALLY_FILLED" and by_cid["executedQty"] == "0.01000000"
    assert by_cid["isWorking"] is True
    by_id = await client.get_order(symbol="BTCUSDT", orderId=by_cid["orderId"])
    assert by_id == by_cid
    [open_order] = await client.get_open_orders(symbol="BTCUSDT")
    assert open_order["clientOrderId"] == "t-000002"
    # cancelRestrictions: ONLY_NEW spares a partly filled order, a bad value names the parameter
    err = await api_error(client.cancel_order(symbol="BTCUSDT", origClientOrderId="t-000002",
                                              cancelRestrictions="ONLY_NEW"))  # fmt: skip
    assert (err.code, err.message) == (-2011, "Order was not canceled due to cancel restrictions.")
    err = await api_error(client.cancel_order(symbol="BTCUSDT", origClientOrderId="t-000002",
                                              cancelRestrictions="NEW"))  # fmt: skip
    assert (err.code, err.message) == (-1145, "Invalid cancelRestrictions")
    assert [o["clientOrderId"] for o in await client.get_open_orders()] == ["t-000002"]
    canceled = await client.cancel_order(symbol="BTCUSDT", origClientOrderId="t-000002",
                                         cancelRestrictions="ONLY_PARTIALLY_FILLED")  # fmt: skip
    assert canceled["status"] == "CANCELED" and canceled["origClientOrderId"] == "t-000002"
    assert canceled["executedQty"] == "0.01000000"
    assert await client.get_open_orders() == []
    [trade] = await client.get_my_trades(symbol="BTCUSDT")
    assert trade["price"] == f"{D(limit_price):.8f}" and trade["isMaker"] is True
    assert trade["commissionAsset"] == "USDT" and D(trade["commission"]) == D(limit_price) * D("0.00001")
    every = await client.get_all_orders(symbol="BTCUSDT")
    assert [o["status"] for o in every] == ["CANCELED"]
    balances = sim.control.balances()
    assert D(balances["BTC"]["locked"]) == 0 and D(balances["BTC"]["free"]) == D("0.99")
    err = await api_error(client.cancel_order(symbol="BTCUSDT", origClientOrderId="t-000002"))
    assert (err.code, err.message, err.status_code) == (-2011, "Unknown order sent.", 400)
    err = await api_error(client.get_order(symbol="BTCUSDT", origClientOrderId="t-999999"))
    assert (err.code, err.message) == (-2013, "Order does not exist.")


async def test_stop_loss_limit_and_order_test(sim: SimVenue, client: Any) -> None:
    last = await price(client)
    stop, limit = last - 100, last - 150
    order = await client.create_order(
        symbol="BTCUSDT", side="SELL", type="STOP_LOSS_LIMIT", timeInForce="GTC", quantity="0.01",
        price=str(limit), stopPrice=str(stop), newClientOrderId="t-000003",
    )  # fmt: skip
    assert set(order) == {"symbol", "orderId", "orderListId", "clientOrderId", "transactTime"}  # ACK default
    queried = await client.get_order(symbol="BTCUSDT", origClientOrderId="t-000003")
    assert queried["isWorking"] is False and queried["workingTime"] == -1
    sim.control.set_price("BTCUSDT", str(stop))
    queried = await client.get_order(symbol="BTCUSDT", origClientOrderId="t-000003")
    assert queried["status"] == "FILLED" and queried["workingTime"] > 0
    assert await client.create_test_order(
        symbol="BTCUSDT", side="BUY", type="LIMIT", timeInForce="GTC", quantity="0.01", price=str(last)
    ) == {}  # fmt: skip
    err = await api_error(
        client.create_test_order(symbol="BTCUSDT", side="BUY", type="LIMIT", timeInForce="GTC", quantity="1", price=str(last))
    )  # fmt: skip
    assert err.code == -2010
    assert len(await client.get_all_orders(symbol="BTCUSDT")) == 1  # order/test placed nothing


@pytest.mark.parametrize(
    ("params", "code", "message"),
    [
        ({"symbol": "DOGEUSDT", "side": "BUY", "type": "MARKET", "quantity": "1"}, -1121, "Invalid symbol."),
        ({"side": "BUY", "type": "LIMIT", "timeInForce": "GTC", "quantity": "0.000001", "price": "40000"}, -1013, "Filter failure: LOT_SIZE"),
        ({"side": "BUY", "type": "LIMIT", "timeInForce": "GTC", "quantity": "0.01", "price": "40000.001"}, -1013, "Filter failure: PRICE_FILTER"),
        ({"side": "BUY", "type": "LIMIT", "timeInForce": "GTC", "quantity": "0.0001", "price": "40000"}, -1013, "Filter failure: NOTIONAL"),
        ({"side": "BUY", "type": "LIMIT", "timeInForce": "GTC", "quantity": "0.01", "price": "1000"}, -1013, "Filter failure: PERCENT_PRICE_BY_SIDE"),
        ({"side": "BUY", "type": "LIMIT", "timeInForce": "GTC", "quantity": "1", "price": "40000"}, -2010, "Account has insufficient balance for requested action."),
        ({"side": "BUY", "type": "LIMIT", "quantity": "0.01", "price": "40000"}, -1102, "Mandatory parameter 'timeInForce' was not sent, was empty/null, or malformed."),
        ({"side": "BUY", "type": "MARKET", "quantity": "0.01", "price": "40000"}, -1106, "Parameter 'price' sent when not required."),
        ({"side": "BUY", "type": "LIMIT_MAKER", "quantity": "0.01", "price": "90000"}, -2010, "Order would immediately match and take."),
        ({"side": "BUY", "type": "ICEBERG", "quantity": "0.01"}, -1116, "Invalid orderType."),
        ({"side": "BUY", "type": "MARKET", "quantity": "0.000000001"}, -1111, "Parameter 'quantity' has too much precision."),
    ],
)  # fmt: skip
async def test_order_rejections_carry_binance_codes(
    client: Any, params: dict, code: int, message: str
) -> None:
    params = {"symbol": "BTCUSDT", **params}
    err = await api_error(client.create_order(**params))
    assert (err.code, err.message, err.status_code) == (code, message, 400)


async def test_duplicate_client_order_id_is_refused_while_open(sim: SimVenue, client: Any) -> None:
    last = await price(client)
    args = {"symbol": "BTCUSDT", "side": "BUY", "type": "LIMIT", "timeInForce": "GTC", "quantity": "0.01"}
    await client.create_order(**args, price=str(last - 500), newClientOrderId="bot-000001")
    err = await api_error(client.create_order(**args, price=str(last - 400), newClientOrderId="bot-000001"))
    assert (err.code, err.message) == (-2010, "Duplicate order sent.")
    accepted = [e for e in sim.control.journal() if e["kind"] == "accepted"]
    assert [e["client_order_id"] for e in accepted] == ["bot-000001"]
    rejected = [e for e in sim.control.journal() if e["kind"] == "rejected"]
    assert rejected[0]["client_order_id"] == "bot-000001" and "DUPLICATE" in rejected[0]["reason"]


@pytest.mark.parametrize(
    ("change", "code", "status"),
    [
        ({"api_key": ""}, -2014, 401),
        ({"api_key": "bad key!"}, -2014, 401),
        ({"api_key": "not-the-key"}, -2015, 401),
        ({"api_secret": "not-the-secret"}, -1022, 400),
    ],
)
async def test_authentication_errors(sim: SimVenue, change: dict, code: int, status: int) -> None:
    c = binance_client(dataclasses.replace(sim, **change))
    try:
        err = await api_error(c.get_account())
        assert (err.code, err.status_code) == (code, status)
        assert "sim-secret" not in str(err) and "not-the-secret" not in str(err)
    finally:
        await c.close_connection()


async def test_timestamp_outside_recv_window(client: Any) -> None:
    client.timestamp_offset = -20_000  # recvWindow is 10 000 ms
    err = await api_error(client.get_account())
    assert (err.code, err.message) == (-1021, "Timestamp for this request is outside of the recvWindow.")
    client.timestamp_offset = 5_000
    err = await api_error(client.get_account())
    assert (err.code, err.message) == (
        -1021,
        "Timestamp for this request was 1000ms ahead of the server's time.",
    )
    client.timestamp_offset = 0
    assert "balances" in await client.get_account()


async def test_request_weight_is_counted_in_the_header(client: Any) -> None:
    fresh_minute()
    await client.ping()
    first = int(client.response.headers["X-MBX-USED-WEIGHT-1M"])
    await client.get_account()  # weight 20
    second = int(client.response.headers["X-MBX-USED-WEIGHT-1M"])
    await client.get_open_orders()  # weight 80 without a symbol
    third = int(client.response.headers["X-MBX-USED-WEIGHT-1M"])
    assert (second - first, third - second) == (20, 80)


# --------------------------------------------------------------------------- user data stream
async def test_user_stream_reports_new_partial_fills_and_fill(sim: SimVenue, client: Any) -> None:
    socket = socket_manager(client, sim).user_socket()
    async with socket as stream:
        last = await price(client)
        await client.create_order(
            symbol="BTCUSDT", side="SELL", type="LIMIT", timeInForce="GTC", quantity="0.03",
            price=str(last + 10), newClientOrderId="t-000004",
        )  # fmt: skip
        new = await recv(stream, is_report)
        position = await recv(stream)
        assert (new["x"], new["X"], new["c"], new["w"], new["N"]) == ("NEW", "NEW", "t-000004", True, None)
        assert position["e"] == "outboundAccountPosition"
        assert {b["a"]: b["l"] for b in position["B"]} == {"BTC": "0.03000000", "USDT": "0.00000000"}
        sim.control.market("BTCUSDT", max_fill="0.01")
        reports = []
        for _ in range(3):
            sim.control.set_price("BTCUSDT", str(last + 20))
            reports.append(await recv(stream, is_report))
            assert (await recv(stream))["e"] == "outboundAccountPosition"
        assert [(r["x"], r["X"], r["z"], r["l"]) for r in reports] == [
            ("TRADE", "PARTIALLY_FILLED", "0.01000000", "0.01000000"),
            ("TRADE", "PARTIALLY_FILLED", "0.02000000", "0.01000000"),
            ("TRADE", "FILLED", "0.03000000", "0.01000000"),
        ]
        assert {r["N"] for r in reports} == {"USDT"} and all(r["m"] for r in reports)
        assert reports[-1]["Z"] == f"{(last + 10) * D('0.03'):.8f}"
        assert len({r["t"] for r in reports}) == 3
        # a cancel carries the original id in C
        await client.create_order(
            symbol="BTCUSDT", side="BUY", type="LIMIT", timeInForce="GTC", quantity="0.01",
            price=str(last - 200), newClientOrderId="t-000005",
        )  # fmt: skip
        await recv(stream, is_report)
        await client.cancel_order(symbol="BTCUSDT", origClientOrderId="t-000005")
        canceled = await recv(stream, lambda m: is_report(m) and m["x"] == "CANCELED")
        assert (canceled["X"], canceled["C"], canceled["w"]) == ("CANCELED", "t-000005", False)
    journal = sim.control.journal()
    fills = [e for e in journal if e["kind"] == "trade" and e["client_order_id"] == "t-000004"]
    assert [e["trade"]["trade_id"] for e in fills] == [r["t"] for r in reports]


async def test_websocket_api_orders(sim: SimVenue, client: Any) -> None:
    last = await price(client)
    placed = await client.ws_create_order(
        symbol="BTCUSDT", side="BUY", type="LIMIT", timeInForce="GTC", quantity="0.01",
        price=str(last - 100), newClientOrderId="t-000006",
    )  # fmt: skip
    assert placed["status"] == "NEW"
    status = await client.ws_get_order(symbol="BTCUSDT", origClientOrderId="t-000006")
    assert status["orderId"] == placed["orderId"] and status["isWorking"] is True
    [open_order] = await client.ws_get_open_orders(symbol="BTCUSDT")
    assert open_order["clientOrderId"] == "t-000006"
    canceled = await client.ws_cancel_order(symbol="BTCUSDT", origClientOrderId="t-000006")
    assert canceled["status"] == "CANCELED"
    err = await api_error(client.ws_get_order(symbol="BTCUSDT", origClientOrderId="t-000099"))
    assert err.code == -2013 and err.status_code == 400
    err = await api_error(
        client.ws_create_order(
            symbol="BTCUSDT", side="BUY", type="MARKET", quantity="5", newClientOrderId="t-000007"
        )
    )
    assert err.code == -2010


async def test_listen_key_user_stream_for_older_clients(sim: SimVenue, client: Any) -> None:
    key = await client.stream_get_listen_key()
    assert len(key) == 60 and await client.stream_get_listen_key() == key  # one active key
    async with websockets.connect(sim.ws_url(f"/ws/{key}")) as ws:
        last = await price(client)
        await client.create_order(
            symbol="ETHUSDT", side="BUY", type="MARKET", quantity="0.1", newClientOrderId="t-000008"
        )
        events = [orjson_loads(await asyncio.wait_for(ws.recv(), 5)) for _ in range(3)]
        assert [e["e"] for e in events] == ["executionReport", "executionReport", "outboundAccountPosition"]
        assert events[1]["X"] == "FILLED" and events[1]["N"] == "ETH"
        assert await client.stream_keepalive(key) == {}
        await client.stream_close(key)
        expired = orjson_loads(await asyncio.wait_for(ws.recv(), 5))
        assert expired == {"e": "listenKeyExpired", "E": expired["E"], "listenKey": key}
        await asyncio.wait_for(ws.wait_closed(), 5)  # and the stream ends
    assert last > 0
    err = await api_error(client.stream_keepalive(key))
    assert err.code == -1125


def orjson_loads(text: str | bytes) -> Any:
    import orjson

    return orjson.loads(text)


# --------------------------------------------------------------------------- market streams
async def test_kline_stream_marks_the_closing_update(sim: SimVenue, client: Any) -> None:
    manager = socket_manager(client, sim)
    async with quick(manager.kline_socket("BTCUSDT", interval="1m")) as stream:
        wait_for_sockets(sim, 1)
        sim.control.advance(candles=1)
        updates = [await recv(stream) for _ in range(4)]
    assert [u["k"]["x"] for u in updates] == [False, False, False, True]
    assert len({u["k"]["t"] for u in updates}) == 1
    closed = updates[-1]["k"]
    [row] = await client.get_klines(symbol="BTCUSDT", interval="1m", limit=1)
    assert row[0] == closed["t"] and row[1:6] == [
        closed["o"],
        closed["h"],
        closed["l"],
        closed["c"],
        closed["v"],
    ]


async def test_five_minute_klines_close_on_the_boundary(sim: SimVenue, client: Any) -> None:
    async with websockets.connect(sim.ws_url("/ws/btcusdt@kline_5m")) as ws:
        wait_for_sockets(sim, 1)
        sim.control.advance(candles=5)  # the live market starts on a 5-minute boundary
        updates = [orjson_loads(await asyncio.wait_for(ws.recv(), 5))["k"] for _ in range(20)]
    assert [u["x"] for u in updates] == [False] * 19 + [True]
    final = updates[-1]
    assert len({u["t"] for u in updates}) == 1 and final["T"] - final["t"] == 300_000 - 1
    minutes = await client.get_klines(symbol="BTCUSDT", interval="1m", limit=5)
    assert minutes[0][0] == final["t"]
    assert D(final["v"]) == sum(D(m[5]) for m in minutes)
    assert D(final["h"]) == max(D(m[2]) for m in minutes) and final["c"] == minutes[-1][4]
    [five] = await client.get_klines(symbol="BTCUSDT", interval="5m", limit=1)
    assert five[0] == final["t"] and five[1:6] == [final["o"], final["h"], final["l"], final["c"], final["v"]]


async def test_multiplexed_streams(sim: SimVenue, client: Any) -> None:
    manager = socket_manager(client, sim)
    names = ["btcusdt@trade", "ethusdt@bookTicker", "btcusdt@kline_5m"]
    async with quick(manager.multiplex_socket(names)) as stream:
        wait_for_sockets(sim, 1)
        sim.control.advance(steps=1)
        got = {}
        while len(got) < 3:
            message = await recv(stream)
            got[message["stream"]] = message["data"]
    assert got["btcusdt@trade"]["e"] == "trade" and D(got["btcusdt@trade"]["q"]) > 0
    assert D(got["ethusdt@bookTicker"]["a"]) > D(got["ethusdt@bookTicker"]["b"])
    kline = got["btcusdt@kline_5m"]["k"]
    assert kline["i"] == "5m" and kline["t"] % 300_000 == 0 and kline["x"] is False


async def test_the_trade_endpoints_show_the_prints_the_trade_stream_pushed(
    sim: SimVenue, client: Any
) -> None:
    """/api/v3/trades, historicalTrades and aggTrades (and the WebSocket API's trades.*) read the
    same tape as the @trade stream: same ids, prices, quantities and aggressor side."""
    async with quick(socket_manager(client, sim).trade_socket("BTCUSDT")) as stream:
        wait_for_sockets(sim, 1)
        sim.control.advance(steps=3)
        pushed = [await recv(stream) for _ in range(3)]
    streamed = [(p["t"], p["p"], p["q"], p["m"]) for p in pushed]
    recent = await client.get_recent_trades(symbol="BTCUSDT", limit=3)
    assert [(t["id"], t["price"], t["qty"], t["isBuyerMaker"]) for t in recent] == streamed
    assert recent[-1]["price"] == f"{await price(client):.8f}"
    assert all(D(t["quoteQty"]) == D(t["price"]) * D(t["qty"]) for t in recent)
    older = await client.get_historical_trades(symbol="BTCUSDT", fromId=pushed[1]["t"], limit=5)
    assert [t["id"] for t in older] == [pushed[1]["t"], pushed[2]["t"]]
    agg = await client.get_aggregate_trades(
        symbol="BTCUSDT", startTime=pushed[0]["T"], endTime=pushed[2]["T"]
    )
    assert [(a["a"], a["f"], a["l"], a["p"], a["q"], a["m"]) for a in agg] == [
        (t, t, t, p, q, m) for t, p, q, m in streamed
    ]
    assert (
        await api_error(client.get_aggregate_trades(symbol="BTCUSDT", startTime=0, endTime=7_200_000))
    ).code == -1127
    assert await client.ws_get_recent_trades(symbol="BTCUSDT", limit=3) == recent
    sim.control.reset()
    assert await client.get_recent_trades(symbol="BTCUSDT") == []  # a reset empties the tape


# rest-api.md, "Rolling window price change statistics": the keys of the FULL and MINI answers
ROLLING_FULL = ["symbol", "priceChange", "priceChangePercent", "weightedAvgPrice", "openPrice", "highPrice",
                "lowPrice", "lastPrice", "volume", "quoteVolume", "openTime", "closeTime", "firstId", "lastId",
                "count"]  # fmt: skip
ROLLING_MINI = ["symbol", *ROLLING_FULL[4:]]


async def test_rolling_window_ticker_sums_the_window_s_candles(sim: SimVenue, client: Any) -> None:
    """GET /api/v3/ticker (python-binance get_symbol_ticker_window) answered 404."""
    sim.control.advance(candles=10)
    window = await client.get_symbol_ticker_window(symbol="BTCUSDT", windowSize="5m")
    assert list(window) == ROLLING_FULL
    bars = (await client.get_klines(symbol="BTCUSDT", interval="1m", limit=5))[-5:]
    assert (window["openPrice"], window["lastPrice"], window["openTime"]) == (
        bars[0][1],
        bars[-1][4],
        bars[0][0],
    )
    assert window["highPrice"] == max(bars, key=lambda b: D(b[2]))[2]
    assert window["lowPrice"] == min(bars, key=lambda b: D(b[3]))[3]
    assert D(window["volume"]) == sum(D(b[5]) for b in bars)
    assert D(window["priceChange"]) == D(bars[-1][4]) - D(bars[0][1])
    mini = await client.get_symbol_ticker_window(
        symbols='["BTCUSDT","ETHUSDT"]', windowSize="2h", type="MINI"
    )
    assert [list(m) for m in mini] == [ROLLING_MINI, ROLLING_MINI]
    assert await client.ws_get_symbol_ticker_window(symbol="BTCUSDT", windowSize="5m") == window
    err = await api_error(client.get_symbol_ticker_window(symbol="BTCUSDT", windowSize="1d2h"))
    assert err.code == -1100 and "windowSize" in err.message
    err = await api_error(client.get_symbol_ticker_window())
    assert (err.code, err.message) == (
        -1102,
        "Mandatory parameter 'symbol' was not sent, was empty/null, or malformed.",
    )
    # the 24h ticker's lastQty is the last print's (it was always 0)
    [last_print] = await client.get_recent_trades(symbol="BTCUSDT", limit=1)
    assert (await client.get_ticker(symbol="BTCUSDT"))["lastQty"] == last_print["qty"] != "0.00000000"


async def test_commission_rates_as_the_commission_faq_shows_them(client: Any) -> None:
    """faqs/commission_faq.md: a test order's computeCommissionRates answer and GET
    account/commission (python-binance v3_get_account_commission / ws_get_commission_rates: 404)."""
    rates = {"maker": "0.00100000", "taker": "0.00100000"}  # SIM_MAKER_FEE / SIM_TAKER_FEE
    zero = {"maker": "0.00000000", "taker": "0.00000000"}
    discount = {
        "enabledForAccount": False,
        "enabledForSymbol": False,
        "discountAsset": "BNB",
        "discount": "0.25000000",
    }
    for_order = await client.create_test_order(
        symbol="BTCUSDT", side="BUY", type="MARKET", quantity="0.001", computeCommissionRates="true"
    )
    assert for_order == {"standardCommissionForOrder": rates, "specialCommissionForOrder": zero,
                         "taxCommissionForOrder": zero, "discount": discount}  # fmt: skip
    sides = {"buyer": "0.00000000", "seller": "0.00000000"}
    account = await client.v3_get_account_commission(symbol="BTCUSDT")
    assert account == {"symbol": "BTCUSDT", "standardCommission": rates | sides, "specialCommission": zero | sides,
                       "taxCommission": zero | sides, "discount": discount}  # fmt: skip
    assert list(account) == ["symbol", "standardCommission", "specialCommission", "taxCommission", "discount"]
    assert await client.ws_get_commission_rates(symbol="BTCUSDT") == account
    assert (await api_error(client.v3_get_account_commission(symbol="NOPE"))).code == -1121


async def test_the_rest_of_python_binance_s_spot_calls_answer_as_binance_would(
    sim: SimVenue, client: Any
) -> None:
    """What python-binance calls and the venue has little to show for: each answered 404 before."""
    sim.control.advance(candles=2)
    day = await client.v3_get_ticker_trading_day(symbol="BTCUSDT")
    assert list(day) == ROLLING_FULL and day["openTime"] % 86_400_000 == 0  # since 00:00 UTC
    assert await client.ws_get_trading_day_ticker(symbol="BTCUSDT") == day
    assert (await api_error(client.v3_get_ticker_trading_day(symbol="BTCUSDT", timeZone="8"))).code == -1100
    assert await client.get_prevented_matches(symbol="BTCUSDT", orderId=1) == []  # no self-trade prevention
    assert await client.get_allocations(symbol="BTCUSDT") == []  # no smart order routing
    last = await price(client)
    await client.create_order(symbol="BTCUSDT", side="BUY", type="LIMIT", timeInForce="GTC", quantity="0.01",
                              price=str(last - 100), newClientOrderId="cr-1")  # fmt: skip
    err = await api_error(client.cancel_replace_order(
        symbol="BTCUSDT", side="BUY", type="LIMIT", timeInForce="GTC", quantity="0.01", price=str(last - 90),
        cancelReplaceMode="STOP_ON_FAILURE", cancelOrigClientOrderId="cr-1",
    ))  # fmt: skip
    assert (err.code, err.message) == (-2010, "Order cancel-replace is not supported for this symbol.")
    info = await client.get_symbol_info("BTCUSDT")
    assert info is not None and info["cancelReplaceAllowed"] is False  # what exchangeInfo says
    assert [o["clientOrderId"] for o in await client.get_open_orders()] == ["cr-1"]  # nothing cancelled


# web-socket-streams.md, "Individual Symbol Ticker Streams" / "Individual Symbol Mini Ticker Stream"
TICKER_KEYS = list("eEspPwxcQbBaAohlvqOCFLn")
MINI_TICKER_KEYS = list("eEscohlvq")


async def test_ticker_streams_match_the_24h_ticker(sim: SimVenue, client: Any) -> None:
    """`<symbol>@ticker` and `@miniTicker` (python-binance symbol_ticker_socket / symbol_miniticker_socket)
    were refused as unknown streams."""
    names = ["btcusdt@ticker", "btcusdt@miniTicker"]
    async with quick(socket_manager(client, sim).multiplex_socket(names)) as stream:
        wait_for_sockets(sim, 1)
        sim.control.advance(steps=1)
        got: dict[str, Any] = {}
        while len(got) < 2:
            message = await recv(stream)
            got[message["stream"]] = message["data"]
    full, mini = got["btcusdt@ticker"], got["btcusdt@miniTicker"]
    assert (list(full), list(mini)) == (TICKER_KEYS, MINI_TICKER_KEYS)
    assert (full["e"], mini["e"]) == ("24hrTicker", "24hrMiniTicker")
    rest = await client.get_ticker(symbol="BTCUSDT")
    pairs = {
        "c": "lastPrice",
        "o": "openPrice",
        "h": "highPrice",
        "l": "lowPrice",
        "v": "volume",
        "q": "quoteVolume",
    }
    for short, long in pairs.items():
        assert full[short] == mini[short] == rest[long], short
    assert (full["p"], full["P"], full["b"], full["a"], full["Q"], full["n"]) == (
        rest["priceChange"], rest["priceChangePercent"], rest["bidPrice"], rest["askPrice"], rest["lastQty"], rest["count"],
    )  # fmt: skip
