"""Data written before the order model was folded into one shared package still reads back.

The literals below were produced by the code of commit 45a4d85 (before OrderRecord, OrderUpdate
and OrderReport shared one base Struct, and before the strategy's order view was renamed): a
stream entry of an OrderUpdate, an og:order hash, and a bot's saved state. Each goes through
real Redis and must decode to the same values, and re-encode to the same fields."""

from __future__ import annotations

import json
from decimal import Decimal as D

import redis

from shared import codec
from shared.messages import OrderStatus, OrderType, OrderUpdate, Side
from shared.order_record import OrderRecord
from shared.strategy.orders import BotOrder
from shared.strategy.state import StrategyState, decode_state, encode_state

UPDATES = [
    {
        b"type": b"order_update",
        b"v": b"1",
        b"data": b'{"type":"order_update","cid":"b1-000007","bot":"b1","venue":"binance","symbol":"BTCUSDT",'
        b'"status":"PARTIALLY_FILLED","side":"BUY","order_type":"LIMIT","venue_order_id":"8812","price":"41200.10",'
        b'"orig_qty":"0.0030","cum_filled_qty":"0.0010","cum_quote_qty":"41.20010","last_fill_price":"41200.10",'
        b'"last_fill_qty":"0.0010","fee":"0.00000100","fee_asset":"BTC","venue_ts":1733480000123,'
        b'"ts":1733480000150,"event_id":"b1-000007:PARTIALLY_FILLED:0.0010","trade_id":"55501"}',
    },
    {
        b"type": b"order_update",
        b"v": b"1",
        b"data": b'{"type":"order_update","cid":"b1-000008","bot":"b1","venue":"bybit","symbol":"ETHUSDT",'
        b'"status":"FILLED","side":"BUY","order_type":"MARKET","cum_filled_qty":"0.05","cum_quote_qty":"99.95",'
        b'"fee":"-0.01","fee_asset":"USDT","reconciled":true,"orig_quote_qty":"100","adopted":true}',
    },
]

RECORD = {
    "cid": "b1-000007", "bot": "b1", "venue": "binance", "symbol": "BTCUSDT", "status": "PARTIALLY_FILLED",
    "side": "BUY", "order_type": "STOP_LOSS_LIMIT", "request": '{"type":"place"}', "venue_order_id": "8812",
    "price": "41200.10", "stop_price": "41300", "orig_qty": "0.0030", "orig_quote_qty": "",
    "cum_filled_qty": "0.0010", "cum_quote_qty": "41.20010", "fee": "0.000001", "fee_asset": "BTC", "reason": "",
    "adopted": "0", "send_attempts": "1", "sent_ts": "1733480000000", "created_ts": "1733479999990",
    "updated_ts": "1733480000150", "venue_ts": "1733480000123",
}  # fmt: skip

STATE = (
    b'{"seq":9,"orders":{"b1-000007":{"cid":"b1-000007","side":"BUY","order_type":"LIMIT","tag":"so3",'
    b'"quantity":"0.003","price":"41200.1","status":"PARTIALLY_FILLED","cum_filled_qty":"0.001",'
    b'"cum_quote_qty":"41.2001","fee":"0.000001","fee_asset":"BTC","created":1733479999990}},'
    b'"adopted":{"b1-000009":{"cid":"b1-000009","side":"SELL","order_type":"MARKET","quote_quantity":"50",'
    b'"cancel_requested":true}}}'
)


def test_a_stored_order_update_decodes_and_reencodes_to_the_same_fields(sync_redis: redis.Redis):
    for fields in UPDATES:
        sync_redis.xadd("orders:events:b1", fields)  # type: ignore[arg-type]
    entries = sync_redis.xrange("orders:events:b1")
    first, second = (codec.decode(fields) for _, fields in entries)
    assert isinstance(first, OrderUpdate) and isinstance(second, OrderUpdate)
    assert first.status is OrderStatus.PARTIALLY_FILLED and first.side is Side.BUY
    assert (first.price, first.cum_quote_qty, first.fee, first.trade_id) == (
        D("41200.10"), D("41.20010"), D("0.00000100"), "55501")  # fmt: skip
    assert first.stop_price is None and first.orig_quote_qty is None and not first.reconciled
    assert (second.orig_quote_qty, second.fee, second.reconciled, second.adopted) == (
        D("100"),
        D("-0.01"),
        True,
        True,
    )
    for msg, (_, stored) in zip((first, second), entries, strict=True):
        again = codec.encode(msg)
        assert again[b"type"] == stored[b"type"] and again[b"v"] == stored[b"v"]
        assert json.loads(again[b"data"]) == json.loads(stored[b"data"]), "the wire format changed"


def test_a_stored_og_order_hash_reads_back_and_writes_the_same_fields(sync_redis: redis.Redis):
    sync_redis.hset("og:order:b1-000007", mapping=RECORD)
    record = OrderRecord.from_hash(sync_redis.hgetall("og:order:b1-000007"))  # type: ignore[arg-type]
    assert record.status is OrderStatus.PARTIALLY_FILLED and record.order_type is OrderType.STOP_LOSS_LIMIT
    assert (record.price, record.stop_price, record.orig_quote_qty, record.fee) == (
        D("41200.10"), D("41300"), None, D("0.000001"))  # fmt: skip
    assert (record.send_attempts, record.sent_ts, record.adopted) == (1, 1733480000000, False)
    assert record.to_hash() == RECORD, "the og:order hash changed"


def test_a_saved_bot_state_loads_and_saves_the_same_fields(sync_redis: redis.Redis):
    sync_redis.set("bot:b1:state", STATE)
    state = decode_state(sync_redis.get("bot:b1:state"), StrategyState)  # type: ignore[arg-type]
    order, adopted = state.orders["b1-000007"], state.adopted["b1-000009"]
    assert isinstance(order, BotOrder) and isinstance(adopted, BotOrder)
    assert (order.tag, order.quantity, order.cum_filled_qty, order.avg_fill_price) == (
        "so3", D("0.003"), D("0.001"), D("41.2001") / D("0.001"))  # fmt: skip
    assert order.status is OrderStatus.PARTIALLY_FILLED and not order.terminal
    assert adopted.quote_quantity == D("50") and adopted.cancel_requested and adopted.quantity is None
    assert json.loads(encode_state(state)) == json.loads(STATE), "the saved state's fields changed"
