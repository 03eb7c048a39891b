"""`automata profit` and `automata equity`: what the bots made, from the ledger (shared/ledger).

profit: per bot and in total, realised profit net of fees from closed cycles (round trips), the
fees, the win rate, the best and worst cycle, and the open cycles' unrealised profit at the last
price (the newest candle, else the bot's last fill: each open position says which). With
--daily/--weekly/--monthly: the same per UTC day / week (from Monday) / month, like Freqtrade's
/daily. equity: each account's value in its quote asset over time, its high, low and worst
drawdown, and the assets it leaves out for want of a price (`excludes: ETH`). Quote amounts to
the cent, prices at the symbol's tick where the order gateway published it.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import typer
from rich.console import Console

from cli import common, output
from cli.history import DATE_HELP, fitted, iso, ledger, parse_time, precisions, when
from shared import display
from shared.ledger import profit as ledger_profit
from shared.ledger import queries
from shared.ledger.profit import Bucket, Period, Profit

PROFIT_COLUMNS = ("bot", "realised", "unrealised", "fees", "cycles", "win", "best", "worst")
PROFIT_STACKED = (("bot", "cycles"), ("realised", "unrealised"), ("fees", "win"), ("best", "worst"))
PROFIT_NUMERIC = ("realised", "unrealised", "fees", "cycles", "win", "best", "worst")


def _money(value: Decimal | None, quote: str) -> str:
    return "-" if value is None else f"{display.quote(value)} {quote}"


def profit_doc(p: Profit) -> dict[str, Any]:
    return {
        "bot": p.bot, "quote_asset": p.quote_asset, "realised": p.realised, "unrealised": p.unrealised,
        "fees": p.fees, "closed_cycles": p.closed, "wins": p.wins, "win_rate": p.win_rate, "best": p.best,
        "worst": p.worst, "fills": p.fills,
        "open": [
            {
                "number": c.number, "venue": c.venue, "symbol": c.symbol, "qty": c.qty, "cost": c.cost,
                "unrealised": c.unrealised, "last_price": c.last.price if c.last else None,
                "price_from": c.last.source if c.last else None, "price_at": iso(c.last.at) if c.last else None,
            }
            for c in p.open
        ],
    }  # fmt: skip


def bucket_doc(b: Bucket) -> dict[str, Any]:
    return {
        "start": iso(b.start), "end": iso(b.end), "profit": b.profit, "fees": b.fees,
        "closed_cycles": b.closed, "wins": b.wins, "fills": b.fills,
    }  # fmt: skip


def _profit_row(p: Profit) -> dict[str, str]:
    q = p.quote_asset
    return {
        "bot": p.bot, "realised": _money(p.realised, q), "unrealised": _money(p.unrealised, q),
        "fees": _money(p.fees, q), "cycles": f"{p.closed} closed" + (f", {len(p.open)} open" if p.open else ""),
        "win": display.ratio_pct(p.win_rate, places=0) if p.win_rate is not None else "-",
        "best": _money(p.best, q), "worst": _money(p.worst, q),
    }  # fmt: skip


def _open_table(out: Console, rows: list[Profit], system: Any) -> Any:
    """The open positions: what is held, at which price and where that price came from."""
    prec = precisions(system)
    table = []
    for p in rows:
        for c in p.open:
            sym = prec.of(c.venue, c.symbol)
            table.append(
                {
                    "open": f"{p.bot} #{c.number}", "held": f"{sym.qty(c.qty)} {c.symbol}",
                    "last price": sym.price(c.last.price) if c.last else "-",
                    "from": f"{c.last.source}, {c.last.at:%m-%d %H:%M}" if c.last else "no price yet",
                    "unrealised": _money(c.unrealised, p.quote_asset),
                }
            )  # fmt: skip
    cols = ("open", "held", "last price", "from", "unrealised")
    stacked = (("open", "held"), ("last price", "from"), ("unrealised",))
    return fitted(out, table, cols, stacked, numeric=("last price", "unrealised")) if table else None


def _period_table(out: Console, period: Period, buckets: list[Bucket]) -> Any:
    def day(b: Bucket) -> str:
        return b.start.strftime("%Y-%m") if period == "monthly" else b.start.strftime("%Y-%m-%d")

    quotes = sorted({q for b in buckets for q in b.profit})

    def amounts(values: dict[str, Decimal]) -> str:
        return "\n".join(_money(values[q], q) for q in quotes if q in values) or display.quote(0)

    rows = [
        {
            {"daily": "day", "weekly": "week of", "monthly": "month"}[period]: day(b),
            "profit": amounts(b.profit), "fees": amounts(b.fees), "cycles": str(b.closed),
            "win": display.ratio_pct(Decimal(b.wins) / b.closed, places=0) if b.closed else "-",
            "fills": str(b.fills),
        }
        for b in buckets
    ]  # fmt: skip
    cols = tuple(rows[0])
    return fitted(out, rows, cols, tuple((c,) for c in cols), numeric=cols[1:])


def profit(
    bot: str = typer.Option(None, help="only this bot"),
    daily: bool = typer.Option(False, "--daily", help="per UTC day"),
    weekly: bool = typer.Option(False, "--weekly", help="per week (from Monday, UTC)"),
    monthly: bool = typer.Option(False, "--monthly", help="per calendar month (UTC)"),
    n: int = typer.Option(
        None, "-n", min=1, max=1000, help="periods shown (default 7 days, 8 weeks, 6 months)"
    ),
    as_json: bool = output.json_option(),
) -> None:
    """Realised and unrealised profit, fees, win rate; --daily/--weekly/--monthly per period."""
    out = common.console()
    periods: list[Period] = [
        p for p, on in (("daily", daily), ("weekly", weekly), ("monthly", monthly)) if on
    ]  # type: ignore[misc]
    if len(periods) > 1:
        common.fail(out, "choose one of --daily, --weekly, --monthly", 2)
    with ledger(out) as (conn, system):
        if periods:
            buckets, shifted = ledger_profit.recent_periods(conn, periods[0], n, bot=bot)
        else:
            rows = ledger_profit.profit(conn, bot=bot)
    if periods:
        if as_json:
            output.emit({"period": periods[0], "bot": bot, "buckets": [bucket_doc(b) for b in buckets]})
            return
        if shifted is not None:
            unit = {"daily": "days", "weekly": "weeks", "monthly": "months"}[periods[0]]
            out.print(
                f"no fill in the last {len(buckets)} {unit}: shown up to the newest, {when(shifted)} UTC"
            )
        out.print(_period_table(out, periods[0], buckets))
        out.print(
            f"{periods[0]} (UTC): profit and fees of the cycles closed" + (f", bot {bot}" if bot else "")
        )
        return
    total = ledger_profit.totals(rows)
    if as_json:
        output.emit({"bots": [profit_doc(p) for p in rows], "total": [profit_doc(p) for p in total]})
        return
    if not rows:
        out.print("no cycles in the ledger yet" + (f" for bot {bot}" if bot else ""))
        return
    shown = ledger_profit.with_totals(rows)
    out.print(fitted(out, [_profit_row(p) for p in shown], PROFIT_COLUMNS, PROFIT_STACKED, PROFIT_NUMERIC))
    opened = _open_table(out, rows, system)
    if opened is not None:
        out.print(opened)
    fills = sum(p.fills for p in rows)
    out.print(
        f"{fills} fills; realised is net of fees and counts closed cycles (a position back to flat):"
        " what a cycle still open made (a grid's round trips) is in its unrealised;"
        " win = share of closed cycles with a profit"
    )


def equity_doc(e: queries.Equity) -> dict[str, Any]:
    def point(p: queries.EquityPoint) -> dict[str, Any]:
        return {"at": iso(p.at), "value": p.value, "unvalued": list(p.unvalued)}

    return {
        "venue": e.venue, "quote_asset": e.quote_asset, "first": point(e.first), "last": point(e.last),
        "change": e.change, "low": point(e.low), "high": point(e.high), "drawdown": e.drawdown,
        "drawdown_pct": e.drawdown_pct, "points": e.points, "daily": [point(p) for p in e.daily],
        "unvalued": e.unvalued, "dropped": e.dropped,
    }  # fmt: skip


def equity(
    venue: str = typer.Option(None, help="only this venue"),
    since: str = typer.Option(None, help=f"from then on (instead of the last N days): {DATE_HELP}"),
    n: int = typer.Option(30, "-n", min=1, max=100_000, help="the last N UTC days, one value a day"),
    as_json: bool = output.json_option(),
) -> None:
    """Each account's value in its quote asset over time: now, change, high, low, drawdown."""
    out = common.console()
    start_at = parse_time(out, "--since", since)
    with ledger(out) as (conn, _system):
        window = queries.equity_window(conn, venue=venue, since=start_at, n=n)
    series, start = window.series, window.start
    if as_json:
        output.emit([equity_doc(e) for e in series])
        return
    if window.newest is not None:  # nothing in the window: the n days up to the newest value
        out.print(f"no equity in the last {n} days: shown up to the newest, {when(window.newest)} UTC")
    if not series:
        out.print(
            f"no equity in the ledger since {when(start)} UTC" + (f" for venue {venue}" if venue else "")
        )
        return
    for e in series:
        q = e.quote_asset
        dd = f"{_money(e.drawdown, q)}" + (
            f" ({display.pct(e.drawdown_pct)})" if e.drawdown_pct is not None else ""
        )
        out.print(f"[bold]{e.venue}[/] in {q}: {_money(e.last.value, q)} at {when(e.last.at)} UTC")
        out.print(f"  since {when(e.first.at)}: {_money(e.change, q)}, {e.points} points")
        out.print(f"  high {_money(e.high.value, q)}, low {_money(e.low.value, q)}, worst drawdown {dd}")
        if e.unvalued:
            out.print(f"  excludes: {', '.join(e.unvalued)} (no {q} price known: the values are of the rest)")
        if e.dropped:
            out.print(
                f"  {e.dropped} earlier point(s) left out other assets (before a price was known): not shown"
            )
        rows = [{"day": p.at.strftime("%Y-%m-%d"), "value": _money(p.value, q)} for p in e.daily[-n:]][::-1]
        out.print(fitted(out, rows, ("day", "value"), (("day",), ("value",)), numeric=("value",)))
