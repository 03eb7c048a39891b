"""One active holder of a piece of work: a Redis lease (SET PX) renewed while the holder works.

The strategy runner holds one per bot (`bot:{bot}:lease`), the order gateway one per venue
(`og:lease:{venue}`). A standby waits until the lease expires (its holder died) and takes over.
Fencing is the holder's job: every write it commits WATCHes the lease key and checks the value
is still its own `owner`, so a holder that lost the lease (a long pause, a partition) can never
write over the new holder's work — its EXEC fails (FencedError) and it goes back to waiting.

`valid()` is the local side: the lease cannot have expired in Redis before `valid_until`
(measured on the monotonic clock from when the last successful renewal was sent), so a holder
frozen past its lease (SIGSTOP, a stalled VM) knows on waking, before it acts outside Redis.
"""

from __future__ import annotations

import time

import redis.asyncio as aioredis

from shared.bus.commit import FencedError

# Free, ours, or (given a prefix) held by an earlier run of this very process: take it.
# Returns 1 when it was free or ours, 2 when an earlier run's value was replaced.
_ACQUIRE = """
local v = redis.call('GET', KEYS[1])
if v and v ~= ARGV[1] and (ARGV[3] == '' or string.sub(v, 1, #ARGV[3]) ~= ARGV[3]) then return 0 end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
if v and v ~= ARGV[1] then return 2 end
return 1
"""
_RENEW = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
return 0
"""
_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""


class Lease:
    def __init__(self, redis: aioredis.Redis, key: str, owner: str, ttl_ms: int) -> None:
        self.redis, self.key, self.owner, self.ttl_ms = redis, key, owner, ttl_ms
        self.owner_bytes = owner.encode()
        self.valid_until = 0.0  # time.monotonic() before which the lease cannot have expired
        self.replaced = False  # the last acquisition replaced an earlier run's value
        self._acquire = redis.register_script(_ACQUIRE)
        self._renew = redis.register_script(_RENEW)
        self._release = redis.register_script(_RELEASE)

    async def try_acquire(self, earlier_runs: str = "") -> bool:
        """Take the lease if free (or keep it if already ours). With `earlier_runs`, a value
        starting with it is an earlier run of this process (same stable name, another pid),
        dead since this one runs: replaced at once instead of waiting out its expiry."""
        sent = time.monotonic()
        result = await self._acquire(keys=[self.key], args=[self.owner, self.ttl_ms, earlier_runs])
        self.replaced = result == 2
        return self._held_since(sent, bool(result))

    async def renew(self) -> bool:
        sent = time.monotonic()
        return self._held_since(
            sent, bool(await self._renew(keys=[self.key], args=[self.owner, self.ttl_ms]))
        )

    async def release(self) -> None:
        self.valid_until = 0.0
        await self._release(keys=[self.key], args=[self.owner])

    async def holder(self) -> str | None:
        value = await self.redis.get(self.key)
        return value.decode() if value else None

    def valid(self) -> bool:
        """Whether the lease is surely still ours (no Redis round trip)."""
        return time.monotonic() < self.valid_until

    def check(self) -> None:
        """FencedError unless the lease is surely still ours: call before acting outside Redis."""
        if not self.valid():
            raise FencedError(f"lease {self.key} may have expired: not acting on it")

    async def still_ours(self, pipe) -> bool:
        """A fencing check for a pipeline WATCHing `key`: the value is still this owner's."""
        return await pipe.get(self.key) == self.owner_bytes

    def _held_since(self, sent: float, held: bool) -> bool:
        self.valid_until = sent + self.ttl_ms / 1000 if held else 0.0
        return held
