"""Turning wished-for amounts into orders the exchange accepts: the symbol's rounding rules
and minimums, applied in one place (shared.filters does the arithmetic).

Quantities round down to the step size, buy prices down and sell prices up to the tick size,
quote amounts down to 1e-8; anything that then breaks a filter (min quantity, min notional)
gives None: such an order is never sent.
"""

from __future__ import annotations

from decimal import ROUND_DOWN, Decimal

from shared.filters import FilterError, SymbolFilters
from shared.messages import Side

QUOTE_QUANTUM = Decimal("1E-8")


def round_quote(amount: Decimal) -> Decimal:
    """Quote amounts (market buys by quote, budgets) round down to 1e-8."""
    return amount.quantize(QUOTE_QUANTUM, rounding=ROUND_DOWN)


def qty_for_quote(filters: SymbolFilters, quote: Decimal, price: Decimal) -> Decimal:
    """Base quantity that quote buys at price, rounded down to the step size."""
    if price <= 0:
        return Decimal(0)
    return filters.round_qty(quote / price)


# Terms let through lately, with their filters, by the id of their price (kept alive by the
# entry, so the id names that very object). A strategy sizes an order with limit_terms and
# places it with limit_order, often a few steps later, which rounds and checks the very same
# objects again: they are multiples of the step and the tick, which rounding either way leaves
# as they are (such a multiple divides by its increment exactly, keeping its digits), and the
# check passed, so they are given back as they are. Entries are whole tuples, set or read in
# one operation each, so threads cannot mix two answers.
CHECKED_KEPT = 16
_checked: dict[int, tuple[SymbolFilters, tuple[Decimal, Decimal]]] = {}


def limit_terms(
    filters: SymbolFilters, side: Side, qty: Decimal, price: Decimal
) -> tuple[Decimal, Decimal] | None:
    """(qty, price) rounded for a limit order, or None when it breaks a filter once rounded."""
    known = _checked.get(id(price))
    if known is not None and known[1][1] is price and known[1][0] is qty and known[0] is filters:
        return known[1]
    return checked_terms(filters, filters.round_qty(qty), filters.round_price(price, side))


def checked_terms(filters: SymbolFilters, qty: Decimal, price: Decimal) -> tuple[Decimal, Decimal] | None:
    """limit_terms for a qty and price already rounded to the filters (by round_qty and
    round_price), which need no rounding again: (qty, price) as they are, or None."""
    try:
        filters.check(qty, price)
    except FilterError:
        return None
    terms = qty, price
    if len(_checked) >= CHECKED_KEPT:
        _checked.clear()
    _checked[id(price)] = (filters, terms)
    return terms


def market_qty(filters: SymbolFilters, qty: Decimal, ref_price: Decimal | None) -> Decimal | None:
    """Rounded quantity of a market order, or None when it breaks a filter at ref_price."""
    qty = filters.round_qty(qty)
    try:
        filters.check(qty, None, ref_price=None)
        if ref_price is not None:
            filters.check(qty, ref_price)
    except FilterError:
        return None
    return qty


def market_quote(filters: SymbolFilters, quote: Decimal) -> Decimal | None:
    """Rounded quote amount of a market buy by quote, or None when under the min notional."""
    quote = round_quote(quote)
    if quote <= 0 or quote < filters.min_notional:
        return None
    return quote
