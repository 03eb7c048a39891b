"""Strategy runner benchmark: events/s of one runner, event -> command latency, tick -> order,
and the floor of that last path.

Starts its own redis-server (AOF on; `--appendfsync always|everysec`, everysec by default as in
production) and the services as separate processes, and publishes closed 1m BTCUSDT candles to
md:candles:sim:BTCUSDT:1m itself, as the market gateway would. The strategy
(bench/_strategies.py, Echo) is as cheap as one can be, so the figures are the runner's own cost
per event: decode, step, and the exactly-once commit (state + commands + ack in one MULTI/EXEC
under WATCH of the lease and the state). Measuring code runs in spawned processes under uvloop;
latencies use time.monotonic_ns(), shared by all processes on Linux.

1. events/s: one runner (`python -m services.strategy_runner --bot ...`); EVENTS candles are
   XADDed at once (pipelined) and timed until the last one is applied. Twice: a strategy that
   does nothing (the headline: a trivial strategy), and one that places an order on
   every candle (each commit then also writes a command). No order gateway runs yet: a thread
   answers each runner's start-up sync as a gateway would.
2. event -> command: candles at LAT_RATE/s; the time from just before the candle's XADD until
   the command it caused is readable on orders:cmd:sim:{bot} (the command carries the candle's close
   time). This is `step_p50_ms` / `step_p99_ms`.
3. tick -> order, all services: the paper venue, the order gateway and a runner whose strategy
   places a MARKET order on every candle. Candles at --tick-rate/s (E2E_RATE), --tick-candles a
   round (E2E_N, the first twelfth dropped); the time from the candle's XADD
   until the gateway's first order update for that order (NEW or FILLED, after the venue
   answered) is readable on orders:events:{bot}. The venue's journal only has market times,
   so that update is the observable point.
4. the floor of 3, in the same run, on the same Redis and venue: a bare redis-py relay through
   the same hops. One process reads each candle (XREADGROUP) and XADDs the MARKET order command
   it causes, acked in the same round trip; another reads the command, sends the same request to
   the venue (python-binance create_order, newOrderRespType FULL, as the gateway) and XADDs the
   order update, acked likewise. No state, no write-ahead log, no fencing, no lease: what the
   path costs without the guarantees. Rounds of 3 and 4 alternate (E2E_ROUNDS each, samples
   pooled), and tick -> order is reported as a ratio to the floor (target: p99 within 2x).

Prints the figures, then one line with a JSON object of them.
Run: `.venv/bin/python bench/strategy_runner.py [--appendfsync always] [--tick-rate 100]
[--tick-candles 600]` (about 60 s on 2 cores with the defaults).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from decimal import Decimal
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import Child, Result, Stack, cpu_seconds, machine, percentiles, run, sim_client, stack  # noqa: E402

EVENTS = 20_000  # candles per events/s run
PUSH_BATCH = 1_000
LAT_RATE, LAT_SECONDS, LAT_WARMUP = 200, 5.0, 100  # candles/s, duration, dropped at the start
E2E_RATE, E2E_N = 100, 600  # defaults of --tick-rate and --tick-candles (candles a round)
E2E_ROUNDS = 2  # rounds of the stack and of the floor, alternated
T0 = 1_700_000_000_000  # open time of candle 0 (ms); every candle of the run is a new minute
MINUTE = 60_000
SYMBOL = "BTCUSDT"
STREAM = "md:candles:sim:BTCUSDT:1m"
QTY = Decimal("0.001")
# The floor's own streams (nothing of the system reads them) and its group.
FLOOR_STREAMS = ("bench:floor:candles", "bench:floor:cmd", "bench:floor:events")
FLOOR_GROUP = "floor"


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
    cmd_stream = order_commands("sim", bot)
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
    url: str,
    bot: str,
    first: int,
    rate: int,
    seconds: float,
    close: str,
    warmup: int,
    updates: bool,
    streams: tuple[str, str, str] | None = None,
) -> Result:
    """Candles at `rate`/s; latency to the command each one caused and, with `updates` (an
    order gateway runs), to the gateway's first order update of that order. `streams` (candles,
    commands, updates) default to the system's; the floor has its own. Samples in ns, the first
    `warmup` dropped."""
    from shared.codec import decode
    from shared.messages import PlaceOrder
    from shared.redis_conn import connect
    from shared.streams import order_commands, order_events

    writer, reader = connect(url), connect(url)
    candle_stream, cmd_stream, events = streams or (STREAM, order_commands("sim", bot), order_events(bot))
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
            await writer.xadd(candle_stream, fields, id=entry_id)

    producer = asyncio.create_task(produce())
    deadline = time.monotonic() + seconds + 15
    while len(to_cmd) < n or (updates and len(updated) < n):
        if time.monotonic() > deadline:
            raise TimeoutError(f"{len(to_cmd)} commands and {len(updated)} updates of {n} candles")
        wanted = {cmd_stream: after[cmd_stream]}
        if updates:
            wanted[events] = after[events]
        reply = await reader.xread(wanted, count=1000, block=1000)
        now = time.monotonic_ns()
        for stream_b, entries in sorted(reply or (), key=lambda r: r[0] != cmd_stream.encode()):
            stream = stream_b.decode()
            after[stream] = entries[-1][0].decode()
            for _id, fields in entries:
                msg = decode(fields)
                if stream == cmd_stream:
                    if not isinstance(msg, PlaceOrder):
                        continue  # a runner's start-up SyncBot
                    t_sent = sent.get(msg.ts)
                    if t_sent is not None and msg.cid not in cid_sent:
                        cid_sent[msg.cid], cmd_seen[msg.cid] = t_sent, now
                        to_cmd.append(now - t_sent)
                elif getattr(msg, "cid", None) in cid_sent and msg.cid not in updated:
                    updated.add(msg.cid)
                    to_update.append(now - cid_sent[msg.cid])
                    cmd_to_update.append(now - cmd_seen[msg.cid])
    await producer
    await writer.aclose()
    await reader.aclose()
    return {
        "n": n,
        "to_command": to_cmd[warmup:],
        "to_update": to_update[warmup:],
        "command_to_update": cmd_to_update[warmup:],
    }


# -- the floor: a bare redis-py relay through the same hops, each hop in its own process -------


async def _relay(url: str, name: str, source: str, n: int, seconds: float, handle: Any) -> Result:
    """Read `source` in the floor's group and hand each entry to `handle(pipe, fields)`, which
    queues what it writes; the entry's XACK rides in the same round trip. Stops after n."""
    import redis.asyncio as aioredis

    r = aioredis.Redis.from_url(url)
    await r.set(f"bench:floor:ready:{name}", 1)
    done, deadline = 0, time.monotonic() + seconds + 60
    while done < n and time.monotonic() < deadline:
        reply = await r.xreadgroup(FLOOR_GROUP, name, {source: ">"}, count=100, block=1000)
        for _stream, entries in reply or ():
            for entry_id, fields in entries:
                pipe = r.pipeline(transaction=False)
                await handle(pipe, fields)
                pipe.xack(source, FLOOR_GROUP, entry_id)
                await pipe.execute()
                done += 1
    await r.aclose()
    return {"handled": done}


async def floor_strategy(url: str, n: int, seconds: float, round_: int) -> Result:
    """Hop 1: a candle in, the MARKET order it causes out (the command carries the candle's close
    time, as the Echo strategy's)."""
    from shared.codec import decode, encode
    from shared.messages import OrderType, PlaceOrder, Side

    seq = 0

    async def handle(pipe: Any, fields: Any) -> None:
        nonlocal seq
        candle = decode(fields)
        seq += 1
        cmd = PlaceOrder(
            cid=f"floor-{round_ * 1_000_000 + seq:06d}", bot="floor", venue="sim", symbol=SYMBOL,
            side=Side.BUY, order_type=OrderType.MARKET, quantity=QTY,
            ts=candle.close_time,
        )  # fmt: skip
        pipe.xadd(FLOOR_STREAMS[1], encode(cmd))

    return await _relay(url, "strategy", FLOOR_STREAMS[0], n, seconds, handle)


async def floor_gateway(url: str, base_url: str, n: int, seconds: float) -> Result:
    """Hop 2: a command in, the venue's answer out as an order update (its client order ids
    have no bot prefix, so the order gateway's user stream ignores these orders)."""
    from shared.codec import decode, encode
    from shared.messages import OrderStatus, OrderUpdate
    from shared.money import fmt

    client = sim_client(base_url)
    await client.get_server_time()  # the connection is open before the first order, as the gateway's

    async def handle(pipe: Any, fields: Any) -> None:
        cmd = decode(fields)
        res = await client.create_order(
            symbol=cmd.symbol, side=cmd.side.value, type=cmd.order_type.value, quantity=fmt(cmd.quantity),
            newClientOrderId=cmd.cid, newOrderRespType="FULL",
        )  # fmt: skip
        update = OrderUpdate(
            cid=cmd.cid, bot=cmd.bot, venue=cmd.venue, symbol=cmd.symbol, status=OrderStatus(res["status"]),
            venue_order_id=str(res["orderId"]), cum_filled_qty=Decimal(res["executedQty"]),
            cum_quote_qty=Decimal(res["cummulativeQuoteQty"]), venue_ts=int(res["transactTime"]),
        )  # fmt: skip
        pipe.xadd(FLOOR_STREAMS[2], encode(update))

    try:
        return await _relay(url, "gateway", FLOOR_STREAMS[1], n, seconds, handle)
    finally:
        await client.close_connection()


def floor_round(s: Stack, first: int, price: str, round_: int, rate: int, n: int) -> Result:
    """Both relays up (connected, venue warmed), then the same paced candles as the stack's."""
    from tests.helpers.procs import wait_until

    seconds = n / rate
    r = s.sync_redis()
    try:
        r.delete("bench:floor:ready:strategy", "bench:floor:ready:gateway")
        relays = [
            Child(floor_strategy, s.url, n, seconds, round_),
            Child(floor_gateway, s.url, s.sim.base_url, n, seconds),
        ]
        wait_until(lambda: r.exists("bench:floor:ready:strategy", "bench:floor:ready:gateway") == 2,
                   timeout=60, what="the floor's relays")  # fmt: skip
    finally:
        r.close()
    out = run(
        paced,
        s.url,
        "floor",
        first,
        rate,
        seconds,
        price,
        n // 12,
        True,
        FLOOR_STREAMS,
        timeout=seconds + 120,
    )
    for relay in relays:
        if relay.result(seconds + 120)["handled"] != n:
            raise RuntimeError("a floor relay did not handle every entry")
    return out


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


def pooled(rounds: list[Result], key: str) -> Result:
    return percentiles([x for r in rounds for x in r[key]])


def ratio(ours: float | None, floor: float | None) -> float | None:
    return round(ours / floor, 2) if ours and floor else None


def bench(appendfsync: str, tick_rate: int, tick_n: int) -> Result:
    from tests.helpers.bots import publish_filters
    from tests.helpers.cmdstreams import command_streams
    from tests.helpers.syncs import SyncAnswerer

    with stack(appendfsync) as s:
        info = machine(s.url)
        r = s.sync_redis()
        publish_filters(r)  # what the order gateway would have published (no gateway yet)
        answerer = SyncAnswerer(s.url)  # the gateway's answer to each runner's start-up sync
        answerer.start()
        first = 0
        idle, idle_cpu = runner_phase(s, "idle", first, every=0)
        stop(s.procs.pop())
        first += EVENTS
        busy, busy_cpu = runner_phase(s, "bench", first, every=1)
        first += EVENTS
        lat = run(paced, s.url, "bench", first, LAT_RATE, LAT_SECONDS, "30000", LAT_WARMUP, False)
        first += lat["n"]
        stop(s.procs.pop())
        answerer.stop()
        # all services: the gateway must not see the bench runner's bare commands
        r.delete(*command_streams(r, "sim"))
        sim = s.start_sim()
        s.start_gateway()
        price = sim.control.state()["prices"][SYMBOL]
        s.start_runner(bots_file(s, "e2e", every=1, market=True), bot="e2e", name="e2e")
        for stream in FLOOR_STREAMS[:2]:
            r.xgroup_create(stream, FLOOR_GROUP, id="0", mkstream=True)
        ours: list[Result] = []
        floor: list[Result] = []
        floor_first = 0
        for round_ in range(E2E_ROUNDS):
            seconds = tick_n / tick_rate
            ours.append(
                run(
                    paced,
                    s.url,
                    "e2e",
                    first,
                    tick_rate,
                    seconds,
                    price,
                    tick_n // 12,
                    True,
                    timeout=seconds + 120,
                )
            )
            first += ours[-1]["n"]
            floor.append(floor_round(s, floor_first, price, round_, tick_rate, tick_n))
            floor_first += floor[-1]["n"]
        r.close()
        accepted = [e["client_order_id"] for e in sim.control.journal() if e["kind"] == "accepted"]
    e2e = [c for c in accepted if c.startswith("e2e-")]
    floor_accepted = [c for c in accepted if c.startswith("floor-")]
    step = percentiles(lat["to_command"])
    tick, floor_tick = pooled(ours, "to_update"), pooled(floor, "to_update")
    p99_ratio = ratio(tick["p99_ms"], floor_tick["p99_ms"])
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
        "tick_rate_per_s": tick_rate,
        "tick_rounds": E2E_ROUNDS,
        "tick_n": tick["n"],
        "tick_to_command_p50_ms": pooled(ours, "to_command")["p50_ms"],
        "tick_to_command_p99_ms": pooled(ours, "to_command")["p99_ms"],
        "command_to_order_p50_ms": pooled(ours, "command_to_update")["p50_ms"],
        "command_to_order_p99_ms": pooled(ours, "command_to_update")["p99_ms"],
        "tick_to_order_p50_ms": tick["p50_ms"],
        "tick_to_order_p99_ms": tick["p99_ms"],
        "tick_to_order_max_ms": tick["max_ms"],
        "floor_n": floor_tick["n"],
        "floor_tick_to_command_p50_ms": pooled(floor, "to_command")["p50_ms"],
        "floor_tick_to_command_p99_ms": pooled(floor, "to_command")["p99_ms"],
        "floor_command_to_order_p50_ms": pooled(floor, "command_to_update")["p50_ms"],
        "floor_command_to_order_p99_ms": pooled(floor, "command_to_update")["p99_ms"],
        "floor_tick_to_order_p50_ms": floor_tick["p50_ms"],
        "floor_tick_to_order_p99_ms": floor_tick["p99_ms"],
        "floor_tick_to_order_max_ms": floor_tick["max_ms"],
        "tick_to_order_ratio_p50": ratio(tick["p50_ms"], floor_tick["p50_ms"]),
        "tick_to_order_ratio_p99": p99_ratio,
        "venue_accepted": len(e2e),  # e2e orders in the venue's journal: one per candle
        "venue_duplicates": len(e2e) - len(set(e2e)),
        "floor_venue_accepted": len(floor_accepted),
        "targets_met": idle["events_per_s"] >= 5000 and step["p99_ms"] < 5.0,
        "floor_target_met": p99_ratio is not None and p99_ratio <= 2.0,
    }


def report(r: Result) -> None:
    print(
        f"{r['date']}: {r['cpus']} cores {r['machine']} ({r['cpu_model']}), python {r['python']},"
        f" redis {r['redis_version']} appendfsync {r['appendfsync']}, redis-py parser {r['redis_parser']}"
    )
    print(f"  {r['uname']}")
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
        f"  candle XADD -> command on orders:cmd:sim:bot  p50 {r['step_p50_ms']:.3f} ms  p99 {r['step_p99_ms']:.3f} ms"
        f"  (max {r['step_max_ms']:.3f} ms; target p99 < 5 ms)"
    )
    print(
        f"tick -> order, MARKET order per candle at {r['tick_rate_per_s']}/s, {r['tick_rounds']} rounds of"
        " each, alternated"
    )
    print("                                       our stack (venue + gateway + runner)   floor (bare relay)")
    for label, key in (
        ("candle XADD -> command", "tick_to_command"),
        ("command -> order update", "command_to_order"),
        ("candle XADD -> order update", "tick_to_order"),
    ):
        print(
            f"  {label:<28} p50 {r[key + '_p50_ms']:.3f} ms  p99 {r[key + '_p99_ms']:.3f} ms"
            f"   |  p50 {r['floor_' + key + '_p50_ms']:.3f} ms  p99 {r['floor_' + key + '_p99_ms']:.3f} ms"
        )
    print(
        f"  tick -> order as a ratio to the floor: p50 {r['tick_to_order_ratio_p50']}x,"
        f" p99 {r['tick_to_order_ratio_p99']}x (target p99 <= 2x)  ({r['tick_n']} / {r['floor_n']} samples,"
        f" max {r['tick_to_order_max_ms']:.3f} / {r['floor_tick_to_order_max_ms']:.3f} ms)"
    )
    print(
        f"  venue journal: {r['venue_accepted']} e2e orders accepted, {r['venue_duplicates']} twice;"
        f" {r['floor_venue_accepted']} floor orders"
    )
    print(
        f"targets met: {'yes' if r['targets_met'] else 'NO'};"
        f" floor ratio: {'yes' if r['floor_target_met'] else 'NO'}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument(
        "--appendfsync", choices=("everysec", "always"), default="everysec",
        help="Redis's AOF fsync policy for the whole run (production: everysec)",
    )  # fmt: skip
    parser.add_argument(
        "--tick-rate", type=int, default=E2E_RATE, help="candles/s of the tick -> order rounds"
    )
    parser.add_argument("--tick-candles", type=int, default=E2E_N, help="candles a tick -> order round")
    args = parser.parse_args()
    t0 = time.monotonic()
    result = bench(args.appendfsync, args.tick_rate, args.tick_candles)
    result["bench_seconds"] = round(time.monotonic() - t0, 1)
    report(result)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
