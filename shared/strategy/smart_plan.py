"""The arithmetic of a smart trade's exits (smart.py acts on it): how the bought quantity is
split between the targets, where each stop starts, where it should be after a candle, and
whether a move is worth its cancel-then-replace; and why an entry could not be sent. Pure
functions of the trade and the filters."""

from __future__ import annotations

from decimal import Decimal

from shared.exits import Exits
from shared.filters import SymbolFilters
from shared.messages import Side
from shared.money import ZERO
from shared.strategy.context import StrategyContext
from shared.strategy.sizing import market_qty
from shared.strategy.smart_state import Slot, SmartTrade
from shared.strategy.state import StrategyState

_ONE = Decimal(1)
CHURN = Decimal(4)  # a trailing move must be at least trailing / CHURN of the price


def sell_price(filters: SymbolFilters, value: Decimal) -> Decimal:
    """An exit's price, rounded as a sell's (up to the tick)."""
    return filters.round_price(value, Side.SELL)


def sellable_qty(filters: SymbolFilters, qty: Decimal, price: Decimal) -> bool:
    """Whether qty (rounded down) is an order the venue takes at price."""
    return market_qty(filters, qty, price) is not None


def first_stop(exits: Exits, entry: Decimal) -> Decimal | None:
    """The stop when the entry fills: the fixed stop, or stop_loss / trailing_stop below the entry
    (the highest of those given), None without any."""
    found = [exits.stop_price] if exits.stop_price is not None else []
    found += [entry * (_ONE - f) for f in (exits.stop_loss, exits.trailing_stop) if f is not None]
    return max(found) if found else None


def _shares(exits: Exits) -> list[Decimal]:
    """Each target's share of the position: its own, or an equal part of what the others leave."""
    given = sum((t.share for t in exits.take_profits if t.share is not None), ZERO)
    free = [t for t in exits.take_profits if t.share is None]
    each = (_ONE - given) / len(free) if free else ZERO
    return [t.share if t.share is not None else each for t in exits.take_profits]


def plan_slots(filters: SymbolFilters, exits: Exits, qty: Decimal, entry: Decimal) -> tuple[Slot, ...]:
    """The slots of a trade that bought qty at entry: one per target (its share rounded down to
    the step, the last one the rest; a part too small to sell goes to the next), the last one
    stop-only and trailing with a trailing take profit; one stop-only slot without targets."""
    stop = first_stop(exits, entry)
    stop = sell_price(filters, stop) if stop is not None else None
    if not exits.take_profits:
        return (Slot(qty=qty, stop=stop),)
    targets = [
        sell_price(filters, t.price if t.price is not None else entry * (_ONE + (t.gain or ZERO)))
        for t in exits.take_profits
    ]
    slots: list[Slot] = []
    carry, used = ZERO, ZERO
    last = len(targets) - 1
    for i, (target, share) in enumerate(zip(targets, _shares(exits), strict=True)):
        part = qty - used if i == last else filters.round_qty(qty * share) + carry
        if i < last and not sellable_qty(filters, part, target):
            carry = part
            continue
        carry, used = ZERO, used + part
        if i == last and exits.trailing_take_profit is not None:
            slots.append(Slot(qty=part, activate=target, stop=stop))
        else:
            slots.append(Slot(qty=part, target=target, stop=stop))
    if len(slots) > 1 and not sellable_qty(
        filters, slots[-1].qty, slots[-1].target or slots[-1].activate or entry
    ):
        tail = slots.pop()  # too small to sell alone: the slot before sells it too
        slots[-1] = Slot(qty=slots[-1].qty + tail.qty, target=slots[-1].target, activate=tail.activate,
                         stop=stop)  # fmt: skip
    return tuple(slots)


def wanted_stop(trade: SmartTrade, slot: Slot, filters: SymbolFilters) -> tuple[Decimal, str, Decimal] | None:
    """Where the slot's stop should be now (never below where it is), why, and the trailing
    fraction that limits the move's churn (0 for a break-even move); None for no move."""
    exits = trade.exits
    found: list[tuple[Decimal, str, Decimal]] = []
    if exits.trailing_stop is not None:
        found.append((trade.peak * (_ONE - exits.trailing_stop), "trailing stop", exits.trailing_stop))
    if exits.break_even and any(s.hit for s in trade.slots):
        found.append((trade.price, "break-even after the first target", ZERO))
    if slot.trailing and exits.trailing_take_profit is not None:
        ttp = exits.trailing_take_profit
        found.append((trade.peak * (_ONE - ttp), "trailing take profit", ttp))
    if not found:
        return None
    value, why, fraction = max(found, key=lambda f: f[0])
    new = sell_price(filters, value)
    if slot.stop is not None and new <= slot.stop:
        return None
    return new, why, fraction


def worth_moving(old: Decimal | None, new: Decimal, fraction: Decimal, tick: Decimal) -> bool:
    """A move limits churn: at least one tick, and at least fraction / CHURN of the new price."""
    if old is None:
        return True
    return new - old >= tick and new - old >= new * fraction / CHURN


def entry_refusal(
    state: StrategyState,
    ctx: StrategyContext,
    quote: Decimal | None,
    qty: Decimal | None,
    price: Decimal | None,
) -> str:
    """Why open_trade sent no entry, for a person: the order helpers only give None, and a bot
    whose amount is 0, negative or under the minimum order would otherwise wait for a trade
    that never comes without a word."""
    if not state.running:
        return f"{ctx.bot} is {state.mode}"
    f, ref = ctx.filters, price or ctx.last_price
    spend = quote if quote is not None else (qty or ZERO) * ref if ref is not None else None
    if (quote if quote is not None else qty or ZERO) <= 0:
        return (
            f"the entry's {'quote amount' if quote is not None else 'quantity'} {quote or qty} is not above 0"
        )
    if spend is not None and spend < f.min_notional:
        return (f"the entry ({ctx.quote(spend)} {ctx.quote_asset}) is under {ctx.symbol}'s minimum order of "
                f"{f.min_notional.normalize():f} {ctx.quote_asset}")  # fmt: skip
    if qty is not None and f.round_qty(qty) < max(f.min_qty, f.step_size):
        return (f"the entry's quantity {qty:f} is under {ctx.symbol}'s minimum of "
                f"{max(f.min_qty, f.step_size).normalize():f} {ctx.base_asset}")  # fmt: skip
    if quote is not None and price is not None and f.round_qty(quote / price) < max(f.min_qty, f.step_size):
        return (
            f"the entry ({ctx.quote(quote)} {ctx.quote_asset}) buys less than {ctx.symbol}'s minimum quantity"
        )
    return (f"the entry breaks {ctx.symbol}'s filters (price or quantity out of the venue's bounds), or the venue "
            "refused this very order lately (held back, tried again later)")  # fmt: skip
