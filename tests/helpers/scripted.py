"""A small deterministic strategy for runner tests.

On a rising candle (close > open) it places a limit buy of `qty` at the close; when a buy
fills it places a limit sell at close x 1.01. A candle closing at `fail_on` makes it raise,
and `fail_at_start` its initial_state (`fail_in_history` its history_needed).
Each order command is therefore a pure function of the inputs, so a replay after a crash must
produce exactly the same commands."""

from __future__ import annotations

from decimal import Decimal

import msgspec

from shared.messages import Candle, OrderUpdate, Side, TimerFired
from shared.strategy.actions import OrderChange, limit_order, set_timer
from shared.strategy.base import Step, Strategy
from shared.strategy.context import StrategyContext
from shared.strategy.state import StrategyState


class ScriptedParams(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    qty: Decimal = Decimal("0.1")
    fail_on: Decimal = Decimal("-1")
    drop_on: Decimal = Decimal("-1")
    timer_ms: int = 0  # > 0: the first candle sets a timer that many ms after its close; it buys
    fail_at_start: bool = False  # initial_state raises
    fail_in_history: bool = False  # history_needed raises


class ScriptedState(StrategyState, frozen=True):
    candles: int = 0


class Scripted(Strategy[ScriptedParams, ScriptedState]):
    name = "scripted"
    params_type = ScriptedParams
    state_type = ScriptedState

    def history_needed(self, params: ScriptedParams, interval: str) -> int:
        if params.fail_in_history:
            raise RuntimeError("scripted failure sizing the history")
        return super().history_needed(params, interval)

    def initial_state(self, params: ScriptedParams, ctx: StrategyContext) -> ScriptedState:
        if params.fail_at_start:
            raise RuntimeError("scripted failure at start")
        return ScriptedState()

    def on_candle(
        self, params: ScriptedParams, state: ScriptedState, candle: Candle, ctx: StrategyContext
    ) -> Step:
        if candle.close == params.fail_on:
            raise RuntimeError(f"scripted failure at close {candle.close}")
        state = msgspec.structs.replace(state, candles=state.candles + 1)
        if params.timer_ms and state.candles == 1:
            state, timer = set_timer(state, "recheck", candle.close_time + params.timer_ms)
            return state, [timer]
        if candle.close <= candle.open:
            return state, []
        state, buy = limit_order(state, ctx, Side.BUY, params.qty, candle.close, tag="buy")
        if candle.close == params.drop_on:
            return state, []
        return state, [buy] if buy else []

    def on_timer(
        self, params: ScriptedParams, state: ScriptedState, timer: TimerFired, ctx: StrategyContext
    ) -> Step:
        price = ctx.last_price or Decimal("100")
        state, buy = limit_order(state, ctx, Side.BUY, params.qty, price, tag="timer")
        return state, [buy] if buy else []

    def on_order_update(
        self,
        params: ScriptedParams,
        state: ScriptedState,
        change: OrderChange,
        update: OrderUpdate,
        ctx: StrategyContext,
    ) -> Step:
        if change.after.tag == "buy" and change.finished and change.fill is not None:
            price = (change.after.price or Decimal(0)) * Decimal("1.01")
            state, sell = limit_order(state, ctx, Side.SELL, change.after.cum_filled_qty, price, tag="sell")
            return state, [sell] if sell else []
        return state, []
