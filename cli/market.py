"""`automata ticker SYMBOL` and `automata book SYMBOL`: a market at a glance, from the venue.

The same public REST calls a python-binance script would make (get_ticker, get_avg_price,
get_order_book) go through the configured venue's adapter, so
`--venue sim` asks the paper venue and a Bybit venue is asked in its own protocol (pybit
get_tickers / get_orderbook). Public endpoints need no keys. Binance's average price is its
`avgPrice` (a 5-minute average); Bybit has none, so its 24 h volume-weighted price is shown.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import msgspec
import typer
from rich.table import Table

from cli import common, output
from cli import venue as venues
from services.order_gateway.venues.base import VenueAdapter, VenueError
from shared import display
from shared.config import AppConfig, ConfigError
from shared.display import UNKNOWN, Precision
from shared.money import venue_dec


class Ticker(msgspec.Struct, frozen=True, kw_only=True):
    symbol: str
    last: Decimal
    change: Decimal
    change_pct: Decimal
    high: Decimal
    low: Decimal
    volume: Decimal
    quote_volume: Decimal
    avg_price: Decimal
    avg_label: str
    bid: Decimal
    bid_qty: Decimal
    ask: Decimal
    ask_qty: Decimal


class Book(msgspec.Struct, frozen=True):
    symbol: str
    bids: list[tuple[Decimal, Decimal]]
    asks: list[tuple[Decimal, Decimal]]


async def fetch_ticker(cfg: AppConfig, venue: str, adapter: VenueAdapter, symbol: str) -> Ticker:
    if venues.protocol(cfg, venue) == "binance":
        t = await venues.binance_call(adapter, "get_ticker", symbol=symbol)
        avg = await venues.binance_call(adapter, "get_avg_price", symbol=symbol)
        return Ticker(
            symbol=symbol,
            last=venue_dec(t["lastPrice"]),
            change=venue_dec(t["priceChange"]),
            change_pct=venue_dec(t["priceChangePercent"]),
            high=venue_dec(t["highPrice"]),
            low=venue_dec(t["lowPrice"]),
            volume=venue_dec(t["volume"]),
            quote_volume=venue_dec(t["quoteVolume"]),
            avg_price=venue_dec(avg["price"]),
            avg_label=f"avg price ({avg.get('mins', 5)} min)",
            bid=venue_dec(t["bidPrice"]),
            bid_qty=venue_dec(t["bidQty"]),
            ask=venue_dec(t["askPrice"]),
            ask_qty=venue_dec(t["askQty"]),
        )
    res = await venues.bybit_call(adapter, "get_tickers", category="spot", symbol=symbol)
    t = res["list"][0]
    last, prev = venue_dec(t["lastPrice"]), venue_dec(t.get("prevPrice24h"))
    volume, turnover = venue_dec(t.get("volume24h")), venue_dec(t.get("turnover24h"))
    return Ticker(
        symbol=symbol,
        last=last,
        change=last - prev if prev else Decimal(0),
        change_pct=venue_dec(t.get("price24hPcnt")) * 100,
        high=venue_dec(t.get("highPrice24h")),
        low=venue_dec(t.get("lowPrice24h")),
        volume=volume,
        quote_volume=turnover,
        avg_price=(turnover / volume).quantize(Decimal("0.00000001")) if volume else last,
        avg_label="avg price (24 h, volume weighted)",
        bid=venue_dec(t.get("bid1Price")),
        bid_qty=venue_dec(t.get("bid1Size")),
        ask=venue_dec(t.get("ask1Price")),
        ask_qty=venue_dec(t.get("ask1Size")),
    )


async def fetch_book(cfg: AppConfig, venue: str, adapter: VenueAdapter, symbol: str, depth: int) -> Book:
    if venues.protocol(cfg, venue) == "binance":
        res = await venues.binance_call(adapter, "get_order_book", symbol=symbol, limit=depth)
        bids, asks = res["bids"], res["asks"]
    else:
        res = await venues.bybit_call(adapter, "get_orderbook", category="spot", symbol=symbol, limit=depth)
        bids, asks = res["b"], res["a"]
    return Book(
        symbol,
        [(venue_dec(p), venue_dec(q)) for p, q in bids[:depth]],
        [(venue_dec(p), venue_dec(q)) for p, q in asks[:depth]],
    )


async def precision(adapter: VenueAdapter, symbol: str) -> Precision:
    """The symbol's tick and step from the venue's exchange info (unknown if it will not say)."""
    try:
        return Precision.of((await adapter.load_filters()).get(symbol))
    except (VenueError, KeyError, ValueError, TypeError):
        return UNKNOWN


def _fetch(cfg: AppConfig, venue: str, symbol: str, job) -> Any:
    out = common.console()
    common.check_venue(out, cfg, venue)
    try:
        return venues.run(cfg, venue, job, public=True)
    except ConfigError as exc:
        common.fail(out, f"configuration error: {exc}", 2)
    except (VenueError, OSError) as exc:
        common.check_symbol(out, venue, symbol, _symbols(cfg, venue))
        common.fail(out, f"{venue}: {common.short(exc)}")
    except (KeyError, IndexError):
        common.check_symbol(out, venue, symbol, _symbols(cfg, venue))
        common.fail(out, f"{venue}: an unexpected answer about {symbol}")


def _symbols(cfg: AppConfig, venue: str) -> set[str]:
    """The symbols the venue trades (empty when it does not say): asked only once a request
    failed, to tell a mistyped symbol from a venue that is down."""
    try:
        return set(venues.run(cfg, venue, lambda a: a.load_filters(), public=True))
    except Exception:  # the venue down as well: the first error is the one to show
        return set()


def ticker(
    symbol: str = typer.Argument(..., help="e.g. BTCUSDT"),
    venue: str = typer.Option("sim", help="configured venue to ask"),
    as_json: bool = output.json_option(),
) -> None:
    """Last price, 24 h change, high/low, volume, average price and best bid/ask."""
    out = common.console()
    cfg = common.config(out)
    symbol = symbol.upper()

    async def job(adapter: VenueAdapter) -> tuple[Ticker, Precision]:
        return await fetch_ticker(cfg, venue, adapter, symbol), await precision(adapter, symbol)

    t, p = _fetch(cfg, venue, symbol, job)
    if as_json:
        output.emit({"venue": venue, **msgspec.to_builtins(t, builtin_types=(Decimal,))})
        return
    sign = "+" if t.change > 0 else ""
    colour = "green" if t.change >= 0 else "red"
    table = Table(show_header=False, show_edge=False, box=None)
    table.add_column(style="bold")
    table.add_column(justify="right")
    spread = t.ask - t.bid if t.ask and t.bid else None
    rows = [
        ("last price", p.price(t.last)),
        ("24h change", f"[{colour}]{sign}{p.price(t.change)} ({display.pct(t.change_pct, sign=True)})[/]"),
        ("24h high", p.price(t.high)),
        ("24h low", p.price(t.low)),
        ("24h volume", f"{p.qty(t.volume)} ({display.quote(t.quote_volume)} quote)"),
        (t.avg_label, p.price(t.avg_price)),
        ("best bid", f"{p.price(t.bid)} x {p.qty(t.bid_qty)}"),
        ("best ask", f"{p.price(t.ask)} x {p.qty(t.ask_qty)}"),
        ("spread", p.price(spread)),
    ]
    for name, value in rows:
        table.add_row(name, value)
    out.print(f"[bold]{t.symbol}[/] on {venue}")
    out.print(table)


def book(
    symbol: str = typer.Argument(..., help="e.g. BTCUSDT"),
    venue: str = typer.Option("sim", help="configured venue to ask"),
    depth: int = typer.Option(5, min=1, max=200, help="price levels per side"),
    as_json: bool = output.json_option(),
) -> None:
    """The order book's best levels: bids and asks side by side, with the spread."""
    out = common.console()
    cfg = common.config(out)
    symbol = symbol.upper()

    async def job(adapter: VenueAdapter) -> tuple[Book, Precision]:
        return await fetch_book(cfg, venue, adapter, symbol, depth), await precision(adapter, symbol)

    b, p = _fetch(cfg, venue, symbol, job)
    if as_json:
        levels = {
            side: [{"price": pr, "qty": q} for pr, q in lv]
            for side, lv in (("bids", b.bids), ("asks", b.asks))
        }
        output.emit({"venue": venue, "symbol": b.symbol, **levels})
        return
    table = output.table("bid qty", "bid", "ask", "ask qty", numeric=("bid qty", "bid", "ask", "ask qty"))
    for i in range(max(len(b.bids), len(b.asks))):
        bid = b.bids[i] if i < len(b.bids) else None
        ask = b.asks[i] if i < len(b.asks) else None
        table.add_row(
            p.qty(bid[1]) if bid else "",
            f"[green]{p.price(bid[0])}[/]" if bid else "",
            f"[red]{p.price(ask[0])}[/]" if ask else "",
            p.qty(ask[1]) if ask else "",
        )
    out.print(f"[bold]{b.symbol}[/] on {venue}, {depth} level(s)")
    out.print(table)
    if b.bids and b.asks:
        best_bid, best_ask = b.bids[0][0], b.asks[0][0]
        mid = (best_bid + best_ask) / 2
        pct = (best_ask - best_bid) / mid * 100 if mid else Decimal(0)
        out.print(f"spread {p.price(best_ask - best_bid)} ({display.pct(pct, places=4)}), mid {p.price(mid)}")
