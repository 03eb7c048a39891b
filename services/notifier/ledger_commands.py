"""/profit, /daily, /weekly, /monthly and /trades: the ledger's figures in a Telegram answer (shared/ledger, the same
queries as `automata profit` and `automata trades`).

The notifier finds the ledger as every service does (DATABASE_URL, else `[ledger] url`, else the
SQLite file under AUTOMATA_HOME) and only reads it. Queries are blocking SQLAlchemy calls: they
run in a worker thread so the notifier's loop keeps delivering notifications meanwhile. A ledger
that is not there yet, or a database that does not answer, is an answer saying so, never an
exception out of the command.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from datetime import UTC
from decimal import Decimal
from pathlib import Path
from typing import TypeVar

import sqlalchemy as sa

from shared import display
from shared.display import Precision
from shared.filters import SymbolFilters
from shared.ids import IdError, check_bot_id
from shared.ledger import profit, queries
from shared.ledger.db import LedgerUrlError, cannot_connect, ledger_url, open_ledger

log = logging.getLogger("automata.notifier.ledger")

NO_LEDGER = "No ledger yet: it fills once the ledger service runs."
DEFAULT_TRADES = 10
MAX_TRADES = 50
MOST = {"daily": 60, "weekly": 52, "monthly": 24}  # buckets one answer may hold
HEADS = {
    "daily": "Daily profit (UTC)",
    "weekly": "Weekly profit (UTC, from Monday)",
    "monthly": "Monthly profit (UTC)",
}
T = TypeVar("T")


class LedgerReader:
    """Read access to the ledger, the engine made on first use and kept (one small pool)."""

    def __init__(self, config_url: str) -> None:
        self.url, self.source = ledger_url(config_url)
        queries.bound_connect_time()  # never a worker thread stuck on a silent host
        self._engine: sa.Engine | None = None

    def _open(self) -> sa.Engine:
        if self._engine is None:
            self._engine = open_ledger(self.url, source=self.source)
        return self._engine

    def _read(self, query: Callable[[sa.Connection], T]) -> T | str:
        try:
            engine = self._open()
        except LedgerUrlError as exc:
            return f"The ledger cannot be opened: {exc}"
        if engine.dialect.name == "sqlite" and not Path(engine.url.database or "").is_file():
            return NO_LEDGER  # connecting would create an empty file
        try:
            with engine.connect() as conn:
                if not sa.inspect(conn).has_table("fills"):
                    return NO_LEDGER
                return query(conn)
        except sa.exc.DBAPIError as exc:
            # which URL (password masked), from where, and why: what the operator must fix
            log.warning("ledger read failed: %s", cannot_connect(exc.orig or exc, self.url, self.source))
            return "The ledger cannot be read right now; try again shortly."

    async def read(self, query: Callable[[sa.Connection], T]) -> T | str:
        """query(conn) in a worker thread; a str is the answer to give instead (no ledger, an error)."""
        return await asyncio.to_thread(self._read, query)

    def close(self) -> None:
        if self._engine is not None:
            self._engine.dispose()


def _money(value: Decimal | None, quote: str) -> str:
    return "-" if value is None else f"{display.quote(value)} {quote}"


def profit_text(rows: list[profit.Profit]) -> str:
    if not rows:
        return "No cycles in the ledger yet."
    lines = []
    for p in profit.with_totals(rows):
        q = p.quote_asset
        win = display.ratio_pct(p.win_rate, places=0) if p.win_rate is not None else "-"
        lines.append(
            f"{p.bot}: realised {_money(p.realised, q)}, unrealised {_money(p.unrealised, q)}, "
            f"fees {_money(p.fees, q)}; {p.closed} closed ({win} won), {len(p.open)} open; "
            f"best {_money(p.best, q)}, worst {_money(p.worst, q)}"
        )
    return "Profit (net of fees):\n" + "\n".join(lines)


def period_text(period: profit.Period, buckets: list[profit.Bucket]) -> str:
    lines = []
    for b in buckets:
        made = ", ".join(_money(v, q) for q, v in sorted(b.profit.items())) or display.quote(0)
        start = f"{b.start:%Y-%m}" if period == "monthly" else f"{b.start:%Y-%m-%d}"
        lines.append(f"{start}: {made}, {b.closed} closed, {b.fills} fills")
    return f"{HEADS[period]}:\n" + "\n".join(lines)


def trades_text(fills: list[queries.Trade], precision: Callable[[str, str], Precision]) -> str:
    if not fills:
        return "No fills in the ledger yet."
    lines = []
    for t in fills:
        p = precision(t.venue, t.symbol)
        lines.append(
            f"{t.time.astimezone(UTC):%m-%d %H:%M} {t.bot} {t.side} {p.qty(t.qty)} {t.symbol} at "
            f"{p.price(t.price)} (fee {display.qty(t.fee)} {t.fee_asset})"
        )
    return "Newest fills (UTC):\n" + "\n".join(lines)


def parse_args(args: list[str], default: int, most: int) -> tuple[int, str | None]:
    """(count, bot) from `[N] [BOT]` in any order: the count capped at `most`; IdError for a
    word that is not a bot id."""
    numbers = [a for a in args if a.isdigit()]
    words = [a for a in args if not a.isdigit()]
    count = min(max(1, int(numbers[0])), most) if numbers else default
    bot = words[0] if words else None
    if bot is not None:
        check_bot_id(bot)
    return count, bot


def _not_a_bot(args: list[str]) -> str:
    word = next((a for a in args if not a.isdigit()), "")
    return f"Not a bot id: {word[:30]!r}"


async def profit_answer(reader: LedgerReader, args: list[str]) -> str:
    bot = args[0] if args else None
    try:
        if bot is not None:
            check_bot_id(bot)
    except IdError:
        return f"Not a bot id: {bot[:30]!r}"
    rows = await reader.read(lambda conn: profit.profit(conn, bot=bot))
    return rows if isinstance(rows, str) else profit_text(rows)


async def period_answer(reader: LedgerReader, period: profit.Period, args: list[str]) -> str:
    """/daily, /weekly, /monthly [N] [BOT]: profit per UTC period, the current one first."""
    try:
        count, bot = parse_args(args, profit.DEFAULT_BUCKETS[period], MOST[period])
    except IdError:
        return _not_a_bot(args)
    found = await reader.read(lambda conn: profit.recent_periods(conn, period, count, bot=bot))
    if isinstance(found, str):
        return found
    buckets, shifted = found
    text = period_text(period, buckets)
    return (
        text
        if shifted is None
        else f"No fill in this window: up to the newest, {shifted:%Y-%m-%d %H:%M} UTC\n{text}"
    )


async def trades_answer(
    reader: LedgerReader, args: list[str], filters: Callable[[str], Awaitable[dict[str, SymbolFilters]]]
) -> str:
    """The newest fills; `filters(venue)` gives each venue's symbols, for amounts at their precision."""
    try:
        count, bot = parse_args(args, DEFAULT_TRADES, MAX_TRADES)
    except IdError:
        return _not_a_bot(args)
    fills = await reader.read(lambda conn: queries.trades(conn, bot=bot, limit=count))
    if isinstance(fills, str):
        return fills
    if not fills and bot is not None:  # a mistyped bot reads as an empty ledger otherwise
        return (
            f"No fills of bot {bot} in the ledger (a bot's fills show once it has traded; /bots lists them)."
        )
    known = {venue: await filters(venue) for venue in {t.venue for t in fills}}
    return trades_text(fills, lambda venue, symbol: Precision.of(known[venue].get(symbol)))
