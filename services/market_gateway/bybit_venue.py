"""Bybit V5 protocol (Bybit, the paper venue): pybit's HTTP for REST klines (sync `requests`, run
in a thread) and pybit's WebSocket for `kline.*` and best bid/ask topics.

pybit's socket lives in its own thread: messages are bridged into asyncio with
`loop.call_soon_threadsafe`. It dies silently when a callback raises (ours never does) or after
its reconnect attempts run out: `run()` watches `is_connected()` and returns so the feed builds a
new one.
"""

from __future__ import annotations

import asyncio
import logging
import time
from decimal import Decimal
from typing import Any

from pybit.unified_trading import HTTP, WebSocket

from services.market_gateway.metrics import gateway_metrics
from services.market_gateway.plan import BYBIT_INTERVALS, CandleKey, VenuePlan
from services.market_gateway.venue import BAD_MESSAGE, FeedSink, ws_url
from shared import streams
from shared.candle_files import interval_ms
from shared.messages import BookTicker, Candle
from shared.ratelimit import Limiter, Priority

log = logging.getLogger("automata.market_gateway.bybit")

KLINES_LIMIT = 1000
DEAD_AFTER_S = 3.0  # disconnected this long: pybit gave up, build a new socket
_OPENED = object()  # markers the pybit thread puts on the queue
_CLOSED = object()


def book_topic(symbol: str) -> str:
    """Best bid/ask: the level-1 order book (spot `tickers` carry no bid/ask on Bybit)."""
    return f"orderbook.1.{symbol}"


def kline_topic(key: CandleKey) -> str:
    return f"kline.{BYBIT_INTERVALS[key.interval]}.{key.symbol}"


def parse_ws_kline(key: CandleKey, item: dict[str, Any]) -> Candle:
    """One element of a `kline.*` message's data list (closed flag from `confirm`)."""
    start = int(item["start"])
    return Candle(
        venue=key.venue,
        symbol=key.symbol,
        interval=key.interval,
        open_time=start,
        close_time=start + key.interval_ms - 1,
        open=Decimal(item["open"]),
        high=Decimal(item["high"]),
        low=Decimal(item["low"]),
        close=Decimal(item["close"]),
        volume=Decimal(item["volume"]),
        quote_volume=Decimal(item.get("turnover") or "0"),
        closed=bool(item.get("confirm", False)),
    )


def parse_rest_kline(venue: str, symbol: str, interval: str, row: list[Any]) -> Candle:
    """One row of GET /v5/market/kline: [start, open, high, low, close, volume, turnover]."""
    start = int(row[0])
    return Candle(
        venue=venue,
        symbol=symbol,
        interval=interval,
        open_time=start,
        close_time=start + interval_ms(interval) - 1,
        open=Decimal(row[1]),
        high=Decimal(row[2]),
        low=Decimal(row[3]),
        close=Decimal(row[4]),
        volume=Decimal(row[5]),
        quote_volume=Decimal(row[6]) if len(row) > 6 else Decimal(0),
    )


class BookState:
    """Best bid/ask of one symbol from `orderbook.1` snapshots/deltas, or from a ticker that
    carries bid1Price/ask1Price; a side missing from a message keeps its last value."""

    __slots__ = ("bid", "bid_qty", "ask", "ask_qty")

    def __init__(self) -> None:
        self.bid = self.bid_qty = self.ask = self.ask_qty = ""

    def update(self, data: dict[str, Any]) -> bool:
        """Apply one message's data; True when both sides are known."""
        if "b" in data or "a" in data:
            bids, asks = data.get("b") or (), data.get("a") or ()
            if bids and bids[0][1] not in ("0", "0.0"):
                self.bid, self.bid_qty = bids[0][0], bids[0][1]
            if asks and asks[0][1] not in ("0", "0.0"):
                self.ask, self.ask_qty = asks[0][0], asks[0][1]
        elif "bid1Price" in data:
            self.bid, self.bid_qty = data["bid1Price"], data.get("bid1Size", "0")
            self.ask, self.ask_qty = data["ask1Price"], data.get("ask1Size", "0")
        return bool(self.bid and self.ask)

    def ticker(self, venue: str, symbol: str, ts: int, update_id: int) -> BookTicker:
        return BookTicker(
            venue=venue,
            symbol=symbol,
            bid=Decimal(self.bid),
            bid_qty=Decimal(self.bid_qty),
            ask=Decimal(self.ask),
            ask_qty=Decimal(self.ask_qty),
            ts=ts,
            update_id=update_id,
        )


class BybitRest:
    """Public klines and server time (pybit HTTP is blocking: each call runs in a thread)."""

    max_limit = KLINES_LIMIT

    def __init__(self, plan: VenuePlan, limiter: Limiter) -> None:
        self.plan = plan
        self.limiter = limiter
        # public data only: no keys. Demo Trading serves market data from the main net.
        self._session = HTTP(testnet=False, timeout=10, max_retries=2, retry_delay=1)
        if plan.base_url:
            self._session.endpoint = plan.base_url
        m = gateway_metrics()
        self._m_klines = m.rest_requests.labels(plan.name, "klines")

    async def klines(
        self, symbol: str, interval: str, start_ms: int | None, end_ms: int | None, limit: int
    ) -> list[Candle]:
        await self.limiter.acquire(1, Priority.BACKFILL)
        self._m_klines.inc()
        params = {"category": "spot", "symbol": symbol, "interval": BYBIT_INTERVALS[interval]}
        params["limit"] = min(limit, KLINES_LIMIT)
        if start_ms is not None:
            params["start"] = start_ms
        if end_ms is not None:
            params["end"] = end_ms
        reply = await asyncio.to_thread(self._session.get_kline, **params)
        rows = reply["result"]["list"]  # newest first
        return sorted(
            (parse_rest_kline(self.plan.name, symbol, interval, row) for row in rows),
            key=lambda c: c.open_time,
        )

    async def close(self) -> None:
        self._session.client.close()


class _PybitSocket(WebSocket):
    """pybit's WebSocket pointed at `url` (the paper venue) and telling us when it opens/closes."""

    def __init__(self, url: str, on_open, on_close, **kwargs: Any) -> None:
        self._url_override = url
        self._on_open_cb = on_open
        self._on_close_cb = on_close
        super().__init__(**kwargs)

    def _connect(self, url: str) -> None:
        super()._connect(self._url_override or url)

    def _on_open(self) -> None:
        super()._on_open()
        self._on_open_cb()

    def _on_close(self) -> None:
        super()._on_close()
        self._on_close_cb()


class BybitSocket:
    """One pybit public spot socket for every kline and book topic of a venue."""

    def __init__(self, plan: VenuePlan) -> None:
        self.plan = plan
        self._klines = {kline_topic(k): k for k in plan.candles}
        self._books = {book_topic(s): s for s in plan.books}
        self._state = {s: BookState() for s in plan.books}
        m = gateway_metrics()
        self._m_msgs = {
            topic: m.ws_messages.labels(plan.name, key.stream) for topic, key in self._klines.items()
        }
        self._m_msgs.update(
            {
                topic: m.ws_messages.labels(plan.name, streams.book(plan.name, s))
                for topic, s in self._books.items()
            }
        )

    def _url(self) -> str:
        return ws_url(self.plan.base_url) + "/v5/public/spot" if self.plan.base_url else ""

    async def run(self, sink: FeedSink) -> None:
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue[Any] = asyncio.Queue()

        def bridge(item: Any) -> None:
            # runs on pybit's thread: must never raise, or pybit drops the socket for good
            try:
                loop.call_soon_threadsafe(queue.put_nowait, item)
            except Exception:  # loop closed while shutting down
                pass

        ws = await asyncio.to_thread(
            _PybitSocket,
            self._url(),
            lambda: bridge(_OPENED),
            lambda: bridge(_CLOSED),
            channel_type="spot",
            testnet=False,
            callback_function=bridge,
            retries=10,
        )
        try:
            await asyncio.to_thread(self._subscribe, ws)
            await self._read(ws, queue, sink)
        finally:
            await asyncio.to_thread(ws.exit)

    def _subscribe(self, ws: WebSocket) -> None:
        """Blocking (pybit waits for the connection): runs in a thread."""
        by_interval: dict[str, list[str]] = {}
        for key in self.plan.candles:
            by_interval.setdefault(BYBIT_INTERVALS[key.interval], []).append(key.symbol)
        for interval, symbols in by_interval.items():
            ws.kline_stream(interval=interval, symbol=symbols, callback=_unused)
        if self.plan.books:
            ws.orderbook_stream(depth=1, symbol=list(self.plan.books), callback=_unused)

    async def _read(self, ws: WebSocket, queue: asyncio.Queue[Any], sink: FeedSink) -> None:
        down_since: float | None = None
        while True:
            try:
                item = await asyncio.wait_for(queue.get(), timeout=1.0)
            except TimeoutError:
                if ws.is_connected():
                    down_since = None
                    continue
                now = time.monotonic()
                if down_since is None:
                    down_since = now
                    sink.on_down("disconnected")
                elif now - down_since > DEAD_AFTER_S:
                    # pybit's retries take milliseconds; still down means it gave up (it stays
                    # "attempting_connection" after giving up, so that flag cannot tell)
                    log.warning("pybit socket down for %.0fs; building a new one", now - down_since)
                    return
                continue
            self._dispatch(item, sink)
            while not queue.empty():
                self._dispatch(queue.get_nowait(), sink)

    def _dispatch(self, msg: Any, sink: FeedSink) -> None:
        """Hand one message to the sink; a malformed one is logged and skipped."""
        try:
            self._route(msg, sink)
        except BAD_MESSAGE as exc:
            log.warning(
                "%s: skipping a malformed message (%s: %s): %.300s",
                self.plan.name,
                type(exc).__name__,
                exc,
                msg,
            )

    def _route(self, msg: Any, sink: FeedSink) -> None:
        if msg is _OPENED:
            return
        if msg is _CLOSED:
            sink.on_down("closed")
            return
        topic = msg.get("topic")
        if topic is None:
            if msg.get("success") is False:
                log.error("bybit refused a subscription: %s", msg.get("ret_msg"))
            return
        counter = self._m_msgs.get(topic)
        if counter is not None:
            counter.inc()
        key = self._klines.get(topic)
        if key is not None:
            for item in msg.get("data") or ():
                candle = parse_ws_kline(key, item) if item.get("confirm") else None
                sink.on_kline(key, int(item["start"]), candle)
            return
        symbol = self._books.get(topic)
        if symbol is not None:
            data = msg.get("data") or {}
            state = self._state[symbol]
            if state.update(data):
                ts = int(msg.get("ts") or time.time() * 1000)
                sink.on_book(symbol, state.ticker(self.plan.name, symbol, ts, int(data.get("u", 0))))


def _unused(_msg: Any) -> None:
    """pybit wants a per-topic callback; ours (callback_function) receives every message raw."""
