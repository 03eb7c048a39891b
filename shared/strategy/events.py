"""What a strategy reacts to: a closed candle, an order update, a timer, a control action,
and the order gateway's answer to the sync a runner asks for when it starts (BotSynced).

Candles, order updates and control actions are the very messages of the streams
(shared.messages), so the runner hands them over as decoded. TimerFired (also in
shared.messages, so the runner can route it through the bot's control stream) fires a
SetTimer the strategy asked for, once its due time has passed.
"""

from __future__ import annotations

from shared.messages import (  # noqa: F401 (re-exported)
    BotControl,
    BotSynced,
    Candle,
    OrderUpdate,
    TimerFired,
    TradeRequest,
)

Event = Candle | OrderUpdate | TimerFired | BotControl | BotSynced | TradeRequest


def event_time(event: Event) -> int:
    """The time an event happened, from the event itself (never the wall clock): a candle's
    close time, an order's venue time (else the gateway's), a timer's due time, a control's ts."""
    if isinstance(event, Candle):
        return event.close_time
    if isinstance(event, OrderUpdate):
        return event.venue_ts or event.ts
    if isinstance(event, TimerFired):
        return event.due
    return event.ts
