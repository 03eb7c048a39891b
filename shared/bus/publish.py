"""Publishing: one XADD, or many pipelined in one round trip."""

from __future__ import annotations

from collections.abc import Iterable

import redis.asyncio as aioredis

from shared.codec import encode
from shared.messages import Message


async def publish(
    redis: aioredis.Redis,
    stream: str,
    msg: Message,
    *,
    maxlen: int | None = None,
    entry_id: str = "*",
) -> bytes:
    """XADD one message (trimmed with MAXLEN ~ maxlen when given); returns the entry id."""
    return await redis.xadd(stream, encode(msg), id=entry_id, maxlen=maxlen, approximate=True)


async def publish_many(
    redis: aioredis.Redis,
    items: Iterable[tuple[str, Message]],
    *,
    maxlen: int | None = None,
) -> list[bytes]:
    """XADD many (stream, message) pairs in one pipelined round trip (not a transaction)."""
    pipe = redis.pipeline(transaction=False)
    for stream, msg in items:
        pipe.xadd(stream, encode(msg), maxlen=maxlen, approximate=True)
    return await pipe.execute()
