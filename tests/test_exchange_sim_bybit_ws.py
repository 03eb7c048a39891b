"""The paper venue's Bybit V5 WebSockets, driven by the real pybit WebSocket client over loopback.

pybit runs its sockets on threads; callbacks land in an Inbox the test polls. The market is in
step mode, so every push below follows a step or a price the test caused. Ops pybit cannot
show (a refused auth kills its socket thread) are checked with a plain websocket client.
"""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

import pytest
from websockets.exceptions import InvalidStatus
from websockets.sync.client import connect

from services.exchange_sim.bybit_auth import sign
from tests.helpers.bybit import Inbox, acks, bybit_http, bybit_ws, private_fixture, subscribed
from tests.helpers.procs import wait_until
from tests.helpers.sim import SimVenue, sim_fixture

sim = sim_fixture()
private = private_fixture()
SPOT = {"category": "spot", "symbol": "BTCUSDT"}


def last_price(sim: SimVenue) -> Decimal:
    return Decimal(str(sim.control.state()["prices"]["BTCUSDT"]))


# ----------------------------------------------------------------------------- public
def test_kline_confirm_flag_and_tickers_follow_the_market(sim: SimVenue) -> None:
    inbox = Inbox()
    ws = bybit_ws(sim, "spot")
    seen = acks(ws)
    try:
        ws.kline_stream(1, "BTCUSDT", inbox.put)
        ws.kline_stream(5, "BTCUSDT", inbox.put)
        ws.ticker_stream("BTCUSDT", inbox.put)
        subscribed(ws, seen, 3)
        sim.control.advance(candles=5)  # 20 steps; the ticker is the last push of each step
        wait_until(lambda: len(list(inbox.items("tickers.BTCUSDT"))) == 20, what="20 ticker pushes")
    finally:
        ws.exit()

    ones = list(inbox.items("kline.1.BTCUSDT"))
    assert len(ones) == 20  # four steps per candle
    assert [k["confirm"] for k in ones] == [False, False, False, True] * 5
    closed = [k for k in ones if k["confirm"]]
    assert all(k["end"] - k["start"] == 59_999 for k in closed)
    assert [k["start"] for k in closed] == sorted({k["start"] for k in ones})

    fives = list(inbox.items("kline.5.BTCUSDT"))
    confirmed = [k for k in fives if k["confirm"]]
    assert len(confirmed) >= 1 and all(k["start"] % 300_000 == 0 for k in confirmed)
    assert all(k["interval"] == "5" for k in fives)

    tickers = list(inbox.items("tickers.BTCUSDT"))
    assert len(tickers) == 20
    assert Decimal(tickers[-1]["lastPrice"]) == last_price(sim) == Decimal(closed[-1]["close"])


def test_public_ping_bad_topic_and_subscriptions(sim: SimVenue) -> None:
    with connect(sim.ws_url("/v5/public/spot")) as ws:
        ws.send(json.dumps({"op": "ping", "req_id": "p1"}))
        pong = json.loads(ws.recv(timeout=5))
        assert (pong["op"], pong["ret_msg"], pong["success"], pong["req_id"]) == ("ping", "pong", True, "p1")
        ws.send(json.dumps({"op": "subscribe", "req_id": "s1", "args": ["kline.7.BTCUSDT"]}))
        refused = json.loads(ws.recv(timeout=5))
        assert (refused["op"], refused["success"], refused["req_id"]) == ("subscribe", False, "s1")
        assert sim.control.state()["topics"] == {}, "a socket that has not subscribed has no topics"
        ws.send(json.dumps({"op": "subscribe", "req_id": "s2", "args": ["tickers.BTCUSDT"]}))
        assert json.loads(ws.recv(timeout=5))["ret_msg"] == "subscribe"
        # the control API says what is subscribed (a test waits for that, not only for the socket)
        assert sim.control.state()["topics"] == {"bybit:public": ["tickers.BTCUSDT"]}
        ws.send(json.dumps({"op": "unsubscribe", "req_id": "u1", "args": ["tickers.BTCUSDT"]}))
        assert json.loads(ws.recv(timeout=5))["ret_msg"] == "unsubscribe"
        assert sim.control.state()["topics"] == {}


def test_orderbook_level1_snapshot_at_once_then_one_per_change(sim: SimVenue) -> None:
    """`orderbook.1`: the book at subscribe time, then a snapshot each time the top of the book
    moves, its update id one more each time; bid and ask are the venue's (its REST tickers)."""
    inbox = Inbox()
    ws = bybit_ws(sim, "spot")
    seen = acks(ws)
    try:
        ws.orderbook_stream(1, "BTCUSDT", inbox.put)
        subscribed(ws, seen, 1)
        first = inbox.wait(lambda m: m["topic"] == "orderbook.1.BTCUSDT", what="the first book")
        price = last_price(sim)
        for step in range(1, 4):
            sim.control.set_price("BTCUSDT", str(price + 10 * step))
            wait_until(lambda n=step: len(inbox.all("orderbook.1.BTCUSDT")) == n + 1, what=f"book {step}")
    finally:
        ws.exit()
    books = inbox.all("orderbook.1.BTCUSDT")
    assert [b["data"]["u"] for b in books] == [first["data"]["u"] + i for i in range(4)]
    assert all(b["type"] == "snapshot" and b["data"]["s"] == "BTCUSDT" for b in books)
    assert [b["data"]["seq"] for b in books] == sorted(b["data"]["seq"] for b in books)
    [ticker] = bybit_http(sim).get_tickers(**SPOT)["result"]["list"]
    [[bid, bid_qty]], [[ask, ask_qty]] = books[-1]["data"]["b"], books[-1]["data"]["a"]
    assert (bid, bid_qty, ask, ask_qty) == tuple(
        ticker[k] for k in ("bid1Price", "bid1Size", "ask1Price", "ask1Size")
    )
    assert Decimal(bid) < Decimal(ask)


def test_orderbook_depth_spot_does_not_have_is_refused(sim: SimVenue) -> None:
    with connect(sim.ws_url("/v5/public/spot")) as ws:  # 25: an option depth
        ws.send(json.dumps({"op": "subscribe", "req_id": "b25", "args": ["orderbook.25.BTCUSDT"]}))
        refused = json.loads(ws.recv(timeout=5))
        assert (refused["success"], refused["req_id"], refused["ret_msg"]) == (
            False,
            "b25",
            "Invalid topic :[orderbook.25.BTCUSDT]",
        )


# ----------------------------------------------------------------------------- private
def test_partial_fills_stream_cumulative_order_execution_and_wallet(
    sim: SimVenue, private: tuple[Any, Inbox]
) -> None:
    _ws, inbox = private
    s = bybit_http(sim)
    sim.control.market("BTCUSDT", max_fill="0.004")
    price = last_price(sim) - 50
    s.place_order(**SPOT, side="Buy", orderType="Limit", qty="0.01", price=str(price), orderLinkId="w-000001")
    inbox.wait_item("order", lambda o: o["orderStatus"] == "New")
    for _ in range(3):
        sim.control.set_price("BTCUSDT", str(price))
    inbox.wait_item("order", lambda o: o["orderStatus"] == "Filled")
    wait_until(lambda: len(inbox.all("wallet")) == 4, what="a wallet push per placement and fill")

    orders = [o for o in inbox.items("order") if o["orderLinkId"] == "w-000001"]
    assert [(o["orderStatus"], o["cumExecQty"], o["leavesQty"]) for o in orders] == [
        ("New", "0", "0.01"),
        ("PartiallyFilled", "0.004", "0.006"),
        ("PartiallyFilled", "0.008", "0.002"),
        ("Filled", "0.01", "0"),
    ]
    assert orders[-1]["category"] == "spot" and Decimal(orders[-1]["cumExecValue"]) == Decimal("0.01") * price
    executions = list(inbox.items("execution"))
    assert [(e["execQty"], e["leavesQty"], e["isMaker"]) for e in executions] == [
        ("0.004", "0.006", True),
        ("0.004", "0.002", True),
        ("0.002", "0", True),
    ]
    assert len({e["execId"] for e in executions}) == 3
    assert sum(Decimal(e["execFee"]) for e in executions) == Decimal(orders[-1]["cumExecFee"])

    # every message of a fill comes execution -> order -> wallet, and the last wallet is the REST wallet
    topics = [m["topic"] for m in inbox.all() if m["topic"] in ("execution", "order", "wallet")]
    assert topics[-3:] == ["execution", "order", "wallet"]
    last_wallet = inbox.all("wallet")[-1]["data"][0]
    rest_wallet = s.get_wallet_balance(accountType="UNIFIED", coin="BTC,USDT")["result"]["list"][0]
    pushed = {c["coin"]: c["walletBalance"] for c in last_wallet["coin"]}
    assert pushed == {c["coin"]: c["walletBalance"] for c in rest_wallet["coin"]}
    assert Decimal(pushed["BTC"]) == Decimal("1.00999")


def test_dropped_event_is_missing_but_rest_still_knows(sim: SimVenue, private: tuple[Any, Inbox]) -> None:
    _ws, inbox = private
    sim.control.fault("drop_event", match={"protocol": "bybit", "event": "order", "status": "FILLED"})
    s = bybit_http(sim)
    s.place_order(**SPOT, side="Sell", orderType="Market", qty="0.001", orderLinkId="w-000002")
    inbox.wait_item("wallet", lambda w: any(c["coin"] == "USDT" for c in w["coin"]))
    assert inbox.wait_item("execution", lambda e: e["orderLinkId"] == "w-000002")["execQty"] == "0.001"
    assert [o["orderStatus"] for o in inbox.items("order")] == ["New"]
    rest = s.get_open_orders(category="spot", orderLinkId="w-000002")["result"]["list"][0]
    assert rest["orderStatus"] == "Filled"


def test_pybit_reconnects_reauthenticates_and_resubscribes(sim: SimVenue, private: tuple[Any, Inbox]) -> None:
    ws, inbox = private
    assert sim.control.close_ws(protocol="bybit", kind="private") == 1
    subscribed(ws, ws.test_acks, 6)  # pybit reconnected, authenticated and subscribed the 3 topics again
    assert ws.auth and sim.control.state()["websockets"] == 1
    s = bybit_http(sim)
    s.place_order(**SPOT, side="Sell", orderType="Market", qty="0.001", orderLinkId="w-000003")
    order = inbox.wait_item(
        "order", lambda o: o["orderLinkId"] == "w-000003" and o["orderStatus"] == "Filled"
    )
    assert order["cumExecQty"] == "0.001"


def _auth_args(sim: SimVenue, *, secret: str | None = None, expires: int | None = None) -> list[Any]:
    expires = expires if expires is not None else sim.control.state()["server_time"] + 5_000
    return [sim.api_key, expires, sign(secret or sim.api_secret, f"GET/realtime{expires}")]


@pytest.mark.parametrize(
    ("kind", "reason"),
    [("secret", "signature"), ("expired", "expired")],
)
def test_private_auth_refusals(sim: SimVenue, kind: str, reason: str) -> None:
    now = sim.control.state()["server_time"]
    args = _auth_args(sim, secret="wrong") if kind == "secret" else _auth_args(sim, expires=now - 1)
    with connect(sim.ws_url("/v5/private")) as ws:
        ws.send(json.dumps({"op": "subscribe", "req_id": "early", "args": ["order"]}))
        early = json.loads(ws.recv(timeout=5))
        assert (early["success"], early["ret_msg"]) == (False, "Request not authorized")
        ws.send(json.dumps({"op": "auth", "args": args}))
        answer = json.loads(ws.recv(timeout=5))
        assert answer["op"] == "auth" and answer["success"] is False and reason in answer["ret_msg"]
        assert sim.api_secret not in json.dumps(answer)


def test_private_ping_answers_pong_with_server_time(sim: SimVenue) -> None:
    with connect(sim.ws_url("/v5/private")) as ws:
        ws.send(json.dumps({"op": "auth", "args": _auth_args(sim)}))
        assert json.loads(ws.recv(timeout=5))["success"] is True
        ws.send(json.dumps({"op": "ping", "req_id": "hb"}))
        pong = json.loads(ws.recv(timeout=5))
        assert (pong["op"], pong["req_id"]) == ("pong", "hb") and pong["args"][0].isdigit()


def test_refused_handshake_then_pybit_connects_on_retry(sim: SimVenue) -> None:
    sim.control.fault("refuse_ws", match={"protocol": "bybit"})
    with pytest.raises(InvalidStatus) as info, connect(sim.ws_url("/v5/public/spot")):
        pass
    assert info.value.response.status_code == 503
    sim.control.fault("refuse_ws", match={"protocol": "bybit"})
    ws = bybit_ws(sim, "spot")  # pybit retries the handshake itself
    try:
        assert ws.is_connected() and sim.control.faults() == []
    finally:
        ws.exit()
