"""Bill Williams fractals and the trailing-stop rule built on them (STRATEGIES.md §2).

A bullish ("down") fractal at bar N is a low strictly lower than the lows of bars N-2, N-1,
N+1 and N+2; a bearish ("up") fractal is a high strictly higher than the four highs around
it. Both are therefore known only when bar N+2 has closed: `Fractal.known_at` is that bar,
and nothing here ever looks at a bar after the one being processed, so the strategy, the
backtester and the chart all see a fractal at the same moment.

Pure functions over any ordered values (Decimal in the strategy, float in the chart), no I/O.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, NamedTuple, Protocol, TypeVar


class _Ordered(Protocol):
    def __lt__(self, other: Any, /) -> bool: ...
    def __gt__(self, other: Any, /) -> bool: ...


P = TypeVar("P", bound=_Ordered)

#: bars on each side of the middle one; the seed's windows are 5 bars wide
WING = 2


class Fractal(NamedTuple):
    """A fractal at bar `index` (its `price` is that bar's low or high), known once bar `known_at` closed."""

    index: int
    price: Any
    known_at: int


def is_down_fractal(lows: Sequence[P], n: int) -> bool:
    """True if lows[n] is strictly below the two lows before and the two after it."""
    if n < WING or n + WING >= len(lows):
        return False
    low = lows[n]
    return all(low < lows[n + k] for k in (-2, -1, 1, 2))


def is_up_fractal(highs: Sequence[P], n: int) -> bool:
    """True if highs[n] is strictly above the two highs before and the two after it."""
    if n < WING or n + WING >= len(highs):
        return False
    high = highs[n]
    return all(high > highs[n + k] for k in (-2, -1, 1, 2))


def down_fractals(lows: Sequence[P]) -> list[Fractal]:
    """Every bullish (down) fractal of the series, oldest first (the seed's `down_fractals`)."""
    return [Fractal(n, lows[n], n + WING) for n in range(WING, len(lows) - WING) if is_down_fractal(lows, n)]


def up_fractals(highs: Sequence[P]) -> list[Fractal]:
    """Every bearish (up) fractal of the series, oldest first."""
    return [Fractal(n, highs[n], n + WING) for n in range(WING, len(highs) - WING) if is_up_fractal(highs, n)]


def newest_confirmed_down(lows: Sequence[P]) -> P | None:
    """The down fractal that the close of the last bar confirms (bar len-3), if it is one.

    Called once per closed candle with the last five lows, this is the incremental form of
    `down_fractals`: each fractal is reported exactly once, on its `known_at` bar.
    """
    n = len(lows) - 1 - WING
    return lows[n] if is_down_fractal(lows, n) else None


def pick_stop(
    fractal_prices_oldest_first: Sequence[P],
    *,
    entry: P,
    price: P,
    current_stop: P | None,
) -> P | None:
    """The stop to move to now, or None to keep the current one.

    The rule of §2: the newest fractal that is above the entry and below the current price is
    the stop, and the stop only ever moves up, so a candidate not above `current_stop` is no move.
    """
    for candidate in reversed(fractal_prices_oldest_first):
        if entry < candidate < price:
            if current_stop is None or candidate > current_stop:
                return candidate
            return None
    return None


def trailing_stops(
    lows: Sequence[P],
    closes: Sequence[P],
    *,
    entry: P,
    lookback: int | None = None,
) -> list[P | None]:
    """The stop in force after each bar closes, replaying the rule over a whole series.

    `lookback` bars (e.g. 14 days of 4h = 84) bound which fractals still count, as the live bot
    only fetches that much history. Used by the chart and as an oracle in the tests; the live
    strategy applies `pick_stop` one candle at a time and must agree with it.
    """
    stops: list[P | None] = []
    stop: P | None = None
    confirmed: list[Fractal] = []
    for i in range(len(lows)):
        n = i - WING
        if n >= WING and is_down_fractal(lows[: i + 1], n):
            confirmed.append(Fractal(n, lows[n], i))
        window = [f.price for f in confirmed if lookback is None or f.index > i - lookback]
        new = pick_stop(window, entry=entry, price=closes[i], current_stop=stop)
        if new is not None:
            stop = new
        stops.append(stop)
    return stops


def stop_hit_index(lows: Sequence[P], stops: Sequence[P | None]) -> int | None:
    """First bar whose low reaches the stop set by an earlier bar's close (the stop-loss triggers), or None."""
    for i in range(1, len(lows)):
        stop = stops[i - 1]
        if stop is not None and not lows[i] > stop:
            return i
    return None
