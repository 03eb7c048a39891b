"""Bus guarantees with real processes and real SIGKILLs."""

from __future__ import annotations

import asyncio
from pathlib import Path

import redis

from shared.bus import ensure_group
from shared.codec import decode
from tests.helpers.procs import Proc, python, wait_until
from tests.helpers.streams import log_lines, note

WORKER = "tests/helpers/bus_worker.py"


def worker(env: dict[str, str], tmp_path: Path, name: str, *args: str) -> Proc:
    proc = python(WORKER, "--name", name, *args, env=env, log_path=tmp_path / f"{name}.log").start()
    return proc


def wait_ready(r: redis.Redis, name: str) -> None:
    wait_until(lambda: name.encode() in r.lrange("t:ready", 0, -1), what=f"{name} ready")


def test_sigkill_mid_handler_loses_nothing(env, tmp_path, sync_redis):
    for text in ("a", "b", "c"):
        sync_redis.xadd("t:in", note(text))
    w = worker(env, tmp_path, "w1", "--hang", "b")
    wait_until(lambda: any(x.startswith("start:b") for x in log_lines(sync_redis)), what="b started")
    w.kill()
    assert "done:b:w1" not in log_lines(sync_redis)
    assert sync_redis.xpending("t:in", "g")["pending"] >= 1
    sync_redis.xadd("t:in", note("d"))
    w2 = worker(env, tmp_path, "w1")  # same consumer name: replays its own pending entries first
    wait_until(lambda: "done:d:w1" in log_lines(sync_redis), what="d done")
    lines = log_lines(sync_redis)
    done = [x for x in lines if x.startswith("done:")]
    # at-least-once: every entry done; b (killed mid-handler) done only by the restarted process,
    # after its replay; acks are batched, so a and c, handled but not yet acked, may run twice
    assert set(done) == {"done:a:w1", "done:b:w1", "done:c:w1", "done:d:w1"}
    assert lines.index("done:b:w1") > lines.index(next(x for x in lines if x.startswith("start:b")))
    assert [x for x in lines if x.startswith("start:b")][-1].endswith(":2"), "b replayed as delivery 2"
    # acks are batched: d's comes a moment after its "done" line
    wait_until(lambda: sync_redis.xpending("t:in", "g")["pending"] == 0, what="every entry acked")
    assert w2.terminate() == 0


def test_second_consumer_takes_over_dead_consumers_entries(env, tmp_path, sync_redis):
    for text in ("a", "b"):
        sync_redis.xadd("t:in", note(text))
    w1 = worker(env, tmp_path, "w1", "--hang", "a")
    wait_until(lambda: any(x.startswith("start:a") for x in log_lines(sync_redis)), what="a started")
    w1.kill()
    # w1 never comes back; w2, another consumer, claims a and b after they idle 300 ms
    w2 = worker(env, tmp_path, "w2", "--claim-idle-ms", "300")
    wait_until(lambda: {"done:a:w2", "done:b:w2"} <= set(log_lines(sync_redis)), what="takeover")
    wait_until(lambda: sync_redis.xpending("t:in", "g")["pending"] == 0, what="every entry acked")
    assert w2.terminate() == 0


def test_poison_entry_that_kills_the_process_ends_in_dlq(env, tmp_path, sync_redis):
    sync_redis.xadd("t:in", note("poison"))
    sync_redis.xadd("t:in", note("after"))
    for attempt in range(1, 4):
        w = worker(env, tmp_path, "w1", "--die", "poison", "--max-deliveries", "3")
        w.popen.wait(20)
        assert w.popen.returncode == -9, f"attempt {attempt} should have died on the poison entry"
    w = worker(env, tmp_path, "w1", "--die", "poison", "--max-deliveries", "3")
    wait_until(lambda: "done:after:w1" in log_lines(sync_redis), what="entry after the poison")
    ((_, fields),) = sync_redis.xrange("dlq:t:in")
    assert fields[b"dlq_reason"] == b"failed 3 deliveries"
    assert decode(fields).text == "poison"
    wait_until(lambda: sync_redis.xpending("t:in", "g")["pending"] == 0, what="every entry acked")  # batched
    assert w.terminate() == 0


def test_commit_is_all_or_nothing_under_sigkill(env, tmp_path, sync_redis):
    """Kill the worker while it is inside MULTI (commands queued, no EXEC): nothing is applied.
    A fresh worker then commits the entry exactly once."""
    sync_redis.xadd("t:in", note("x"))
    asyncio.run(ensure_group(_async(env), "t:in", "g"))
    half = python("tests/helpers/half_commit.py", env=env, log_path=tmp_path / "half.log").start()
    wait_until(lambda: sync_redis.get("t:half") == b"queued", what="half commit queued")
    half.kill()
    assert sync_redis.get("t:state:x") is None
    assert sync_redis.xlen("t:out") == 0
    assert sync_redis.xpending("t:in", "g")["pending"] == 1
    w = worker(env, tmp_path, "w1", "--commit")
    wait_until(lambda: sync_redis.get("t:state:x"), what="committed")
    assert sync_redis.xlen("t:out") == 1
    assert sync_redis.xpending("t:in", "g")["pending"] == 0
    assert w.terminate() == 0


def test_redis_sigkill_keeps_acknowledged_work(env, tmp_path, sync_redis, redis_server):
    for text in ("a", "b", "c"):
        sync_redis.xadd("t:in", note(text))
    w = worker(env, tmp_path, "w1", "--commit")
    wait_until(lambda: sync_redis.xlen("t:out") == 3, what="3 committed")
    wait_until(lambda: sync_redis.xpending("t:in", "g")["pending"] == 0, what="acked")
    redis_server.kill()
    redis_server.start()  # same directory: the AOF is replayed
    r = redis.Redis.from_url(redis_server.url)
    assert r.xlen("t:out") == 3
    assert {r.get(f"t:state:{t}") is not None for t in "abc"} == {True}
    assert r.xpending("t:in", "g")["pending"] == 0
    # the worker reconnects by itself and keeps going
    r.xadd("t:in", note("d"))
    wait_until(lambda: r.xlen("t:out") == 4, timeout=20, what="worker reconnected")
    assert r.xpending("t:in", "g")["pending"] == 0
    assert w.terminate() == 0
    r.close()


def _async(env: dict[str, str]):
    import redis.asyncio as aioredis

    return aioredis.Redis.from_url(env["REDIS_URL"])
