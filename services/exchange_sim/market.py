"""The simulated market: a clock that walks every symbol through its candles, step by step.

A candle is four steps (shared/matching/candles.py, the rule the backtester follows too):
open, then low and high (high first when the candle closes below its open), then close. Each step sets the market time, hands the engine the price and the
liquidity of that stretch of the candle (a quarter of its volume times the participation
rate, or a fixed `max_fill`), and tells listeners (the protocol layers' market streams).
Nothing here sleeps: a runner (venue.py) or a test (control API) calls `step()`.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from decimal import Decimal

import msgspec

from services.exchange_sim.feeds import Bar, Feed
from shared.matching.candles import (
    AVG_PRICE_CANDLES,
    DEFAULT_PARTICIPATION,
    STEPS_PER_CANDLE,
    avg_price,
    step_liquidity,
    step_offset,
    step_volumes,
    waypoints,
)
from shared.matching.engine import Engine
from shared.money import ZERO

log = logging.getLogger("exchange_sim.market")

DAY_CANDLES = 1440  # the 24h ticker's window of 1-minute candles
# SIM_HISTORY_MAX's floor: the 24h window, plus an hour so a trim in chunks never cuts into it.
MIN_HISTORY = DAY_CANDLES + 60
DEFAULT_HISTORY_MAX = 43_200  # 30 days of 1-minute candles per symbol


class Tick(msgspec.Struct, frozen=True, kw_only=True):
    """What one step did to one symbol; `candle` is its 1-minute candle so far."""

    symbol: str
    time: int
    price: Decimal
    qty: Decimal  # volume traded in this step (the public tape)
    trade_id: int
    candle: Bar
    closed: bool  # this step closed the candle


TickListener = Callable[[list[Tick]], None]


class SymbolKnobs(msgspec.Struct, kw_only=True):
    """Per-symbol liquidity: participation of the candle's volume, or a fixed cap per step."""

    participation: Decimal = DEFAULT_PARTICIPATION
    max_fill: Decimal | None = None


def aggregate(candles: Iterable[Bar], interval_ms: int) -> list[Bar]:
    """Merge 1-minute candles into bars of interval_ms aligned to the epoch (as Binance does)."""
    bars: list[Bar] = []
    for c in candles:
        start = c.open_time - c.open_time % interval_ms
        if bars and bars[-1].open_time == start:
            b = bars[-1]
            bars[-1] = msgspec.structs.replace(
                b,
                high=max(b.high, c.high),
                low=min(b.low, c.low),
                close=c.close,
                volume=b.volume + c.volume,
                quote_volume=b.quote_volume + c.quote_volume,
                trades=b.trades + c.trades,
            )
        else:
            bars.append(msgspec.structs.replace(c, open_time=start, close_time=start + interval_ms - 1))
    return bars


class Market:
    def __init__(
        self,
        engine: Engine,
        feeds: Callable[[], dict[str, Feed]],
        *,
        origin_ms: int,
        interval_ms: int = 60_000,
        warmup: int = 500,
        history_max: int = 0,
    ) -> None:
        """`history_max`: closed candles kept per symbol (0: all; else at least MIN_HISTORY)."""
        if history_max and history_max < MIN_HISTORY:
            raise ValueError(f"history_max {history_max} < {MIN_HISTORY} (the 24h ticker needs a day)")
        self.engine = engine
        self._make_feeds = feeds
        self.origin_ms, self.interval_ms, self.warmup = origin_ms, interval_ms, warmup
        self.history_max = history_max
        # trimmed this many at a time, never below a day: one list shift per chunk, not per candle
        self._trim_chunk = max(1, min(history_max // 10, history_max - DAY_CANDLES))
        self._listeners: list[TickListener] = []
        self.knobs: dict[str, SymbolKnobs] = {}
        self.reset()

    # ----------------------------------------------------------------- state
    def reset(self) -> None:
        """Back to the first live minute: history replayed again, prices handed to the engine."""
        self._feeds = self._make_feeds()
        self.knobs = {s: SymbolKnobs() for s in self._feeds}
        self.history: dict[str, list[Bar]] = {s: [] for s in self._feeds}
        # candles trimmed off the front: history[s][i] opened at origin + (dropped + i) intervals
        self.dropped: dict[str, int] = dict.fromkeys(self._feeds, 0)
        for symbol, feed in self._feeds.items():
            self.history[symbol] = [next(feed) for _ in range(self.warmup)]
            self._trim(symbol)
        self._start_at(self.origin_ms + self.warmup * self.interval_ms)
        self.steps = 0

    def resume(
        self, feeds: dict[str, Feed], history: dict[str, list[Bar]], dropped: dict[str, int], steps: int
    ) -> None:
        """Carry on from saved history (a restarted venue, store.py): the next candle opens one
        interval after the last closed one, so market time never goes back; `feeds` start there."""
        if set(feeds) != set(self._feeds) or set(history) != set(feeds):
            raise ValueError("the saved market's symbols differ from this venue's")
        self._feeds, self.history, self.dropped = feeds, history, dropped
        for symbol in history:
            self._trim(symbol)
        next_open = max(h[-1].close_time + 1 for h in history.values() if h)
        self.origin_ms = min(h[0].open_time - dropped[s] * self.interval_ms for s, h in history.items() if h)
        self._start_at(next_open)
        self.steps = steps

    def _start_at(self, candle_open: int) -> None:
        """The next step opens the candle at `candle_open`; prices are the last closes."""
        self._planned: dict[str, Bar] = {}
        self._live: dict[str, Bar] = {}
        self.phase = 0  # the next step's position in its candle
        self.candle_open = candle_open
        self.time = self.candle_open
        self.engine.set_time(self.time)
        self._last: dict[str, Decimal] = {}
        for symbol, feed in self._feeds.items():
            hist = self.history[symbol]
            start = hist[-1].close if hist else feed.spec.start_price
            self._last[symbol] = start
            self.engine.on_price(symbol, start, liquidity=ZERO, ref_price=self.avg_price(symbol))

    def add_listener(self, listener: TickListener) -> None:
        self._listeners.append(listener)

    def remove_listener(self, listener: TickListener) -> None:
        if listener in self._listeners:
            self._listeners.remove(listener)

    @property
    def symbols(self) -> list[str]:
        return list(self._feeds)

    def price(self, symbol: str) -> Decimal:
        return self._last[symbol]

    def current(self, symbol: str) -> Bar | None:
        """The 1-minute candle in progress (None between a close and the next open)."""
        return self._live.get(symbol)

    # ----------------------------------------------------------------- stepping
    def step(self) -> list[Tick]:
        """One step of every symbol; returns (and publishes) what happened."""
        k = self.phase
        if k == 0:
            self._planned = {s: next(feed) for s, feed in self._feeds.items()}
        self.time = self.candle_open + step_offset(k, self.interval_ms)
        self.engine.set_time(self.time)
        closed = k == STEPS_PER_CANDLE - 1
        ticks = []
        for symbol, p in self._planned.items():
            price = waypoints(p.open, p.high, p.low, p.close)[k]
            qty = step_volumes(p.volume, self._feeds[symbol].spec.filters.step_size)[k]
            ticks.append(self._trade(symbol, price, qty, closed))
        self.phase = (k + 1) % STEPS_PER_CANDLE
        self.steps += 1
        if closed:
            for symbol in self._planned:
                self.history[symbol].append(self._live.pop(symbol))
                self._trim(symbol)
            self.candle_open += self.interval_ms
        self._publish(ticks)
        return ticks

    def advance(self, *, steps: int = 0, candles: int = 0) -> list[Tick]:
        """`steps` steps, then enough more to close `candles` candles; returns the last ticks."""
        ticks: list[Tick] = []
        for _ in range(max(0, steps)):
            ticks = self.step()
        for _ in range(max(0, candles)):
            while True:
                ticks = self.step()
                if self.phase == 0:
                    break
        return ticks

    def push_price(self, symbol: str, price: Decimal) -> Tick:
        """A trade at `price` now, outside the feed (tests): updates the candle, fills what it touches."""
        if symbol not in self._feeds:
            raise KeyError(symbol)
        tick = self._trade(symbol, price, ZERO, False, manual=True)
        self._publish([tick])
        return tick

    def _trade(
        self, symbol: str, price: Decimal, qty: Decimal, closed: bool, *, manual: bool = False
    ) -> Tick:
        live = self._live.get(symbol)
        if live is None and not manual:
            live = msgspec.structs.replace(
                self._planned[symbol],
                high=price,
                low=price,
                close=price,
                volume=ZERO,
                quote_volume=ZERO,
                trades=0,
            )
        if live is not None:
            live = msgspec.structs.replace(
                live,
                high=max(live.high, price),
                low=min(live.low, price),
                close=price,
                volume=live.volume + qty,
                quote_volume=live.quote_volume + qty * price,
                trades=live.trades + (1 if qty > 0 else 0),
            )
            self._live[symbol] = live
        self._last[symbol] = price
        self.engine.on_price(
            symbol, price, liquidity=self._liquidity(symbol, qty, manual), ref_price=self.avg_price(symbol)
        )
        candle = live or self.history[symbol][-1]
        return Tick(
            symbol=symbol,
            time=self.time,
            price=price,
            qty=qty,
            trade_id=self.engine.next_trade_id(symbol),
            candle=candle,
            closed=closed,
        )

    def _liquidity(self, symbol: str, qty: Decimal, manual: bool) -> Decimal | None:
        knobs = self.knobs[symbol]
        if manual and knobs.max_fill is None:
            return None
        return step_liquidity(qty, knobs.participation, knobs.max_fill)

    def _publish(self, ticks: list[Tick]) -> None:
        for listener in list(self._listeners):
            try:
                listener(ticks)
            except Exception:  # a protocol layer's bug must not stop the market
                log.exception("market listener failed")

    # ----------------------------------------------------------------- history
    def _trim(self, symbol: str) -> None:
        """Past history_max, forget the oldest candles a chunk at a time, so a venue left running
        for days holds a bounded history (as a real venue's klines reach back only so far)."""
        hist = self.history[symbol]
        if self.history_max and len(hist) > self.history_max:
            cut = len(hist) - self.history_max + self._trim_chunk
            del hist[:cut]
            self.dropped[symbol] += cut

    def klines(
        self,
        symbol: str,
        interval_ms: int,
        *,
        start: int | None = None,
        end: int | None = None,
        limit: int = 500,
    ) -> list[Bar]:
        """Closed bars only (see docs/PAPER_VENUE.md), oldest first; without start, the latest `limit`.

        Only the retained history is served: a range reaching back before it gets what is kept,
        and once candles were trimmed a bar that began before the oldest kept one (it would
        be missing part of its minutes) is left out.
        """
        hist = self.history[symbol]
        dropped = self.dropped[symbol]
        ratio = max(1, interval_ms // self.interval_ms)
        lo, hi = 0, len(hist)
        if start is not None:
            lo = max(0, (start - start % interval_ms - self.origin_ms) // self.interval_ms - dropped)
        if end is not None:
            hi = min(hi, max(0, (end - self.origin_ms) // self.interval_ms + ratio - dropped))
        if start is None:
            lo = max(lo, hi - (limit + 1) * ratio)
        bars = aggregate(hist[lo:hi], interval_ms) if ratio > 1 else hist[lo:hi]
        last_closed = hist[-1].close_time if hist else -1
        first_kept = hist[0].open_time if hist and dropped else -1
        bars = [
            b
            for b in bars
            if first_kept <= b.open_time
            and b.close_time <= last_closed
            and (start is None or b.open_time >= start)
            and (end is None or b.open_time <= end)
        ]
        return bars[:limit] if start is not None else bars[-limit:]

    def bar(self, symbol: str, interval_ms: int) -> Bar:
        """The bar of interval_ms that holds the latest step (for kline streams)."""
        live = self._live.get(symbol)
        hist = self.history[symbol]
        latest = live or hist[-1]
        start = latest.open_time - latest.open_time % interval_ms
        members = [c for c in hist[-(interval_ms // self.interval_ms) :] if c.open_time >= start]
        if live is not None:
            members.append(live)
        return aggregate(members, interval_ms)[0]

    def avg_price(self, symbol: str) -> Decimal:
        """Volume-weighted close of the last 5 closed minutes (Binance avgPrice); last price if none."""
        recent = self.history[symbol][-AVG_PRICE_CANDLES:]
        tick = self._feeds[symbol].spec.filters.tick_size
        avg = avg_price([(c.close, c.volume) for c in recent], tick)
        if avg is not None:
            return avg
        return recent[-1].close if recent else self._last.get(symbol, ZERO)

    def window(self, symbol: str, minutes: int = DAY_CANDLES) -> Bar:
        """One bar over the last `minutes` (24h ticker statistics), the candle in progress included."""
        members = self.history[symbol][-minutes:]
        live = self._live.get(symbol)
        if live is not None:
            members = [*members[1:], live] if len(members) >= minutes else [*members, live]
        merged = aggregate(members, 10**15)[0]
        return msgspec.structs.replace(merged, open_time=members[0].open_time, close_time=self.time)
