"""What may arrive on each of a bot's input streams; anything else is dead-lettered at once.

A bot must not trust a message for the stream it came on: a control entry for another bot
written to this bot's control stream would stop this one, an ETHUSDT candle on the BTCUSDT
stream would reach the strategy as a BTCUSDT price, a cancel naming another bot's order (or
no order at all) can never be this bot's to send. Each entry is checked against the bot's
own venue, symbol, interval and id before its step; a mismatch can never become right by
retrying, so it goes to the dead-letter stream with the reason instead of failing N times.
"""

from __future__ import annotations

from shared.bus import DeadLetter
from shared.ids import seq_of
from shared.messages import (
    BotControl,
    BotSynced,
    Candle,
    ControlAction,
    Message,
    OrderUpdate,
    TimerFired,
    TradeRequest,
)
from shared.streams import bot_control, candles, order_events


class InputCheck:
    """The expectations of one bot's three input streams."""

    def __init__(self, bot: str, venue: str, symbol: str, interval: str) -> None:
        self.bot, self.venue, self.symbol, self.interval = bot, venue, symbol, interval
        self.candles, self.events, self.control = (
            candles(venue, symbol, interval),
            order_events(bot),
            bot_control(bot),
        )

    def check(self, stream: str, msg: Message | None) -> None:
        """Raise DeadLetter with the reason when `msg` does not belong on `stream` for this bot."""
        kind = type(msg).__name__
        if stream == self.candles:
            if not isinstance(msg, Candle):
                raise DeadLetter(f"a {kind} on the candle stream of bot {self.bot}")
            got = (msg.venue, msg.symbol, msg.interval)
            if got != (self.venue, self.symbol, self.interval):
                raise DeadLetter(
                    f"candle of {'/'.join(got)} on the stream of {self.venue}/{self.symbol}/{self.interval}"
                )
        elif stream == self.events:
            if not isinstance(msg, OrderUpdate | BotSynced):
                raise DeadLetter(f"a {kind} on the order events of bot {self.bot}")
            if msg.bot != self.bot or msg.venue != self.venue:
                raise DeadLetter(
                    f"{kind} of bot {msg.bot} on {msg.venue} in the events of {self.bot} on {self.venue}"
                )
        elif stream == self.control:
            if isinstance(msg, BotControl):
                if msg.bot != self.bot:
                    raise DeadLetter(f"control for bot {msg.bot} on the control stream of {self.bot}")
                self._check_cid(msg)
            elif isinstance(msg, TradeRequest):
                if msg.bot != self.bot:
                    raise DeadLetter(f"trade request for bot {msg.bot} on the control stream of {self.bot}")
            elif not isinstance(msg, TimerFired):
                raise DeadLetter(f"a {kind} on the control stream of bot {self.bot}")
        else:
            raise DeadLetter(f"{stream} is not an input of bot {self.bot}")

    def _check_cid(self, msg: BotControl) -> None:
        """A cancel names one order of this bot (`{bot}-{seq}`); no other control names one."""
        if msg.action != ControlAction.CANCEL:
            if msg.cid:
                raise DeadLetter(f"a {msg.action} control of bot {self.bot} names an order ({msg.cid!r})")
        elif seq_of(msg.cid, self.bot) is None:
            raise DeadLetter(f"cancel control of bot {self.bot}: {msg.cid!r} is not an order id of this bot "
                             f"({self.bot}-000001)")  # fmt: skip
