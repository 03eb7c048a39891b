"""`syncs`: one row per `automata ledger sync` that changed the fills; fills.published_at (issue 15).

A sync annotates fills with the venue's trade ids, and replaces derived fills (several trades
told as one growth) or fills a gap with the venue's own trades; the bots' positions and cycles
are then recomputed. The running ledger service reads the newest sync's id in each batch (after
its first write, so inside the same lock): a new one means the positions it holds in memory
are stale and are read again from the database.

fills.published_at: when the bot's order-update stream told the fill (the entry's time; for a
fill a sync added, the order gateway's last update of the order): the order the bot applied its
fills in, which a sync that rewrites a bot's fills keeps, so the positions and realised profit
it recomputes are the bot's own. NULL on rows written before.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-06 06:40:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import shared.ledger.types

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column(
        "fills", sa.Column("published_at", shared.ledger.types.UtcTime(timezone=True), nullable=True)
    )
    op.create_table(
        "syncs",
        sa.Column(
            "id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False
        ),
        sa.Column("venue", sa.String(length=64), nullable=False),
        sa.Column("at", shared.ledger.types.UtcTime(timezone=True), nullable=False),
        sa.Column("trades", sa.Integer(), nullable=False),
        sa.Column("annotated", sa.Integer(), nullable=False),
        sa.Column("inserted", sa.Integer(), nullable=False),
        sa.Column("replaced", sa.Integer(), nullable=False),
        sa.Column("bots", sa.Text(), server_default="", nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_syncs")),
        comment="Each `automata ledger sync` that changed fills: how many venue trades it read, "
        "fills it gave a trade id (annotated), venue trades it added (inserted) and derived fills it "
        "replaced; bots: those whose positions and cycles it recomputed.",
    )


def downgrade() -> None:
    op.drop_table("syncs")
    with op.batch_alter_table("fills") as batch:
        batch.drop_column("published_at")
