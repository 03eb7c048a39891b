"""Consumer group housekeeping."""

from __future__ import annotations

import redis.asyncio as aioredis
from redis.exceptions import ResponseError


async def ensure_group(redis: aioredis.Redis, stream: str, group: str, start_id: str = "0") -> bool:
    """Create the group at id 0 (MKSTREAM) so entries written before the first consumer are read.

    Returns True when created, False when it already existed (BUSYGROUP)."""
    try:
        await redis.xgroup_create(stream, group, id=start_id, mkstream=True)
        return True
    except ResponseError as exc:
        if "BUSYGROUP" in str(exc):
            return False
        raise


async def delete_idle_consumers(
    redis: aioredis.Redis, stream: str, group: str, idle_ms: int, keep: str
) -> int:
    """Delete consumers with nothing pending and idle longer than idle_ms (dead instances)."""
    removed = 0
    for info in await redis.xinfo_consumers(stream, group):
        name = info["name"]
        name = name.decode() if isinstance(name, bytes) else name
        if name != keep and info["pending"] == 0 and info["idle"] > idle_ms:
            await redis.xgroup_delconsumer(stream, group, name)
            removed += 1
    return removed
