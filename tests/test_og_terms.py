"""Pure rules behind conflicts and adoption: a record's terms, the command raw or rounded,
quote-sized market orders, unreadable records (no venue, no Redis)."""

from __future__ import annotations

from decimal import Decimal as D

import pytest

from services.order_gateway.terms import describe, matches, record_terms, rounded_terms
from services.order_gateway.venues.base import MalformedReply, parse_list, parse_reply
from services.order_gateway.venues.binance import report_from_order as binance_report
from services.order_gateway.venues.bybit_payloads import report_from_order as bybit_report
from shared.filters import SymbolFilters
from shared.messages import OrderStatus, OrderType, PlaceOrder, Side
from shared.order_record import CorruptRecord, OrderRecord, apply_report, new_record, to_update
from shared.order_report import OrderReport
from shared.order_terms import terms_of

F = SymbolFilters(symbol="BTCUSDT", base_asset="BTC", quote_asset="USDT", tick_size=D("0.01"),
                  step_size=D("0.00001"), min_qty=D("0.00001"), min_notional=D("5"))  # fmt: skip


def cmd(**kw) -> PlaceOrder:
    base = dict(cid="b1-000001", bot="b1", venue="sim", symbol="BTCUSDT", side=Side.BUY, order_type=OrderType.LIMIT,
                quantity=D("0.0012345"), price=D("20000.019"))  # fmt: skip
    return PlaceOrder(**{**base, **kw})


def adopted(**report) -> OrderRecord:
    base = OrderRecord(cid="b1-000001", bot="b1", venue="sim", symbol="BTCUSDT", status=OrderStatus.UNKNOWN,
                       adopted=True)  # fmt: skip
    return apply_report(base, OrderReport(cid="b1-000001", symbol="BTCUSDT", **report), D(0), "", 1)


def same(command: PlaceOrder, record: OrderRecord) -> bool:
    asked = [terms_of(command)]
    rounded = rounded_terms(command, F)
    return matches(asked + ([rounded] if rounded else []), record)


def test_raw_or_rounded_command_against_request_or_venue_terms():
    sent = new_record(cmd(), 1)
    assert same(cmd(), sent), "the same request"
    at_venue = apply_report(sent, OrderReport(cid="b1-000001", symbol="BTCUSDT", status=OrderStatus.NEW,
                            orig_qty=D("0.00123"), price=D("20000.01")), D(0), "", 2)  # fmt: skip
    assert same(cmd(), at_venue) and same(cmd(quantity=D("0.00123"), price=D("20000.01")), at_venue)
    assert same(cmd(quantity=D("0.001230"), price=D("20000.010")), at_venue), "numbers compare numerically"
    assert same(cmd(time_in_force="IOC"), at_venue), "time in force is not a term"
    for other in (cmd(side=Side.SELL), cmd(quantity=D("0.002")), cmd(price=D("19999")), cmd(symbol="ETHUSDT"),
                  cmd(order_type=OrderType.LIMIT_MAKER), cmd(order_type=OrderType.STOP_LOSS_LIMIT, stop_price=D("1"))):  # fmt: skip
        assert not same(other, at_venue), other


def test_adopted_records_compare_with_the_venue_terms():
    limit = adopted(status=OrderStatus.NEW, side=Side.BUY, order_type=OrderType.LIMIT, orig_qty=D("0.002"),
                    price=D("30000"))  # fmt: skip
    assert limit.request == "" and limit.adopted
    assert same(cmd(quantity=D("0.002"), price=D("30000")), limit)
    assert not same(cmd(quantity=D("0.002"), price=D("30000"), side=Side.SELL), limit)
    by_quote = adopted(status=OrderStatus.FILLED, side=Side.BUY, order_type=OrderType.MARKET,
                       orig_qty=D("0.00119"), orig_quote_qty=D("50"), cum_filled_qty=D("0.00119"))  # fmt: skip
    market = dict(order_type=OrderType.MARKET, price=None)
    assert same(cmd(quantity=None, quote_quantity=D("50.0"), **market), by_quote)
    assert not same(cmd(quantity=None, quote_quantity=D("60"), **market), by_quote)
    assert not same(cmd(quantity=D("0.00119"), **market), by_quote), "a base-sized order is another order"
    assert record_terms(by_quote).quantity is None and describe(record_terms(by_quote)).startswith(
        "BUY MARKET 50 quote"
    )


def test_updates_carry_quote_quantity_and_adoption():
    record = adopted(
        status=OrderStatus.FILLED, side=Side.BUY, order_type=OrderType.MARKET, orig_quote_qty=D("50")
    )
    update = to_update(record, None, reconciled=True, now_ms=1)
    assert update.adopted and update.orig_quote_qty == D("50")
    mine = to_update(new_record(cmd(quantity=None, quote_quantity=D("25"), order_type=OrderType.MARKET), 1), None,
                     reconciled=False, now_ms=1)  # fmt: skip
    assert not mine.adopted and mine.orig_quote_qty == D("25")


def test_unreadable_records_are_corrupt_records():
    good = {k.encode(): v.encode() for k, v in new_record(cmd(), 1).to_hash().items()}
    assert OrderRecord.from_hash(good).orig_quote_qty is None
    for field, value in ((b"status", b"HALF_BAKED"), (b"orig_qty", b"NaN"), (b"price", b"1e999999999"),
                         (b"cum_filled_qty", b"lots"), (b"fee", b"-Infinity")):  # fmt: skip
        with pytest.raises(CorruptRecord, match="og:order:b1-000001"):
            OrderRecord.from_hash({**good, field: value})


def test_malformed_venue_payloads_are_malformed_replies():
    for payload in (
        {},
        {"symbol": "BTCUSDT", "side": "SIDEWAYS"},
        {"symbol": "BTCUSDT", "executedQty": "1,5"},
        [],
    ):
        with pytest.raises(MalformedReply):
            parse_reply("order x", binance_report, payload)
    with pytest.raises(MalformedReply, match="expected a list"):
        parse_list("openOrders", binance_report, {})
    binance = binance_report({"symbol": "BTCUSDT", "clientOrderId": "b1-000001", "status": "FILLED", "side": "BUY",
                              "type": "MARKET", "origQty": "0.001", "origQuoteOrderQty": "50.00000000"})  # fmt: skip
    assert binance.orig_quote_qty == D("50")
    assert binance_report({"symbol": "BTCUSDT", "origQuoteOrderQty": "0.00000000"}).orig_quote_qty is None
    quote = bybit_report({"symbol": "BTCUSDT", "orderLinkId": "b1-000002", "orderType": "Market", "side": "Buy",
                          "marketUnit": "quoteCoin", "qty": "50", "cumExecQty": "0.0012", "orderStatus": "Filled"})  # fmt: skip
    assert (quote.orig_quote_qty, quote.orig_qty) == (D("50"), D("0.0012"))
    base = bybit_report({"symbol": "BTCUSDT", "orderType": "Market", "side": "Sell", "marketUnit": "baseCoin",
                         "qty": "0.001"})  # fmt: skip
    assert (base.orig_quote_qty, base.orig_qty) == (None, D("0.001"))
