"""An example user bot: buy a breakout, and let declared exits sell it.

When no trade is on and nothing is open, a close above the highest high of the previous
`lookback` candles buys `quote_amount` at market with `open_trade`, declaring its exits: a take
profit `take_profit` above the entry, a stop `stop_loss` below it, and optionally a trailing
stop. The strategy interface carries the exits out (shared/strategy/smart.py: an OCO at the
venue, the stop moved as the price rises); the bot only decides when to enter. It uses only the
public interface — params and state as msgspec Structs — so the runner persists it, replays it
after a crash, and the backtester runs it unchanged. It says why it buys, or does not, with
`decide` (`automata tail decisions --bot ID`, `automata backtest --decisions N`); a decision
not to act has a topic, so it is said once, not on every candle.

Config: `strategy = "examples.breakout:Breakout"`.
"""

from __future__ import annotations

from decimal import Decimal

import msgspec

from shared.exits import Exits, Target
from shared.messages import Candle
from shared.strategy import Step, Strategy, StrategyContext, StrategyState, decide, open_trade
from shared.strategy.decisions import price


class BreakoutParams(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    lookback: int = 20
    quote_amount: Decimal = Decimal("100")
    take_profit: Decimal = Decimal("0.01")  # fractions: 0.01 is 1 %
    stop_loss: Decimal = Decimal("0.02")
    trailing_stop: Decimal | None = None

    def __post_init__(self) -> None:  # a bad value is refused when the config is read, naming the field
        for name in ("lookback", "quote_amount", "take_profit"):
            if not getattr(self, name) > 0:
                raise ValueError(f"{name} must be above 0, got {getattr(self, name)}")
        self.exits()  # the exits' own checks (stop_loss and trailing_stop are fractions in (0, 1))

    def exits(self) -> Exits:
        return Exits(take_profits=(Target(gain=self.take_profit),), stop_loss=self.stop_loss,
                     trailing_stop=self.trailing_stop)  # fmt: skip


class BreakoutState(StrategyState, frozen=True):
    trades: int = 0  # trades opened


class Breakout(Strategy[BreakoutParams, BreakoutState]):
    name = "breakout"
    params_type = BreakoutParams
    state_type = BreakoutState
    history_size = 50

    def on_candle(
        self, params: BreakoutParams, state: BreakoutState, candle: Candle, ctx: StrategyContext
    ) -> Step:
        if state.trade is not None or state.orders:
            return state, []
        previous = list(ctx.history)[-params.lookback - 1 : -1]
        if len(previous) < params.lookback:
            return state, []
        high = max(c.high for c in previous)
        if candle.close <= high:
            why = f"no entry: close {price(ctx, candle.close)} not above the {params.lookback}-candle high"
            return state, [decide(ctx, why, topic="no_breakout", high=high)]
        state, cmds = open_trade(state, ctx, params.exits(), quote=params.quote_amount, tag="entry")
        if state.trade is None:  # nothing sent (e.g. an amount under the minimum order): cmds say why
            return state, cmds
        state = msgspec.structs.replace(state, trades=state.trades + 1)
        said = decide(ctx, f"breakout: close {price(ctx, candle.close)} above the high {price(ctx, high)}")
        return state, [said, *cmds]
