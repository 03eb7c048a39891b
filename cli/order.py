"""`automata order buy|sell SYMBOL QTY [--price P] [--quote AMOUNT]` and `automata order cancel CID`.

A hand-placed order goes
through the order gateway like any bot's, under the bot id `manual`: a PlaceOrder / CancelOrder
on `orders:cmd:{venue}:manual`, so it gets the same write-ahead log, filters, exactly-once
sending and reconciliation. A --force cancel of a bot's order asks the bot (a CANCEL control on
`bot:{bot}:control`): the bot sends the cancel on its own command stream, which only its runner
writes, and answers on `bot:{bot}:decisions` when it holds no such open order. A manual order's
cid is `manual-{seq}`; the checks, the cid and the streams are shared/control.py's (the web
dashboard uses them too).
The command then waits (`--wait`) for the gateway's answer on `orders:events:{bot}` and prints
it; without an answer the command stays queued and the gateway executes it when it reads it.
"""

from __future__ import annotations

import time
from decimal import Decimal

import redis
import typer
from rich.console import Console
from rich.markup import escape

from cli import common, output
from shared import control, display
from shared.codec import DecodeError, decode
from shared.display import UNKNOWN, Precision
from shared.messages import (
    BotControl,
    CancelOrder,
    Decision,
    OrderStatus,
    OrderUpdate,
    Side,
)
from shared.strategy.cancel_asked import CancelOutcome
from shared.streams import MANUAL_BOT, bot_decisions, order_events

order_app = typer.Typer(
    no_args_is_help=True,
    help="Place or cancel an order by hand (through the order gateway, bot id `manual`).",
)

WAIT_HELP = "seconds to wait for the gateway's answer (0: do not wait)"


def _decimal(out: Console, name: str, value: str | None) -> Decimal | None:
    try:
        return control.amount(name, value)
    except control.ControlError as exc:
        common.fail(out, str(exc), 2)


def wait_update(
    r: redis.Redis,
    bot: str,
    cid: str,
    after: bytes,
    seconds: float,
    *,
    settle: bool = False,
    decisions_after: bytes | None = None,
) -> OrderUpdate | Decision | None:
    """The newest update of cid on the bot's events stream after `after`, within `seconds`.

    Returns as soon as one arrives (plus whatever is already queued behind it); with `settle`
    (a market order, a cancel: the answer that matters is the final one), a NEW or partly
    filled update is not enough: it waits on for a terminal one until `seconds` are up.
    With `decisions_after` (a cancel the bot was asked for) the bot's decision that it sent
    nothing for cid is an answer too."""
    streams = {order_events(bot): after}
    if decisions_after is not None:
        streams[bot_decisions(bot)] = decisions_after
    deadline = time.monotonic() + seconds
    found: OrderUpdate | Decision | None = None
    while True:
        waiting = found is None or (settle and isinstance(found, OrderUpdate) and not found.terminal)
        left = deadline - time.monotonic()
        if waiting and left > 0:
            reply = r.xread(streams, count=100, block=max(1, int(min(left, 1.0) * 1000)))
        else:  # drain what is already queued behind it, without blocking
            reply = r.xread(streams, count=100)
            if not reply:
                return found
        for stream, batch in reply or []:
            for entry_id, fields in batch:
                streams[stream.decode()] = entry_id
                try:
                    msg = decode(fields)
                except DecodeError:
                    continue
                if _answers(msg, cid):
                    found = msg


def _answers(msg: object, cid: str) -> bool:
    """An update of cid, or the bot's decision that it sent no cancel of cid."""
    if isinstance(msg, OrderUpdate):
        return msg.cid == cid
    return (
        isinstance(msg, Decision)
        and msg.fields.get("cid") == cid
        and msg.fields.get("outcome") != CancelOutcome.SENT
    )


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
    out: Console, r: redis.Redis, bot: str, cid: str, stream: str, after: bytes, wait: float, *, settle: bool,
    decisions_after: bytes | None = None,
) -> None:  # fmt: skip
    if wait <= 0:
        return
    update = wait_update(r, bot, cid, after, wait, settle=settle, decisions_after=decisions_after)
    if isinstance(update, Decision):  # the bot sent nothing: it says why
        out.print(f"[yellow]{escape(bot)}: {escape(update.text)}[/]")
        raise typer.Exit(1)
    if update is None:
        who = (
            "the order gateway" if decisions_after is None else f"bot {bot}'s runner (then the order gateway)"
        )
        out.print(
            f"[yellow]no answer within {wait:g}s: the command stays queued on {stream} and "
            f"{who} executes it when it reads it (is it running? `automata status`)[/]"
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
    cfg = common.config_or_none()
    venues = cfg.venues if cfg else None
    try:
        control.check_terms(venue, venues, quantity=quantity, price=limit, quote_quantity=quote_qty)
    except control.ControlError as exc:
        common.fail(out, str(exc), 2)
    r, _url = common.redis_client(out)
    try:
        cmd = control.manual_order(r, side, symbol, venue=venue, venues=venues,
                                   quantity=quantity, price=limit, quote_quantity=quote_qty)  # fmt: skip
    except control.ControlError as exc:
        common.fail(out, str(exc), 2)
    stream, after = control.submit(r, cmd)
    what = (
        f"{display.plain(quantity)} {cmd.symbol}"
        if quantity is not None
        else f"{display.plain(quote_qty)} quote of {cmd.symbol}"
    )
    how = f"limit {display.plain(limit)}" if limit is not None else "market"
    out.print(f"{cmd.cid}: {side.value.lower()} {what} at {how} sent to {stream}")
    _report(out, r, MANUAL_BOT, cmd.cid, stream, after, wait, settle=limit is None)


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
    force: bool = typer.Option(False, "--force", help="also a bot's order: the bot is asked and cancels it"),
    venue: str = typer.Option(None, help="venue of a manual order that has no record in Redis"),
    symbol: str = typer.Option(None, help="symbol of a manual order that has no record in Redis"),
    reason: str = typer.Option("", help="why (a bot's order: in the bot's decision and notification)"),
    wait: float = typer.Option(5.0, help=WAIT_HELP),
) -> None:
    """Cancel an open order by its client order id."""
    out = common.console()
    r, _url = common.redis_client(out)
    try:
        cmd = control.cancel_command(r, cid, force=force, venue=venue, symbol=symbol, reason=reason)
    except control.ControlError as exc:
        common.fail(out, str(exc), 2)
    if not isinstance(cmd, CancelOrder | BotControl):
        out.print(f"{cid} is already {cmd.status.value} (filled {display.plain(cmd.cum_filled_qty)})")
        return
    asked = isinstance(cmd, BotControl)  # a bot's order: the bot cancels it, or says why not
    decisions_after = control.last_id(r, bot_decisions(cmd.bot)) if asked else None
    stream, after = control.submit(r, cmd)
    out.print(f"cancel of {cid} sent to {stream}" + (f" (bot {cmd.bot} cancels it)" if asked else ""))
    _report(out, r, cmd.bot, cid, stream, after, wait, settle=True, decisions_after=decisions_after)
