"""Reading Bybit V5 request parameters (a JSON body or a query string) with Bybit's refusals.

Malformed values are retCode 10001 with the parameter named, as Bybit's `params error`
messages do; pybit sends qty and price as strings, raw clients may send numbers: both pass.
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal, InvalidOperation
from typing import Any

from services.exchange_sim.bybit_errors import params_error
from services.exchange_sim.bybit_format import CATEGORY

LIMIT = 10**20  # beyond this, Decimal arithmetic (28 digits) raises instead of refusing


class Params:
    def __init__(self, values: Mapping[str, Any]) -> None:
        self.values = dict(values)

    def get(self, name: str) -> Any:
        return self.values.get(name)

    def text(self, name: str) -> str | None:
        """The value as text; None when absent, null or empty."""
        value = self.values.get(name)
        if value is None or value == "":
            return None
        if isinstance(value, bool) or not isinstance(value, str | int | float):
            raise params_error(f"params error: {name} invalid")
        return str(value)

    def required(self, name: str) -> str:
        value = self.text(name)
        if value is None:
            raise params_error(f"params error: {name} is required")
        return value

    def decimal(self, name: str) -> Decimal | None:
        text = self.text(name)
        if text is None:
            return None
        try:
            value = Decimal(text)
        except InvalidOperation:
            raise params_error(f"params error: {name} invalid") from None
        if not value.is_finite() or not -LIMIT < value < LIMIT:
            raise params_error(f"params error: {name} invalid")
        return value

    def integer(
        self, name: str, *, default: int | None = None, lo: int | None = None, hi: int | None = None
    ) -> int | None:
        text = self.text(name)
        if text is None:
            return default
        try:
            value = int(text)
        except ValueError:
            raise params_error(f"params error: {name} invalid") from None
        if not -LIMIT < value < LIMIT:
            raise params_error(f"params error: {name} invalid")
        if (lo is not None and value < lo) or (hi is not None and value > hi):
            raise params_error(f"params error: {name} out of range [{lo}, {hi}]")
        return value

    def category(self) -> None:
        """Every endpoint here is spot only (the paper venue has no derivatives)."""
        category = self.required("category")
        if category != CATEGORY:
            raise params_error(
                f"params error: category {category} is not supported, the paper venue is spot only"
            )
