"""A bot for the smart-trade parity tests: on the first candle it sees it opens one smart trade
(`again`: one after the other) at market with the exits its params declare, through the public interface only (open_trade,
Exits, Target); the strategy interface carries the exits out. Flat params, so a bots file
written by tests/helpers/bots.write_bots can hold them (fractions: 0.02 is 2 %).

Config: `strategy = "tests.helpers.smart_trader:SmartTrader"`.
"""

from __future__ import annotations

from decimal import Decimal

import msgspec

from shared.messages import Candle
from shared.strategy import Exits, Step, Strategy, StrategyContext, StrategyState, Target, open_trade


class SmartTraderParams(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    quote: Decimal = Decimal("1000")
    gains: tuple[Decimal, ...] = ()  # the take-profit targets, above the entry
    shares: tuple[Decimal, ...] = ()  # each target's share (fewer than the targets: the rest equal)
    stop_loss: Decimal | None = None
    trailing_stop: Decimal | None = None
    trailing_take_profit: Decimal | None = None
    break_even: bool = False
    again: bool = False  # once a trade has ended, open the next one at the next candle

    def __post_init__(self) -> None:
        self.exits()

    def exits(self) -> Exits:
        shares = list(self.shares) + [None] * (len(self.gains) - len(self.shares))
        return Exits(
            take_profits=tuple(Target(gain=g, share=s) for g, s in zip(self.gains, shares, strict=True)),
            stop_loss=self.stop_loss,
            trailing_stop=self.trailing_stop,
            trailing_take_profit=self.trailing_take_profit,
            break_even=self.break_even,
        )


class SmartTraderState(StrategyState, frozen=True):
    trades: int = 0


class SmartTrader(Strategy[SmartTraderParams, SmartTraderState]):
    name = "smart_trader"
    params_type = SmartTraderParams
    state_type = SmartTraderState

    def on_candle(
        self, params: SmartTraderParams, state: SmartTraderState, candle: Candle, ctx: StrategyContext
    ) -> Step:
        if (state.trades and not params.again) or state.trade is not None or state.orders:
            return state, []
        state, cmds = open_trade(state, ctx, params.exits(), quote=params.quote, tag="t")
        return msgspec.structs.replace(state, trades=state.trades + 1), cmds
