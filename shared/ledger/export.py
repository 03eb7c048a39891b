"""The trades CSV (`automata export trades`, the dashboard's download): one row per fill, oldest
first, exact amounts and the fee in the quote asset, for taxes."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime

import sqlalchemy as sa

from shared.display import plain
from shared.ledger import queries

CSV_HEADER = (
    "time_utc", "venue", "symbol", "bot", "side", "price", "quantity", "quote_amount", "fee", "fee_asset",
    "fee_in_quote", "order_cid", "trade_id",
)  # fmt: skip


def iso(at: datetime) -> str:
    return at.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def csv_rows(
    conn: sa.Connection,
    *,
    bot: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
) -> Iterator[list[str]]:
    """The rows after the header, streamed from the ledger."""
    quotes = queries.quote_assets(conn)
    for t in queries.all_trades(conn, bot=bot, since=since, until=until):
        fee_quote = queries.fee_in_quote(t, quotes.get((t.venue, t.symbol)))
        yield [
            iso(t.time), t.venue, t.symbol, t.bot, t.side, plain(t.price), plain(t.qty), plain(t.quote_qty),
            plain(t.fee), t.fee_asset, "" if fee_quote is None else plain(fee_quote), t.cid, t.trade_id or "",
        ]  # fmt: skip
