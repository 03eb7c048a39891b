"""The bus: Redis Streams with consumer groups, built on redis-py for exact control.

- publish.py: XADD with MAXLEN, pipelined batches.
- consumer.py: consumer-group reader with pending replay, XAUTOCLAIM takeover, DLQ, ack-after-handler.
- commit.py: state + output entries + XACK in one MULTI/EXEC.
- dlq.py: dead letters (copy to dlq:{stream} + XACK at once); DeadLetter, raised by a handler.
- groups.py: group creation at id 0 and stale consumer cleanup.
See docs/ARCHITECTURE.md ("The bus") for why FastStream is not on this path.
"""

from shared.bus.commit import Commit, FencedError
from shared.bus.consumer import Consumer, Entry
from shared.bus.dlq import DeadLetter
from shared.bus.groups import ensure_group
from shared.bus.publish import publish, publish_many

__all__ = [
    "Commit",
    "Consumer",
    "DeadLetter",
    "Entry",
    "FencedError",
    "ensure_group",
    "publish",
    "publish_many",
]
