"""The public strategy interface: what a bot is written against (see base.py).

    from shared.strategy import Strategy, StrategyState, StrategyContext, ...

    class MyState(StrategyState, frozen=True, kw_only=True): ...
    class MyBot(Strategy[MyParams, MyState]):
        name = "my_bot"; params_type = MyParams; state_type = MyState
        def on_candle(self, params, state, candle, ctx): ...  -> (state, [commands])

The live runner and the backtester both drive `Strategy.step`. A bot says why it acts (or
does not) with `decide(ctx, "text", topic=..., **fields)` among its commands (decisions.py).
"""

from shared.strategy.actions import (
    OrderChange,
    apply_order_update,
    cancel_order,
    cancel_orders,
    cancel_timer,
    close_commands,
    fill_notification,
    find_open,
    limit_order,
    market_order,
    next_cid,
    notification,
    place_order,
    sellable,
    set_timer,
    stop_commands,
    stop_limit_order,
)
from shared.strategy.base import EVERY_CANDLE, ORDERS_ONLY, Step, Strategy, Wake
from shared.strategy.commands import ORDER_COMMANDS, CancelTimer, Command, SetTimer
from shared.strategy.context import StrategyContext
from shared.strategy.decisions import Decision, decide
from shared.strategy.events import Event, TimerFired, event_time
from shared.strategy.orders import BotOrder, FillDelta
from shared.strategy.params import ParamsError, dump_params, load_params
from shared.strategy.position import Position, apply_fill
from shared.strategy.registry import BUILTIN, StrategyLoadError, load_strategy
from shared.strategy.sizing import limit_terms, market_qty, market_quote, qty_for_quote, round_quote
from shared.strategy.state import Mode, StrategyState, decode_state, encode_state

__all__ = [
    "fill_notification",
    "BUILTIN",
    "EVERY_CANDLE",
    "ORDERS_ONLY",
    "ORDER_COMMANDS",
    "BotOrder",
    "CancelTimer",
    "Decision",
    "Command",
    "Event",
    "FillDelta",
    "Mode",
    "OrderChange",
    "ParamsError",
    "Position",
    "SetTimer",
    "Step",
    "Strategy",
    "StrategyContext",
    "StrategyLoadError",
    "StrategyState",
    "TimerFired",
    "Wake",
    "apply_fill",
    "apply_order_update",
    "cancel_order",
    "cancel_orders",
    "cancel_timer",
    "close_commands",
    "decide",
    "decode_state",
    "dump_params",
    "encode_state",
    "event_time",
    "find_open",
    "limit_order",
    "limit_terms",
    "load_params",
    "load_strategy",
    "market_order",
    "market_qty",
    "market_quote",
    "next_cid",
    "notification",
    "place_order",
    "sellable",
    "qty_for_quote",
    "round_quote",
    "set_timer",
    "stop_commands",
    "stop_limit_order",
]
