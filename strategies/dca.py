"""DCA with safety orders ("recompra"), ../STRATEGIES.md §1, as a pure strategy.

A cycle opens with a market buy by quote amount; when it fills, a take-profit limit sell for
the whole position and the first safety (limit) buy go out. Each safety fill moves the
average, lowers/raises the target and places the next safety order, until the ladder ends
(max_safety_orders, budget, min notional). The take profit filling closes the cycle: the
open safety order is cancelled, the profit booked (and with reinvest_profit spread over the
next cycle's buys), and the next cycle opens at once.

The state says what should exist (phase, ladder cursor, target); `_ensure` then brings the
orders in line with it after every event. That one function serves fills, partial fills,
resume after pause/stop and stale take-profit races alike.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import msgspec

from shared.messages import Candle, Level, OrderStatus, OrderUpdate, Side
from shared.money import ZERO, fmt
from shared.strategy import (
    ORDERS_ONLY,
    Command,
    OrderChange,
    Step,
    Strategy,
    StrategyContext,
    StrategyState,
    Wake,
    cancel_order,
    cancel_orders,
    fill_notification,
    limit_order,
    market_order,
    notification,
)
from shared.strategy.base import EVERY_CANDLE
from shared.strategy.sizing import limit_terms
from strategies.dca_ladder import next_target, reinvest_bonus, safety_order, take_profit_price
from strategies.dca_params import ALIASES, DcaParams, parse_dca_params

replace = msgspec.structs.replace

IDLE, OPENING, ACTIVE = "idle", "opening", "active"


class DcaState(StrategyState, frozen=True, kw_only=True):
    phase: str = IDLE  # idle: no cycle; opening: market buy out; active: take profit + ladder
    cycle: int = 0  # number of the current (or last) cycle
    cycles_closed: int = 0
    profit_total: Decimal = ZERO  # realised profit of closed cycles
    safety_fills: int = 0  # safety levels filled, all cycles
    # the current cycle
    realised_at_start: Decimal = ZERO  # position.realised when the cycle opened
    bonus: Decimal = ZERO  # reinvest bonus added to every buy of this cycle
    spent: Decimal = ZERO  # quote spent on buys this cycle (fees excluded)
    level: int = 0  # safety levels done (filled, or cancelled after a partial fill)
    last_buy_price: Decimal = ZERO  # price of the last completed buy level
    ladder_step: Decimal = ZERO  # step of the last completed level (0 before safety order 1)
    ladder_raw: Decimal = ZERO  # size before bonus of the last completed level
    ladder_done: bool = False  # the ladder stopped (budget, min notional, rejection)
    target: Decimal = ZERO  # current take-profit target
    target_level: int = 0  # level whose fill set `target`
    base_cid: str = ""
    tp_cid: str = ""
    so_cid: str = ""
    so_level: int = 0
    so_step: Decimal = ZERO
    so_raw: Decimal = ZERO
    waiting_funds: bool = False  # a cycle could not open for lack of free quote (warned once)


class DcaStrategy(Strategy[DcaParams, DcaState]):
    name = "dca"
    params_type = DcaParams
    state_type = DcaState
    param_aliases = ALIASES

    def parse_params(self, raw: Any, source: str = "params") -> DcaParams:
        return parse_dca_params(raw, source)

    def wake(self, params: DcaParams, state: DcaState) -> Wake:
        """Only an idle running bot needs candles (to open a cycle); otherwise its orders decide."""
        return EVERY_CANDLE if state.phase == IDLE and state.running else ORDERS_ONLY

    # --- events --------------------------------------------------------------------------

    def on_candle(
        self, params: DcaParams, state: DcaState, candle: Candle, ctx: StrategyContext
    ) -> Step[DcaState]:
        if state.phase != IDLE:
            return state, []
        return self._open_cycle(params, state, ctx, candle.close)

    def on_order_update(
        self,
        params: DcaParams,
        state: DcaState,
        change: OrderChange,
        update: OrderUpdate,
        ctx: StrategyContext,
    ) -> Step[DcaState]:
        rec, fill = change.after, change.fill
        cmds: list[Command] = []
        if fill is not None and fill.side == Side.BUY and state.phase != IDLE:
            state = replace(state, spent=state.spent + fill.quote)
        if rec.cid == state.base_cid:
            if change.finished:
                state, cmds = self._opened(state, rec, ctx)
        elif rec.cid == state.so_cid:
            if fill is not None and state.target_level < state.so_level:
                state = replace(state, target=next_target(params, state.target), target_level=state.so_level)
            if change.finished:
                state, cmds = self._safety_finished(state, rec, ctx)
        elif rec.cid == state.tp_cid and change.finished:
            state = replace(state, tp_cid="")
        if change.finished and rec.cum_filled_qty > 0:
            cmds.append(fill_notification(ctx, rec))
        if state.phase == ACTIVE and self._flat(state, ctx) and not self._selling(state):
            state, more = self._close_cycle(params, state, ctx)
            cmds.extend(more)
        state, more = self._ensure(params, state, ctx)
        return state, cmds + more

    def on_resume(self, params: DcaParams, state: DcaState, ctx: StrategyContext) -> Step[DcaState]:
        return self._ensure(params, state, ctx)

    def on_close(self, params: DcaParams, state: DcaState, ctx: StrategyContext) -> Step[DcaState]:
        """After close (orders cancelled, position sold) the next resume opens a fresh cycle."""
        return replace(state, phase=IDLE, base_cid="", tp_cid="", so_cid=""), []

    # --- cycle ---------------------------------------------------------------------------

    def _open_cycle(
        self, params: DcaParams, state: DcaState, ctx: StrategyContext, price: Decimal | None
    ) -> Step[DcaState]:
        bonus = reinvest_bonus(params, state.profit_total)
        quote = params.base_order_quote + bonus
        free = ctx.free(ctx.quote_asset)
        if free is not None and free < quote:
            if state.waiting_funds:
                return state, []
            note = notification(
                ctx,
                "error",
                f"funds-{state.cycle + 1}",
                f"{ctx.bot}: {fmt(free)} {ctx.quote_asset} free, {fmt(quote)} needed to open cycle "
                f"{state.cycle + 1}; waiting",
                level=Level.WARNING,
            )
            return replace(state, waiting_funds=True), [note]
        state, cmd = market_order(state, ctx, Side.BUY, quote=quote, tag=f"base{state.cycle + 1}")
        if cmd is None:
            return state, []
        state = replace(
            state,
            phase=OPENING,
            cycle=state.cycle + 1,
            realised_at_start=state.position.realised,
            bonus=bonus,
            spent=ZERO,
            level=0,
            last_buy_price=ZERO,
            ladder_step=ZERO,
            ladder_raw=params.base_order_quote,
            ladder_done=False,
            target=params.take_profit,
            target_level=0,
            base_cid=cmd.cid,
            so_cid="",
            waiting_funds=False,
        )
        return state, [cmd]

    def _opened(self, state: DcaState, rec: Any, ctx: StrategyContext) -> Step[DcaState]:
        """The opening market buy finished: the cycle is active, or back to idle if nothing filled."""
        if rec.cum_filled_qty > 0:
            return replace(state, phase=ACTIVE, base_cid="", last_buy_price=rec.avg_fill_price), []
        note = notification(
            ctx,
            "error",
            f"open-failed-{rec.cid}",
            f"{ctx.bot}: opening buy {rec.cid} {rec.status}; retrying on the next candle",
            level=Level.WARNING,
        )
        return replace(state, phase=IDLE, base_cid=""), [note]

    def _safety_finished(self, state: DcaState, rec: Any, ctx: StrategyContext) -> Step[DcaState]:
        """A safety order finished: its level is done if anything filled; a rejection ends the ladder."""
        if rec.cum_filled_qty > 0:
            state = replace(
                state,
                so_cid="",
                level=state.so_level,
                last_buy_price=rec.price,
                ladder_step=state.so_step,
                ladder_raw=state.so_raw,
                safety_fills=state.safety_fills + 1,
            )
            return state, []
        state = replace(state, so_cid="")
        if rec.status == OrderStatus.REJECTED:
            note = notification(
                ctx,
                "error",
                f"so-rejected-{rec.cid}",
                f"{ctx.bot}: safety order {rec.cid} rejected; the ladder stops, waiting for the take profit",
                level=Level.WARNING,
            )
            return replace(state, ladder_done=True), [note]
        return state, []

    def _close_cycle(self, params: DcaParams, state: DcaState, ctx: StrategyContext) -> Step[DcaState]:
        """Take profit done: cancel the ladder, book the profit, open the next cycle at once."""
        profit = state.position.realised - state.realised_at_start
        buys = [cid for cid, rec in sorted(state.orders.items()) if rec.side == Side.BUY]
        state, cancels = cancel_orders(state, ctx, buys)
        note = notification(
            ctx,
            "cycle_closed",
            f"cycle-{state.cycle}",
            f"{ctx.bot}: cycle {state.cycle} closed after {state.level} safety orders, "
            f"profit {fmt(profit)} {ctx.quote_asset}",
            data={"cycle": state.cycle, "profit": str(profit), "safety_orders": state.level},
        )
        state = replace(
            state,
            phase=IDLE,
            cycles_closed=state.cycles_closed + 1,
            profit_total=state.profit_total + profit,
            tp_cid="",
            so_cid="",
        )
        cmds: list[Command] = [*cancels, note]
        if state.running:
            state, more = self._open_cycle(params, state, ctx, None)
            cmds.extend(more)
        return state, cmds

    # --- keeping the orders in line with the state ---------------------------------------

    def _ensure(self, params: DcaParams, state: DcaState, ctx: StrategyContext) -> Step[DcaState]:
        if not state.running or state.phase != ACTIVE:
            return state, []
        state, cmds = self._sync_take_profit(state, ctx)
        state, more = self._next_safety(params, state, ctx)
        return state, cmds + more

    def _sync_take_profit(self, state: DcaState, ctx: StrategyContext) -> Step[DcaState]:
        """One take-profit sell for the whole position at avg × (1 + target); replaced when either moves."""
        pos = state.position
        avg = pos.avg_price
        wanted = None
        if avg is not None:
            wanted = limit_terms(
                ctx.filters, Side.SELL, pos.base, take_profit_price(ctx.filters, avg, state.target)
            )
        current = state.orders.get(state.tp_cid) if state.tp_cid else None
        keep = current is not None and not current.cancel_requested and wanted is not None
        if keep and (current.remaining, current.price) == wanted:  # type: ignore[union-attr]
            return state, []
        cmds: list[Command] = []
        if current is not None:
            state, cancel = cancel_order(state, ctx, current.cid)
            if cancel is not None:
                cmds.append(cancel)
        state = replace(state, tp_cid="")
        if wanted is not None:
            state, place = limit_order(state, ctx, Side.SELL, wanted[0], wanted[1], tag=f"tp{state.cycle}")
            if place is not None:
                state = replace(state, tp_cid=place.cid)
                cmds.append(place)
        return state, cmds

    def _next_safety(self, params: DcaParams, state: DcaState, ctx: StrategyContext) -> Step[DcaState]:
        if state.ladder_done or state.so_cid or state.level >= params.max_safety_orders:
            return state, []
        level = state.level + 1
        so, why = safety_order(
            params,
            ctx.filters,
            level=level,
            prev_price=state.last_buy_price,
            prev_step=state.ladder_step or None,
            prev_raw=state.ladder_raw,
            committed=state.spent,
            bonus=state.bonus,
            free_quote=ctx.free(ctx.quote_asset),
        )
        if so is None:
            note = notification(
                ctx,
                "info",
                f"ladder-end-{state.cycle}",
                f"{ctx.bot}: cycle {state.cycle}: no safety order {level} ({why}); waiting for the take profit",
            )
            return replace(state, ladder_done=True), [note]
        state, place = limit_order(state, ctx, Side.BUY, so.qty, so.price, tag=f"so{level}")
        if place is None:
            return state, []
        state = replace(state, so_cid=place.cid, so_level=level, so_step=so.step, so_raw=so.raw_quote)
        return state, [place]

    # --- small predicates ----------------------------------------------------------------

    @staticmethod
    def _flat(state: DcaState, ctx: StrategyContext) -> bool:
        """Nothing left that could be sold (dust under the step size or the min notional)."""
        pos = state.position
        avg = pos.avg_price
        return avg is None or limit_terms(ctx.filters, Side.SELL, pos.base, avg) is None

    @staticmethod
    def _selling(state: DcaState) -> bool:
        return any(r.side == Side.SELL and not r.cancel_requested for r in state.orders.values())


STRATEGY = DcaStrategy()
