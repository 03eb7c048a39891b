"""Column types that keep money exact and times in UTC on both SQLite and PostgreSQL.

`Money`: NUMERIC(38, 18) on PostgreSQL: 20 integer digits hold any balance or volume, 18
decimal places any token's smallest unit (wei-like assets have 18), and NUMERIC is exact. SQLite
has no exact decimal (its NUMERIC affinity turns `0.123456789012345678` into a float), so there
the value is stored as its plain decimal text: exact, and read back as the same Decimal. SQL
arithmetic on SQLite text is not exact: sums of money are done in Python with Decimal there.

`Json`: JSONB on PostgreSQL, JSON (text) on SQLite.

`UtcTime`: TIMESTAMP WITH TIME ZONE on PostgreSQL; on SQLite the text `YYYY-MM-DD HH:MM:SS.ffffff`
of the UTC time (it sorts in time order). A naive datetime is refused: its zone would be a guess.
"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Context, Decimal
from typing import Any

from sqlalchemy import JSON, DateTime, Dialect, Numeric, String
from sqlalchemy.types import TypeDecorator, TypeEngine

PRECISION, SCALE = 38, 18


class Money(TypeDecorator[Decimal]):
    """An exact Decimal: NUMERIC(38, 18) on PostgreSQL, the decimal's text on SQLite."""

    impl = Numeric(PRECISION, SCALE, asdecimal=True)
    cache_ok = True

    def load_dialect_impl(self, dialect: Dialect) -> TypeEngine[Any]:
        if dialect.name == "sqlite":
            return dialect.type_descriptor(String(PRECISION + 2))
        return dialect.type_descriptor(Numeric(PRECISION, SCALE, asdecimal=True))

    def process_bind_param(self, value: Any, dialect: Dialect) -> Any:
        if value is None:
            return None
        if not isinstance(value, Decimal | int) or isinstance(value, bool):
            raise TypeError(f"money must be a Decimal, got {type(value).__name__}")
        value = Decimal(value)
        if not value.is_finite():
            raise ValueError(f"money must be finite, got {value}")
        if dialect.name == "sqlite":
            text = format(value, "f")
            return "0" if text in ("-0", "0") else text
        return value

    def process_result_value(self, value: Any, dialect: Dialect) -> Decimal | None:
        if value is None:
            return None
        value = Decimal(value)
        if dialect.name != "sqlite" and value.as_tuple().exponent <= -SCALE:  # type: ignore[operator]  # finite here
            value = unpadded(value)
        return value


_EXACT = Context(prec=PRECISION + 2)  # normalize with room for every digit: it drops zeros only


def unpadded(value: Decimal) -> Decimal:
    """`value` without the zeros NUMERIC(38, 18) pads it with ('42000.000000000000000000' ->
    42000, '0E-18' -> 0): the same Decimal, and the same text, as SQLite gives back. Why: the
    API and `--json` print str(Decimal), which showed that padding on PostgreSQL only."""
    short = value.normalize(_EXACT)
    return short.quantize(_ONE) if short.as_tuple().exponent > 0 else short  # 4.2E+4 -> 42000


_ONE = Decimal(1)


class UtcTime(TypeDecorator[datetime]):
    """A timezone-aware datetime, stored and returned in UTC."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: Any, dialect: Dialect) -> Any:
        if value is None:
            return None
        if not isinstance(value, datetime) or value.tzinfo is None or value.utcoffset() is None:
            raise ValueError(f"a time must be a timezone-aware datetime, got {value!r}")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class Json(TypeDecorator[Any]):
    """JSON; JSONB on PostgreSQL. (A TypeDecorator rather than `with_variant(JSONB())`: that
    imports SQLAlchemy's PostgreSQL dialect, ~2 MB, into a ledger that writes to SQLite.)"""

    impl = JSON
    cache_ok = True

    def load_dialect_impl(self, dialect: Dialect) -> TypeEngine[Any]:
        if dialect.name == "postgresql":
            from sqlalchemy.dialects.postgresql import JSONB

            return dialect.type_descriptor(JSONB())
        return dialect.type_descriptor(JSON())
