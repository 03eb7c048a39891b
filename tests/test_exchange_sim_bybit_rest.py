"""The paper venue's Bybit V5 REST face, driven by the real pybit HTTP client over loopback.

The venue runs in step mode: prices move only when a test pushes one (`set_price`) or steps
the market (`advance`), so every fill below is caused by the test, never by timing.
"""

from __future__ import annotations

import time
from decimal import Decimal
from typing import Any

import pytest
import requests
from pybit.exceptions import FailedRequestError, InvalidRequestError

from tests.helpers.bybit import bybit_http
from tests.helpers.sim import SimVenue, sim_fixture

sim = sim_fixture()
ACCOUNT = "bybit"
SPOT = {"category": "spot", "symbol": "BTCUSDT"}


def last_price(sim: SimVenue) -> Decimal:
    return Decimal(str(sim.control.state()["prices"]["BTCUSDT"]))


def order_by_link(session: Any, link_id: str) -> dict[str, Any]:
    rows = session.get_open_orders(category="spot", orderLinkId=link_id)["result"]["list"]
    assert len(rows) == 1, rows
    return rows[0]


def coin(session: Any, name: str) -> dict[str, Any]:
    wallet = session.get_wallet_balance(accountType="UNIFIED", coin=name)["result"]["list"][0]
    return next(c for c in wallet["coin"] if c["coin"] == name)


def limit(
    session: Any, side: str, qty: str, price: Decimal | str, link_id: str, **extra: Any
) -> dict[str, Any]:
    return session.place_order(
        **SPOT, side=side, orderType="Limit", qty=qty, price=str(price), orderLinkId=link_id, **extra
    )["result"]


def ret_code(call: Any, **kwargs: Any) -> int:
    with pytest.raises(InvalidRequestError) as info:
        call(**kwargs)
    return info.value.status_code


# ----------------------------------------------------------------------------- market data
def test_market_data_has_bybit_shapes(sim: SimVenue) -> None:
    s = bybit_http(sim)
    t = s.get_server_time()["result"]
    assert int(t["timeNano"]) // 10**9 == int(t["timeSecond"])

    info = s.get_instruments_info(category="spot", symbol="BTCUSDT")["result"]["list"]
    assert [i["symbol"] for i in info] == ["BTCUSDT"]
    assert info[0]["lotSizeFilter"]["basePrecision"] == "0.00001"
    assert info[0]["lotSizeFilter"]["minOrderAmt"] == "5"
    assert info[0]["priceFilter"]["tickSize"] == "0.01"

    sim.control.advance(steps=1)  # a candle is now in progress
    rows = s.get_kline(category="spot", symbol="BTCUSDT", interval="1", limit=3)["result"]["list"]
    starts = [int(r[0]) for r in rows]
    assert starts == sorted(starts, reverse=True) and starts[0] - starts[1] == 60_000
    market_time = sim.control.state()["market_time"]
    assert starts[0] <= market_time < starts[0] + 60_000  # the forming candle comes first, as on Bybit
    assert Decimal(rows[0][4]) == last_price(sim)

    five = s.get_kline(category="spot", symbol="BTCUSDT", interval="5", limit=2)["result"]["list"]
    assert all(int(r[0]) % 300_000 == 0 for r in five)

    ticker = s.get_tickers(category="spot", symbol="BTCUSDT")["result"]["list"][0]
    assert Decimal(ticker["lastPrice"]) == last_price(sim)
    assert Decimal(ticker["bid1Price"]) < Decimal(ticker["ask1Price"])


# ----------------------------------------------------------------------------- orders
def test_limit_buy_rests_then_fills_with_fee_in_base(sim: SimVenue) -> None:
    s = bybit_http(sim)
    price = last_price(sim) - 100
    placed = limit(s, "Buy", "0.01", price, "t-000001")
    assert placed["orderLinkId"] == "t-000001" and placed["orderId"]

    order = order_by_link(s, "t-000001")
    assert (order["orderStatus"], order["leavesQty"], order["cumExecQty"]) == ("New", "0.01", "0")
    assert order["ocoTriggerBy"] == "OcoTriggerByUnknown"  # UTA spot has the field (open-order.mdx)
    assert Decimal(coin(s, "USDT")["locked"]) == Decimal("0.01") * price

    sim.control.set_price("BTCUSDT", str(price))
    order = order_by_link(s, "t-000001")
    assert (order["orderStatus"], order["cumExecQty"], order["leavesQty"]) == ("Filled", "0.01", "0")
    assert Decimal(order["avgPrice"]) == price
    assert order["cumFeeDetail"] == {"BTC": "0.00001"} and order["feeCurrency"] == "BTC"

    fills = s.get_executions(category="spot", orderLinkId="t-000001")["result"]["list"]
    assert [(f["execQty"], f["isMaker"], f["feeRate"], f["execFee"]) for f in fills] == [
        ("0.01", True, "0.001", "0.00001")
    ]
    # the rate the fill was charged is the one account/fee-rate tells
    [rates] = s.get_fee_rates(**SPOT)["result"]["list"]
    assert rates == {"symbol": "BTCUSDT", "takerFeeRate": "0.001", "makerFeeRate": "0.001"}
    btc, usdt = coin(s, "BTC"), coin(s, "USDT")
    assert Decimal(btc["walletBalance"]) == Decimal("1.00999")
    assert Decimal(usdt["walletBalance"]) == Decimal(10000) - Decimal("0.01") * price
    assert usdt["locked"] == "0"


def test_partial_fills_report_cumulative_quantities(sim: SimVenue) -> None:
    s = bybit_http(sim)
    sim.control.market("BTCUSDT", max_fill="0.004")
    price = last_price(sim) - 50
    limit(s, "Buy", "0.01", price, "t-000002")
    seen = []
    for _ in range(3):
        sim.control.set_price("BTCUSDT", str(price))
        order = order_by_link(s, "t-000002")
        seen.append((order["orderStatus"], order["cumExecQty"], order["leavesQty"]))
    assert seen == [
        ("PartiallyFilled", "0.004", "0.006"),
        ("PartiallyFilled", "0.008", "0.002"),
        ("Filled", "0.01", "0"),
    ]
    fills = s.get_executions(category="spot", symbol="BTCUSDT")["result"]["list"]
    assert [(f["execQty"], f["leavesQty"]) for f in fills] == [
        ("0.002", "0"),
        ("0.004", "0.002"),
        ("0.004", "0.006"),
    ]
    history = s.get_order_history(category="spot", orderStatus="Filled")["result"]["list"]
    assert [o["orderLinkId"] for o in history] == ["t-000002"]
    # Triggered is one of Bybit's orderStatus values (an instant only pushed here): no orders, no error
    assert s.get_order_history(category="spot", orderStatus="Triggered")["result"]["list"] == []
    # Bybit's spot OCO and bidirectional TP/SL filters: the venue has no such orders, none is an error
    for kind in ("OcoOrder", "BidirectionalTpslOrder"):
        assert s.get_order_history(category="spot", orderFilter=kind)["result"]["list"] == []
        assert s.get_open_orders(category="spot", orderFilter=kind)["result"]["list"] == []
        assert s.cancel_all_orders(**SPOT, orderFilter=kind)["result"]["list"] == []
    with pytest.raises(InvalidRequestError) as info:
        s.get_open_orders(category="spot", orderFilter="Nonsense")
    assert info.value.status_code == 170201


def test_market_orders_buy_by_quote_and_sell_by_base(sim: SimVenue) -> None:
    s = bybit_http(sim)
    s.place_order(**SPOT, side="Buy", orderType="Market", qty="100", orderLinkId="t-000003")
    buy = order_by_link(s, "t-000003")
    assert (buy["orderStatus"], buy["marketUnit"], buy["qty"], buy["timeInForce"]) == (
        "Filled",
        "quoteCoin",
        "100",
        "IOC",
    )
    assert Decimal(95) < Decimal(buy["cumExecValue"]) <= Decimal(100)
    assert buy["feeCurrency"] == "BTC"

    s.place_order(**SPOT, side="Sell", orderType="Market", qty="0.001", orderLinkId="t-000004")
    sell = order_by_link(s, "t-000004")
    assert (sell["orderStatus"], sell["cumExecQty"], sell["marketUnit"]) == ("Filled", "0.001", "baseCoin")
    assert sell["feeCurrency"] == "USDT"
    assert Decimal(sell["cumExecFee"]) == (Decimal(sell["cumExecValue"]) / 1000).quantize(Decimal("1e-8"))

    s.place_order(
        **SPOT, side="Buy", orderType="Market", qty="0.002", marketUnit="baseCoin", orderLinkId="t-5"
    )
    assert order_by_link(s, "t-5")["cumExecQty"] == "0.002"


def test_cancel_cancel_all_and_their_refusals(sim: SimVenue) -> None:
    s = bybit_http(sim)
    price = last_price(sim) - 500
    first = limit(s, "Buy", "0.01", price, "t-000006")
    limit(s, "Buy", "0.01", price - 1, "t-000007")

    cancelled = s.cancel_order(**SPOT, orderId=first["orderId"])["result"]
    assert cancelled == {"orderId": first["orderId"], "orderLinkId": "t-000006"}
    order = order_by_link(s, "t-000006")
    assert (order["orderStatus"], order["cancelType"]) == ("Cancelled", "CancelByUser")
    assert ret_code(s.cancel_order, **SPOT, orderLinkId="t-000006") == 110008
    assert ret_code(s.cancel_order, **SPOT, orderLinkId="never-placed") == 110001

    listed = s.cancel_all_orders(category="spot")["result"]
    assert [o["orderLinkId"] for o in listed["list"]] == ["t-000007"] and listed["success"] == "1"
    assert s.get_open_orders(category="spot")["result"]["list"] == []
    closed = s.get_open_orders(category="spot", openOnly=1)["result"]["list"]
    assert [(o["orderLinkId"], o["orderStatus"]) for o in closed] == [
        ("t-000007", "Cancelled"),
        ("t-000006", "Cancelled"),
    ]
    assert coin(s, "USDT")["locked"] == "0"


def test_duplicate_order_link_id_is_refused_and_never_accepted_twice(sim: SimVenue) -> None:
    s = bybit_http(sim)
    price = last_price(sim) - 500
    limit(s, "Buy", "0.01", price, "bot-000001")
    assert ret_code(limit, session=s, side="Buy", qty="0.01", price=price, link_id="bot-000001") == 110072
    s.cancel_order(**SPOT, orderLinkId="bot-000001")
    assert ret_code(limit, session=s, side="Buy", qty="0.01", price=price, link_id="bot-000001") == 110072

    journal = sim.control.journal(account=ACCOUNT)
    accepted = [e for e in journal if e["kind"] == "accepted" and e["client_order_id"] == "bot-000001"]
    assert len(accepted) == 1
    assert len(s.get_order_history(category="spot")["result"]["list"]) == 1


def test_paging_walks_newest_first_without_repeats(sim: SimVenue) -> None:
    s = bybit_http(sim)
    price = last_price(sim) - 500
    for i in range(5):
        limit(s, "Buy", "0.001", price - i, f"p-{i}")
    first = s.get_open_orders(category="spot", limit=2)["result"]
    second = s.get_open_orders(category="spot", limit=2, cursor=first["nextPageCursor"])["result"]
    third = s.get_open_orders(category="spot", limit=2, cursor=second["nextPageCursor"])["result"]
    links = [o["orderLinkId"] for page in (first, second, third) for o in page["list"]]
    assert links == ["p-4", "p-3", "p-2", "p-1", "p-0"] and third["nextPageCursor"] == ""


# ----------------------------------------------------------------------------- refusals
ORDER_ERRORS = [
    pytest.param({"qty": "0.000001", "price": "30000"}, 170137, id="qty-decimals"),
    pytest.param({"qty": "0.01", "price": "30000.001"}, 170134, id="price-decimals"),
    pytest.param({"qty": "0", "price": "30000"}, 170136, id="qty-below-min"),
    pytest.param({"qty": "9001", "price": "30000"}, 170135, id="qty-above-max"),
    pytest.param({"qty": "0.0001", "price": "30000"}, 170140, id="value-below-min"),
    pytest.param({"qty": "1", "price": "30000"}, 110007, id="insufficient-balance"),
    pytest.param({"qty": "0.0002", "price": "400000"}, 170193, id="buy-above-price-band"),
    pytest.param({"qty": "0.01", "price": "30000", "symbol": "DOGEUSDT"}, 170121, id="invalid-symbol"),
    pytest.param({"qty": "0.01", "price": "30000", "side": "buy"}, 170117, id="invalid-side"),
    pytest.param({"qty": "0.01", "price": "30000", "timeInForce": "GTD"}, 170115, id="invalid-tif"),
    pytest.param({"qty": "0.01", "price": "30000", "category": "linear"}, 10001, id="category"),
    pytest.param({"qty": "abc", "price": "30000"}, 10001, id="qty-not-a-number"),
    pytest.param({"qty": "100.123456789", "orderType": "Market"}, 170148, id="market-amount-decimals"),
    pytest.param({"qty": "1", "orderType": "Market"}, 170140, id="market-amount-below-min"),
]


@pytest.mark.parametrize(("fields", "code"), ORDER_ERRORS)
def test_order_refusals_carry_bybits_codes(sim: SimVenue, fields: dict[str, str], code: int) -> None:
    s = bybit_http(sim)
    body = {**SPOT, "side": "Buy", "orderType": "Limit", "orderLinkId": "err-1", **fields}
    assert ret_code(s.place_order, **body) == code
    assert s.get_open_orders(category="spot", orderLinkId="err-1")["result"]["list"] == []


def test_authentication_refusals_name_no_secret(sim: SimVenue) -> None:
    wrong_key = bybit_http(sim, api_key="someone-else")
    assert ret_code(wrong_key.get_wallet_balance, accountType="UNIFIED") == 10003
    wrong_secret = bybit_http(sim, api_secret="not-the-secret")
    with pytest.raises(InvalidRequestError) as info:
        wrong_secret.place_order(**SPOT, side="Buy", orderType="Market", qty="10", orderLinkId="sig-1")
    assert info.value.status_code == 10004
    assert sim.api_secret not in str(info.value) and "not-the-secret" not in str(info.value)
    assert sim.control.journal(account=ACCOUNT) == []  # nothing reached the engine


@pytest.mark.parametrize("skew_ms", [-10_000, 10_000], ids=["client-ahead", "client-behind-recv-window"])
def test_timestamp_outside_recv_window_is_10002(sim: SimVenue, skew_ms: int) -> None:
    sim.control.skew(skew_ms)
    s = bybit_http(sim)
    assert ret_code(s.get_open_orders, category="spot") == 10002
    sim.control.skew(0)
    assert s.get_open_orders(category="spot")["retCode"] == 0


def test_rate_limit_is_10006_with_a_reset_time_pybit_waits_for(sim: SimVenue) -> None:
    sim.control.fault("rate_limit", retry_after=1, match={"protocol": "bybit", "path": "/v5/order/realtime"})
    with pytest.raises(InvalidRequestError) as info:
        bybit_http(sim).get_open_orders(category="spot")
    assert info.value.status_code == 10006
    assert int(info.value.resp_headers["X-Bapi-Limit-Reset-Timestamp"]) > int(time.time() * 1000)

    sim.control.fault("rate_limit", retry_after=1, match={"protocol": "bybit"})
    retrying = bybit_http(sim, retry=True)  # pybit sleeps until the reset time, then retries
    assert retrying.get_open_orders(category="spot")["retCode"] == 0
    assert sim.control.faults() == []


# ----------------------------------------------------------------------------- faults
def test_dropped_reply_times_out_but_the_order_was_accepted(sim: SimVenue) -> None:
    sim.control.fault("drop_reply", hold_s=5, match={"protocol": "bybit", "path": "/v5/order/create"})
    impatient = bybit_http(sim, timeout=0.5)
    with pytest.raises(requests.exceptions.ReadTimeout):
        limit(impatient, "Buy", "0.01", last_price(sim) - 500, "lost-1")
    assert order_by_link(bybit_http(sim), "lost-1")["orderStatus"] == "New"


@pytest.mark.parametrize(("status", "body"), [(504, "html"), (500, "json")])
def test_error_after_accepting_hides_a_placed_order(sim: SimVenue, status: int, body: str) -> None:
    sim.control.fault(
        "error", http_status=status, body=body, match={"protocol": "bybit", "path": "/v5/order/create"}
    )
    s = bybit_http(sim)
    with pytest.raises(FailedRequestError) as info:
        limit(s, "Buy", "0.01", last_price(sim) - 500, "hidden-1")
    assert info.value.status_code == status
    assert order_by_link(s, "hidden-1")["orderStatus"] == "New"


def test_rejected_and_banned_requests_do_nothing(sim: SimVenue) -> None:
    s = bybit_http(sim)
    sim.control.fault("reject", http_status=503, match={"protocol": "bybit"})
    with pytest.raises(FailedRequestError) as info:
        limit(s, "Buy", "0.01", last_price(sim) - 500, "never-1")
    assert info.value.status_code == 503
    sim.control.fault("ban", match={"protocol": "bybit"})
    with pytest.raises(FailedRequestError) as info:
        limit(s, "Buy", "0.01", last_price(sim) - 500, "never-2")
    assert info.value.status_code == 403
    assert s.get_open_orders(category="spot")["result"]["list"] == []
    assert sim.control.journal(account=ACCOUNT) == []


def test_conditional_order_waits_for_its_trigger(sim: SimVenue) -> None:
    s = bybit_http(sim)
    trigger = last_price(sim) - 100
    s.place_order(
        **SPOT,
        side="Sell",
        orderType="Limit",
        qty="0.01",
        price=str(trigger - 10),
        triggerPrice=str(trigger),
        orderFilter="StopOrder",
        orderLinkId="stop-1",
    )
    order = order_by_link(s, "stop-1")
    assert (order["orderStatus"], order["stopOrderType"], Decimal(order["triggerPrice"])) == (
        "Untriggered",
        "Stop",
        trigger,
    )
    sim.control.set_price("BTCUSDT", str(trigger + 1))
    assert order_by_link(s, "stop-1")["orderStatus"] == "Untriggered"
    sim.control.set_price("BTCUSDT", str(trigger))
    order = order_by_link(s, "stop-1")
    assert (order["orderStatus"], order["cumExecQty"]) == ("Filled", "0.01")
    assert Decimal(order["avgPrice"]) >= trigger - 10


def test_ioc_remainder_and_post_only(sim: SimVenue) -> None:
    s = bybit_http(sim)
    sim.control.set_balance("USDT", "100000", account=ACCOUNT)
    ask = Decimal(s.get_tickers(category="spot", symbol="BTCUSDT")["result"]["list"][0]["ask1Price"])
    limit(s, "Buy", "1", ask, "ioc-1", timeInForce="IOC")
    order = order_by_link(s, "ioc-1")
    assert (order["orderStatus"], order["timeInForce"]) == ("PartiallyFilledCanceled", "IOC")
    assert Decimal(0) < Decimal(order["cumExecQty"]) < Decimal(1) and order["leavesQty"] == "0"

    assert (
        ret_code(limit, session=s, side="Buy", qty="0.01", price=ask, link_id="po-1", timeInForce="PostOnly")
        == 170218
    )
    limit(s, "Buy", "0.01", ask - 100, "po-2", timeInForce="PostOnly")
    order = order_by_link(s, "po-2")
    assert (order["orderStatus"], order["timeInForce"]) == ("New", "PostOnly")


def test_market_endpoints_refuse_unknown_symbols(sim: SimVenue) -> None:
    s = bybit_http(sim)
    assert ret_code(s.get_kline, category="spot", symbol="DOGEUSDT", interval="1") == 10001
    assert ret_code(s.get_kline, category="spot", symbol="BTCUSDT", interval="7") == 10001
    assert s.get_instruments_info(category="spot", symbol="DOGEUSDT")["result"]["list"] == []
