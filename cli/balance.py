"""`automata balance [VENUE]`: free, locked and total per asset, and the equity in the quote
currency (every asset valued, locked ones included).

Balances come from Redis, not from the venue: the order gateway publishes full snapshots to
`account:{venue}` (and deltas from the user stream), so the newest snapshot with the deltas
after it is the account as the gateway last saw it. Each asset is valued at its last price
against the quote asset: the mid of the newest `md:book:{venue}:{ASSET}{QUOTE}` entry, else the
close of the newest `md:candles:{venue}:{ASSET}{QUOTE}:*` candle; with `--live`, the venue's
REST ticker first. An asset without any price is listed but left out of the equity, and said so.
"""

from __future__ import annotations

import functools
import time
from decimal import Decimal
from typing import Any

import typer
from rich.console import Console

from cli import common, output
from cli import venue as venues
from services.order_gateway.venues.base import VenueAdapter, VenueError
from shared import display
from shared.account_view import Valued, account_doc, account_venues, read_account, value
from shared.config import AppConfig
from shared.display import asset_amounts
from shared.streams import account


def live_prices(cfg: AppConfig, venue: str, symbols: list[str]) -> dict[str, Decimal]:
    """Last prices from the venue's REST ticker (symbols the venue does not list are skipped)."""

    async def job(adapter: VenueAdapter) -> dict[str, Decimal]:
        out = {}
        for symbol in symbols:
            try:
                out[symbol] = await adapter.last_price(symbol)
            except (VenueError, KeyError, IndexError):
                continue
        return out

    return venues.run(cfg, venue, job, public=True)


def show(out: Console, v: Valued, precisions: output.Precisions, live: bool) -> None:
    quote, amounts = v.quote, asset_amounts(precisions.filters(v.acct.venue))
    table = output.table("asset", "free", "locked", "total", f"price {quote}", f"value {quote}",
                         numeric=("free", "locked", "total", f"price {quote}", f"value {quote}"))  # fmt: skip
    for row in v.rows:
        asset = row["asset"]
        amount = functools.partial(amounts, asset)
        tick = precisions.of(v.acct.venue, f"{asset}{quote}").tick
        table.add_row(asset, amount(row["free"]), amount(row["locked"]), amount(row["total"]),
                      display.price(row["price"], tick), display.quote(row["value"]))  # fmt: skip
    age = common.ago(time.time() - v.acct.ts_ms / 1000)
    note = "" if v.acct.snapshot else " [yellow](deltas only, no full snapshot yet: may be incomplete)[/]"
    out.print(f"[bold]{v.acct.venue}[/] balances as of {age} ago{note}")
    out.print(table)
    out.print(f"[bold]equity: {display.quote(v.equity)} {quote}[/]")
    if v.unvalued:
        hint = "" if live else "; --live asks the venue"
        out.print(f"not valued (no {quote} price in Redis{hint}): {', '.join(v.unvalued)}")


def balance(
    venue: str = typer.Argument(None, help="venue (default: every venue with balances in Redis)"),
    quote: str = typer.Option(None, help="quote asset to value in (default: the venue's, USDT)"),
    live: bool = typer.Option(False, "--live", help="price assets with the venue's REST ticker"),
    as_json: bool = output.json_option(),
) -> None:
    """Free, locked and total per asset and the total equity in the quote currency."""
    out = common.console()
    r, _url = common.redis_client(out)
    stored = account_venues(r)
    cfg = common.config(out) if live else common.config_or_none()
    if venue:
        known = {*stored, *(cfg.venues if cfg else ())}
        if venue not in known:
            common.fail(out, f"unknown venue {venue!r} (venues: {common.listing(known) or 'none'})", 2)
        chosen = [venue]
    else:
        chosen = stored
        if not chosen:
            common.fail(out, "no balances in Redis yet (account:*): is the order gateway running?")
    missing = False
    docs: list[dict[str, Any]] = []
    precisions = output.Precisions(r)
    for name in chosen:
        acct = read_account(r, name)
        if acct is None:
            out.print(
                f"[yellow]{name}: no balances in Redis yet ({account(name)}): is the order gateway running?[/]"
            )
            missing = True
            continue
        vcfg = cfg.venues.get(name) if cfg else None
        q = (quote or (vcfg.quote_asset if vcfg else "USDT")).upper()
        prices = None
        if live:
            common.check_venue(out, cfg, name)
            wanted = [f"{a}{q}" for a, b in acct.balances.items() if a != q and b.total]
            try:
                prices = live_prices(cfg, name, wanted)
            except (VenueError, OSError) as exc:
                common.fail(out, f"{name}: the venue did not answer: {common.short(exc)}")
        valued = value(r, acct, q, prices)
        docs.append(account_doc(valued))
        if not as_json:
            show(out, valued, precisions, live)
    if as_json:
        output.emit(docs)
    if missing:
        raise typer.Exit(1)
