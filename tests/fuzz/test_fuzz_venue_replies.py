"""Fuzz: venue replies and websocket messages, as python-binance and pybit hand them over.

Order gateway (services/order_gateway/venues/): a mutated REST reply parses to a report whose
every field has its type and every amount is finite and in range, or is MalformedReply (what
every caller already retries or resolves by query); a mutated user-stream message becomes an
event or a StreamGap (poll now), never an exception that drops the socket or, worse, a report
whose `cid` is not a string and ends the user-stream task later.

Market gateway (binance_venue.py, bybit_venue.py): a mutated kline / book message is skipped
or delivered as a Candle / BookTicker that the codec round-trips (a consumer accepts it); the
socket's dispatch never raises.
"""

from __future__ import annotations

import copy
from decimal import Decimal
from pathlib import Path
from typing import Any

import msgspec
import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from services.market_gateway import binance_venue as mb
from services.market_gateway import bybit_venue as mby
from services.market_gateway.plan import CandleKey, build_plan
from services.market_gateway.venue import BAD_MESSAGE
from services.order_gateway.venues import binance as ob
from services.order_gateway.venues import bybit as oby
from services.order_gateway.venues import bybit_payloads as obp
from services.order_gateway.venues.base import (
    BalanceReport,
    MalformedReply,
    StreamGap,
    parse_list,
    parse_reply,
)
from shared.codec import decode, encode
from shared.config import load_config
from shared.filters import SymbolFilters
from shared.messages import MAX_AMOUNT, Balance, Message
from shared.order_report import OrderReport
from tests.fuzz.budget import FUZZ

pytestmark = pytest.mark.timeout(120)

T0 = 1_704_067_200_000
NASTY = st.sampled_from(
    ["NaN", "nan", "inf", "-Infinity", "-1", "-0.00000001", "1e20", "1e999999999", "9" * 60, "", " 1 ", "0x10",
     "FILLED", "CANCELED", "WEIRD", "Buy", "BUY", "sell", "LIMIT", "Market", "quoteCoin", "spot", True, None,
     10**30, -(10**30), 1e308, float("nan"), float("inf"), 1.5, 0, [], {}, [1, "2"], {"a": "b"}]
)  # fmt: skip
VALUE = NASTY | st.text(max_size=12) | st.integers() | st.lists(NASTY, max_size=3)


def mutations(template: dict[str, Any]) -> st.SearchStrategy[list[tuple[str, str, Any]]]:
    return st.lists(
        st.tuples(st.sampled_from(sorted(template) + ["extra"]), st.sampled_from(["set", "drop"]), VALUE),
        min_size=1,
        max_size=4,
    )


def mutate(template: dict[str, Any], changes: list[tuple[str, str, Any]]) -> dict[str, Any]:
    doc = copy.deepcopy(template)
    for key, action, value in changes:
        if action == "drop":
            doc.pop(key, None)
        else:
            doc[key] = value
    return doc


def well_typed(value: msgspec.Struct) -> None:
    """Every field has its declared type and every check of the struct holds: what a consumer
    decoding it would accept (a Decimal amount finite and in range, a cid a string)."""
    again = msgspec.convert(msgspec.to_builtins(value), type(value))
    assert again == value, f"{value!r} is not what it claims to be"
    if isinstance(value, Message):
        assert decode(encode(value)) == value


def finite(*amounts: Decimal | None) -> None:
    for amount in amounts:
        assert amount is None or (amount.is_finite() and -MAX_AMOUNT < amount < MAX_AMOUNT), amount


def reply_or_malformed(what: str, parse: Any, payload: Any) -> Any:
    """The order gateway's property: a well-typed value, or MalformedReply."""
    try:
        result = parse_reply(what, parse, payload)
    except MalformedReply as exc:
        assert str(exc).startswith(f"malformed reply to {what}")
        return None
    for item in result if isinstance(result, list | tuple) else (result,):
        if isinstance(item, msgspec.Struct):
            well_typed(item)
        elif isinstance(item, Decimal):
            finite(item)
        else:
            assert isinstance(item, str), item
    return result


# --- order gateway: Binance ------------------------------------------------------------------

BINANCE_ORDER = {
    "symbol": "BTCUSDT", "orderId": 42, "clientOrderId": "b1-000001", "price": "30000.00", "origQty": "0.00100",
    "executedQty": "0.00050", "cummulativeQuoteQty": "15.0", "status": "PARTIALLY_FILLED", "type": "LIMIT",
    "side": "BUY", "stopPrice": "0", "origQuoteOrderQty": "0", "updateTime": T0, "transactTime": T0,
    "fills": [{"price": "30000", "qty": "0.0005", "commission": "0.0000005", "commissionAsset": "BTC"}],
}  # fmt: skip
BINANCE_EXECUTION = {
    "e": "executionReport", "E": T0, "s": "BTCUSDT", "c": "b1-000001", "S": "BUY", "o": "LIMIT", "q": "0.001",
    "p": "30000", "P": "0", "X": "PARTIALLY_FILLED", "r": "NONE", "i": 42, "l": "0.0005", "z": "0.0005",
    "L": "30000", "n": "0.0000005", "N": "BTC", "T": T0, "Z": "15", "Q": "0", "C": "",
}  # fmt: skip
BINANCE_ACCOUNT = {"e": "outboundAccountPosition", "E": T0, "B": [{"a": "BTC", "f": "1.5", "l": "0.1"}]}
BINANCE_SYMBOL = {
    "symbol": "BTCUSDT", "baseAsset": "BTC", "quoteAsset": "USDT",
    "filters": [{"filterType": "PRICE_FILTER", "tickSize": "0.01", "minPrice": "0.01", "maxPrice": "1000000"},
                {"filterType": "LOT_SIZE", "stepSize": "0.00001", "minQty": "0.00001", "maxQty": "9000"},
                {"filterType": "NOTIONAL", "minNotional": "5", "maxNotional": "9000000"},
                {"filterType": "PERCENT_PRICE_BY_SIDE", "bidMultiplierUp": "5", "askMultiplierDown": "0.2"}],
}  # fmt: skip


@FUZZ
@given(changes=mutations(BINANCE_ORDER), fill=mutations(BINANCE_ORDER["fills"][0]))
@example(changes=[("clientOrderId", "set", 5)], fill=[("extra", "drop", None)])  # cid an int: TypeError later
@example(changes=[("executedQty", "set", "-1")], fill=[("extra", "drop", None)])
@example(changes=[], fill=[("commission", "set", "1e20")])  # found by the long run: myTrades' fee unchecked
def test_binance_order_replies(changes, fill) -> None:
    doc = mutate(BINANCE_ORDER, changes)
    if isinstance(doc.get("fills"), list) and doc["fills"]:
        doc["fills"] = [mutate(BINANCE_ORDER["fills"][0], fill)]
    reply_or_malformed("order b1-000001", ob.report_from_order, doc)
    reply_or_malformed("myTrades 42", ob._fees_of, doc.get("fills"))
    try:
        parse_list("openOrders", ob.report_from_order, [doc, BINANCE_ORDER])
    except MalformedReply:
        pass


@FUZZ
@given(changes=mutations(BINANCE_SYMBOL), inner=mutations(BINANCE_SYMBOL["filters"][0]))
def test_binance_symbol_filters(changes, inner) -> None:
    doc = mutate(BINANCE_SYMBOL, changes)
    if isinstance(doc.get("filters"), list):
        doc["filters"] = [mutate(BINANCE_SYMBOL["filters"][0], inner), *BINANCE_SYMBOL["filters"][1:]]
    filters = reply_or_malformed("exchangeInfo", ob.filters_from_symbol, doc)
    if filters is not None:
        assert isinstance(filters, SymbolFilters)


def user_event_or_gap(parse: Any, msg: Any) -> list[Any]:
    """A user-stream message: events (well typed) or a StreamGap; never an exception."""
    events = parse(msg)
    events = events if isinstance(events, list) else [] if events is None else [events]
    for event in events:
        assert isinstance(event, OrderReport | BalanceReport | StreamGap), event
        if isinstance(event, OrderReport | BalanceReport):
            well_typed(event)
    return events


@FUZZ
@given(
    changes=mutations(BINANCE_EXECUTION),
    account=mutations(BINANCE_ACCOUNT),
    balance=mutations(BINANCE_ACCOUNT["B"][0]),
)
@example(changes=[("c", "set", ["x"])], account=[], balance=[])
@example(changes=[("z", "set", "nan")], account=[], balance=[])
def test_binance_user_stream_messages(changes, account, balance) -> None:
    user_event_or_gap(ob.event_from_message, mutate(BINANCE_EXECUTION, changes))
    doc = mutate(BINANCE_ACCOUNT, account)
    if isinstance(doc.get("B"), list):
        doc["B"] = [mutate(BINANCE_ACCOUNT["B"][0], balance)]
    user_event_or_gap(ob.event_from_message, doc)


# --- order gateway: Bybit --------------------------------------------------------------------

BYBIT_ORDER = {
    "orderId": "1234", "orderLinkId": "b1-000001", "symbol": "BTCUSDT", "price": "30000", "qty": "0.001",
    "side": "Buy", "orderStatus": "PartiallyFilled", "orderType": "Limit", "timeInForce": "GTC",
    "cumExecQty": "0.0005", "cumExecValue": "15", "cumExecFee": "0.0000005", "triggerPrice": "0",
    "rejectReason": "EC_NoError", "marketUnit": "", "category": "spot", "updatedTime": str(T0),
    "createdTime": str(T0), "feeCurrency": "BTC",
}  # fmt: skip
BYBIT_WALLET = {"topic": "wallet", "creationTime": T0, "data": [{"coin": [
    {"coin": "BTC", "walletBalance": "1.5", "locked": "0.1"}]}]}  # fmt: skip
BYBIT_INSTRUMENT = {
    "symbol": "BTCUSDT", "baseCoin": "BTC", "quoteCoin": "USDT",
    "lotSizeFilter": {"basePrecision": "0.000001", "minOrderQty": "0.000048", "maxOrderQty": "71",
                      "minOrderAmt": "1", "maxOrderAmt": "2000000"},
    "priceFilter": {"tickSize": "0.01"},
}  # fmt: skip


def bybit_adapter() -> oby.BybitAdapter:
    return oby.BybitAdapter("bybit", "key", "secret", base_url="http://127.0.0.1:9")  # never called


@FUZZ
@given(changes=mutations(BYBIT_ORDER), topic=st.sampled_from(["order", "wallet", "execution", None, 5]))
@example(changes=[("orderLinkId", "set", {"a": "b"})], topic="order")
@example(changes=[("cumExecValue", "set", "inf")], topic="order")
@example(changes=[("side", "set", 5)], topic="order")  # AttributeError in _fee_asset dropped the socket
def test_bybit_orders_and_order_topic(changes, topic) -> None:
    adapter = bybit_adapter()
    doc = mutate(BYBIT_ORDER, changes)
    reply_or_malformed("query b1-000001", lambda o: obp.report_from_order(o, "BTC"), doc)
    try:
        adapter._report("query b1-000001", doc)
    except MalformedReply:
        pass
    user_event_or_gap(adapter._events, {"topic": topic, "data": [doc]})
    user_event_or_gap(adapter._events, {"topic": topic, "data": doc})


@FUZZ
@given(changes=mutations(BYBIT_WALLET["data"][0]["coin"][0]), outer=mutations(BYBIT_WALLET))
@example(changes=[("locked", "set", "2")], outer=[])  # locked above the balance: a negative free
def test_bybit_wallet_topic(changes, outer) -> None:
    doc = mutate(BYBIT_WALLET, outer)
    if doc.get("data") == BYBIT_WALLET["data"]:
        doc["data"] = [{"coin": [mutate(BYBIT_WALLET["data"][0]["coin"][0], changes)]}]
    user_event_or_gap(bybit_adapter()._events, doc)
    user_event_or_gap(bybit_adapter()._events, {"topic": "wallet", "data": doc.get("data")})


@FUZZ
@given(changes=mutations(BYBIT_INSTRUMENT), lot=mutations(BYBIT_INSTRUMENT["lotSizeFilter"]))
def test_bybit_instrument_filters_and_fees(changes, lot) -> None:
    doc = mutate(BYBIT_INSTRUMENT, changes)
    if isinstance(doc.get("lotSizeFilter"), dict):
        doc["lotSizeFilter"] = mutate(BYBIT_INSTRUMENT["lotSizeFilter"], lot)
    reply_or_malformed("instruments", obp.filters_from_instrument, doc)
    reply_or_malformed(
        "executions 1", obp.fees_of, {"list": [{"execFee": doc.get("symbol"), "feeCurrency": "BTC"}]}
    )


def test_balance_replies_are_malformed_not_key_errors() -> None:
    """The account / wallet replies go through the same parser as everything else."""
    for parse, bad in (
        (ob.balances_from_account, {"balances": [{"asset": "BTC", "free": "nan", "locked": "0"}]}),
        (ob.balances_from_account, {"balances": [{"free": "1"}]}),
        (obp.balances_from_wallet, {"list": [{"coin": [{"walletBalance": "1"}]}]}),
        (
            obp.balances_from_wallet,
            {"list": [{"coin": [{"coin": "BTC", "walletBalance": "1", "locked": "2"}]}]},
        ),
    ):
        with pytest.raises(MalformedReply):
            parse_reply("balances", parse, bad)
    assert parse_reply("balances", ob.balances_from_account, {"balances": [
        {"asset": "BTC", "free": "1", "locked": "0"}]}) == [Balance("BTC", Decimal(1), Decimal(0))]  # fmt: skip


# --- market gateway --------------------------------------------------------------------------

KLINE = {"t": T0, "T": T0 + 59_999, "i": "1m", "o": "1.1", "h": "1.3", "l": "1.0", "c": "1.2", "v": "5", "q": "6",
         "n": 7, "x": True}  # fmt: skip
BOOK = {"u": 9, "b": "1.1", "B": "2", "a": "1.2", "A": "3"}
BYBIT_KLINE = {"start": T0, "open": "1", "high": "2", "low": "0.5", "close": "1.5", "volume": "3", "turnover": "4",
               "confirm": True}  # fmt: skip
REST_ROW = [T0, "1", "2", "0.5", "1.5", "3", T0 + 59_999, "4", 7, "1", "1", "0"]
KEY = CandleKey("sim", "BTCUSDT", "1m")


def message_or_bad(parse: Any, *args: Any) -> None:
    """A market gateway parser: a message the codec round-trips, or one of BAD_MESSAGE (which
    the socket's dispatch catches and logs)."""
    try:
        msg = parse(*args)
    except BAD_MESSAGE:
        return
    well_typed(msg)


class RecordingSink:
    """Where a socket delivers (the FeedSink protocol); each delivery is checked."""

    def __init__(self) -> None:
        self.delivered = 0

    def on_kline(self, key: CandleKey, open_time: int, candle: Any) -> None:
        assert isinstance(open_time, int)
        if candle is not None:
            well_typed(candle)
        self.delivered += 1

    def on_book(self, symbol: str, ticker: Any) -> None:
        well_typed(ticker)
        self.delivered += 1

    def on_down(self, reason: str) -> None:
        assert isinstance(reason, str)


@pytest.fixture(scope="module")
def plans(tmp_path_factory) -> dict[str, Any]:
    out = {}
    for protocol in ("binance", "bybit"):
        path: Path = tmp_path_factory.mktemp(protocol) / "automata.toml"
        path.write_text(
            f'[venues.sim]\nkind = "sim"\nprotocol = "{protocol}"\n[[market_gateway.feeds]]\nvenue = "sim"\n'
            'symbols = ["BTCUSDT"]\nbook_tickers = ["BTCUSDT"]\n'
        )
        (out[protocol],) = build_plan(load_config(path, env={}))
    return out


@FUZZ
@given(kline=mutations(KLINE), book=mutations(BOOK), row=st.lists(VALUE, max_size=13))
@example(
    kline=[("i", "set", 5)], book=[], row=[]
)  # a Candle whose interval is an int: dead-lettered downstream
@example(kline=[("o", "set", "NaN")], book=[("b", "set", "-1")], row=REST_ROW)
def test_binance_market_messages(plans, kline, book, row) -> None:
    k, b = mutate(KLINE, kline), mutate(BOOK, book)
    message_or_bad(mb.parse_kline, "sim", "BTCUSDT", k)
    message_or_bad(mb.parse_book, "sim", "BTCUSDT", b, T0)
    message_or_bad(mb.parse_rest_kline, "sim", "BTCUSDT", "1m", [*row, *REST_ROW[len(row) :]])
    socket, sink = mb.BinanceSocket(plans["binance"]), RecordingSink()
    for msg in (
        {"stream": "btcusdt@kline_1m", "data": {"k": k}},
        {"stream": "btcusdt@bookTicker", "data": b},
        {"stream": "btcusdt@kline_1m", "data": k},
        {"e": "error", "type": k.get("i")},
        {"stream": k.get("i"), "data": b},
    ):
        assert socket._dispatch(msg, sink) in (True, False)


@FUZZ
@given(
    kline=mutations(BYBIT_KLINE),
    side=st.lists(st.lists(VALUE, max_size=3), max_size=2),
    row=st.lists(VALUE, max_size=8),
)
@example(kline=[("open", "set", "inf")], side=[["1", "1"]], row=[])
def test_bybit_market_messages(plans, kline, side, row) -> None:
    k = mutate(BYBIT_KLINE, kline)
    message_or_bad(mby.parse_ws_kline, KEY, k)
    message_or_bad(mby.parse_rest_kline, "sim", "BTCUSDT", "1m", [*row, *REST_ROW[len(row) : 7]])
    socket, sink = mby.BybitSocket(plans["bybit"]), RecordingSink()
    for msg in (
        {"topic": "kline.1.BTCUSDT", "data": [k]},
        {"topic": "kline.1.BTCUSDT", "data": k},
        {"topic": "orderbook.1.BTCUSDT", "ts": T0, "data": {"b": side, "a": [["1.2", "3"]], "u": 1}},
        {"topic": "orderbook.1.BTCUSDT", "ts": k.get("open"), "data": {"b": [["1.1", "2"]], "a": side}},
        {"topic": "tickers.BTCUSDT", "data": {"bid1Price": k.get("open"), "ask1Price": "1", "bid1Size": "1"}},
        {"success": False, "ret_msg": k.get("close")},
        {"topic": k.get("volume"), "data": side},
    ):
        socket._dispatch(msg, sink)
