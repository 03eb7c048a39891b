"""equity.unvalued: the assets an equity value leaves out, for want of a price.

The ledger wrote equity only for a fully valued account, so an account holding an asset it had
no price for (the demo's ETH) had none at all. Now it writes the valued part, as `automata
balance` shows it (shared/account_view.py `valuation`), with the assets left out named here,
space-separated ('' when every asset is in the value). Rows written before are fully valued:
they get ''.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-06 06:50:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("equity", sa.Column("unvalued", sa.Text(), nullable=False, server_default=""))


def downgrade() -> None:
    with op.batch_alter_table("equity") as batch:
        batch.drop_column("unvalued")
