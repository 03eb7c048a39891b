"""Faults the paper venue injects on request, seen through the real python-binance client."""

from __future__ import annotations

import asyncio
import contextlib
import time
from typing import Any

import pytest
import websockets
from binance.exceptions import BinanceAPIException, BinanceWebsocketUnableToConnect

from tests.helpers.procs import wait_until
from tests.helpers.sim import (
    SimVenue,
    binance_client,
    binance_client_fixture,
    quick,
    sim_fixture,
    socket_manager,
    sockets_at_least,
    wait_for_sockets,
)

sim = sim_fixture()
ORDER = {"path": "/api/v3/order", "method": "POST"}


client = binance_client_fixture(timeout=1.0, ws_timeout=1.0)


def buy(cid: str) -> dict[str, str]:
    return {
        "symbol": "BTCUSDT",
        "side": "BUY",
        "type": "MARKET",
        "quantity": "0.001",
        "newClientOrderId": cid,
    }


def accepted(sim: SimVenue, cid: str) -> int:
    return sum(1 for e in sim.control.journal() if e["kind"] == "accepted" and e["client_order_id"] == cid)


async def test_dropped_reply_times_out_but_the_order_was_accepted(sim: SimVenue, client: Any) -> None:
    sim.control.fault("drop_reply", match=ORDER, hold_s=5)
    with pytest.raises(asyncio.TimeoutError):
        await client.create_order(**buy("f-000001"))
    order = await client.get_order(symbol="BTCUSDT", origClientOrderId="f-000001")
    assert order["status"] == "FILLED"
    assert accepted(sim, "f-000001") == 1
    assert (await client.create_order(**buy("f-000002")))["status"] == "FILLED"  # used up: once


@pytest.mark.parametrize(
    ("status", "body", "code"), [(503, "json", -1001), (504, "html", 0), (500, "json", -1001)]
)
async def test_5xx_after_accepting(sim: SimVenue, client: Any, status: int, body: str, code: int) -> None:
    sim.control.fault("error", match=ORDER, http_status=status, body=body)
    with pytest.raises(BinanceAPIException) as err:
        await client.create_order(**buy("f-000003"))
    assert (err.value.status_code, err.value.code) == (status, code)
    assert accepted(sim, "f-000003") == 1  # it happened, whatever the answer said
    assert (await client.get_order(symbol="BTCUSDT", origClientOrderId="f-000003"))["status"] == "FILLED"


async def test_rejected_before_processing_changes_nothing(sim: SimVenue, client: Any) -> None:
    sim.control.fault("reject", match=ORDER, http_status=503)
    with pytest.raises(BinanceAPIException) as err:
        await client.create_order(**buy("f-000004"))
    assert err.value.status_code == 503
    assert accepted(sim, "f-000004") == 0
    with pytest.raises(BinanceAPIException) as err:
        await client.get_order(symbol="BTCUSDT", origClientOrderId="f-000004")
    assert err.value.code == -2013


async def test_injected_rate_limit_for_n_requests(sim: SimVenue, client: Any) -> None:
    sim.control.fault("rate_limit", count=2, retry_after=7, match={"path": "/api/v3/account"})
    for _ in range(2):
        with pytest.raises(BinanceAPIException) as err:
            await client.get_account()
        assert (err.value.status_code, err.value.code) == (429, -1003)
        assert err.value.response.headers["Retry-After"] == "7"
    assert await client.ping() == {}  # other paths are not affected
    assert "balances" in await client.get_account()  # the budget of two is spent


async def test_real_weight_limit_then_ban(sim: SimVenue, client: Any) -> None:
    wait_until(lambda: time.time() % 60 < 55, timeout=10, what="a fresh minute")
    sim.control.limits(weight_limit=25, ban_after=2, ban_seconds=120)
    await client.get_account()  # weight 20 of 25
    assert client.response.headers["X-MBX-USED-WEIGHT-1M"] == "20"
    for _ in range(2):
        with pytest.raises(BinanceAPIException) as err:
            await client.get_account()
        assert (err.value.status_code, err.value.code) == (429, -1003)
        assert "current limit is 25 request weight per 1 MINUTE" in err.value.message
        assert 0 < int(err.value.response.headers["Retry-After"]) <= 60
    with pytest.raises(BinanceAPIException) as err:
        await client.get_account()
    assert err.value.status_code == 418 and "IP banned until" in err.value.message
    with pytest.raises(BinanceAPIException) as err:
        await client.ping()  # banned: even weight 1 is refused
    assert err.value.status_code == 418
    sim.control.reset()
    assert await client.ping() == {}


async def test_order_count_limit(sim: SimVenue, client: Any) -> None:
    wait_until(lambda: time.time() % 10 < 8, timeout=10, what="a fresh 10 s window")
    sim.control.limits(order_limit_10s=2)
    for i in range(2):
        await client.create_order(**buy(f"f-00001{i}"))
    assert client.response.headers["X-MBX-ORDER-COUNT-10S"] == "2"
    with pytest.raises(BinanceAPIException) as err:
        await client.create_order(**buy("f-000019"))
    assert (err.value.status_code, err.value.code) == (429, -1015)
    assert accepted(sim, "f-000019") == 0


async def test_server_clock_skew(sim: SimVenue, client: Any) -> None:
    sim.control.skew(30_000)
    with pytest.raises(BinanceAPIException) as err:
        await client.get_account()
    assert err.value.code == -1021
    server = (await client.get_server_time())["serverTime"]
    client.timestamp_offset = server - int(time.time() * 1000)  # what AsyncClient.create() does
    assert "balances" in await client.get_account()


async def test_dropped_user_stream_events(sim: SimVenue, client: Any) -> None:
    sim.control.fault("drop_event", match={"event": "executionReport", "status": "FILLED"})
    async with socket_manager(client, sim).user_socket() as stream:
        await client.create_order(**buy("f-000005"))
        await client.create_order(**buy("f-000006"))
        seen = []
        while len(seen) < 3:
            message = await asyncio.wait_for(stream.recv(), 5)
            if message["e"] == "executionReport":
                seen.append((message["c"], message["X"]))
    assert seen == [("f-000005", "NEW"), ("f-000006", "NEW"), ("f-000006", "FILLED")]
    assert (await client.get_order(symbol="BTCUSDT", origClientOrderId="f-000005"))["status"] == "FILLED"


async def test_closed_user_stream_reports_errors_to_python_binance(sim: SimVenue) -> None:
    client = binance_client(sim, ws_timeout=1.0)
    socket = socket_manager(client, sim).user_socket()
    try:
        # python-binance 1.0.37 cannot unsubscribe after the drop (its ws_api reconnects twice)
        with contextlib.suppress(BinanceWebsocketUnableToConnect):
            async with socket as stream:
                assert sim.control.close_ws(protocol="binance", kind="ws_api") == 1
                first = await asyncio.wait_for(stream.recv(), 5)
    finally:
        # nor close its ws_api after it (the reconnect overrides the exit): drop the client instead
        await client.session.close()
    assert first["e"] == "error"  # the consumer's cue: rebuild the client, reconcile over REST
    assert first["type"] == "ConnectionClosedOK"


async def test_closed_market_stream_reconnects(sim: SimVenue, client: Any) -> None:
    async with quick(socket_manager(client, sim).kline_socket("BTCUSDT")) as stream:
        wait_for_sockets(sim, 1)
        assert sim.control.close_ws(kind="market") == 1
        error = await asyncio.wait_for(stream.recv(), 5)
        assert error["e"] == "error"
        await sockets_at_least(sim, 1)  # python-binance comes back by itself (after 1-2 s)
        sim.control.advance(steps=1)
        message = await asyncio.wait_for(stream.recv(), 5)
        while message.get("e") == "error":
            message = await asyncio.wait_for(stream.recv(), 5)
        assert message["e"] == "kline"


async def test_refused_websocket_handshake(sim: SimVenue) -> None:
    sim.control.fault("refuse_ws", count=1)
    with pytest.raises(websockets.exceptions.InvalidStatus) as err:
        async with websockets.connect(sim.ws_url("/ws/btcusdt@trade")):
            pass
    assert err.value.response.status_code == 503
    async with websockets.connect(sim.ws_url("/ws/btcusdt@trade")):
        pass  # only the next one was refused


async def test_websocket_api_dropped_reply_and_5xx(sim: SimVenue, client: Any) -> None:
    ws_order = {"method": "order.place"}
    sim.control.fault("drop_reply", match=ws_order)
    with pytest.raises(BinanceWebsocketUnableToConnect):
        await client.ws_create_order(**buy("f-000007"))
    assert accepted(sim, "f-000007") == 1
    sim.control.fault("error", match=ws_order, http_status=503)
    with pytest.raises(BinanceAPIException) as err:
        await client.ws_create_order(**buy("f-000008"))
    assert err.value.status_code == 503 and accepted(sim, "f-000008") == 1


def test_fault_windows_expire_and_bad_faults_are_refused(sim: SimVenue) -> None:
    fault = sim.control.fault("error", seconds=0.3, match={"path": "/api/v3/time"})
    assert [f["id"] for f in sim.control.faults()] == [fault["id"]]
    wait_until(lambda: not sim.control.faults(), timeout=5, what="the fault window to end")
    for bad in ({"kind": "explode"}, {"kind": "error", "match": {"colour": "red"}}):
        with pytest.raises(Exception, match="400"):
            sim.control.call("POST", "faults", bad)


async def test_empty_body_after_accepting(sim: SimVenue, client: Any) -> None:
    """`empty_body`: processed, answered 200 `{}` — python-binance hands the `{}` on as the reply."""
    sim.control.fault("empty_body", match=ORDER)
    assert await client.create_order(**buy("f-000009")) == {}
    assert accepted(sim, "f-000009") == 1
    order = await client.get_order(symbol="BTCUSDT", origClientOrderId="f-000009")
    assert order["status"] == "FILLED"
    assert (await client.create_order(**buy("f-000010")))["status"] == "FILLED"  # used up: once


def test_empty_body_on_the_bybit_face(sim: SimVenue) -> None:
    from tests.helpers.bybit import bybit_http

    sim.control.fault("empty_body", match={"protocol": "bybit", "path": "/v5/order/create"})
    s = bybit_http(sim)
    reply = s.place_order(category="spot", symbol="BTCUSDT", side="Buy", orderType="Market", qty="50",
                          orderLinkId="f-000011")  # fmt: skip
    assert reply == {}  # pybit passes `{}` on: no retCode, no result
    rows = s.get_order_history(category="spot", orderLinkId="f-000011")["result"]["list"]
    assert [r["orderStatus"] for r in rows] == ["Filled"]
