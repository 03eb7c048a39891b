"""Market gateway benchmark: websocket -> Redis stream throughput and latency, real processes.

Three processes, as in production: a private redis-server (AOF everysec), the real gateway
(`python -m services.market_gateway`, uvloop, python-binance's BinanceSocketManager multiplex
socket), and a minimal Binance-protocol venue (aiohttp: /api/v3/klines and the /stream
multiplex websocket) that pushes messages on command:

- book tickers/s: 100,000 bookTicker events for 4 symbols written as pre-built frames, as fast
  as the socket takes them (the venue spends almost no CPU, so the gateway sets the pace); the
  rate is the entries' own Redis ids (first to last arrival in Redis). `book_round_trips` is
  how many batch writes (one command each) carried them.
- candles/s: 1,000 closed klines for each of 20 streams (10 symbols x 1m, 5m) pushed back to
  back; the rate is entries stored / time from the first push to the last entry in Redis.
- latency: bookTickers at a steady 1,000/s for 5 s (headline), then 10,000/s for 3 s (loaded),
  each stamped with `time.monotonic_ns()` in `u` (kept as BookTicker.update_id); a reader
  blocked in XREAD takes now - stamp. That is venue send -> readable in Redis, an upper bound of
  the latency the gateway adds.

Prints the figures, then one line with a JSON object of them.
Run: `.venv/bin/python bench/market_gateway.py` (about 40 s on 2 cores).
"""

from __future__ import annotations

import asyncio
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # `python bench/market_gateway.py` puts bench/ first
    sys.path.insert(0, str(ROOT))

BOOK_N = 100_000
BOOK_SYMBOLS = ["BTCUSDT", "ETHUSDT", "BNBUSDT", "SOLUSDT"]
CANDLE_SYMBOLS = [f"C{i}USDT" for i in range(10)]
CANDLE_INTERVALS = {"1m": 60_000, "5m": 300_000}
CANDLES_PER_STREAM = 1_000
LAT_RATE = 1_000
LAT_SECONDS = 5.0
LAT_WARMUP_S = 0.25  # first quarter second dropped (connections, caches)
LAT_RATE_LOADED = 10_000
LAT_SECONDS_LOADED = 3.0
BASE_OPEN_MS = 1_700_000_100_000 // 300_000 * 300_000
VENUE = "bench"


# -- the venue (runs in its own process: `bench/market_gateway.py --serve PORT`) --------------


def book_msg(symbol: str, i: int, stamp: int) -> str:
    p = 64_000 + i % 1000
    return (
        f'{{"stream":"{symbol.lower()}@bookTicker","data":{{"u":{stamp},"s":"{symbol}",'
        f'"b":"{p}.10","B":"1.234","a":"{p}.20","A":"0.567"}}}}'
    )


def kline_msg(symbol: str, interval: str, iv: int, open_ms: int) -> str:
    k = {
        "t": open_ms,
        "T": open_ms + iv - 1,
        "s": symbol,
        "i": interval,
        "o": "100.1",
        "c": "100.2",
        "h": "100.3",
        "l": "100.0",
        "v": "12.5",
        "n": 42,
        "x": True,
        "q": "1251.3",
    }
    data = {"e": "kline", "E": open_ms + iv, "s": symbol, "k": k}
    return json.dumps({"stream": f"{symbol.lower()}@kline_{interval}", "data": data}, separators=(",", ":"))


def frame(payload: bytes) -> bytes:
    """One unmasked server-to-client text frame (RFC 6455)."""
    n = len(payload)
    if n < 126:
        head = bytes((0x81, n))
    elif n < 65536:
        head = bytes((0x81, 126)) + n.to_bytes(2, "big")
    else:
        head = bytes((0x81, 127)) + n.to_bytes(8, "big")
    return head + payload


def serve(port: int) -> None:
    import uvloop
    from aiohttp import web

    sockets: dict[web.WebSocketResponse, Any] = {}  # socket -> its transport

    async def server_time(_r: web.Request) -> web.Response:
        return web.json_response({"serverTime": int(time.time() * 1000)})

    async def empty(_r: web.Request) -> web.Response:
        return web.json_response([])

    async def ping(_r: web.Request) -> web.Response:
        return web.json_response({})

    async def stream(request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse(autoping=True, compress=False)  # as Binance
        await ws.prepare(request)
        sockets[ws] = request.transport
        try:
            async for _ in ws:
                pass
        finally:
            sockets.pop(ws, None)
        return ws

    async def status(_r: web.Request) -> web.Response:
        return web.json_response({"sockets": len(sockets)})

    async def paced(n: int, rate: float, maker) -> float:
        """Messages one by one through aiohttp at a steady rate (latency)."""
        t0 = time.monotonic()
        for i in range(n):
            delay = t0 + i / rate - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            text = maker(i)
            for ws in list(sockets):
                await ws.send_str(text)
        return time.monotonic() - t0

    async def blast(messages: list[str]) -> float:
        """Pre-built frames written straight to the transport in big chunks, so this process
        spends almost no CPU and the gateway, not the venue, sets the pace (throughput)."""
        blob = b"".join(frame(m.encode()) for m in messages)
        t0 = time.monotonic()
        for transport in list(sockets.values()):
            for i in range(0, len(blob), 1 << 20):
                transport.write(blob[i : i + (1 << 20)])
                while transport.get_write_buffer_size() > 4 << 20:
                    await asyncio.sleep(0.001)
        return time.monotonic() - t0

    async def book(request: web.Request) -> web.Response:
        n, rate = int(request.query["n"]), float(request.query.get("rate", 0))
        syms = BOOK_SYMBOLS

        def make(i: int) -> str:
            return book_msg(syms[i % len(syms)], i, time.monotonic_ns())

        if rate:
            seconds = await paced(n, rate, make)
        else:
            seconds = await blast([make(i) for i in range(n)])
        return web.json_response({"sent": n, "seconds": seconds})

    async def klines(request: web.Request) -> web.Response:
        per_stream = int(request.query["n"])
        msgs = [
            kline_msg(s, name, iv, BASE_OPEN_MS + j * iv)
            for j in range(per_stream)
            for s in CANDLE_SYMBOLS
            for name, iv in CANDLE_INTERVALS.items()
        ]
        seconds = await blast(msgs)
        return web.json_response({"sent": len(msgs), "seconds": seconds})

    app = web.Application()
    app.router.add_get("/api/v3/ping", ping)
    app.router.add_get("/api/v3/time", server_time)
    app.router.add_get("/api/v3/klines", empty)
    app.router.add_get("/stream", stream)
    app.router.add_get("/ws/{name}", stream)
    app.router.add_get("/bench/status", status)
    app.router.add_post("/bench/book", book)
    app.router.add_post("/bench/klines", klines)
    uvloop.install()
    web.run_app(app, host="127.0.0.1", port=port, print=None, access_log=None)


# -- the bench ---------------------------------------------------------------------------------


def gateway_config(path: Path, venue_port: int) -> None:
    quoted = ", ".join(f'"{s}"' for s in CANDLE_SYMBOLS)
    books = ", ".join(f'"{s}"' for s in BOOK_SYMBOLS)
    intervals = ", ".join(f'"{i}"' for i in CANDLE_INTERVALS)
    path.write_text(
        f"""
[venues.{VENUE}]
kind = "sim"
protocol = "binance"
base_url = "http://127.0.0.1:{venue_port}"

[market_gateway]
warmup = 0
book_maxlen = 1000000
stall_factor = 100

[[market_gateway.feeds]]
venue = "{VENUE}"
symbols = [{quoted}]
intervals = [{intervals}]
book_tickers = [{books}]
""",
        encoding="utf-8",
    )


async def http(session: Any, method: str, url: str) -> Any:
    async with session.request(method, url, timeout=None) as resp:
        resp.raise_for_status()
        return await resp.json()


async def wait_for(predicate, within: float, what: str) -> None:
    deadline = time.monotonic() + within
    while not await predicate():
        if time.monotonic() > deadline:
            raise RuntimeError(f"timed out waiting for {what}")
        await asyncio.sleep(0.02)


async def latency(
    session: Any, venue: str, r: Any, redis_url: str, book_streams: list[str], rate: int, seconds: float
) -> list[float]:
    """Venue send -> readable in Redis, ms, for `rate` stamped book tickers a second (warm-up dropped)."""
    import redis.asyncio as aioredis

    from shared.codec import decode

    n = int(rate * seconds)
    ids = {name: (await r.xrevrange(name, count=1))[0][0] for name in book_streams}
    samples: list[float] = []

    async def reader() -> None:
        rd = aioredis.Redis.from_url(redis_url)
        try:
            while len(samples) < n:
                reply = await rd.xread(ids, block=2000, count=1000)
                now = time.monotonic_ns()
                if not reply:
                    break
                for stream, entries in reply:
                    name = stream.decode()
                    for entry_id, fields in entries:
                        ids[name] = entry_id
                        samples.append((now - decode(fields).update_id) / 1e6)
        finally:
            await rd.aclose()

    task = asyncio.create_task(reader())
    await http(session, "POST", f"{venue}/bench/book?n={n}&rate={rate}")
    await asyncio.wait_for(task, 30)
    return samples[int(rate * LAT_WARMUP_S) :]


async def measure(redis_url: str, venue: str) -> dict[str, Any]:
    import aiohttp
    import redis.asyncio as aioredis

    from shared import streams

    r = aioredis.Redis.from_url(redis_url)
    book_streams = [streams.book(VENUE, s) for s in BOOK_SYMBOLS]
    candle_streams = [streams.candles(VENUE, s, i) for s in CANDLE_SYMBOLS for i in CANDLE_INTERVALS]
    out: dict[str, Any] = {}
    async with aiohttp.ClientSession() as session:

        async def connected() -> bool:
            try:
                return (await http(session, "GET", f"{venue}/bench/status"))["sockets"] >= 1
            except aiohttp.ClientConnectionError:  # the venue process is still starting
                return False

        await wait_for(connected, 30, "the gateway's websocket")

        async def total(names: list[str]) -> int:
            pipe = r.pipeline(transaction=False)
            for name in names:
                pipe.xlen(name)
            return sum(await pipe.execute())

        # 1. book tickers, as fast as the socket takes them
        pushed = await http(session, "POST", f"{venue}/bench/book?n={BOOK_N}")
        out["book_push_per_s"] = round(BOOK_N / pushed["seconds"])

        async def books_in() -> bool:
            return await total(book_streams) >= BOOK_N

        await wait_for(books_in, 120, "book tickers in Redis")
        firsts, lasts = [], []
        for name in book_streams:
            firsts.append(int((await r.xrange(name, count=1))[0][0].split(b"-")[0]))
            lasts.append(int((await r.xrevrange(name, count=1))[0][0].split(b"-")[0]))
        span_s = max(max(lasts) - min(firsts), 1) / 1000
        out["book_per_s"] = round(BOOK_N / span_s)
        stats = await r.info("commandstats")
        batches = sum(v["calls"] for k, v in stats.items() if k in ("cmdstat_evalsha", "cmdstat_eval"))
        out["book_round_trips"] = batches
        out["book_n"] = BOOK_N

        # 2. closed candles, back to back on 20 streams
        n_candles = CANDLES_PER_STREAM * len(candle_streams)
        t0 = time.monotonic()
        await http(session, "POST", f"{venue}/bench/klines?n={CANDLES_PER_STREAM}")

        async def candles_in() -> bool:
            return await total(candle_streams) >= n_candles

        await wait_for(candles_in, 120, "candles in Redis")
        out["candles_per_s"] = round(n_candles / (time.monotonic() - t0))
        out["candles_n"] = n_candles

        # 3. latency at a steady rate, then at a loaded one
        for key, rate, seconds in (
            ("", LAT_RATE, LAT_SECONDS),
            ("_loaded", LAT_RATE_LOADED, LAT_SECONDS_LOADED),
        ):
            kept = await latency(session, venue, r, redis_url, book_streams, rate, seconds)
            q = statistics.quantiles(kept, n=100)
            out[f"latency{key}_rate_per_s"] = rate
            out[f"latency{key}_n"] = len(kept)
            out[f"latency{key}_p50_ms"] = round(q[49], 3)
            out[f"latency{key}_p99_ms"] = round(q[98], 3)
            out[f"latency{key}_max_ms"] = round(max(kept), 3)
        dups = 0
        for name in candle_streams:
            dups += (await r.xlen(name)) - CANDLES_PER_STREAM
        out["candle_entries_beyond_sent"] = dups
    await r.aclose()
    return out


def main() -> None:
    if len(sys.argv) == 3 and sys.argv[1] == "--serve":
        serve(int(sys.argv[2]))
        return
    from shared.redis_server import RedisServer, free_port

    with tempfile.TemporaryDirectory(prefix="bench-md-") as tmp:
        tmp_path = Path(tmp)
        server = RedisServer(tmp_path / "redis").start()
        venue_port = free_port()
        cfg = tmp_path / "automata.toml"
        gateway_config(cfg, venue_port)
        env = {
            **{k: v for k, v in os.environ.items() if not k.startswith(("BINANCE_", "BYBIT_", "AUTOMATA_"))},
            "REDIS_URL": server.url,
            "METRICS_PORT": "0",
            "PYTHONPATH": str(ROOT),
            "AUTOMATA_CONFIG": str(cfg),
            "LOG_LEVEL": "WARNING",
        }
        logs = {name: open(tmp_path / f"{name}.log", "ab") for name in ("venue", "gateway")}  # noqa: SIM115
        venue = subprocess.Popen(
            [sys.executable, __file__, "--serve", str(venue_port)],
            env=env,
            stdout=logs["venue"],
            stderr=subprocess.STDOUT,
        )
        gateway = subprocess.Popen(
            [sys.executable, "-m", "services.market_gateway"],
            env=env,
            cwd=ROOT,
            stdout=logs["gateway"],
            stderr=subprocess.STDOUT,
        )
        try:
            result = asyncio.run(measure(server.url, f"http://127.0.0.1:{venue_port}"))
        except Exception:
            for name, fh in logs.items():
                fh.flush()
                tail = (tmp_path / f"{name}.log").read_text(errors="replace")[-3000:]
                print(f"--- {name} log (end)\n{tail}", file=sys.stderr)
            raise
        finally:
            for proc in (gateway, venue):
                proc.terminate()
                try:
                    proc.wait(15)
                except subprocess.TimeoutExpired:
                    proc.kill()
            for fh in logs.values():
                fh.close()
            server.kill()
    result.update(
        {
            "python": platform.python_version(),
            "machine": platform.machine(),
            "cpus": os.cpu_count(),
            "date": time.strftime("%Y-%m-%d"),
        }
    )
    report(result)
    print(json.dumps(result))


def report(r: dict[str, Any]) -> None:
    print(f"python {r['python']}, {r['machine']}, {r['cpus']} cpus, uvloop; redis AOF everysec")
    print("websocket (python-binance multiplex socket) -> gateway -> Redis stream")
    print(f"  book tickers: {r['book_per_s']:>8,}/s ({r['book_n']:,} events, 4 symbols)  target >= 20,000/s")
    print(f"  candles:      {r['candles_per_s']:>8,}/s ({r['candles_n']:,} closed klines, 20 streams)")
    print("latency venue send -> readable in Redis (an upper bound of what the gateway adds):")
    for key in ("", "_loaded"):
        print(
            f"  at {r[f'latency{key}_rate_per_s']:>6,} book tickers/s: p50 {r[f'latency{key}_p50_ms']:.3f} ms"
            f"  p99 {r[f'latency{key}_p99_ms']:.3f} ms  max {r[f'latency{key}_max_ms']:.3f} ms  (target p99 < 5 ms)"
        )
    ok = r["book_per_s"] >= 20_000 and r["latency_p99_ms"] < 5
    print(f"targets met: {'yes' if ok else 'NO'}")


if __name__ == "__main__":
    main()
