"""Book tickers into `md:book:{venue}:{SYMBOL}` (MAXLEN ~), batched by arrival.

The socket side only appends to a buffer; one task writes what piled up (see _gather): idle, a
ticker goes out at once; under load, one round trip carries many.
A batch is ONE command (a small Lua script doing the XADDs inside Redis): redis-py's cost is per
command, and with a pipelined XADD per ticker the gateway managed about 17,000 tickers/s on two
cores, about 50,000 this way (bench/market_gateway.py). The script touches all the venue's book
streams, which is fine on one Redis; on a Redis Cluster they would need a common hash tag.

A book ticker is only worth its freshness: when Redis is away the buffer is bounded and the
oldest are dropped (and counted) rather than replayed late.
"""

from __future__ import annotations

import asyncio
import logging

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from services.market_gateway.metrics import gateway_metrics
from shared import streams
from shared.codec import encode_json
from shared.messages import BookTicker
from shared.redis_conn import TRANSIENT_ERRORS

log = logging.getLogger("automata.market_gateway.books")

MAX_BUFFER = 50_000
MAX_BATCH = 2_000
MAX_YIELDS = 64
QUIET_YIELDS = 3
_TAG = BookTicker.__struct_config__.tag
_VERSION = str(BookTicker.VERSION)

# KEYS: the venue's book streams. ARGV: maxlen, type, v, then (key index, data) pairs.
# Each XADD writes the same envelope as shared.codec.encode (type, v, data).
XADD_MANY = """
local n = 0
for i = 4, #ARGV, 2 do
  redis.call('XADD', KEYS[tonumber(ARGV[i])], 'MAXLEN', '~', ARGV[1], '*',
             'type', ARGV[2], 'v', ARGV[3], 'data', ARGV[i + 1])
  n = n + 1
end
return n
"""


class BookWriter:
    def __init__(
        self, redis: aioredis.Redis, venue: str, symbols: tuple[str, ...] | list[str], *, maxlen: int
    ):
        self.redis, self.venue, self.maxlen = redis, venue, maxlen
        self._keys = [streams.book(venue, s) for s in symbols]
        self._index = {s: str(i + 1) for i, s in enumerate(symbols)}  # Lua KEYS are 1-based
        self._buf: list[tuple[str, bytes]] = []
        self._wake = asyncio.Event()
        self._script = redis.register_script(XADD_MANY)
        m = gateway_metrics()
        self._m_dropped = m.book_dropped.labels(venue)
        self._m_written = {
            i: m.entries.labels(key, "live") for i, key in zip(self._index.values(), self._keys, strict=True)
        }

    def add(self, symbol: str, ticker: BookTicker) -> None:
        self._buf.append((self._index[symbol], encode_json(ticker)))
        if len(self._buf) > MAX_BUFFER:
            drop = len(self._buf) - MAX_BUFFER
            del self._buf[:drop]
            self._m_dropped.inc(drop)
        self._wake.set()

    async def run(self) -> None:
        while True:
            await self._wake.wait()
            await self._gather()
            self._wake.clear()
            pending, self._buf = self._buf, []  # what came later waits for the next gap
            for i in range(0, len(pending), MAX_BATCH):
                batch = pending[i : i + MAX_BATCH]
                try:
                    await self._write(batch)
                except (*TRANSIENT_ERRORS, RedisError) as exc:  # away, or refusing (OOM, BUSY...)
                    self._m_dropped.inc(len(batch))
                    log.warning(
                        "%d book tickers dropped: redis said %s: %s", len(batch), type(exc).__name__, exc
                    )
                    await asyncio.sleep(0.5)

    async def _gather(self) -> None:
        """Let tickers already on their way (read off the socket, not yet parsed) join this batch:
        yield to the event loop while they keep arriving, at most MAX_YIELDS times. Idle, this
        costs a few loop turns (microseconds); under load, batches grow to hundreds."""
        quiet = 0
        for _ in range(MAX_YIELDS):
            n = len(self._buf)
            await asyncio.sleep(0)
            if len(self._buf) >= MAX_BATCH:
                return
            quiet = quiet + 1 if len(self._buf) == n else 0
            if quiet >= QUIET_YIELDS:
                return

    async def _write(self, batch: list[tuple[str, bytes]]) -> None:
        args: list[str | bytes | int] = [self.maxlen, _TAG, _VERSION]
        counts: dict[str, int] = {}
        for index, data in batch:
            args.append(index)
            args.append(data)
            counts[index] = counts.get(index, 0) + 1
        await self._script(keys=self._keys, args=args)
        for index, n in counts.items():
            self._m_written[index].inc(n)
