"""Bill Williams fractals and the trailing-stop rule built on them (docs/STRATEGIES.md §2).

A bullish ("down") fractal at bar N is a low strictly lower than the lows of bars N-2, N-1,
N+1 and N+2; a bearish ("up") fractal is a high strictly higher than the four highs around
it. Both are therefore known only when bar N+2 has closed: `Fractal.known_at` is that bar,
and nothing here ever looks at a bar after the one being processed, so the strategy, the
backtester and the chart all see a fractal at the same moment.

The list functions work on any ordered values (Decimal in the strategy, float in a chart);
`Tracker` / `add_candle` / `trail` are the incremental form the strategy keeps in its
persisted state: bars of the fractal interval built from the bot's candles, and the few
fractals that can still become the stop. Pure, no I/O. `trailing_stops` is the rule read
literally over a whole series, the reference the incremental form is tested against.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from decimal import Decimal
from typing import Any, NamedTuple, Protocol, TypeVar

import msgspec

from shared.messages import Candle
from shared.money import ZERO


class _Ordered(Protocol):
    def __lt__(self, other: Any, /) -> bool: ...
    def __gt__(self, other: Any, /) -> bool: ...


P = TypeVar("P", bound=_Ordered)

#: bars on each side of the middle one: a fractal's window is 5 bars wide
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
    """Every bullish (down) fractal of the series, oldest first."""
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

    The rule of docs/STRATEGIES.md §2: the newest fractal that is above the entry and below the current price is
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
    """The stop in force after each bar closes: the rule of docs/STRATEGIES.md §2 read literally, over every fractal
    of the window at every bar (the reference the tests hold `trail` to; quadratic, so the
    chart uses `tracked_stops`).

    `lookback` bars (e.g. 14 days of 4h = 84) bound which fractals still count (the
    strategy only looks that far back).
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


# --- the incremental form the strategy keeps in its state ----------------------------------
#
# `pick_stop` looks at every fractal of the window. Only few can ever be picked: a fractal at
# or under the entry never; an older fractal f never again once a newer one g <= f above the
# entry exists (it would need g >= price > f); nor one at or under the stop in force (all
# older fractals are lower still, so the answer is "no move" either way). What is left is
# increasing from old to new, and the stop is its newest member under the price. That short
# stack is all the state keeps; `trail` gives exactly what `pick_stop` gives over the whole
# window (tests/test_fractal_rules.py checks it on random walks and on real candles).


class BarLow(msgspec.Struct, frozen=True, array_like=True):
    """A bar's open time (ms) and low: a completed bar, or a confirmed fractal."""

    t: int
    low: Decimal


class Tracker(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True):
    """Bars of the fractal interval built from the bot's candles, and the fractals that may still
    become the stop. Small whatever the interval: the bar being built, the last five completed
    bars (a fractal needs no more) and the stack described above."""

    bar_t: int = -1  # open time of the bar being built; -1 when none
    bar_low: Decimal = ZERO
    close: Decimal = ZERO  # close of the last candle added (the current price)
    last_t: int = -1  # open time of the last candle added
    recent: tuple[BarLow, ...] = ()  # the last 5 completed bars, oldest first
    fractals: tuple[BarLow, ...] = ()  # candidate fractals, oldest (and lowest) first


def _complete(tr: Tracker, lookback_ms: int, entry: Decimal) -> Tracker:
    """Close the bar being built: it may confirm the fractal two bars back; old fractals drop out."""
    done = BarLow(tr.bar_t, tr.bar_low)
    recent = (*tr.recent, done)[-(2 * WING + 1) :]
    fractals = tr.fractals
    if len(recent) == 2 * WING + 1 and is_down_fractal([b.low for b in recent], WING):
        new = recent[WING]
        if new.low > entry:
            fractals = (*(f for f in fractals if f.low < new.low), new)
    fractals = tuple(f for f in fractals if f.t > done.t - lookback_ms)
    return msgspec.structs.replace(tr, bar_t=-1, bar_low=ZERO, recent=recent, fractals=fractals)


def add_candle(
    tr: Tracker,
    *,
    open_time: int,
    candle_ms: int,
    low: Decimal,
    close: Decimal,
    bar_ms: int,
    lookback_ms: int,
    entry: Decimal,
) -> tuple[Tracker, bool]:
    """The tracker after one closed candle, and whether a bar of the fractal interval closed.

    Bars are aligned on the epoch (a 4h bar opens at 00, 04, ... UTC) and close with the
    candle that ends them. A candle that opens a later bar while the previous one is still
    incomplete (candles missing) closes that previous bar first. Candles as long as the bar
    or longer are bars themselves. A fractal counts while its bar opened less than
    `lookback_ms` before the newest bar (14 days by default).
    """
    size = max(bar_ms, candle_ms)
    start = open_time - open_time % size if candle_ms < size else open_time
    closed = False
    if tr.bar_t >= 0 and start != tr.bar_t:
        tr, closed = _complete(tr, lookback_ms, entry), True
    if tr.bar_t < 0:
        tr = msgspec.structs.replace(tr, bar_t=start, bar_low=low)
    elif low < tr.bar_low:
        tr = msgspec.structs.replace(tr, bar_low=low)
    tr = msgspec.structs.replace(tr, close=close, last_t=open_time)
    if open_time + candle_ms >= start + size:
        tr, closed = _complete(tr, lookback_ms, entry), True
    return tr, closed


def trail(tr: Tracker, stop: Decimal | None) -> tuple[Tracker, Decimal | None]:
    """The rule at the tracker's current price: the new stop (None: keep the one in force), and
    the tracker without the fractals that can no longer become the stop."""
    new = None
    for f in reversed(tr.fractals):
        if f.low < tr.close:
            new = f.low if stop is None or f.low > stop else None
            break
    level = new if new is not None else stop
    if level is not None:
        tr = msgspec.structs.replace(tr, fractals=tuple(f for f in tr.fractals if f.low > level))
    return tr, new


def candle_ms_of(candle: Candle) -> int:
    return candle.close_time - candle.open_time + 1


def replay(candles: Iterable[Candle], *, bar_ms: int, lookback_ms: int, entry: Decimal) -> Tracker:
    """A tracker rebuilt from closed candles, oldest first (at start, or after a gap)."""
    tr = Tracker()
    for c in candles:
        tr, _ = add_candle(
            tr,
            open_time=c.open_time,
            candle_ms=candle_ms_of(c),
            low=c.low,
            close=c.close,
            bar_ms=bar_ms,
            lookback_ms=lookback_ms,
            entry=entry,
        )
    return tr


def tracked_stops(
    times: Sequence[int],
    lows: Sequence[Decimal],
    closes: Sequence[Decimal],
    *,
    bar_ms: int,
    lookback_ms: int,
    entry: Decimal,
) -> list[Decimal | None]:
    """The stop in force after each bar, as the strategy keeps it (linear time: for charts)."""
    tr, stop = Tracker(), None
    stops: list[Decimal | None] = []
    for t, low, close in zip(times, lows, closes, strict=True):
        tr, _ = add_candle(
            tr,
            open_time=t,
            candle_ms=bar_ms,
            low=low,
            close=close,
            bar_ms=bar_ms,
            lookback_ms=lookback_ms,
            entry=entry,
        )
        tr, new = trail(tr, stop)
        stop = new if new is not None else stop
        stops.append(stop)
    return stops
