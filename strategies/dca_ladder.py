"""The DCA ladder arithmetic of docs/STRATEGIES.md §1, shared by the strategy and its plan.

Every number a DCA cycle uses — safety order sizes, steps, targets, prices, the budget cut,
the reinvest bonus — comes from these functions, so `automata dca plan` shows exactly the
orders the bot will send. The multiplier clamps apply to each product (the first values are
the parameters themselves); the reinvest bonus is added after the clamp.
"""

from __future__ import annotations

from decimal import Decimal
from enum import StrEnum

import msgspec

from shared.filters import SymbolFilters
from shared.messages import BUY
from shared.money import ZERO, round_up
from shared.strategy.sizing import checked_terms, qty_for_quote, round_quote
from strategies.dca_params import DcaParams


def clamp(value: Decimal, low: Decimal, high: Decimal) -> Decimal:
    """max(low, min(value, high)), the very object they would give back, without their two calls."""
    capped = high if high < value else value
    return capped if capped > low else low


def next_quote(p: DcaParams, prev_raw: Decimal, level: int) -> Decimal:
    """Quote size of safety order `level` before the bonus: previous × multiplier, clamped
    (or the curve from base_order_quote to order_size_max when size_curve is set)."""
    if p.size_curve is not None and p.max_safety_orders > 0:
        x = Decimal(level) / Decimal(p.max_safety_orders)
        raw = p.base_order_quote + (p.order_size_max - p.base_order_quote) * x**p.size_curve
        return clamp(raw, p.order_size_min, p.order_size_max)
    return clamp(prev_raw * p.order_size_multiplier, p.order_size_min, p.order_size_max)


def next_step(p: DcaParams, prev_step: Decimal | None) -> Decimal:
    """Drop for the next safety order: `step` for the first, then previous × multiplier, clamped."""
    if prev_step is None or prev_step <= 0:
        return p.step
    return clamp(prev_step * p.step_multiplier, p.step_min, p.step_max)


def next_target(p: DcaParams, prev_target: Decimal) -> Decimal:
    """Take-profit target after a safety fill: previous × multiplier, clamped."""
    return clamp(prev_target * p.take_profit_multiplier, p.take_profit_min, p.take_profit_max)


def take_profit_price(filters: SymbolFilters, avg_entry: Decimal, target: Decimal) -> Decimal:
    """avg_entry × (1 + target), rounded up to the tick (a sell never asks less)."""
    return round_up(avg_entry * (1 + target), filters.tick_size)


def reinvest_bonus(p: DcaParams, profit_total: Decimal) -> Decimal:
    """Quote added to every buy of the next cycle: realised profit so far ÷ (max_safety_orders + 1)."""
    if not p.reinvest_profit or profit_total <= 0:
        return ZERO
    return round_quote(profit_total / (p.max_safety_orders + 1))


class SafetyOrder(msgspec.Struct, frozen=True):
    level: int
    step: Decimal  # drop from the previous buy price
    raw_quote: Decimal  # size before bonus and budget cut (the chain continues from it)
    quote: Decimal  # quote amount asked for (bonus added, budget cut applied)
    price: Decimal  # limit price, rounded down to the tick
    qty: Decimal  # base quantity, rounded down to the step size
    budget_cut: bool = False


class LadderStop(StrEnum):
    """Why the safety ladder stops at a level."""

    NONE = ""  # it does not
    MAX = "max_safety_orders"
    BUDGET = "budget"
    FILTERS = "min_notional"  # the order would be under the exchange's minimums


_FITS = LadderStop.NONE  # read on every safety order placed: a global, not a class lookup


def safety_order(
    p: DcaParams,
    filters: SymbolFilters,
    *,
    level: int,
    prev_price: Decimal,
    prev_step: Decimal | None,
    prev_raw: Decimal,
    committed: Decimal,
    bonus: Decimal = ZERO,
    free_quote: Decimal | None = None,
) -> tuple[SafetyOrder | None, LadderStop]:
    """Safety order `level` after a buy at prev_price, or (None, why the ladder stops there).

    committed: quote this cycle already spent or reserved. The budget (or, with budget 0, the
    free quote balance when known) cuts the order to what remains if that is still at least
    order_size_min and the min notional; otherwise the ladder stops."""
    if level > p.max_safety_orders:
        return None, LadderStop.MAX
    step = next_step(p, prev_step)
    raw = next_quote(p, prev_raw, level)
    quote = raw + bonus
    price = filters.round_price(prev_price * (1 - step), BUY)
    remaining = p.budget - committed if p.budget > 0 else free_quote
    cut = False
    if remaining is not None and quote > remaining:
        remaining = round_quote(remaining)
        if remaining < p.order_size_min or remaining < filters.min_notional or remaining <= 0:
            return None, LadderStop.BUDGET
        quote, cut = remaining, True
    terms = checked_terms(filters, qty_for_quote(filters, quote, price), price)  # both rounded already
    if terms is None:
        return None, LadderStop.FILTERS
    return SafetyOrder(level, step, raw, quote, price, terms[0], cut), _FITS
