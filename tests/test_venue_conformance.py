"""One behavioural suite, run against each adapter with the paper venue speaking its protocol:
BinanceAdapter (python-binance) on the Binance face, BybitAdapter (pybit) on the Bybit face.

Place, partial fill, cancel, a stop-loss and a take-profit (Bybit: conditional orders),
query an unknown order, a duplicate client id, and each error class the gateway acts on. The shapes of what the venue sends are checked against the
exchanges' documentation (test_venue_wire_shapes.py) and the mappers against the documented
payloads (test_venue_mappers.py); this suite shows both adapters behave alike end to end.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from decimal import Decimal as D
from typing import Any

import pytest

from services.order_gateway.venues.base import (
    Banned,
    ClockSkew,
    DuplicateOrder,
    MalformedReply,
    OrderNotFound,
    OrderReport,
    OutcomeUnknown,
    RateLimited,
    Rejected,
    StreamGap,
    VenueAdapter,
)
from services.order_gateway.venues.binance import BinanceAdapter
from services.order_gateway.venues.bybit import BybitAdapter
from shared.messages import OrderStatus, OrderType, PlaceOrder, Side
from tests.helpers.bybit import subscribed, watch_subscriptions
from tests.helpers.sim import SimVenue, sim_fixture

sim = sim_fixture()
SYMBOL = "BTCUSDT"
PLACE_PATH = {"binance": "/api/v3/order", "bybit": "/v5/order/create"}
FEE_RATE = D("0.001")  # the paper venue's default taker and maker fee


@pytest.fixture(params=["binance", "bybit"])
def protocol(request: pytest.FixtureRequest) -> str:
    return request.param


@pytest.fixture
async def venue(sim: SimVenue, protocol: str) -> AsyncIterator[VenueAdapter]:
    kind = BinanceAdapter if protocol == "binance" else BybitAdapter
    adapter: VenueAdapter = kind(protocol, sim.api_key, sim.api_secret, base_url=sim.base_url, timeout_s=5)
    await adapter.start()
    try:
        yield adapter
    finally:
        await adapter.close()


def order(cid: str, side: Side, order_type: OrderType, qty: str, **extra: Any) -> PlaceOrder:
    return PlaceOrder(cid=cid, bot="b1", venue="sim", symbol=SYMBOL, side=side, order_type=order_type,
                      quantity=D(qty), **extra)  # fmt: skip


async def limit(venue: VenueAdapter, cid: str, side: Side, qty: str, price: D) -> OrderReport:
    return await venue.place(order(cid, side, OrderType.LIMIT, qty), D(qty), price, None)


def fault(sim: SimVenue, protocol: str, kind: str, **options: Any) -> None:
    """A fault on the next order placement of this protocol."""
    sim.control.fault(
        kind, match={"protocol": protocol, "path": PLACE_PATH[protocol], "method": "POST"}, **options
    )


async def test_a_limit_order_rests_and_is_found_by_its_cid(venue: VenueAdapter) -> None:
    below = await venue.last_price(SYMBOL) - 500
    placed = await limit(venue, "b1-000001", Side.BUY, "0.01", below)
    assert (placed.cid, placed.symbol, placed.status, placed.side, placed.order_type) == (
        "b1-000001", SYMBOL, OrderStatus.NEW, Side.BUY, OrderType.LIMIT
    )  # fmt: skip
    assert (placed.price, placed.orig_qty, placed.cum_filled_qty, placed.fee) == (below, D("0.01"), 0, 0)
    assert placed.venue_order_id and placed.venue_ts > 0
    queried = await venue.query(SYMBOL, "b1-000001")
    assert (queried.status, queried.venue_order_id, queried.price) == (
        OrderStatus.NEW,
        placed.venue_order_id,
        below,
    )
    assert [o.cid for o in await venue.open_orders(SYMBOL)] == ["b1-000001"]


async def test_a_market_order_fills_with_its_fee_in_the_asset_bought(venue: VenueAdapter) -> None:
    before = {b.asset: b for b in await venue.balances()}
    filled = await venue.place(
        order("b1-000002", Side.BUY, OrderType.MARKET, "0.001"), D("0.001"), None, None
    )
    assert (filled.status, filled.cum_filled_qty, filled.fee, filled.fee_asset) == (
        OrderStatus.FILLED, D("0.001"), D("0.001") * FEE_RATE, "BTC"
    )  # fmt: skip
    assert filled.cum_quote_qty > 0
    after = {b.asset: b for b in await venue.balances()}
    assert after["BTC"].total == before["BTC"].total + D("0.001") - D("0.001") * FEE_RATE
    assert after["USDT"].total == before["USDT"].total - filled.cum_quote_qty


async def test_a_partial_fill_then_a_cancel_keeps_what_filled(sim: SimVenue, venue: VenueAdapter) -> None:
    above = await venue.last_price(SYMBOL) + 50
    await limit(venue, "b1-000003", Side.SELL, "0.03", above)
    sim.control.market(SYMBOL, max_fill="0.01")
    sim.control.set_price(SYMBOL, str(above))
    partial = await venue.query(SYMBOL, "b1-000003")
    assert (partial.status, partial.cum_filled_qty, partial.cum_quote_qty) == (
        OrderStatus.PARTIALLY_FILLED, D("0.01"), D("0.01") * above
    )  # fmt: skip
    canceled = await venue.cancel(SYMBOL, "b1-000003")
    assert (canceled.cid, canceled.status, canceled.cum_filled_qty) == (
        "b1-000003",
        OrderStatus.CANCELED,
        D("0.01"),
    )
    assert await venue.open_orders(SYMBOL) == []
    [trade] = await venue.trades(SYMBOL)
    assert (trade.venue_order_id, trade.side, trade.price, trade.qty, trade.quote) == (
        canceled.venue_order_id, Side.SELL, above, D("0.01"), D("0.01") * above
    )  # fmt: skip
    assert (trade.fee, trade.fee_asset) == (D("0.01") * above * FEE_RATE, "USDT")
    fees = await venue.order_fees(SYMBOL, canceled.venue_order_id)
    assert (fees.asset, fees.fills, fees.total) == ("USDT", ((D("0.01"), trade.fee),), trade.fee)


async def test_the_user_stream_reports_a_partial_fill(
    sim: SimVenue, venue: VenueAdapter, protocol: str
) -> None:
    if protocol == "bybit":  # pybit subscribes without waiting for the answer: wait for its acks
        seen = watch_subscriptions(venue)
    events = venue.user_events()
    try:
        assert isinstance(await asyncio.wait_for(anext(events), 10), StreamGap)
        if protocol == "bybit":
            await asyncio.to_thread(subscribed, *seen[0], 3)
        above = await venue.last_price(SYMBOL) + 50
        await limit(venue, "b1-000004", Side.SELL, "0.03", above)
        sim.control.market(SYMBOL, max_fill="0.01")
        sim.control.set_price(SYMBOL, str(above))
        while True:
            event = await asyncio.wait_for(anext(events), 10)
            if isinstance(event, OrderReport) and event.status is OrderStatus.PARTIALLY_FILLED:
                break
        assert (event.cid, event.cum_filled_qty, event.cum_quote_qty) == (
            "b1-000004",
            D("0.01"),
            D("0.01") * above,
        )
        assert (event.last_fill_qty, event.last_fill_price) == (D("0.01"), above)
        [trade] = await venue.trades(SYMBOL)
        assert event.trade_id == trade.trade_id
        assert event.maker is True and trade.is_maker is True  # it rested and the market came to it
    finally:
        await events.aclose()


async def test_a_sell_stop_loss_waits_for_its_trigger_then_fills(sim: SimVenue, venue: VenueAdapter) -> None:
    trigger = await venue.last_price(SYMBOL) - 100
    cmd = order("b1-000011", Side.SELL, OrderType.STOP_LOSS, "0.01", stop_price=trigger)
    placed = await venue.place(cmd, D("0.01"), None, trigger)
    assert (placed.status, placed.order_type, placed.stop_price, placed.cum_filled_qty) == (
        OrderStatus.NEW, OrderType.STOP_LOSS, trigger, 0
    )  # fmt: skip
    sim.control.set_price(SYMBOL, str(trigger + 1))
    assert (await venue.query(SYMBOL, "b1-000011")).status is OrderStatus.NEW
    sim.control.set_price(SYMBOL, str(trigger))
    filled = await venue.query(SYMBOL, "b1-000011")
    assert (filled.status, filled.order_type, filled.cum_filled_qty) == (
        OrderStatus.FILLED, OrderType.STOP_LOSS, D("0.01")
    )  # fmt: skip


async def test_an_untriggered_take_profit_limit_is_cancelled(venue: VenueAdapter) -> None:
    trigger = await venue.last_price(SYMBOL) + 100
    cmd = order(
        "b1-000012", Side.SELL, OrderType.TAKE_PROFIT_LIMIT, "0.01", price=trigger, stop_price=trigger
    )
    placed = await venue.place(cmd, D("0.01"), trigger, trigger)
    assert (placed.status, placed.order_type, placed.price, placed.stop_price) == (
        OrderStatus.NEW, OrderType.TAKE_PROFIT_LIMIT, trigger, trigger
    )  # fmt: skip
    canceled = await venue.cancel(SYMBOL, "b1-000012")
    assert (canceled.status, canceled.order_type) == (OrderStatus.CANCELED, OrderType.TAKE_PROFIT_LIMIT)
    assert await venue.open_orders(SYMBOL) == []


async def test_an_unknown_order_is_not_found(venue: VenueAdapter) -> None:
    with pytest.raises(OrderNotFound):
        await venue.query(SYMBOL, "b1-999999")
    with pytest.raises((OrderNotFound, Rejected)):  # the gateway treats both as "settle by query"
        await venue.cancel(SYMBOL, "b1-999999")


async def test_a_duplicate_client_order_id_is_a_duplicate(venue: VenueAdapter) -> None:
    below = await venue.last_price(SYMBOL) - 500
    first = await limit(venue, "b1-000005", Side.BUY, "0.01", below)
    with pytest.raises(DuplicateOrder):
        await limit(venue, "b1-000005", Side.BUY, "0.01", below)
    assert [(o.cid, o.venue_order_id) for o in await venue.open_orders(SYMBOL)] == [
        ("b1-000005", first.venue_order_id)
    ]


async def test_an_order_beyond_the_balance_is_rejected(venue: VenueAdapter) -> None:
    with pytest.raises(Rejected) as info:
        await limit(venue, "b1-000006", Side.BUY, "1", await venue.last_price(SYMBOL) - 500)
    assert type(info.value) is Rejected and info.value.code is not None
    with pytest.raises(OrderNotFound):
        await venue.query(SYMBOL, "b1-000006")


async def test_a_5xx_after_accepting_is_an_unknown_outcome(
    sim: SimVenue, venue: VenueAdapter, protocol: str
) -> None:
    fault(sim, protocol, "error", http_status=502)
    with pytest.raises(OutcomeUnknown) as info:
        await limit(venue, "b1-000007", Side.BUY, "0.01", await venue.last_price(SYMBOL) - 500)
    assert type(info.value) is OutcomeUnknown
    assert (await venue.query(SYMBOL, "b1-000007")).status is OrderStatus.NEW  # it was placed


async def test_an_empty_reply_is_a_malformed_reply(sim: SimVenue, venue: VenueAdapter, protocol: str) -> None:
    fault(sim, protocol, "empty_body")
    with pytest.raises(MalformedReply):
        await limit(venue, "b1-000008", Side.BUY, "0.01", await venue.last_price(SYMBOL) - 500)
    assert (await venue.query(SYMBOL, "b1-000008")).status is OrderStatus.NEW


@pytest.mark.parametrize(("kind", "error"), [("rate_limit", RateLimited), ("ban", Banned)])
async def test_rate_limits_and_bans_place_nothing(
    sim: SimVenue, venue: VenueAdapter, protocol: str, kind: str, error: type[Exception]
) -> None:
    fault(sim, protocol, kind, retry_after=1)
    with pytest.raises(error) as info:
        await limit(venue, "b1-000009", Side.BUY, "0.01", await venue.last_price(SYMBOL) - 500)
    assert type(info.value) is error and info.value.retry_after > 0  # type: ignore[attr-defined]
    if kind == "rate_limit":
        with pytest.raises(OrderNotFound):
            await venue.query(SYMBOL, "b1-000009")


async def test_a_skewed_clock_is_clock_skew(sim: SimVenue, venue: VenueAdapter) -> None:
    sim.control.skew(30_000)
    try:
        with pytest.raises(ClockSkew):
            await venue.query(SYMBOL, "b1-000010")
    finally:
        sim.control.skew(0)
    with pytest.raises(OrderNotFound):
        await venue.query(SYMBOL, "b1-000010")
