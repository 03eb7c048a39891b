"""A covering index for the profit readers: cycles (closed_at, bot, quote_asset, profit, fees).

`automata profit --daily/--weekly/--monthly` (shared/ledger/profit.py `by_period`) sums the
profit and fees of the cycles closed in a window, per quote asset and optionally per bot: with
every column it reads in the index, the window is one index range scan and no table row is
fetched. It replaces the index on closed_at alone, which is its first column.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-06 05:05:00
"""

from __future__ import annotations

from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

COVERING = ("closed_at", "bot", "quote_asset", "profit", "fees")


def upgrade() -> None:
    with op.batch_alter_table("cycles") as batch:
        batch.drop_index("ix_cycles_closed_at")
        batch.create_index("ix_cycles_closed_at_bot_quote_asset_profit_fees", list(COVERING))


def downgrade() -> None:
    with op.batch_alter_table("cycles") as batch:
        batch.drop_index("ix_cycles_closed_at_bot_quote_asset_profit_fees")
        batch.create_index("ix_cycles_closed_at", ["closed_at"])
