"""Bybit V5 spot conditional orders (orderFilter=StopOrder): how a stop or take-profit is
sent, refused before sending, and read back from Bybit's order fields.

A conditional order has a `triggerPrice` and a direction, `triggerDirection` 1 (triggers when
the last price rises to it) or 2 (falls to it); once triggered it becomes its `orderType`,
Market (STOP_LOSS / TAKE_PROFIT) or Limit at `price` (the _LIMIT ones), under the same
orderId. The direction follows from side and type: a sell stop-loss and a buy take-profit
trigger on a fall, a sell take-profit and a buy stop on a rise. Bybit documents
`triggerDirection` for derivatives and arms a spot one in whichever direction the price lies,
so a trigger the price has already passed would be armed the wrong way round (a stop-loss
turned into a take-profit): the adapter refuses it before sending, as Binance refuses a stop
that "would trigger immediately", and sends the direction all the same.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from services.order_gateway.venues.base import Rejected
from shared.messages import OrderType, PlaceOrder, Side
from shared.money import fmt, venue_dec

CONDITIONAL = frozenset(
    {OrderType.STOP_LOSS, OrderType.STOP_LOSS_LIMIT, OrderType.TAKE_PROFIT, OrderType.TAKE_PROFIT_LIMIT}
)
STOP_LOSSES = frozenset({OrderType.STOP_LOSS, OrderType.STOP_LOSS_LIMIT})
MARKET_TRIGGERED = frozenset({OrderType.MARKET, OrderType.STOP_LOSS, OrderType.TAKE_PROFIT})
RISE, FALL = 1, 2  # Bybit's triggerDirection
STOP_ORDER = "StopOrder"  # the orderFilter of a spot conditional order


def trigger_direction(order_type: OrderType, side: Side) -> int:
    """RISE for a buy stop-loss and a sell take-profit, FALL for the other two."""
    return RISE if (order_type in STOP_LOSSES) == (side is Side.BUY) else FALL


def reached(direction: int, trigger: Decimal, last: Decimal) -> bool:
    return last >= trigger if direction == RISE else last <= trigger


def check_trigger(cmd: PlaceOrder, stop: Decimal, last: Decimal) -> None:
    """Rejected (nothing sent) when the last price is already at or past the trigger."""
    direction = trigger_direction(cmd.order_type, cmd.side)
    if reached(direction, stop, last):
        where = "rise" if direction == RISE else "fall"
        raise Rejected(
            f"{cmd.side.value} {cmd.order_type.value} at {fmt(stop)} would trigger at once: it waits for "
            f"a {where} to it and the last price is {fmt(last)}"
        )


def conditional_params(cmd: PlaceOrder, stop: Decimal) -> dict[str, Any]:
    """The order/create fields that make the order conditional."""
    return {
        "orderFilter": STOP_ORDER,
        "triggerPrice": fmt(stop),
        "triggerDirection": trigger_direction(cmd.order_type, cmd.side),
    }


def _direction(o: dict[str, Any], trigger: Decimal) -> int | None:
    """The order's triggerDirection; when Bybit leaves it 0 on spot, the side of the price it
    was placed at (lastPriceOnCreated); None when neither says."""
    direction = int(o.get("triggerDirection") or 0)
    if direction in (RISE, FALL):
        return direction
    created = venue_dec(o.get("lastPriceOnCreated"))
    if created > 0 and created != trigger:
        return RISE if trigger > created else FALL
    return None


def order_type_of(o: dict[str, Any]) -> OrderType | None:
    """Our order type of a Bybit order (order/realtime, order/history, the `order` topic).

    A conditional order (a triggerPrice; "0.00" is none) is a stop-loss or a take-profit by
    its side and direction; None when the direction cannot be read (the gateway's record then
    keeps the type it sent)."""
    market = o.get("orderType") == "Market"
    trigger = venue_dec(o.get("triggerPrice"))
    if trigger > 0:
        direction = _direction(o, trigger)
        if direction is None or not o.get("side"):
            return None
        stop_loss = (direction == RISE) == (o["side"] == "Buy")
        if market:
            return OrderType.STOP_LOSS if stop_loss else OrderType.TAKE_PROFIT
        return OrderType.STOP_LOSS_LIMIT if stop_loss else OrderType.TAKE_PROFIT_LIMIT
    if o.get("timeInForce") == "PostOnly":
        return OrderType.LIMIT_MAKER
    return OrderType.MARKET if market else OrderType.LIMIT
