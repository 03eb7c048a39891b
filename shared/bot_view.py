"""Each bot as its persisted state document (`bot:{bot}:state`) says: mode, market, position,
open orders, failure. `automata status`, `automata bots` and the web dashboard list bots so."""

from __future__ import annotations

import time
from typing import Any

import msgspec
import orjson
import redis

from shared import display
from shared.display import to_dec
from shared.strategy.position import Position
from shared.streams import any_bot, bot_state


def bot_mode(state: dict) -> str:
    """A bot's mode as its state document says, and whether it still waits for its start-up sync."""
    mode = state.get("mode", "running")
    return f"{mode} (syncing)" if state.get("sync") else mode


def read_state(r: redis.Redis, bot: str) -> dict[str, Any] | None:
    """The bot's state document (None: none, or not JSON)."""
    raw = r.get(bot_state(bot))
    try:
        return orjson.loads(raw) if raw else None
    except orjson.JSONDecodeError:
        return None


class _Taken(msgspec.Struct):
    opening: Position | None = None


class _TakenDoc(msgspec.Struct):
    state: _Taken | None = None


_taken = msgspec.json.Decoder(_TakenDoc)


def opening_position(raw: bytes | None) -> Position | None:
    """The position a bot took over at its start (StrategyState.opening) as its state document
    (raw JSON) says; None when it took none, has no state, or the document does not read."""
    if not raw:
        return None
    try:
        doc = _taken.decode(raw)
    except msgspec.DecodeError:
        return None
    return doc.state.opening if doc.state is not None else None


class _Holding(msgspec.Struct):
    trade: Any = None
    closing: bool = False


class _HoldingDoc(msgspec.Struct):
    state: _Holding | None = None


_holding = msgspec.json.Decoder(_HoldingDoc)


def holds_trade(raw: bytes | None) -> bool:
    """Whether the bot's state document (raw JSON) shows a smart trade open (StrategyState.trade)
    or the last one still being sold out (closing); False without a state that reads."""
    if not raw:
        return False
    try:
        doc = _holding.decode(raw)
    except msgspec.DecodeError:
        return False
    return doc.state is not None and (doc.state.trade is not None or doc.state.closing)


def row(bot: str, doc: dict[str, Any], seen: dict[str, Any] | None, now_ms: int) -> dict[str, Any]:
    """One bot's line: with `seen` (its runner's heartbeat input), whether it gets its candles."""
    state = doc.get("state") or {}
    pos = state.get("position") or {}
    base, cost = to_dec(pos.get("base", "0")), to_dec(pos.get("cost", "0"))
    market = display.bot_market(doc)
    return {
        "bot": bot,
        "mode": bot_mode(state),
        "venue": market[0] if market else None,
        "symbol": market[1] if market else None,
        "position": base,
        "avg_price": cost / base if base and cost is not None else None,
        "realised": to_dec(pos.get("realised", "0")),
        "open_orders": len(state.get("orders") or {}),
        "version": doc.get("version", 0),
        "failed": (doc.get("failed") or {}).get("error", ""),
        "last_input_s": None
        if seen is None
        else round(max(0, now_ms - int(seen["last_input_ms"])) / 1000, 1),
        "stalled": None if seen is None else bool(seen["stalled"]),
    }


def bots(r: redis.Redis, inputs: dict[str, dict[str, Any]] | None = None) -> list[dict[str, Any]]:
    """Every bot with persisted state: mode, position (exact decimals), open orders, failure; with `inputs` (bot_inputs of the heartbeats), whether each
    gets its candles: `last_input_s` ago and `stalled` (None: its runner is not running)."""
    inputs = inputs or {}
    now_ms = int(time.time() * 1000)
    rows = []
    for key in sorted(r.scan_iter(match=any_bot("state"), count=1000)):
        bot = key.decode().split(":")[1]
        rows.append(row(bot, read_state(r, bot) or {}, inputs.get(bot), now_ms))
    return rows
