"""BybitAdapter's stop-loss and take-profit orders (Bybit V5 spot conditional orders), through
the real pybit client against the paper venue's Bybit face on 127.0.0.1.

A sell stop stays NEW (Untriggered) until the price falls to its trigger, then fills, and the
private `order` topic tells each step; an untriggered one is cancelled; a take-profit
triggers on a rise; a trigger the price already passed, or a price off the tick, is refused
with a reason (the gateway makes it a REJECTED update). Bybit has no order lists.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from decimal import Decimal as D
from typing import Any

import pytest

from services.order_gateway.venues.base import OrderReport, Rejected, StreamGap
from services.order_gateway.venues.bybit import BybitAdapter
from shared.messages import ListKind, OrderStatus, OrderType, PlaceOrder, PlaceOrderList, Side
from tests.helpers.bybit import subscribed, watch_subscriptions
from tests.helpers.sim import SimVenue, sim_fixture

sim = sim_fixture()
SYMBOL = "BTCUSDT"


@pytest.fixture
async def venue(sim: SimVenue) -> AsyncIterator[BybitAdapter]:
    adapter = BybitAdapter("bybit", sim.api_key, sim.api_secret, base_url=sim.base_url, timeout_s=5)
    await adapter.start()
    try:
        yield adapter
    finally:
        await adapter.close()


def stop_order(cid: str, side: Side, kind: OrderType, stop: D, price: D | None = None) -> PlaceOrder:
    return PlaceOrder(cid=cid, bot="b1", venue="bybit", symbol=SYMBOL, side=side, order_type=kind,
                      quantity=D("0.01"), price=price, stop_price=stop)  # fmt: skip


async def place(venue: BybitAdapter, cmd: PlaceOrder) -> OrderReport:
    return await venue.place(cmd, cmd.quantity, cmd.price, cmd.stop_price)


async def reports_until(events: AsyncIterator[Any], cid: str, status: OrderStatus) -> list[OrderReport]:
    """The order's reports from the user stream, up to the first with `status`."""
    seen: list[OrderReport] = []
    while not seen or seen[-1].status is not status:
        event = await asyncio.wait_for(anext(events), 10)
        if isinstance(event, OrderReport) and event.cid == cid:
            seen.append(event)
    return seen


@pytest.fixture
async def events(venue: BybitAdapter) -> AsyncIterator[AsyncIterator[Any]]:
    """The adapter's user stream, subscribed (pybit does not wait for the venue's answers)."""
    seen = watch_subscriptions(venue)
    stream = venue.user_events()
    try:
        assert isinstance(await asyncio.wait_for(anext(stream), 10), StreamGap)
        await asyncio.to_thread(subscribed, *seen[0], 3)
        yield stream
    finally:
        await stream.aclose()


async def test_a_sell_stop_waits_untriggered_then_fills_and_the_stream_tells_each_step(
    sim: SimVenue, venue: BybitAdapter, events: AsyncIterator[Any]
) -> None:
    trigger = await venue.last_price(SYMBOL) - 100
    placed = await place(venue, stop_order("b1-000001", Side.SELL, OrderType.STOP_LOSS, trigger))
    assert (placed.status, placed.order_type, placed.stop_price, placed.price, placed.orig_qty) == (
        OrderStatus.NEW, OrderType.STOP_LOSS, trigger, None, D("0.01")
    )  # fmt: skip
    sim.control.set_price(SYMBOL, str(trigger + 1))
    assert (await venue.query(SYMBOL, "b1-000001")).status is OrderStatus.NEW
    [open_order] = await venue.open_orders(SYMBOL)
    assert (open_order.cid, open_order.order_type, open_order.stop_price) == (
        "b1-000001", OrderType.STOP_LOSS, trigger
    )  # fmt: skip
    sim.control.set_price(SYMBOL, str(trigger))
    reports = await reports_until(events, "b1-000001", OrderStatus.FILLED)
    # Untriggered (placed), Triggered, then Filled: the first two are NEW to the gateway
    assert [(r.status, r.cum_filled_qty) for r in reports] == [
        (OrderStatus.NEW, 0), (OrderStatus.NEW, 0), (OrderStatus.FILLED, D("0.01"))
    ]  # fmt: skip
    assert all(r.order_type is OrderType.STOP_LOSS and r.stop_price == trigger for r in reports)
    filled = await venue.query(SYMBOL, "b1-000001")
    assert (filled.status, filled.cum_filled_qty, filled.fee_asset) == (OrderStatus.FILLED, D("0.01"), "USDT")
    assert filled.cum_quote_qty > 0


async def test_an_untriggered_stop_is_cancelled(venue: BybitAdapter, events: AsyncIterator[Any]) -> None:
    trigger = await venue.last_price(SYMBOL) - 100
    cmd = stop_order("b1-000002", Side.SELL, OrderType.STOP_LOSS_LIMIT, trigger, price=trigger - 10)
    placed = await place(venue, cmd)
    assert (placed.order_type, placed.price, placed.stop_price) == (
        OrderType.STOP_LOSS_LIMIT, trigger - 10, trigger
    )  # fmt: skip
    canceled = await venue.cancel(SYMBOL, "b1-000002")  # Bybit: Deactivated
    assert (canceled.status, canceled.cum_filled_qty, canceled.order_type) == (
        OrderStatus.CANCELED, 0, OrderType.STOP_LOSS_LIMIT
    )  # fmt: skip
    reports = await reports_until(events, "b1-000002", OrderStatus.CANCELED)
    assert [r.status for r in reports] == [OrderStatus.NEW, OrderStatus.CANCELED]
    assert await venue.open_orders(SYMBOL) == []


async def test_a_take_profit_triggers_on_a_rise(sim: SimVenue, venue: BybitAdapter) -> None:
    trigger = await venue.last_price(SYMBOL) + 100
    cmd = stop_order("b1-000003", Side.SELL, OrderType.TAKE_PROFIT_LIMIT, trigger, price=trigger)
    placed = await place(venue, cmd)
    assert (placed.status, placed.order_type) == (OrderStatus.NEW, OrderType.TAKE_PROFIT_LIMIT)
    sim.control.set_price(SYMBOL, str(trigger - 1))
    assert (await venue.query(SYMBOL, "b1-000003")).status is OrderStatus.NEW
    sim.control.set_price(SYMBOL, str(trigger))  # triggered: a limit sell at the trigger, resting
    sim.control.set_price(SYMBOL, str(trigger + 1))  # the market trades through it
    filled = await venue.query(SYMBOL, "b1-000003")
    assert (filled.status, filled.order_type, filled.cum_quote_qty) == (
        OrderStatus.FILLED, OrderType.TAKE_PROFIT_LIMIT, D("0.01") * trigger
    )  # fmt: skip


async def test_a_buy_stop_and_a_buy_take_profit_wait_on_their_sides(
    sim: SimVenue, venue: BybitAdapter
) -> None:
    last = await venue.last_price(SYMBOL)
    stop = await place(venue, stop_order("b1-000004", Side.BUY, OrderType.STOP_LOSS, last + 100))
    take = await place(venue, stop_order("b1-000005", Side.BUY, OrderType.TAKE_PROFIT, last - 100))
    assert (stop.order_type, take.order_type) == (OrderType.STOP_LOSS, OrderType.TAKE_PROFIT)
    sim.control.set_price(SYMBOL, str(last + 100))
    assert (await venue.query(SYMBOL, "b1-000004")).status is OrderStatus.FILLED
    assert (await venue.query(SYMBOL, "b1-000005")).status is OrderStatus.NEW


@pytest.mark.parametrize(
    ("side", "kind", "offset"),
    [
        (Side.SELL, OrderType.STOP_LOSS, 100),  # a sell stop above the price: it has fallen past it
        (Side.SELL, OrderType.TAKE_PROFIT, -100),
        (Side.BUY, OrderType.STOP_LOSS, -100),
        (Side.BUY, OrderType.TAKE_PROFIT, 100),
    ],
)
async def test_a_trigger_already_reached_is_refused_with_a_reason(
    sim: SimVenue, venue: BybitAdapter, side: Side, kind: OrderType, offset: int
) -> None:
    last = await venue.last_price(SYMBOL)
    with pytest.raises(Rejected) as info:
        await place(venue, stop_order("b1-000006", side, kind, last + offset))
    assert "would trigger at once" in info.value.message and str(last) in info.value.message
    assert sim.control.journal(account="bybit") == []  # nothing was sent


async def test_a_price_off_the_tick_is_refused_by_the_venue(venue: BybitAdapter) -> None:
    trigger = await venue.last_price(SYMBOL) - 100
    cmd = stop_order("b1-000007", Side.SELL, OrderType.STOP_LOSS_LIMIT, trigger, price=trigger - D("0.001"))
    with pytest.raises(Rejected) as info:
        await place(venue, cmd)
    assert info.value.code == 170134 and "decimal" in info.value.message


async def test_bybit_spot_has_no_order_lists(venue: BybitAdapter) -> None:
    assert venue.lists == frozenset()
    last = await venue.last_price(SYMBOL)
    legs = (
        PlaceOrder(cid="b1-000008", bot="b1", venue="bybit", symbol=SYMBOL, side=Side.SELL,
                   order_type=OrderType.LIMIT_MAKER, quantity=D("0.01"), price=last + 100),
        stop_order("b1-000009", Side.SELL, OrderType.STOP_LOSS, last - 100),
    )  # fmt: skip
    cmd = PlaceOrderList(
        list_cid="b1-000010", bot="b1", venue="bybit", symbol=SYMBOL, kind=ListKind.OCO, legs=legs
    )
    for call in (
        venue.place_list(cmd, [(D("0.01"), last + 100, None), (D("0.01"), None, last - 100)]),
        venue.cancel_list(SYMBOL, "b1-000010"),
        venue.query_list(SYMBOL, "b1-000010"),
    ):
        with pytest.raises(Rejected, match="Bybit spot has no order lists"):
            await call
