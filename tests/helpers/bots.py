"""Helpers for strategy runner tests: bots files, symbol filters, candles and fills on streams."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import msgspec
import redis

from shared.codec import decode, encode
from shared.filters import SymbolFilters
from shared.messages import BotControl, Candle, ControlAction, OrderStatus, OrderUpdate, PlaceOrder
from shared.streams import bot_control, candle_entry_id, candles, order_events, venue_symbols
from tests.helpers.cmdstreams import command_entries

FILTERS = SymbolFilters(symbol="BTCUSDT", base_asset="BTC", quote_asset="USDT", tick_size=Decimal("0.01"),
                        step_size=Decimal("0.00001"), min_qty=Decimal("0.00001"), min_notional=Decimal("5"))  # fmt: skip
T0 = 1_700_000_000_000
MINUTE = 60_000


def _toml(value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return f'"{value}"'
    return str(value)


def write_bots(path: Path, *bots: dict) -> Path:
    """A bots TOML file from dicts (a "params" key becomes the [bots.params] table)."""
    lines = []
    for bot in bots:
        lines.append("[[bots]]")
        lines += [f"{k} = {_toml(v)}" for k, v in bot.items() if k != "params"]
        lines.append("[bots.params]")
        lines += [f"{k} = {_toml(v)}" for k, v in bot.get("params", {}).items()]
    path.write_text("\n".join(lines) + "\n")
    return path


def publish_filters(r: redis.Redis, venue: str = "sim") -> None:
    r.hset(venue_symbols(venue), "BTCUSDT", msgspec.json.encode(FILTERS))


def candle(i: int, open_: str, close: str) -> Candle:
    o, c = Decimal(open_), Decimal(close)
    return Candle(venue="sim", symbol="BTCUSDT", interval="1m", open_time=T0 + i * MINUTE, close_time=T0 + (i + 1) * MINUTE - 1,
                  open=o, high=max(o, c), low=min(o, c), close=c, volume=Decimal("1"))  # fmt: skip


def reading_candles(r: redis.Redis, *bots: str, venue: str = "sim") -> bool:
    """Every bot's group on the candle stream exists. A bot's first start creates it at `$`
    just after taking its lease (a new bot trades no old candles): a candle written in between
    is never the bot's, so a test writes candles only once this holds."""
    stream = candles(venue, "BTCUSDT", "1m")
    have = {g["name"].decode() for g in r.xinfo_groups(stream)} if r.exists(stream) else set()
    return {f"bot:{bot}" for bot in bots} <= have


def add_candle(r: redis.Redis, c: Candle) -> None:
    r.xadd(candles("sim", "BTCUSDT", "1m"), encode(c), id=candle_entry_id(c.open_time))


def commands(r: redis.Redis, venue: str = "sim") -> list:
    """The order commands bots sent (a runner's start-up SyncBot left out)."""
    return [decode(f) for _, f in command_entries(r, venue) if f.get(b"type") != b"sync"]


def fill(
    r: redis.Redis, cmd: PlaceOrder, status: OrderStatus = OrderStatus.FILLED, qty: str | None = None
) -> None:
    q = Decimal(qty) if qty else cmd.quantity
    upd = OrderUpdate(cid=cmd.cid, bot=cmd.bot, venue=cmd.venue, symbol=cmd.symbol, status=status, side=cmd.side,
                      order_type=cmd.order_type, price=cmd.price, orig_qty=cmd.quantity, cum_filled_qty=q,
                      cum_quote_qty=q * cmd.price, fee=Decimal(0), fee_asset="USDT", venue_ts=T0)  # fmt: skip
    r.xadd(order_events(cmd.bot), encode(upd))


def control(r: redis.Redis, bot: str, action: ControlAction, ts: int = T0) -> None:
    r.xadd(bot_control(bot), encode(BotControl(bot=bot, action=action, source="test", ts=ts)))
