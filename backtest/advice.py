"""Why a backtest traded nothing: warnings a person reads beside the report.

A bot whose parameters do not fit the data (a grid whose range lies above every price, a
price condition never met) places no order, and a report of zeros does not say why. These
warnings give the data's price range, the parameters' range when the strategy has one
(`lower` and `upper`), and the bot's own last reason (its last decision, shared/strategy/decisions.py).
"""

from __future__ import annotations

from decimal import Decimal

from backtest.engine import RunResult, Setup
from shared.display import price as human_price

DEFAULT_BOT = Setup.bot  # a strategy file names no bot


def price_range(result: RunResult) -> tuple[Decimal, Decimal]:
    """Lowest low and highest high of the candles the run went over."""
    sr = result.series
    return sr.price(int(sr.low.min())), sr.price(int(sr.high.max()))


def warnings(result: RunResult) -> list[str]:
    """One line per thing that looks wrong: no order placed, or none of them filled."""
    if result.orders_placed and result.fills:
        return []
    tick = result.setup.filters.tick_size
    low, high = price_range(result)
    data = f"{human_price(low, tick)}–{human_price(high, tick)}"
    name = result.setup.strategy.name
    params = result.setup.params
    lower, upper = getattr(params, "lower", None), getattr(params, "upper", None)
    why = ""
    if isinstance(lower, Decimal) and isinstance(upper, Decimal):
        span = f"the {name}'s range {human_price(lower, tick)}–{human_price(upper, tick)}"
        if lower > high:
            why = f"{span} lies above every price in the data ({data})"
        elif upper < low:
            why = f"{span} lies below every price in the data ({data})"
    if not why:
        why = f"prices in the data: {data}"
    reasons = [d.text for d in result.decisions if d.topic]
    last = f"; its last reason: {reasons[-1]}" if reasons else ""
    bot = result.setup.bot
    who = f"the {name} bot" if bot == DEFAULT_BOT else bot
    if not result.orders_placed:
        return [f"{who} placed no order: {why}{last}{_no_base(result)}"]
    return [f"{who} placed {result.orders_placed} orders and none filled: {why}{last}"]


def _no_base(result: RunResult) -> str:
    """A strategy that sells a position it did not open (the fractal trailing stop's `quantity`)
    finds nothing to sell in a run that starts with no base: say how to give it one."""
    setup = result.setup
    if setup.base > 0 or not hasattr(setup.params, "quantity"):
        return ""
    qty = getattr(setup.params, "quantity", None) or "QTY"
    return (
        f"; the run started with no {setup.filters.base_asset} to sell: give it the position with "
        f"--base {qty} (or base = {qty} under [backtest])"
    )
