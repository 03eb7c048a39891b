"""The DCA plan ("imprimir_estrategia"): every level of one cycle for a reference price.

Built with the ladder functions the strategy itself runs (strategies/dca_ladder.py), assuming
the opening market buy fills at the reference price and each safety order at its limit, fees
paid in quote at the `fee` rate. `rows` is every level 0..N as if the budget did not exist and
`total_cost` what the cycle then costs if every level fills; `placed` is the ladder the bot really
places within `budget` (its last level possibly cut to what remains), `cut_level` where the two part.
"""

from __future__ import annotations

from decimal import Decimal

import msgspec

from shared.filters import SymbolFilters
from shared.money import ZERO
from shared.strategy.sizing import qty_for_quote, round_quote
from strategies.dca_ladder import LadderStop, next_target, reinvest_bonus, safety_order, take_profit_price
from strategies.dca_params import DcaParams


class PlanRow(msgspec.Struct, frozen=True):
    level: int  # 0 = the opening market buy
    step: Decimal | None  # drop from the previous buy (None for level 0)
    drop: Decimal  # cumulative drop from the reference price
    price: Decimal
    quote: Decimal  # quote spent at this level (qty × price)
    qty: Decimal
    cum_cost: Decimal  # quote spent up to here, fees included
    avg_entry: Decimal
    target: Decimal
    tp_price: Decimal
    rise: Decimal  # rise needed from this level's price to the take profit
    profit: Decimal  # net profit if the take profit fills after this level
    budget_cut: bool = False


class Plan(msgspec.Struct, frozen=True):
    ref_price: Decimal
    rows: list[PlanRow]  # every level 0..N as if the budget did not exist
    total_cost: Decimal  # cost of the cycle if every level in `rows` fills
    placed: list[PlanRow]  # the levels the bot really places within its budget (the last may be cut)
    placed_cost: Decimal  # cost of the cycle if every placed level fills
    cut_level: int | None  # first level the budget changes (cut to what remains, or not placed)
    stop_level: int | None  # first level not placed at all (None: every level is placed)
    stop_reason: LadderStop  # why the ladder stops there (NONE: it does not)
    bonus: Decimal = ZERO


def _row(
    p: DcaParams,
    filters: SymbolFilters,
    level: int,
    step: Decimal | None,
    price: Decimal,
    qty: Decimal,
    ref: Decimal,
    cum: tuple[Decimal, Decimal],
    target: Decimal,
    cut: bool,
) -> PlanRow:
    cum_cost, cum_qty = cum
    avg = cum_cost / cum_qty
    tp = take_profit_price(filters, avg, target)
    proceeds = cum_qty * tp
    return PlanRow(
        level=level,
        step=step,
        drop=1 - price / ref,
        price=price,
        quote=qty * price,
        qty=qty,
        cum_cost=cum_cost,
        avg_entry=avg,
        target=target,
        tp_price=tp,
        rise=tp / price - 1,
        profit=proceeds - proceeds * p.fee - cum_cost,
        budget_cut=cut,
    )


def _ladder(
    p: DcaParams, ref_price: Decimal, filters: SymbolFilters, bonus: Decimal, free_quote: Decimal | None
) -> tuple[list[PlanRow], int | None, LadderStop]:
    """The rows the strategy's own ladder functions give, and where / why the ladder stops."""
    qty = qty_for_quote(filters, round_quote(p.base_order_quote + bonus), ref_price)
    if qty <= 0:
        raise ValueError(f"base_order_quote {p.base_order_quote} buys nothing at {ref_price}")
    spent = qty * ref_price
    cum_cost, cum_qty = spent + spent * p.fee, qty
    target = p.take_profit
    rows = [_row(p, filters, 0, None, ref_price, qty, ref_price, (cum_cost, cum_qty), target, False)]
    committed = spent
    prev_price, prev_step, prev_raw = ref_price, None, p.base_order_quote
    for level in range(1, p.max_safety_orders + 1):
        so, why = safety_order(
            p,
            filters,
            level=level,
            prev_price=prev_price,
            prev_step=prev_step,
            prev_raw=prev_raw,
            committed=committed,
            bonus=bonus,
            free_quote=None if free_quote is None else free_quote - committed,
        )
        if so is None:
            return rows, level, why
        quote = so.qty * so.price
        cum_cost, cum_qty = cum_cost + quote + quote * p.fee, cum_qty + so.qty
        committed += quote
        target = next_target(p, target)
        rows.append(
            _row(
                p,
                filters,
                level,
                so.step,
                so.price,
                so.qty,
                ref_price,
                (cum_cost, cum_qty),
                target,
                so.budget_cut,
            )
        )
        prev_price, prev_step, prev_raw = so.price, so.step, so.raw_quote
    return rows, None, LadderStop.NONE


def build_plan(
    p: DcaParams,
    ref_price: Decimal,
    filters: SymbolFilters,
    *,
    profit_total: Decimal = ZERO,
    free_quote: Decimal | None = None,
) -> Plan:
    """The plan of one cycle at ref_price (profit_total: realised profit before it, for the bonus;
    free_quote: the free balance, which limits the ladder when budget is 0)."""
    bonus = reinvest_bonus(p, profit_total)
    unlimited = msgspec.structs.replace(p, budget=ZERO)
    rows, _, _ = _ladder(unlimited, ref_price, filters, bonus, None)
    placed, stop_level, stop_reason = _ladder(p, ref_price, filters, bonus, free_quote)
    cut = next(
        (r.level for r in placed if r.budget_cut), stop_level if stop_reason is LadderStop.BUDGET else None
    )
    return Plan(
        ref_price=ref_price,
        rows=rows,
        total_cost=rows[-1].cum_cost,
        placed=placed,
        placed_cost=placed[-1].cum_cost,
        cut_level=cut,
        stop_level=stop_level,
        stop_reason=stop_reason,
        bonus=bonus,
    )
