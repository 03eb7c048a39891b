"""`automata trades` and `automata export trades`: the fills the ledger keeps (shared/ledger).

The ledger is found as the services find it (shared/ledger/db.py): DATABASE_URL, else the
config's `[ledger] url`, else the SQLite file under the located run's home (cli/connect.py). The
readers only read: no SQLite file yet (or no tables) is a one-line "no ledger yet", not an empty
database created in passing. Redis is optional: when the run is up, amounts are shown at each
symbol's precision as the order gateway published it.
"""

from __future__ import annotations

import csv
import os
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import redis
import sqlalchemy as sa
import typer
from rich.console import Console

from cli import common, connect, output
from shared import display
from shared.config import ConfigError, load_config
from shared.ledger import queries
from shared.ledger.db import HOME_ENV, LedgerUrlError, cannot_connect, ledger_url, open_ledger
from shared.ledger.export import CSV_HEADER, csv_rows, iso
from shared.urls import safe_url

NO_LEDGER = "no ledger yet at {where}: it fills once the ledger service runs (automata run starts it)"
DATE_HELP = "a UTC date (2026-12-01) or time (2026-12-01T08:00)"


@contextmanager
def ledger_engine(out: Console) -> Iterator[tuple[sa.Engine, connect.System, str]]:
    """The located system's ledger (engine, system, where it is for messages), or a clean exit:
    1 when there is no ledger yet or the database cannot be reached, 2 for a bad URL or config."""
    system = common.located(out)
    try:
        cfg = load_config()
    except ConfigError as exc:
        common.fail(out, f"configuration error: {exc}", 2)
    url, source = ledger_url(cfg.ledger.url, {**os.environ, HOME_ENV: str(system.home.root)})
    queries.bound_connect_time()
    try:
        engine = open_ledger(url, source=source)
    except LedgerUrlError as exc:
        common.fail(out, str(exc), 2)
    where = safe_url(url)
    try:
        if engine.dialect.name == "sqlite":
            where = engine.url.database or where
            if not Path(where).is_file():  # connecting would create an empty file
                common.fail(out, NO_LEDGER.format(where=where))
        with engine.connect() as conn:
            if not sa.inspect(conn).has_table("fills"):
                common.fail(out, NO_LEDGER.format(where=where))
        yield engine, system, where
    except sa.exc.DBAPIError as exc:
        common.fail(out, f"cannot read the ledger at {cannot_connect(exc, url, source)}")
    finally:
        engine.dispose()


@contextmanager
def ledger(out: Console) -> Iterator[tuple[sa.Connection, connect.System]]:
    """A read connection to the located system's ledger, or a clean exit (ledger_engine)."""
    with ledger_engine(out) as (engine, system, _where), engine.connect() as conn:
        yield conn, system


def precisions(system: connect.System) -> output.Precisions:
    """Symbol precisions from the running system's Redis; none (defaults) when it is not up."""
    if system.redis is None:
        return output.Precisions(None)
    client = connect.client(system.redis)
    try:
        client.ping()
    except redis.RedisError:
        return output.Precisions(None)
    return output.Precisions(client)


def parse_time(out: Console, option: str, text: str | None) -> datetime | None:
    """A --since/--until value as an aware UTC time (a time without zone is UTC); exit 2 if not one."""
    if text is None:
        return None
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        common.fail(out, f"{option}: {text!r} is not {DATE_HELP}", 2)
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def when(at: datetime) -> str:
    """A time in UTC as the tables show it."""
    return at.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S")


def trade_doc(t: queries.Trade) -> dict[str, Any]:
    return {
        "time": iso(t.time), "venue": t.venue, "symbol": t.symbol, "bot": t.bot, "side": t.side,
        "price": t.price, "qty": t.qty, "quote_qty": t.quote_qty, "fee": t.fee, "fee_asset": t.fee_asset,
        "fee_in_quote": t.fee_in_quote, "is_maker": t.is_maker, "cid": t.cid, "trade_id": t.trade_id,
    }  # fmt: skip


def fitted(
    out: Console, rows: list[dict[str, str]], wide: tuple[str, ...], narrow: tuple[tuple[str, ...], ...],
    numeric: tuple[str, ...] = (),
) -> Any:  # fmt: skip
    """The table with one column per field when it fits the console, else with the fields
    stacked in cells (`narrow` groups them: ('price', 'qty') shows price over qty)."""
    table = output.table(*wide, numeric=numeric)
    for row in rows:
        table.add_row(*(row[col] for col in wide))
    if output.fits(out, table):
        return table
    heads = [" / ".join(group) for group in narrow]
    stacked = output.table(
        *heads, numeric=tuple(h for h, g in zip(heads, narrow, strict=True) if g[0] in numeric)
    )
    stacked.show_lines = True
    for row in rows:
        stacked.add_row(*("\n".join(row[col] for col in group) for group in narrow))
    return stacked


TRADE_COLUMNS = ("time", "bot", "symbol", "side", "price", "qty", "quote", "fee")
TRADE_STACKED = (("time", "bot"), ("symbol", "side"), ("price", "qty"), ("quote", "fee"))


def trades(
    bot: str = typer.Option(None, help="only this bot"),
    symbol: str = typer.Option(None, help="only this symbol"),
    since: str = typer.Option(None, help=f"fills from then on: {DATE_HELP}"),
    limit: int = typer.Option(20, "-n", "--limit", min=1, help="at most this many fills"),
    as_json: bool = output.json_option(),
) -> None:
    """Fills from the ledger, newest first: price, quantity, quote amount and fee."""
    out = common.console()
    start = parse_time(out, "--since", since)
    with ledger(out) as (conn, system):
        shown = queries.trades(conn, bot=bot, symbol=symbol, since=start, limit=limit)
    if as_json:
        output.emit([trade_doc(t) for t in shown])
        return
    where = " ".join(f"{k}={v}" for k, v in (("bot", bot), ("symbol", symbol), ("since", since)) if v)
    if not shown:
        out.print("no fills in the ledger" + (f" ({where})" if where else ""))
        return
    p = precisions(system)
    rows = []
    for t in shown:
        prec = p.of(t.venue, t.symbol)
        fee = f"{display.qty(t.fee)} {t.fee_asset}".strip()
        rows.append(
            {
                "time": when(t.time), "bot": t.bot, "symbol": t.symbol, "side": t.side,
                "price": prec.price(t.price), "qty": prec.qty(t.qty), "quote": display.quote(t.quote_qty), "fee": fee,
            }
        )  # fmt: skip
    out.print(fitted(out, rows, TRADE_COLUMNS, TRADE_STACKED, numeric=("price", "qty", "quote", "fee")))
    out.print(f"{len(shown)} newest fills (UTC)" + (f" ({where})" if where else ""))


export_app = typer.Typer(help="Export the ledger's history to files.", no_args_is_help=True)


@export_app.command("trades")
def export_trades(
    csv_file: Path = typer.Option(..., "--csv", help="the CSV file to write (replaced if it exists)"),
    bot: str = typer.Option(None, help="only this bot"),
    since: str = typer.Option(None, help=f"fills from then on: {DATE_HELP}"),
    until: str = typer.Option(None, help=f"fills before then: {DATE_HELP}"),
) -> None:
    """Every fill as one CSV row, oldest first, for taxes: exact amounts and the fee in quote."""
    out = common.console()
    start, end = parse_time(out, "--since", since), parse_time(out, "--until", until)
    if not csv_file.parent.is_dir():
        common.fail(out, f"{csv_file}: no such directory {csv_file.parent}", 2)
    partial = csv_file.with_name(csv_file.name + ".partial")
    count = 0
    with ledger(out) as (conn, _system):
        try:
            with partial.open("w", newline="", encoding="utf-8") as f:
                writer = csv.writer(f)
                writer.writerow(CSV_HEADER)
                for row in csv_rows(conn, bot=bot, since=start, until=end):
                    writer.writerow(row)
                    count += 1
            partial.replace(csv_file)  # a reader never sees half a file
        except OSError as exc:
            partial.unlink(missing_ok=True)
            common.fail(out, f"{csv_file}: cannot write: {exc.strerror}")
    out.print(f"{count} fills written to {csv_file}")
