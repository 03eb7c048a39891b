"""Binance protocol (Binance, Binance Spot Testnet, the paper venue): python-binance's AsyncClient
for REST klines and one BinanceSocketManager multiplex socket for every kline and bookTicker stream.

python-binance would reconnect a dropped socket by itself, with random waits of up to 16 s, then
give up (an error dict, then its read loop ends). It is told not to (MAX_RECONNECTS = 1): a drop
yields the error dicts, `run()` returns, and the feed reconnects on its own schedule.
"""

from __future__ import annotations

import asyncio
import logging
import time
from decimal import Decimal
from typing import Any

from services.market_gateway.metrics import gateway_metrics
from services.market_gateway.plan import CandleKey, VenuePlan
from services.market_gateway.venue import BAD_MESSAGE, FeedSink, ws_url
from shared import streams
from shared.binance_close import close_client, close_socket_now
from shared.binance_lean import AsyncClient, BinanceAPIException, BinanceSocketManager, ReconnectingWebsocket
from shared.messages import BookTicker, Candle
from shared.ratelimit import Limiter, Priority

log = logging.getLogger("automata.market_gateway.binance")

KLINES_LIMIT = 1000
KLINES_WEIGHT = 2
QUEUE_SIZE = 100_000  # python-binance stops reading for good when its queue overflows
READ_LOOP_CHECK_S = 0.5
READ_TIMEOUT_S = 1.0
# Error types after which python-binance's read loop has ended: build a new socket.
FATAL_ERRORS = frozenset(
    {"BinanceWebsocketUnableToConnect", "BinanceWebsocketQueueOverflow", "CancelledError"}
)


def kline_stream_name(key: CandleKey) -> str:
    return f"{key.symbol.lower()}@kline_{key.interval}"


def book_stream_name(symbol: str) -> str:
    return f"{symbol.lower()}@bookTicker"


def parse_kline(venue: str, symbol: str, k: dict[str, Any]) -> Candle:
    """The `k` object of a kline event -> Candle (closed flag from `x`)."""
    interval = k["i"]
    if not isinstance(interval, str):  # a Candle checks no types: consumers would dead-letter it
        raise TypeError(f"kline interval {interval!r} is not a string")
    return Candle(
        venue=venue,
        symbol=symbol,
        interval=interval,
        open_time=int(k["t"]),
        close_time=int(k["T"]),
        open=Decimal(k["o"]),
        high=Decimal(k["h"]),
        low=Decimal(k["l"]),
        close=Decimal(k["c"]),
        volume=Decimal(k["v"]),
        quote_volume=Decimal(k.get("q", "0")),
        trades=int(k.get("n", 0)),
        closed=bool(k.get("x", False)),
    )


def parse_rest_kline(venue: str, symbol: str, interval: str, row: list[Any]) -> Candle:
    """One row of GET /api/v3/klines (12 columns)."""
    return Candle(
        venue=venue,
        symbol=symbol,
        interval=interval,
        open_time=int(row[0]),
        close_time=int(row[6]),
        open=Decimal(row[1]),
        high=Decimal(row[2]),
        low=Decimal(row[3]),
        close=Decimal(row[4]),
        volume=Decimal(row[5]),
        quote_volume=Decimal(row[7]),
        trades=int(row[8]),
    )


def parse_book(venue: str, symbol: str, d: dict[str, Any], now_ms: int) -> BookTicker:
    """A bookTicker event (it carries no event time: the receive time stands in)."""
    return BookTicker(
        venue=venue,
        symbol=symbol,
        bid=Decimal(d["b"]),
        bid_qty=Decimal(d["B"]),
        ask=Decimal(d["a"]),
        ask_qty=Decimal(d["A"]),
        ts=int(d.get("E") or now_ms),
        update_id=int(d.get("u", 0)),
    )


class BinanceRest:
    """Public klines, within the request-weight budget."""

    max_limit = KLINES_LIMIT

    def __init__(self, plan: VenuePlan, limiter: Limiter) -> None:
        self.plan = plan
        self.limiter = limiter
        self._client: AsyncClient | None = None
        m = gateway_metrics()
        self._m_klines = m.rest_requests.labels(plan.name, "klines")

    def _get_client(self) -> AsyncClient:
        if self._client is None:
            # public endpoints only: no keys, so nothing secret can leak from here
            client = AsyncClient(testnet=self.plan.config.testnet)
            if self.plan.base_url:
                client.API_URL = f"{self.plan.base_url}/api"
            self._client = client
        return self._client

    async def _call(self, weight: int, fn_name: str, **params: Any) -> Any:
        await self.limiter.acquire(weight, Priority.BACKFILL)
        client = self._get_client()
        try:
            result = await getattr(client, fn_name)(**params)
        except BinanceAPIException as exc:
            if exc.status_code in (418, 429):
                retry_after = _retry_after(exc)
                self.limiter.block(retry_after, f"HTTP {exc.status_code} from {self.plan.name}")
            raise
        used = _used_weight(client)
        if used is not None:
            self.limiter.observe_used(used)
        return result

    async def klines(
        self, symbol: str, interval: str, start_ms: int | None, end_ms: int | None, limit: int
    ) -> list[Candle]:
        self._m_klines.inc()
        params = {"symbol": symbol, "interval": interval, "limit": min(limit, KLINES_LIMIT)}
        if start_ms is not None:
            params["startTime"] = start_ms
        if end_ms is not None:
            params["endTime"] = end_ms
        rows = await self._call(KLINES_WEIGHT, "get_klines", **params)
        return [parse_rest_kline(self.plan.name, symbol, interval, row) for row in rows]

    async def close(self) -> None:
        if self._client is not None:
            await close_client(self._client)
            self._client = None


def _retry_after(exc: BinanceAPIException) -> float:
    try:
        return float(exc.response.headers.get("Retry-After", 60))
    except (AttributeError, TypeError, ValueError):
        return 60.0


def _used_weight(client: AsyncClient) -> int | None:
    response = getattr(client, "response", None)
    if response is None:
        return None
    value = response.headers.get("x-mbx-used-weight-1m")
    return int(value) if value and value.isdigit() else None


_ENDED = object()


async def _until_read_loop_ends(socket: ReconnectingWebsocket, queue: asyncio.Queue[Any]) -> None:
    while socket._handle_read_loop is not None:  # noqa: ASYNC110 - the library offers no event
        await asyncio.sleep(READ_LOOP_CHECK_S)
    queue.put_nowait(_ENDED)


class BinanceSocket:
    """One multiplex socket for all kline + bookTicker streams of a venue."""

    def __init__(self, plan: VenuePlan) -> None:
        self.plan = plan
        self._klines = {kline_stream_name(k): k for k in plan.candles}
        self._books = {book_stream_name(s): s for s in plan.books}
        m = gateway_metrics()
        self._m_msgs = {
            name: m.ws_messages.labels(plan.name, key.stream) for name, key in self._klines.items()
        }
        self._m_msgs.update(
            {
                name: m.ws_messages.labels(plan.name, streams.book(plan.name, s))
                for name, s in self._books.items()
            }
        )

    @property
    def stream_names(self) -> list[str]:
        return [*self._klines, *self._books]

    async def run(self, sink: FeedSink) -> None:
        client = AsyncClient(testnet=self.plan.config.testnet)
        try:
            manager = BinanceSocketManager(client, max_queue_size=QUEUE_SIZE)
            if self.plan.base_url:
                manager.STREAM_URL = ws_url(self.plan.base_url) + "/"
            socket = manager.multiplex_socket(self.stream_names)
            socket.TIMEOUT = READ_TIMEOUT_S  # its reader notices a stop only between reads
            # no reconnects inside the library (random waits of up to 16 s): a drop ends run()
            # and the feed reconnects on its own schedule, backfilling on the first data
            socket.MAX_RECONNECTS = 1
            async with socket:
                try:
                    await self._read(socket, sink)
                finally:
                    await close_socket_now(socket)  # a stop ends its pending read at once
        finally:
            await close_client(client)

    async def _read(self, socket: ReconnectingWebsocket, sink: FeedSink) -> None:
        """Messages straight from python-binance's queue (library pinned at 1.0.37): recv() adds a
        wait_for task per message to the library's own, and a burst is handed over at once here.
        A watcher puts _ENDED on the queue when the library's read loop has stopped (recv() would
        raise ReadLoopClosed then)."""
        queue: asyncio.Queue[Any] = socket._queue
        watcher = asyncio.create_task(_until_read_loop_ends(socket, queue))
        try:
            while True:
                msg = await queue.get()
                while True:
                    if msg is _ENDED or (msg and not self._dispatch(msg, sink)):
                        return
                    if queue.empty():
                        break
                    msg = queue.get_nowait()
        finally:
            watcher.cancel()

    def _dispatch(self, msg: dict[str, Any], sink: FeedSink) -> bool:
        """Hand one message to the sink; False when the socket is finished. A malformed message is
        logged and skipped: the venue's mistake must not cost the other streams their socket."""
        try:
            return self._route(msg, sink)
        except BAD_MESSAGE as exc:
            log.warning(
                "%s: skipping a malformed message (%s: %s): %.300s",
                self.plan.name,
                type(exc).__name__,
                exc,
                msg,
            )
            return True

    def _route(self, msg: dict[str, Any], sink: FeedSink) -> bool:
        data = msg.get("data")
        if data is None:
            if msg.get("e") == "error":
                kind = str(msg.get("type", "error"))
                sink.on_down(kind)
                return kind not in FATAL_ERRORS
            return True
        name = msg.get("stream", "")
        counter = self._m_msgs.get(name)
        if counter is not None:
            counter.inc()
        key = self._klines.get(name)
        if key is not None:
            k = data["k"]
            candle = parse_kline(self.plan.name, key.symbol, k) if k.get("x") else None
            sink.on_kline(key, int(k["t"]), candle)
            return True
        symbol = self._books.get(name)
        if symbol is not None:
            sink.on_book(symbol, parse_book(self.plan.name, symbol, data, int(time.time() * 1000)))
        return True
