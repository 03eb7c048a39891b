"""Candle history straight from the candle streams, so a strategy runner warms up without calling
the exchange (the market gateway keeps `md:candles:*` complete; see services/market_gateway).

Entry ids are `{open_time_ms}-1`, so the id alone says which candle an entry is.
"""

from __future__ import annotations

import logging

import redis.asyncio as aioredis

from shared import streams
from shared.codec import DecodeError, decode
from shared.messages import Candle

log = logging.getLogger("automata.history")


def open_time_of(entry_id: bytes | str) -> int:
    """The candle open time (ms) an entry id `{open_time_ms}-1` stands for."""
    text = entry_id.decode() if isinstance(entry_id, bytes) else entry_id
    return int(text.split("-", 1)[0])


async def last_open_time(redis: aioredis.Redis, stream: str) -> int | None:
    """Open time of the newest candle stored in `stream`, or None when the stream is empty."""
    entries = await redis.xrevrange(stream, count=1)
    return open_time_of(entries[0][0]) if entries else None


async def candle_history(
    redis: aioredis.Redis,
    venue: str,
    symbol: str,
    interval: str,
    n: int,
    *,
    before_ms: int | None = None,
) -> list[Candle]:
    """The last `n` closed candles, oldest first (one XREVRANGE).

    `before_ms`: only candles that opened before this time (e.g. the first live candle a runner
    is about to handle, so warm-up and live input never overlap)."""
    if n <= 0:
        return []
    top = "+" if before_ms is None else f"({before_ms}-1"
    entries = await redis.xrevrange(streams.candles(venue, symbol, interval), max=top, min="-", count=n)
    out: list[Candle] = []
    for entry_id, fields in reversed(entries):
        try:
            msg = decode(fields)
        except DecodeError as exc:
            log.warning("skipping undecodable candle entry %r: %s", entry_id, exc)
            continue
        if isinstance(msg, Candle):
            out.append(msg)
    return out
