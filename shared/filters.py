"""Symbol filters (tick size, step size, min notional, percent price) and order validation.

One place for the exchange's rounding rules: quantities round down to the step size, buy
prices down and sell prices up to the tick size. `check()` tells why an order cannot be
made valid, so it is rejected with a reason instead of failing at the exchange.
"""

from __future__ import annotations

from decimal import Decimal

import msgspec

from shared.messages import BUY, SELL, Side, check_amounts
from shared.money import ZERO, fmt, round_down, round_up

AMOUNTS = ("tick_size", "step_size", "min_qty", "max_qty", "min_notional", "max_notional", "min_price",
           "max_price", "multiplier_up", "multiplier_down", "sell_multiplier_up",
           "sell_multiplier_down")  # fmt: skip


class FilterError(ValueError):
    """The order cannot satisfy the symbol's filters; the message says which and why."""


class SymbolFilters(msgspec.Struct, frozen=True, kw_only=True):
    symbol: str
    base_asset: str
    quote_asset: str
    tick_size: Decimal
    step_size: Decimal
    min_qty: Decimal = ZERO
    max_qty: Decimal = Decimal("9000000")
    min_notional: Decimal = ZERO
    max_notional: Decimal = Decimal("9000000000")
    min_price: Decimal = ZERO
    max_price: Decimal = Decimal("10000000")
    # PERCENT_PRICE_BY_SIDE: a buy's price within [ref * down, ref * up] around the reference
    # price (Binance's bid multipliers; PERCENT_PRICE's one band for both sides) ...
    multiplier_up: Decimal = Decimal("5")
    multiplier_down: Decimal = Decimal("0.2")
    # ... and a sell's within its own band (the ask multipliers); None: the buy's band
    sell_multiplier_up: Decimal | None = None
    sell_multiplier_down: Decimal | None = None

    def __post_init__(self) -> None:
        # built from a venue's exchangeInfo: a constructor checks no types, and a negative or
        # absurd size would make every order's rounding wrong rather than fail
        for name in ("symbol", "base_asset", "quote_asset"):
            if not isinstance(getattr(self, name), str):
                raise TypeError(f"{name} must be a string, got {type(getattr(self, name)).__name__}")
        check_amounts(self, AMOUNTS)

    def round_qty(self, qty: Decimal) -> Decimal:
        return round_down(qty, self.step_size)

    def round_price(self, price: Decimal, side: Side) -> Decimal:
        """Buy prices round down, sell prices round up (never pay more / sell for less than asked).
        A side that is not a Side is a TypeError: a mistyped "buy" would otherwise round up."""
        if side is BUY:
            return round_down(price, self.tick_size)
        if side is SELL:
            return round_up(price, self.tick_size)
        raise TypeError(f"side must be a Side, got {side!r}")

    def price_band(self, side: Side, ref_price: Decimal) -> tuple[Decimal, Decimal]:
        """The lowest and highest price an order of this side may have around ref_price."""
        if side is SELL:
            down, up = self.sell_multiplier_down, self.sell_multiplier_up
            return ref_price * (self.multiplier_down if down is None else down), ref_price * (
                self.multiplier_up if up is None else up
            )
        return ref_price * self.multiplier_down, ref_price * self.multiplier_up

    def check(
        self, qty: Decimal, price: Decimal | None, *, ref_price: Decimal | None = None, side: Side = BUY
    ) -> None:
        """Raise FilterError naming the first filter qty/price break (both already rounded);
        `side` picks the percent-price band."""
        if qty <= ZERO:  # a Decimal compares faster with a Decimal than with an int
            raise FilterError(
                f"{self.symbol}: quantity {fmt(qty)} is not positive after rounding to step {fmt(self.step_size)}"
            )
        if qty < self.min_qty:
            raise FilterError(
                f"{self.symbol}: LOT_SIZE: quantity {fmt(qty)} below minimum {fmt(self.min_qty)}"
            )
        if qty > self.max_qty:
            raise FilterError(
                f"{self.symbol}: LOT_SIZE: quantity {fmt(qty)} above maximum {fmt(self.max_qty)}"
            )
        if price is not None:
            if price <= ZERO:
                raise FilterError(f"{self.symbol}: PRICE_FILTER: price {fmt(price)} is not positive")
            if price < self.min_price or price > self.max_price:
                raise FilterError(
                    f"{self.symbol}: PRICE_FILTER: price {fmt(price)} outside [{fmt(self.min_price)}, {fmt(self.max_price)}]"
                )
            if ref_price is not None and ref_price > 0:
                if side is SELL:
                    lo, hi = self.price_band(side, ref_price)
                else:  # inline: every order a backtest places passes here
                    lo, hi = ref_price * self.multiplier_down, ref_price * self.multiplier_up
                if price < lo or price > hi:
                    raise FilterError(
                        f"{self.symbol}: PERCENT_PRICE: price {fmt(price)} outside [{fmt(lo)}, {fmt(hi)}] around {fmt(ref_price)}"
                    )
        notional_price = price if price is not None else ref_price
        if notional_price is not None:
            notional = qty * notional_price
            if notional < self.min_notional:
                raise FilterError(
                    f"{self.symbol}: NOTIONAL: {fmt(notional)} below minimum {fmt(self.min_notional)}"
                )
            if notional > self.max_notional:
                raise FilterError(
                    f"{self.symbol}: NOTIONAL: {fmt(notional)} above maximum {fmt(self.max_notional)}"
                )
