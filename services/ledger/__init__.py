"""The ledger service (python -m services.ledger)."""

from shared.lean_import import deferred

# first: redis-py (shared/redis_lean.py) and SQLAlchemy without importlib.metadata, which
# SQLAlchemy reads only to find a dialect outside its own (ours, SQLite and PostgreSQL, are its own)
with deferred(("importlib.metadata",)):
    import sqlalchemy  # noqa: F401

    import shared.redis_lean  # noqa: F401
