"""The state of a smart trade (smart.py carries it out): kept in StrategyState.trade, so it is
saved, replayed and restored with the rest of the bot's state. Field names are those of saved
states: renaming one loses them."""

from __future__ import annotations

from decimal import Decimal
from enum import StrEnum

import msgspec

from shared.exits import Exits
from shared.money import ZERO


class TradePhase(StrEnum):
    ENTERING = "entering"  # the entry order(s) out
    OPEN = "open"  # bought: the exits are out
    CLOSING = "closing"  # the time limit: exits cancelled, what is held is sold at market


class Slot(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True):
    """One part of the position and the order(s) that sell it: an OCO [limit at `target`, stop
    at `stop`] for a take-profit target, a stop alone without a target (or for the trailing take
    profit's share), a limit alone without a stop. `sold` counts what its orders sold."""

    qty: Decimal
    target: Decimal | None = None  # the limit leg's price; None: no limit leg
    activate: Decimal | None = None  # the trailing take profit's share: trails from this price on
    stop: Decimal | None = None  # the stop in force (the venue's, or the helper's own watch)
    cids: tuple[str, ...] = ()  # its orders out (a list's legs, a lone order), "" list_cid when none
    list_cid: str = ""
    sold: Decimal = ZERO
    hit: bool = False  # its target traded (a fill on its limit leg)
    moving: Decimal | None = None  # the new stop, while its orders are being cancelled for it
    selling: bool = False  # cancelled to be sold at market (the helper's watch, the time limit)
    trailing: bool = False  # the trailing take profit's share, trailing since its price was reached

    @property
    def left(self) -> Decimal:
        return self.qty - self.sold


class SmartTrade(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True):
    """A trade opened by open_trade (or watch_entry): its entry, its declared exits, its slots."""

    tag: str
    exits: Exits
    phase: TradePhase = TradePhase.ENTERING
    entry_cids: tuple[str, ...] = ()
    bought: Decimal = ZERO  # base bought by the entry (gross)
    paid: Decimal = ZERO  # quote paid for it
    base_fee: Decimal = ZERO  # the entry's fee taken in the base bought
    qty: Decimal = ZERO  # Q: base to sell, net of the base fee, rounded down to the step
    price: Decimal = ZERO  # P: the entry's average price
    peak: Decimal = ZERO  # the highest high since the entry filled
    realised: Decimal = ZERO  # the position's realised profit when the entry filled
    opened: int = 0  # ms, when the entry filled
    slots: tuple[Slot, ...] = ()
    timer: str = ""  # the time limit's timer name
