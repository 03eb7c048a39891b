"""Entries trimmed from a stream before the ledger read them: reported, never silently skipped.

Redis counts, per stream, every entry ever added (XINFO STREAM `entries-added`, Redis 7) and,
per group, the entries it was handed (`entries-read`, 0 for a group not yet made). When the
stream no longer holds the entry after the group's `last-delivered-id` and added - read is more
than the stream's length, entries the ledger never saw are gone (trimmed, deleted): a row
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
from shared.bus.groups import as_text, id_key, next_id
from shared.ledger import schema as t
from shared.messages import Level, Notification
from shared.streams import NOTIFY

log = logging.getLogger("automata.ledger")


async def trimmed_unseen(redis: aioredis.Redis, stream: str, group: str) -> tuple[str, str] | None:
    """(last id the group was handed, first id still there) when entries after the former were
    trimmed or deleted; None when nothing the group has not read is missing."""
    try:
        info = await redis.xinfo_stream(stream)
    except ResponseError:
        return None  # no such stream yet: nothing trimmed
    last, read = "0-0", 0
    for g in await redis.xinfo_groups(stream):
        if as_text(g["name"]) == group:
            last, read = as_text(g["last-delivered-id"]), g.get("entries-read")
    first = info.get("first-entry")
    first_id = as_text(first[0]) if first else ""
    if first_id and id_key(first_id) <= id_key(last):
        return None  # the stream still holds everything after what the group was handed
    if read is None:  # the group's counter is unknown: any hole after `last` counts
        missing = id_key(first_id or as_text(info["last-generated-id"])) > id_key(next_id(last))
    else:  # every entry after `last` still there: added = read + those + the missing ones
        missing = int(info["entries-added"]) - int(read) - int(info["length"]) > 0
    return (last, first_id) if missing else None


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
