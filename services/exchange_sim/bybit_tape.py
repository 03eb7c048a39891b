"""The Bybit V5 spot public tape: `market/recent-trade` and the `publicTrade.{symbol}` topic.

Each market step that traded (volume above zero) is one public trade at the step's price,
read from the venue's tape (tape.py), which the Binance face reads too: both faces tell the
same trades, ids and taker sides. The REST list gives at most RECENT (Bybit's spot limit: 60).
"""

from __future__ import annotations

from typing import Any

from services.exchange_sim.market import Tick
from services.exchange_sim.tape import buyer_maker
from shared.money import fmt

RECENT = 60  # spot `limit` is [1, 60], default 60


def taker_side(tick: Tick) -> str:
    """Buy or Sell: the aggressor, as Binance's `m` (buyer is maker) flag tells it."""
    return "Sell" if buyer_maker(tick.trade_id) else "Buy"


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
