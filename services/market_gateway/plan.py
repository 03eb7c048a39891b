"""What the gateway subscribes to, worked out from `[market_gateway]` once at start (pure).

Feeds of one venue are merged: one socket per venue carries every kline and book ticker stream.
"""

from __future__ import annotations

from dataclasses import dataclass

from shared import streams
from shared.candle_files import interval_ms
from shared.config import AppConfig, ConfigError, VenueConfig, config_path

DEFAULT_SIM_URL = "http://127.0.0.1:8800"

# Bybit's kline interval names; the others (1s, 8h, 3d) do not exist there.
BYBIT_INTERVALS = {
    "1m": "1",
    "3m": "3",
    "5m": "5",
    "15m": "15",
    "30m": "30",
    "1h": "60",
    "2h": "120",
    "4h": "240",
    "6h": "360",
    "12h": "720",
    "1d": "D",
    "1w": "W",
}


@dataclass(frozen=True, slots=True)
class CandleKey:
    """One candle stream: venue (config name), symbol, interval."""

    venue: str
    symbol: str
    interval: str

    @property
    def stream(self) -> str:
        return streams.candles(self.venue, self.symbol, self.interval)

    @property
    def interval_ms(self) -> int:
        return interval_ms(self.interval)


@dataclass(frozen=True, slots=True)
class VenuePlan:
    """Everything read from one venue."""

    name: str
    config: VenueConfig
    candles: tuple[CandleKey, ...]
    books: tuple[str, ...]  # symbols whose book ticker goes to md:book:{venue}:{SYMBOL}

    @property
    def protocol(self) -> str:
        """`binance` or `bybit`: the wire protocol (the paper venue speaks either)."""
        return self.config.protocol if self.config.kind == "sim" else self.config.kind

    @property
    def base_url(self) -> str:
        """REST base URL override ('' = the client library's own default for the venue)."""
        url = self.config.base_url or (DEFAULT_SIM_URL if self.config.kind == "sim" else "")
        return url.rstrip("/")


def build_plan(cfg: AppConfig) -> list[VenuePlan]:
    """One VenuePlan per venue named in `market_gateway.feeds`; ConfigError names the bad field."""
    source = str(config_path())
    candles: dict[str, dict[CandleKey, None]] = {}
    books: dict[str, dict[str, None]] = {}
    for i, feed in enumerate(cfg.market_gateway.feeds):
        where = f"{source}: market_gateway.feeds.{i}"
        venue = cfg.venues.get(feed.venue)
        if venue is None:
            known = ", ".join(sorted(cfg.venues)) or "none"
            raise ConfigError(f"{where}.venue: no venue {feed.venue!r} in [venues] (known: {known})")
        protocol = venue.protocol if venue.kind == "sim" else venue.kind
        for j, interval in enumerate(feed.intervals):
            if protocol == "bybit" and interval not in BYBIT_INTERVALS:
                raise ConfigError(f"{where}.intervals.{j}: Bybit has no {interval!r} klines")
        keys = candles.setdefault(feed.venue, {})
        for symbol in feed.symbols:
            for interval in feed.intervals:
                keys[CandleKey(feed.venue, symbol, interval)] = None
        books.setdefault(feed.venue, {}).update(dict.fromkeys(feed.book_tickers))
    return [
        VenuePlan(name, cfg.venues[name], tuple(keys), tuple(books.get(name, ())))
        for name, keys in candles.items()
    ]
