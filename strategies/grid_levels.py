"""Grid geometry (docs/STRATEGIES.md §3): the level prices, the base quantity of each grid interval, and
which interval starts with a buy or a sell when the grid starts at a given price.

Kept apart from the state machine in `strategies/grid.py` so the geometry can be checked and
tested without an exchange. Everything is Decimal and rounded once, here, with the symbol's
filters: level prices down to the tick (a tick-aligned price is then valid for both sides),
quantities down to the step. A grid that the filters would break is refused up front with the
reason (`GridError`), rather than failing level by level at the exchange.
"""

from __future__ import annotations

from decimal import Decimal, localcontext
from enum import StrEnum

from shared.filters import FilterError, SymbolFilters
from shared.messages import Side


class GridError(ValueError):
    """The grid parameters cannot make a valid grid for this symbol; the message says why."""


class Spacing(StrEnum):
    ARITHMETIC = "arithmetic"  # equal price steps
    GEOMETRIC = "geometric"  # equal ratio steps (equal % between levels)


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
    prices = [filters.round_price(p, Side.BUY) for p in raw_levels(lower, upper, levels, spacing)]
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


def nearest_level(prices: list[Decimal], price: Decimal) -> int:
    """The level closest to price (the lower one on a tie): the level left empty at the start."""
    return min(range(len(prices)), key=lambda i: (abs(prices[i] - price), i))


def starting_sides(prices: list[Decimal], price: Decimal) -> list[Side]:
    """For each interval j (level j to j+1), the order it holds when the grid starts at `price`:
    BUY (a buy at level j) below the nearest level, SELL (a sell at level j+1) above it.

    Leaving the nearest level empty gives every interval exactly one order, a buy at its lower
    level or a sell at its upper one. That one-per-interval invariant is what makes
    "buy filled at i -> sell at i+1" and "sell filled at i -> buy at i-1" never stack two orders.
    """
    empty = nearest_level(prices, price)
    return [Side.BUY if j < empty else Side.SELL for j in range(len(prices) - 1)]
