"""What a strategy may know besides its params and state, handed in by the driver per event.

Everything here comes from the driver (live runner or backtester), never from the clock or
the network: `now` is the event's own time, `history` the last closed candles, `balances` the
latest known free balances. A strategy that reads only this stays pure and replayable.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal

from shared import display
from shared.filters import SymbolFilters
from shared.messages import Candle


@dataclass(frozen=True, slots=True)
class StrategyContext:
    bot: str
    venue: str
    symbol: str
    interval: str
    filters: SymbolFilters
    now: int  # ms, the time of the event being handled
    history: Sequence[Candle] = ()  # last closed candles, oldest first (Strategy.history_size of them)
    balances: Mapping[str, Decimal] | None = None  # free balance per asset, None when unknown

    @property
    def base_asset(self) -> str:
        return self.filters.base_asset

    @property
    def quote_asset(self) -> str:
        return self.filters.quote_asset

    @property
    def last_price(self) -> Decimal | None:
        """Close of the newest candle in the history window, if any."""
        return self.history[-1].close if self.history else None

    def price(self, value: Decimal) -> str:
        """A price as the bot's texts show it: to the symbol's tick ("42,016.04")."""
        return display.price(value, self.filters.tick_size)

    def qty(self, value: Decimal) -> str:
        """A base quantity as the bot's texts show it: to the symbol's step ("0.00471")."""
        return display.qty(value, self.filters.step_size)

    def quote(self, value: Decimal) -> str:
        """A quote amount (profit, cost, balance) as the bot's texts show it: to the cent ("0.42")."""
        return display.quote(value)

    def free(self, asset: str) -> Decimal | None:
        """Free balance of asset, or None when the driver does not know balances."""
        if self.balances is None:
            return None
        return self.balances.get(asset, Decimal(0))
