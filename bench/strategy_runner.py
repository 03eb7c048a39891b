"""Strategy runner benchmark: events/s of one runner, event -> command latency, tick -> order.

Starts its own redis-server (AOF on) and the services as separate processes, and publishes
closed 1m BTCUSDT candles to md:candles:sim:BTCUSDT:1m itself, as the market gateway would.
The strategy (bench/_strategies.py, Echo) is as cheap as one can be, so the figures are the
runner's own cost per event: decode, step, and the exactly-once commit (state + commands +
ack in one MULTI/EXEC under WATCH of the lease and the state). Measuring code runs in spawned
processes under uvloop; latencies use time.monotonic_ns(), shared by all processes on Linux.

1. events/s: one runner (`python -m services.strategy_runner --bot ...`); EVENTS candles are
   XADDed at once (pipelined) and timed until the last one is applied. Twice: a strategy that
   does nothing (the headline, the issue's "trivial strategy"), and one that places an order on
   every candle (each commit then also writes a command).
2. event -> command: candles at LAT_RATE/s; the time from just before the candle's XADD until
   the command it caused is readable on orders:cmd:sim (the command carries the candle's close
   time). This is `step_p50_ms` / `step_p99_ms`.
3. tick -> order, all services: the paper venue, the order gateway and a runner whose strategy
   places a MARKET order on every candle. Candles at E2E_RATE/s; the time from the candle's XADD
   until the gateway's first order update for that order (NEW or FILLED, after the venue
   answered) is readable on orders:events:{bot}. The venue's journal only has market times,
   so that update is the observable point.

Prints the figures, then one line with a JSON object of them.
Run: `.venv/bin/python bench/strategy_runner.py` (about 60 s on 2 cores).
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from decimal import Decimal
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import Result, Stack, cpu_seconds, machine, percentiles, run, stack  # noqa: E402

EVENTS = 20_000  # candles per events/s run
PUSH_BATCH = 1_000
LAT_RATE, LAT_SECONDS, LAT_WARMUP = 200, 5.0, 100  # candles/s, duration, dropped at the start
E2E_RATE, E2E_SECONDS, E2E_WARMUP = 100, 6.0, 50
T0 = 1_700_000_000_000  # open time of candle 0 (ms); every candle of the run is a new minute
MINUTE = 60_000
SYMBOL = "BTCUSDT"
STREAM = "md:candles:sim:BTCUSDT:1m"


def candle_fields(i: int, close: Decimal) -> tuple[str, dict[bytes, bytes]]:
    """Entry id and fields of closed candle i (the market gateway's id scheme)."""
    from shared.codec import encode
    from shared.messages import Candle
    from shared.streams import candle_entry_id

    open_time = T0 + i * MINUTE
    c = Candle(venue="sim", symbol=SYMBOL, interval="1m", open_time=open_time, close_time=open_time + MINUTE - 1,
               open=close, high=close, low=close, close=close, volume=Decimal(1))  # fmt: skip
    return candle_entry_id(open_time), encode(c)


def close_time(i: int) -> int:
    return T0 + (i + 1) * MINUTE - 1


# -- measurements, each in a child process ---------------------------------------------------


async def events_per_s(url: str, bot: str, first: int, n: int, with_orders: bool) -> Result:
    """n candles XADDed at once; time until the runner applied the last one."""
    from shared.redis_conn import connect
    from shared.streams import bot_state, order_commands

    writer, reader = connect(url), connect(url)
    entries = [candle_fields(first + i, Decimal("30000")) for i in range(n)]
    cmd_stream = order_commands("sim")
    commands_before = await reader.xlen(cmd_stream)

    async def push() -> None:
        for start in range(0, n, PUSH_BATCH):
            pipe = writer.pipeline(transaction=False)
            for entry_id, fields in entries[start : start + PUSH_BATCH]:
                pipe.xadd(STREAM, fields, id=entry_id)
            await pipe.execute()

    t0 = time.monotonic()
    pusher = asyncio.create_task(push())
    # poll the state document (5 ms steps against a run of seconds): reading the commands
    # instead would put a decoding reader on the 2 cores the runner and Redis need
    while json.loads(await reader.get(bot_state(bot)) or b"{}").get("state", {}).get("candles", 0) < n:
        await asyncio.sleep(0.005)
    elapsed = time.monotonic() - t0
    await pusher
    commands = await reader.xlen(cmd_stream) - commands_before
    await writer.aclose()
    await reader.aclose()
    if commands != (n if with_orders else 0):
        raise AssertionError(f"{commands} commands for {n} candles")
    return {"seconds": elapsed, "events_per_s": n / elapsed}


async def paced(
    url: str, bot: str, first: int, rate: int, seconds: float, close: str, warmup: int, updates: bool
) -> Result:
    """Candles at `rate`/s; latency to the command each one caused and, with `updates` (an
    order gateway runs), to the gateway's first order update of that order."""
    from shared.codec import decode
    from shared.redis_conn import connect
    from shared.streams import order_commands, order_events

    writer, reader = connect(url), connect(url)
    cmd_stream, events = order_commands("sim"), order_events(bot)
    after: dict[str, str] = {}
    for stream in (cmd_stream, events):
        last = await reader.xrevrange(stream, count=1)
        after[stream] = last[0][0].decode() if last else "0-0"
    n = int(rate * seconds)
    sent: dict[int, int] = {}  # candle close time -> monotonic ns just before its XADD
    cid_sent: dict[str, int] = {}
    to_cmd: list[int] = []
    to_update: list[int] = []
    cmd_to_update: list[int] = []
    cmd_seen: dict[str, int] = {}
    updated: set[str] = set()

    async def produce() -> None:
        start = time.monotonic()
        for i in range(n):
            delay = start + i / rate - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            entry_id, fields = candle_fields(first + i, Decimal(close))
            sent[close_time(first + i)] = time.monotonic_ns()
            await writer.xadd(STREAM, fields, id=entry_id)

    producer = asyncio.create_task(produce())
    deadline = time.monotonic() + seconds + 15
    while len(to_cmd) < n or (updates and len(updated) < n):
        if time.monotonic() > deadline:
            raise TimeoutError(f"{len(to_cmd)} commands and {len(updated)} updates of {n} candles")
        streams = {cmd_stream: after[cmd_stream]}
        if updates:
            streams[events] = after[events]
        reply = await reader.xread(streams, count=1000, block=1000)
        now = time.monotonic_ns()
        for stream_b, entries in sorted(reply or (), key=lambda r: r[0] != cmd_stream.encode()):
            stream = stream_b.decode()
            after[stream] = entries[-1][0].decode()
            for _id, fields in entries:
                msg = decode(fields)
                if stream == cmd_stream:
                    t_sent = sent.get(msg.ts)
                    if t_sent is not None and msg.cid not in cid_sent:
                        cid_sent[msg.cid], cmd_seen[msg.cid] = t_sent, now
                        to_cmd.append(now - t_sent)
                elif msg.cid in cid_sent and msg.cid not in updated:
                    updated.add(msg.cid)
                    to_update.append(now - cid_sent[msg.cid])
                    cmd_to_update.append(now - cmd_seen[msg.cid])
    await producer
    await writer.aclose()
    await reader.aclose()
    return {
        "n": n,
        "to_command": percentiles(to_cmd[warmup:]),
        "to_update": percentiles(to_update[warmup:]),
        "command_to_update": percentiles(cmd_to_update[warmup:]),
    }


# -- the run ---------------------------------------------------------------------------------


def bots_file(s: Stack, bot: str, **params: Any) -> Path:
    from tests.helpers.bots import write_bots

    spec = {
        "id": bot,
        "strategy": "bench._strategies:Echo",
        "venue": "sim",
        "symbol": SYMBOL,
        "interval": "1m",
    }
    return write_bots(s.tmp / f"{bot}.toml", {**spec, "params": params})


def runner_phase(s: Stack, bot: str, first: int, every: int) -> tuple[Result, float]:
    """A fresh runner for `bot`; EVENTS candles at once; its CPU ms per event."""
    proc = s.start_runner(bots_file(s, bot, every=every), bot=bot, name=bot)
    cpu0 = cpu_seconds(proc.pid)
    out = run(events_per_s, s.url, bot, first, EVENTS, every > 0)
    cpu_ms = (cpu_seconds(proc.pid) - cpu0) / EVENTS * 1000
    return out, cpu_ms


def stop(proc: Any) -> None:
    if proc.terminate(15) != 0:
        raise RuntimeError(f"runner exited uncleanly:\n{proc.output()[-2000:]}")


def bench() -> Result:
    from tests.helpers.bots import publish_filters

    with stack() as s:
        info = machine(s.url)
        r = s.sync_redis()
        publish_filters(r)  # what the order gateway would have published (no gateway yet)
        first = 0
        idle, idle_cpu = runner_phase(s, "idle", first, every=0)
        stop(s.procs.pop())
        first += EVENTS
        busy, busy_cpu = runner_phase(s, "bench", first, every=1)
        first += EVENTS
        lat = run(paced, s.url, "bench", first, LAT_RATE, LAT_SECONDS, "30000", LAT_WARMUP, False)
        first += lat["n"]
        stop(s.procs.pop())
        # all services: the gateway must not see the bench runner's bare commands
        r.delete("orders:cmd:sim")
        sim = s.start_sim()
        s.start_gateway()
        price = sim.control.state()["prices"][SYMBOL]
        s.start_runner(bots_file(s, "e2e", every=1, market=True), bot="e2e", name="e2e")
        e2e = run(paced, s.url, "e2e", first, E2E_RATE, E2E_SECONDS, price, E2E_WARMUP, True)
        r.close()
        accepted = [
            e["client_order_id"]
            for e in sim.control.journal()
            if e["kind"] == "accepted" and e.get("client_order_id", "").startswith("e2e-")
        ]
    step, tick = lat["to_command"], e2e["to_update"]
    return {
        **info,
        "events_n": EVENTS,
        "events_per_s": round(idle["events_per_s"]),
        "events_per_s_order_each": round(busy["events_per_s"]),
        "runner_cpu_ms_per_event": round(idle_cpu, 3),
        "runner_cpu_ms_per_event_order_each": round(busy_cpu, 3),
        "step_rate_per_s": LAT_RATE,
        "step_n": step["n"],
        "step_p50_ms": step["p50_ms"],
        "step_p99_ms": step["p99_ms"],
        "step_max_ms": step["max_ms"],
        "tick_rate_per_s": E2E_RATE,
        "tick_n": tick["n"],
        "tick_to_command_p50_ms": e2e["to_command"]["p50_ms"],
        "tick_to_command_p99_ms": e2e["to_command"]["p99_ms"],
        "command_to_order_p50_ms": e2e["command_to_update"]["p50_ms"],
        "command_to_order_p99_ms": e2e["command_to_update"]["p99_ms"],
        "tick_to_order_p50_ms": tick["p50_ms"],
        "tick_to_order_p99_ms": tick["p99_ms"],
        "tick_to_order_max_ms": tick["max_ms"],
        "venue_accepted": len(accepted),  # e2e orders in the venue's journal: one per candle
        "venue_duplicates": len(accepted) - len(set(accepted)),
        "targets_met": idle["events_per_s"] >= 5000 and step["p99_ms"] < 5.0,
    }


def report(r: Result) -> None:
    print(
        f"{r['date']}: {r['cpus']} cores {r['machine']}, python {r['python']}, redis {r['redis_version']},"
        f" redis-py parser {r['redis_parser']}"
    )
    print(f"events/s, one runner, {r['events_n']:,} candles XADDed at once")
    print(
        f"  strategy does nothing:        {r['events_per_s']:>6,} events/s"
        f"  (runner CPU {r['runner_cpu_ms_per_event']} ms/event; target >= 5,000)"
    )
    print(
        f"  an order on every candle:     {r['events_per_s_order_each']:>6,} events/s"
        f"  (runner CPU {r['runner_cpu_ms_per_event_order_each']} ms/event)"
    )
    print(f"event -> command, candles at {r['step_rate_per_s']}/s, {r['step_n']} samples")
    print(
        f"  candle XADD -> command on orders:cmd:sim  p50 {r['step_p50_ms']:.3f} ms  p99 {r['step_p99_ms']:.3f} ms"
        f"  (max {r['step_max_ms']:.3f} ms; target p99 < 5 ms)"
    )
    print(
        f"tick -> order, venue + order gateway + runner, MARKET order per candle at {r['tick_rate_per_s']}/s"
    )
    print(
        f"  candle XADD -> command:                p50 {r['tick_to_command_p50_ms']:.3f} ms"
        f"  p99 {r['tick_to_command_p99_ms']:.3f} ms"
    )
    print(
        f"  command -> gateway's order update:     p50 {r['command_to_order_p50_ms']:.3f} ms"
        f"  p99 {r['command_to_order_p99_ms']:.3f} ms"
    )
    print(
        f"  candle XADD -> order update (tick->order): p50 {r['tick_to_order_p50_ms']:.3f} ms"
        f"  p99 {r['tick_to_order_p99_ms']:.3f} ms  ({r['tick_n']} samples, max {r['tick_to_order_max_ms']:.3f} ms)"
    )
    print(f"  venue journal: {r['venue_accepted']} e2e orders accepted, {r['venue_duplicates']} twice")
    print(f"targets met: {'yes' if r['targets_met'] else 'NO'}")


def main() -> None:
    t0 = time.monotonic()
    result = bench()
    result["bench_seconds"] = round(time.monotonic() - t0, 1)
    report(result)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
