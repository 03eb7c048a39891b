"""`automata order buy|sell SYMBOL QTY [--price P] [--quote AMOUNT]` and `automata order cancel CID`.

A hand-placed order goes
through the order gateway like any bot's, under the bot id `manual`: a PlaceOrder / CancelOrder
on `orders:cmd:{venue}:manual` (a --force cancel of a bot's order: on that bot's stream, which
only the admin user and the bot's runner may write), so it gets the same write-ahead log,
filters, exactly-once sending and reconciliation. Its cid is `manual-{seq}`, seq from an INCR on `manual:seq` raised to the time in
milliseconds when it is behind it: a Redis that lost its last second (a power cut) has lost the
counter's last values and maybe the records of their orders too, while the venue kept those
orders; the clock has moved past every one of them, so no cid is reused (a number whose record
exists is skipped as well).
The command then waits (`--wait`) for the gateway's answer on `orders:events:manual` and prints
it; without an answer the command stays queued and the gateway executes it when it reads it.
"""

from __future__ import annotations

import time
from decimal import Decimal, InvalidOperation

import redis
import typer
from rich.console import Console
from rich.markup import escape

from cli import common, output
from cli.orders import read_record
from shared import display
from shared.codec import DecodeError, decode, encode
from shared.display import UNKNOWN, Precision
from shared.ids import bot_of, format_cid
from shared.messages import (
    TERMINAL_STATUSES,
    CancelOrder,
    OrderStatus,
    OrderType,
    OrderUpdate,
    PlaceOrder,
    Side,
    TimeInForce,
)
from shared.streams import MANUAL_BOT, MANUAL_SEQ, og_order, order_commands, order_events, venue_symbols

order_app = typer.Typer(
    no_args_is_help=True,
    help="Place or cancel an order by hand (through the order gateway, bot id `manual`).",
)

WAIT_HELP = "seconds to wait for the gateway's answer (0: do not wait)"


# INCR, but never below ARGV[1] (now in ms): the counter moves past whatever a rollback lost.
_NEXT_SEQ = """
local seq = redis.call('INCR', KEYS[1])
local floor = tonumber(ARGV[1])
if seq < floor then redis.call('SET', KEYS[1], ARGV[1]); seq = floor end
return seq
"""


def next_cid(r: redis.Redis) -> str:
    while True:
        seq = r.eval(_NEXT_SEQ, 1, MANUAL_SEQ, int(time.time() * 1000))
        cid = format_cid(MANUAL_BOT, int(seq))
        if not r.exists(og_order(cid)):
            return cid


def _decimal(out: Console, name: str, value: str | None) -> Decimal | None:
    if value is None:
        return None
    try:
        result = Decimal(value)
    except InvalidOperation:
        common.fail(out, f"{name}: not a number: {value!r}", 2)
    if not result.is_finite() or result <= 0:
        common.fail(out, f"{name}: must be a positive number, got {value}", 2)
    return result


def _last_id(r: redis.Redis, stream: str) -> bytes:
    top = r.xrevrange(stream, count=1)
    return top[0][0] if top else b"0-0"


def wait_update(
    r: redis.Redis, bot: str, cid: str, after: bytes, seconds: float, *, settle: bool = False
) -> OrderUpdate | None:
    """The newest update of cid on the bot's events stream after `after`, within `seconds`.

    Returns as soon as one arrives (plus whatever is already queued behind it); with `settle`
    (a market order, a cancel: the answer that matters is the final one), a NEW or partly
    filled update is not enough: it waits on for a terminal one until `seconds` are up."""
    stream = order_events(bot)
    deadline = time.monotonic() + seconds
    found: OrderUpdate | None = None
    while True:
        waiting = found is None or (settle and found.status not in TERMINAL_STATUSES)
        left = deadline - time.monotonic()
        if waiting and left > 0:
            reply = r.xread({stream: after}, count=100, block=max(1, int(min(left, 1.0) * 1000)))
        else:  # drain what is already queued behind it, without blocking
            reply = r.xread({stream: after}, count=100)
            if not reply:
                return found
        for _stream, batch in reply or []:
            for entry_id, fields in batch:
                after = entry_id
                try:
                    msg = decode(fields)
                except DecodeError:
                    continue
                if isinstance(msg, OrderUpdate) and msg.cid == cid:
                    found = msg


def describe(u: OrderUpdate, p: Precision = UNKNOWN) -> str:
    """The order's outcome in a line: price to the tick, quantities to the step, quote to the cent."""
    side = u.side.value if u.side else ""
    kind = u.order_type.value if u.order_type else ""
    price = f" @ {p.price(u.price)}" if u.price else ""
    text = f"{u.cid} {side} {u.symbol} {kind} {p.qty(u.orig_qty)}{price}: {u.status.value}"
    text += f", filled {p.qty(u.cum_filled_qty)}"
    if u.cum_filled_qty:
        avg = u.cum_quote_qty / u.cum_filled_qty
        text += f" at avg {p.price(avg)} ({display.quote(u.cum_quote_qty)} quote)"
    if u.fee:
        text += f", fee {display.plain(u.fee)} {u.fee_asset}"
    if u.venue_order_id:
        text += f", venue id {u.venue_order_id}"
    if u.reason:
        text += f" — {u.reason}"
    return text


def _report(
    out: Console, r: redis.Redis, bot: str, cid: str, stream: str, after: bytes, wait: float, *, settle: bool
) -> None:
    if wait <= 0:
        return
    update = wait_update(r, bot, cid, after, wait, settle=settle)
    if update is None:
        out.print(
            f"[yellow]no answer within {wait:g}s: the command stays queued on {stream} and "
            f"the order gateway executes it when it reads it (is it running? `automata status`)[/]"
        )
        raise typer.Exit(1)
    colour = "red" if update.status is OrderStatus.REJECTED else "green"
    out.print(
        f"[{colour}]{escape(describe(update, output.Precisions(r).of(update.venue, update.symbol)))}[/]"
    )
    if update.status is OrderStatus.REJECTED:
        raise typer.Exit(1)


def _place(
    side: Side, symbol: str, qty: str | None, price: str | None, quote: str | None, venue: str, wait: float
) -> None:
    out = common.console()
    quantity = _decimal(out, "QTY", qty)
    limit = _decimal(out, "--price", price)
    quote_qty = _decimal(out, "--quote", quote)
    if quantity is None and quote_qty is None:
        common.fail(out, "give QTY (base asset) or --quote AMOUNT (quote asset to spend)", 2)
    if quantity is not None and quote_qty is not None:
        common.fail(out, "give either QTY (base asset) or --quote AMOUNT (quote asset to spend), not both", 2)
    if quote_qty is not None and limit is not None:
        common.fail(out, "--quote is for market orders: drop --price, or give QTY for a limit order", 2)
    cfg = common.config_or_none()
    if cfg is not None:
        common.check_venue(out, cfg, venue)
    r, _url = common.redis_client(out)
    symbol = symbol.upper()
    common.check_symbol(out, venue, symbol, (s.decode() for s in r.hkeys(venue_symbols(venue))))
    cid = next_cid(r)
    cmd = PlaceOrder(
        cid=cid,
        bot=MANUAL_BOT,
        venue=venue,
        symbol=symbol.upper(),
        side=side,
        order_type=OrderType.LIMIT if limit is not None else OrderType.MARKET,
        quantity=quantity,
        quote_quantity=quote_qty,
        price=limit,
        time_in_force=TimeInForce.GTC if limit is not None else None,
        ts=int(time.time() * 1000),
    )
    after = _last_id(r, order_events(MANUAL_BOT))
    stream = order_commands(venue, MANUAL_BOT)
    r.xadd(stream, encode(cmd))
    what = (
        f"{display.plain(quantity)} {cmd.symbol}"
        if quantity is not None
        else f"{display.plain(quote_qty)} quote of {cmd.symbol}"
    )
    how = f"limit {display.plain(limit)}" if limit is not None else "market"
    out.print(f"{cid}: {side.value.lower()} {what} at {how} sent to {stream}")
    _report(out, r, MANUAL_BOT, cid, stream, after, wait, settle=limit is None)


@order_app.command("buy")
def buy(
    symbol: str = typer.Argument(..., help="e.g. BTCUSDT"),
    qty: str = typer.Argument(None, help="quantity in the base asset (or use --quote)"),
    price: str = typer.Option(None, help="limit price (GTC); without it, a market order"),
    quote: str = typer.Option(None, help="market order spending this much of the quote asset"),
    venue: str = typer.Option("sim", help="configured venue"),
    wait: float = typer.Option(5.0, help=WAIT_HELP),
) -> None:
    """Buy: a limit order with --price, else at market (QTY, or --quote AMOUNT to spend)."""
    _place(Side.BUY, symbol, qty, price, quote, venue, wait)


@order_app.command("sell")
def sell(
    symbol: str = typer.Argument(..., help="e.g. BTCUSDT"),
    qty: str = typer.Argument(None, help="quantity in the base asset (or use --quote)"),
    price: str = typer.Option(None, help="limit price (GTC); without it, a market order"),
    quote: str = typer.Option(None, help="market order receiving this much of the quote asset"),
    venue: str = typer.Option("sim", help="configured venue"),
    wait: float = typer.Option(5.0, help=WAIT_HELP),
) -> None:
    """Sell: a limit order with --price, else at market."""
    _place(Side.SELL, symbol, qty, price, quote, venue, wait)


@order_app.command("cancel")
def cancel(
    cid: str = typer.Argument(..., help="client order id, e.g. manual-000001"),
    force: bool = typer.Option(False, "--force", help="also cancel a bot's order (the bot is told)"),
    venue: str = typer.Option(None, help="venue, when the order has no record in Redis"),
    symbol: str = typer.Option(None, help="symbol, when the order has no record in Redis"),
    wait: float = typer.Option(5.0, help=WAIT_HELP),
) -> None:
    """Cancel an open order by its client order id."""
    out = common.console()
    bot = bot_of(cid)
    if bot is None:
        common.fail(out, f"{cid!r} is not an Automata client order id (bot-000001)", 2)
    if bot != MANUAL_BOT and not force:
        common.fail(
            out,
            f"{cid} belongs to bot {bot!r}: stop the bot (`automata stop {bot}`) or add --force",
            2,
        )
    r, _url = common.redis_client(out)
    record = read_record(r, cid)
    if record is not None:
        venue, symbol = record.venue, record.symbol
        if record.terminal:
            out.print(
                f"{cid} is already {record.status.value} (filled {display.plain(record.cum_filled_qty)})"
            )
            return
    elif not (venue and symbol):
        common.fail(
            out, f"no record of {cid} in Redis: give --venue and --symbol to cancel it at the venue", 2
        )
    after = _last_id(r, order_events(bot))
    cmd = CancelOrder(cid=cid, bot=bot, venue=venue, symbol=symbol.upper(), ts=int(time.time() * 1000))
    stream = order_commands(venue, bot)  # the owner's stream: the gateway takes it as the bot's own
    r.xadd(stream, encode(cmd))
    out.print(f"cancel of {cid} sent to {stream}")
    _report(out, r, bot, cid, stream, after, wait, settle=True)
