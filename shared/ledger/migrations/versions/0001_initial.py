"""The initial schema: every ledger table (shared/ledger/schema.py as of issue 15).

Frozen: a later change to schema.py is a new revision, never an edit of this one.

Revision ID: 0001
Revises: (none)
Create Date: 2026-12-06 04:29:35.141913
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

import shared.ledger.types

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "balances",
        sa.Column(
            "id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False
        ),
        sa.Column("venue", sa.String(length=64), nullable=False),
        sa.Column("asset", sa.String(length=64), nullable=False),
        sa.Column("free", shared.ledger.types.Money(precision=38, scale=18), nullable=False),
        sa.Column("locked", shared.ledger.types.Money(precision=38, scale=18), nullable=False),
        sa.Column("total", shared.ledger.types.Money(precision=38, scale=18), nullable=False),
        sa.Column("at", shared.ledger.types.UtcTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_balances")),
        sa.UniqueConstraint("venue", "asset", "at", name=op.f("uq_balances_venue_asset_at")),
        comment="Balance snapshots (messages.BalanceUpdate): one row per asset and time reported.",
    )
    op.create_table(
        "candles",
        sa.Column("venue", sa.String(length=64), nullable=False),
        sa.Column("symbol", sa.String(length=64), nullable=False),
        sa.Column("interval", sa.String(length=8), nullable=False),
        sa.Column("open_time", shared.ledger.types.UtcTime(timezone=True), nullable=False),
        sa.Column("close_time", shared.ledger.types.UtcTime(timezone=True), nullable=False),
        sa.Column("open", shared.ledger.types.Money(precision=38, scale=18), nullable=False),
        sa.Column("high", shared.ledger.types.Money(precision=38, scale=18), nullable=False),
        sa.Column("low", shared.ledger.types.Money(precision=38, scale=18), nullable=False),
        sa.Column("close", shared.ledger.types.Money(precision=38, scale=18), nullable=False),
        sa.Column("volume", shared.ledger.types.Money(precision=38, scale=18), nullable=False),
        sa.Column("quote_volume", shared.ledger.types.Money(precision=38, scale=18), nullable=True),
        sa.Column("trades", sa.Integer(), nullable=True),
        sa.PrimaryKeyConstraint("venue", "symbol", "interval", "open_time", name=op.f("pk_candles")),
        comment="Closed candles (messages.Candle), one row per (venue, symbol, interval, open_time).",
    )
    op.create_table(
        "cycles",
        sa.Column("bot", sa.String(length=64), nullable=False),
        sa.Column("number", sa.Integer(), nullable=False),
        sa.Column("venue", sa.String(length=64), nullable=False),
        sa.Column("symbol", sa.String(length=64), nullable=False),
        sa.Column("quote_asset", sa.String(length=64), nullable=False),
        sa.Column("opened_at", shared.ledger.types.UtcTime(timezone=True), nullable=False),
        sa.Column("closed_at", shared.ledger.types.UtcTime(timezone=True), nullable=True),
        sa.Column("buys", sa.Integer(), server_default="0", nullable=False),
        sa.Column("sells", sa.Integer(), server_default="0", nullable=False),
        sa.Column("bought_qty", shared.ledger.types.Money(precision=38, scale=18), nullable=False),
        sa.Column("sold_qty", shared.ledger.types.Money(precision=38, scale=18), nullable=False),
        sa.Column("spent", shared.ledger.types.Money(precision=38, scale=18), nullable=False),
        sa.Column("received", shared.ledger.types.Money(precision=38, scale=18), nullable=False),
        sa.Column("fees", shared.ledger.types.Money(precision=38, scale=18), nullable=False),
        sa.Column("profit", shared.ledger.types.Money(precision=38, scale=18), nullable=True),
        sa.PrimaryKeyConstraint("bot", "number", name=op.f("pk_cycles")),
        comment="Round trips per bot: buys and sells from open to close. fees in the quote asset; profit = received - spent - fees, set when the cycle closes (NULL while open).",
    )
    with op.batch_alter_table("cycles", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_cycles_closed_at"), ["closed_at"], unique=False)

    op.create_table(
        "equity",
        sa.Column(
            "id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False
        ),
        sa.Column("venue", sa.String(length=64), nullable=False),
        sa.Column("quote_asset", sa.String(length=64), nullable=False),
        sa.Column("value", shared.ledger.types.Money(precision=38, scale=18), nullable=False),
        sa.Column("at", shared.ledger.types.UtcTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_equity")),
        sa.UniqueConstraint("venue", "quote_asset", "at", name=op.f("uq_equity_venue_quote_asset_at")),
        comment="The account's value in its quote asset over time (every balance at the last price).",
    )
    op.create_table(
        "fills",
        sa.Column(
            "id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False
        ),
        sa.Column("venue", sa.String(length=64), nullable=False),
        sa.Column("symbol", sa.String(length=64), nullable=False),
        sa.Column("trade_id", sa.String(length=64), nullable=True),
        sa.Column("cid", sa.String(length=64), nullable=False),
        sa.Column("cum_filled_qty", shared.ledger.types.Money(precision=38, scale=18), nullable=False),
        sa.Column("bot", sa.String(length=64), nullable=False),
        sa.Column("side", sa.String(length=8), nullable=False),
        sa.Column("price", shared.ledger.types.Money(precision=38, scale=18), nullable=False),
        sa.Column("qty", shared.ledger.types.Money(precision=38, scale=18), nullable=False),
        sa.Column("quote_qty", shared.ledger.types.Money(precision=38, scale=18), nullable=False),
        sa.Column("fee", shared.ledger.types.Money(precision=38, scale=18), nullable=False),
        sa.Column("fee_asset", sa.String(length=64), server_default="", nullable=False),
        sa.Column("fee_in_quote", shared.ledger.types.Money(precision=38, scale=18), nullable=True),
        sa.Column("is_maker", sa.Boolean(), nullable=True),
        sa.Column("time", shared.ledger.types.UtcTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_fills")),
        sa.UniqueConstraint("cid", "cum_filled_qty", name=op.f("uq_fills_cid_cum_filled_qty")),
        sa.UniqueConstraint("venue", "symbol", "trade_id", name=op.f("uq_fills_venue_symbol_trade_id")),
        comment="Fills: what the order's cumulative quantities grew by between two updates (messages.OrderUpdate carries no trade id). Keyed by (cid, cum_filled_qty): the order's filled quantity after this fill, so the same growth is one row however often it is reported. trade_id is the venue's when known (the venue's trade list, `automata ledger sync`): such a row carries the cum_filled_qty it brings the order to, so it meets the same key.",
    )
    with op.batch_alter_table("fills", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_fills_bot_time"), ["bot", "time"], unique=False)
        batch_op.create_index(batch_op.f("ix_fills_time"), ["time"], unique=False)

    op.create_table(
        "ingested",
        sa.Column("stream", sa.String(length=200), nullable=False),
        sa.Column("entry_id", sa.String(length=32), nullable=False),
        sa.Column("at", shared.ledger.types.UtcTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("stream", "entry_id", name=op.f("pk_ingested")),
        comment="Every stream entry the ledger wrote, inserted in the same transaction as its rows: a second write of one entry violates the primary key and rolls back. Rows of entries below a stream's first entry can never be replayed and may be pruned.",
    )
    op.create_table(
        "notifications",
        sa.Column(
            "id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False
        ),
        sa.Column("notification_id", sa.String(length=200), nullable=False),
        sa.Column("kind", sa.String(length=64), nullable=False),
        sa.Column("level", sa.String(length=16), server_default="info", nullable=False),
        sa.Column("bot", sa.String(length=64), server_default="", nullable=False),
        sa.Column("venue", sa.String(length=64), server_default="", nullable=False),
        sa.Column("title", sa.Text(), server_default="", nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column(
            "data",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=True,
        ),
        sa.Column("at", shared.ledger.types.UtcTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_notifications")),
        sa.UniqueConstraint("notification_id", name=op.f("uq_notifications_notification_id")),
        comment="What people were told (messages.Notification, its stable id unique).",
    )
    with op.batch_alter_table("notifications", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_notifications_at"), ["at"], unique=False)

    op.create_table(
        "orders",
        sa.Column("cid", sa.String(length=64), nullable=False),
        sa.Column("bot", sa.String(length=64), nullable=False),
        sa.Column("venue", sa.String(length=64), nullable=False),
        sa.Column("symbol", sa.String(length=64), nullable=False),
        sa.Column("venue_order_id", sa.String(length=64), server_default="", nullable=False),
        sa.Column("side", sa.String(length=8), nullable=True),
        sa.Column("order_type", sa.String(length=24), nullable=True),
        sa.Column("status", sa.String(length=24), nullable=False),
        sa.Column("price", shared.ledger.types.Money(precision=38, scale=18), nullable=True),
        sa.Column("stop_price", shared.ledger.types.Money(precision=38, scale=18), nullable=True),
        sa.Column("orig_qty", shared.ledger.types.Money(precision=38, scale=18), nullable=False),
        sa.Column("orig_quote_qty", shared.ledger.types.Money(precision=38, scale=18), nullable=True),
        sa.Column("cum_filled_qty", shared.ledger.types.Money(precision=38, scale=18), nullable=False),
        sa.Column("cum_quote_qty", shared.ledger.types.Money(precision=38, scale=18), nullable=False),
        sa.Column("fee", shared.ledger.types.Money(precision=38, scale=18), nullable=False),
        sa.Column("fee_asset", sa.String(length=64), server_default="", nullable=False),
        sa.Column("reason", sa.Text(), server_default="", nullable=False),
        sa.Column("adopted", sa.Boolean(), server_default="0", nullable=False),
        sa.Column("created_at", shared.ledger.types.UtcTime(timezone=True), nullable=False),
        sa.Column("updated_at", shared.ledger.types.UtcTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("cid", name=op.f("pk_orders")),
        comment="Every order with its latest state (messages.OrderUpdate). An update replaces the row only when it moves the order forward (cum_filled_qty grows, or status goes from open to final).",
    )
    with op.batch_alter_table("orders", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_orders_bot_created_at"), ["bot", "created_at"], unique=False)
        batch_op.create_index(
            batch_op.f("ix_orders_venue_venue_order_id"), ["venue", "venue_order_id"], unique=False
        )

    op.create_table(
        "stream_gaps",
        sa.Column(
            "id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False
        ),
        sa.Column("stream", sa.String(length=200), nullable=False),
        sa.Column("last_seen_id", sa.String(length=32), server_default="", nullable=False),
        sa.Column("first_id", sa.String(length=32), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("reported_at", shared.ledger.types.UtcTime(timezone=True), nullable=False),
        sa.Column("filled_at", shared.ledger.types.UtcTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_stream_gaps")),
        sa.UniqueConstraint("stream", "first_id", name=op.f("uq_stream_gaps_stream_first_id")),
        comment="Entries trimmed before the ledger read them: after last_seen_id (the last entry it wrote, '' on a first start) the stream began at first_id. filled_at: when a sync filled it.",
    )


def downgrade() -> None:
    op.drop_table("stream_gaps")
    with op.batch_alter_table("orders", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_orders_venue_venue_order_id"))
        batch_op.drop_index(batch_op.f("ix_orders_bot_created_at"))

    op.drop_table("orders")
    with op.batch_alter_table("notifications", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_notifications_at"))

    op.drop_table("notifications")
    op.drop_table("ingested")
    with op.batch_alter_table("fills", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_fills_time"))
        batch_op.drop_index(batch_op.f("ix_fills_bot_time"))

    op.drop_table("fills")
    op.drop_table("equity")
    with op.batch_alter_table("cycles", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_cycles_closed_at"))

    op.drop_table("cycles")
    op.drop_table("candles")
    op.drop_table("balances")
