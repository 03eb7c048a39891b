"""The Binance adapter's order lists (venues/binance_lists.py) end to end: the real python-binance
client against the paper venue's Binance face on 127.0.0.1. An OCO placed, one leg filled as the
price moves and the other expired, both heard on the user stream with the list's cid, the
balances as the fills say; a list cancelled; an unknown list; a list client id used twice."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from decimal import Decimal as D

import pytest

from services.order_gateway.venues.base import DuplicateOrder, OrderNotFound, OrderReport, Rejected, StreamGap
from services.order_gateway.venues.binance import BinanceAdapter
from shared.messages import ListKind, OrderStatus, OrderType, PlaceOrder, PlaceOrderList, Side, TimeInForce
from tests.helpers.sim import SimVenue, sim_fixture

sim = sim_fixture()
SYMBOL = "BTCUSDT"
FEE_RATE = D("0.001")
QTY = D("0.02")


def adapter(sim: SimVenue) -> BinanceAdapter:
    return BinanceAdapter("binance", sim.api_key, sim.api_secret, base_url=sim.base_url, timeout_s=5)


@pytest.fixture
async def venue(sim: SimVenue) -> AsyncIterator[BinanceAdapter]:
    a = adapter(sim)
    await a.start()
    try:
        yield a
    finally:
        await a.close()


def leg(cid: str, kind: OrderType, *, price: D | None = None, stop: D | None = None) -> PlaceOrder:
    tif = TimeInForce.GTC if kind is OrderType.STOP_LOSS_LIMIT else None
    return PlaceOrder(cid=cid, bot="b1", venue="sim", symbol=SYMBOL, side=Side.SELL, order_type=kind,
                      quantity=QTY, price=price, stop_price=stop, time_in_force=tif)  # fmt: skip


async def sell_oco(venue: BinanceAdapter, list_cid: str, first: int, tp: D, stop: D) -> list[OrderReport]:
    cmd = PlaceOrderList(
        list_cid=list_cid, bot="b1", venue="sim", symbol=SYMBOL, kind=ListKind.OCO,
        legs=(leg(f"b1-{first:06d}", OrderType.LIMIT_MAKER, price=tp),
              leg(f"b1-{first + 1:06d}", OrderType.STOP_LOSS_LIMIT, price=stop - 10, stop=stop)),
    )  # fmt: skip
    return await venue.place_list(cmd, [(QTY, tp, None), (QTY, stop - 10, stop)])


async def test_oco_one_leg_fills_the_other_expires_and_the_stream_names_the_list(
    sim: SimVenue, venue: BinanceAdapter
) -> None:
    listener = adapter(
        sim
    )  # its own stream, which never saw the placing reply: it learns the list from listStatus
    await listener.start()
    events = listener.user_events()
    try:
        assert isinstance(await asyncio.wait_for(anext(events), 10), StreamGap)
        before = {b.asset: b.total for b in await venue.balances()}
        last = await venue.last_price(SYMBOL)
        placed = await sell_oco(venue, "b1-000001", 2, last + 100, last - 100)
        assert [(r.cid, r.status, r.list_cid, r.order_type) for r in placed] == [
            ("b1-000002", OrderStatus.NEW, "b1-000001", OrderType.LIMIT_MAKER),
            ("b1-000003", OrderStatus.NEW, "b1-000001", OrderType.STOP_LOSS_LIMIT),
        ]
        assert {b.asset: b.locked for b in await venue.balances()}["BTC"] == QTY  # locked once
        sim.control.set_price(SYMBOL, str(last + 100))
        final: dict[str, OrderReport] = {}
        while len(final) < 2:
            event = await asyncio.wait_for(anext(events), 10)
            if isinstance(event, OrderReport) and event.terminal:
                final[event.cid] = event
        assert (final["b1-000002"].status, final["b1-000002"].list_cid) == (OrderStatus.FILLED, "b1-000001")
        expired = final["b1-000003"]
        assert (expired.status, expired.list_cid, expired.reason) == (
            OrderStatus.EXPIRED,
            "b1-000001",
            "OCO_TRIGGER",
        )
    finally:
        await events.aclose()
        await listener.close()
    after = {b.asset: b for b in await venue.balances()}
    assert after["BTC"].total == before["BTC"] - QTY and after["BTC"].locked == 0
    proceeds = QTY * (last + 100)
    assert after["USDT"].total == before["USDT"] + proceeds - proceeds * FEE_RATE
    legs = await venue.query_list(SYMBOL, "b1-000001")
    assert [(r.cid, r.status, r.list_cid) for r in legs] == [
        ("b1-000002", OrderStatus.FILLED, "b1-000001"),
        ("b1-000003", OrderStatus.EXPIRED, "b1-000001"),
    ]


async def test_cancel_list_cancels_every_leg(venue: BinanceAdapter) -> None:
    last = await venue.last_price(SYMBOL)
    await sell_oco(venue, "b1-000001", 2, last + 100, last - 100)
    cancelled = await venue.cancel_list(SYMBOL, "b1-000001")
    assert [(r.cid, r.status, r.list_cid) for r in cancelled] == [
        ("b1-000002", OrderStatus.CANCELED, "b1-000001"),
        ("b1-000003", OrderStatus.CANCELED, "b1-000001"),
    ]
    assert await venue.open_orders(SYMBOL) == []
    assert {b.asset: b.locked for b in await venue.balances()}["BTC"] == 0
    with pytest.raises(Rejected) as err:
        await venue.cancel_list(SYMBOL, "b1-000001")
    assert err.value.code == -2011


async def test_an_unknown_list_is_not_found(venue: BinanceAdapter) -> None:
    with pytest.raises(OrderNotFound):
        await venue.query_list(SYMBOL, "b1-999999")


async def test_a_list_client_id_in_use_is_a_duplicate(venue: BinanceAdapter) -> None:
    last = await venue.last_price(SYMBOL)
    await sell_oco(venue, "b1-000001", 2, last + 100, last - 100)
    with pytest.raises(DuplicateOrder):
        await sell_oco(venue, "b1-000001", 4, last + 100, last - 100)
    assert len(await venue.open_orders(SYMBOL)) == 2


async def test_a_refused_oco_is_rejected_with_binance_s_reason(venue: BinanceAdapter) -> None:
    last = await venue.last_price(SYMBOL)
    with pytest.raises(Rejected) as err:
        await sell_oco(venue, "b1-000001", 2, last - 50, last - 100)  # the limit leg below the price
    assert err.value.code == -2010 and "relationship of the prices" in str(err.value)
    assert await venue.open_orders(SYMBOL) == []


async def test_rest_reports_of_a_fresh_adapter_name_the_list_looked_up_once(
    sim: SimVenue, venue: BinanceAdapter
) -> None:
    """An adapter that never saw the list (the gateway restarted after a crash) fills a leg's
    list_cid in query, openOrders and allOrders from the row's orderListId: one GET orderList
    per list, whatever it reads after; an order of no list names none and costs nothing."""
    last = await venue.last_price(SYMBOL)
    await sell_oco(venue, "b1-000001", 2, last + 100, last - 100)
    await venue.place(leg("b1-000004", OrderType.LIMIT_MAKER, price=last + 200), QTY, last + 200, None)
    fresh = adapter(sim)
    await fresh.start()
    assert fresh.client is not None
    real, lookups = fresh.client.v3_get_order_list, []

    async def counted(**params):  # python-binance's own method, counted
        lookups.append(params)
        return await real(**params)

    fresh.client.v3_get_order_list = counted
    try:
        expected = {"b1-000002": "b1-000001", "b1-000003": "b1-000001", "b1-000004": ""}
        assert {r.cid: r.list_cid for r in await fresh.open_orders(SYMBOL)} == expected
        assert {r.cid: r.list_cid for r in await fresh.recent_orders(SYMBOL)} == expected
        assert (await fresh.query(SYMBOL, "b1-000003")).list_cid == "b1-000001"
        assert (await fresh.query(SYMBOL, "b1-000004")).list_cid == ""
        assert len(lookups) == 1 and set(lookups[0]) == {"orderListId"}
    finally:
        await fresh.close()
