"""Timers that survive restarts: a sorted set `bot:{bot}:timers` (name -> due ms).

The strategy asks for timers (SetTimer / CancelTimer), and the runner's commit writes them to
the sorted set together with the state. When one is due, the pump moves it — in one
MULTI/EXEC under WATCH — from the set into the bot's control stream as a TimerFired entry, so
it is handled exactly once like any other input, and never fired twice.

A strategy sets a timer from ctx.now, the venue's time (shared/strategy/events.py event_time),
so the pump reads the venue's clock too (VenueClock): on an exchange it is the wall clock give
or take the latency; on the paper venue replaying other days, or faster (the demo: 2024, 120x),
it is that market's time. On the wall clock, a smart trade's time limit set in the demo's 2024
was due at once and sold the position the moment it was bought.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

import redis.asyncio as aioredis
from redis.exceptions import WatchError

from shared.codec import encode
from shared.messages import TimerFired
from shared.redis_conn import REDIS_ERRORS
from shared.service import every
from shared.streams import bot_control, bot_timers


class VenueClock:
    """The venue's time as the bot last saw it (a candle's close, an order's venue time), run on
    by the wall time since; never back. The wall clock until the venue has said a time."""

    def __init__(
        self, monotonic: Callable[[], float] = time.monotonic, wall: Callable[[], float] = time.time
    ) -> None:
        self._monotonic, self._wall = monotonic, wall
        self._seen: int | None = None  # venue ms, at monotonic second self._at
        self._at = 0.0

    def saw(self, venue_ms: int) -> None:
        now = self.now_ms() if self._seen is not None else venue_ms
        self._seen, self._at = max(now, venue_ms), self._monotonic()

    def now_ms(self) -> int:
        if self._seen is None:
            return int(self._wall() * 1000)
        return self._seen + int((self._monotonic() - self._at) * 1000)


class TimerPump:
    def __init__(
        self, redis: aioredis.Redis, bot: str, every_s: float = 0.2, clock: Callable[[], int] | None = None
    ) -> None:
        self.redis, self.key, self.stream, self.every_s = redis, bot_timers(bot), bot_control(bot), every_s
        self.clock = clock or VenueClock().now_ms

    async def rearm(self, timers: dict[str, int]) -> None:
        """Make the set agree with the strategy state's timers (the state is the truth)."""
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.delete(self.key)
            if timers:
                pipe.zadd(self.key, {name: due for name, due in timers.items()})
            await pipe.execute()

    async def fire_due(self, now_ms: int) -> int:
        """Move every timer due at now_ms into the control stream; returns how many."""
        async with self.redis.pipeline(transaction=True) as pipe:
            try:
                await pipe.watch(self.key)
                due = await pipe.zrangebyscore(self.key, "-inf", now_ms, withscores=True)
                if not due:
                    await pipe.reset()
                    return 0
                pipe.multi()
                for name, score in due:
                    pipe.zrem(self.key, name)
                    pipe.xadd(self.stream, encode(TimerFired(name=name.decode(), due=int(score))))
                await pipe.execute()
                return len(due)
            except WatchError:
                return 0

    async def run(self, stopping: asyncio.Event) -> None:
        async def tick() -> None:
            try:
                await self.fire_due(self.clock())
            except REDIS_ERRORS:
                pass  # Redis away: the next tick fires what is due then

        await every(self.every_s, stopping, tick)
