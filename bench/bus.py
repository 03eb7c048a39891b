"""Bus benchmark: publish and consume throughput and publish->handler latency, with baselines.

Starts its own redis-server (AOF on, appendfsync everysec, as in production) on a free port in
a temporary directory, then measures in the same run, every measurement in a fresh process
running uvloop (as the services do):

- publish: `publish_many` in pipelined batches of 100, and awaited single `publish`;
- consume: one bus `Consumer` (decode + trivial async handler + batched ack after the handler)
  against the plain redis-py loop (XREADGROUP COUNT 100 + one XACK per batch, no decoding),
  alternated over the same 100,000 entries (each run in a new group created at id 0);
- latency: a producer process publishes at a steady rate with a monotonic timestamp inside the
  message (BookTicker.update_id = time.monotonic_ns(), system-wide on Linux); a consumer
  process records handler-entry time minus that stamp; for the bus and the plain loop;
- for the record, the same consume through FastStream 0.7.8's RedisBroker (batch and per entry).

Prints the figures, then one line with a JSON object of them.
Run: `.venv/bin/python bench/bus.py` (about 45 s on 2 cores).
"""

from __future__ import annotations

import asyncio
import json
import platform
import statistics
import sys
import tempfile
import time
from decimal import Decimal
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # `python bench/bus.py` puts bench/ first, not the repository
    sys.path.insert(0, str(ROOT))

from shared.messages import BookTicker  # noqa: E402
from shared.redis_server import RedisServer  # noqa: E402

CONSUME_N = 100_000  # entries in the consume stream (every consume run reads all of them)
ROUNDS = 3  # baseline and bus runs, alternated; the median is the headline
PUBLISH_BATCH = 100
SINGLE_N = 10_000
LAT_RATE = 1_000  # entries/s
LAT_SECONDS = 5.0
LAT_WARMUP = 250  # first entries dropped from the percentiles (connections, caches)
FS_BATCH_N = 50_000
FS_ENTRY_N = 10_000
STREAM = "bench:book"

Result = dict[str, Any]


def ticker(i: int, stamp: int = 0) -> BookTicker:
    """A realistic hot-path message (~190 bytes as an envelope)."""
    p = Decimal(64_000 + i % 1000) / 10
    return BookTicker(
        venue="binance",
        symbol="BTCUSDT",
        bid=p,
        bid_qty=Decimal("1.234"),
        ask=p + Decimal("0.1"),
        ask_qty=Decimal("0.567"),
        ts=int(time.time() * 1000),
        update_id=stamp or i,
    )


# -- measurements, each run inside a child process -------------------------------------------


async def publish_throughput(url: str) -> Result:
    """publish_many (pipelined batches) fills STREAM with CONSUME_N entries; then single publish."""
    from shared.bus import publish, publish_many
    from shared.redis_conn import connect

    redis = connect(url)
    msgs = [ticker(i) for i in range(CONSUME_N)]
    t0 = time.perf_counter()
    for start in range(0, CONSUME_N, PUBLISH_BATCH):
        batch = msgs[start : start + PUBLISH_BATCH]
        await publish_many(redis, [(STREAM, m) for m in batch], maxlen=2 * CONSUME_N)
    many = CONSUME_N / (time.perf_counter() - t0)
    t0 = time.perf_counter()
    for m in msgs[:SINGLE_N]:
        await publish(redis, "bench:single", m, maxlen=2 * SINGLE_N)
    single = SINGLE_N / (time.perf_counter() - t0)
    size = sum(len(k) + len(v) for k, v in (await redis.xrange(STREAM, count=1))[0][1].items())
    await redis.aclose()
    return {"publish_many_per_s": many, "publish_single_per_s": single, "entry_bytes": size}


async def baseline_consume(url: str, group: str) -> Result:
    """Plain redis-py: XREADGROUP COUNT 100 + one XACK per batch, no decoding, no handler."""
    import redis.asyncio as aioredis

    redis = aioredis.Redis.from_url(url)
    await redis.xgroup_create(STREAM, group, id="0")
    done = 0
    t0 = time.perf_counter()
    while done < CONSUME_N:
        reply = await redis.xreadgroup(group, "c1", {STREAM: ">"}, count=100, block=1000)
        for _stream, entries in reply:
            await redis.xack(STREAM, group, *[eid for eid, _fields in entries])
            done += len(entries)
    elapsed = time.perf_counter() - t0
    await redis.aclose()
    return {"per_s": done / elapsed}


async def bus_consume(url: str, group: str, profile: str = "") -> Result:
    """One bus Consumer: decode + trivial async handler + ack after the handler."""
    from shared.bus import Consumer, Entry
    from shared.redis_conn import connect

    redis = connect(url)
    handled = 0

    async def handler(entry: Entry) -> None:
        nonlocal handled
        handled += 1
        if handled >= CONSUME_N:
            consumer.stop()  # the consumer acks this last entry, then run() returns

    consumer = Consumer(redis, [STREAM], group, "c1", handler)
    profiler = None
    if profile:
        import cProfile

        profiler = cProfile.Profile()
        profiler.enable()
    t0 = time.perf_counter()
    await consumer.run()
    elapsed = time.perf_counter() - t0
    if profiler is not None:
        profiler.disable()
        profiler.dump_stats(profile)
    pending = (await redis.xpending(STREAM, group))["pending"]
    await redis.aclose()
    return {"per_s": handled / elapsed, "pending_after": pending}


async def faststream_consume(url: str, group: str, batch: bool, n: int) -> Result:
    """FastStream RedisBroker, StreamSub with a group (created at 0 first), default ack policy."""
    import redis.asyncio as aioredis
    from faststream.redis import RedisBroker, StreamSub

    from shared.codec import decode

    admin = aioredis.Redis.from_url(url)
    await admin.xgroup_create(STREAM, group, id="0")  # FastStream would create it at `$`
    broker = RedisBroker(url, logger=None)
    done = asyncio.Event()
    handled = 0
    sub = StreamSub(STREAM, group=group, consumer="c1", batch=batch, max_records=100)

    if batch:

        @broker.subscriber(stream=sub)
        async def on_batch(body: list[dict[str, Any]]) -> None:
            nonlocal handled
            for fields in body:
                decode(fields)
            handled += len(body)
            if handled >= n:
                done.set()

    else:

        @broker.subscriber(stream=sub)
        async def on_entry(body: dict[str, Any]) -> None:
            # per entry, FastStream hands over `data` already parsed from JSON (batches get
            # the raw field maps): its own parse stands in for the envelope decode here
            nonlocal handled
            handled += 1
            if handled >= n:
                done.set()

    t0 = time.perf_counter()
    await broker.start()
    await asyncio.wait_for(done.wait(), 60)
    elapsed = time.perf_counter() - t0
    await broker.stop()
    await admin.aclose()
    return {"per_s": handled / elapsed}


async def latency_consumer(url: str, kind: str, n: int, ready: Any) -> Result:
    """Receive n entries from bench:lat:{kind}; latency = handler entry - monotonic stamp in the message."""
    from shared.bus import Consumer, Entry, ensure_group
    from shared.codec import decode
    from shared.redis_conn import connect

    stream, group = f"bench:lat:{kind}", "lat"
    redis = connect(url)
    await ensure_group(redis, stream, group, start_id="$")
    lat_ns: list[int] = []
    if kind == "bus":

        async def handler(entry: Entry) -> None:
            lat_ns.append(time.monotonic_ns() - entry.message.update_id)
            if len(lat_ns) >= n:
                consumer.stop()

        consumer = Consumer(redis, [stream], group, "c1", handler)
        task = asyncio.create_task(consumer.run())
        await consumer.wait_ready()
        ready.set()
        await task
    else:  # plain redis-py loop; decodes only to read the stamp
        ready.set()
        while len(lat_ns) < n:
            reply = await redis.xreadgroup(group, "c1", {stream: ">"}, count=100, block=1000)
            for _stream, entries in reply or ():
                now = time.monotonic_ns()
                lat_ns.extend(now - decode(fields).update_id for _id, fields in entries)
                await redis.xack(stream, group, *[eid for eid, _fields in entries])
    await redis.aclose()
    ms = sorted(x / 1e6 for x in lat_ns[LAT_WARMUP:])
    return {
        "p50_ms": ms[len(ms) // 2],
        "p99_ms": ms[int(len(ms) * 0.99)],
        "max_ms": ms[-1],
        "n": len(ms),
    }


async def latency_producer(url: str, kind: str, n: int) -> Result:
    """Publish n single entries at LAT_RATE/s on an absolute schedule (no drift)."""
    from shared.bus import publish
    from shared.redis_conn import connect

    redis = connect(url)
    stream = f"bench:lat:{kind}"
    interval = 1.0 / LAT_RATE
    start = time.monotonic()
    for i in range(n):
        delay = start + i * interval - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
        await publish(redis, stream, ticker(i, stamp=time.monotonic_ns()), maxlen=100_000)
    rate = n / (time.monotonic() - start)
    await redis.aclose()
    return {"rate_per_s": rate}


# -- process plumbing ------------------------------------------------------------------------


from _common import Child, run  # noqa: E402  (one child-process helper for every bench)


def latency(url: str, kind: str) -> Result:
    n = int(LAT_RATE * LAT_SECONDS)
    ready = Child.CTX.Event()
    consumer = Child(latency_consumer, url, kind, n, ready)
    if not ready.wait(30):
        raise TimeoutError("latency consumer did not start")
    producer = Child(latency_producer, url, kind, n)
    out = consumer.result()
    out["rate_per_s"] = producer.result()["rate_per_s"]
    return out


# -- report ----------------------------------------------------------------------------------


def redis_version(url: str) -> str:
    import redis

    client = redis.Redis.from_url(url)
    try:
        return str(client.info("server")["redis_version"])
    finally:
        client.close()


def bench(url: str, profile: str = "") -> Result:
    pub = run(publish_throughput, url)
    base_runs, bus_runs = [], []
    for r in range(ROUNDS):
        base_runs.append(run(baseline_consume, url, f"base{r}")["per_s"])
        bus = run(bus_consume, url, f"bus{r}", profile if r == 0 else "")
        if bus["pending_after"]:
            raise AssertionError(f"bus consumer left {bus['pending_after']} entries pending")
        bus_runs.append(bus["per_s"])
    lat_bus = latency(url, "bus")
    lat_base = latency(url, "plain")
    fs_batch = run(faststream_consume, url, "fs_batch", True, FS_BATCH_N)["per_s"]
    fs_entry = run(faststream_consume, url, "fs_entry", False, FS_ENTRY_N)["per_s"]
    consume = statistics.median(bus_runs)
    baseline = statistics.median(base_runs)
    return {
        "redis_version": redis_version(url),
        "python": platform.python_version(),
        "machine": platform.machine(),
        "entry_bytes": pub["entry_bytes"],
        "publish_per_s": round(pub["publish_many_per_s"]),
        "publish_single_per_s": round(pub["publish_single_per_s"]),
        "consume_per_s": round(consume),
        "baseline_consume_per_s": round(baseline),
        "consume_runs": [round(x) for x in bus_runs],
        "baseline_runs": [round(x) for x in base_runs],
        "ratio": round(baseline / consume, 3),
        "latency_rate_per_s": round(lat_bus["rate_per_s"]),
        "latency_p50_ms": round(lat_bus["p50_ms"], 3),
        "latency_p99_ms": round(lat_bus["p99_ms"], 3),
        "latency_max_ms": round(lat_bus["max_ms"], 3),
        "baseline_latency_p50_ms": round(lat_base["p50_ms"], 3),
        "baseline_latency_p99_ms": round(lat_base["p99_ms"], 3),
        "faststream_batch_per_s": round(fs_batch),
        "faststream_per_entry_per_s": round(fs_entry),
        "targets_met": consume >= 20_000 and baseline / consume <= 1.5,
    }


def report(r: Result) -> None:
    print(f"redis {r['redis_version']} (AOF everysec), python {r['python']}, {r['machine']}, uvloop")
    print(f"entry: BookTicker envelope, {r['entry_bytes']} bytes of fields")
    print("publish")
    print(f"  publish_many, pipelined batches of {PUBLISH_BATCH}: {r['publish_per_s']:>8,} entries/s")
    print(f"  publish, one awaited XADD each:          {r['publish_single_per_s']:>8,} entries/s")
    print(f"consume ({CONSUME_N:,} entries, one process, median of {ROUNDS})")
    print(
        f"  plain redis-py, COUNT 100 + 1 XACK/batch: {r['baseline_consume_per_s']:>8,} entries/s {r['baseline_runs']}"
    )
    print(
        f"  bus Consumer, decode + handler + ack:     {r['consume_per_s']:>8,} entries/s {r['consume_runs']}"
    )
    print(f"  ratio baseline / bus: {r['ratio']:.2f}x (target <= 1.5x, and >= 20,000/s)")
    print(f"publish -> handler latency at {r['latency_rate_per_s']:,}/s, separate processes")
    print(
        f"  bus:   p50 {r['latency_p50_ms']:.3f} ms  p99 {r['latency_p99_ms']:.3f} ms  max {r['latency_max_ms']:.3f} ms"
    )
    print(f"  plain: p50 {r['baseline_latency_p50_ms']:.3f} ms  p99 {r['baseline_latency_p99_ms']:.3f} ms")
    print("for the record: FastStream 0.7.8 RedisBroker, StreamSub(group, max_records=100), logger=None")
    print(f"  batch=True:  {r['faststream_batch_per_s']:>8,} entries/s ({FS_BATCH_N:,} entries)")
    print(f"  per entry:   {r['faststream_per_entry_per_s']:>8,} entries/s ({FS_ENTRY_N:,} entries)")
    print(f"targets met: {'yes' if r['targets_met'] else 'NO'}")


def main() -> None:
    profile = sys.argv[1] if len(sys.argv) > 1 and sys.argv[1].endswith(".prof") else ""
    t0 = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="automata-bench-") as tmp:
        server = RedisServer(Path(tmp) / "redis").start()
        try:
            result = bench(server.url, profile)
        finally:
            server.stop()
    result["bench_seconds"] = round(time.monotonic() - t0, 1)
    report(result)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
