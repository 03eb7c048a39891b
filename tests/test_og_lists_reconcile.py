"""Reconciliation of order lists, as `automata reconcile` and the gateway run it (in-process, the
gateway's own objects, real Redis, the paper venue through python-binance): a native list the
venue never got is left alone by the CLI and resent once, whole, by the gateway — never a leg
alone; a native list the venue took (its reply lost) gets its legs' states from the list's query."""

from __future__ import annotations

import asyncio
import time
from decimal import Decimal

from cli.reconcile import reconcile_venue
from services.order_gateway.list_wal import ListWal, Mode
from services.order_gateway.lists import ListRouter, written_ahead
from services.order_gateway.reconcile import reconcile
from services.order_gateway.router import CommandRouter
from services.order_gateway.symbols import SymbolCache
from services.order_gateway.tracker import OrderTracker
from shared.config import AppConfig, VenueConfig
from shared.messages import Notification, OrderStatus
from tests.helpers.gateway import binance_wal
from tests.helpers.lists import SYMBOL, oco_command
from tests.helpers.sim import sim_fixture

sim = sim_fixture()


async def test_the_cli_and_the_gateway_reconcile_lists(sim, redis_server):
    async with binance_wal(sim, redis_server.url) as (_, adapter, wal):
        lists = ListWal(wal)
        p = Decimal(sim.control.state()["prices"][SYMBOL])
        long_ago = int(time.time() * 1000) - 60_000  # far past the recvWindow
        unsent = oco_command(1, above=p + 500, below=p - 500)
        taken = oco_command(10, above=p + 500, below=p - 500)
        for cmd in (unsent, taken):
            assert (await lists.create(*written_ahead(cmd, Mode.NATIVE, long_ago))).name == "CREATED"
        legs = [(leg.quantity, leg.price, leg.stop_price) for leg in taken.legs]
        await adapter.place_list(taken, legs)  # at the venue, its reply lost

        cfg = AppConfig(venues={"sim": VenueConfig(kind="sim", base_url=sim.base_url)})
        cli = await reconcile_cli(cfg, redis_server.url)
        assert cli.unresolved == 1 and cli.resent == 0
        for leg in taken.legs:
            assert (await wal.get(leg.cid)).status is OrderStatus.NEW
        for leg in unsent.legs:  # never sent, never resent alone
            assert (await wal.get(leg.cid)).status is OrderStatus.PENDING_SUBMIT
            assert not [o for o in sim.control.orders() if o["client_order_id"] == leg.cid]

        async def notify(note: Notification) -> None:
            pass

        tracker = OrderTracker(wal, adapter)
        router = CommandRouter("sim", wal, tracker, adapter, SymbolCache(adapter), notify, asyncio.Event())
        summary = await reconcile(wal, tracker, router.retry, resend=router.resend)
        await ListRouter(router, emulate=False).reconcile(summary)
        assert summary.resent == 1
        for leg in unsent.legs:
            assert (await wal.get(leg.cid)).status is OrderStatus.NEW
            assert len([o for o in sim.control.orders() if o["client_order_id"] == leg.cid]) == 1
        assert (await lists.get(unsent.list_cid)).send_attempts == 2


async def reconcile_cli(cfg: AppConfig, url: str):
    """`automata reconcile sim`'s own function."""
    return await reconcile_venue(cfg, "sim", url, notify=False)
