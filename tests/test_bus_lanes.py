"""DeadLetter and per-key lanes on the bus, in-process against a real redis-server."""

from __future__ import annotations

import asyncio

from shared.bus import Consumer, DeadLetter, Entry
from shared.codec import decode
from tests.helpers.streams import note

S, G = "t:in", "g"


async def run_until(consumer: Consumer, predicate, limit_s: float = 5.0, *others) -> None:
    """Run the consumer (and other components) until predicate() holds, then stop them cleanly."""
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


async def test_dead_letter_raised_by_a_handler_goes_to_the_dlq_at_once(redis_client):
    calls: list[str] = []

    async def handler(entry: Entry) -> None:
        text = entry.message.text
        calls.append(text)
        if text == "wrong":
            try:
                int("not a number")
            except ValueError as exc:
                raise DeadLetter("wrong stream for this message") from exc
        if text == "plain":
            raise DeadLetter("refused")

    for text in ("wrong", "plain", "next"):
        await redis_client.xadd(S, note(text))
    consumer = make(redis_client, handler, max_deliveries=5, ordered=True)
    await run_until(consumer, lambda: "next" in calls)
    assert calls == ["wrong", "plain", "next"], "dead-lettered on the first delivery; the consumer goes on"
    dead = await redis_client.xrange(f"dlq:{S}")
    assert [decode(f).text for _, f in dead] == ["wrong", "plain"]
    reasons = [f[b"dlq_reason"].decode() for _, f in dead]
    assert reasons[0].startswith("wrong stream for this message: ValueError: invalid literal for int()")
    assert reasons[1] == "refused"
    assert [f[b"dlq_deliveries"] for _, f in dead] == [b"1", b"1"]
    assert await pending_count(redis_client) == 0
