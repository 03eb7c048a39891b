"""The ledger's tables (SQLAlchemy Core): the trading history, kept forever, in SQLite or PostgreSQL.

Names follow the messages they come from (shared/messages.py): `cid`, `order_type`,
`cum_filled_qty`... Money columns are `Money` (exact Decimal), times `UtcTime` (aware, UTC); see
shared/ledger/types.py. Every change to these tables is a new Alembic revision in
shared/ledger/migrations/versions, never an edit of an old one.

Exactly once: every write from a stream entry also inserts that entry into `ingested` in the same
transaction; its primary key (stream, entry_id) refuses the same entry twice, so a replay after a
crash writes nothing again. Rows with a natural identity carry it under a unique key as well
(candles, fills, balances, equity), so two entries telling the same fact make one row.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Index,
    Integer,
    MetaData,
    PrimaryKeyConstraint,
    String,
    Table,
    Text,
    UniqueConstraint,
)

from shared.ledger.types import Json, Money, UtcTime

# Constraint names fixed by convention, so a later migration can name the one it alters.
metadata = MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_N_name)s",
        "uq": "uq_%(table_name)s_%(column_0_N_name)s",
        "ck": "ck_%(table_name)s_%(constraint_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)

# A surrogate key: BIGINT on PostgreSQL, INTEGER on SQLite (only INTEGER PRIMARY KEY is its rowid).
RowId = BigInteger().with_variant(Integer(), "sqlite")

NAME = 64  # venue, bot, asset, symbol, ids
STREAM = 200  # a Redis stream key
ENTRY_ID = 32  # a Redis stream entry id: `<ms>-<seq>`


def _id() -> Column:
    return Column("id", RowId, primary_key=True, autoincrement=True)


candles = Table(
    "candles",
    metadata,
    Column("venue", String(NAME), nullable=False),
    Column("symbol", String(NAME), nullable=False),
    Column("interval", String(8), nullable=False),
    Column("open_time", UtcTime, nullable=False),
    Column("close_time", UtcTime, nullable=False),
    Column("open", Money, nullable=False),
    Column("high", Money, nullable=False),
    Column("low", Money, nullable=False),
    Column("close", Money, nullable=False),
    Column("volume", Money, nullable=False),
    Column("quote_volume", Money, nullable=True),
    Column("trades", Integer, nullable=True),
    PrimaryKeyConstraint("venue", "symbol", "interval", "open_time"),
    comment="Closed candles (messages.Candle), one row per (venue, symbol, interval, open_time).",
)

orders = Table(
    "orders",
    metadata,
    Column("cid", String(NAME), primary_key=True),
    Column("bot", String(NAME), nullable=False),
    Column("venue", String(NAME), nullable=False),
    Column("symbol", String(NAME), nullable=False),
    Column("venue_order_id", String(NAME), nullable=False, server_default=""),
    Column("side", String(8), nullable=True),
    Column("order_type", String(24), nullable=True),
    Column("status", String(24), nullable=False),
    Column("price", Money, nullable=True),
    Column("stop_price", Money, nullable=True),
    Column("orig_qty", Money, nullable=False),
    Column("orig_quote_qty", Money, nullable=True),
    Column("cum_filled_qty", Money, nullable=False),
    Column("cum_quote_qty", Money, nullable=False),
    Column("fee", Money, nullable=False),
    Column("fee_asset", String(NAME), nullable=False, server_default=""),
    Column("reason", Text, nullable=False, server_default=""),
    Column("adopted", Boolean, nullable=False, server_default="0"),
    Column("created_at", UtcTime, nullable=False),
    Column("updated_at", UtcTime, nullable=False),
    Index(None, "bot", "created_at"),
    Index(None, "venue", "venue_order_id"),
    comment="Every order with its latest state (messages.OrderUpdate). An update replaces the row "
    "only when it moves the order forward (cum_filled_qty grows, or status goes from open to final).",
)

fills = Table(
    "fills",
    metadata,
    _id(),
    Column("venue", String(NAME), nullable=False),
    Column("symbol", String(NAME), nullable=False),
    Column("trade_id", String(NAME), nullable=True),
    Column("cid", String(NAME), nullable=False),
    Column("cum_filled_qty", Money, nullable=False),
    Column("bot", String(NAME), nullable=False),
    Column("side", String(8), nullable=False),
    Column("price", Money, nullable=False),
    Column("qty", Money, nullable=False),
    Column("quote_qty", Money, nullable=False),
    Column("fee", Money, nullable=False),
    Column("fee_asset", String(NAME), nullable=False, server_default=""),
    Column("fee_in_quote", Money, nullable=True),
    Column("is_maker", Boolean, nullable=True),
    Column("time", UtcTime, nullable=False),
    # revision 0002: profit and position by the bots' arithmetic (shared/strategy/position.py)
    Column("realised", Money, nullable=True),  # profit this fill realised, quote, net of fees
    Column("realised_total", Money, nullable=True),  # the bot's realised profit on symbol after it
    Column("position_base", Money, nullable=True),  # the bot's base held on symbol after it
    Column("position_cost", Money, nullable=True),  # what that base cost, quote fees included
    Column("cycle", Integer, nullable=True),  # cycles.number of the bot's round trip
    UniqueConstraint("venue", "symbol", "trade_id"),
    UniqueConstraint("cid", "cum_filled_qty"),
    Index(None, "bot", "time"),
    Index(None, "time"),
    comment="Fills: what the order's cumulative quantities grew by between two updates "
    "(messages.OrderUpdate carries no trade id). Keyed by (cid, cum_filled_qty): the order's filled "
    "quantity after this fill, so the same growth is one row however often it is reported. "
    "trade_id is the venue's when known (the venue's trade list, `automata ledger sync`): such a "
    "row carries the cum_filled_qty it brings the order to, so it meets the same key.",
)

cycles = Table(
    "cycles",
    metadata,
    Column("bot", String(NAME), nullable=False),
    Column("number", Integer, nullable=False),
    Column("venue", String(NAME), nullable=False),
    Column("symbol", String(NAME), nullable=False),
    Column("quote_asset", String(NAME), nullable=False),
    Column("opened_at", UtcTime, nullable=False),
    Column("closed_at", UtcTime, nullable=True),
    Column("buys", Integer, nullable=False, server_default="0"),
    Column("sells", Integer, nullable=False, server_default="0"),
    Column("bought_qty", Money, nullable=False),
    Column("sold_qty", Money, nullable=False),
    Column("spent", Money, nullable=False),
    Column("received", Money, nullable=False),
    Column("fees", Money, nullable=False),
    Column("profit", Money, nullable=True),
    PrimaryKeyConstraint("bot", "number"),
    # revision 0003: covering for the profit readers (a window of closed_at, per bot and quote)
    Index(None, "closed_at", "bot", "quote_asset", "profit", "fees"),
    comment="Round trips per bot: buys and sells from open to close. fees in the quote asset; "
    "profit = received - spent - fees, set when the cycle closes (NULL while open).",
)

balances = Table(
    "balances",
    metadata,
    _id(),
    Column("venue", String(NAME), nullable=False),
    Column("asset", String(NAME), nullable=False),
    Column("free", Money, nullable=False),
    Column("locked", Money, nullable=False),
    Column("total", Money, nullable=False),
    Column("at", UtcTime, nullable=False),
    UniqueConstraint("venue", "asset", "at"),
    comment="Balance snapshots (messages.BalanceUpdate): one row per asset and time reported.",
)

equity = Table(
    "equity",
    metadata,
    _id(),
    Column("venue", String(NAME), nullable=False),
    Column("quote_asset", String(NAME), nullable=False),
    Column("value", Money, nullable=False),
    Column("at", UtcTime, nullable=False),
    # revision 0004: the assets left out of value for want of a price, space-separated ('' none)
    Column("unvalued", Text, nullable=False, server_default=""),
    UniqueConstraint("venue", "quote_asset", "at"),
    comment="The account's value in its quote asset over time (every balance at the last price).",
)

notifications = Table(
    "notifications",
    metadata,
    _id(),
    Column("notification_id", String(200), nullable=False),
    Column("kind", String(NAME), nullable=False),
    Column("level", String(16), nullable=False, server_default="info"),
    Column("bot", String(NAME), nullable=False, server_default=""),
    Column("venue", String(NAME), nullable=False, server_default=""),
    Column("title", Text, nullable=False, server_default=""),
    Column("text", Text, nullable=False),
    Column("data", Json, nullable=True),
    Column("at", UtcTime, nullable=False),
    UniqueConstraint("notification_id"),
    Index(None, "at"),
    comment="What people were told (messages.Notification, its stable id unique).",
)

ingested = Table(
    "ingested",
    metadata,
    Column("stream", String(STREAM), nullable=False),
    Column("entry_id", String(ENTRY_ID), nullable=False),
    Column("at", UtcTime, nullable=False),
    PrimaryKeyConstraint("stream", "entry_id"),
    comment="Every stream entry the ledger wrote, inserted in the same transaction as its rows: "
    "a second write of one entry violates the primary key and rolls back. Rows of entries below "
    "a stream's first entry can never be replayed and may be pruned.",
)

stream_gaps = Table(
    "stream_gaps",
    metadata,
    _id(),
    Column("stream", String(STREAM), nullable=False),
    Column("last_seen_id", String(ENTRY_ID), nullable=False, server_default=""),
    Column("first_id", String(ENTRY_ID), nullable=False),
    Column("reason", Text, nullable=False),
    Column("reported_at", UtcTime, nullable=False),
    Column("filled_at", UtcTime, nullable=True),
    UniqueConstraint("stream", "first_id"),
    comment="Entries trimmed before the ledger read them: after last_seen_id (the last entry it "
    "wrote, '' on a first start) the stream began at first_id. filled_at: when a sync filled it.",
)
