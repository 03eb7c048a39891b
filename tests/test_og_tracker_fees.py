"""The write-ahead log's transaction body is pure: the venue's trades (`order_fees`, asked when
a report leaves missed fills' fees unknown) are fetched with no WATCH held, and the update is
then tried on the record as it is by then.

Proof with the real paper venue and real Redis: while the trades call is in flight, another
writer (a second tracker, as the user stream would) moves the record forward. Were the call
made inside the WATCH, that write would abort the transaction and the call be made again;
here it is made once, and the final record keeps both writers' steps, with the venue's fee."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from decimal import Decimal

import msgspec
import redis.asyncio as aioredis

from services.order_gateway.tracker import OrderTracker
from services.order_gateway.venues.binance import BinanceAdapter
from services.order_gateway.wal import Wal
from shared.messages import OrderStatus, OrderType, OrderUpdate, PlaceOrder, Side
from shared.order_record import new_record
from shared.order_report import OrderFees
from tests.helpers.sim import sim_fixture

sim = sim_fixture()


class RacingTrades(BinanceAdapter):
    """The real adapter, whose trades call lets another writer move the order's record first."""

    race: Callable[[], Awaitable[None]] | None = None
    fee_calls = 0

    async def order_fees(self, symbol: str, venue_order_id: str) -> OrderFees:
        self.fee_calls += 1
        if self.fee_calls == 1 and self.race is not None:
            await self.race()
        return await super().order_fees(symbol, venue_order_id)


async def test_the_trades_call_is_made_outside_the_watch(sim, redis_server):
    redis = aioredis.Redis.from_url(redis_server.url)
    other = aioredis.Redis.from_url(redis_server.url)  # the other writer's own connection
    adapter = RacingTrades("sim", sim.api_key, sim.api_secret, base_url=sim.base_url, timeout_s=5)
    await adapter.start()
    try:
        cmd = PlaceOrder(cid="b1-000001", bot="b1", venue="sim", symbol="BTCUSDT", side=Side.BUY,
                         order_type=OrderType.MARKET, quantity=Decimal("0.01"))  # fmt: skip
        wal = Wal(redis, "sim")
        assert await wal.create(new_record(cmd, 1))
        placed = await adapter.place(cmd, Decimal("0.01"), None, None)
        assert placed.status is OrderStatus.FILLED and placed.fee, "the venue charged a fee"
        # the order as a query shows it: filled, its fee unknown (Binance's order has none)
        queried = await adapter.query("BTCUSDT", cmd.cid)
        assert queried.fee is None and queried.cum_filled_qty == Decimal("0.01")
        accepted = msgspec.structs.replace(
            queried, status=OrderStatus.NEW, cum_filled_qty=Decimal(0), cum_quote_qty=Decimal(0)
        )

        async def race() -> None:  # e.g. the user stream's NEW event, applied meanwhile
            assert await OrderTracker(Wal(other, "sim"), adapter).apply(accepted, reconciled=False)

        adapter.race = race
        final = await OrderTracker(wal, adapter).apply(queried, reconciled=True)
        assert adapter.fee_calls == 1, "the trades call was made inside the WATCH: the race aborted it"
        assert final is not None and final.status is OrderStatus.FILLED
        assert (final.fee, final.fee_asset) == (placed.fee, placed.fee_asset)
        events = [
            msgspec.json.decode(f[b"data"], type=OrderUpdate)
            for _, f in await redis.xrange("orders:events:b1")
        ]
        assert [(u.status, u.cum_filled_qty, u.fee) for u in events] == [
            (OrderStatus.NEW, 0, 0),
            (OrderStatus.FILLED, Decimal("0.01"), placed.fee),
        ]
    finally:
        await adapter.close()
        await redis.aclose()
        await other.aclose()
