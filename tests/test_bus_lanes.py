"""DeadLetter and per-key lanes on the bus, in-process against a real redis-server."""

from __future__ import annotations

import asyncio

import pytest

from shared.bus import Commit, Consumer, DeadLetter, Entry, FencedError, ensure_group
from shared.bus.lanes import Lanes
from shared.codec import decode
from shared.messages import Notification
from tests.helpers.streams import G, S, make, note, pending_count, run_until


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


def lanes_for(redis, handler, name="c1", **kw) -> Lanes:
    kw.setdefault("retry_delay_s", 0.02)
    return Lanes(redis, handler, lambda e: e.message.text.split(":")[0], name, **kw)


def with_lanes(redis, lanes: Lanes, name="c1", **kw) -> Consumer:
    return make(redis, lanes.submit, name, holds=lanes.holds, **kw)


async def test_a_stuck_key_does_not_hold_up_others_and_each_key_keeps_its_order(redis_client):
    release = asyncio.Event()
    seen: list[str] = []

    async def handler(entry: Entry) -> None:
        text = entry.message.text
        if text == "a:1":
            await release.wait()  # bot a's order is stuck at the venue
        seen.append(text)

    for text in ("a:1", "b:1", "a:2", "b:2", "c:1", "a:3", "b:3"):
        await redis_client.xadd(S, note(text))
    lanes = lanes_for(redis_client, handler)
    task = asyncio.create_task(run_until(with_lanes(redis_client, lanes), lambda: len(seen) == 7, 5, lanes))
    async with asyncio.timeout(5):
        while len(seen) < 4:
            await asyncio.sleep(0.01)
    assert sorted(seen) == ["b:1", "b:2", "b:3", "c:1"], "the other keys went on while a:1 was stuck"
    assert [t for t in seen if t.startswith("b:")] == ["b:1", "b:2", "b:3"]
    async with asyncio.timeout(5):  # the handler saw c:1 a moment before its ack: wait for it
        while await pending_count(redis_client) != 3:
            await asyncio.sleep(0.01)
    assert await pending_count(redis_client) == 3, "a's entries are still pending"
    release.set()
    await task
    assert [t for t in seen if t.startswith("a:")] == ["a:1", "a:2", "a:3"]
    assert await pending_count(redis_client) == 0


async def test_a_failing_entry_is_retried_in_place_then_dead_lettered_with_its_error(redis_client):
    calls: list[tuple[str, int]] = []

    async def handler(entry: Entry) -> None:
        calls.append((entry.message.text, entry.deliveries))
        if entry.message.text == "a:bad":
            raise ValueError("venue says no")

    for text in ("a:bad", "b:1", "a:after"):
        await redis_client.xadd(S, note(text))
    lanes = lanes_for(redis_client, handler, max_deliveries=3)
    await run_until(with_lanes(redis_client, lanes), lambda: ("a:after", 1) in calls, 5, lanes)
    a_calls = [c for c in calls if c[0].startswith("a:")]
    assert a_calls == [("a:bad", 1), ("a:bad", 2), ("a:bad", 3), ("a:after", 1)], "a:after waited for a:bad"
    ((_, fields),) = await redis_client.xrange(f"dlq:{S}")
    assert fields[b"dlq_reason"] == b"failed 3 deliveries: ValueError: venue says no"
    assert fields[b"dlq_deliveries"] == b"3"
    assert await pending_count(redis_client) == 0


async def test_a_retry_counts_as_a_delivery_in_redis(redis_client):
    attempts: list[int] = []
    counted: list[int] = []

    async def handler(entry: Entry) -> None:
        attempts.append(entry.deliveries)
        (info,) = await redis_client.xpending_range(S, G, min=entry.id, max=entry.id, count=1)
        counted.append(info["times_delivered"])
        if len(attempts) < 3:
            raise RuntimeError("not yet")

    await redis_client.xadd(S, note("a:1"))
    lanes = lanes_for(redis_client, handler, max_deliveries=5)
    await run_until(with_lanes(redis_client, lanes), lambda: len(attempts) == 3, 5, lanes)
    assert attempts == counted == [1, 2, 3]
    assert await pending_count(redis_client) == 0


async def test_dead_letter_in_a_lane_is_at_once(redis_client):
    seen: list[str] = []

    async def handler(entry: Entry) -> None:
        seen.append(entry.message.text)
        if entry.message.text == "a:wrong":
            raise DeadLetter("not for this stream")

    for text in ("a:wrong", "a:next"):
        await redis_client.xadd(S, note(text))
    lanes = lanes_for(redis_client, handler)
    await run_until(with_lanes(redis_client, lanes), lambda: "a:next" in seen, 5, lanes)
    assert seen == ["a:wrong", "a:next"]
    ((_, fields),) = await redis_client.xrange(f"dlq:{S}")
    assert fields[b"dlq_reason"] == b"not for this stream"


async def test_a_handler_that_commits_its_own_ack_is_not_acked_again(redis_client):
    acks: list[int] = []

    async def handler(entry: Entry) -> None:
        out = Notification(id=entry.id, kind="info", text=entry.message.text)
        await (
            Commit()
            .publish("t:out", out)
            .ack(entry.stream, entry.group, entry.id, entry)
            .execute(redis_client)
        )
        acks.append(1)

    for text in ("a:1", "b:1"):
        await redis_client.xadd(S, note(text))
    lanes = lanes_for(redis_client, handler)
    await run_until(with_lanes(redis_client, lanes), lambda: len(acks) == 2, 5, lanes)
    assert await redis_client.xlen("t:out") == 2
    assert await pending_count(redis_client) == 0


async def test_in_flight_work_is_bounded(redis_client):
    release = asyncio.Event()
    most = 0

    async def handler(entry: Entry) -> None:
        nonlocal most
        most = max(most, lanes.in_flight)
        await release.wait()

    for i in range(20):
        await redis_client.xadd(S, note(f"k{i}:1"))
    lanes = lanes_for(redis_client, handler, max_in_flight=4)
    consumer = with_lanes(redis_client, lanes, count=1)
    tasks = [asyncio.create_task(consumer.run()), asyncio.create_task(lanes.run())]
    async with asyncio.timeout(5):
        while lanes.in_flight < 4:
            await asyncio.sleep(0.01)
    await asyncio.sleep(0.2)  # give an unbounded consumer the chance to read on (it must not)
    assert lanes.in_flight == 4
    assert await pending_count(redis_client) <= 5, "the consumer waits instead of reading everything"
    release.set()
    async with asyncio.timeout(5):
        while await pending_count(redis_client) or await redis_client.xlen(S) != 20:
            await asyncio.sleep(0.01)
    consumer.stop()
    lanes.stop()
    await asyncio.wait_for(asyncio.gather(*tasks), 5)
    assert most <= 4


async def test_stop_finishes_the_entry_in_hand_and_a_restart_replays_the_rest_in_order(redis_client):
    in_hand = asyncio.Event()
    finish = asyncio.Event()
    seen: list[str] = []

    async def slow(entry: Entry) -> None:
        if entry.message.text == "a:1":
            in_hand.set()
            await finish.wait()
        seen.append(entry.message.text)

    for text in ("a:1", "a:2", "a:3", "b:1"):
        await redis_client.xadd(S, note(text))
    lanes = lanes_for(redis_client, slow)
    consumer = with_lanes(redis_client, lanes)
    tasks = [asyncio.create_task(consumer.run()), asyncio.create_task(lanes.run())]
    await asyncio.wait_for(in_hand.wait(), 5)
    async with asyncio.timeout(5):
        while "b:1" not in seen:
            await asyncio.sleep(0.01)
    consumer.stop()
    lanes.stop()
    finish.set()
    await asyncio.wait_for(asyncio.gather(*tasks), 5)
    assert seen == ["b:1", "a:1"], "the entry in hand finished; a:2 and a:3 were left"
    assert await pending_count(redis_client) == 2
    again: list[str] = []

    async def handler(entry: Entry) -> None:
        again.append(entry.message.text)

    lanes = lanes_for(redis_client, handler)
    await run_until(with_lanes(redis_client, lanes), lambda: len(again) == 2, 5, lanes)
    assert again == ["a:2", "a:3"]
    assert await pending_count(redis_client) == 0


async def test_a_replay_of_the_own_pending_list_skips_what_lanes_hold(redis_client):
    """Claiming a dead consumer's entry makes the consumer replay its own pending list, where
    the lanes' entries in hand are too: they must neither be handed over twice nor counted."""
    await ensure_group(redis_client, S, G)
    await redis_client.xadd(S, note("c:1"))
    await redis_client.xreadgroup(G, "dead", {S: ">"}, count=10)
    release = asyncio.Event()
    calls: list[str] = []

    async def handler(entry: Entry) -> None:
        calls.append(entry.message.text)
        if not entry.message.text.startswith("c:"):
            await release.wait()

    for text in ("a:1", "a:2", "b:1"):
        await redis_client.xadd(S, note(text))
    lanes = lanes_for(redis_client, handler)
    consumer = with_lanes(redis_client, lanes, claim_idle_ms=50, claim_every_s=0.02)
    tasks = [asyncio.create_task(consumer.run()), asyncio.create_task(lanes.run())]
    async with asyncio.timeout(5):  # c:1 handled and acked (its lane acks after the handler)
        while "c:1" not in calls or len(calls) < 3 or await pending_count(redis_client) > 3:
            await asyncio.sleep(0.01)
    pending = await redis_client.xpending_range(S, G, "-", "+", 10)
    assert [p["times_delivered"] for p in pending] == [1, 1, 1], "a:1, a:2, b:1 delivered once each"
    assert sorted(calls) == ["a:1", "b:1", "c:1"]
    release.set()
    async with asyncio.timeout(5):
        while await pending_count(redis_client):
            await asyncio.sleep(0.01)
    consumer.stop()
    lanes.stop()
    await asyncio.wait_for(asyncio.gather(*tasks), 5)
    assert sorted(calls) == ["a:1", "a:2", "b:1", "c:1"] and calls.index("a:1") < calls.index("a:2")


async def test_a_fenced_handler_stops_every_lane_and_leaves_the_entries_pending(redis_client):
    started = asyncio.Event()

    async def handler(entry: Entry) -> None:
        if entry.message.text == "a:1":
            await started.wait()
            raise FencedError("another gateway holds the lease")
        started.set()
        await asyncio.sleep(3600)  # cancelled: its writes would be fenced too

    for text in ("a:1", "a:2", "b:1"):
        await redis_client.xadd(S, note(text))
    lanes = lanes_for(redis_client, handler, max_deliveries=1)
    consumer = with_lanes(redis_client, lanes)
    consume = asyncio.create_task(consumer.run())
    with pytest.raises(FencedError):
        await asyncio.wait_for(lanes.run(), 5)
    consumer.stop()
    await asyncio.wait_for(consume, 5)
    assert await redis_client.xlen(f"dlq:{S}") == 0
    assert await pending_count(redis_client) == 3, "left pending for whoever holds the lease now"
