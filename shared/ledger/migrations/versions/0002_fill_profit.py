"""Realised profit on each fill, and the bot's position after it (the ledger service, issue 15).

fills.realised: the profit this fill realised, in the quote asset, net of fees (average-cost
method, shared/strategy/position.py, the same arithmetic as the bots); realised_total: the bot's
realised profit on the symbol after this fill; position_base / position_cost: the bot's position
after it (so the next fill continues from the last row, and a reader shows what is held);
cycle: the number of the bot's round trip (cycles.number) the fill belongs to.

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-06 04:50:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import shared.ledger.types

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

MONEY = ("realised", "realised_total", "position_base", "position_cost")


def upgrade() -> None:
    for name in MONEY:
        op.add_column(
            "fills", sa.Column(name, shared.ledger.types.Money(precision=38, scale=18), nullable=True)
        )
    op.add_column("fills", sa.Column("cycle", sa.Integer(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("fills") as batch:
        for name in (*MONEY, "cycle"):
            batch.drop_column(name)
