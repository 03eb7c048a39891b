"""What the gateway needs from a venue, whatever its protocol: REST klines and one market socket.

An adapter (binance_venue.py, bybit_venue.py) turns the venue's wire format into shared messages
and reports socket trouble; everything else (ordering, backfill, stalls) is venue-neutral.
"""

from __future__ import annotations

from typing import Protocol

from services.market_gateway.plan import CandleKey, VenuePlan
from shared.messages import BookTicker, Candle
from shared.ratelimit import Limiter

# What parsing a malformed venue message raises (a missing field, a bad number or type).
BAD_MESSAGE = (KeyError, IndexError, TypeError, ValueError, ArithmeticError, AttributeError)


class KlineSource(Protocol):
    """Public REST market data."""

    max_limit: int  # most klines one request returns

    async def klines(
        self, symbol: str, interval: str, start_ms: int | None, end_ms: int | None, limit: int
    ) -> list[Candle]:
        """Candles with start_ms <= open_time <= end_ms (None: unbounded; neither: the newest
        `limit`), oldest first; the newest may still be forming (closed=False is not promised)."""
        ...

    async def close(self) -> None: ...


class FeedSink(Protocol):
    """Where a socket delivers. Called on the event loop, never from another thread."""

    def on_kline(self, key: CandleKey, open_time: int, candle: Candle | None) -> None:
        """A kline update for the candle opening at open_time: the candle once it closed, None
        while it is still forming (then it only says the feed is alive and where it stands)."""

    def on_book(self, symbol: str, ticker: BookTicker) -> None: ...

    def on_down(self, reason: str) -> None:
        """The socket dropped (it may come back by itself); data after this means it is up again."""


class MarketSocket(Protocol):
    async def run(self, sink: FeedSink) -> None:
        """Connect, subscribe, deliver until the socket is dead for good (then return or raise);
        the caller then builds a new one. Cancellation closes it."""
        ...


def make_rest(plan: VenuePlan, limiter: Limiter) -> KlineSource:
    if plan.protocol == "bybit":
        from services.market_gateway.bybit_venue import BybitRest

        return BybitRest(plan, limiter)
    from services.market_gateway.binance_venue import BinanceRest

    return BinanceRest(plan, limiter)


def make_socket(plan: VenuePlan) -> MarketSocket:
    if plan.protocol == "bybit":
        from services.market_gateway.bybit_venue import BybitSocket

        return BybitSocket(plan)
    from services.market_gateway.binance_venue import BinanceSocket

    return BinanceSocket(plan)


def ws_url(http_url: str) -> str:
    """http://host:port -> ws://host:port (https -> wss)."""
    if http_url.startswith("https://"):
        return "wss://" + http_url[len("https://") :]
    if http_url.startswith("http://"):
        return "ws://" + http_url[len("http://") :]
    return http_url
