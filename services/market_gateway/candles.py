"""One candle stream's writer: live closed candles and REST backfill, strictly in open-time order.

Everything for one stream goes through one queue and one task, so a backfill and a live candle
can never race (a live candle written first would make the older backfilled ones impossible to
add: stream ids only grow). The entry id is `{open_time_ms}-1`: a candle already stored is
refused by Redis ("equal or smaller") and only counted, so restarts and replays cannot duplicate.

A live candle that is not the successor of the stream's newest one first pulls the missing ones
over REST; a sync request (start, reconnect, REST polling) pulls everything closed since the
newest stored candle, or the last `warmup` candles into an empty stream. The stream itself is the
only position kept: nothing else needs to survive a crash.
"""

from __future__ import annotations

import asyncio
import logging
import time

import redis.asyncio as aioredis
from redis.exceptions import ResponseError

from services.market_gateway.backfill import closed_pages, newest_open
from services.market_gateway.metrics import gateway_metrics
from services.market_gateway.plan import CandleKey
from services.market_gateway.venue import KlineSource
from shared.codec import encode
from shared.history import last_open_time
from shared.messages import Candle
from shared.streams import candle_entry_id

log = logging.getLogger("automata.market_gateway.candles")

SYNC = object()  # queue item: backfill everything closed since the stream's newest candle
MAX_BACKOFF_S = 10.0


def is_duplicate(exc: BaseException) -> bool:
    return isinstance(exc, ResponseError) and "equal or smaller" in str(exc)


class CandleWriter:
    def __init__(
        self, redis: aioredis.Redis, key: CandleKey, rest: KlineSource, *, maxlen: int, warmup: int
    ) -> None:
        self.redis, self.key, self.rest = redis, key, rest
        self.stream = key.stream
        self.iv = key.interval_ms
        self.maxlen, self.warmup = maxlen, warmup
        self.last_open: int | None = None
        self.live_floor = 0  # candles opening before this are known closed (from the socket)
        self._top = 0  # newest open time stored or queued
        self._queue: asyncio.Queue[object] = asyncio.Queue()
        self._sync_queued = False
        m = gateway_metrics()
        self._m_live = m.entries.labels(self.stream, "live")
        self._m_backfill = m.entries.labels(self.stream, "backfill")
        self._m_backfilled = m.backfilled.labels(self.stream)
        self._m_dup = m.duplicates.labels(self.stream)
        self._m_lag = m.feed_lag.labels(self.stream)

    # -- called from the socket side (never blocks) -------------------------------------------

    def seen(self, open_time: int, candle: Candle | None) -> None:
        """A kline update from the socket: a closed candle (queued), or the one still forming,
        which proves every candle before it closed: if one of those never reached the stream (a
        dropped message, or one that closed before the socket was up), sync pulls it over REST."""
        if candle is not None:
            self._raise_floor(open_time + self.iv)
            self._top = max(self._top, open_time)
            self._m_lag.set(time.time() - (candle.close_time + 1) / 1000)
            self._queue.put_nowait(candle)
        elif self._raise_floor(open_time) and (not self._top or open_time > self._top + self.iv):
            # _top is 0 before the first write has come back: nothing proves the stream holds
            # the candle before this one, so sync (a sync with nothing missing costs one XREVRANGE)
            self.request_sync()

    def _raise_floor(self, floor: int) -> bool:
        if floor > self.live_floor:
            self.live_floor = floor
            return True
        return False

    def request_sync(self) -> None:
        """Backfill up to now (coalesced: one queued request covers all asked so far)."""
        if not self._sync_queued:
            self._sync_queued = True
            self._queue.put_nowait(SYNC)

    # -- the stream's task ---------------------------------------------------------------------

    async def run(self) -> None:
        backoff = 0.2
        while True:
            item = await self._queue.get()
            while True:
                try:
                    await self._handle(item)
                    backoff = 0.2
                    break
                except asyncio.CancelledError:
                    raise
                except Exception as exc:  # REST or Redis trouble: retry the same item, in order
                    log.warning(
                        "%s: %s failed (%s: %s); retrying in %.1fs",
                        self.stream,
                        "sync" if item is SYNC else "candle",
                        type(exc).__name__,
                        exc,
                        backoff,
                    )
                    await asyncio.sleep(backoff)
                    backoff = min(backoff * 2, MAX_BACKOFF_S)

    async def _handle(self, item: object) -> None:
        if item is SYNC:
            self._sync_queued = False
            await self._sync()
        else:
            assert isinstance(item, Candle)
            await self._live(item)

    async def _sync(self) -> None:
        while True:
            floor = self.live_floor
            await self._sync_once()
            if self.live_floor == floor:  # else the socket proved more candles closed meanwhile
                return

    async def _sync_once(self) -> None:
        # re-read the top: the stream is the truth (another writer, a Redis restart)
        self.last_open = await last_open_time(self.redis, self.stream)
        self._top = max(self._top, self.last_open or 0)
        if self.last_open is not None:
            start = self.last_open + self.iv
        elif self.warmup > 0:
            newest = await newest_open(self.rest, self.key.symbol, self.key.interval)
            if newest is None:
                return
            newest_closed = newest if newest < self.live_floor else newest - self.iv
            start = newest_closed - (self.warmup - 1) * self.iv
        else:
            return  # no history wanted: the stream starts with the next live candle
        await self._backfill(start, closed_before=self.live_floor)

    async def _live(self, candle: Candle) -> None:
        if self.last_open is None and self.warmup > 0:
            await self._backfill(candle.open_time - self.warmup * self.iv, stop_ms=candle.open_time)
        elif self.last_open is not None and candle.open_time > self.last_open + self.iv:
            await self._backfill(self.last_open + self.iv, stop_ms=candle.open_time)  # a gap
        if self.last_open is not None and candle.open_time <= self.last_open:
            self._m_dup.inc()
            return
        if await self._write([candle]):
            self._m_live.inc()

    async def _backfill(self, start: int, *, stop_ms: int | None = None, closed_before: int = 0) -> None:
        pages = closed_pages(
            self.rest,
            self.key.symbol,
            self.key.interval,
            self.iv,
            start,
            stop_ms=stop_ms,
            closed_before=closed_before,
        )
        async for page in pages:
            written = await self._write(page)
            if written:
                self._m_backfill.inc(written)
                self._m_backfilled.inc(written)
                log.info("%s: backfilled %d candle(s) up to %d", self.stream, written, page[-1].open_time)

    async def _write(self, candles: list[Candle]) -> int:
        """XADD each with id `{open_time}-1` in one pipeline; returns how many were new."""
        pipe = self.redis.pipeline(transaction=False)
        for c in candles:
            pipe.xadd(
                self.stream, encode(c), id=candle_entry_id(c.open_time), maxlen=self.maxlen, approximate=True
            )
        results = await pipe.execute(raise_on_error=False)
        written = 0
        for c, result in zip(candles, results, strict=True):
            if isinstance(result, Exception):
                if not is_duplicate(result):
                    raise result
                self._m_dup.inc()
            else:
                written += 1
            if self.last_open is None or c.open_time > self.last_open:
                self.last_open = c.open_time
                self._top = max(self._top, c.open_time)
        return written
