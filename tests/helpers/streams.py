"""Small helpers tests use to write and read stream entries."""

from __future__ import annotations

import asyncio

from shared.bus import Consumer
from shared.codec import encode
from shared.messages import Notification


def note(text: str) -> dict[bytes, bytes]:
    """Envelope fields of a Notification whose text (and id) is `text`."""
    return encode(Notification(id=text, kind="info", text=text))


def log_lines(sync_redis, key: str = "t:log") -> list[str]:
    return [x.decode() for x in sync_redis.lrange(key, 0, -1)]


# -- a consumer under test, in-process ---------------------------------------------------------

S, G = "t:in", "g"  # the stream and the group the bus tests use


async def run_until(consumer: Consumer, predicate, limit_s: float = 5.0, *others) -> None:
    """Run the consumer (and other components) until predicate() (sync or async) holds, then
    stop them cleanly."""
    tasks = [asyncio.create_task(c.run()) for c in (consumer, *others)]
    try:
        async with asyncio.timeout(limit_s):
            while True:
                result = predicate()
                if asyncio.iscoroutine(result):
                    result = await result
                if result:
                    break
                for task in tasks:
                    if task.done():
                        task.result()
                await asyncio.sleep(0.01)
    finally:
        for c in (consumer, *others):
            c.stop()
        await asyncio.wait_for(asyncio.gather(*tasks), 5)


def make(redis, handler, name="c1", **kw) -> Consumer:
    kw.setdefault("block_ms", 50)
    kw.setdefault("retry_delay_s", 0.05)
    return Consumer(redis, [S], G, name, handler, **kw)


async def pending_count(redis) -> int:
    return (await redis.xpending(S, G))["pending"]
