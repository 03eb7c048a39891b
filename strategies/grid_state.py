"""The grid's state (strategies/grid.py): its phase, and what each interval holds.

The enums are StrEnums with the strings the grid always stored ("B", "S", "W", ""; "new",
"active", ...), so a state saved before they existed decodes to the same values.
"""

from __future__ import annotations

from decimal import Decimal
from enum import StrEnum

import msgspec

from shared.money import ZERO
from shared.strategy import StrategyState


class GridPhase(StrEnum):
    NEW = "new"  # no grid yet: started on a candle in range
    ACTIVE = "active"  # every interval holds its order
    STOPPING = "stopping"  # stop-loss hit: cancelling, the position is sold once none is open
    ENDED = "ended"  # over (`ended` says why); a resume starts a fresh grid


class IntervalSide(StrEnum):
    """The order an interval holds."""

    BUY = "B"  # a buy at its lower level
    SELL = "S"  # a sell at its upper level, for the lot a buy bought
    WAIT = "W"  # a sell, waiting for the opening buy's base
    IDLE = ""  # none: waiting for a candle above its lower level


class GridEnd(StrEnum):
    """Why the grid ended."""

    NONE = ""  # it has not
    STOP_LOSS = "stop_loss"
    TAKE_PROFIT = "take_profit"
    CLOSED = "closed"
    INVALID = "invalid"  # the filters refused the grid's levels


class Interval(msgspec.Struct, frozen=True, array_like=True):
    """What interval j (level j to j+1) holds: its side, its open order, and for a sell the lot."""

    side: IntervalSide = IntervalSide.IDLE
    cid: str = ""  # the open order, "" while none is out
    qty: Decimal = ZERO  # SELL: base of the lot
    cost: Decimal = ZERO  # SELL: quote the lot cost, fees included


class GridState(StrategyState, frozen=True, kw_only=True):
    phase: GridPhase = GridPhase.NEW
    prices: tuple[Decimal, ...] = ()  # the levels, rounded to the tick
    qtys: tuple[Decimal, ...] = ()  # base quantity of each interval
    intervals: tuple[Interval, ...] = ()
    init_cid: str = ""  # the opening market buy
    exit_cid: str = ""  # the stop-loss market sell
    round_trips: int = 0
    profit_total: Decimal = ZERO  # sum of the round trips' profits
    spare: Decimal = ZERO  # base held outside any lot (fee margin, rounding dust): tops up later lots
    spare_cost: Decimal = ZERO  # what the spare base cost
    ended: GridEnd = GridEnd.NONE
    warned: str = ""
