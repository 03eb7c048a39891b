"""A candle as the matching engine lives through it: four waypoints and the liquidity of each.

The paper venue's market clock (services/exchange_sim/market.py) and the backtester
(backtest/engine.py) both hand the engine a candle this way, so a resting order fills, or
fills partly, on the same step and for the same quantity in both:
- the price path: open, then low and high (high first when the candle closes below its
  open), then close;
- the volume of each step: a quarter of the candle's volume rounded down to the step size,
  the closing step the rest;
- the liquidity of a step (what resting orders share per side): that volume times the
  participation rate, or a fixed `max_fill` when one is set;
- the reference price of the percent-price and market-notional checks: Binance's avgPrice,
  the volume-weighted close of the last five closed candles.
"""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal

from shared.money import ZERO, round_down

STEPS_PER_CANDLE = 4
AVG_PRICE_CANDLES = 5  # Binance avgPrice: 5 minutes
DEFAULT_PARTICIPATION = Decimal(1)


def waypoints(
    open_: Decimal, high: Decimal, low: Decimal, close: Decimal
) -> tuple[Decimal, Decimal, Decimal, Decimal]:
    """open -> low -> high -> close, or open -> high -> low -> close when the candle falls."""
    if close < open_:
        return open_, high, low, close
    return open_, low, high, close


def step_offset(k: int, interval_ms: int) -> int:
    """Milliseconds from the candle's open to its step k: 0, 1/4, 2/4 of the interval, then its
    last millisecond (the close)."""
    return interval_ms - 1 if k == STEPS_PER_CANDLE - 1 else k * interval_ms // STEPS_PER_CANDLE


def step_volumes(volume: Decimal, step_size: Decimal) -> tuple[Decimal, Decimal, Decimal, Decimal]:
    """The volume traded in each of the four steps (the public tape's quantities)."""
    qty = round_down(volume / STEPS_PER_CANDLE, step_size)
    return qty, qty, qty, volume - qty * (STEPS_PER_CANDLE - 1)


def step_liquidity(qty: Decimal, participation: Decimal, max_fill: Decimal | None) -> Decimal:
    """What resting orders may take at a step that traded `qty`."""
    return max_fill if max_fill is not None else qty * participation


def avg_price(closes_volumes: Sequence[tuple[Decimal, Decimal]], tick_size: Decimal) -> Decimal | None:
    """Volume-weighted close of the last closed candles given (Binance avgPrice), None if they
    traded nothing (the caller then uses the last close, or the last price)."""
    volume = weighted = ZERO  # one plain loop: the backtester asks once a candle
    for close, qty in closes_volumes[-AVG_PRICE_CANDLES:]:
        volume += qty
        weighted += close * qty
    if volume > 0:
        return round_down(weighted / volume, tick_size / 1000)
    return None
