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
from collections.abc import Callable

import redis.asyncio as aioredis
from redis.asyncio.client import Pipeline
from redis.exceptions import WatchError

from shared.bus.commit import FencedError

# Plain commands under WATCH/MULTI, no Lua: a strategy runner's Redis user may not script
# (shared/redis_acl.py), and a lease is written a few times a lease period, so the extra round
# trip costs nothing.


class Lease:
    def __init__(self, redis: aioredis.Redis, key: str, owner: str, ttl_ms: int) -> None:
        self.redis, self.key, self.owner, self.ttl_ms = redis, key, owner, ttl_ms
        self.owner_bytes = owner.encode()
        self.valid_until = 0.0  # time.monotonic() before which the lease cannot have expired
        self.replaced = False  # the last acquisition replaced an earlier run's value

    async def try_acquire(self, earlier_runs: str = "") -> bool:
        """Take the lease if free (or keep it if already ours). With `earlier_runs`, a value
        starting with it is an earlier run of this process (same stable name, another pid),
        dead since this one runs: replaced at once instead of waiting out its expiry."""
        sent = time.monotonic()
        taken: list[bytes | None] = []

        def free(value: bytes | None) -> bool:
            taken[:] = [value]
            earlier = bool(earlier_runs) and value is not None and value.startswith(earlier_runs.encode())
            return value is None or value == self.owner_bytes or earlier

        held = await self._if_holder(free, lambda pipe: pipe.set(self.key, self.owner, px=self.ttl_ms))
        self.replaced = held and taken[0] not in (None, self.owner_bytes)
        return self._held_since(sent, held)

    async def renew(self) -> bool:
        sent = time.monotonic()
        renewed = await self._if_holder(self._ours, lambda pipe: pipe.pexpire(self.key, self.ttl_ms))
        return self._held_since(sent, renewed)

    async def release(self) -> None:
        self.valid_until = 0.0
        await self._if_holder(self._ours, lambda pipe: pipe.delete(self.key))

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

    def _ours(self, value: bytes | None) -> bool:
        return value == self.owner_bytes

    async def _if_holder(
        self, allowed: Callable[[bytes | None], bool], write: Callable[[Pipeline], object]
    ) -> bool:
        """WATCH the key, GET it, and when `allowed(value)` run `write` in MULTI/EXEC; a concurrent
        change of the key (WatchError) reads it again. True when the write was committed."""
        async with self.redis.pipeline(transaction=True) as pipe:
            while True:
                try:
                    await pipe.watch(self.key)
                    if not allowed(await pipe.get(self.key)):
                        await pipe.reset()
                        return False
                    pipe.multi()
                    write(pipe)
                    (result,) = await pipe.execute()
                    return bool(result)
                except WatchError:
                    continue

    def _held_since(self, sent: float, held: bool) -> bool:
        self.valid_until = sent + self.ttl_ms / 1000 if held else 0.0
        return held
