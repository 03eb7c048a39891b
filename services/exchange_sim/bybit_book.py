"""Bybit V5 spot `orderbook.{depth}.{symbol}` (depth 1, 50, 200 or 1000): the synthetic book's levels.

Level 1 is snapshot only (docs/v5/websocket/public/orderbook, changelog 2025-03-20): a
subscriber gets the current book at once, then a snapshot each time the top of the book
changes. Deeper books are sent the same way, a whole `snapshot` at each change, never a
`delta`: Bybit's page tells a client to reset its book on every snapshot, and the synthetic
book moves as one piece with the price (its levels and sizes are a function of it), so a
delta would carry nearly every level anyway. `u` (update id) counts a symbol's changes; `seq` (cross sequence) is the market's step
count, so it orders pushes across symbols; `ts` is the venue's clock, `cts` the matching time.
Bybit also re-sends an unchanged level-1 book every 3 s; the paper venue does not (its market
moves only by steps, and a reader keeps the last book anyway).
"""

from __future__ import annotations

from typing import Any

from services.exchange_sim.venue import Venue
from shared.matching.model import EngineError, Quote
from shared.money import fmt

Message = dict[str, Any]


class BookTopics:
    """The last book top seen per (symbol, depth) and its update id."""

    def __init__(self, venue: Venue) -> None:
        self.venue = venue
        self._last: dict[tuple[str, int], tuple[Quote, int]] = {}

    def snapshot(self, symbol: str, depth: int, time_ms: int, *, changed_only: bool) -> Message | None:
        """The symbol's `orderbook.{depth}` push; None when `changed_only` and the top did not
        move (or the symbol has no price yet)."""
        try:
            quote = self.venue.engine.quote(symbol)
        except EngineError:  # no price yet: nothing to show
            return None
        last = self._last.get((symbol, depth))
        moved = last is None or _top(last[0]) != _top(quote)
        if not moved and changed_only:
            return None
        update_id = (last[1] if last is not None else 0) + (1 if moved else 0)
        self._last[(symbol, depth)] = (quote, update_id)
        if depth == 1:
            bids = [(quote.bid, quote.bid_qty)] if quote.bid_qty > 0 else []
            asks = [(quote.ask, quote.ask_qty)] if quote.ask_qty > 0 else []
        else:
            book = self.venue.engine.depth(symbol, depth)
            bids, asks = book.bids, book.asks
        return {
            "topic": f"orderbook.{depth}.{symbol}",
            "ts": self.venue.clock.now_ms(),  # spot: "ts" before "type", as Bybit sends it
            "type": "snapshot",
            "data": {
                "s": symbol,
                "b": [[fmt(price), fmt(qty)] for price, qty in bids],
                "a": [[fmt(price), fmt(qty)] for price, qty in asks],
                "u": update_id,
                "seq": self.venue.market.steps,
            },
            "cts": time_ms,
        }


def _top(quote: Quote) -> tuple[Any, ...]:
    return (quote.bid, quote.bid_qty, quote.ask, quote.ask_qty)
