"""The part of the state every strategy carries, so the runner can act on any bot alike.

A strategy's state class subclasses StrategyState and adds its own fields. The runner (or the
backtester) can then, without knowing the strategy: list its open orders (stop = cancel them),
read its position (close = cancel + market sell it), re-arm its timers after a restart, and see
whether it is running, paused or stopped. States are frozen and round-trip through msgspec JSON.
"""

from __future__ import annotations

from enum import StrEnum
from typing import TypeVar

import msgspec

from shared.strategy.orders import BotOrder
from shared.strategy.position import Position
from shared.strategy.smart_state import SmartTrade

RECENT_CIDS = 32  # finished orders remembered so their late duplicates are recognised as such
RECENT_TRADES = 32  # trade request ids remembered, so a request sent twice is one trade
REFUSALS_KEPT = 16  # refused terms remembered (the newest), so they are not resent forever


class Mode(StrEnum):
    RUNNING = "running"  # acting on candles, timers and fills
    PAUSED = "paused"  # no new orders; open ones stay; fills still tracked
    STOPPED = "stopped"  # open orders cancelled; nothing new until resumed


RUNNING = Mode.RUNNING  # a module global: an enum member looked up on its class costs 4x as much


class Refusal(msgspec.Struct, frozen=True, array_like=True):
    """Terms the venue (or the gateway) refused `count` times in a row; `skipped`: attempts to
    send them again that were held back since the last refusal."""

    count: int
    skipped: int = 0


class StrategyState(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True):
    seq: int = 0  # last client order sequence used (cid = {bot}-{seq:06d})
    orders: dict[str, BotOrder] = {}  # orders not finished yet, by cid
    position: Position = Position()
    # The position the bot took over at its start rather than bought with its own orders (the
    # fractal stop's `entry` and `quantity`): the ledger starts the bot's books from it, so a
    # sale of it counts the profit over that cost, as the bot does. None: it took none.
    opening: Position | None = None
    mode: Mode = Mode.RUNNING
    timers: dict[str, int] = {}  # name -> due (ms)
    recent: tuple[str, ...] = ()  # cids of the last finished orders, newest last
    # The token of the SyncBot the runner sent at start; until its BotSynced answer arrives the
    # bot places nothing (Redis may have lost orders the venue kept: shared/strategy/adoption.py).
    sync: str = ""
    # Orders of this bot the venue holds but this state did not know (a lost write): held here,
    # not booked, until the strategy asks for the same terms again (it claims them) or a later
    # candle shows it will not (they are booked, and cancelled if open).
    adopted: dict[str, BotOrder] = {}
    refusals: dict[str, Refusal] = {}  # terms key -> refused in a row (shared/strategy/refusals.py)
    closing: bool = False  # close asked: the position is sold once the cancelled orders are gone
    quiet: str = ""  # topic of the last decision not to act, so its repeats are dropped (decisions.py)
    trade: SmartTrade | None = None  # the smart trade on (open_trade: shared/strategy/smart.py)
    # ids of the last TradeRequests handled, newest last: the same id again (a resend writes a
    # second entry, which the stream's exactly-once does not catch) is not a second trade
    trade_requests: tuple[str, ...] = ()

    def open_orders(self) -> list[BotOrder]:
        """Orders not finished, oldest first (by cid sequence)."""
        return [self.orders[cid] for cid in sorted(self.orders)]

    @property
    def running(self) -> bool:
        """Acting: running, and in step with the venue (not waiting for a sync answer)."""
        return self.mode == RUNNING and not self.sync


S = TypeVar("S", bound=StrategyState)


_ENCODER = msgspec.json.Encoder(decimal_format="string")


def encode_state(state: StrategyState) -> bytes:
    """JSON the runner persists (Decimals as strings, so nothing is lost)."""
    return _ENCODER.encode(state)


def decode_state(data: bytes | str, state_type: type[S]) -> S:
    return msgspec.json.decode(data, type=state_type)
