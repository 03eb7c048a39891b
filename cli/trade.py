"""`automata trade buy|sell SYMBOL ...`: a smart trade by hand, carried out by the `manual` bot.

    automata trade buy BTCUSDT --quote 100 --tp 2%,4% --sl 1% --trailing 0.5%

The terms are checked first (shared/trade_terms.py, the grammar Telegram and the dashboard use
too: a bad --tp is refused naming --tp, nothing written); then the bot with strategy `manual`
trading SYMBOL is found (shared/trade_control.py), the TradeRequest goes to its control stream,
and the command waits for the bot's decision and its entry's first order update (a market
entry's fill) and prints them. The bot places the entry, then the exits as the entry fills.
"""

from __future__ import annotations

import time

import redis
import typer
from rich.console import Console
from rich.markup import escape

from cli import common, output
from cli.heartbeats import read_heartbeats
from cli.order import describe as describe_update
from shared import control, trade_control
from shared.messages import OrderStatus, Side, TradeRequest
from shared.trade_terms import TermsError, describe, parse_terms

trade_app = typer.Typer(
    no_args_is_help=True,
    help="A smart trade by hand: entry, take profits, stop loss, trailing, run by a bot of strategy "
    "`manual` (the demo's demo_manual).",
)

EXAMPLES = """
Percent needs its sign: --sl 1% is 1 %; a bare number in --tp is a target price, elsewhere it is refused.

Examples:

  automata trade buy BTCUSDT --quote 100 --tp 2% --sl 1%

  automata trade buy BTCUSDT --quote 100 --tp 2%,4% --sl 1% --trailing 0.5%

  automata trade buy BTCUSDT --qty 0.002 --price 41000 --tp 43000,44000:60%,40% --stop 40000

  automata trade buy BTCUSDT --quote 50 --tp 1%,3% --trailing-tp 0.5% --break-even --time-limit 4h
"""

WAIT_HELP = "seconds to wait for the bot's answer and its entry's first update"


def _flag(field: str) -> str:
    """A term's name as this command spells it: trailing_tp -> --trailing-tp."""
    return {"side": "SIDE", "symbol": "SYMBOL"}.get(field, "--" + field.replace("_", "-"))


def _send(side: Side, symbol: str, fields: dict[str, str | None], bot: str | None, wait: float) -> None:
    out = common.console()
    try:
        terms = parse_terms(side, symbol, fields)
    except TermsError as exc:
        common.fail(out, f"{_flag(exc.field)}: {exc.reason}", 2)
    system = common.located(out)
    r, _url = common.redis_client(out, system)
    bots = {
        **trade_control.file_trade_bots(system.bots),
        **trade_control.heartbeat_trade_bots(
            b.extra for b in read_heartbeats(r) if b.service == "strategy_runner"
        ),
    }
    try:
        if bot is not None:
            control.check_bot(bot)
        holding = trade_control.holders(r, bots)
        bot_id, _venue = trade_control.pick_bot(bots, terms.symbol, bot, side=terms.side, holding=holding)
    except control.ControlError as exc:
        common.fail(out, str(exc), 2)
    request = terms.request(
        id=trade_control.new_request_id(), bot=bot_id, source="cli", ts=int(time.time() * 1000)
    )
    sent = trade_control.submit_trade(r, request)
    out.print(f"trade {request.id}: {escape(describe(terms))} sent to {bot_id} ({sent.stream} {sent.entry})")
    if wait > 0:
        _report(out, r, request, sent, wait)


def _report(
    out: Console, r: redis.Redis, request: TradeRequest, sent: trade_control.TradeSent, wait: float
) -> None:
    """The bot's decision and its entry's first update (a market entry's last), or a close's
    sale, as they come."""
    watch = trade_control.wait_answer(r, request, sent, wait)
    if watch.decision is None:
        out.print(f"[yellow]no answer from {request.bot} within {wait:g}s: the request stays on {sent.stream} and "
                  f"the bot handles it when its runner reads it (is it running? `automata status`)[/]")  # fmt: skip
        raise typer.Exit(1)
    refused = watch.decision.fields.get("outcome") in ("refused", "duplicate")
    out.print(f"[{'red' if refused else 'green'}]{escape(request.bot)}: {escape(watch.decision.text)}[/]")
    if refused:
        raise typer.Exit(1)
    if watch.update is None:
        if watch.cid:
            out.print(f"[yellow]no update of {watch.cid} within {wait:g}s yet (`automata orders`)[/]")
        return
    update = watch.update
    colour = "red" if update.status is OrderStatus.REJECTED else "green"
    precision = output.Precisions(r).of(update.venue, update.symbol)
    what = "sale" if watch.closing else "entry"
    out.print(f"[{colour}]{what} {escape(describe_update(update, precision))}[/]")
    if update.status is OrderStatus.REJECTED:
        raise typer.Exit(1)


@trade_app.command("buy", epilog=EXAMPLES)
def buy(
    symbol: str = typer.Argument(..., help="e.g. BTCUSDT"),
    quote: str = typer.Option(None, "--quote", help="quote asset to spend, e.g. 100 (or --qty)"),
    qty: str = typer.Option(None, "--qty", help="base asset to buy, e.g. 0.002 (or --quote)"),
    price: str = typer.Option(None, "--price", help="a limit entry at this price (default: at market)"),
    tp: str = typer.Option(None, "--tp", help="take profits: 2%,4% above the entry or prices 43000,44000; "
                           ":50%,50% after them gives each one's share, adding up to 100% (default: equal parts)"),  # fmt: skip
    sl: str = typer.Option(None, "--sl", help="stop loss below the entry, e.g. 1%"),
    stop: str = typer.Option(None, "--stop", help="or a stop price, e.g. 40000"),
    trailing: str = typer.Option(None, "--trailing", help="trailing stop below the highest price since the entry, e.g. 0.5%"),
    trailing_tp: str = typer.Option(None, "--trailing-tp", help="trailing take profit: from the last target on, sell 0.5% below the peak"),
    break_even: bool = typer.Option(False, "--break-even", help="move the stop to the entry price once the first target filled"),
    time_limit: str = typer.Option(None, "--time-limit", help="sell what is held this long after the entry: 90s, 30m, 4h, 1d"),
    bot: str = typer.Option(None, "--bot", help="the manual bot to use (default: the one trading SYMBOL)"),
    wait: float = typer.Option(15.0, "--wait", help=WAIT_HELP),
    no_wait: bool = typer.Option(False, "--no-wait", help="send and return at once"),
) -> None:  # fmt: skip
    """Buy at market (or --price), then sell by take profits, a stop loss, trailing stops, a time limit."""
    fields = {"quote": quote, "qty": qty, "price": price, "tp": tp, "sl": sl, "stop": stop, "trailing": trailing,
              "trailing_tp": trailing_tp, "break_even": "yes" if break_even else None, "time_limit": time_limit}  # fmt: skip
    _send(Side.BUY, symbol, fields, bot, 0.0 if no_wait else wait)


@trade_app.command("sell")
def sell(
    symbol: str = typer.Argument(..., help="e.g. BTCUSDT"),
    bot: str = typer.Option(None, "--bot", help="the manual bot to use (default: the one trading SYMBOL)"),
    wait: float = typer.Option(15.0, "--wait", help=WAIT_HELP),
    no_wait: bool = typer.Option(False, "--no-wait", help="send and return at once"),
) -> None:
    """Close the manual bot's trade: cancel its exits and sell the position at market.

    The bot takes the next trade once that sale is done."""
    _send(Side.SELL, symbol, {}, bot, 0.0 if no_wait else wait)
