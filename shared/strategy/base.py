"""The strategy interface: `step(params, state, event, ctx) -> (state, commands)`.

A strategy is a pure state machine (docs/ARCHITECTURE.md, "Strategies are pure"): no I/O, no
clock, no randomness; everything it knows comes in params, state, event and ctx. The live
runner and the backtester call the very same `step`, so the same candles give the same orders.

Subclass Strategy, set `name`, `params_type`, `state_type` (a StrategyState subclass) and
override the on_* hooks. `step` does the generic work first: order updates are applied
forward-only (position, fees, finished orders) before on_order_update sees them, so
duplicates never reach the strategy; a smart trade's exits (smart.py) are carried out before
the bot's own hook sees a candle, an order update or a timer; control actions get the generic pause / resume / stop /
close / cancel of one order; candles and timers reach the strategy only while it is running.
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal
from typing import Any, ClassVar, Generic, TypeVar

import msgspec

from shared.messages import BotControl, BotSynced, Candle, ControlAction, Level, OrderUpdate, TradeRequest
from shared.strategy.actions import (
    OrderChange,
    apply_to_record,
    close_commands,
    contradicts,
    finish_close,
    is_replay,
    notification,
    stop_commands,
)
from shared.strategy.adoption import book_held, hold_update, synced
from shared.strategy.cancel_asked import cancel_asked
from shared.strategy.commands import Command
from shared.strategy.context import StrategyContext
from shared.strategy.decisions import decide, quiet_repeats
from shared.strategy.events import Event, TimerFired
from shared.strategy.params import load_params
from shared.strategy.smart import (
    drop_trade,
    trade_candle,
    trade_needs_candles,
    trade_resumed,
    trade_synced,
    trade_timer,
    trade_update,
)
from shared.strategy.smart_booked import sold_for_trade
from shared.strategy.state import RECENT_TRADES, Mode, StrategyState, decode_state, encode_state
from shared.strategy.unsent import check_sent, hook_where

P = TypeVar("P", bound=msgspec.Struct)
S = TypeVar("S", bound=StrategyState)

Step = tuple[S, list[Command]]


class Wake(msgspec.Struct, frozen=True):
    """Which candles a strategy needs to see, for a backtester that skips quiet ones.

    every_candle: it must see every closed candle (the default: always correct).
    Otherwise only candles whose low <= below or high >= above, besides the candles on which
    its own open orders or timers can trigger (the driver knows those itself). Candles it
    does not need must be no-ops for it: on_candle returns the state unchanged and no command.
    """

    every_candle: bool = True
    below: Decimal | None = None
    above: Decimal | None = None


EVERY_CANDLE = Wake()
ORDERS_ONLY = Wake(every_candle=False)


class Strategy(Generic[P, S]):
    name: ClassVar[str] = ""
    params_type: ClassVar[type[msgspec.Struct]]
    state_type: ClassVar[type[StrategyState]] = StrategyState
    param_aliases: ClassVar[Mapping[str, str]] = {}  # alias -> field name
    history_size: ClassVar[int] = 0  # closed candles the driver keeps in ctx.history

    def history_needed(self, params: P, interval: str) -> int:
        """Closed candles of `interval` the driver keeps in ctx.history for these params.

        A driver (runner, backtester, test driver) holds this many candles in memory for the
        bot's whole life, so a strategy whose need depends on its params says so here rather
        than keeping the most any params could want (default: `history_size`)."""
        return self.history_size

    # --- params and state ----------------------------------------------------------------

    def parse_params(self, raw: Mapping[str, Any] | None, source: str = "params") -> P:
        """Params from a config table (aliases accepted); ParamsError names the bad field."""
        return load_params(self.params_type, raw, self.param_aliases, source)  # type: ignore[return-value]

    def initial_state(self, params: P, ctx: StrategyContext) -> S:
        return self.state_type()  # type: ignore[return-value]

    def encode_state(self, state: S) -> bytes:
        return encode_state(state)

    def decode_state(self, data: bytes | str) -> S:
        return decode_state(data, self.state_type)  # type: ignore[return-value]

    # --- the step ------------------------------------------------------------------------

    def step(self, params: P, state: S, event: Event, ctx: StrategyContext) -> Step[S]:
        """Handle one event: the new state and the commands to emit, in order (a decision not
        to act that repeats the last one dropped: shared/strategy/decisions.py)."""
        before = state
        # order updates, the most frequent event, go straight to their handler
        if isinstance(event, OrderUpdate):
            state, cmds = self._order_update(params, state, event, ctx)
        else:
            state, cmds = self._dispatch(params, state, event, ctx)
        if state.seq != before.seq:  # an order helper took a cid: is its order sent? (unsent.py)
            check_sent(before.orders, state.orders, cmds, lambda: hook_where(self, event))
        return quiet_repeats(state, cmds) if cmds else (state, [])

    def _dispatch(self, params: P, state: S, event: Event, ctx: StrategyContext) -> Step[S]:
        """Any event but an order update (step hands those to _order_update itself)."""
        if isinstance(event, Candle):
            # held adopted orders placed before this candle opened: no replay will claim them now
            state, booked = book_held(state, ctx, before_ms=event.open_time)
            if not state.running:
                return state, booked
            state, exits = trade_candle(state, event, ctx)
            state, cmds = self.on_candle(params, state, event, ctx)
            return state, [*booked, *exits, *cmds]
        if isinstance(event, TimerFired):
            if state.timers.get(event.name) != event.due:
                return state, []  # cancelled, moved, or already fired
            timers = dict(state.timers)
            del timers[event.name]
            state = msgspec.structs.replace(state, timers=timers)
            if not state.running:
                return state, []
            handled = trade_timer(state, event, ctx)
            if handled is not None:
                return handled
            return self.on_timer(params, state, event, ctx)
        if isinstance(event, BotControl):
            return self.on_control(params, state, event, ctx)
        if isinstance(event, BotSynced):
            return self._synced(params, state, event, ctx)
        if isinstance(event, TradeRequest):
            return self._trade(params, state, event, ctx)
        raise TypeError(f"not a strategy event: {type(event).__name__}")

    def wake(self, params: P, state: S) -> Wake:
        """Which candles this strategy needs next (see Wake); every candle unless overridden."""
        return EVERY_CANDLE

    def candles_needed(self, params: P, state: S) -> Wake:
        """What a driver that skips candles asks: the strategy's wake, or every candle while a
        smart trade's exits are out (its stops move, and are watched, on closes)."""
        if trade_needs_candles(state):
            return EVERY_CANDLE
        return self.wake(params, state)

    # --- hooks ---------------------------------------------------------------------------

    def on_candle(self, params: P, state: S, candle: Candle, ctx: StrategyContext) -> Step[S]:
        return state, []

    def on_order_update(
        self, params: P, state: S, change: OrderChange, update: OrderUpdate, ctx: StrategyContext
    ) -> Step[S]:
        """An update that moved one of this strategy's orders forward (already applied to state)."""
        return state, []

    def on_timer(self, params: P, state: S, timer: TimerFired, ctx: StrategyContext) -> Step[S]:
        return state, []

    def on_control(self, params: P, state: S, control: BotControl, ctx: StrategyContext) -> Step[S]:
        """Generic pause / resume / stop / close, and the cancel of one order a person asked for
        (cancel_asked.py: the mode stays). Override on_resume / on_close to add to them."""
        action = control.action
        cmds: list[Command]
        if action == ControlAction.CANCEL:
            return cancel_asked(state, ctx, control)
        if action == ControlAction.PAUSE:
            state, cmds = msgspec.structs.replace(state, mode=Mode.PAUSED), []
        elif action == ControlAction.RESUME:
            state = msgspec.structs.replace(state, mode=Mode.RUNNING, closing=False)
            state, late = trade_resumed(state, ctx)
            state, cmds = self.on_resume(params, state, ctx)
            cmds = [*late, *cmds]
        elif action == ControlAction.STOP:
            state, cmds = stop_commands(drop_trade(state), ctx)
        else:
            state, cmds = close_commands(drop_trade(state), ctx)
            state, more = self.on_close(params, state, ctx)
            cmds.extend(more)
        note = notification(
            ctx,
            "bot_" + str(action),
            f"{control.ts}-{state.seq}",
            f"{ctx.bot}: {action} ({control.source}{': ' + control.reason if control.reason else ''})",
        )
        return state, [*cmds, note]

    def on_trade(self, params: P, state: S, request: TradeRequest, ctx: StrategyContext) -> Step[S]:
        """A person's smart trade (`automata trade`, Telegram, the dashboard), for this bot's
        symbol and seen once per request id. Default: refused (only the `manual` bot takes them)."""
        return state, refuse_trade(ctx, request, f"{ctx.bot} takes no manual trades (a `manual` bot does)")

    def on_resume(self, params: P, state: S, ctx: StrategyContext) -> Step[S]:
        """After resume: put back whatever orders the strategy should have (default: nothing)."""
        return state, []

    def on_close(self, params: P, state: S, ctx: StrategyContext) -> Step[S]:
        """After the generic close (orders cancelled, position sold): reset strategy fields."""
        return state, []

    # --- helpers -------------------------------------------------------------------------

    def _order_update(self, params: P, state: S, update: OrderUpdate, ctx: StrategyContext) -> Step[S]:
        """Apply an update (forward-only); hold one of an order the state lacks (adoption.py);
        refuse one that contradicts its order; then the strategy's hook, and a pending close."""
        record = state.orders.get(update.cid)
        if record is None:
            state, held = hold_update(state, update, ctx)
            if held and sold_for_trade(state, update.cid):  # a smart trade's exit sold it
                return book_held(state, ctx, only=update.cid)
            return state, [] if held else self._unknown_update(state, update, ctx)
        why = contradicts(record, update, ctx)
        if why:
            note = notification(
                ctx,
                "error",
                f"contradiction-{update.cid}-{update.status}-{update.cum_filled_qty}",
                f"{ctx.bot}: update for {update.cid} not booked: {why}",
                level=Level.ERROR,
            )
            return state, [note]
        new, change = apply_to_record(state, record, update, ctx)
        if change is None:
            return state, []
        exits: list[Command] = []
        if new.trade is not None:  # a smart trade's legs first (trade_update: nothing to do without one)
            new, exits = trade_update(new, change, ctx)
        state, cmds = self.on_order_update(params, new, change, update, ctx)
        if exits:
            cmds = [*exits, *cmds]
        if state.closing and not state.orders:
            state, more = finish_close(state, ctx)
            cmds = [*cmds, *more]
        return state, cmds

    def _trade(self, params: P, state: S, request: TradeRequest, ctx: StrategyContext) -> Step[S]:
        """Each request id once (a resend is a second stream entry: the state remembers the
        last ids), for this bot's symbol only; then on_trade."""
        if request.id in state.trade_requests:
            return state, [decide(ctx, f"trade request {request.id} was handled already: nothing more sent",
                                  request=request.id, outcome="duplicate")]  # fmt: skip
        state = msgspec.structs.replace(
            state, trade_requests=(*state.trade_requests, request.id)[-RECENT_TRADES:]
        )
        if request.symbol != ctx.symbol:
            return state, refuse_trade(ctx, request, f"{ctx.bot} trades {ctx.symbol}, not {request.symbol}")
        return self.on_trade(params, state, request, ctx)

    def _synced(self, params: P, state: S, event: BotSynced, ctx: StrategyContext) -> Step[S]:
        """The gateway answered this bot's sync: in step with the venue again. A running bot
        puts back what it should have (on_resume), claiming the held orders that match."""
        new = synced(state, event)
        if new is None:
            return state, []
        note = notification(
            ctx,
            "info",
            f"synced-{event.token}",
            f"{ctx.bot}: in step with {ctx.venue} (sequence {new.seq}"
            + (
                f", {len(new.adopted)} orders found there held to be claimed or booked)"
                if new.adopted
                else ")"
            ),
        )
        if new.mode != Mode.RUNNING:
            return new, [note]
        new, late = trade_resumed(new, ctx)
        new, exits = trade_synced(new, ctx)
        new, cmds = self.on_resume(params, new, ctx)
        return new, [note, *late, *exits, *cmds]

    def _unknown_update(self, state: S, update: OrderUpdate, ctx: StrategyContext) -> list[Command]:
        """Nothing for a duplicate; a warning for an order this bot does not remember."""
        if update.cid in state.orders or is_replay(state, update):
            return []
        return [
            notification(
                ctx,
                "reconciliation",
                f"unknown-{update.cid}-{update.status}-{update.cum_filled_qty}",
                f"{ctx.bot}: update for an order it does not hold: {update.cid} {update.status}",
                level=Level.WARNING,
            )
        ]


def refuse_trade(ctx: StrategyContext, request: TradeRequest, why: str) -> list[Command]:
    """A trade request not carried out: the decision the sender waits for (its `request` field)
    and a warning notification, both saying why."""
    text = f"trade {request.id} refused: {why}"
    return [
        decide(ctx, text, request=request.id, outcome="refused"),
        notification(ctx, "refused", f"trade-{request.id}", f"{ctx.bot}: {text}", level=Level.WARNING),
    ]
