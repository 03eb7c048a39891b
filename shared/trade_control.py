"""Sending a person's smart trade to the bot that takes it, for every front end (`automata
trade`, Telegram's `/trade`, the dashboard): which bot, the TradeRequest on its control stream,
and the bot's answer.

Which bot: one that takes manual trades (strategy `manual`) on the trade's symbol. The bots
file names them (`strategy = "manual"`), and each strategy runner's heartbeat lists the bots it
runs that take trades (`trades`: bot -> "venue:SYMBOL"), so a front end without the bots file
(the notifier) finds them too. None: refused, saying how to add one. Several on the symbol (a
bot holds one trade at a time): a buy goes to the first holding no trade, a sell to the one
holding a trade; else refused, saying which to name (`--bot`). Nothing is written before that.

The answer: the bot decides once per request (shared/strategy/base.py `_trade`) and says so on
`bot:{bot}:decisions` with `request` (the id), `outcome` and, for a trade sent, the entry's
`cid`; the entry's order updates follow on `orders:events:{bot}`. `TradeWatch` folds those
entries into the answer; `wait_answer` reads them with a deadline.
"""

from __future__ import annotations

import os
import time
from collections.abc import Container, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import redis

from shared.bot_view import holds_trade
from shared.codec import DecodeError, decode, encode
from shared.config import ConfigError
from shared.control import ControlError, last_id
from shared.display import listing
from shared.messages import Decision, OrderType, OrderUpdate, Side, TradeRequest
from shared.streams import bot_control, bot_decisions, bot_state, order_events

TRADE_STRATEGY = "manual"  # the built-in strategy that takes manual trades (strategies/manual.py)
NAME_BOT = "`--bot ID`; in Telegram `bot ID`"  # how each front end names the bot of a trade


def how_to_add(symbol: str = "BTCUSDT") -> str:
    """The bots-file lines that make a bot take manual trades on `symbol`."""
    return (
        f'add a bot to the bots file: [[bots]] id = "manual_{symbol.lower()[:12]}", strategy = "manual", '
        f'venue = "sim", symbol = "{symbol}" (examples/bots.example.toml), and run it'
    )


def file_trade_bots(bots_file: Path | None) -> dict[str, str]:
    """bot -> "venue:SYMBOL" of the bots file's bots with strategy `manual` (none without a file)."""
    if bots_file is None or not bots_file.exists():
        return {}
    from services.strategy_runner.bots import load_bots

    try:
        bots = load_bots(bots_file, check_params=False)
    except ConfigError:
        return {}
    return {b.id: f"{b.venue}:{b.symbol}" for b in bots if b.strategy == TRADE_STRATEGY and b.enabled}


def heartbeat_trade_bots(extras: Iterable[Mapping[str, Any]]) -> dict[str, str]:
    """bot -> "venue:SYMBOL" from the strategy runners' heartbeats (their `trades`)."""
    found: dict[str, str] = {}
    for extra in extras:
        trades = extra.get("trades")
        if isinstance(trades, dict):
            found.update({str(k): str(v) for k, v in trades.items() if isinstance(v, str)})
    return found


def pick_bot(
    bots: Mapping[str, str],
    symbol: str,
    bot: str | None = None,
    *,
    side: Side = Side.BUY,
    holding: Container[str] = frozenset(),
) -> tuple[str, str]:
    """(bot, venue) that takes the trade on `symbol`: the one named, else the only one there is.
    With several (a bot holds one trade at a time), a BUY goes to the first holding none, a SELL
    to the one holding a trade; `holding` names the bots whose trade is open (holders())."""
    if bot is not None:
        market = bots.get(bot)
        if market is None:
            known = listing(bots) or "none"
            raise ControlError(
                f"bot {bot!r} takes no manual trades (bots that do: {known}); {how_to_add(symbol)}"
            )
        venue, _, traded = market.partition(":")
        if traded != symbol:
            raise ControlError(f"bot {bot} trades {traded}, not {symbol}")
        return bot, venue
    matching = sorted(b for b, market in bots.items() if market.partition(":")[2] == symbol)
    if not matching:
        raise ControlError(f"no bot takes manual trades on {symbol}: {how_to_add(symbol)}")
    if len(matching) > 1:
        held = [b for b in matching if b in holding]
        free = [b for b in matching if b not in holding]
        if side is Side.BUY and free:
            matching = free[:1]
        elif side is Side.BUY:
            raise ControlError(
                f"every bot that takes manual trades on {symbol} has one open ({', '.join(held)}): "
                f"close one (a sell naming its bot: {NAME_BOT}) or add a bot ({how_to_add(symbol)})"
            )
        elif len(held) == 1:
            matching = held
        else:
            which = "hold a trade" if held else "take manual trades, none holding a trade"
            raise ControlError(
                f"several bots {which} on {symbol} ({', '.join(held or matching)}): name one ({NAME_BOT})"
            )
    return matching[0], bots[matching[0]].partition(":")[0]


def holding(states: Mapping[str, bytes | None]) -> frozenset[str]:
    """The bots whose saved state (`bot:{bot}:state`, by bot) has a trade open or is still
    selling out the last one: the ones a new trade on a shared symbol does not go to."""
    return frozenset(bot for bot, raw in states.items() if holds_trade(raw))


def holders(r: redis.Redis, bots: Iterable[str]) -> frozenset[str]:
    """holding() of these bots' states read now (one MGET)."""
    names = list(bots)
    return (
        holding(dict(zip(names, r.mget([bot_state(b) for b in names]), strict=True)))
        if names
        else frozenset()
    )


def new_request_id() -> str:
    """A request id no other request has: the time in ms and 6 random hex digits."""
    return f"{int(time.time() * 1000)}-{os.urandom(3).hex()}"


@dataclass(frozen=True)
class TradeSent:
    stream: str
    entry: str  # the control stream entry id
    decisions_after: bytes  # where the bot's answer will be, after these ids
    events_after: bytes


def submit_trade(r: redis.Redis, request: TradeRequest) -> TradeSent:
    """Append the request to its bot's control stream (the bot's runner handles it once)."""
    decisions_after = last_id(r, bot_decisions(request.bot))
    events_after = last_id(r, order_events(request.bot))
    stream = bot_control(request.bot)
    entry = r.xadd(stream, encode(request)).decode()
    return TradeSent(stream, entry, decisions_after, events_after)


_SALE = (Side.SELL, OrderType.MARKET)  # a close's sale: the manual bot's one MARKET sell then


class TradeWatch:
    """The bot's answer to one request, from its decisions and order events as they come.

    `done` once the bot refused (or found the request a duplicate), or the entry order has an
    update that settles what the person asked: a limit entry's first, a market entry's final; for
    a close, its sale's final update (the manual bot's one MARKET sell after it said `closing`)."""

    def __init__(self, request: TradeRequest) -> None:
        self.request = request
        self.decision: Decision | None = None
        self.update: OrderUpdate | None = None

    @property
    def cid(self) -> str:
        return self.decision.fields.get("cid", "") if self.decision else ""

    def feed(self, msg: object) -> None:
        if (
            isinstance(msg, Decision)
            and msg.fields.get("request") == self.request.id
            and self.decision is None
        ):
            self.decision = msg
        elif isinstance(msg, OrderUpdate) and self._settles(msg):
            self.update = msg

    def _settles(self, update: OrderUpdate) -> bool:
        """The entry's update, or (a close) its sale's."""
        if self.cid:
            return update.cid == self.cid
        return self.closing and (update.side, update.order_type) == _SALE

    @property
    def closing(self) -> bool:
        return self.decision is not None and self.decision.fields.get("outcome") == "closing"

    @property
    def done(self) -> bool:
        if self.decision is None:
            return False
        if self.closing:  # its sale settles it; with nothing held (an entry cancelled) none comes
            if self.decision.fields.get("sells") == "no":
                return True
            return self.update is not None and self.update.terminal
        if self.decision.fields.get("outcome") != "sent":
            return True
        if self.update is None:
            return False
        market = self.update.order_type in (None, OrderType.MARKET)
        return self.update.terminal or not market


def wait_answer(r: redis.Redis, request: TradeRequest, sent: TradeSent, seconds: float) -> TradeWatch:
    """Read the bot's decisions and order events from where they were when the request was
    sent, until the answer is complete or `seconds` are up."""
    watch = TradeWatch(request)
    streams = {bot_decisions(request.bot): sent.decisions_after, order_events(request.bot): sent.events_after}
    deadline = time.monotonic() + seconds
    while not watch.done:
        left = deadline - time.monotonic()
        if left <= 0:
            break
        for stream, batch in r.xread(streams, count=100, block=max(1, int(min(left, 1.0) * 1000))) or []:
            for entry_id, fields in batch:
                streams[stream.decode()] = entry_id
                try:
                    watch.feed(decode(fields))
                except DecodeError:
                    continue
    return watch
