"""Steering the system by hand: a bot's control (pause / resume / stop / close), a manual order,
a cancel. One implementation for every front end (`automata pause`, `automata order`, the web
dashboard), so each goes through the same checks and the same streams:

- a control is a BotControl entry on `bot:{bot}:control`, for a bot the system knows (a typo
  must not create keys); the bot's runner applies it exactly once;
- a manual order is a PlaceOrder on `orders:cmd:{venue}:manual` under the bot id `manual`, its
  cid `manual-{seq}` from an INCR on `manual:seq` raised to the time in milliseconds when it is
  behind it: a Redis that lost its last second (a power cut) has lost the counter's last values
  and maybe the records of their orders too, while the venue kept those orders; the clock has
  moved past every one of them, so no cid is reused (a number whose record exists is skipped);
- a cancel of a manual order is a CancelOrder on `orders:cmd:{venue}:manual`; of a bot's order
  (only when forced) a BotControl CANCEL naming the cid on `bot:{bot}:control`: the bot sends
  the cancel itself, on its own command stream, so no one else ever writes that stream (the
  gateway's proof of the sender) and the bot's state follows its own cancel as any other.

Every refusal is a ControlError with a one-line reason, before anything is written. The order
gateway then applies its own checks (filters, balances, ownership) to what arrives.
"""

from __future__ import annotations

import time
from collections.abc import Collection, Iterable
from decimal import Decimal, InvalidOperation
from pathlib import Path

import msgspec
import redis

from shared.codec import encode
from shared.config import ConfigError
from shared.display import listing
from shared.ids import ClientOrderId, IdError, bot_of, check_bot_id, format_cid
from shared.messages import BotControl, CancelOrder, ControlAction, OrderType, PlaceOrder, Side, TimeInForce
from shared.order_record import OrderRecord
from shared.streams import (
    MANUAL_BOT,
    MANUAL_SEQ,
    any_bot,
    bot_control,
    bot_state,
    og_order,
    order_commands,
    order_events,
    venue_symbols,
)

MODE_AFTER = {ControlAction.PAUSE: "paused", ControlAction.RESUME: "running", ControlAction.STOP: "stopped",
              ControlAction.CLOSE: "stopped"}  # fmt: skip


class ControlError(ValueError):
    """A control refused before anything was sent; `usage` when the input itself is wrong."""

    def __init__(self, reason: str, *, usage: bool = True) -> None:
        super().__init__(reason)
        self.usage = usage


def known_bots(r: redis.Redis, bots_file: Path | None, *, runners: Iterable[str] = ()) -> set[str]:
    """The bots there are: those of the bots file the system uses, those with state or a lease
    in Redis, and `runners` (those the strategy runners' heartbeats name)."""
    from services.strategy_runner.bots import load_bots

    known: set[str] = set(runners)
    if bots_file is not None:
        try:
            known |= {b.id for b in load_bots(bots_file, check_params=False)}
        except ConfigError:
            pass  # a broken bots file: what Redis knows still counts
    for kind in ("state", "lease"):
        known |= {key.decode().split(":")[1] for key in r.scan_iter(match=any_bot(kind), count=500)}
    return known


def check_known(bot: str, known: Collection[str]) -> None:
    if bot not in known:
        listed = listing(known) or "none (no bots file, no bot state in Redis)"
        raise ControlError(f"unknown bot {bot!r} (bots: {listed})")


def check_bot(bot: str) -> None:
    try:
        check_bot_id(bot)
    except IdError as exc:
        raise ControlError(str(exc)) from None


def send_control(r: redis.Redis, bot: str, action: ControlAction, *, source: str, reason: str = "") -> str:
    """Append the control to the bot's control stream; its entry id."""
    msg = BotControl(bot=bot, action=action, source=source, reason=reason, ts=int(time.time() * 1000))
    return r.xadd(bot_control(bot), encode(msg)).decode()


def read_record(r: redis.Redis, cid: str) -> OrderRecord | None:
    """The order gateway's write-ahead record of `cid` (None: none, or unreadable)."""
    data = r.hgetall(og_order(cid))
    if not data:
        return None
    try:
        return OrderRecord.from_hash(data)
    except (msgspec.ValidationError, ValueError):
        return None


# INCR, but never below ARGV[1] (now in ms): the counter moves past whatever a rollback lost.
_NEXT_SEQ = """
local seq = redis.call('INCR', KEYS[1])
local floor = tonumber(ARGV[1])
if seq < floor then redis.call('SET', KEYS[1], ARGV[1]); seq = floor end
return seq
"""


def next_cid(r: redis.Redis) -> ClientOrderId:
    while True:
        seq = r.eval(_NEXT_SEQ, 1, MANUAL_SEQ, int(time.time() * 1000))
        cid = format_cid(MANUAL_BOT, int(seq))
        if not r.exists(og_order(cid)):
            return cid


def amount(name: str, value: str | Decimal | None) -> Decimal | None:
    """A positive finite decimal from the user, or None when not given."""
    if value is None:
        return None
    try:
        result = Decimal(value)
    except InvalidOperation:
        raise ControlError(f"{name}: not a number: {value!r}") from None
    if not result.is_finite() or result <= 0:
        raise ControlError(f"{name}: must be a positive number, got {value}")
    return result


def check_symbol(venue: str, symbol: str, known: Iterable[str]) -> None:
    """Refuse a symbol the venue does not list (an empty list: the venue could not tell, let it answer)."""
    known = set(known)
    if known and symbol not in known:
        raise ControlError(f"unknown symbol {symbol!r} on {venue} (symbols: {listing(known)})")


def check_terms(
    venue: str,
    venues: Collection[str] | None,
    *,
    quantity: Decimal | None,
    price: Decimal | None,
    quote_quantity: Decimal | None,
) -> None:
    """An order's terms make sense together, on a configured venue (`venues` None: unknown)."""
    if quantity is None and quote_quantity is None:
        raise ControlError("give QTY (base asset) or --quote AMOUNT (quote asset to spend)")
    if quantity is not None and quote_quantity is not None:
        raise ControlError("give either QTY (base asset) or --quote AMOUNT (quote asset to spend), not both")
    if quote_quantity is not None and price is not None:
        raise ControlError("--quote is for market orders: drop --price, or give QTY for a limit order")
    if venues is not None and venue not in venues:
        raise ControlError(f"venue {venue!r} is not configured (venues: {', '.join(sorted(venues))})")


def manual_order(
    r: redis.Redis,
    side: Side,
    symbol: str,
    *,
    venue: str,
    venues: Collection[str] | None,
    quantity: Decimal | None = None,
    price: Decimal | None = None,
    quote_quantity: Decimal | None = None,
) -> PlaceOrder:
    """A checked PlaceOrder with a new manual cid (not sent yet: `submit`)."""
    check_terms(venue, venues, quantity=quantity, price=price, quote_quantity=quote_quantity)
    symbol = symbol.upper()
    check_symbol(venue, symbol, (s.decode() for s in r.hkeys(venue_symbols(venue))))
    return PlaceOrder(
        cid=next_cid(r),
        bot=MANUAL_BOT,
        venue=venue,
        symbol=symbol,
        side=side,
        order_type=OrderType.LIMIT if price is not None else OrderType.MARKET,
        quantity=quantity,
        quote_quantity=quote_quantity,
        price=price,
        time_in_force=TimeInForce.GTC if price is not None else None,
        ts=int(time.time() * 1000),
    )


def cancel_command(
    r: redis.Redis,
    cid: str,
    *,
    force: bool = False,
    venue: str | None = None,
    symbol: str | None = None,
    source: str = "cli",
    reason: str = "",
) -> CancelOrder | BotControl | OrderRecord:
    """What cancels `cid` (not sent yet: `submit`): a manual order's CancelOrder; for a bot's
    order (forced) the BotControl asking the bot to cancel it; or the order's record when it is
    over already (nothing to do)."""
    bot = bot_of(cid)
    if bot is None:
        raise ControlError(f"{cid!r} is not an Automata client order id (bot-000001)")
    if bot != MANUAL_BOT and not force:
        raise ControlError(
            f"{cid} belongs to bot {bot!r}: force it (--force) to have the bot cancel it, or stop the bot"
        )
    record = read_record(r, cid)
    if record is not None and record.terminal:
        return record
    now = int(time.time() * 1000)
    if bot != MANUAL_BOT:
        if not r.exists(bot_state(bot)):
            raise ControlError(f"bot {bot!r} has no state in Redis: it holds no order {cid} to cancel")
        return BotControl(bot=bot, action=ControlAction.CANCEL, source=source, reason=reason, cid=cid, ts=now)
    if record is not None:
        venue, symbol = record.venue, record.symbol
    elif not (venue and symbol):
        raise ControlError(
            f"no record of {cid} in Redis: give --venue and --symbol to cancel it at the venue"
        )
    return CancelOrder(cid=cid, bot=bot, venue=venue, symbol=symbol.upper(), ts=now)


def last_id(r: redis.Redis, stream: str) -> bytes:
    top = r.xrevrange(stream, count=1)
    return top[0][0] if top else b"0-0"


def submit(r: redis.Redis, cmd: PlaceOrder | CancelOrder | BotControl) -> tuple[str, bytes]:
    """Append an order command to its owner's command stream (the gateway takes it as the
    bot's own), a bot's cancel to the bot's control stream: (the stream, the owner's events
    stream's last id before it, to wait from)."""
    after = last_id(r, order_events(cmd.bot))
    stream = bot_control(cmd.bot) if isinstance(cmd, BotControl) else order_commands(cmd.venue, cmd.bot)
    r.xadd(stream, encode(cmd))
    return stream, after
