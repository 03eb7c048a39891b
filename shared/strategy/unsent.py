"""An order a strategy starts keeping must go out in the same step.

The order helpers (`place_order`, `limit_order`, `place_oco`...) return the new state, which
already tracks the order as PENDING_SUBMIT, and the command that sends it. A strategy that keeps
the state but drops the command (`state, _ = limit_order(...)`, or a command built and not
returned) tracks an order no venue will ever see: the bot then waits for it for good (a DCA
cycle never closes, a grid level stays "taken"), silently, live and in a backtest alike. The
step that does so is refused at once instead, naming the order, so the runner pauses that bot
and the backtester stops with one line, as for a handler that raised.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

from shared.messages import PENDING_SUBMIT, PlaceOrder, PlaceOrderList
from shared.strategy.failure import defined_at
from shared.strategy.orders import BotOrder


class UnsentOrder(RuntimeError):
    """The strategy's new state tracks an order its commands do not send. `where`: the handler
    that returned them (`file, line N, in on_candle`), as failure_text names a raising line."""

    def __init__(self, text: str, where: str) -> None:
        super().__init__(text)
        self.where = where


# the hook that answers each kind of event (for `where`: the check runs after it returned)
_HOOKS = {
    "OrderUpdate": "on_order_update",
    "Candle": "on_candle",
    "TimerFired": "on_timer",
    "BotControl": "on_control",
    "BotSynced": "on_resume",
    "TradeRequest": "on_trade",
}


def hook_where(strategy: object, event: object) -> str:
    """`file, line N, in hook` of the strategy's method that handles `event` ("" if none)."""
    return defined_at(getattr(type(strategy), _HOOKS.get(type(event).__name__, "step"), None))


def check_sent(
    before: Mapping[str, BotOrder],
    after: Mapping[str, BotOrder],
    cmds: Sequence[object],
    where: Callable[[], str],
) -> None:
    """Raise UnsentOrder when `after` holds a PENDING_SUBMIT order `before` lacked and no
    PlaceOrder (or leg of a PlaceOrderList) in `cmds` sends it; `where()` names the handler that
    returned them. The step calls it only when an order helper took a client order id (the
    state's `seq` moved): most steps take none."""
    unsent = []
    for cid, order in after.items():  # plain loops: this runs at every order placed
        if order.status is not PENDING_SUBMIT or cid in before:
            continue
        for cmd in cmds:
            kind = type(cmd)
            if (kind is PlaceOrder and cmd.cid == cid) or (
                kind is PlaceOrderList and any(leg.cid == cid for leg in cmd.legs)
            ):
                break
        else:
            unsent.append(order)
    if unsent:
        named = ", ".join(
            f"{o.cid} ({o.side} {o.order_type}{f', tag {o.tag}' if o.tag else ''})" for o in unsent
        )
        raise UnsentOrder(
            f"the new state tracks order {named} but the commands returned do not send it: return the "
            "command the order helper gave with the state (`state, _ = limit_order(...)` drops it), "
            "or the bot would wait for that order for good",
            where(),
        )
