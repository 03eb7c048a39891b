"""One active runner per bot: a Redis lease (SET NX PX) renewed while the runner works.

A standby runner waits until the lease expires (its holder died) and then takes over.
Fencing: every commit WATCHes the lease and the state key and checks both are still what
this runner saw, so a runner that lost its lease (a long pause, a partition) can never write
over the new holder's work — its EXEC fails and it goes back to waiting.
"""

from __future__ import annotations

import redis.asyncio as aioredis

from shared.streams import bot_lease

_RENEW = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
return 0
"""
_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""


class Lease:
    def __init__(self, redis: aioredis.Redis, bot: str, owner: str, ttl_ms: int) -> None:
        self.redis, self.key, self.owner, self.ttl_ms = redis, bot_lease(bot), owner, ttl_ms
        self._renew = redis.register_script(_RENEW)
        self._release = redis.register_script(_RELEASE)

    async def try_acquire(self) -> bool:
        """Take the lease if free (or keep it if already ours)."""
        if await self.redis.set(self.key, self.owner, nx=True, px=self.ttl_ms):
            return True
        return await self.renew()

    async def renew(self) -> bool:
        return bool(await self._renew(keys=[self.key], args=[self.owner, self.ttl_ms]))

    async def release(self) -> None:
        await self._release(keys=[self.key], args=[self.owner])

    async def holder(self) -> str | None:
        value = await self.redis.get(self.key)
        return value.decode() if value else None
