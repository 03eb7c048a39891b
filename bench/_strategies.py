"""The strategies bench/strategy_runner.py runs, loaded by the runner as `bench._strategies:Echo`.

Not a bench itself (running it does nothing). The strategy is as cheap as a strategy can be,
so the figures are the runner's own cost per event: load nothing, step, one MULTI/EXEC.
"""

from __future__ import annotations

import sys
from decimal import Decimal
from pathlib import Path

import msgspec

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # `make bench` runs every bench/*.py, this one too
    sys.path.insert(0, str(ROOT))

from shared.messages import Candle, OrderType, PlaceOrder, Side, TimeInForce  # noqa: E402
from shared.strategy.actions import market_order, next_cid  # noqa: E402
from shared.strategy.base import Step, Strategy  # noqa: E402
from shared.strategy.context import StrategyContext  # noqa: E402
from shared.strategy.state import StrategyState  # noqa: E402


class EchoParams(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    every: int = 1  # an order every N candles; 0 = never (the do-nothing strategy)
    market: bool = False  # a real MARKET order (recorded, tracked to its fill); else a bare command
    qty: Decimal = Decimal("0.001")


class EchoState(StrategyState, frozen=True):
    candles: int = 0


class Echo(Strategy[EchoParams, EchoState]):
    """Counts candles; every `every` candles places an order whose `ts` is the candle's close
    time, so the bench can match each command to the candle that caused it."""

    name = "bench_echo"
    params_type = EchoParams
    state_type = EchoState
    history_size = 1  # ctx.last_price (the candle in hand) sizes the market order

    def on_candle(self, params: EchoParams, state: EchoState, candle: Candle, ctx: StrategyContext) -> Step:
        state = msgspec.structs.replace(state, candles=state.candles + 1)
        if not params.every or state.candles % params.every:
            return state, []
        if params.market:  # buys only: a sell before the last buy's fill is booked would oversell
            state, cmd = market_order(state, ctx, Side.BUY, qty=params.qty)
            return state, [cmd] if cmd else []
        side = Side.BUY if state.seq % 2 == 0 else Side.SELL  # alternate: balances never run out
        # not recorded in state.orders: nobody fills it, and the state must not grow
        state, cid = next_cid(state, ctx)
        cmd = PlaceOrder(
            cid=cid, bot=ctx.bot, venue=ctx.venue, symbol=ctx.symbol, side=side, order_type=OrderType.LIMIT,
            quantity=params.qty, price=candle.close, time_in_force=TimeInForce.GTC, ts=ctx.now,
        )  # fmt: skip
        return state, [cmd]
