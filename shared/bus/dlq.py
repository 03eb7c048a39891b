"""Dead letters: an entry that can never succeed is copied to `dlq:{stream}` and acked at once.

One place writes them (the consumer and the lanes both call `dead_letter`), so every DLQ entry
has the same fields, and copy + XACK are one MULTI/EXEC: the entry is never lost and never
left blocking its stream. A handler that knows an entry is hopeless (a message on the wrong
stream, terms that make no sense) raises `DeadLetter` instead of failing it N times.
"""

from __future__ import annotations

import logging
import time
from typing import Any

import redis.asyncio as aioredis

from shared import metrics
from shared.codec import encode_json
from shared.streams import dlq

log = logging.getLogger("automata.bus")


class DeadLetter(Exception):
    """Raised by a handler: dead-letter this entry now, with `reason` (retrying cannot help).

    `raise DeadLetter("why") from exc` keeps the cause's text in the dead-letter entry too."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def dead_letter_reason(exc: DeadLetter) -> str:
    """The `dlq_reason` of an entry a handler refused: its reason, then the cause's text."""
    cause = exc.__cause__
    return f"{exc.reason}: {type(cause).__name__}: {cause}" if cause is not None else exc.reason


def failed_reason(deliveries: int, exc: BaseException | None = None) -> str:
    """The `dlq_reason` of an entry that failed every delivery (with the last error when known)."""
    text = f"failed {deliveries} deliveries"
    return f"{text}: {type(exc).__name__}: {exc}" if exc is not None else text


async def dead_letter(
    redis: aioredis.Redis,
    stream: str,
    group: str,
    consumer: str,
    entry_id: str,
    fields: dict,
    reason: str,
    deliveries: int,
    maxlen: int,
) -> None:
    """Copy the entry to dlq:{stream} with the reason and ack it, atomically."""
    record: dict[bytes | str, Any] = {k: v for k, v in fields.items() if k not in (b"dlq_reason",)}
    record.update(
        {
            "dlq_reason": reason,
            "dlq_stream": stream,
            "dlq_id": entry_id,
            "dlq_group": group,
            "dlq_consumer": consumer,
            "dlq_deliveries": str(deliveries),
            "dlq_ts": str(int(time.time() * 1000)),
        }
    )
    if not fields:
        record["dlq_fields"] = encode_json({})
    async with redis.pipeline(transaction=True) as pipe:
        pipe.xadd(dlq(stream), record, maxlen=maxlen, approximate=True)
        pipe.xack(stream, group, entry_id)
        await pipe.execute()
    metrics.bus_metrics().dead_lettered.labels(stream, group).inc()
    log.error("dead-lettered %s %s: %s", stream, entry_id, reason)
