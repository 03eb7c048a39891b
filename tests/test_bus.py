"""Bus guarantees, in-process against a real redis-server."""

from __future__ import annotations

import asyncio

import pytest
import redis.asyncio as aioredis

from shared.bus import Commit, Entry, FencedError, ensure_group, publish, publish_many
from shared.codec import decode
from shared.messages import Notification
from tests.helpers.streams import G, S, make, note, pending_count, run_until


async def test_publish_and_consume_acks_after_handler(redis_client):
    seen: list[str] = []
    pending_during: list[int] = []

    async def handler(entry: Entry) -> None:
        pending_during.append(await pending_count(redis_client))
        seen.append(entry.message.text)

    await publish_many(
        redis_client, [(S, Notification(id=str(i), kind="info", text=str(i))) for i in range(5)]
    )
    await run_until(make(redis_client, handler), lambda: len(seen) == 5)
    assert seen == ["0", "1", "2", "3", "4"]
    assert all(p >= 1 for p in pending_during), "entries must still be pending while the handler runs"
    assert await pending_count(redis_client) == 0


async def test_entries_written_before_group_exists_are_read(redis_client):
    await redis_client.xadd(S, note("early"))
    seen: list[str] = []

    async def handler(entry: Entry) -> None:
        seen.append(entry.message.text)

    await run_until(make(redis_client, handler), lambda: seen == ["early"])


async def test_own_pending_entries_are_replayed_first(redis_client):
    await ensure_group(redis_client, S, G)
    for text in ("a", "b"):
        await redis_client.xadd(S, note(text))
    # c1 read them and died before acking
    await redis_client.xreadgroup(G, "c1", {S: ">"}, count=10)
    await redis_client.xadd(S, note("c"))
    seen: list[tuple[str, int]] = []

    async def handler(entry: Entry) -> None:
        seen.append((entry.message.text, entry.deliveries))

    await run_until(make(redis_client, handler), lambda: len(seen) == 3)
    assert seen == [("a", 2), ("b", 2), ("c", 1)]
    assert await pending_count(redis_client) == 0


async def test_failed_handler_leaves_entry_pending_then_retries(redis_client):
    attempts: dict[str, int] = {}

    async def handler(entry: Entry) -> None:
        text = entry.message.text
        attempts[text] = attempts.get(text, 0) + 1
        if text == "flaky" and attempts[text] < 3:
            raise RuntimeError("transient")

    for text in ("flaky", "next"):
        await redis_client.xadd(S, note(text))
    await run_until(make(redis_client, handler), lambda: attempts.get("flaky") == 3 and "next" in attempts)
    assert await pending_count(redis_client) == 0
    assert await redis_client.xlen(f"dlq:{S}") == 0


async def test_poison_entry_goes_to_dlq_with_reason_and_does_not_block(redis_client):
    await redis_client.xadd(S, {"type": "notification", "v": "1", "data": "{not json"})
    await redis_client.xadd(S, {"garbage": "1"})
    await redis_client.xadd(S, note("good"))
    seen: list[str] = []

    async def handler(entry: Entry) -> None:
        seen.append(entry.message.text)

    await run_until(make(redis_client, handler), lambda: seen == ["good"])
    dead = await redis_client.xrange(f"dlq:{S}")
    assert len(dead) == 2
    reasons = [fields[b"dlq_reason"].decode() for _, fields in dead]
    assert reasons[0].startswith("decode error: invalid notification")
    assert "not an envelope" in reasons[1]
    assert dead[0][1][b"data"] == b"{not json"
    assert await pending_count(redis_client) == 0


async def test_entry_failing_every_delivery_is_dead_lettered(redis_client):
    calls: list[int] = []

    async def handler(entry: Entry) -> None:
        if entry.message.text == "bad":
            calls.append(entry.deliveries)
            raise ValueError("always broken")

    await redis_client.xadd(S, note("bad"))
    await redis_client.xadd(S, note("ok"))
    consumer = make(redis_client, handler, max_deliveries=3)
    await run_until(consumer, lambda: redis_client.xlen(f"dlq:{S}"))
    assert calls == [1, 2, 3]
    ((_, fields),) = await redis_client.xrange(f"dlq:{S}")
    assert fields[b"dlq_reason"] == b"failed 3 deliveries"
    assert fields[b"dlq_group"] == G.encode()
    assert decode(fields).text == "bad"
    assert await pending_count(redis_client) == 0


async def test_ordered_consumer_waits_for_the_failed_entry(redis_client):
    order: list[str] = []
    failures = {"first": 2}

    async def handler(entry: Entry) -> None:
        text = entry.message.text
        if failures.get(text, 0) > 0:
            failures[text] -= 1
            raise RuntimeError("not yet")
        order.append(text)

    for text in ("first", "second", "third"):
        await redis_client.xadd(S, note(text))
    await run_until(make(redis_client, handler, ordered=True), lambda: len(order) == 3)
    assert order == ["first", "second", "third"]


async def test_dead_consumer_entries_are_claimed(redis_client):
    await ensure_group(redis_client, S, G)
    for text in ("x", "y"):
        await redis_client.xadd(S, note(text))
    await redis_client.xreadgroup(G, "dead", {S: ">"}, count=10)
    seen: list[str] = []

    async def handler(entry: Entry) -> None:
        seen.append(entry.message.text)

    await asyncio.sleep(0.25)
    consumer = make(redis_client, handler, name="alive", claim_idle_ms=200, claim_every_s=0.05)
    await run_until(consumer, lambda: sorted(seen) == ["x", "y"])
    info = await redis_client.xpending(S, G)
    assert info["pending"] == 0


async def test_ordered_consumer_replays_claimed_entries_before_newer_ones(redis_client):
    """A claim and a read of new entries in one pass: what was claimed (older) is handled first.

    A strategy runner skips an entry at or below the last one it applied, so a newer entry
    handled before an older claimed one would have the older one skipped: lost."""
    await ensure_group(redis_client, S, G)
    await redis_client.xadd(S, note("old"))
    await redis_client.xreadgroup(G, "dead", {S: ">"}, count=10)  # "dead" read it and died
    await redis_client.xadd(S, note("new"))  # not delivered to anyone yet

    async def idle_ms() -> int:
        (info,) = await redis_client.xpending_range(S, G, min="-", max="+", count=1)
        return info["time_since_delivered"]

    async with asyncio.timeout(5):  # "old" claimable at the consumer's first pass, "new" readable
        while await idle_ms() < 200:
            await asyncio.sleep(0.02)
    order: list[str] = []

    async def handler(entry: Entry) -> None:
        order.append(entry.message.text)

    consumer = make(redis_client, handler, name="alive", ordered=True, claim_idle_ms=200)
    await run_until(consumer, lambda: len(order) == 2)
    assert order == ["old", "new"]
    assert await pending_count(redis_client) == 0


async def test_sole_consumer_takes_over_what_another_read_before_handling_anything_newer(redis_client):
    """The group's rightful reader (sole: it holds a lease) and a predecessor that read once more
    on waking past its lease: that entry, pending for the predecessor and not idle, comes first."""
    await ensure_group(redis_client, S, G)
    for text in ("a", "b"):
        await redis_client.xadd(S, note(text))
    await redis_client.xreadgroup(G, "predecessor", {S: ">"}, count=1)  # "a": its commit then fenced
    seen: list[tuple[str, int]] = []

    async def handler(entry: Entry) -> None:
        seen.append((entry.message.text, entry.deliveries))

    consumer = make(redis_client, handler, name="holder", ordered=True, sole=True)
    await run_until(consumer, lambda: len(seen) == 2)
    assert seen == [("a", 2), ("b", 2)]  # "b" was read, then replayed after "a" (a 2nd delivery)
    assert await pending_count(redis_client) == 0


async def test_commit_is_atomic_and_acks(redis_client):
    await ensure_group(redis_client, S, G)
    await redis_client.xadd(S, note("in"))

    async def handler(entry: Entry) -> None:
        out = Notification(id="o", kind="info", text="out")
        commit = (
            Commit().set("state", b"v1").publish("t:out", out).ack(entry.stream, entry.group, entry.id, entry)
        )
        await commit.execute(redis_client)

    consumer = make(redis_client, handler)
    await run_until(consumer, lambda: redis_client.get("state"))
    assert await redis_client.xlen("t:out") == 1
    assert await pending_count(redis_client) == 0


async def test_commit_with_failed_fence_writes_nothing(redis_client):
    await redis_client.set("lease", b"me")

    async def still_mine(pipe) -> bool:
        return await pipe.get("lease") == b"me"

    await Commit().set("state", b"1").execute(redis_client, watch=["lease"], check=still_mine)
    assert await redis_client.get("state") == b"1"
    await redis_client.set("lease", b"other")
    with pytest.raises(FencedError):
        await (
            Commit()
            .set("state", b"2")
            .publish("t:out", note_msg())
            .execute(redis_client, watch=["lease"], check=still_mine)
        )
    assert await redis_client.get("state") == b"1"
    assert await redis_client.xlen("t:out") == 0


def note_msg() -> Notification:
    return Notification(id="n", kind="info", text="n")


async def test_publish_trims_with_maxlen(redis_client):
    for _ in range(500):
        await publish(redis_client, "t:trim", note_msg(), maxlen=100)
    assert await redis_client.xlen("t:trim") < 300


async def test_fenced_handler_stops_the_consumer_without_counting_a_failure(redis_client):
    await redis_client.xadd(S, note("x"))

    async def handler(entry: Entry) -> None:
        raise FencedError("another runner owns this bot now")

    consumer = make(redis_client, handler, max_deliveries=1)
    with pytest.raises(FencedError):
        await asyncio.wait_for(consumer.run(), 5)
    assert await redis_client.xlen(f"dlq:{S}") == 0
    assert await pending_count(redis_client) == 1, "left pending for whoever owns it now"


async def test_stop_ends_a_blocking_read_at_once_and_loses_nothing(redis_server, redis_client):
    """stop() cancels a read blocked waiting for entries (here it would block for an hour): the
    client it ran on stays usable (its connection was dropped, so no command gets the read's
    reply), and what is written afterwards is read by the next start, once."""
    seen: list[tuple[str, int]] = []

    async def handler(entry: Entry) -> None:
        seen.append((entry.message.text, entry.deliveries))

    await redis_client.xadd(S, note("a"))
    # no socket timeout either (redis-py's default of 5 s would end the read)
    untimed = aioredis.Redis.from_url(redis_server.url, socket_timeout=None)
    consumer = make(untimed, handler, block_ms=3_600_000)
    task = asyncio.create_task(consumer.run())

    async def blocked_in_read() -> bool:
        clients = await redis_client.client_list()
        return any(c.get("cmd") == "xreadgroup" and "b" in c.get("flags", "") for c in clients)

    async with asyncio.timeout(10):
        while not (seen and await blocked_in_read()):
            assert not task.done(), task
            await asyncio.sleep(0.01)
    consumer.stop()
    await asyncio.wait_for(task, 10)  # not the hour of the block
    try:
        assert await untimed.set("t:after", "1") and await untimed.get("t:after") == b"1"
        await redis_client.xadd(S, note("b"))
        await run_until(make(untimed, handler), lambda: len(seen) == 2)
    finally:
        await untimed.aclose()
    assert seen == [("a", 1), ("b", 1)]
    assert await pending_count(redis_client) == 0
