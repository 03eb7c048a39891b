"""The market's own prints, kept for the public trade endpoints of both faces.

One print per market step that traded (control-API price pushes trade nothing), the ones the
Binance `@trade` / `@aggTrade` streams and Bybit's `publicTrade` topic push. The venue holds one
tape (Venue.tape) that both faces read: the same trades, ids and aggressor sides on either
protocol. Memory only: a restarted or reset venue starts it empty.
"""

from __future__ import annotations

from collections import deque
from typing import TYPE_CHECKING

from services.exchange_sim.market import Tick

if TYPE_CHECKING:  # the venue makes its tape
    from services.exchange_sim.venue import Venue

TAPE_LENGTH = 1000  # prints kept per symbol: Binance's largest `limit` (Bybit's is 60)


def buyer_maker(trade_id: int) -> bool:
    """The print's aggressor side, made up but fixed per id (the streams and REST agree)."""
    return trade_id % 2 == 0


class Tape:
    """The latest prints of each symbol, oldest first."""

    def __init__(self, venue: Venue) -> None:
        self.prints: dict[str, deque[Tick]] = {s: deque(maxlen=TAPE_LENGTH) for s in venue.market.symbols}
        venue.market.add_listener(self._on_ticks)
        venue.on_reset.append(self.reset)

    def reset(self) -> None:
        for prints in self.prints.values():
            prints.clear()

    def _on_ticks(self, ticks: list[Tick]) -> None:
        for tick in ticks:
            if tick.qty > 0 and tick.symbol in self.prints:
                self.prints[tick.symbol].append(tick)

    def recent(self, symbol: str, limit: int) -> list[Tick]:
        """The latest `limit` prints, newest first (as Bybit lists them)."""
        prints = self.prints.get(symbol, ())
        return list(reversed(prints))[:limit]
