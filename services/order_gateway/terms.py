"""Is a replayed PlaceOrder the order its cid's record already names? (shared/order_terms.py)

After a power cut a bot may reissue a cid it had used for another order (its sequence rolled
back with its state), or ask again for an order the gateway adopted from the venue. The record
is compared with the command on the terms that make an order (symbol, side, type, quantity or
quote quantity, price, stop price), the command both as it came and as `prepare()` rounds it:
a record holds the venue's rounded terms once the venue answered, the raw request before that.
An adopted record has no request, only the venue's terms, which is why those are kept.
"""

from __future__ import annotations

from decimal import Decimal

import msgspec

from services.order_gateway.validate import prepare
from shared.filters import FilterError, SymbolFilters
from shared.messages import OrderType, PlaceOrder
from shared.money import MoneyError, fmt
from shared.order_record import OrderRecord
from shared.order_terms import OrderTerms, same_terms, terms_of


def record_terms(record: OrderRecord) -> OrderTerms:
    """The terms a record holds (the venue's, once it answered). A market order sized by quote
    is its quote amount: its base quantity is what it filled, not what was asked."""
    by_quote = record.order_type is OrderType.MARKET and bool(record.orig_quote_qty)
    return OrderTerms(
        record.symbol,
        record.side,  # type: ignore[arg-type]  # None never equals a command's side
        record.order_type,  # type: ignore[arg-type]
        None if by_quote else record.orig_qty,
        record.orig_quote_qty if by_quote else None,
        record.price,
        record.stop_price,
    )


def held_terms(record: OrderRecord) -> list[OrderTerms]:
    """Every spelling of the record's order: its current terms and, unless adopted, the
    request it was created from (before the venue rounded anything)."""
    out = [record_terms(record)]
    if record.request:
        try:
            out.append(terms_of(record.place_request()))
        except (msgspec.ValidationError, msgspec.DecodeError):
            pass  # an older version's request that no longer decodes: its fields still count
    return out


def rounded_terms(cmd: PlaceOrder, filters: SymbolFilters) -> OrderTerms | None:
    """The command's terms as they would be sent, or None when it could not be sent at all."""
    try:
        qty, price, stop = prepare(cmd, filters, None)
    except (FilterError, ArithmeticError, MoneyError):
        return None
    quote = cmd.quote_quantity if qty is None else None
    return OrderTerms(cmd.symbol, cmd.side, cmd.order_type, qty, quote, price, stop)


def matches(asked: list[OrderTerms], record: OrderRecord) -> bool:
    """Whether any spelling of the command names the record's order."""
    held = held_terms(record)
    return any(same_terms(a, h) for a in asked for h in held)


def describe(terms: OrderTerms) -> str:
    """`BUY LIMIT 0.001 BTCUSDT @ 30000 stop 29000` (for reasons and notifications)."""
    side = terms.side.value if terms.side else "?"
    kind = terms.order_type.value if terms.order_type else "?"
    size = f"{_num(terms.quote_quantity)} quote" if terms.quote_quantity else _num(terms.quantity)
    text = f"{side} {kind} {size} {terms.symbol}"
    if terms.price:
        text += f" @ {_num(terms.price)}"
    if terms.stop_price:
        text += f" stop {_num(terms.stop_price)}"
    return text


def _num(value: Decimal | None) -> str:
    return "?" if value is None else fmt(value)
