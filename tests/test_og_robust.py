"""No single bad value or bad reply stops the order path: a NaN command is dead-lettered with
its reason and the gateway goes on; an arithmetic error while checking a command is a REJECTED
update; a `{}` reply to a place is an unknown outcome resolved by query, to a query a failure
the caller retries; reconciliation reports and skips a record it cannot read.

Real gateway process (or the gateway's own objects in-process), real Redis, real paper venue
through the real python-binance and pybit."""

from __future__ import annotations

import asyncio
import json
from decimal import Decimal

import msgspec
import pytest
import redis.asyncio as aioredis

from services.order_gateway.router import CommandRouter
from services.order_gateway.symbols import SymbolCache
from services.order_gateway.tracker import OrderTracker
from services.order_gateway.venues.base import MalformedReply
from services.order_gateway.venues.binance import BinanceAdapter
from services.order_gateway.venues.bybit import BybitAdapter
from services.order_gateway.wal import Wal
from shared.codec import encode
from shared.messages import Notification, OrderStatus, OrderType, PlaceOrder, Side
from shared.order_record import new_record
from shared.streams import og_open, og_order
from tests.helpers.gateway import (
    accepted,
    place,
    start_gateway,
    updates,
    wait_gateway_ready,
    wait_status,
    write_config,
)
from tests.helpers.og_sync import wait_reconciled
from tests.helpers.procs import wait_until
from tests.helpers.sim import sim_fixture

sim = sim_fixture()
BYBIT = "[venues.sim]\nkind = \"sim\"\nprotocol = \"bybit\"\nbase_url = \"{url}\"\n[order_gateway]\npoll_every_s = 600\nrecv_window_ms = 1000\nrequest_timeout_s = 3\n"  # fmt: skip


def bad_entry(seq: int, **amounts: str) -> dict[bytes, bytes]:
    """A place command as an older or broken writer could have put it on the stream."""
    cmd = PlaceOrder(cid=f"b1-{seq:06d}", bot="b1", venue="sim", symbol="BTCUSDT", side=Side.BUY,
                     order_type=OrderType.MARKET, quantity=Decimal("0.001"))  # fmt: skip
    fields = encode(cmd)
    data = json.loads(fields[b"data"])
    data.update(amounts)
    return {**fields, b"data": json.dumps(data).encode()}


def test_non_finite_amounts_are_dead_lettered_and_the_gateway_goes_on(sim, env, tmp_path, sync_redis):
    r = sync_redis
    gateway = start_gateway(env, write_config(tmp_path / "og.toml", sim), tmp_path / "og.log")
    wait_gateway_ready(r, gateway)
    for seq, value in ((1, "NaN"), (2, "Infinity"), (3, "1e999999999")):
        r.xadd("orders:cmd:sim:b1", bad_entry(seq, quantity=value))
    r.xadd("orders:cmd:sim:b1", bad_entry(4, price="-Infinity", order_type="LIMIT"))
    good = place(r, 5, order_type=OrderType.MARKET, qty="0.001")
    assert wait_status(r, good.cid, OrderStatus.FILLED).cum_filled_qty == Decimal("0.001")
    dead = wait_until(lambda: len(d := r.xrange("dlq:orders:cmd:sim:b1")) == 4 and d, what="4 dead letters")
    reasons = [fields[b"dlq_reason"].decode() for _, fields in dead]
    assert all("must be a finite number" in reason for reason in reasons), reasons
    assert "quantity" in reasons[0] and "price" in reasons[3]
    assert not any(r.exists(og_order(f"b1-{seq:06d}")) for seq in range(1, 5)), "nothing recorded or sent"
    assert gateway.alive() and gateway.terminate() == 0


@pytest.mark.parametrize("protocol", ["binance", "bybit"])
def test_an_empty_reply_to_a_place_is_resolved_by_query(protocol, sim, env, tmp_path, sync_redis):
    r = sync_redis
    config = tmp_path / "og.toml"
    if protocol == "binance":
        write_config(config, sim, poll_every_s=600)
        path, journal = "/api/v3/order", sim.control.journal
    else:
        config.write_text(BYBIT.format(url=sim.base_url))
        path, journal = "/v5/order/create", lambda: sim.control.journal(account="bybit")
    gateway = start_gateway(env, config, tmp_path / "og.log")
    wait_gateway_ready(r, gateway)
    wait_reconciled(r)
    sim.control.fault("empty_body", match={"path": path, "method": "POST"})
    sim.control.fault("drop_event", count=10, match={"client_order_id": "b1-000001"})  # only a query can tell
    cmd = place(r, 1, order_type=OrderType.MARKET, qty="0.001")
    filled = wait_status(r, cmd.cid, OrderStatus.FILLED, timeout=30)
    assert filled.reconciled and filled.cum_filled_qty == Decimal("0.001")
    assert [u.status for u in updates(r, cmd.cid)] == [OrderStatus.UNKNOWN, OrderStatus.FILLED]
    assert "malformed reply" in updates(r, cmd.cid)[0].reason
    assert sum(1 for e in journal() if e["kind"] == "accepted" and e.get("client_order_id") == cmd.cid) == 1
    assert not [f for f in sim.control.faults() if f["kind"] == "empty_body"], "the `{}` was answered"
    assert gateway.terminate() == 0


def test_reconciliation_skips_records_it_cannot_handle(sim, env, tmp_path, sync_redis):
    """A corrupt hash and an older version's PENDING_SUBMIT with a NaN quantity (which used to
    crash-loop the gateway at every start): reported, skipped, and the gateway trades on."""
    r = sync_redis
    r.hset(og_order("b1-000001"), mapping={"cid": "b1-000001", "bot": "b1", "venue": "sim", "symbol": "BTCUSDT",
                                            "status": "HALF_BAKED", "orig_qty": "0.001"})  # fmt: skip
    old = new_record(bad_cmd := PlaceOrder(cid="b1-000002", bot="b1", venue="sim", symbol="BTCUSDT", side=Side.BUY,
                                           order_type=OrderType.MARKET, quantity=Decimal("0.001")), 1)  # fmt: skip
    fields = old.to_hash() | {"orig_qty": "NaN", "request": old.request.replace('"0.001"', '"NaN"')}
    assert bad_cmd.cid in fields["request"] and '"NaN"' in fields["request"]
    r.hset(og_order("b1-000002"), mapping=fields)
    r.sadd(og_open("sim"), "b1-000001", "b1-000002")
    gateway = start_gateway(env, write_config(tmp_path / "og.toml", sim), tmp_path / "og.log")
    summary = wait_reconciled(r)
    assert (summary.data["skipped"], summary.data["checked"]) == (2, 0)
    assert "skipped 2" in summary.text
    cmd = place(r, 3, order_type=OrderType.MARKET, qty="0.001")
    wait_status(r, cmd.cid, OrderStatus.FILLED)
    log = (tmp_path / "og.log").read_text()
    assert "skipped b1-000001" in log and "skipped b1-000002" in log
    assert gateway.alive() and gateway.terminate() == 0


async def test_arithmetic_errors_are_refusals_and_bad_query_replies_are_retryable(sim, redis_server):
    """In-process, the gateway's own objects: a NaN that got past decoding (force-set) fails
    the filter arithmetic and becomes a REJECTED update, never an exception out of the handler;
    `{}` to a query is MalformedReply, an OutcomeUnknown every caller already retries."""
    redis = aioredis.Redis.from_url(redis_server.url)
    adapter = BinanceAdapter("sim", sim.api_key, sim.api_secret, base_url=sim.base_url, timeout_s=2)
    try:
        await adapter.start()
        wal = Wal(redis, "sim")
        tracker = OrderTracker(wal, adapter)
        notes: list[Notification] = []

        async def notify(note: Notification) -> None:
            notes.append(note)

        router = CommandRouter("sim", wal, tracker, adapter, SymbolCache(adapter), notify, asyncio.Event())
        cmd = PlaceOrder(cid="b1-000001", bot="b1", venue="sim", symbol="BTCUSDT", side=Side.BUY,
                         order_type=OrderType.LIMIT, quantity=Decimal("0.001"), price=Decimal("30000"))  # fmt: skip
        msgspec.structs.force_setattr(cmd, "quantity", Decimal("NaN"))
        await router.place(cmd, None)
        events = [msgspec.json.decode(f[b"data"]) for _, f in await redis.xrange("orders:events:b1")]
        assert [(e["status"], e["reason"].split(":")[0]) for e in events] == [("REJECTED", "invalid amounts")]
        assert accepted(sim, cmd.cid) == 0
        sim.control.fault("empty_body", match={"path": "/api/v3/order", "method": "GET"})
        with pytest.raises(MalformedReply, match="malformed reply to query b1-000009"):
            await adapter.query("BTCUSDT", "b1-000009")
        sim.control.fault("empty_body", match={"path": "/api/v3/openOrders"})
        with pytest.raises(MalformedReply, match="expected a list"):
            await adapter.open_orders()
    finally:
        await adapter.close()
        await redis.aclose()


async def test_bybit_bad_list_replies_are_retryable(sim):
    adapter = BybitAdapter("sim", sim.api_key, sim.api_secret, base_url=sim.base_url, timeout_s=2)
    await adapter.start()
    sim.control.fault("empty_body", match={"protocol": "bybit", "path": "/v5/order/realtime"})
    with pytest.raises(MalformedReply, match="no list of orders"):
        await adapter.open_orders()
    sim.control.fault("empty_body", match={"protocol": "bybit", "path": "/v5/order/history"})
    with pytest.raises(MalformedReply):
        await adapter.recent_orders("BTCUSDT")
    assert await adapter.recent_orders("BTCUSDT") == []
    await adapter.close()
