"""DCA parameters (docs/STRATEGIES.md §1). Their names are English; the Portuguese names of
the original DCA spreadsheet (`qty_inicial`, `limite_recompras`, ...) are accepted as aliases
when a config or a saved plan is read, so an older file loads as it is. Files are written with
the English names."""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal
from typing import Any

import msgspec

from shared.strategy.params import ParamsError, load_params, plain_key

# alias (the users' Portuguese name) -> field
ALIASES: dict[str, str] = {
    "qty_inicial": "base_order_quote",
    "multiplicador_qty": "order_size_multiplier",
    "qty_minima": "order_size_min",
    "qty_maxima": "order_size_max",
    "lucro_alvo_inicial": "take_profit",
    "multiplicador_lucro": "take_profit_multiplier",
    "lucro_alvo_minimo": "take_profit_min",
    "lucro_alvo_maximo": "take_profit_max",
    "recompra_queda_inicial": "step",
    "multiplicador_recompra": "step_multiplier",
    "recompra_queda_minimo": "step_min",
    "recompra_queda_maximo": "step_max",
    "limite_recompras": "max_safety_orders",
    "taxa": "fee",
    "saldo_limite": "budget",
    "lucro_reaplicar": "reinvest_profit",
}

MAX_SAFETY_ORDERS = 1000  # the plan (cli/dca.py) walks every level: more is a typo that hangs it

YES = {"s", "sim", "y", "yes", "true", "1", "on"}
NO = {"n", "nao", "no", "false", "0", "off"}


class DcaParams(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    base_order_quote: Decimal = Decimal("300")
    order_size_multiplier: Decimal = Decimal("1.02")
    order_size_min: Decimal = Decimal("50")
    order_size_max: Decimal = Decimal("600")
    take_profit: Decimal = Decimal("0.035")
    take_profit_multiplier: Decimal = Decimal("0.95")
    take_profit_min: Decimal = Decimal("0.005")
    take_profit_max: Decimal = Decimal("0.05")
    step: Decimal = Decimal("0.01")
    step_multiplier: Decimal = Decimal("1")
    step_min: Decimal = Decimal("0.005")
    step_max: Decimal = Decimal("0.03")
    max_safety_orders: int = 20
    fee: Decimal = Decimal("0.001")
    budget: Decimal = Decimal("5000")  # 0 = all free quote balance
    reinvest_profit: bool = True
    # Optional "curve" sizing: safety order k gets base + (max - base) * (k / N) ** size_curve.
    size_curve: Decimal | None = None

    def __post_init__(self) -> None:
        positive = ("base_order_quote", "order_size_multiplier", "take_profit_multiplier", "step_multiplier")
        for name in positive:
            if getattr(self, name) <= 0:
                raise ValueError(f"{name} must be > 0")
        for low, high in (
            ("order_size_min", "order_size_max"),
            ("take_profit_min", "take_profit_max"),
            ("step_min", "step_max"),
        ):
            if getattr(self, low) < 0 or getattr(self, low) > getattr(self, high):
                raise ValueError(f"{low} must be between 0 and {high}")
        if not 0 < self.take_profit < 10:
            raise ValueError("take_profit must be > 0 (a fraction: 0.035 = 3.5 %)")
        if not 0 < self.step < 1 or self.step_max >= 1:
            raise ValueError("step and step_max must be fractions between 0 and 1 (0.01 = 1 %)")
        if not 0 <= self.max_safety_orders <= MAX_SAFETY_ORDERS:
            raise ValueError(f"max_safety_orders must be 0 to {MAX_SAFETY_ORDERS}")
        if not 0 <= self.fee < 1:
            raise ValueError("fee must be a fraction between 0 and 1 (0.001 = 0.1 %)")
        if self.budget < 0:
            raise ValueError("budget must be >= 0 (0 = all free quote balance)")
        if 0 < self.budget < self.base_order_quote:
            raise ValueError("budget must be at least base_order_quote (or 0 = all free balance)")
        if self.size_curve is not None and self.size_curve <= 0:
            raise ValueError("size_curve must be > 0")


def yes_or_no(text: str) -> bool | None:
    """A yes/no answer in English or Portuguese ("y", "yes", "s", "sim", "n", "no", "não"), else None."""
    key = plain_key(text)
    return True if key in YES else False if key in NO else None


def _yes_no(value: Any, source: str) -> Any:
    if isinstance(value, str):
        answer = yes_or_no(value)
        if answer is None:
            raise ParamsError(f"{source}: reinvest_profit: expected y/n (yes/no), got {value!r}")
        return answer
    return value


def parse_dca_params(raw: Mapping[str, Any] | None, source: str = "params") -> DcaParams:
    """DcaParams from a config table: English names or their Portuguese aliases, y/n (or s/n) for yes/no."""
    data = dict(raw or {})
    for key in list(data):
        if ALIASES.get(plain_key(key), plain_key(key)) == "reinvest_profit":
            data[key] = _yes_no(data[key], source)
    return load_params(DcaParams, data, ALIASES, source)
