"""The public strategy interface: what a bot is written against (see base.py).

    from shared.strategy import Strategy, StrategyState, StrategyContext, ...

    class MyState(StrategyState, frozen=True, kw_only=True): ...
    class MyBot(Strategy[MyParams, MyState]):
        name = "my_bot"; params_type = MyParams; state_type = MyState
        def on_candle(self, params, state, candle, ctx): ...  -> (state, [commands])

The live runner and the backtester both drive `Strategy.step`. A bot says why it acts (or
does not) with `decide(ctx, "text", topic=..., **fields)` among its commands (decisions.py).
A bot that declares its exits opens a trade with `open_trade(state, ctx, Exits(...), quote=...)`
and the interface carries them out (smart.py).
"""

from shared.exits import Exits, Target
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
    sell_out_commands,
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
from shared.strategy.lists import Leg, cancel_list, place_list, place_oco
from shared.strategy.orders import BotOrder, FillDelta
from shared.strategy.params import ParamsError, dump_params, load_params
from shared.strategy.position import Position, apply_fill
from shared.strategy.registry import BUILTIN, StrategyLoadError, load_strategy
from shared.strategy.sizing import limit_terms, market_qty, market_quote, qty_for_quote, round_quote
from shared.strategy.smart import open_trade, watch_entry
from shared.strategy.smart_state import Slot, SmartTrade, TradePhase
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
    "Exits",
    "Leg",
    "Slot",
    "SmartTrade",
    "Target",
    "TradePhase",
    "apply_fill",
    "cancel_list",
    "open_trade",
    "place_list",
    "place_oco",
    "watch_entry",
    "apply_order_update",
    "cancel_order",
    "cancel_orders",
    "cancel_timer",
    "close_commands",
    "sell_out_commands",
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
