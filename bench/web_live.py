"""Stream entry -> browser event latency of the dashboard's live feed (GET /api/live), against a
bare redis-py XREAD BLOCK loop reading the same stream. Target: p99 < 100 ms.

A real redis-server and a real `python -m services.web` (its token set); the publisher XADDs N
decisions (`bot:bench:decisions`), one every PACE ms, each carrying its send time
(`time.monotonic_ns()`, shared by the processes of one Linux machine). Round 1, the baseline: a
redis-py client XREAD BLOCKs on the stream and takes each entry's time on arrival. Round 2: an
httpx client reads /api/live (server-sent events) and takes each `decision` event's time. The
web process adds its XREAD, the decoding, the JSON and SSE framing, the hub's fan-out and HTTP.
Prints both, the ratio of the p50s and p99s, and one JSON line."""

from __future__ import annotations

import json
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench._common import machine, percentiles, stack  # noqa: E402

N = int(sys.argv[1]) if len(sys.argv) > 1 else 500
PACE_S = 0.005
STREAM = "bot:bench:decisions"


def _publish(url: str, started: threading.Event) -> None:
    import redis

    from shared.codec import encode
    from shared.messages import Decision

    r = redis.Redis.from_url(url)
    started.wait(10)
    time.sleep(0.2)
    for i in range(N):
        r.xadd(
            STREAM,
            encode(Decision(bot="bench", text=f"entry {i}", fields={"sent_ns": str(time.monotonic_ns())})),
        )
        time.sleep(PACE_S)
    r.close()


def baseline(url: str) -> list[int]:
    """A bare redis-py XREAD BLOCK loop: the least any reader of the stream can do."""
    import orjson
    import redis

    r = redis.Redis.from_url(url)
    cursor = (r.xrevrange(STREAM, count=1) or [(b"0-0", {})])[0][0]
    started = threading.Event()
    publisher = threading.Thread(target=_publish, args=(url, started))
    publisher.start()
    started.set()
    got: list[int] = []
    while len(got) < N:
        for _stream, entries in r.xread({STREAM: cursor}, block=2000, count=100) or []:
            for entry_id, fields in entries:
                now = time.monotonic_ns()
                cursor = entry_id
                got.append(now - int(orjson.loads(fields[b"data"])["fields"]["sent_ns"]))
    publisher.join()
    r.close()
    return got


def through_web(url: str, base: str, token: str) -> list[int]:
    """The same entries as `decision` events of GET /api/live."""
    import httpx
    import orjson

    started = threading.Event()
    publisher = threading.Thread(target=_publish, args=(url, started))
    publisher.start()
    got: list[int] = []
    headers = {"authorization": f"Bearer {token}"}
    with httpx.stream("GET", f"{base}/api/live?seconds=600", headers=headers, timeout=30) as reply:
        event = ""
        for line in reply.iter_lines():
            if line.startswith(": connected"):
                started.set()
            elif line.startswith("event: "):
                event = line[7:]
            elif line.startswith("data: ") and event == "decision":
                now = time.monotonic_ns()
                got.append(now - int(orjson.loads(line[6:])["fields"]["sent_ns"]))
                if len(got) >= N:
                    break
    publisher.join()
    return got


def measure() -> dict:
    """Both rounds on a fresh Redis and web process: {baseline, web, ratio, machine}."""
    from tests.helpers.web import TOKEN, start_service

    with stack() as s:
        r = s.sync_redis()
        r.xadd(STREAM, {"type": b"x"})  # the stream exists before the web process first scans
        r.close()
        proc, base = start_service(s.url, s.tmp, AUTOMATA_WEB_TOKEN=TOKEN, LOG_LEVEL="WARNING")
        s.procs.append(proc)
        bare = percentiles(baseline(s.url))
        web = percentiles(through_web(s.url, base, TOKEN))
        where = machine(s.url)
    ratio = {k: round(web[k] / bare[k], 2) if bare[k] else None for k in ("p50_ms", "p99_ms")}
    return {"baseline": bare, "web": web, "ratio": ratio, "machine": where}


def main() -> int:
    result = measure()
    bare, web, ratio, where = result["baseline"], result["web"], result["ratio"], result["machine"]
    print(f"stream entry -> reader, {N} entries one every {PACE_S * 1000:.0f} ms")
    print(
        f"  bare redis-py XREAD BLOCK   p50 {bare['p50_ms']:.3f} ms  p99 {bare['p99_ms']:.3f} ms  max {bare['max_ms']:.3f} ms"
    )
    print(
        f"  GET /api/live (SSE)         p50 {web['p50_ms']:.3f} ms  p99 {web['p99_ms']:.3f} ms  max {web['max_ms']:.3f} ms"
    )
    print(
        f"  ratio web/bare              p50 {ratio['p50_ms']}x  p99 {ratio['p99_ms']}x  (target p99 < 100 ms)"
    )
    print(json.dumps({"bench": "web_live", "n": N, "baseline": bare, "web": web, "ratio": ratio,
                      "target_p99_ms": 100, "met": web["p99_ms"] is not None and web["p99_ms"] < 100, **where}))  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
