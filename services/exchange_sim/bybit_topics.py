"""Bybit V5 WebSocket topic names and kline intervals: parsing and validation in one place."""

from __future__ import annotations

from typing import NamedTuple

# Bybit interval -> the shared candle interval name (shared.candle_files.INTERVAL_MS keys)
KLINE_INTERVALS = {
    "1": "1m",
    "3": "3m",
    "5": "5m",
    "15": "15m",
    "30": "30m",
    "60": "1h",
    "120": "2h",
    "240": "4h",
    "360": "6h",
    "720": "12h",
    "D": "1d",
    "W": "1w",
}
BOOK_DEPTHS = frozenset({"1", "50", "200", "1000"})  # the spot orderbook depths Bybit serves
PRIVATE_TOPICS = frozenset({"order", "execution", "wallet"})


class TopicError(ValueError):
    """A topic this venue does not serve; the text goes into `ret_msg`."""


class PublicTopic(NamedTuple):
    kind: str  # "kline" | "tickers" | "orderbook" | "publicTrade"
    symbol: str
    interval: str = ""  # Bybit interval (kline) or depth (orderbook)

    @property
    def name(self) -> str:
        if self.kind in ("tickers", "publicTrade"):
            return f"{self.kind}.{self.symbol}"
        return f"{self.kind}.{self.interval}.{self.symbol}"


def parse_public(topic: object, symbols: set[str] | frozenset[str]) -> PublicTopic:
    """`kline.{interval}.{symbol}`, `tickers.{symbol}`, `publicTrade.{symbol}` or
    `orderbook.{depth}.{symbol}` (depth 1, 50, 200 or 1000) for a listed symbol, else TopicError."""
    if not isinstance(topic, str):
        raise TopicError(f"Invalid topic :[{topic}]")
    parts = topic.split(".")
    if parts[0] == "kline" and len(parts) == 3 and parts[1] in KLINE_INTERVALS:
        parsed = PublicTopic("kline", parts[2], parts[1])
    elif parts[0] == "orderbook" and len(parts) == 3 and parts[1] in BOOK_DEPTHS:
        parsed = PublicTopic("orderbook", parts[2], parts[1])
    elif parts[0] in ("tickers", "publicTrade") and len(parts) == 2:
        parsed = PublicTopic(parts[0], parts[1])
    else:
        raise TopicError(f"Invalid topic :[{topic}]")
    if parsed.symbol not in symbols:
        raise TopicError(f"Invalid symbol :[{topic}]")
    return parsed


def parse_private(topic: object) -> str:
    """One of order / execution / wallet (the all-in-one topics pybit subscribes), else TopicError."""
    if topic in PRIVATE_TOPICS:
        return str(topic)
    if isinstance(topic, str) and topic.endswith(".spot") and topic[:-5] in PRIVATE_TOPICS:
        return topic
    raise TopicError(f"Invalid topic :[{topic}]")
