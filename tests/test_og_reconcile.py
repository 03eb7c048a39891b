"""Reconciliation's one I/O path (services/order_gateway/reconcile.py), as `automata reconcile`
and the gateway both run it: the same code, the gateway alone resending.

In-process, the gateway's own objects, real Redis, the real paper venue through python-binance:
a log holding an order the venue never got (sent long ago), one that filled while nobody
watched, and a bot's order the log lost. Without a resender (the CLI) the unsent order is
counted unresolved and left alone; with the gateway's, it is sent again under its cid, once."""

from __future__ import annotations

import asyncio
import time
from decimal import Decimal

import msgspec

from services.order_gateway.reconcile import reconcile
from services.order_gateway.retry import Retry
from services.order_gateway.router import CommandRouter
from services.order_gateway.symbols import SymbolCache
from services.order_gateway.tracker import OrderTracker
from shared.messages import Notification, OrderStatus, OrderType, PlaceOrder, Side
from shared.order_record import new_record
from tests.helpers.gateway import accepted, binance_wal
from tests.helpers.sim import sim_fixture

sim = sim_fixture()


def market(seq: int) -> PlaceOrder:
    return PlaceOrder(cid=f"b1-{seq:06d}", bot="b1", venue="sim", symbol="BTCUSDT", side=Side.BUY,
                      order_type=OrderType.MARKET, quantity=Decimal("0.01"))  # fmt: skip


async def test_the_cli_and_the_gateway_reconcile_alike_and_only_the_gateway_resends(sim, redis_server):
    async with binance_wal(sim, redis_server.url) as (_, adapter, wal):
        tracker = OrderTracker(wal, adapter)
        long_ago = (
            int(time.time() * 1000) - 60_000
        )  # far past the recvWindow: the venue can no longer take it
        unsent, filled, lost = market(1), market(2), market(3)
        for cmd in (unsent, filled):
            assert await wal.create(
                msgspec.structs.replace(new_record(cmd, long_ago), sent_ts=long_ago, send_attempts=1)
            )
        for cmd in (filled, lost):  # at the venue, their replies lost (and `lost`'s record with Redis)
            await adapter.place(cmd, cmd.quantity, None, None)

        cli = await reconcile(wal, tracker, Retry(adapter.sync_time))
        assert (cli.checked, cli.filled_while_down, cli.adopted, cli.unresolved, cli.resent) == (
            2,
            1,
            1,
            1,
            0,
        )
        assert (await wal.get(unsent.cid)).status is OrderStatus.PENDING_SUBMIT and accepted(
            sim, unsent.cid
        ) == 0
        assert (await wal.get(filled.cid)).status is OrderStatus.FILLED
        assert (await wal.get(lost.cid)).adopted

        async def notify(note: Notification) -> None:
            pass

        router = CommandRouter("sim", wal, tracker, adapter, SymbolCache(adapter), notify, asyncio.Event())
        gateway = await reconcile(wal, tracker, router.retry, resend=router.resend)
        assert (gateway.checked, gateway.resent, gateway.unresolved, gateway.adopted) == (1, 1, 0, 0)
        record = await wal.get(unsent.cid)
        assert (record.status, record.send_attempts, accepted(sim, unsent.cid)) == (OrderStatus.FILLED, 2, 1)
        again = await reconcile(wal, tracker, router.retry, resend=router.resend)
        assert (again.checked, again.resent, again.adopted, accepted(sim, unsent.cid)) == (0, 0, 0, 1)
