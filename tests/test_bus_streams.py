"""Streams added to a running Consumer (the order gateway reads one command stream per bot, and
bots come later): each is read with the same guarantees as the first ones — its group created
at id 0, the consumer's own pending entries replayed first, a dead consumer's entries claimed,
undecodable entries dead-lettered. In-process against a real redis-server."""

from __future__ import annotations

import asyncio

from shared.bus import Entry, ensure_group
from tests.helpers.streams import G, S, make, note, run_until

S2, S3 = "t:in2", "t:in3"


async def test_a_stream_discovered_while_running_replays_its_own_pending_first(redis_client):
    await ensure_group(redis_client, S2, G)
    await redis_client.xadd(S2, note("mine"))
    await redis_client.xreadgroup(G, "c1", {S2: ">"}, count=1)  # c1's earlier run read it, then died
    await redis_client.xadd(S2, note("new"))
    await redis_client.xadd(S2, {"garbage": "1"})
    await redis_client.xadd(S, note("first"))
    seen: list[tuple[str, str, int]] = []
    found: list[str] = []  # what discover() answers: nothing until S has been served

    async def handler(entry: Entry) -> None:
        seen.append((entry.stream, entry.message.text, entry.deliveries))

    async def discover() -> list[str]:
        return list(found)

    def progress() -> bool:
        if seen and not found:
            found.append(S2)
        return len(seen) == 3

    consumer = make(redis_client, handler, discover=discover, discover_every_s=0.02)
    await run_until(consumer, progress)
    assert seen == [(S, "first", 1), (S2, "mine", 2), (S2, "new", 1)]
    assert consumer.stream_names == [S, S2]
    dead = await redis_client.xrange(f"dlq:{S2}")
    assert len(dead) == 1 and dead[0][1][b"dlq_reason"].startswith(b"decode error")
    assert (await redis_client.xpending(S2, G))["pending"] == 0


async def test_add_streams_creates_the_group_and_claims_a_dead_consumers_entries(redis_client):
    await redis_client.xadd(S3, note("early"))  # no group yet: created at id 0, so it is read
    await ensure_group(redis_client, S2, G)
    await redis_client.xadd(S2, note("orphan"))
    await redis_client.xreadgroup(G, "dead", {S2: ">"}, count=1)
    seen: list[tuple[str, str]] = []
    added: list[asyncio.Future[list[str]]] = []

    async def handler(entry: Entry) -> None:
        seen.append((entry.stream, entry.message.text))

    await asyncio.sleep(0.25)  # the dead consumer's entry is idle past claim_idle_ms
    consumer = make(redis_client, handler, name="alive", claim_idle_ms=200, claim_every_s=0.05)

    def progress() -> bool:
        if not added:  # from outside the consumer's task, while it runs
            added.append(asyncio.ensure_future(consumer.add_streams([S2, S3, S, S2])))
        return len(seen) == 2

    await run_until(consumer, progress)
    assert added[0].result() == [S2, S3], "S was read already; S2 named twice is added once"
    assert sorted(seen) == [(S2, "orphan"), (S3, "early")]
    for stream in (S2, S3):
        assert (await redis_client.xpending(stream, G))["pending"] == 0
