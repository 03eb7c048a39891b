"""An order's terms — what makes two requests under one client order id the same order.

After a power cut a bot may ask again for an order the venue already holds (Redis lost the
record, the venue kept the order). Asked again with the same terms it is the same order and
must be answered with that order's state; asked with other terms the id names two orders, and
the request is a conflict. The bot (claiming an adopted order) and the order gateway (the
existing-record branch of a place) decide this with the one rule below.
"""

from __future__ import annotations

from decimal import Decimal
from typing import NamedTuple

from shared.messages import OrderType, PlaceOrder, Side


class OrderTerms(NamedTuple):
    symbol: str
    side: Side
    order_type: OrderType
    quantity: Decimal | None  # base; None for a market order sized by quote
    quote_quantity: Decimal | None  # quote of a market order sized by quote, else None
    price: Decimal | None
    stop_price: Decimal | None


def terms_of(cmd: PlaceOrder) -> OrderTerms:
    return OrderTerms(
        cmd.symbol, cmd.side, cmd.order_type, cmd.quantity, cmd.quote_quantity, cmd.price, cmd.stop_price
    )


def _same(a: Decimal | None, b: Decimal | None) -> bool:
    """None and zero are the same absence (venues write "0" for a price a market order lacks)."""
    return (a or Decimal(0)) == (b or Decimal(0))


def same_terms(asked: OrderTerms, held: OrderTerms) -> bool:
    """Whether `asked` (a request) names the order `held` (a record or the venue's report).

    A market order sized by quote compares its quote amount (its base quantity is what the
    venue filled, not what was asked); every other order compares its base quantity. Time in
    force is not compared: venues do not all report it."""
    if (asked.symbol, asked.side, asked.order_type) != (held.symbol, held.side, held.order_type):
        return False
    if not (_same(asked.price, held.price) and _same(asked.stop_price, held.stop_price)):
        return False
    if asked.quantity is None and asked.quote_quantity is not None:
        return _same(asked.quote_quantity, held.quote_quantity)
    return _same(asked.quantity, held.quantity)


def terms_key(terms: OrderTerms) -> str:
    """A short stable text of the terms (for remembering refused ones in a bot's state)."""
    parts = [terms.side.value, terms.order_type.value]
    for value in (terms.quantity, terms.quote_quantity, terms.price, terms.stop_price):
        parts.append("" if value is None else format(value.normalize(), "f"))
    return "|".join(parts)
