"""A minimal bot: buy when a candle closes above the previous one's high; sell at +1 % or -0.5 %."""

from decimal import Decimal

import msgspec

from shared.exits import Exits, Target
from shared.strategy import Strategy, StrategyState, open_trade

EXITS = Exits(take_profits=(Target(gain=Decimal("0.01")),), stop_loss=Decimal("0.005"))


class Params(msgspec.Struct, frozen=True):
    quote_amount: Decimal = Decimal("100")


class Minimal(Strategy[Params, StrategyState]):
    name = "minimal"
    params_type = Params
    history_size = 2  # this candle and the one before

    def on_candle(self, params, state, candle, ctx):
        if state.trade is None and len(ctx.history) == 2 and candle.close > ctx.history[0].high:
            return open_trade(state, ctx, EXITS, quote=params.quote_amount)
        return state, []
