"""An example user bot: buy a breakout, sell at a take profit.

When flat and nothing is open, a close above the highest high of the previous `lookback`
candles buys `quote_amount` at market; once bought, a limit sell waits at the average entry
price x (1 + take_profit). It uses only the public interface — params and state as msgspec
Structs, the helpers of shared.strategy.actions — so the runner persists it, replays it after
a crash, and the backtester runs it unchanged. It says why it buys, or does not, with `decide`
(`automata tail decisions --bot ID`, `automata backtest --decisions N`); a decision not to act
has a topic, so it is said once, not on every candle.

Config: `strategy = "examples.breakout:Breakout"`.
"""

from __future__ import annotations

from decimal import Decimal

import msgspec

from shared.messages import Candle, OrderUpdate, Side
from shared.money import ZERO
from shared.strategy.actions import OrderChange, limit_order, market_order, notification
from shared.strategy.base import Step, Strategy
from shared.strategy.context import StrategyContext
from shared.strategy.decisions import decide, price
from shared.strategy.sizing import limit_terms
from shared.strategy.state import StrategyState


class BreakoutParams(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    lookback: int = 20
    quote_amount: Decimal = Decimal("100")
    take_profit: Decimal = Decimal("0.01")


class BreakoutState(StrategyState, frozen=True):
    trades: int = 0


def holding(state: BreakoutState, ctx: StrategyContext, price: Decimal) -> bool:
    """Whether the position is worth selling: what is left after a fee taken in the base bought
    (dust under the step size or the minimum notional) cannot be sold and counts as flat."""
    return limit_terms(ctx.filters, Side.SELL, state.position.base, price) is not None


class Breakout(Strategy[BreakoutParams, BreakoutState]):
    name = "breakout"
    params_type = BreakoutParams
    state_type = BreakoutState
    history_size = 50

    def on_candle(
        self, params: BreakoutParams, state: BreakoutState, candle: Candle, ctx: StrategyContext
    ) -> Step:
        if state.orders or holding(state, ctx, candle.close):
            return state, []
        previous = list(ctx.history)[-params.lookback - 1 : -1]
        if len(previous) < params.lookback:
            return state, []
        high = max(c.high for c in previous)
        if candle.close <= high:
            why = f"no entry: close {price(ctx, candle.close)} not above the {params.lookback}-candle high"
            return state, [decide(ctx, why, topic="no_breakout", high=high)]
        state, buy = market_order(state, ctx, Side.BUY, quote=params.quote_amount, tag="entry")
        said = decide(ctx, f"breakout: close {price(ctx, candle.close)} above the high {price(ctx, high)}")
        return state, [buy, said] if buy else []

    def on_order_update(
        self,
        params: BreakoutParams,
        state: BreakoutState,
        change: OrderChange,
        update: OrderUpdate,
        ctx: StrategyContext,
    ) -> Step:
        if not change.finished:
            return state, []
        if change.after.tag == "entry" and holding(state, ctx, state.position.avg_price or ZERO):
            price = state.position.avg_price * (1 + params.take_profit)
            state, sell = limit_order(state, ctx, Side.SELL, state.position.base, price, tag="exit")
            return state, [sell] if sell else []
        if change.after.tag == "exit" and change.fill is not None:
            state = msgspec.structs.replace(state, trades=state.trades + 1)
            note = notification(ctx, "cycle_closed", update.cid, f"{ctx.bot}: trade {state.trades} closed, "
                                f"realised {state.position.realised:.2f} {ctx.quote_asset}")  # fmt: skip
            return state, [note]
        return state, []
