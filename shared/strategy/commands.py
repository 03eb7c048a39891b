"""What a strategy may ask for: order commands, notifications and decisions (shared.messages), timers.

Order commands, notifications and decisions go to their streams unchanged. SetTimer / CancelTimer are
for the runner (or the backtester): it keeps the timer and later delivers a TimerFired.
The strategy's state keeps its timers too (shared.strategy.actions.set_timer), so a runner
restarted from persisted state re-arms them.
"""

from __future__ import annotations

from shared.messages import (
    CancelAll,
    CancelOrder,
    CancelOrderList,
    Decision,
    Message,
    Notification,
    PlaceOrder,
    PlaceOrderList,
)


class SetTimer(Message, frozen=True, tag="set_timer"):
    """Deliver TimerFired(name, due) once the event time reaches `due` (ms). Setting a timer
    of the same name again moves it."""

    name: str
    due: int


class CancelTimer(Message, frozen=True, tag="cancel_timer"):
    name: str


Command = (
    PlaceOrder
    | PlaceOrderList
    | CancelOrder
    | CancelOrderList
    | CancelAll
    | Notification
    | Decision
    | SetTimer
    | CancelTimer
)
ORDER_COMMANDS = (PlaceOrder, PlaceOrderList, CancelOrder, CancelOrderList, CancelAll)
TIMER_COMMANDS = (SetTimer, CancelTimer)
