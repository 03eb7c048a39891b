"""Turning a PlaceOrder into exactly what may be sent: rounded to the symbol's filters and
checked, or refused with a reason (pure, so it is tested without a venue)."""

from __future__ import annotations

from decimal import Decimal
from typing import NamedTuple

from shared.filters import FilterError, SymbolFilters
from shared.messages import MARKET, OrderType, PlaceOrder

NEEDS_PRICE = {OrderType.LIMIT, OrderType.LIMIT_MAKER, OrderType.STOP_LOSS_LIMIT, OrderType.TAKE_PROFIT_LIMIT}
NEEDS_STOP = {
    OrderType.STOP_LOSS,
    OrderType.STOP_LOSS_LIMIT,
    OrderType.TAKE_PROFIT,
    OrderType.TAKE_PROFIT_LIMIT,
}


class Prepared(NamedTuple):
    qty: Decimal | None  # None: market order by quote amount
    price: Decimal | None
    stop: Decimal | None


def prepare(cmd: PlaceOrder, filters: SymbolFilters, ref_price: Decimal | None) -> Prepared:
    """Round quantity down, buy prices down and sell prices up; raise FilterError with the reason.

    Without ref_price (no last price) the checks that need the market are left out."""
    side = cmd.side
    price = stop = None
    if cmd.order_type in NEEDS_PRICE:
        if cmd.price is None:
            raise FilterError(f"{cmd.order_type.value} order needs a price")
        price = filters.round_price(cmd.price, side)
    if cmd.order_type in NEEDS_STOP:
        if cmd.stop_price is None:
            raise FilterError(f"{cmd.order_type.value} order needs a stop price")
        stop = filters.round_price(cmd.stop_price, side)
    if cmd.order_type is MARKET and cmd.quantity is None:
        if cmd.quote_quantity is None or cmd.quote_quantity <= 0:
            raise FilterError("market order needs a quantity or a quote quantity")
        if cmd.quote_quantity < filters.min_notional:
            raise FilterError(
                f"{cmd.symbol}: NOTIONAL: {cmd.quote_quantity} below minimum {filters.min_notional}"
            )
        return Prepared(None, None, None)
    if cmd.quantity is None:
        raise FilterError(f"{cmd.order_type.value} order needs a quantity")
    qty = filters.round_qty(cmd.quantity)
    filters.check(qty, price, ref_price=ref_price, side=side)  # market orders: notional at the last price
    return Prepared(qty, price, stop)
