"""One active runner per bot: the shared lease (shared/lease.py) on `bot:{bot}:lease`.

A standby runner waits until the lease expires (its holder died) and then takes over.
Fencing: every commit WATCHes the lease and the state key and checks both are still what
this runner saw, so a runner that lost its lease (a long pause, a partition) can never write
over the new holder's work — its EXEC fails and it goes back to waiting.
"""

from __future__ import annotations

import redis.asyncio as aioredis

from shared import lease
from shared.streams import bot_lease


class Lease(lease.Lease):
    """The bot's lease, named by its bot id."""

    def __init__(self, redis: aioredis.Redis, bot: str, owner: str, ttl_ms: int) -> None:
        super().__init__(redis, bot_lease(bot), owner, ttl_ms)
