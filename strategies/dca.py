"""DCA with safety orders (docs/STRATEGIES.md §1) as a pure strategy.

A cycle opens with a market buy by quote amount; when it fills, a take-profit limit sell for
the whole position and the first safety (limit) buy go out. Each safety fill moves the
average, lowers/raises the target and places the next safety order, until the ladder ends
(max_safety_orders, budget, min notional). The take profit filling closes the cycle: the
open safety order is cancelled, the profit booked (and with reinvest_profit spread over the
next cycle's buys), and the next cycle opens.

The state says what should exist (phase, ladder cursor, target); `_ensure` then brings the
orders in line with it after every event. That one function serves fills, partial fills,
resume after pause/stop and stale take-profit races alike.

One live order per purpose, whatever the venue does in between: an order asked to cancel may
still fill until the venue's answer arrives, so
- a take profit that no longer fits the position is cancelled, and its replacement goes out
  only once the cancel's answer (or the order's last fill) has arrived, sized from the
  position then — or not at all, if the old one sold everything;
- a safety buy goes out only while no other buy of the bot is open;
- a cycle closes in two steps: the take profit leaves it flat, its buys are cancelled
  (phase closing), and only when no order of it is open any more is the profit booked and
  the next cycle opened. A buy that filled meanwhile keeps the cycle going (a take profit for
  it goes out), so no fill of one cycle is ever booked into the next.
A refused take profit is tried again on the next candle, not in the same step; terms refused
three times in a row are given up (strategies/refused.py).
"""

from __future__ import annotations

from decimal import Decimal
from enum import StrEnum
from typing import Any

import msgspec

from shared.filters import SymbolFilters
from shared.messages import BUY, REJECTED, SELL, Candle, Level, OrderUpdate
from shared.money import ZERO
from shared.strategy import (
    ORDERS_ONLY,
    Command,
    OrderChange,
    Position,
    Step,
    Strategy,
    StrategyContext,
    StrategyState,
    Wake,
    cancel_order,
    cancel_orders,
    decide,
    fill_notification,
    limit_order,
    market_order,
    notification,
)
from shared.strategy.base import EVERY_CANDLE
from shared.strategy.decisions import percent, price
from shared.strategy.decisions import quote as quote_
from shared.strategy.sizing import checked_terms
from strategies.dca_ladder import (
    LadderStop,
    next_target,
    reinvest_bonus,
    safety_order,
    take_profit_price,
)
from strategies.dca_params import ALIASES, DcaParams, parse_dca_params
from strategies.refused import ForgetsRefusalsOnResume, given_up_note, unless_given_up

replace = msgspec.structs.replace


class DcaPhase(StrEnum):
    IDLE = "idle"  # no cycle
    OPENING = "opening"  # the cycle's market buy is out
    ACTIVE = "active"  # a take profit and the safety ladder
    CLOSING = "closing"  # flat: the cycle's buys are being cancelled (booked once none is open)


# Module globals: an enum member looked up on its class costs four times as much, and these are
# compared on every order update (shared.messages' BUY, SELL and REJECTED likewise).
IDLE, ACTIVE, CLOSING = DcaPhase.IDLE, DcaPhase.ACTIVE, DcaPhase.CLOSING

LADDER_END = {LadderStop.MAX: "max_safety_orders reached", LadderStop.BUDGET: "the budget is spent",
              LadderStop.FILTERS: "it would be under the exchange minimum"}  # fmt: skip


class DcaState(StrategyState, frozen=True, kw_only=True):
    phase: DcaPhase = DcaPhase.IDLE
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
    tp_retry: bool = False  # the take profit was refused: placed again on the next candle


class DcaStrategy(ForgetsRefusalsOnResume, Strategy[DcaParams, DcaState]):
    name = "dca"
    params_type = DcaParams
    state_type = DcaState
    param_aliases = ALIASES

    def parse_params(self, raw: Any, source: str = "params") -> DcaParams:
        return parse_dca_params(raw, source)

    def wake(self, params: DcaParams, state: DcaState) -> Wake:
        """Only an idle running bot (to open a cycle) or one whose take profit was refused (to
        place it again) needs candles; otherwise its orders decide."""
        needs = state.phase == IDLE or (state.phase == ACTIVE and state.tp_retry)
        return EVERY_CANDLE if needs and state.running else ORDERS_ONLY

    # --- events --------------------------------------------------------------------------

    def on_candle(
        self, params: DcaParams, state: DcaState, candle: Candle, ctx: StrategyContext
    ) -> Step[DcaState]:
        if state.phase == ACTIVE and state.tp_retry:
            cmds: list[Command] = []
            return self._ensure(params, replace(state, tp_retry=False), ctx, cmds), cmds
        if state.phase != IDLE or state.orders:
            return state, []  # a cycle is on, or an order of the last one (or of a close) is still open
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
        cid, finished = rec.cid, rec.terminal
        cmds: list[Command] = []
        if fill is not None and fill.side == BUY and state.phase != IDLE:
            state = replace(state, spent=state.spent + fill.quote)
        if cid == state.base_cid:
            if finished:
                state, cmds = self._opened(state, rec, ctx)
        elif cid == state.so_cid:
            if fill is not None and state.target_level < state.so_level:
                state = replace(state, target=next_target(params, state.target), target_level=state.so_level)
            if finished:
                state, cmds = self._safety_finished(state, rec, ctx)
        elif finished and cid == state.tp_cid:
            state, cmds = self._take_profit_finished(state, rec, update, ctx)
        if finished:
            if rec.cum_filled_qty > ZERO:
                cmds.append(fill_notification(ctx, rec))
            if rec.status == REJECTED:  # given_up_note has nothing to say otherwise
                note = given_up_note(state, ctx, rec, "order")
                if note is not None:
                    cmds.append(note)
        phase = state.phase
        if (
            phase == ACTIVE
            and _position_view(ctx.filters, state.position, state.target)[0]
            and not self._selling(state)
        ):
            state, more = self._close_cycle(params, state, ctx)
            cmds.extend(more)
        elif phase == CLOSING:
            state, more = self._finish_cycle(params, state, ctx)
            cmds.extend(more)
        return self._ensure(params, state, ctx, cmds), cmds

    def on_resume(self, params: DcaParams, state: DcaState, ctx: StrategyContext) -> Step[DcaState]:
        cmds: list[Command] = []
        return self._ensure(params, replace(state, tp_retry=False), ctx, cmds), cmds

    def on_close(self, params: DcaParams, state: DcaState, ctx: StrategyContext) -> Step[DcaState]:
        """After close (orders cancelled, position sold) the next resume opens a fresh cycle."""
        return replace(state, phase=IDLE, base_cid="", tp_cid="", so_cid="", tp_retry=False), []

    # --- cycle ---------------------------------------------------------------------------

    def _open_cycle(
        self, params: DcaParams, state: DcaState, ctx: StrategyContext, last_price: Decimal | None
    ) -> Step[DcaState]:
        bonus = reinvest_bonus(params, state.profit_total)
        quote = params.base_order_quote + bonus
        free = ctx.free(ctx.quote_asset)
        if free is not None and free < quote:
            why = decide(
                ctx,
                f"no new cycle: {quote_(ctx, free)} free, {quote_(ctx, quote)} needed to open cycle {state.cycle + 1}",
                topic="funds", free=free, needed=quote,
            )  # fmt: skip
            if state.waiting_funds:
                return state, [why]
            note = notification(
                ctx,
                "error",
                f"funds-{state.cycle + 1}",
                f"{ctx.bot}: {ctx.quote(free)} {ctx.quote_asset} free, {ctx.quote(quote)} needed to open cycle "
                f"{state.cycle + 1}; waiting",
                level=Level.WARNING,
            )
            return replace(state, waiting_funds=True), [note, why]
        state, cmd = unless_given_up(
            state, market_order(state, ctx, BUY, quote=quote, tag=f"base{state.cycle + 1}")
        )
        if cmd is None:
            return state, []
        state = replace(
            state,
            phase=DcaPhase.OPENING,
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
        at = (
            f" at about {price(ctx, last_price)}" if last_price else ""
        )  # a candle's close, when one opened it
        said = decide(ctx, f"cycle {state.cycle} opened: market buy for {quote_(ctx, quote)}{at}",
                      cycle=state.cycle, quote=quote)  # fmt: skip
        return state, [cmd, said]

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
            said = self._safety_filled(state, rec.price, ctx)
            state = replace(
                state,
                so_cid="",
                level=state.so_level,
                last_buy_price=rec.price,
                ladder_step=state.so_step,
                ladder_raw=state.so_raw,
                safety_fills=state.safety_fills + 1,
            )
            return state, [said]
        state = replace(state, so_cid="")
        if rec.status == REJECTED:
            note = notification(
                ctx,
                "error",
                f"so-rejected-{rec.cid}",
                f"{ctx.bot}: safety order {rec.cid} rejected; the ladder stops, waiting for the take profit",
                level=Level.WARNING,
            )
            return replace(state, ladder_done=True), [note]
        return state, []

    @staticmethod
    def _safety_filled(state: DcaState, at: Decimal, ctx: StrategyContext) -> Command:
        last = state.last_buy_price
        fell = (last - at) / last if last > 0 else ZERO
        return decide(
            ctx,
            f"safety order {state.so_level} at {price(ctx, at)}: price fell {percent(fell)} below the last buy",
            safety_order=state.so_level, price=at, last_buy=last,
        )  # fmt: skip

    def _take_profit_finished(
        self, state: DcaState, rec: Any, update: OrderUpdate, ctx: StrategyContext
    ) -> Step[DcaState]:
        """The take profit is gone (its replacement, if any, may go out now); refused, it is
        placed again on the next candle rather than at once."""
        state = replace(state, tp_cid="")
        if rec.status != REJECTED or rec.cum_filled_qty > 0:
            return state, []
        note = notification(
            ctx,
            "error",
            f"tp-rejected-{rec.cid}",
            f"{ctx.bot}: take profit {rec.cid} refused ({update.reason or 'no reason'}); "
            "placing it again on the next candle",
            level=Level.WARNING,
        )
        return replace(state, tp_retry=True), [note]

    def _close_cycle(self, params: DcaParams, state: DcaState, ctx: StrategyContext) -> Step[DcaState]:
        """Take profit done: cancel the cycle's buys; the cycle is booked once none is open."""
        buys = [cid for cid, rec in sorted(state.orders.items()) if rec.side == BUY]
        state, cancels = cancel_orders(state, ctx, buys)
        state, more = self._finish_cycle(params, replace(state, phase=CLOSING), ctx)
        return state, [*cancels, *more]

    def _finish_cycle(self, params: DcaParams, state: DcaState, ctx: StrategyContext) -> Step[DcaState]:
        """Closing, and no order of the cycle open any more: book the profit and open the next
        cycle at once — or, if a buy filled before its cancel landed, go on with the cycle."""
        if state.orders:
            return state, []  # a cancelled buy may still fill: wait for its answer
        if not _position_view(ctx.filters, state.position, state.target)[0]:
            return replace(state, phase=ACTIVE), []  # a buy filled meanwhile: it gets a take profit
        profit = state.position.realised - state.realised_at_start
        note = notification(
            ctx,
            "cycle_closed",
            f"cycle-{state.cycle}",
            f"{ctx.bot}: cycle {state.cycle} closed after {state.level} safety orders, "
            f"profit {ctx.quote(profit)} {ctx.quote_asset}",
            data={"cycle": state.cycle, "profit": str(profit), "safety_orders": state.level},
        )
        state = replace(
            state,
            phase=IDLE,
            cycles_closed=state.cycles_closed + 1,
            profit_total=state.profit_total + profit,
            tp_cid="",
            so_cid="",
            tp_retry=False,
        )
        said = decide(
            ctx,
            f"cycle {state.cycle} closed: take profit filled after {state.level} safety orders, "
            f"profit {quote_(ctx, profit)}",
            cycle=state.cycle, profit=profit,
        )  # fmt: skip
        cmds: list[Command] = [note, said]
        if state.running:
            state, more = self._open_cycle(params, state, ctx, None)
            cmds.extend(more)
        return state, cmds

    # --- keeping the orders in line with the state ---------------------------------------

    def _ensure(
        self, params: DcaParams, state: DcaState, ctx: StrategyContext, cmds: list[Command]
    ) -> DcaState:
        """The take profit and the next safety order the state asks for (their commands added
        to cmds). Runs after every order update, most of which change neither: the checks
        that find nothing to do come first and stay cheap."""
        if state.phase != ACTIVE or not state.running:
            return state
        state = self._sync_take_profit(state, ctx, cmds)
        if state.ladder_done or state.so_cid or state.level >= params.max_safety_orders:
            return state
        return self._next_safety(params, state, ctx, cmds)

    def _sync_take_profit(self, state: DcaState, ctx: StrategyContext, cmds: list[Command]) -> DcaState:
        """One take-profit sell for the whole position at avg × (1 + target). When either moves,
        the old one is cancelled and the new one placed only once the old one is gone: both
        could fill otherwise, selling more than the position."""
        global _last_kept
        pos, target, filters = state.position, state.target, ctx.filters
        current = state.orders.get(state.tp_cid) if state.tp_cid else None
        if current is not None:
            if current.cancel_requested:
                return state  # the replacement waits for the cancel's answer
            kept = _last_kept
            if kept[0] is current and kept[1] is pos and kept[2] is target and kept[3] is filters:
                return state  # the very order found fitting this position and target last time
            wanted = _position_view(filters, pos, target)[1]
            if wanted is not None and (current.remaining, current.price) == wanted:
                _last_kept = (current, pos, target, filters)
                return state
            state, cancel = cancel_order(state, ctx, current.cid)
            if cancel is not None:
                cmds.append(cancel)
            return state
        wanted = _position_view(filters, pos, target)[1]
        if wanted is None or state.tp_retry or self._selling(state, cancelling_too=True):
            return state
        state, place = unless_given_up(
            state, limit_order(state, ctx, SELL, wanted[0], wanted[1], tag=f"tp{state.cycle}")
        )
        if place is None:
            return state
        at, avg = price(ctx, wanted[1]), pos.avg_price
        if state.target_level > 0:
            text = f"take profit moved to {at} after safety order {state.target_level} filled"
        else:
            text = f"take profit at {at}: {percent(state.target)} above the average buy {price(ctx, avg or ZERO)}"
        cmds.append(place)
        cmds.append(decide(ctx, text, price=wanted[1], qty=wanted[0], average=avg))
        return replace(state, tp_cid=place.cid)

    def _next_safety(
        self, params: DcaParams, state: DcaState, ctx: StrategyContext, cmds: list[Command]
    ) -> DcaState:
        """The next safety order, for _ensure once the ladder goes on and none is out."""
        for r in state.orders.values():
            if r.side == BUY:
                return state  # never two buys out: one of the last cycle may still be cancelling
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
            said = decide(ctx, f"no safety order {level}: {LADDER_END.get(why, why)}; waiting for the take profit",
                          safety_order=level, reason=why)  # fmt: skip
            cmds.append(note)
            cmds.append(said)
            return replace(state, ladder_done=True)
        state, place = unless_given_up(
            state, limit_order(state, ctx, BUY, so.qty, so.price, tag=f"so{level}")
        )
        if place is None:
            return state
        state = replace(state, so_cid=place.cid, so_level=level, so_step=so.step, so_raw=so.raw_quote)
        said = decide(
            ctx,
            f"safety order {level} placed at {price(ctx, so.price)} for {quote_(ctx, so.quote)}: "
            f"{percent(so.step)} below the last buy at {price(ctx, state.last_buy_price)}",
            safety_order=level, price=so.price, qty=so.qty,
        )  # fmt: skip
        cmds.append(place)
        cmds.append(said)
        return state

    # --- small predicates ----------------------------------------------------------------

    @staticmethod
    def _selling(state: DcaState, cancelling_too: bool = False) -> bool:
        """A sell is out (counting ones asked to cancel, which may still fill, if cancelling_too)."""
        for r in state.orders.values():
            if r.side == SELL and (cancelling_too or not r.cancel_requested):
                return True
        return False


# Every order update asks again whether the position is flat and what take profit it wants,
# though only a fill moves the position: the last answer is kept, for the very same inputs
# (frozen Structs and Decimals, compared by identity: Decimals equal in value may print
# differently). One tuple, read and replaced whole, so threads cannot mix two answers.
_last_view: tuple[object, object, object, tuple[bool, tuple[Decimal, Decimal] | None]] = (
    None, None, None, (False, None)
)  # fmt: skip
# The take profit last found to fit, with the position, target and filters it fit: (current,
# pos, target, filters). Most updates (an ack, another order's cancel) leave all four as they were.
_last_kept: tuple[object, object, object, object] = (None, None, None, None)


def _position_view(
    filters: SymbolFilters, pos: Position, target: Decimal
) -> tuple[bool, tuple[Decimal, Decimal] | None]:
    """Whether the position is flat (nothing left that could be sold: dust under the step size
    or the min notional, at its average), and the (qty, price) of the take profit for all of it
    at avg × (1 + target). Together, as both sell the same rounded quantity."""
    global _last_view
    last = _last_view
    if last[0] is filters and last[1] is pos and last[2] is target:
        return last[3]
    avg = pos.avg_price
    if avg is None:
        view: tuple[bool, tuple[Decimal, Decimal] | None] = (True, None)
    else:
        qty = filters.round_qty(pos.base)
        # take_profit_price is rounded up to the tick already, as limit_terms would round it
        view = (
            checked_terms(filters, qty, filters.round_price(avg, SELL)) is None,
            checked_terms(filters, qty, take_profit_price(filters, avg, target)),
        )
    _last_view = (filters, pos, target, view)
    return view


STRATEGY = DcaStrategy()
