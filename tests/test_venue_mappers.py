"""The adapters' payload mappers against the exchanges' own documented examples.

Each payload comes from tests/fixtures/venues (copied from the Binance Spot API docs and the
Bybit V5 docs, source named in each file), never from the paper venue: a field the adapters
misread would pass a test that used the paper venue's answers, written from the same reading.
"""

from __future__ import annotations

from decimal import Decimal as D
from typing import Any

import msgspec
import pytest

from services.exchange_sim import binance_format
from services.order_gateway.venues import binance, binance_lists, bybit, bybit_payloads
from services.order_gateway.venues.base import BalanceReport, VenueTrade
from shared.filters import SymbolFilters
from shared.matching.symbols import select
from shared.messages import Balance, ListKind, OrderStatus, OrderType, PlaceOrder, PlaceOrderList, Side
from shared.order_report import OrderReport
from tests.helpers.venue_docs import documented


def fields(report: OrderReport) -> dict[str, Any]:
    return {f: getattr(report, f) for f in report.__struct_fields__}


def report(**expected: Any) -> dict[str, Any]:
    """An OrderReport's fields: the defaults, then what the test expects."""
    return fields(OrderReport(cid="", symbol="", status=OrderStatus.NEW)) | expected


# ------------------------------------------------------------------------------- Binance REST
def test_binance_order_ack_is_a_new_order_of_unknown_terms() -> None:
    got = binance.report_from_order(documented("binance", "order_ack"))
    assert fields(got) == report(
        cid="6gCrw2kRUAF9CvJDGP16IP", symbol="BTCUSDT", status=OrderStatus.NEW, venue_order_id="28",
        fee=D(0), venue_ts=1507725176595,
    )  # fmt: skip


def test_binance_order_result_has_no_fee_without_fills() -> None:
    got = binance.report_from_order(documented("binance", "order_result"))
    assert fields(got) == report(
        cid="6gCrw2kRUAF9CvJDGP16IP", symbol="BTCUSDT", status=OrderStatus.FILLED, venue_order_id="28",
        side=Side.SELL, order_type=OrderType.MARKET, orig_qty=D(10), cum_filled_qty=D(10), cum_quote_qty=D(10),
        fee=None, venue_ts=1507725176595,
    )  # fmt: skip


def test_binance_order_full_sums_the_fills_fees_and_names_the_last_trade() -> None:
    got = binance.report_from_order(documented("binance", "order_full"))
    assert fields(got) == report(
        cid="6gCrw2kRUAF9CvJDGP16IP", symbol="BTCUSDT", status=OrderStatus.FILLED, venue_order_id="28",
        side=Side.SELL, order_type=OrderType.MARKET, orig_qty=D(10), cum_filled_qty=D(10),
        cum_quote_qty=D(10),  # the documented cummulativeQuoteQty, read as sent
        last_fill_price=D(3995), last_fill_qty=D(1), trade_id="60", maker=False,
        fee=D("4") + D("19.995") + D("7.996") + D("3.997") + D("3.995"), fee_asset="USDT",
        venue_ts=1507725176595,
    )  # fmt: skip


def test_binance_market_order_that_expired_after_partial_fills() -> None:
    got = binance.report_from_order(documented("binance", "order_full_expired"))
    assert fields(got) == report(
        cid="8LGC97RRgNPVQk979VIhjt", symbol="LTCBNB", status=OrderStatus.EXPIRED, venue_order_id="32",
        side=Side.BUY, order_type=OrderType.MARKET, orig_qty=D(6), cum_filled_qty=D(4), cum_quote_qty=D(4),
        last_fill_price=D(1), last_fill_qty=D(2), trade_id="8", maker=False, fee=D("0.002"), fee_asset="BNB",
        venue_ts=1719467634105,
    )  # fmt: skip


@pytest.mark.parametrize("name", ["order_query", "open_orders"])
def test_binance_order_query_and_open_orders(name: str) -> None:
    payload = documented("binance", name)
    got = binance.report_from_order(payload[0] if isinstance(payload, list) else payload)
    assert fields(got) == report(
        cid="myOrder1", symbol="LTCBTC", status=OrderStatus.NEW, venue_order_id="1", side=Side.BUY,
        order_type=OrderType.LIMIT, price=D("0.1"), stop_price=None, orig_qty=D(1), fee=D(0),
        venue_ts=1499827319559,
    )  # fmt: skip


def test_binance_cancel_reports_the_orders_own_client_id() -> None:
    got = binance.report_from_order(documented("binance", "order_cancel"))
    assert fields(got) == report(
        cid="myOrder1",  # origClientOrderId; clientOrderId is the cancel request's
        symbol="LTCBTC", status=OrderStatus.CANCELED, venue_order_id="4", side=Side.BUY,
        order_type=OrderType.LIMIT, price=D(2), orig_qty=D(1), fee=D(0), venue_ts=1684804350068,
    )  # fmt: skip


def test_binance_my_trades_row() -> None:
    [row] = documented("binance", "my_trades")
    assert binance.trade_from_my_trades(row) == VenueTrade(
        trade_id="28457", symbol="BNBBTC", venue_order_id="100234", cid="", side=Side.BUY,
        price=D("4.00000100"), qty=D(12), quote=D("48.000012"), fee=D("10.1"), fee_asset="BNB",
        is_maker=False, time=1499865549590,
    )  # fmt: skip


def test_binance_account_balances() -> None:
    assert binance.balances_from_account(documented("binance", "account")) == [
        Balance("BTC", D("4723846.89208129"), D(0)),
        Balance("LTC", D("4763368.68006011"), D(0)),
    ]


def test_binance_exchange_info_with_the_documented_filters() -> None:
    info = documented("binance", "exchange_info")
    [symbol] = info["symbols"]
    symbol["filters"] = documented("binance", "filters")
    assert binance.filters_from_symbol(symbol) == SymbolFilters(
        symbol="ETHBTC", base_asset="ETH", quote_asset="BTC",
        tick_size=D("0.000001"), min_price=D("0.000001"), max_price=D(100000),  # PRICE_FILTER
        step_size=D("0.001"), min_qty=D("0.001"), max_qty=D(100000),  # LOT_SIZE, not MARKET_LOT_SIZE
        min_notional=D(10), max_notional=D(10000),  # NOTIONAL over the older MIN_NOTIONAL
        multiplier_up=D("1.2"), multiplier_down=D("0.2"),  # PERCENT_PRICE_BY_SIDE: a buy's band
        sell_multiplier_up=D(5), sell_multiplier_down=D("0.8"),  # and a sell's
    )  # fmt: skip


def test_binance_filters_as_the_paper_venue_serves_them_read_back_the_same() -> None:
    """Both bands of PERCENT_PRICE_BY_SIDE go out in exchangeInfo and come back in the adapter."""
    [spec] = select(["BTCUSDT"])
    filters = msgspec.structs.replace(
        spec.filters, multiplier_up=D("1.2"), multiplier_down=D("0.2"), sell_multiplier_up=D(5),
        sell_multiplier_down=D("0.8"),
    )  # fmt: skip
    served = binance_format.symbol_info(msgspec.structs.replace(spec, filters=filters))
    got = binance.filters_from_symbol(served)
    bands = ("multiplier_up", "multiplier_down", "sell_multiplier_up", "sell_multiplier_down")
    assert [getattr(got, b) for b in bands] == [D("1.2"), D("0.2"), D(5), D("0.8")]
    # one band both ways reads back as the venue's own filters: the sell band None
    assert binance.filters_from_symbol(binance_format.symbol_info(spec)) == spec.filters


def test_binance_older_symbols_min_notional_and_percent_price() -> None:
    older = [
        f
        for f in documented("binance", "filters")
        if f["filterType"] not in ("NOTIONAL", "PERCENT_PRICE_BY_SIDE")
    ]
    got = binance.filters_from_symbol(
        {"symbol": "ETHBTC", "baseAsset": "ETH", "quoteAsset": "BTC", "filters": older}
    )
    assert (got.min_notional, got.max_notional) == (D("0.001"), D("1e15"))
    assert (got.multiplier_up, got.multiplier_down) == (D("1.3"), D("0.7"))


# ------------------------------------------------------------------------ Binance user stream
def test_binance_execution_report_new_arrives_in_its_envelope() -> None:
    message = documented("binance", "ws_execution_report")
    assert set(message) == {"subscriptionId", "event"}  # python-binance hands on message["event"]
    [got] = binance.event_from_message(message["event"])
    assert fields(got) == report(
        cid="mUvoqJxFIILMdfAW5iGSOW", symbol="ETHBTC", status=OrderStatus.NEW, venue_order_id="4293153",
        side=Side.BUY, order_type=OrderType.LIMIT, price=D("0.10264410"), orig_qty=D(1), fee=D(0),
        venue_ts=1499405658658,
    )  # fmt: skip


def test_binance_market_order_events_trade_by_trade_then_expire() -> None:
    events = documented("binance", "ws_market_order_events")
    got = [e for message in events for e in binance.event_from_message(message)]
    assert [(r.status, r.cum_filled_qty, r.cum_quote_qty) for r in got[:4]] == [
        (OrderStatus.NEW, 0, 0),
        (OrderStatus.PARTIALLY_FILLED, D(2), D(2)),
        (OrderStatus.PARTIALLY_FILLED, D(4), D(4)),
        (OrderStatus.EXPIRED, D(4), D(4)),
    ]
    trades = [
        (r.trade_id, r.last_fill_qty, r.last_fill_price, r.last_fee, r.fee_asset, r.fee) for r in got[:4]
    ]
    assert trades == [
        ("", 0, 0, 0, "", D(0)),
        ("7", D(2), D(1), D("0.001"), "BNB", None),  # a fill's own fee; the cumulative is unknown
        ("8", D(2), D(1), D("0.001"), "BNB", None),
        ("", 0, 0, 0, "", None),
    ]
    assert [r.maker for r in got[:4]] == [None, False, False, None]  # "m" only of a report with a trade
    assert {(r.cid, r.venue_order_id, r.side, r.order_type, r.orig_qty) for r in got[:4]} == {
        ("8LGC97RRgNPVQk979VIhjt", "32", Side.BUY, OrderType.MARKET, D(6))
    }
    assert got[4] == BalanceReport(
        balances=(Balance("LTC", D("3011.11745670"), D(0)), Balance("BNB", D("996.11865670"), D(0))),
        venue_ts=1719467634107,
    )


def test_binance_execution_report_fill_cancel_and_reject() -> None:
    derived = documented("binance", "ws_execution_report_derived")
    [filled] = binance.event_from_message(derived["filled"])
    assert (filled.status, filled.cum_filled_qty, filled.cum_quote_qty, filled.trade_id) == (
        OrderStatus.FILLED, D(1), D("0.10264410"), "12345"
    )  # fmt: skip
    assert (filled.last_fill_qty, filled.last_fill_price, filled.last_fee, filled.fee_asset) == (
        D(1), D("0.10264410"), D("0.001"), "BNB"
    )  # fmt: skip
    [canceled] = binance.event_from_message(derived["canceled"])
    assert (canceled.status, canceled.cid) == (OrderStatus.CANCELED, "mUvoqJxFIILMdfAW5iGSOW")  # C, not c
    [rejected] = binance.event_from_message(derived["rejected"])
    assert (rejected.status, rejected.reason) == (OrderStatus.REJECTED, "INSUFFICIENT_BALANCES")


def test_binance_account_position_and_balance_update() -> None:
    [got] = binance.event_from_message(documented("binance", "ws_account_position")["event"])
    assert got == BalanceReport(balances=(Balance("ETH", D(10000), D(0)),), venue_ts=1564034571105)
    # a deposit's balanceUpdate is followed by outboundAccountPosition: that one is read
    assert binance.event_from_message(documented("binance", "ws_balance_update")["event"]) == []


# ------------------------------------------------------------------------------ Binance lists
def test_binance_oco_answer_gives_each_leg_with_the_list_cid_in_the_command_order() -> None:
    answer = documented("binance", "order_list_oco")
    limit, stop = "NuMp0nVYnciDiFmVqfpBqK", "44nZvqpemY7sVYgPYbvPih"
    got = binance_lists.leg_reports(answer, binance.report_from_order, [limit, stop])
    assert [(r.cid, r.list_cid, r.order_type, r.status) for r in got] == [
        (limit, "lH1YDkuQKWiXVXHPSKYEIp", OrderType.LIMIT_MAKER, OrderStatus.NEW),
        (stop, "lH1YDkuQKWiXVXHPSKYEIp", OrderType.STOP_LOSS_LIMIT, OrderStatus.NEW),
    ]
    assert (got[1].stop_price, got[1].price, got[1].orig_qty, got[1].venue_order_id) == (
        D(1),
        D(1),
        D(5),
        "10",
    )
    with pytest.raises(KeyError):
        binance_lists.leg_reports(answer, binance.report_from_order, [limit, "not-a-leg"])


def test_binance_cancelled_list_reports_each_leg_by_its_own_client_id() -> None:
    got = binance_lists.leg_reports(documented("binance", "order_list_cancel"), binance.report_from_order)
    assert [(r.cid, r.status, r.list_cid) for r in got] == [
        ("pO9ufTiFGg3nw2fOdgeOXa", OrderStatus.CANCELED, "C3wyj4WVEktd7u9aVBRXcN"),
        ("TXOvglzXuaubXAaENpaRCB", OrderStatus.CANCELED, "C3wyj4WVEktd7u9aVBRXcN"),
    ]


def test_binance_list_status_names_the_list_of_its_legs_reports() -> None:
    ids = binance_lists.ListIds()
    leg = documented("binance", "ws_execution_report_leg_derived")["event"]
    [before] = binance.event_from_message(leg, ids)
    assert before.list_cid == ""  # not known until the listStatus (or an answer) names it
    assert binance.event_from_message(documented("binance", "ws_list_status")["event"], ids) == []
    [after] = binance.event_from_message(leg, ids)
    assert (after.cid, after.list_cid) == ("AJYsMjErWJesZvqlJCTUgL", "F4QN4G8DlFATFlIUQ0cjdD")
    assert binance.report_from_order(
        {**documented("binance", "order_result"), "status": "PENDING_NEW"}
    ).status is (OrderStatus.NEW)


def test_binance_list_requests_name_each_leg_under_its_prefix() -> None:
    def leg(cid: str, side: Side, kind: OrderType) -> PlaceOrder:
        return PlaceOrder(
            cid=cid, bot="b", venue="v", symbol="BTCUSDT", side=side, order_type=kind, quantity=D(1)
        )

    oco = PlaceOrderList(list_cid="b-1", bot="b", venue="v", symbol="BTCUSDT", kind=ListKind.OCO,
                         legs=(leg("b-2", Side.SELL, OrderType.LIMIT_MAKER), leg("b-3", Side.SELL, OrderType.STOP_LOSS_LIMIT)))  # fmt: skip
    method, params = binance_lists.list_request(oco, [(D(1), D(110), None), (D(1), D(89), D(90))])
    assert method == "create_oco_order"
    assert params == {
        "symbol": "BTCUSDT", "listClientOrderId": "b-1", "newOrderRespType": "FULL", "side": "SELL", "quantity": "1",
        "aboveType": "LIMIT_MAKER", "aboveClientOrderId": "b-2", "abovePrice": "110",
        "belowType": "STOP_LOSS_LIMIT", "belowClientOrderId": "b-3", "belowPrice": "89", "belowStopPrice": "90",
        "belowTimeInForce": "GTC",
    }  # fmt: skip
    otoco = PlaceOrderList(list_cid="b-4", bot="b", venue="v", symbol="BTCUSDT", kind=ListKind.OTOCO,
                           legs=(leg("b-5", Side.BUY, OrderType.LIMIT), leg("b-6", Side.SELL, OrderType.LIMIT_MAKER),
                                 leg("b-7", Side.SELL, OrderType.STOP_LOSS)))  # fmt: skip
    method, params = binance_lists.list_request(
        otoco, [(D(1), D(100), None), (D(1), D(110), None), (D(1), None, D(90))]
    )
    assert method == "v3_post_order_list_otoco"
    assert (params["workingSide"], params["workingQuantity"], params["workingTimeInForce"]) == (
        "BUY",
        "1",
        "GTC",
    )
    assert (params["pendingSide"], params["pendingQuantity"], params["pendingBelowStopPrice"]) == (
        "SELL",
        "1",
        "90",
    )
    assert params["pendingAboveType"] == "LIMIT_MAKER" and "pendingAboveSide" not in params


# --------------------------------------------------------------------------------- Bybit REST
def test_bybit_open_order() -> None:
    [o] = documented("bybit", "order_realtime")["result"]["list"]
    assert fields(bybit_payloads.report_from_order(o, "ETH")) == report(
        cid="test-000005", symbol="ETHUSDT", status=OrderStatus.NEW,
        venue_order_id="fd4300ae-7847-404e-b947-b46980a4d140", side=Side.BUY,
        order_type=OrderType.LIMIT,  # triggerPrice "0.00" is no trigger
        price=D(1600), orig_qty=D("0.1"),
        fee=D("0.00242968"), fee_asset="MNT",  # cumFeeDetail: cumExecFee is deprecated for spot
        venue_ts=1684738540561,
    )  # fmt: skip


def test_bybit_order_history_post_only_cancelled() -> None:
    [o] = documented("bybit", "order_history")["result"]["list"]
    assert fields(bybit_payloads.report_from_order(o, "BTC")) == report(
        cid="YLxaWKMiHU", symbol="BTCUSDT", status=OrderStatus.CANCELED,
        venue_order_id="14bad3a1-6454-43d8-bcf2-5345896cf74d", side=Side.BUY,
        order_type=OrderType.LIMIT_MAKER, price=D("26864.40"), orig_qty=D("0.003"),
        fee=D("0.00242968"), fee_asset="MNT", venue_ts=1684476068372, reason="EC_PostOnlyWillTakeLiquidity",
    )  # fmt: skip


def test_bybit_conditional_order_is_a_stop_of_its_side_and_direction() -> None:
    [o] = documented("bybit", "order_realtime_conditional")["result"]["list"]
    assert fields(bybit_payloads.report_from_order(o, "USDT")) == report(
        cid="spot-stop-01", symbol="BTCUSDT", status=OrderStatus.NEW,  # Untriggered
        venue_order_id="1838426939425013504", side=Side.SELL,
        order_type=OrderType.STOP_LOSS,  # a Market Sell triggered by a fall (triggerDirection 2)
        stop_price=D(59000), orig_qty=D("0.01"), fee=D(0), fee_asset="USDT", venue_ts=1727160000000,
    )  # fmt: skip


@pytest.mark.parametrize(
    ("side", "order_type", "direction", "created", "expected"),
    [
        ("Sell", "Market", 2, "", OrderType.STOP_LOSS),
        ("Sell", "Market", 1, "", OrderType.TAKE_PROFIT),
        ("Buy", "Market", 1, "", OrderType.STOP_LOSS),
        ("Buy", "Limit", 2, "", OrderType.TAKE_PROFIT_LIMIT),
        ("Sell", "Limit", 2, "", OrderType.STOP_LOSS_LIMIT),
        ("Sell", "Limit", 0, "60012.50", OrderType.STOP_LOSS_LIMIT),  # no direction: where it was placed
        ("Buy", "Market", 0, "58000", OrderType.STOP_LOSS),
        ("Sell", "Market", 0, "", None),  # nothing says: the record keeps the type it sent
    ],
)
def test_bybit_conditional_order_types(
    side: str, order_type: str, direction: int, created: str, expected: OrderType | None
) -> None:
    [o] = documented("bybit", "order_realtime_conditional")["result"]["list"]
    o.update(side=side, orderType=order_type, triggerDirection=direction, lastPriceOnCreated=created)
    assert bybit_payloads.report_from_order(o, "USDT").order_type is expected


def test_bybit_deactivated_conditional_order_is_canceled() -> None:
    [o] = documented("bybit", "order_realtime_conditional")["result"]["list"]
    o["orderStatus"] = "Deactivated"  # enum.mdx: cancelled before it triggered
    got = bybit_payloads.report_from_order(o, "USDT")
    assert (got.status, got.order_type, got.stop_price) == (
        OrderStatus.CANCELED,
        OrderType.STOP_LOSS,
        D(59000),
    )


def test_bybit_fee_without_cum_fee_detail_uses_the_older_fields() -> None:
    [o] = documented("bybit", "order_history")["result"]["list"]
    del o["cumFeeDetail"]
    got = bybit_payloads.report_from_order(o, "BTC")
    assert (got.fee, got.fee_asset) == (D(0), "BTC")
    o["cumFeeDetail"] = {"BTC": "0.000001", "MNT": "0.1"}  # several coins: no one amount
    got = bybit_payloads.report_from_order(o, "BTC")
    assert (got.fee, got.fee_asset) == (None, "")


def test_bybit_execution_list_row() -> None:
    [e] = documented("bybit", "execution_list")["result"]["list"]
    assert bybit_payloads.trade_from_execution(e) == VenueTrade(
        trade_id="e0cbe81d-0f18-5866-9415-cf319b5dab3b", symbol="ETHPERP",
        venue_order_id="8c065341-7b52-4ca9-ac2c-37e31ac55c94", cid="", side=Side.BUY, price=D("1190.15"),
        qty=D("0.1"), quote=D("119.015"), fee=D("0.071409"), fee_asset="", is_maker=False, time=1672282722429,
    )  # fmt: skip


def test_bybit_wallet_balance() -> None:
    result = documented("bybit", "wallet_balance")["result"]
    assert bybit_payloads.balances_from_wallet(result) == [Balance("BTC", D(0), D(0))]


def test_bybit_spot_instrument_filters() -> None:
    [i] = documented("bybit", "instruments_info_spot")["result"]["list"]
    assert bybit_payloads.filters_from_instrument(i) == SymbolFilters(
        symbol="BTCUSDT", base_asset="BTC", quote_asset="USDT",
        tick_size=D("0.1"), step_size=D("0.000001"),  # basePrecision is the step
        min_qty=D("0.000011"), max_qty=D(83),  # maxLimitOrderQty (maxOrderQty is deprecated)
        min_notional=D(5), max_notional=D(8000000),
    )  # fmt: skip


def test_bybit_order_create_and_cancel_only_acknowledge() -> None:
    for name, cid in (("order_create", "spot-test-postonly"), ("order_cancel", "linear-004")):
        result = documented("bybit", name)["result"]
        assert set(result) == {"orderId", "orderLinkId"} and result["orderLinkId"] == cid


# ------------------------------------------------------------------------ Bybit private topics
def spot(message: dict[str, Any]) -> dict[str, Any]:
    """The documented message with its items made spot (the docs' examples are option/linear)."""
    return {**message, "data": [{**item, "category": "spot"} for item in message["data"]]}


def adapter() -> bybit.BybitAdapter:
    return bybit.BybitAdapter("bybit", "key", "secret")


def test_bybit_order_topic() -> None:
    message = documented("bybit", "ws_order")
    assert adapter()._events(message) == []  # an option order: not ours
    [got] = adapter()._events(spot(message))
    assert fields(got) == report(
        cid="", symbol="ETH-30DEC22-1400-C", status=OrderStatus.FILLED,
        venue_order_id="5cf98598-39a7-459e-97bf-76ca765ee020", side=Side.SELL, order_type=OrderType.MARKET,
        price=D("72.5"), orig_qty=D(1), cum_filled_qty=D(1), cum_quote_qty=D(75),
        fee=D("0.00242968"), fee_asset="MNT", venue_ts=1672364262457,
    )  # fmt: skip


def test_bybit_order_topic_of_a_conditional_order() -> None:
    untriggered, triggered, filled = documented("bybit", "ws_order_conditional")
    venue = adapter()
    got = [r for message in (untriggered, triggered, filled) for r in venue._events(message)]
    assert [(r.status, r.order_type, r.stop_price, r.cum_filled_qty) for r in got] == [
        (OrderStatus.NEW, OrderType.STOP_LOSS, D(59000), 0),  # Untriggered
        (OrderStatus.NEW, OrderType.STOP_LOSS, D(59000), 0),  # Triggered
        (OrderStatus.FILLED, OrderType.STOP_LOSS, D(59000), D("0.01")),
    ]  # fmt: skip
    assert {r.venue_order_id for r in got} == {"1838426939425013504"}
    assert (got[-1].cum_quote_qty, got[-1].fee, got[-1].fee_asset) == (D("589.99"), D("0.58999"), "USDT")


def test_bybit_execution_topic_names_the_trade_of_the_next_order_message() -> None:
    venue = adapter()
    execution = spot(documented("bybit", "ws_execution"))
    execution["data"][0]["orderLinkId"] = "b1-000001"
    assert venue._events(execution) == []  # held until its order's message
    order = {"category": "spot", "symbol": "BTCUSDT", "orderLinkId": "b1-000001", "side": "Sell",
             "orderType": "Market", "orderStatus": "Filled", "qty": "0.5", "cumExecQty": "0.5",
             "cumExecValue": "47950.05", "updatedTime": "1746270400355"}  # fmt: skip
    [got] = venue._events({"topic": "order", "data": [order]})
    assert (got.trade_id, got.last_fill_qty, got.last_fill_price, got.maker) == (
        "0ab1bdf7-4219-438b-b30a-32ec863018f7", D("0.5"), D("95900.1"), False
    )  # fmt: skip


def test_bybit_wallet_topic() -> None:
    [got] = adapter()._events(documented("bybit", "ws_wallet"))
    assert got == BalanceReport(balances=(Balance("BTC", D("0.00102964"), D(0)),), venue_ts=1700034722104)
