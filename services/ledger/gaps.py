"""Entries trimmed from a stream before the ledger read them: reported, never silently skipped.

Redis keeps, per stream, the highest id ever deleted or trimmed (XINFO STREAM
`max-deleted-entry-id`, Redis 7). If it lies after the last entry the ledger's group was handed
(`last-delivered-id`, 0-0 for a group not yet made), entries the ledger never saw are gone: a row
in `stream_gaps`, a warning in the log and a notification say so, once per gap (its unique key
(stream, first_id) makes a restart report it again as the same row). The order gateway's
write-ahead records and the venue's trade list can fill such a gap (`automata ledger sync`).
"""

from __future__ import annotations

import asyncio
import logging
import time
from datetime import UTC, datetime

import redis.asyncio as aioredis
import sqlalchemy as sa
from redis.exceptions import ResponseError

from services.ledger.writer import insert_new
from shared.bus import publish
from shared.ledger import schema as t
from shared.messages import Level, Notification
from shared.streams import NOTIFY

log = logging.getLogger("automata.ledger")


def _text(value: object) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _key(entry_id: str) -> tuple[int, int]:
    ms, _, seq = entry_id.partition("-")
    return int(ms), int(seq or 0)


async def trimmed_unseen(redis: aioredis.Redis, stream: str, group: str) -> tuple[str, str] | None:
    """(last id the group was handed, first id still there) when entries after the former were
    trimmed or deleted; None when nothing the group has not read is missing."""
    try:
        info = await redis.xinfo_stream(stream)
    except ResponseError:
        return None  # no such stream yet: nothing trimmed
    deleted = _text(info.get("max-deleted-entry-id") or "0-0")
    last = "0-0"
    for g in await redis.xinfo_groups(stream):
        if _text(g["name"]) == group:
            last = _text(g["last-delivered-id"])
    if _key(deleted) <= _key(last):
        return None
    first = info.get("first-entry")
    return last, _text(first[0]) if first else ""


def _record(engine: sa.Engine, stream: str, last: str, first: str, reason: str) -> bool:
    with engine.begin() as conn:
        return insert_new(
            conn,
            t.stream_gaps,
            {"stream": stream, "last_seen_id": "" if last == "0-0" else last, "first_id": first,
             "reason": reason, "reported_at": datetime.now(UTC)},
        )  # fmt: skip


async def report_gap(redis: aioredis.Redis, engine: sa.Engine, stream: str, group: str) -> bool:
    """Check `stream` before the group reads it; True when a new gap was reported."""
    gap = await trimmed_unseen(redis, stream, group)
    if gap is None:
        return False
    last, first = gap
    after = f"after {last}" if last != "0-0" else "before the ledger's first read"
    reason = f"entries trimmed {after}; the stream now starts at {first or '(empty)'}"
    if not await asyncio.to_thread(_record, engine, stream, last, first, reason):
        return False
    log.warning("ledger gap on %s: %s (automata ledger sync can fill it)", stream, reason)
    note = Notification(
        id=f"ledger-gap:{stream}:{first}",
        kind="error",
        level=Level.WARNING,
        title="Ledger gap",
        text=f"{stream}: {reason}. The ledger misses what they held.",
        data={"stream": stream, "last_seen_id": last, "first_id": first},
        ts=int(time.time() * 1000),
    )
    await publish(redis, NOTIFY, note)
    return True
