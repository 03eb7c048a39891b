"""Pure rules of the order gateway: forward-only records, fees, validation."""

from __future__ import annotations

from decimal import Decimal as D

import msgspec
import pytest

from services.order_gateway.validate import prepare
from shared.filters import FilterError, SymbolFilters
from shared.messages import OrderState, OrderStatus, OrderType, PlaceOrder, Side
from shared.order_lifecycle import moves_forward
from shared.order_record import (
    CorruptRecord,
    OrderRecord,
    apply_report,
    fee_after,
    new_record,
    to_update,
    without_bad_amounts,
)
from shared.order_report import OrderReport

F = SymbolFilters(symbol="BTCUSDT", base_asset="BTC", quote_asset="USDT", tick_size=D("0.01"),
                  step_size=D("0.00001"), min_qty=D("0.00001"), min_notional=D("5"))  # fmt: skip


def cmd(**kw) -> PlaceOrder:
    base = dict(cid="bot-000001", bot="bot", venue="sim", symbol="BTCUSDT", side=Side.BUY, order_type=OrderType.LIMIT,
                quantity=D("0.0012345"), price=D("20000.019"))  # fmt: skip
    base.update(kw)
    return PlaceOrder(**base)


def rep(status, cum="0", quote="0", **kw) -> OrderReport:
    return OrderReport(
        cid="bot-000001", symbol="BTCUSDT", status=status, cum_filled_qty=D(cum), cum_quote_qty=D(quote), **kw
    )


def test_record_round_trips_through_a_redis_hash():
    rec = new_record(cmd(), 123)
    data = {k.encode(): v.encode() for k, v in rec.to_hash().items()}
    back = OrderRecord.from_hash(data)
    assert back == rec
    assert back.place_request() == cmd()


@pytest.mark.parametrize(("fee", "readable"), [("-0.0001", True), ("NaN", False), ("-1e30", False)])
def test_a_rebate_is_a_negative_fee_and_a_record_holding_it_reads_back(fee: str, readable: bool):
    rec = msgspec.structs.replace(new_record(cmd(), 123), fee=D(fee), fee_asset="USDT")
    data = {k.encode(): v.encode() for k, v in rec.to_hash().items()}
    if readable:
        assert OrderRecord.from_hash(data).fee == D(fee)
        assert without_bad_amounts(rec) == rec
    else:
        with pytest.raises(CorruptRecord, match="fee"):
            OrderRecord.from_hash(data)
        assert without_bad_amounts(rec).fee == 0


def test_only_forward_reports_apply():
    rec = new_record(cmd(), 1)
    assert moves_forward(rec, rep(OrderStatus.NEW))
    rec = apply_report(rec, rep(OrderStatus.NEW), D(0), "", 2)
    assert not moves_forward(rec, rep(OrderStatus.NEW)), "duplicate"
    assert moves_forward(rec, rep(OrderStatus.PARTIALLY_FILLED, "0.0005", "10"))
    rec = apply_report(rec, rep(OrderStatus.PARTIALLY_FILLED, "0.0005", "10"), D("0.0000005"), "BTC", 3)
    assert not moves_forward(rec, rep(OrderStatus.NEW)), "stale poll"
    assert not moves_forward(rec, rep(OrderStatus.PARTIALLY_FILLED, "0.0004", "8")), "older fill"
    assert moves_forward(rec, rep(OrderStatus.CANCELED, "0.0005", "10"))
    rec = apply_report(rec, rep(OrderStatus.CANCELED, "0.0005", "10"), rec.fee, "", 4)
    assert rec.terminal
    assert not moves_forward(rec, rep(OrderStatus.FILLED, "0.0012", "24")), "terminal records never change"


def test_fee_from_stream_fill_or_from_trades_when_fills_were_missed():
    rec = apply_report(new_record(cmd(), 1), rep(OrderStatus.NEW), D(0), "", 2)
    one = rep(
        OrderStatus.PARTIALLY_FILLED, "0.0005", "10", last_fill_qty=D("0.0005"), last_fee=D("0.0000005")
    )
    assert fee_after(rec, one) == D("0.0000005")
    jump = rep(OrderStatus.FILLED, "0.0012", "24", last_fill_qty=D("0.0002"), last_fee=D("0.0000002"))
    assert fee_after(rec, jump) is None, "two fills missed: ask the venue's trades"
    assert fee_after(rec, rep(OrderStatus.FILLED, "0.0012", "24", fee=D("0.0000012"))) == D("0.0000012")


def test_update_carries_cumulative_and_last_fill():
    before = apply_report(
        new_record(cmd(), 1), rep(OrderStatus.PARTIALLY_FILLED, "0.0005", "10"), D(0), "", 2
    )
    after = apply_report(before, rep(OrderStatus.FILLED, "0.0012", "24.07"), D("0.0000012"), "BTC", 3)
    upd = to_update(after, before, reconciled=True, now_ms=5)
    assert (upd.cum_filled_qty, upd.last_fill_qty, upd.last_fill_price) == (
        D("0.0012"),
        D("0.0007"),
        D("20100"),
    )
    assert upd.reconciled and upd.fee == D("0.0000012") and upd.fee_asset == "BTC"


def order_state(state: OrderState) -> dict[str, object]:
    """The shared fields of any view of an order."""
    return {name: getattr(state, name) for name in OrderState.__struct_fields__}


def test_update_carries_every_field_of_the_order_state():
    """to_update names the OrderState fields one by one: none may be left behind."""
    record = msgspec.structs.replace(
        new_record(cmd(order_type=OrderType.STOP_LOSS_LIMIT, stop_price=D("19000")), 1),
        status=OrderStatus.PARTIALLY_FILLED, venue_order_id="42", orig_quote_qty=D("30"),
        cum_filled_qty=D("0.001"), cum_quote_qty=D("20"), fee=D("-0.01"), fee_asset="USDT",
        reason="why", venue_ts=7, list_cid="bot-000009",
    )  # fmt: skip
    assert order_state(to_update(record, None, reconciled=False, now_ms=5)) == order_state(record)
    defaults = OrderState(cid="bot-000001", symbol="BTCUSDT", status=OrderStatus.NEW)
    assert all(
        v != getattr(defaults, k) for k, v in order_state(record).items() if k not in ("cid", "symbol")
    )


def test_prepare_rounds_by_side_and_refuses_with_reasons():
    p = prepare(cmd(), F, D("20000"))
    assert (p.qty, p.price) == (D("0.00123"), D("20000.01"))
    p = prepare(cmd(side=Side.SELL, price=D("20000.011")), F, D("20000"))
    assert p.price == D("20000.02")
    with pytest.raises(FilterError, match="NOTIONAL"):
        prepare(cmd(quantity=D("0.0001")), F, D("20000"))
    with pytest.raises(FilterError, match="PERCENT_PRICE"):
        prepare(cmd(price=D("1000")), F, D("20000"))
    with pytest.raises(FilterError, match="needs a stop price"):
        prepare(cmd(order_type=OrderType.STOP_LOSS_LIMIT), F, D("20000"))
    market = prepare(
        cmd(order_type=OrderType.MARKET, quantity=None, price=None, quote_quantity=D("50")), F, D("20000")
    )
    assert market == (None, None, None)
    with pytest.raises(FilterError, match="NOTIONAL"):
        prepare(
            cmd(order_type=OrderType.MARKET, quantity=None, price=None, quote_quantity=D("1")), F, D("20000")
        )
