"""Fractal trailing stop (docs/STRATEGIES.md §2) as a pure strategy.

It protects a position it did not open: `entry` and `quantity` (or the free base balance
when no quantity is given). The position is written into the state at the first candle
(base = quantity, cost = quantity × entry), so the stop's fill books the profit against the
entry price through the ordinary position bookkeeping.

On each closed bar of `interval` (4h by default, built from the bot's candles, whatever their
interval) the newest bullish fractal above the entry and below the bar's close becomes the
stop, if it is higher than the stop in force. The first places a STOP_LOSS_LIMIT sell at
stop = fractal, limit = fractal − pad; a higher one cancels that order and places the new one
only once the cancel is confirmed, for what the position still holds. So at most one sell is
ever out and a position is never sold twice: if the old order fills before the cancel lands,
the position is closed and nothing is replaced. When the stop fills, the bot reports the
result (profit against the entry, fees included) and stops acting.

A stop whose price is already reached: a venue refuses a STOP_LOSS_LIMIT that would trigger
at once (Binance: "Order would trigger immediately"). When the last price is at or under the
stop as the order is to be placed, or the venue refuses the stop for that reason, the bot
does what the stop would have done had it been resting there: it sells with a LIMIT order at
the stop's limit price (stop − pad). That order fills at once while the price is at or above
the limit; if the price has already fallen under the limit, it rests until the price comes
back, exactly as a triggered stop-limit would — the bot never sells under the limit the user
set with the pad (a market sell would, in a crash). A sell that is out is never replaced
because the price moved through it; only a higher stop replaces it.

A refused stop (for another reason) is tried again on the next candle, never in the same
step nor on every event; terms refused three times in a row are given up until they change
(a higher stop, a smaller position) or a person resumes the bot (strategies/refused.py), with
an error notification, instead of burning a client order id per candle.

Fractals come from `strategies.fractals` (the same functions the chart draws with). The bars
and fractals are kept in the state; on the first candle, and after candles were missed
(paused or stopped bot), they are rebuilt from the history the driver hands in
(`history_needed`: the look-back plus the bars a fractal needs, in the bot's candles), and the
stop is re-evaluated at once.
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal
from enum import StrEnum
from typing import Any

import msgspec

from shared.candle_files import INTERVAL_MS
from shared.messages import Candle, Level, OrderStatus, OrderType, OrderUpdate, Side
from shared.money import ZERO
from shared.strategy import (
    EVERY_CANDLE,
    ORDERS_ONLY,
    BotOrder,
    Command,
    OrderChange,
    Position,
    Step,
    Strategy,
    StrategyContext,
    StrategyState,
    Wake,
    cancel_order,
    decide,
    fill_notification,
    limit_order,
    limit_terms,
    load_params,
    notification,
    stop_limit_order,
)
from shared.strategy.decisions import percent
from shared.strategy.decisions import price as px
from shared.strategy.decisions import qty as qty_
from shared.strategy.decisions import quote as quote_
from strategies.fractals import WING, Tracker, add_candle, candle_ms_of, replay, trail
from strategies.refused import ForgetsRefusalsOnResume, given_up_note, unless_given_up

replace = msgspec.structs.replace

DEFAULT_PAD = Decimal("10")  # the limit is 10 quote units under the stop
DAY_MS = 86_400_000


class FractalPhase(StrEnum):
    NEW = "new"  # the position is not known yet
    ACTIVE = "active"  # protecting it
    DONE = "done"  # it was sold


ALIASES: dict[str, str] = {
    "entry_price": "entry",
    "amount": "quantity",  # a common name for it
    "qty": "quantity",
    "daysago": "lookback_days",  # "days ago", as in a history request
    "days_ago": "lookback_days",
    "pad_pct": "pad_percent",
}


class FractalParams(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    entry: Decimal | None = None  # price the position was bought at; None: the first candle's close
    quantity: Decimal | None = None  # base to protect; None: the free base balance at the start
    interval: str = "4h"  # bars the fractals are found on
    lookback_days: int = 14  # fractals older than this no longer count
    pad: Decimal | None = None  # limit = stop − pad (quote units); default 10
    pad_percent: Decimal | None = None  # or limit = stop × (1 − pad_percent / 100)

    def __post_init__(self) -> None:
        if self.entry is not None and self.entry <= 0:
            raise ValueError("entry must be > 0")
        if self.quantity is not None and self.quantity <= 0:
            raise ValueError("quantity must be > 0 (leave it out to protect the free base balance)")
        if self.interval not in INTERVAL_MS:
            raise ValueError(f"interval must be one of {', '.join(INTERVAL_MS)}")
        if not 0 < self.lookback_days <= 3650:  # the runner holds this much history in memory
            raise ValueError("lookback_days must be 1 to 3650")
        if self.pad is not None and self.pad_percent is not None:
            raise ValueError("give pad or pad_percent, not both")
        if self.pad is not None and self.pad < 0:
            raise ValueError("pad must be >= 0")
        if self.pad_percent is not None and not 0 <= self.pad_percent < 100:
            raise ValueError("pad_percent must be between 0 and 100 (0.1 = 0.1 %)")

    @property
    def bar_ms(self) -> int:
        return INTERVAL_MS[self.interval]

    @property
    def lookback_ms(self) -> int:
        return self.lookback_days * DAY_MS

    def limit_for(self, stop: Decimal) -> Decimal:
        """The stop order's limit price: a little under the stop, so it fills once triggered."""
        if self.pad_percent is not None:
            return stop * (1 - self.pad_percent / 100)
        return stop - (self.pad if self.pad is not None else DEFAULT_PAD)


def parse_fractal_params(raw: Mapping[str, Any] | None, source: str = "params") -> FractalParams:
    """Params from a config table; `pad = "0.1%"` is read as pad_percent = 0.1."""
    data = dict(raw or {})
    for key in list(data):
        value = data[key]
        if key.strip().lower() == "pad" and isinstance(value, str) and value.strip().endswith("%"):
            del data[key]
            data["pad_percent"] = value.strip()[:-1].strip()
    return load_params(FractalParams, data, ALIASES, source)


class FractalState(StrategyState, frozen=True, kw_only=True):
    phase: FractalPhase = FractalPhase.NEW
    entry: Decimal = ZERO
    quantity: Decimal = ZERO  # base protected at the start
    tracker: Tracker = Tracker()
    stop: Decimal | None = None  # the stop in force (a fractal's low); only ever moves up
    stop_moves: int = 0
    stop_cid: str = ""  # the sell out for it: a STOP_LOSS_LIMIT, or a LIMIT once through ("" while none)
    blocked: bool = False  # the last stop order was rejected: try again on the next candle
    through: bool = False  # the venue refused the stop as already triggered: sell with a limit now
    sold_quote: Decimal = ZERO  # quote the sells brought in (fees not taken off)
    warned: str = ""  # the waiting warning last sent, so each is sent once


class FractalTrailingStrategy(ForgetsRefusalsOnResume, Strategy[FractalParams, FractalState]):
    name = "fractal_trailing"
    params_type = FractalParams
    state_type = FractalState
    param_aliases = ALIASES
    history_size = 14 * 1440  # the default params' need in 1-minute candles; see history_needed

    def history_needed(self, params: FractalParams, interval: str) -> int:
        """What `_window` takes: the look-back plus the bars a fractal needs, in candles of
        `interval` (1,450 one-minute candles for a 1-day look-back on 5-minute bars, not 14 days)."""
        cms = INTERVAL_MS.get(interval) or INTERVAL_MS["1m"]
        return _need(params, cms)

    def parse_params(self, raw: Any, source: str = "params") -> FractalParams:
        return parse_fractal_params(raw, source)

    def wake(self, params: FractalParams, state: FractalState) -> Wake:
        """Every candle builds the bars; once the position is sold nothing is left to do."""
        return ORDERS_ONLY if state.phase == FractalPhase.DONE else EVERY_CANDLE

    # --- events --------------------------------------------------------------------------

    def on_candle(
        self, params: FractalParams, state: FractalState, candle: Candle, ctx: StrategyContext
    ) -> Step[FractalState]:
        if state.phase == FractalPhase.DONE:
            return state, []
        cmds: list[Command] = []
        if state.phase == FractalPhase.NEW:
            state, cmds = self._start(params, state, candle, ctx)
            if state.phase != FractalPhase.ACTIVE:
                return state, cmds
        state, more = self._track(params, state, candle, ctx)
        cmds.extend(more)
        state, more = self._ensure(params, replace(state, blocked=False, through=False), ctx)
        return state, cmds + more

    def on_order_update(
        self,
        params: FractalParams,
        state: FractalState,
        change: OrderChange,
        update: OrderUpdate,
        ctx: StrategyContext,
    ) -> Step[FractalState]:
        rec, fill = change.after, change.fill
        cmds: list[Command] = []
        if fill is not None and fill.side == Side.SELL:
            state = replace(state, sold_quote=state.sold_quote + fill.quote)
        if change.finished:
            if rec.cid == state.stop_cid:
                state = replace(state, stop_cid="")
            if rec.cum_filled_qty > 0:
                cmds.append(fill_notification(ctx, rec))
            if rec.status == OrderStatus.REJECTED and rec.side == Side.SELL and rec.cum_filled_qty == 0:
                state, more = self._refused(params, state, rec, update, ctx)
                cmds.extend(more)
        if state.phase == FractalPhase.ACTIVE and self._flat(state, ctx) and not self._selling(state):
            state, more = self._closed(state, ctx)
            return state, cmds + more
        state, more = self._ensure(params, state, ctx)
        return state, cmds + more

    def on_resume(
        self, params: FractalParams, state: FractalState, ctx: StrategyContext
    ) -> Step[FractalState]:
        return self._ensure(params, replace(state, blocked=False, through=False), ctx)

    def _refused(
        self,
        params: FractalParams,
        state: FractalState,
        rec: BotOrder,
        update: OrderUpdate,
        ctx: StrategyContext,
    ) -> Step[FractalState]:
        """A sell was refused. A stop refused as already triggered means the price is through
        it: the limit sell goes out at once. Anything else waits for the next candle."""
        triggered = rec.order_type == OrderType.STOP_LOSS_LIMIT and "trigger" in update.reason.lower()
        if triggered:
            state = replace(state, through=True)
            then = f"the price is through the stop: selling with a limit at {ctx.price(rec.price or ZERO)}"
        else:
            state = replace(state, blocked=True)
            then = "trying again on the next candle"
        notes: list[Command] = [
            notification(
                ctx,
                "error",
                f"stop-rejected-{rec.cid}",
                f"{ctx.bot}: {'stop' if rec.order_type == OrderType.STOP_LOSS_LIMIT else 'sell'} order "
                f"{rec.cid} rejected ({update.reason or 'no reason'}); {then}",
                level=Level.WARNING,
            )
        ]
        given_up = given_up_note(state, ctx, rec, "stop sell")
        if given_up is not None:
            notes.append(given_up)
        return state, notes

    # --- start, bars, stop ---------------------------------------------------------------

    def _start(
        self, params: FractalParams, state: FractalState, candle: Candle, ctx: StrategyContext
    ) -> Step[FractalState]:
        """Take the position in: the given quantity (at most the free balance), else the free balance."""
        free = ctx.free(ctx.base_asset)
        qty = params.quantity
        cmds: list[Command] = []
        if qty is None:
            if free is None:
                return self._wait(
                    state, ctx, "no-balance", "balances are unknown here: give `quantity` in the params"
                )
            qty = free
        elif free is not None and free < qty:
            cmds.append(
                notification(
                    ctx,
                    "info",
                    "quantity-capped",
                    f"{ctx.bot}: {ctx.qty(free)} {ctx.base_asset} free, less than quantity {ctx.qty(qty)}; "
                    "protecting what is free",
                    level=Level.WARNING,
                )
            )
            qty = free
        qty = ctx.filters.round_qty(qty)
        if limit_terms(ctx.filters, Side.SELL, qty, candle.close) is None:
            return self._wait(
                state,
                ctx,
                "nothing",
                f"{ctx.qty(qty)} {ctx.base_asset} is under the exchange minimum: waiting",
            )
        entry = params.entry if params.entry is not None else candle.close
        taken = Position(base=qty, cost=qty * entry)
        state = replace(
            state,
            phase=FractalPhase.ACTIVE,
            entry=entry,
            quantity=qty,
            position=taken,
            opening=taken,
            warned="",
        )
        cmds.append(
            decide(
                ctx,
                f"protecting {qty_(ctx, qty)} bought at {px(ctx, entry)} with a fractal trailing stop "
                f"({params.interval} bars, {params.lookback_days} days)",
                entry=entry,
                qty=qty,
            )  # fmt: skip
        )
        cmds.append(
            notification(
                ctx,
                "info",
                "protecting",
                f"{ctx.bot}: protecting {ctx.qty(qty)} {ctx.base_asset} bought at {ctx.price(entry)} with a "
                f"fractal trailing stop ({params.interval} bars, {params.lookback_days} days)",
                data={"entry": str(entry), "quantity": str(qty)},
            )
        )
        return state, cmds

    def _wait(self, state: FractalState, ctx: StrategyContext, why: str, text: str) -> Step[FractalState]:
        said = decide(ctx, f"no stop order: {text}", topic=why)
        if state.warned == why:
            return state, [said]
        note = notification(ctx, "error", f"waiting-{why}", f"{ctx.bot}: {text}", level=Level.WARNING)
        return replace(state, warned=why), [note, said]

    def _track(
        self, params: FractalParams, state: FractalState, candle: Candle, ctx: StrategyContext
    ) -> Step[FractalState]:
        """Add the candle to the bars; when a bar closed (or the bars were rebuilt) apply the rule."""
        tr = state.tracker
        cms = candle_ms_of(candle)
        if tr.last_t >= 0 and candle.open_time <= tr.last_t:
            return state, []  # seen already
        if tr.last_t < 0 or candle.open_time != tr.last_t + cms:  # first candle, or candles missed
            tr = replay(
                self._window(params, candle, ctx),
                bar_ms=params.bar_ms,
                lookback_ms=params.lookback_ms,
                entry=state.entry,
            )
            check = True
        else:
            tr, check = add_candle(
                tr,
                open_time=candle.open_time,
                candle_ms=cms,
                low=candle.low,
                close=candle.close,
                bar_ms=params.bar_ms,
                lookback_ms=params.lookback_ms,
                entry=state.entry,
            )
        new = None
        if check:
            tr, new = trail(tr, state.stop)
        state = replace(state, tracker=tr)
        if new is None:
            if state.stop is not None or not check:
                return state, []
            why = f"no stop yet: no low fractal between the entry {px(ctx, state.entry)} and the price"
            return state, [decide(ctx, why, topic="no_fractal", entry=state.entry)]
        before = state.stop
        state = replace(state, stop=new, stop_moves=state.stop_moves + 1)
        note = notification(
            ctx,
            "stop_moved",
            f"stop-{state.stop_moves}",
            f"{ctx.bot}: stop {'set at' if before is None else f'moves up from {ctx.price(before)} to'} "
            f"{ctx.price(new)} (fractal), limit {ctx.price(params.limit_for(new))}",
            data={"stop": str(new), "previous": str(before) if before is not None else ""},
        )
        moved = "set at" if before is None else "raised to"
        said = decide(ctx, f"fractal stop {moved} {px(ctx, new)} (new low fractal), limit {px(ctx, params.limit_for(new))}",
                      stop=new, previous=before or "")  # fmt: skip
        return state, [note, said]

    @staticmethod
    def _window(params: FractalParams, candle: Candle, ctx: StrategyContext) -> list[Candle]:
        """The candles a rebuild needs (look-back plus the bars a fractal needs), ending with this one."""
        need = _need(params, candle_ms_of(candle))
        hist = ctx.history[-need:] if need < len(ctx.history) else ctx.history
        return [c for c in hist if c.open_time < candle.open_time] + [candle]

    def _ensure(self, params: FractalParams, state: FractalState, ctx: StrategyContext) -> Step[FractalState]:
        """One sell at the stop in force: cancel a stale one, place the new one once it is gone —
        a STOP_LOSS_LIMIT, or a LIMIT at its limit price when the price is already through it."""
        if not state.running or state.phase != FractalPhase.ACTIVE or state.stop is None or state.blocked:
            return state, []
        limit = params.limit_for(state.stop)
        current = state.orders.get(state.stop_cid) if state.stop_cid else None
        if current is not None:
            if current.cancel_requested or self._serves(current, state.stop, limit, ctx):
                return state, []
            state, cancel = cancel_order(state, ctx, current.cid)
            return state, [cancel] if cancel is not None else []
        if self._selling(state):
            return state, []  # another sell (a close) is out: never two
        if limit <= 0:
            return self._wait(
                state, ctx, "pad", f"pad leaves no limit price under the stop {ctx.price(state.stop)}"
            )
        qty = state.position.base
        if limit_terms(ctx.filters, Side.SELL, qty, limit) is None:
            return self._wait(
                state,
                ctx,
                f"small-{state.stop_moves}",
                f"{ctx.qty(qty)} {ctx.base_asset} at {ctx.price(limit)} is under the exchange minimum: no stop order",
            )
        if self._through(state, ctx):
            placed = limit_order(state, ctx, Side.SELL, qty, limit, tag=f"hit{state.stop_moves}")
            text = f"price is through the stop {px(ctx, state.stop)}: limit sell of {qty_(ctx, qty)} at {px(ctx, limit)}"
        else:
            text = f"stop-limit sell of {qty_(ctx, qty)} placed: stop {px(ctx, state.stop)}, limit {px(ctx, limit)}"
            placed = stop_limit_order(
                state, ctx, Side.SELL, qty, state.stop, limit, tag=f"stop{state.stop_moves}"
            )
        state, place = unless_given_up(state, placed)
        if place is None:
            return state, []  # given up, or held back by the interface's backoff
        return replace(state, stop_cid=place.cid, warned=""), [
            place,
            decide(ctx, text, stop=state.stop, limit=limit),
        ]

    @staticmethod
    def _serves(order: BotOrder, stop: Decimal, limit: Decimal, ctx: StrategyContext) -> bool:
        """Whether the sell out is the one for this stop (a stop-limit at it, or the limit sell
        that replaced it once the price was through)."""
        if order.order_type == OrderType.STOP_LOSS_LIMIT:
            return order.stop_price == ctx.filters.round_price(stop, Side.SELL)
        return order.price == ctx.filters.round_price(limit, Side.SELL)

    @staticmethod
    def _through(state: FractalState, ctx: StrategyContext) -> bool:
        """The price is at or under the stop: a stop-limit would trigger at once (and is refused)."""
        if state.through:
            return True
        price = state.tracker.close or ctx.last_price
        assert state.stop is not None
        return price is not None and price <= ctx.filters.round_price(state.stop, Side.SELL)

    def _closed(self, state: FractalState, ctx: StrategyContext) -> Step[FractalState]:
        """The position is sold: report the result against the entry and stop acting."""
        pos = state.position
        profit = pos.realised
        avg = state.sold_quote / pos.sold if pos.sold > 0 else ZERO
        invested = state.quantity * state.entry
        gain = profit / invested if invested > 0 else ZERO
        note = notification(
            ctx,
            "position_closed",
            "closed",
            f"{ctx.bot}: position closed: {ctx.qty(pos.sold)} {ctx.base_asset} sold at {ctx.price(avg)} "
            f"(entry {ctx.price(state.entry)}), profit {ctx.quote(profit)} {ctx.quote_asset} "
            f"({percent(gain)})",
            data={
                "entry": str(state.entry),
                "quantity": str(state.quantity),
                "sold": str(pos.sold),
                "avg_price": str(avg),
                "profit": str(profit),
                "stop": str(state.stop) if state.stop is not None else "",
            },
        )
        said = decide(ctx, f"position sold: {qty_(ctx, pos.sold)} at {px(ctx, avg)} (entry {px(ctx, state.entry)}), "
                      f"profit {quote_(ctx, profit)} ({percent(gain)})", profit=profit)  # fmt: skip
        return replace(state, phase=FractalPhase.DONE, stop_cid=""), [note, said]

    # --- small predicates ----------------------------------------------------------------

    @staticmethod
    def _flat(state: FractalState, ctx: StrategyContext) -> bool:
        """Nothing left that an order could sell (dust under the step size or the minimums)."""
        ref = state.tracker.close or state.entry
        return limit_terms(ctx.filters, Side.SELL, state.position.base, ref) is None

    @staticmethod
    def _selling(state: FractalState) -> bool:
        return any(r.side == Side.SELL for r in state.orders.values())


STRATEGY = FractalTrailingStrategy()


def _need(params: FractalParams, candle_ms: int) -> int:
    """Candles of candle_ms a rebuild needs: the look-back plus the bars around a fractal."""
    size = max(params.bar_ms, candle_ms)
    return (params.lookback_ms + (2 * WING + 2) * size) // candle_ms + 1
