"""The venue's symbol catalog and starting balances.

Filters are the real Binance spot values (tick, step, min notional, percent price), so an
order the paper venue accepts is one the real exchange would accept. The market fields
(start price, volatility, volume, book depth) only shape the simulated market.
"""

from __future__ import annotations

from collections.abc import Iterable
from decimal import Decimal

import msgspec

from shared.filters import SymbolFilters
from shared.money import ZERO


class SymbolSpec(msgspec.Struct, frozen=True, kw_only=True):
    """One tradable symbol: exchange filters plus the parameters of its simulated market."""

    filters: SymbolFilters
    start_price: Decimal  # first price of the random walk
    volatility: float  # standard deviation of the 1-minute log return (random walk)
    volume: Decimal  # mean 1-minute volume in base units (random walk)
    level_qty: Decimal  # quantity on the best level of the synthetic book
    level_gap_bps: Decimal = Decimal("1")  # distance between synthetic book levels
    spread_ticks: int = 1
    max_num_orders: int = 200
    base_precision: int = 8
    quote_precision: int = 8

    @property
    def symbol(self) -> str:
        return self.filters.symbol

    @property
    def base(self) -> str:
        return self.filters.base_asset

    @property
    def quote(self) -> str:
        return self.filters.quote_asset


def _spec(
    symbol: str,
    base: str,
    quote: str,
    *,
    tick: str,
    step: str,
    min_notional: str,
    start: str,
    vol: float,
    volume: str,
    level_qty: str,
    max_qty: str = "9000",
) -> SymbolSpec:
    return SymbolSpec(
        filters=SymbolFilters(
            symbol=symbol,
            base_asset=base,
            quote_asset=quote,
            tick_size=Decimal(tick),
            step_size=Decimal(step),
            min_qty=Decimal(step),
            max_qty=Decimal(max_qty),
            min_notional=Decimal(min_notional),
            max_notional=Decimal("9000000"),
            min_price=Decimal(tick),
            max_price=Decimal("1000000"),
            multiplier_up=Decimal("5"),
            multiplier_down=Decimal("0.2"),
        ),
        start_price=Decimal(start),
        volatility=vol,
        volume=Decimal(volume),
        level_qty=Decimal(level_qty),
    )


CATALOG: dict[str, SymbolSpec] = {
    s.symbol: s
    for s in (
        _spec("BTCUSDT", "BTC", "USDT", tick="0.01", step="0.00001", min_notional="5", start="42000",
              vol=0.0008, volume="12", level_qty="0.5"),
        _spec("ETHUSDT", "ETH", "USDT", tick="0.01", step="0.0001", min_notional="5", start="2300",
              vol=0.001, volume="150", level_qty="5", max_qty="100000"),
        _spec("BTCUSDC", "BTC", "USDC", tick="0.01", step="0.00001", min_notional="5", start="42000",
              vol=0.0008, volume="3", level_qty="0.2"),
        _spec("ETHBTC", "ETH", "BTC", tick="0.00001", step="0.0001", min_notional="0.0001", start="0.055",
              vol=0.0006, volume="40", level_qty="5", max_qty="100000"),
        _spec("BNBUSDT", "BNB", "USDT", tick="0.01", step="0.001", min_notional="5", start="310",
              vol=0.001, volume="300", level_qty="20", max_qty="900000"),
    )
}  # fmt: skip

DEFAULT_SYMBOLS = ("BTCUSDT", "ETHUSDT", "BTCUSDC")

# The testnet's style: a little of every asset the default symbols trade.
DEFAULT_BALANCES: dict[str, Decimal] = {
    "USDT": Decimal("10000"),
    "USDC": Decimal("10000"),
    "BTC": Decimal("1"),
    "ETH": Decimal("10"),
    "BNB": Decimal("0"),
}


def spec_for(
    filters: SymbolFilters, *, spread_ticks: int | None = None, level_qty: Decimal | None = None
) -> SymbolSpec:
    """The market the backtester trades `filters` on: the paper venue's book for a symbol it
    lists (its level sizes and spread), else a book whose first level takes any order, one tick
    wide. `spread_ticks` and `level_qty` override the book's."""
    known = CATALOG.get(filters.symbol)
    if known is not None:
        spec = msgspec.structs.replace(known, filters=filters)
    else:
        spec = SymbolSpec(filters=filters, start_price=filters.tick_size, volatility=0.0, volume=ZERO,
                          level_qty=filters.max_qty)  # fmt: skip
    if spread_ticks is not None:
        spec = msgspec.structs.replace(spec, spread_ticks=spread_ticks)
    if level_qty is not None:
        spec = msgspec.structs.replace(spec, level_qty=level_qty)
    return spec


class UnknownSymbolError(ValueError):
    pass


def select(symbols: Iterable[str]) -> list[SymbolSpec]:
    """The catalog entries for these names, in order; an unknown name is an error naming the choices."""
    chosen = []
    for name in symbols:
        key = name.strip().upper()
        if not key:
            continue
        if key not in CATALOG:
            raise UnknownSymbolError(f"unknown symbol {key!r}; the paper venue lists {', '.join(CATALOG)}")
        chosen.append(CATALOG[key])
    return chosen
