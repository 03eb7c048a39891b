"""The Bybit V5 spot public tape: `market/recent-trade` and the `publicTrade.{symbol}` topic.

Each market step that traded (volume above zero) is one public trade at the step's price,
its taker side the one the Binance face's `@trade` stream shows (buyer maker on even trade
ids), so both faces tell the same tape. The last RECENT of each symbol are kept for the REST
list (Bybit's spot limit: 60); a restarted venue's list refills as the market steps.
"""

from __future__ import annotations

from collections import deque
from typing import Any

from services.exchange_sim.market import Tick
from services.exchange_sim.venue import Venue
from shared.money import fmt

RECENT = 60  # spot `limit` is [1, 60], default 60


def taker_side(tick: Tick) -> str:
    """Buy or Sell: the aggressor, as Binance's `m` (buyer is maker) flag tells it."""
    return "Sell" if tick.trade_id % 2 == 0 else "Buy"


def rest_trade(tick: Tick) -> dict[str, Any]:
    return {
        "execId": str(tick.trade_id),
        "symbol": tick.symbol,
        "price": fmt(tick.price),
        "size": fmt(tick.qty),
        "side": taker_side(tick),
        "time": str(tick.time),
        "isBlockTrade": False,
    }


def ws_trade(tick: Tick) -> dict[str, Any]:
    return {
        "T": tick.time,
        "s": tick.symbol,
        "S": taker_side(tick),
        "v": fmt(tick.qty),
        "p": fmt(tick.price),
        "i": str(tick.trade_id),
        "BT": False,
    }


class PublicTape:
    """The latest public trades of each symbol, newest last."""

    def __init__(self, venue: Venue) -> None:
        self._recent: dict[str, deque[Tick]] = {}
        venue.market.add_listener(self.on_ticks)
        venue.on_reset.append(self._recent.clear)

    def on_ticks(self, ticks: list[Tick]) -> None:
        for tick in ticks:
            if tick.qty > 0:
                self._recent.setdefault(tick.symbol, deque(maxlen=RECENT)).append(tick)

    def recent(self, symbol: str, limit: int) -> list[Tick]:
        """Newest first, as Bybit lists them."""
        return list(reversed(self._recent.get(symbol, ())))[:limit]
