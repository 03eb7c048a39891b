"""`automata orders`: orders as the order gateway's write-ahead log has them.

Open orders are the members of `og:open:{venue}` (the gateway keeps the set in step with each
record in the same transaction), each read from its `og:order:{cid}` hash. `--all` lists every
record, closed ones included, newest first. Nothing here asks the venue: `automata reconcile`
does that.
"""

from __future__ import annotations

import time
from decimal import Decimal
from typing import Any

import msgspec
import redis
import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from cli import common, output
from shared.control import read_record
from shared.order_record import OrderRecord
from shared.streams import MANUAL_BOT, og_open


def open_records(r: redis.Redis, venue: str | None) -> list[OrderRecord]:
    keys = [og_open(venue)] if venue else list(r.scan_iter(match="og:open:*", count=1000))
    cids = sorted({m.decode() for key in keys for m in r.smembers(key)})
    return [rec for cid in cids if (rec := read_record(r, cid)) is not None]


def all_records(r: redis.Redis) -> list[OrderRecord]:
    cids = sorted(k.decode().split(":", 2)[2] for k in r.scan_iter(match="og:order:*", count=1000))
    return [rec for cid in cids if (rec := read_record(r, cid)) is not None]


def _check_filters(out: Console, r: redis.Redis, venue: str | None, bot: str | None) -> None:
    """Nothing matched: refuse a --venue or --bot nobody knows (a typo), listing the known ones."""
    from cli.bots import check_known

    records = all_records(r)
    if bot is not None:
        check_known(r, common.located(out), bot, also=frozenset({MANUAL_BOT, *(rec.bot for rec in records)}))
    if venue is not None:
        cfg = common.config_or_none()
        known = {*(cfg.venues if cfg else ()), *(rec.venue for rec in records)}
        known |= {k.decode().split(":", 2)[2] for k in r.scan_iter(match="og:open:*", count=1000)}
        if venue not in known:
            common.fail(out, f"unknown venue {venue!r} (venues: {common.listing(known) or 'none'})", 2)


def record_doc(rec: OrderRecord) -> dict[str, Any]:
    """An order record for `--json`: every field, amounts as exact decimal strings."""
    return msgspec.to_builtins(rec, builtin_types=(Decimal,))


def table(out: Console, records: list[OrderRecord], precisions: output.Precisions) -> Table:
    """One row an order; on a narrow console each cell holds two lines (the cid over side, type
    and symbol; price over quantity; filled over status; venue over age), so nothing is cut."""
    now = time.time()
    rows = []
    for rec in records:
        p = precisions.of(rec.venue, rec.symbol)
        status = rec.status.value if not rec.terminal else f"[dim]{rec.status.value}[/]"
        rows.append(
            {
                "cid": rec.cid,
                "venue": rec.venue,
                "symbol": rec.symbol,
                "side": rec.side.value if rec.side else "-",
                "type": rec.order_type.value if rec.order_type else "-",
                "price": p.price(rec.price) if rec.price else "-",
                "stop": p.price(rec.stop_price) if rec.stop_price else "-",
                "qty": p.qty(rec.orig_qty) if rec.orig_qty else "-",
                "filled": p.qty(rec.cum_filled_qty),
                "status": status,
                "age": common.ago(now - rec.created_ts / 1000) if rec.created_ts else "-",
                "note": escape((("adopted " if rec.adopted else "") + rec.reason[:80]).strip()),
            }
        )
    # a stop order's trigger price in a column of its own, when any order has one
    columns = WIDE if any(rec.stop_price for rec in records) else tuple(c for c in WIDE if c != "stop")
    wide = output.table(*columns, numeric=("price", "stop", "qty", "filled"), wrap=("note",))
    for row in rows:
        wide.add_row(*(row[col] for col in columns))
    if output.fits(out, wide):
        return wide
    narrow = output.table("order", "price / qty", "filled / status", "venue / age", "note", numeric=("price / qty",), wrap=("note",))  # fmt: skip
    narrow.show_lines = True
    for row in rows:
        narrow.add_row(
            f"{row['cid']}\n{row['side']} {row['type']} {row['symbol']}",
            f"{_price_and_stop(row)}\n{row['qty']}",
            f"{row['filled']}\n{row['status']}",
            f"{row['venue']}\n{row['age']}",
            row["note"],
        )
    return narrow


def _price_and_stop(row: dict[str, str]) -> str:
    """A narrow cell's price: the limit, the stop's trigger, or both ("41,500.00 stop 41,604.93")."""
    if row["stop"] == "-":
        return row["price"]
    return ("" if row["price"] == "-" else row["price"] + " ") + "stop " + row["stop"]


WIDE = ("cid", "venue", "symbol", "side", "type", "price", "stop", "qty", "filled", "status", "age", "note")


def orders(
    venue: str = typer.Option(None, help="only this venue"),
    bot: str = typer.Option(None, help="only this bot (`manual` for orders placed by hand)"),
    show_all: bool = typer.Option(False, "--all", help="closed orders too, newest first"),
    limit: int = typer.Option(100, help="at most this many rows"),
    as_json: bool = output.json_option(),
) -> None:
    """Open orders from the order gateway's write-ahead log: status and filled quantity."""
    out = common.console()
    r, _url = common.redis_client(out)
    records = all_records(r) if show_all else open_records(r, venue)
    records = [
        rec for rec in records if (venue is None or rec.venue == venue) and (bot is None or rec.bot == bot)
    ]
    records.sort(key=lambda rec: (rec.created_ts, rec.cid), reverse=show_all)
    if not records and (venue or bot):
        _check_filters(out, r, venue, bot)
    what = "orders" if show_all else "open orders"
    where = " ".join(x for x in (f"venue={venue}" if venue else "", f"bot={bot}" if bot else "") if x)
    if as_json:
        output.emit([record_doc(rec) for rec in records[:limit]])
        return
    if not records:
        out.print(f"no {what}" + (f" ({where})" if where else ""))
        return
    shown = records[:limit]
    out.print(table(out, shown, output.Precisions(r)))
    more = f" (showing {len(shown)})" if len(shown) < len(records) else ""
    out.print(f"{len(records)} {what if len(records) != 1 else what.removesuffix('s')}{more}")
