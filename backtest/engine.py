"""Drives a strategy over a CandleSeries against the paper venue's matching engine (sim.py).

Each candle: its four waypoints, with the liquidity of each step, go to the engine as the
paper venue's market clock hands them over (shared/matching/candles.py); every order update
is built as the live order gateway builds it and goes through `Strategy.step`, whose commands
act on the engine at once (an order that crosses the book fills at once, a resting one from
the next waypoint on); then the closed candle itself goes to the strategy, then any timer that
is due. The live runner does the same with the same step, so a backtest shows the orders the
bot will send.

The defaults are the paper venue's: a market order fills at the next waypoint (`next_step`:
one sent after a candle closed at the next candle's open, one sent after a fill inside a
candle at the candle's next waypoint — where a real order sent at that moment would trade),
walking the venue's book (bid = the price, ask one tick above); resting orders share a step's
volume times `participation`, so they fill partly when the candle traded little; fees are
`fee_rate` in the asset received, rounded up to 1e-8. So a backtest gives the very orders,
fills, fees and profit of the live stack on the venue replaying the same candles, with no
setting changed on either side (tests/test_parity_live.py).

Fast path: after a candle, when the strategy does not need every candle (Strategy.candles_needed:
its wake, or every candle while a smart trade's exits are out) and
no market order waits, the candles on which no open order can trigger are skipped with a
vectorised search (scan.py). Such candles would change nothing — the strategy has said it
ignores them and the venue has nothing to match — so both paths give the very same fills,
which tests prove candle for candle.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from functools import partial
from typing import Any

import msgspec
import numpy as np

from backtest.scan import next_candidate
from backtest.series import CandleSeries, iso
from backtest.sim import SimFill, SimVenue
from shared.filters import SymbolFilters
from shared.matching.candles import (
    AVG_PRICE_CANDLES,
    DEFAULT_PARTICIPATION,
    avg_price,
    step_liquidity,
    step_offset,
    step_volumes,
)
from shared.matching.engine import DEFAULT_MARKET_FILL, MarketFill
from shared.matching.symbols import spec_for
from shared.messages import (
    REJECTED,
    CancelAll,
    CancelOrder,
    CancelOrderList,
    Candle,
    Decision,
    Notification,
    OrderUpdate,
    PlaceOrder,
    PlaceOrderList,
)
from shared.money import ZERO
from shared.strategy import (
    CancelTimer,
    FillDelta,
    Position,
    SetTimer,
    Strategy,
    StrategyContext,
    TimerFired,
    apply_fill,
)
from shared.strategy.events import Event
from shared.strategy.failure import failure_text

TICKS = 4
MAX_EVENTS_PER_TICK = 10_000
DECISIONS_KEPT = 10_000  # a year of a busy bot's decisions would fill the memory for nothing


class BacktestError(RuntimeError):
    pass


def strategy_failed(event: Event, ts: int, exc: Exception) -> BacktestError:
    """The strategy raised: said as the runner says it (its file and line), with the candle."""
    when = (
        f"the candle of {iso(event.open_time)}"
        if isinstance(event, Candle)
        else f"a {type(event).__name__} at {iso(ts)}"
    )
    return BacktestError(f"the strategy raised on {when}: {failure_text(exc)}")


@dataclass(frozen=True)
class Setup:
    """One backtest: which strategy with which params, on which market, with what money."""

    strategy: Strategy[Any, Any]
    params: Any
    filters: SymbolFilters
    bot: str = "backtest"
    venue: str = "sim"
    symbol: str = ""
    interval: str = "1m"
    capital: Decimal = Decimal("10000")  # quote at the start
    base: Decimal = ZERO  # base at the start
    fee_rate: Decimal = Decimal("0.001")  # maker and taker, in the asset received
    # The paper venue's settings, with its defaults (SIM_MARKET_FILL, SIM_PARTICIPATION, SIM_MAX_FILL):
    market_fill: MarketFill = DEFAULT_MARKET_FILL  # "now": a market order fills at the last price
    participation: Decimal = DEFAULT_PARTICIPATION  # share of a step's volume resting orders take
    max_fill: Decimal | None = None  # a fixed quantity per step instead
    # The synthetic book (shared/matching/book.py); None: the venue's for the symbol (one tick wide)
    spread_ticks: int | None = None
    book_qty: Decimal | None = None  # quantity on its first level (the next ones grow by a quarter)


class Fill(msgspec.Struct, frozen=True, gc=False):
    index: int  # candle index in the series
    tick: int  # 0..3 within the candle
    ts: int
    cid: str
    tag: str
    side: str
    order_type: str
    price: Decimal
    qty: Decimal
    quote: Decimal
    fee: Decimal
    fee_asset: str
    base_after: Decimal  # account totals right after this fill
    quote_after: Decimal


@dataclass
class RunResult:
    setup: Setup
    series: CandleSeries
    fills: list[Fill]
    state: Any
    final_base: Decimal
    final_quote: Decimal
    max_committed: Decimal
    notifications: list[Notification]
    decisions: Sequence[Decision]  # the last DECISIONS_KEPT of them
    orders_placed: int
    rejected: list[OrderUpdate]
    processed: int  # candles actually handled (the rest were skipped by the fast path)
    elapsed_s: float
    fast: bool
    extra: dict[str, Any] = field(default_factory=dict)


class _Window(Sequence[Candle]):
    """The last closed candles as a sequence built on demand (ctx.history)."""

    def __init__(self, run: Backtester, end: int, size: int) -> None:
        self._run, self._start, self._end = run, max(0, end - size), end

    def __len__(self) -> int:
        return self._end - self._start

    def __getitem__(self, i: Any) -> Any:
        if isinstance(i, slice):
            return [self[k] for k in range(*i.indices(len(self)))]
        if i < 0:
            i += len(self)
        if not 0 <= i < len(self):
            raise IndexError(i)
        return self._run.candle(self._start + i)


class Backtester:
    """One backtest: the strategy, the simulated venue (sim.py) and the candles it walks."""

    def __init__(self, setup: Setup, series: CandleSeries) -> None:
        if len(series) == 0:
            raise BacktestError("no candles to run over")
        self.setup, self.series = setup, series
        self.strategy, self.params = setup.strategy, setup.params
        f = setup.filters
        self.base_asset, self.quote_asset = f.base_asset, f.quote_asset
        self.symbol = setup.symbol or f.symbol
        self.venue = SimVenue(
            spec_for(f, spread_ticks=setup.spread_ticks, level_qty=setup.book_qty),
            bot=setup.bot,
            venue=setup.venue,
            symbol=self.symbol,
            quote=setup.capital,
            base=setup.base,
            fee_rate=setup.fee_rate,
            market_fill=setup.market_fill,
        )
        try:
            self.history_size = int(self.strategy.history_needed(self.params, setup.interval) or 0)
        except Exception as exc:  # the strategy's bug, said as the runner says it
            raise BacktestError(f"the strategy's history_needed raised: {failure_text(exc)}") from exc
        self._candles: dict[int, Candle] = {}
        self.timers: dict[str, int] = {}
        self.fills: list[Fill] = []
        self.notes: list[Notification] = []
        self.decisions: deque[Decision] = deque(maxlen=DECISIONS_KEPT)
        self.rejected: list[OrderUpdate] = []
        self._ref: tuple[int, Decimal | None] = (-1, None)  # (candle, its reference price)
        self._closes: dict[int, tuple[Decimal, Decimal]] = {}  # see _closes_volumes
        self._offsets = tuple(step_offset(k, series.interval_ms) for k in range(TICKS))
        self.position = Position(base=setup.base)
        self.max_committed = ZERO
        self.last_price: Decimal | None = None
        self.closed_upto = 0  # candles [0, closed_upto) are closed
        self.processed = 0
        self.queue: deque[Event] = deque()
        self._last_ctx: StrategyContext | None = None  # see _ctx
        self._ctx_upto = 0
        try:
            self.state = self.strategy.initial_state(self.params, self._ctx(int(series.open_time[0])))
        except Exception as exc:
            raise BacktestError(f"the strategy's initial_state raised: {failure_text(exc)}") from exc

    # --- context and candles -------------------------------------------------------------

    def candle(self, i: int) -> Candle:
        c = self._candles.get(i)
        if c is None:
            if len(self._candles) > 4 * self.history_size + 64:
                self._candles.clear()
            c = self._candles[i] = self.series.candle(i, self.setup.venue, self.symbol, self.setup.interval)
        return c

    def _ctx(self, now: int) -> StrategyContext:
        """The context of an event at `now`; the last one again while nothing it shows has
        changed (same time, same closed candles; its balances are the venue's live view)."""
        last = self._last_ctx
        if last is not None and last.now == now and self._ctx_upto == self.closed_upto:
            return last
        self._last_ctx, self._ctx_upto = self._new_ctx(now, self.venue.balances()), self.closed_upto
        return self._last_ctx

    def _new_ctx(self, now: int, balances: Mapping[str, Decimal]) -> StrategyContext:
        history: Sequence[Candle] = ()
        if self.history_size:
            history = _Window(self, self.closed_upto, self.history_size)
        s = self.setup
        return StrategyContext(
            bot=s.bot,
            venue=s.venue,
            symbol=self.symbol,
            interval=s.interval,
            filters=s.filters,
            now=now,
            history=history,
            balances=balances,
        )

    # --- events and commands -------------------------------------------------------------

    def _drain(self, tick: int, ts: int) -> None:
        """Feed queued events to the strategy until none is left; commands act at once."""
        handled = 0
        step, params = self.strategy.step, self.params
        while self.queue:
            handled += 1
            if handled > MAX_EVENTS_PER_TICK:
                raise BacktestError(f"more than {MAX_EVENTS_PER_TICK} events in one tick: the strategy loops")
            event = self.queue.popleft()
            try:
                self.state, commands = step(params, self.state, event, self._ctx(ts))
            except Exception as exc:  # the strategy's bug: one line naming its code and the moment
                raise strategy_failed(event, ts, exc) from exc
            if commands:
                self._apply(commands, tick, ts)

    def _apply(self, commands: list[Any], tick: int, ts: int) -> None:
        s = self.setup
        for cmd in commands:  # the most frequent kinds first: orders, then what the bot says
            if isinstance(cmd, PlaceOrder):
                updates = self.venue.place(cmd, ts, self._tag(cmd.cid))
                self._note_rejected(updates)
                self._hear(updates, tick, ts)
            elif isinstance(cmd, Decision):
                self.decisions.append(cmd)
            elif isinstance(cmd, Notification):
                self.notes.append(cmd)
            elif isinstance(cmd, CancelOrder):
                self._hear(self.venue.cancel(cmd.cid, ts), tick, ts)
            elif isinstance(cmd, PlaceOrderList):
                tags = [self._tag(leg.cid) for leg in cmd.legs]
                updates = self.venue.place_list(cmd, ts, tags)
                self._note_rejected(updates)
                self._hear(updates, tick, ts)
            elif isinstance(cmd, CancelOrderList):
                self._hear(self.venue.cancel_list(cmd.list_cid, ts), tick, ts)
            elif isinstance(cmd, CancelAll):
                for cid in self.venue.open_cids():
                    self._hear(self.venue.cancel(cid, ts), tick, ts)
            elif isinstance(cmd, SetTimer):
                self.timers[cmd.name] = cmd.due
            elif isinstance(cmd, CancelTimer):
                self.timers.pop(cmd.name, None)
            else:
                raise BacktestError(f"{s.strategy.name}: not a command: {cmd!r}")
        self._track_committed()

    def _note_rejected(self, updates: list[OrderUpdate]) -> None:
        for update in updates:
            if update.status is REJECTED:
                self.rejected.append(update)

    def _tag(self, cid: str) -> str:
        record = self.state.orders.get(cid)
        return record.tag if record is not None else ""

    def _hear(self, updates: list[OrderUpdate], tick: int, ts: int) -> None:
        """The venue's fills of the operation into the log, its updates to the strategy."""
        fills = self.venue.fills
        if fills:
            self.venue.fills = []
            for fill in fills:
                self._record(fill, tick // TICKS, tick % TICKS, ts)
        self.queue.extend(updates)

    def _track_committed(self) -> None:
        committed = self.position.cost + self.venue.locked(self.quote_asset)
        if committed > self.max_committed:
            self.max_committed = committed

    def _record(self, fill: SimFill, index: int, tick: int, ts: int) -> None:
        self.position = apply_fill(
            self.position,
            FillDelta(fill.side, fill.qty, fill.quote, fill.fee, fill.fee_asset),
            self.base_asset,
            self.quote_asset,
        )
        self.fills.append(
            Fill(
                index=index,
                tick=tick,
                ts=ts,
                cid=fill.cid,
                tag=fill.tag,
                side=str(fill.side),
                order_type=fill.order_type,
                price=fill.price,
                qty=fill.qty,
                quote=fill.quote,
                fee=fill.fee,
                fee_asset=fill.fee_asset,
                base_after=self.venue.total(self.base_asset),
                quote_after=self.venue.total(self.quote_asset),
            )
        )

    def _ref_price(self, i: int) -> Decimal | None:
        """The reference price of candle i's checks, as the venue's avgPrice gives it: the
        volume-weighted close of the five candles before, else the last close."""
        if self._ref[0] != i:
            recent = self._closes_volumes(max(0, i - AVG_PRICE_CANDLES), i)
            ref = avg_price(recent, self.setup.filters.tick_size)
            self._ref = (i, ref if ref is not None or not recent else recent[-1][0])
        return self._ref[1]

    def _closes_volumes(self, start: int, end: int) -> list[tuple[Decimal, Decimal]]:
        """Candles [start, end)'s closes and volumes as Decimals, kept: the next candles'
        reference prices reuse them (after a skip, all are read in one pass)."""
        known = self._closes
        cvs = [known.get(j) for j in range(start, end)]
        if None in cvs:
            if len(known) >= 64:
                known.clear()
            cvs = self.series.closes_volumes(start, end)
            known.update(zip(range(start, end), cvs, strict=True))
        return cvs  # type: ignore[return-value]

    # --- one candle ----------------------------------------------------------------------

    def process_candle(self, i: int) -> None:
        sr, s = self.series, self.setup
        candle = self.candle(i)  # its Decimals are the waypoints' prices
        if len(self._closes) >= 64:
            self._closes.clear()
        self._closes[i] = (candle.close, candle.volume)
        o, h, lo, c = int(sr.open[i]), int(sr.high[i]), int(sr.low[i]), int(sr.close[i])
        # shared/matching/candles.py waypoints: (scaled integer, its Decimal)
        if c >= o:
            path = ((o, candle.open), (lo, candle.low), (h, candle.high), (c, candle.close))
        else:
            path = ((o, candle.open), (h, candle.high), (lo, candle.low), (c, candle.close))
        t0, close_ts = candle.open_time, candle.close_time
        base_tick = TICKS * i
        venue = self.venue
        volumes = None
        floor_int, ceil_int = sr.floor_int, sr.ceil_int
        ref_price = partial(self._ref_price, i)
        for k, (p, price) in enumerate(path):
            tick = base_tick + k
            self.last_price = price
            ts = t0 + self._offsets[k]
            levels = venue.trigger_levels(floor_int, ceil_int)
            if levels is not None and levels[0] < p < levels[1]:  # reaches no open order
                venue.mark(price, ts, ref_price)
                continue
            if volumes is None:
                volumes = step_volumes(candle.volume, s.filters.step_size)
            liquidity = step_liquidity(volumes[k], s.participation, s.max_fill)
            updates = venue.step(price, ts, liquidity, ref_price())
            if updates or venue.fills:
                self._hear(updates, tick, ts)
                self._track_committed()
                self._drain(tick, ts)
        self.closed_upto = i + 1
        self.queue.append(self.candle(i))
        last_tick = base_tick + TICKS - 1
        self._drain(last_tick, close_ts)
        while self.timers:
            name, due = min(self.timers.items(), key=lambda kv: (kv[1], kv[0]))
            if due > close_ts:
                break
            del self.timers[name]
            self.queue.append(TimerFired(name=name, due=due))
            self._drain(last_tick, close_ts)
        self.processed += 1

    # --- the run -------------------------------------------------------------------------

    def run(self, *, fast: bool = True, progress: Callable[[int, int], None] | None = None) -> RunResult:
        started = time.perf_counter()
        sr, n = self.series, len(self.series)
        low, high = sr.low, sr.high
        close_times = sr.open_time + (sr.interval_ms - 1)
        report_every, next_report = max(1, n // 100), 0
        i = 0
        while i < n:
            self.process_candle(i)
            i += 1
            if progress is not None and i >= next_report:
                progress(i, n)
                next_report = i + report_every
            if not fast or i >= n:
                continue
            wake = self.strategy.candles_needed(self.params, self.state)
            levels = None if wake.every_candle else self.venue.trigger_levels(sr.floor_int, sr.ceil_int)
            if levels is None:
                continue
            below, above = levels
            if wake.below is not None:
                below = max(below, sr.floor_int(wake.below))
            if wake.above is not None:
                above = min(above, sr.ceil_int(wake.above))
            stop = n
            if self.timers:
                stop = min(n, int(np.searchsorted(close_times, min(self.timers.values()), side="left")))
            i = max(i, next_candidate(low, high, i, below, above, stop))
        if progress is not None:
            progress(n, n)
        return RunResult(
            setup=self.setup,
            series=sr,
            fills=self.fills,
            state=self.state,
            final_base=self.venue.total(self.base_asset),
            final_quote=self.venue.total(self.quote_asset),
            max_committed=self.max_committed,
            notifications=self.notes,
            decisions=list(self.decisions),
            orders_placed=self.venue.placed,
            rejected=self.rejected,
            processed=self.processed,
            elapsed_s=time.perf_counter() - started,
            fast=fast,
        )


def run_backtest(
    setup: Setup,
    series: CandleSeries,
    *,
    fast: bool = True,
    progress: Callable[[int, int], None] | None = None,
) -> RunResult:
    return Backtester(setup, series).run(fast=fast, progress=progress)
