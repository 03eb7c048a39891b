"""Exact money aggregates in SQL on both databases: SUM, MAX, MIN and "is it above zero".

PostgreSQL's NUMERIC sums and compares exactly, so there the database does the work. SQLite keeps
money as decimal text (shared/ledger/types.py): its SUM would go through float and its MAX would
compare text ('9' > '10'). There `prepare(conn)` registers three small Python aggregates on the
connection (money_sum, money_max, money_min) that add and compare Decimals and answer text, so
one query shape serves both databases and only the aggregated rows ever reach Python.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import sqlalchemy as sa
from sqlalchemy.sql.elements import ColumnElement

from shared.ledger.types import Money


class _Sum:
    def __init__(self) -> None:
        self.total: Decimal | None = None

    def step(self, value: str | None) -> None:
        if value is not None:
            self.total = Decimal(value) + (self.total or 0)

    def finalize(self) -> str | None:
        return None if self.total is None else format(self.total, "f")


class _Extreme:
    larger = True

    def __init__(self) -> None:
        self.best: Decimal | None = None

    def step(self, value: str | None) -> None:
        if value is None:
            return
        d = Decimal(value)
        if self.best is None or (d > self.best if self.larger else d < self.best):
            self.best = d

    def finalize(self) -> str | None:
        return None if self.best is None else format(self.best, "f")


class _Min(_Extreme):
    larger = False


def prepare(conn: sa.Connection) -> None:
    """Make the aggregates known to this connection (SQLite; nothing to do on PostgreSQL)."""
    if conn.dialect.name != "sqlite":
        return
    raw: Any = conn.connection.driver_connection
    raw.create_aggregate("money_sum", 1, _Sum)
    raw.create_aggregate("money_max", 1, _Extreme)
    raw.create_aggregate("money_min", 1, _Min)


def _agg(conn: sa.Connection, sql_name: str, sqlite_name: str, column: Any) -> ColumnElement[Decimal]:
    name = sqlite_name if conn.dialect.name == "sqlite" else sql_name
    return sa.type_coerce(getattr(sa.func, name)(column), Money)


def total(conn: sa.Connection, column: Any) -> ColumnElement[Decimal]:
    """SUM of a money column, exact (NULL when no row)."""
    return _agg(conn, "sum", "money_sum", column)


def largest(conn: sa.Connection, column: Any) -> ColumnElement[Decimal]:
    return _agg(conn, "max", "money_max", column)


def smallest(conn: sa.Connection, column: Any) -> ColumnElement[Decimal]:
    return _agg(conn, "min", "money_min", column)


def positive(conn: sa.Connection, column: Any) -> ColumnElement[bool]:
    """column > 0. On SQLite through REAL: a nonzero decimal of at most 18 places never rounds to
    zero, so the sign is exact even where the value is not."""
    if conn.dialect.name == "sqlite":
        return sa.cast(sa.type_coerce(column, sa.String), sa.Float) > sa.literal_column("0")
    return column > 0


def count_if(condition: ColumnElement[bool]) -> ColumnElement[int]:
    """How many rows meet `condition` (COUNT of a CASE: portable, NULLs not counted)."""
    return sa.func.count(sa.case((condition, 1)))
