"""A ban (Binance HTTP 418, Bybit 403) while a bot cancels: the cancel waits the ban out and is
carried out after it, instead of failing delivery after delivery into the dead letters (a
cancel lost); the venue is halted and the user told once, in the venue's own words.

The gateway's own objects in-process (the Bybit ban's length shortened), real Redis, the real
paper venue through the real pybit."""

from __future__ import annotations

import asyncio
import time
from decimal import Decimal

import redis.asyncio as aioredis

from services.order_gateway.router import CommandRouter
from services.order_gateway.symbols import SymbolCache
from services.order_gateway.tracker import OrderTracker
from services.order_gateway.user_stream import UserStream
from services.order_gateway.venues import bybit_payloads
from services.order_gateway.venues.base import VenueAdapter
from services.order_gateway.venues.binance import BinanceAdapter
from services.order_gateway.venues.bybit import BybitAdapter
from services.order_gateway.wal import Wal
from shared.messages import CancelOrder, Notification, OrderStatus, OrderType, PlaceOrder, Side
from shared.ratelimit import Priority, VenueBudget
from tests.helpers.sim import sim_fixture

sim = sim_fixture()


def gateway(redis: aioredis.Redis, adapter: VenueAdapter) -> tuple[CommandRouter, Wal, list[Notification]]:
    """The gateway's router over the adapter, in-process, and the notifications it sends."""
    wal = Wal(redis, "sim")
    notes: list[Notification] = []

    async def notify(note: Notification) -> None:
        notes.append(note)

    router = CommandRouter("sim", wal, OrderTracker(wal, adapter), adapter, SymbolCache(adapter), notify,
                           asyncio.Event())  # fmt: skip
    return router, wal, notes


async def test_a_cancel_refused_by_a_bybit_ban_waits_it_out_and_is_carried_out(
    sim, redis_server, monkeypatch
):
    monkeypatch.setattr(bybit_payloads, "BAN_S", 1.5)
    redis = aioredis.Redis.from_url(redis_server.url)
    adapter = BybitAdapter("sim", sim.api_key, sim.api_secret, base_url=sim.base_url, timeout_s=3)
    try:
        await adapter.start()
        router, wal, notes = gateway(redis, adapter)
        shown: list[float] = []  # what the heartbeat is told (gateway.py _show_halt)
        router.halt.changed = shown.append
        price = Decimal(sim.control.state()["prices"]["BTCUSDT"]) - 1000
        cmd = PlaceOrder(cid="b1-000001", bot="b1", venue="sim", symbol="BTCUSDT", side=Side.BUY,
                         order_type=OrderType.LIMIT, quantity=Decimal("0.001"), price=price)  # fmt: skip
        await router.place(cmd, None)
        assert (await wal.get(cmd.cid)).status is OrderStatus.NEW
        sim.control.fault("ban", seconds=1, match={"protocol": "bybit", "path": "/v5/order/cancel"})
        started = time.monotonic()
        await router.cancel_command(CancelOrder(cid=cmd.cid, bot="b1", venue="sim", symbol="BTCUSDT"), None)
        assert time.monotonic() - started >= 1.0, "it waited for the ban to end"
        assert (await wal.get(cmd.cid)).status is OrderStatus.CANCELED
        [order] = [o for o in sim.control.orders("bybit") if o["client_order_id"] == cmd.cid]
        assert order["status"] == "CANCELED"
        halted = [n for n in notes if n.kind == "venue_halted"]
        assert len(halted) == 1 and "403" in halted[0].text and "418" not in halted[0].text, notes
        assert router.halt._resumer is not None
        await asyncio.wait_for(router.halt._resumer, 5)  # and when the ban is over, the user hears it
        [resumed] = [n for n in notes if n.kind == "venue_resumed"]
        assert "trading goes on" in resumed.text and resumed.ts >= halted[0].ts
        assert shown[0] > time.time() - 60 and shown[-1] == 0.0  # halted until a time, then over
    finally:
        await adapter.close()
        await redis.aclose()


async def test_while_the_venue_is_halted_the_poller_does_not_ask_it(sim, redis_server):
    """Bybit counts every request against a ban: the poller's rounds (open orders, balances)
    wait while the venue is halted, then go on."""
    redis = aioredis.Redis.from_url(redis_server.url)
    adapter = BybitAdapter("sim", sim.api_key, sim.api_secret, base_url=sim.base_url, timeout_s=3)
    try:
        await adapter.start()
        wal = Wal(redis, "sim")
        router = CommandRouter("sim", wal, OrderTracker(wal, adapter), adapter, SymbolCache(adapter),
                               _quiet, asyncio.Event())  # fmt: skip
        price = Decimal(sim.control.state()["prices"]["BTCUSDT"]) - 1000
        cmd = PlaceOrder(cid="b1-000002", bot="b1", venue="sim", symbol="BTCUSDT", side=Side.BUY,
                         order_type=OrderType.LIMIT, quantity=Decimal("0.001"), price=price)  # fmt: skip
        await router.place(cmd, None)  # an open order: a round would list the venue's
        poller = UserStream(wal, router.tracker, halted=lambda: router.halt.active)
        asked: list[str] = []
        listing = adapter.open_orders

        async def counted() -> list:
            asked.append("open_orders")
            return await listing()

        adapter.open_orders = counted  # type: ignore[method-assign]  # the real call, counted
        router.halt.until = time.time() + 60  # as a ban sets it
        assert await poller.poll_round() is False and asked == []
        router.halt.until = 0.0
        assert await poller.poll_round() is True and asked == ["open_orders"]
    finally:
        await adapter.close()
        await redis.aclose()


async def _quiet(note: Notification) -> None:
    pass


async def test_an_order_is_refused_while_a_ban_another_process_met_pauses_the_venue(sim, redis_server):
    """The market gateway met the ban (its backfill): every process pauses. An order would have
    waited the whole ban in the limiter and gone out minutes late; it is refused at once with the
    ban's reason, the venue halted and the user told, as when the gateway meets the ban itself."""
    redis = aioredis.Redis.from_url(redis_server.url)
    limiter = VenueBudget("sim", 6000, redis=redis)
    adapter = BinanceAdapter("sim", sim.api_key, sim.api_secret, base_url=sim.base_url, limiter=limiter)
    try:
        await adapter.start()
        router, wal, notes = gateway(redis, adapter)
        await router.symbols.filters("BTCUSDT")  # known from the gateway's start
        market_gateway = VenueBudget("sim", 6000, redis=redis)
        market_gateway.block(120.0, "HTTP 418 from sim klines")
        await market_gateway.try_acquire(0, Priority.ORDERS)  # passed on to every process
        await limiter.try_acquire(0, Priority.POLLING)  # the gateway's next request hears of it
        cmd = PlaceOrder(cid="b1-000001", bot="b1", venue="sim", symbol="BTCUSDT", side=Side.BUY,
                         order_type=OrderType.MARKET, quantity=Decimal("0.001"))  # fmt: skip
        await asyncio.wait_for(router.place(cmd, None), 10)
        record = await wal.get(cmd.cid)
        assert record.status is OrderStatus.REJECTED and "REST paused for" in record.reason, record
        assert router.halt.active and [n.kind for n in notes] == ["venue_halted"]
        assert not [o for o in sim.control.orders() if o["client_order_id"] == cmd.cid], "never sent"
    finally:
        await adapter.close()
        await redis.aclose()
