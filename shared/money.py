"""Money as Decimal, end to end.

Prices and quantities are built from strings (or ints / Decimals), never from floats, and
are rounded to a symbol's tick and step here and nowhere else.
"""

from __future__ import annotations

from decimal import ROUND_CEILING, ROUND_FLOOR, Context, Decimal, InvalidOperation

ZERO = Decimal(0)


class MoneyError(ValueError):
    """A value that cannot be a price or a quantity."""


def dec(value: str | int | Decimal) -> Decimal:
    """Parse a decimal from a string, int or Decimal; a float is refused (it already lost precision)."""
    if isinstance(value, Decimal):
        result = value
    elif isinstance(value, (bool, float)):
        raise MoneyError(f"refusing {type(value).__name__} {value!r}: build money from a string")
    elif isinstance(value, int | str):
        try:
            result = Decimal(value)
        except InvalidOperation as exc:
            raise MoneyError(f"not a decimal number: {value!r}") from exc
    else:
        raise MoneyError(f"not a decimal number: {value!r}")
    if not result.is_finite():
        raise MoneyError(f"not a finite number: {value!r}")
    return result


def round_down(value: Decimal, increment: Decimal) -> Decimal:
    """Largest multiple of increment that is <= value (quantities, buy prices)."""
    if increment <= ZERO:
        return value
    # rounding passed by position: a keyword costs Decimal's C method twice the call
    return (value / increment).to_integral_value(ROUND_FLOOR) * increment


def round_up(value: Decimal, increment: Decimal) -> Decimal:
    """Smallest multiple of increment that is >= value (sell prices)."""
    if increment <= ZERO:
        return value
    return (value / increment).to_integral_value(ROUND_CEILING) * increment


def fmt(value: Decimal) -> str:
    """Plain decimal text without exponent or trailing zeros ('0.001', '25000', '0')."""
    if value == 0:
        return "0"
    exact = Context(prec=max(28, len(value.as_tuple().digits)))  # normalize drops zeros, never digits
    return format(value.normalize(exact), "f")


def venue_dec(value: object) -> Decimal:
    """A decimal from a venue payload (str, int or None/""): missing is 0, and zero in any
    spelling ("0.00000000", "0E-8") is plain 0, so stored and compared values stay tidy."""
    if value is None or value == "":
        return ZERO
    result = dec(str(value))
    return result if result else ZERO
