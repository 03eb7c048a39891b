"""Grid geometry (STRATEGIES.md §3): the level prices, the base quantity of each grid interval, and
which level gets a buy or a sell when the grid starts at a given price.

Kept apart from the state machine in `strategies/grid.py` so the plan can be printed, checked
and tested without an exchange. Everything is Decimal and rounded once, here, with the symbol's
filters: level prices down to the tick (a tick-aligned price is then valid for both sides),
quantities down to the step. A grid that the filters would break is refused up front with the
reason (`GridError`), rather than failing level by level at the exchange.
"""

from __future__ import annotations

from decimal import Decimal, localcontext
from enum import StrEnum
from typing import NamedTuple

from shared.filters import FilterError, SymbolFilters


class GridError(ValueError):
    """The grid parameters cannot make a valid grid for this symbol; the message says why."""


class Spacing(StrEnum):
    ARITHMETIC = "arithmetic"  # equal price steps
    GEOMETRIC = "geometric"  # equal ratio steps (equal % between levels)


class Slot(NamedTuple):
    """The order a level holds when the grid starts: `side` is "BUY", "SELL" or "" (the level left empty)."""

    level: int
    side: str


def raw_levels(lower: Decimal, upper: Decimal, levels: int, spacing: Spacing | str) -> list[Decimal]:
    """`levels` prices from lower to upper inclusive, before rounding."""
    if levels < 2:
        raise GridError(f"levels must be at least 2, got {levels}")
    if not (0 < lower < upper):
        raise GridError(f"need 0 < lower < upper, got lower={lower} upper={upper}")
    spacing = Spacing(spacing)
    n = levels - 1
    if spacing is Spacing.ARITHMETIC:
        step = (upper - lower) / n
        return [lower + step * i for i in range(n)] + [upper]
    with localcontext() as ctx:
        ctx.prec = 40  # a fractional power; the extra digits vanish in the tick rounding below
        ratio = (upper / lower) ** (Decimal(1) / n)
        return [+(lower * ratio**i) for i in range(n)] + [upper]


def level_prices(
    lower: Decimal, upper: Decimal, levels: int, spacing: Spacing | str, filters: SymbolFilters
) -> list[Decimal]:
    """The level prices rounded down to the tick; refused if two levels would become one."""
    prices = [filters.round_price(p, "BUY") for p in raw_levels(lower, upper, levels, spacing)]
    for below, above in zip(prices, prices[1:], strict=False):
        if not below < above:
            raise GridError(
                f"levels {below} and {above} collapse at tick {filters.tick_size}: use fewer levels or a wider range"
            )
    if prices[0] <= 0:
        raise GridError(
            f"lowest level {prices[0]} is not positive after rounding to tick {filters.tick_size}"
        )
    return prices


def interval_quantities(
    prices: list[Decimal], quote_per_level: Decimal, filters: SymbolFilters
) -> list[Decimal]:
    """Base quantity of each interval j (bought at level j, sold at level j+1): quote_per_level / price_j.

    The quantity is fixed per interval so the sell one level up always sells what the buy
    below it bought; both orders are checked against the filters (min qty, min notional).
    """
    if quote_per_level <= 0:
        raise GridError(f"quote_per_level must be positive, got {quote_per_level}")
    quantities = []
    for j in range(len(prices) - 1):
        qty = filters.round_qty(quote_per_level / prices[j])
        try:
            filters.check(qty, prices[j])
            filters.check(qty, prices[j + 1])
        except FilterError as exc:
            raise GridError(f"level {j} at {prices[j]}: {exc}; raise quote_per_level") from exc
        quantities.append(qty)
    return quantities


def initial_slots(prices: list[Decimal], price: Decimal) -> list[Slot]:
    """Which side each level holds when the grid starts at `price`.

    Buys rest below the price and sells above; the level nearest the price stays empty so each
    interval (j, j+1) holds exactly one order, a buy at j or a sell at j+1. That one-per-interval
    invariant is what makes "buy filled at i -> sell at i+1" never stack two orders on a level.
    The top level can only sell and the bottom one only buy.
    """
    empty = min(range(len(prices)), key=lambda i: (abs(prices[i] - price), i))
    return [Slot(i, "" if i == empty else "BUY" if i < empty else "SELL") for i in range(len(prices))]
