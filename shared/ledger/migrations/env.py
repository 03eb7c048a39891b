"""Alembic environment: runs on the connection `shared.ledger.db.upgrade` hands over (no alembic.ini)."""

from __future__ import annotations

from alembic import context

from shared.ledger.schema import metadata

connection = context.config.attributes.get("connection")
if connection is None:
    raise RuntimeError("the ledger's migrations run through shared.ledger.db.upgrade(engine)")
context.configure(
    connection=connection,
    target_metadata=metadata,
    render_as_batch=connection.dialect.name == "sqlite",  # SQLite alters tables by copying them
    compare_type=True,
)
with context.begin_transaction():
    context.run_migrations()
