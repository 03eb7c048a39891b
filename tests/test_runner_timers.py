"""The strategy runner's timers on the venue's clock (services/strategy_runner/timers.py).

A strategy sets a timer from ctx.now, the venue's time. The demo's paper venue trades in 2024
at 120x: on the wall clock (2026) a smart trade's 30-minute time limit was due at once, and the
position was sold the moment it was bought. Real Redis; the clock's seconds are the test's."""

from __future__ import annotations

import redis.asyncio as aioredis

from services.strategy_runner.timers import TimerPump, VenueClock
from shared.codec import decode
from shared.messages import TimerFired
from shared.streams import bot_control, bot_timers

MARKET = 1_704_100_000_000  # 2024-01-01, the demo's market


class Seconds:
    def __init__(self) -> None:
        self.t = 100.0

    def __call__(self) -> float:
        return self.t


def test_the_venue_clock_runs_on_from_what_the_venue_said_and_never_back() -> None:
    mono = Seconds()
    clock = VenueClock(monotonic=mono, wall=lambda: 1_800_000_000.0)
    assert clock.now_ms() == 1_800_000_000_000  # nothing said yet: the wall clock
    clock.saw(MARKET)
    mono.t += 2.5
    assert clock.now_ms() == MARKET + 2_500
    clock.saw(MARKET + 60_000)  # a faster market (the demo's candles): its time
    assert clock.now_ms() == MARKET + 60_000
    clock.saw(MARKET)  # a late order update from before: the clock does not go back
    mono.t += 1
    assert clock.now_ms() == MARKET + 61_000


async def test_a_timer_set_in_the_venues_time_fires_when_that_time_comes(
    redis_client: aioredis.Redis,
) -> None:
    mono = Seconds()
    clock = VenueClock(monotonic=mono)
    clock.saw(MARKET)  # the entry filled at this market time; its time limit is 30 minutes on
    due = MARKET + 30 * 60_000
    await redis_client.zadd(bot_timers("tb"), {"trade:time_limit": due})
    pump = TimerPump(redis_client, "tb", clock=clock.now_ms)
    assert await pump.fire_due(pump.clock()) == 0  # the wall clock (2026) would have fired it now
    clock.saw(due - 1)  # candles move the market on
    assert await pump.fire_due(pump.clock()) == 0
    mono.t += 0.001
    assert await pump.fire_due(pump.clock()) == 1
    [(_, fields)] = await redis_client.xrange(bot_control("tb"))
    assert decode(fields) == TimerFired(name="trade:time_limit", due=due)
    assert await pump.fire_due(pump.clock()) == 0  # once
