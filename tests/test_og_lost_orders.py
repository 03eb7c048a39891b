"""Orders the venue no longer knows (services/order_gateway/user_stream.py, reconcile_rules.LostWatch).

Binance's Spot Testnet wipes every order about once a month; the paper venue's reset does the
same. An order the venue had acknowledged is then "unknown" to every query, and its bot would
wait for it forever. The poller closes it CANCELED with the reason (its fills standing) once
the venue has said so three times over at least a minute, in one MULTI/EXEC with the bot's
update and a notification. An order the venue still holds is never touched.

In-process: the gateway's own objects, real Redis, the real paper venue through python-binance,
the poller's clock moved by the test (no waiting)."""

from __future__ import annotations

import time
from decimal import Decimal

import msgspec

from services.order_gateway.reconcile_rules import LOST_AFTER_MS, LOST_REASON
from services.order_gateway.tracker import OrderTracker
from services.order_gateway.user_stream import UserStream
from shared.codec import decode
from shared.messages import Notification, OrderStatus, OrderType, OrderUpdate, PlaceOrder, Side
from shared.order_record import new_record
from shared.streams import NOTIFY, order_events
from tests.helpers.gateway import binance_wal
from tests.helpers.sim import sim_fixture

sim = sim_fixture()
D = Decimal


def limit(seq: int, price: str) -> PlaceOrder:
    return PlaceOrder(cid=f"b1-{seq:06d}", bot="b1", venue="sim", symbol="BTCUSDT", side=Side.BUY,
                      order_type=OrderType.LIMIT, quantity=D("0.01"), price=D(price))  # fmt: skip


async def test_orders_a_reset_venue_forgot_are_closed_as_lost_after_a_minute(sim, redis_server):
    async with binance_wal(sim, redis_server.url) as (redis, adapter, wal):
        tracker = OrderTracker(wal, adapter)
        clock = [1000.0]
        poller = UserStream(wal, tracker, clock=lambda: clock[0])

        async def place(cmd: PlaceOrder) -> None:
            now = int(time.time() * 1000)
            assert await wal.create(
                msgspec.structs.replace(new_record(cmd, now), sent_ts=now, send_attempts=1)
            )
            await tracker.apply(await adapter.place(cmd, cmd.quantity, cmd.price, None), reconciled=False)

        sim.control.set_price("BTCUSDT", "30000")
        resting, partial = limit(1, "29000"), limit(2, "29500")
        await place(resting)
        await place(partial)
        sim.control.market("BTCUSDT", max_fill="0.004")
        sim.control.set_price("BTCUSDT", "29400")  # `partial` trades 0.004 of its 0.01
        assert await poller.poll_once() == 1
        assert (await wal.get(partial.cid)).cum_filled_qty == D("0.004")

        sim.control.reset()  # the venue forgets every order, as Spot Testnet's reset does
        sim.control.set_price("BTCUSDT", "30000")
        kept = limit(3, "28000")  # placed after the reset: the venue holds it
        await place(kept)

        for _ in range(3):  # three "unknown order" answers, but within the minute: a glitch?
            assert await poller.poll_once() == 0
            clock[0] += (LOST_AFTER_MS / 1000 - 2) / 2
        assert (await wal.get(resting.cid)).status is OrderStatus.NEW
        clock[0] += 2
        assert await poller.poll_once() == 2

        for cmd, filled in ((resting, D(0)), (partial, D("0.004"))):
            record = await wal.get(cmd.cid)
            assert (record.status, record.reason, record.cum_filled_qty) == (
                OrderStatus.CANCELED,
                LOST_REASON,
                filled,
            )
        assert (await wal.get(kept.cid)).status is OrderStatus.NEW
        assert set(await wal.open_cids()) == {kept.cid}

        updates = [decode(f) for _, f in await redis.xrange(order_events("b1"))]
        closed = {
            u.cid: u for u in updates if isinstance(u, OrderUpdate) and u.status is OrderStatus.CANCELED
        }
        assert set(closed) == {resting.cid, partial.cid}
        assert closed[partial.cid].cum_filled_qty == D("0.004") and closed[partial.cid].reason == LOST_REASON
        notes = [n for _, f in await redis.xrange(NOTIFY) if isinstance(n := decode(f), Notification)]
        lost = sorted(n.data["cid"] for n in notes if n.kind == "order_lost")
        assert lost == [resting.cid, partial.cid]
        assert "0.004 of it filled" in next(n.text for n in notes if n.data.get("cid") == partial.cid)

        clock[0] += 600  # closed once: later polls find nothing more to do
        assert await poller.poll_once() == 0
        assert len([n for _, f in await redis.xrange(NOTIFY) if decode(f).kind == "order_lost"]) == 2
