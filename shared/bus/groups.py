"""Consumer group housekeeping, and the stream ids and replies it reads."""

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


async def take_over_pending(redis: aioredis.Redis, stream: str, group: str, consumer: str) -> int:
    """Move every entry other consumers of the group hold pending to `consumer`, at once.

    For a process that just became the only rightful consumer (a strategy runner that took the
    bot's lease): the dead holder's entries must be replayed before anything newer. XCLAIM JUSTID
    keeps delivery counts as they are (a takeover is not a failed delivery). Returns how many."""
    moved, start = 0, "-"
    while True:
        page = await redis.xpending_range(stream, group, min=start, max="+", count=100)
        if not page:
            return moved
        theirs = [p["message_id"] for p in page if p["consumer"].decode() != consumer]
        if theirs:
            await redis.xclaim(stream, group, consumer, min_idle_time=0, message_ids=theirs, justid=True)
            moved += len(theirs)
        start = next_id(page[-1]["message_id"].decode())


def next_id(entry_id: str) -> str:
    """The smallest stream id strictly greater than entry_id ("0" -> "0-1")."""
    if "-" not in entry_id:
        return f"{entry_id}-1"
    ms, seq = entry_id.split("-", 1)
    return f"{ms}-{int(seq) + 1}"


def id_key(entry_id: str) -> tuple[int, int]:
    """A stream id as a sortable key ("5-1" -> (5, 1); "5" -> (5, 0)): ids compare as numbers."""
    ms, _, seq = entry_id.partition("-")
    return int(ms), int(seq or 0)


def as_text(value: object) -> str:
    """A value from a Redis reply (bytes unless the client decodes) as text."""
    return value.decode() if isinstance(value, bytes) else str(value)
