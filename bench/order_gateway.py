"""Order gateway benchmark: command -> venue latency, the gateway's overhead, sustained orders/s.

Starts its own redis-server (AOF on), the paper venue (step mode, rate limits off) and the
order gateway (`python -m services.order_gateway`) as separate processes. Every order is a
MARKET order of 0.001 BTCUSDT, buys and sells alternating, so it fills at once and balances
never run out. Each measurement runs in a fresh spawned process under uvloop:

- direct: the same orders sent by a python-binance AsyncClient straight to the venue, one
  awaited `create_order` (newOrderRespType FULL, as the gateway asks) at a time; the venue's
  own time, client included. Their client order ids have no bot prefix, so the gateway's user
  stream ignores them as foreign orders;
- through the gateway: XADD a PlaceOrder to orders:cmd:sim:bench, then XREAD orders:events:bench
  until the gateway's first order update for that cid (NEW or FILLED) is readable; one at a
  time. The venue's journal only has market times, so the moment the venue saw the order is
  not observable: this is command in -> update out, the venue's time included;
- overhead = through the gateway - direct, at p50 and at p99 separately;
- sustained: THROUGHPUT_N commands XADDed at once (pipelined), timed until the update of
  every one of them was readable. The venue's journal is then checked: each cid accepted once.

Direct and gateway latency runs alternate, ROUNDS of each; the figures pool their samples.
Prints the figures, then one line with a JSON object of them.
Run: `.venv/bin/python bench/order_gateway.py` (about 40 s on 2 cores); `--idle-bots N` adds N
empty bot command streams the gateway reads beside the bench bot's (one stream per bot).
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
from _common import (  # noqa: E402
    BOT,
    Result,
    cpu_seconds,
    machine,
    percentiles,
    redis_commands,
    run,
    sim_client,
    stack,
)

LAT_N = 500  # orders per latency run (after the warm-up)
LAT_WARMUP = 50
ROUNDS = 2  # direct and gateway latency runs, alternated
THROUGHPUT_N = 5_000
PUSH_BATCH = 500
SYMBOL = "BTCUSDT"
QTY = Decimal("0.001")


def command(seq: int) -> Any:
    from shared.ids import format_cid
    from shared.messages import OrderType, PlaceOrder, Side

    return PlaceOrder(
        cid=format_cid(BOT, seq), bot=BOT, venue="sim", symbol=SYMBOL,
        side=Side.BUY if seq % 2 else Side.SELL, order_type=OrderType.MARKET, quantity=QTY,
        ts=int(time.time() * 1000),
    )  # fmt: skip


# -- measurements, each in a child process ---------------------------------------------------


async def direct(base_url: str, round_: int) -> Result:
    """Serial create_order calls straight to the venue: its own time, client included."""
    client = sim_client(base_url)
    lat: list[int] = []
    try:
        for i in range(LAT_WARMUP + LAT_N):
            t0 = time.monotonic_ns()
            await client.create_order(
                symbol=SYMBOL, side="BUY" if i % 2 == 0 else "SELL", type="MARKET", quantity="0.001",
                newClientOrderId=f"direct.{round_}.{i}", newOrderRespType="FULL",
            )  # fmt: skip
            lat.append(time.monotonic_ns() - t0)
    finally:
        await client.close_connection()
    return {"lat_ns": lat[LAT_WARMUP:]}


async def _last_id(redis: Any, stream: str) -> str:
    last = await redis.xrevrange(stream, count=1)
    return last[0][0].decode() if last else "0-0"


async def via_gateway(url: str, first_seq: int) -> Result:
    """XADD one PlaceOrder, XREAD until the gateway's update for it; one order at a time."""
    from shared.codec import decode, encode
    from shared.redis_conn import connect
    from shared.streams import order_commands, order_events

    writer, reader = connect(url), connect(url)
    cmd_stream, events = order_commands("sim", BOT), order_events(BOT)
    after = await _last_id(reader, events)
    lat: list[int] = []
    statuses: dict[str, int] = {}
    for i in range(LAT_WARMUP + LAT_N):
        cmd = command(first_seq + i)
        fields = encode(cmd)
        t0 = time.monotonic_ns()
        await writer.xadd(cmd_stream, fields)
        seen = False
        while not seen:
            reply = await reader.xread({events: after}, count=100, block=10_000)
            if not reply:
                raise TimeoutError(f"no update for {cmd.cid} within 10 s")
            for raw_id, f in reply[0][1]:
                after = raw_id.decode()
                update = decode(f)
                if update.cid == cmd.cid and not seen:
                    lat.append(time.monotonic_ns() - t0)
                    statuses[str(update.status)] = statuses.get(str(update.status), 0) + 1
                    seen = True
    await writer.aclose()
    await reader.aclose()
    return {"lat_ns": lat[LAT_WARMUP:], "statuses": statuses}


async def throughput(url: str, first_seq: int) -> Result:
    """THROUGHPUT_N commands pushed at once; time until every one has an update."""
    from shared.codec import decode, encode
    from shared.redis_conn import connect
    from shared.streams import order_commands, order_events

    writer, reader = connect(url), connect(url)
    cmd_stream, events = order_commands("sim", BOT), order_events(BOT)
    after = await _last_id(reader, events)
    cmds = [command(first_seq + i) for i in range(THROUGHPUT_N)]
    waiting = {c.cid for c in cmds}
    encoded = [encode(c) for c in cmds]

    async def push() -> None:
        for start in range(0, THROUGHPUT_N, PUSH_BATCH):
            pipe = writer.pipeline(transaction=False)
            for fields in encoded[start : start + PUSH_BATCH]:
                pipe.xadd(cmd_stream, fields)
            await pipe.execute()

    t0 = time.monotonic()
    pusher = asyncio.create_task(push())
    statuses: dict[str, int] = {}
    reads = 0
    while waiting:
        reads += 1
        reply = await reader.xread({events: after}, count=1000, block=20_000)
        if not reply:
            raise TimeoutError(f"{len(waiting)} orders without an update after 20 s")
        for raw_id, f in reply[0][1]:
            after = raw_id.decode()
            update = decode(f)
            if update.cid in waiting:
                waiting.discard(update.cid)
                statuses[str(update.status)] = statuses.get(str(update.status), 0) + 1
    elapsed = time.monotonic() - t0
    await pusher
    await writer.aclose()
    await reader.aclose()
    return {"seconds": elapsed, "orders_per_s": THROUGHPUT_N / elapsed, "statuses": statuses, "reads": reads}


async def venue_request_seconds(port: int) -> Result:
    """The gateway's own histogram of its POST /order calls (time inside the adapter)."""
    import aiohttp

    async with aiohttp.ClientSession() as session, session.get(f"http://127.0.0.1:{port}/metrics") as reply:
        text = await reply.text()
    out: Result = {}
    for line in text.splitlines():
        if line.startswith("automata_venue_request_seconds_") and 'endpoint="order"' in line:
            name = line.split("{", 1)[0].rsplit("_", 1)[1]
            if name in ("sum", "count"):
                out[name] = float(line.rsplit(" ", 1)[1])
    return out


# -- report ----------------------------------------------------------------------------------


def journal_check(sim: Any) -> Result:
    """Each bench cid accepted exactly once by the venue (its journal)."""
    counts: dict[str, int] = {}
    for e in sim.control.journal():
        cid = e.get("client_order_id") or ""
        if e["kind"] == "accepted" and cid.startswith(f"{BOT}-"):
            counts[cid] = counts.get(cid, 0) + 1
    return {"accepted": len(counts), "duplicates": sum(1 for n in counts.values() if n > 1)}


def add_idle_bots(r: Any, n: int) -> None:
    """n more bots' command streams, empty, for the gateway to read beside the bench's own (it
    reads one stream per bot: `--idle-bots N` shows what N streams cost per read)."""
    from shared.streams import GROUP_ORDER_GATEWAY, order_commands

    for i in range(n):
        r.xgroup_create(order_commands("sim", f"idle_{i}"), GROUP_ORDER_GATEWAY, id="0", mkstream=True)
    r.close()


def gateway_metrics_port(r: Any) -> int:
    for key in r.keys("svc:order_gateway:*"):
        return int(json.loads(r.get(key))["metrics_port"])
    raise RuntimeError("no order gateway heartbeat")


def bench(idle_bots: int = 0) -> Result:
    with stack() as s:
        info = machine(s.url)
        sim = s.start_sim()
        add_idle_bots(s.sync_redis(), idle_bots)
        gateway = s.start_gateway()
        r = s.sync_redis()
        port = gateway_metrics_port(r)
        r.close()
        direct_ns: list[int] = []
        gw_ns: list[int] = []
        seq = 1
        statuses: dict[str, int] = {}
        before = run(venue_request_seconds, port)
        for round_ in range(ROUNDS):
            direct_ns += run(direct, sim.base_url, round_)["lat_ns"]
            out = run(via_gateway, s.url, seq)
            seq += LAT_WARMUP + LAT_N
            gw_ns += out["lat_ns"]
            for k, v in out["statuses"].items():
                statuses[k] = statuses.get(k, 0) + v
        after = run(venue_request_seconds, port)
        pids = {"gateway": gateway.pid, "venue": sim.proc.pid, "redis": s.redis.proc.pid}
        cpu0 = {k: cpu_seconds(p) for k, p in pids.items()}
        cmds0 = redis_commands(s.url)
        tput = run(throughput, s.url, seq)
        cmds1 = redis_commands(s.url)
        cpu = {k: (cpu_seconds(p) - cpu0[k]) / THROUGHPUT_N * 1000 for k, p in pids.items()}
        seq += THROUGHPUT_N
        check = journal_check(sim)
    d, g = percentiles(direct_ns), percentiles(gw_ns)
    count = after.get("count", 0) - before.get("count", 0)
    inside_ms = (after.get("sum", 0) - before.get("sum", 0)) / count * 1000 if count else None
    return {
        **info,
        "order": "MARKET 0.001 BTCUSDT, buy/sell alternating",
        "latency_n": g["n"],
        "direct_p50_ms": d["p50_ms"],
        "direct_p99_ms": d["p99_ms"],
        "gateway_p50_ms": g["p50_ms"],
        "gateway_p99_ms": g["p99_ms"],
        "gateway_max_ms": g["max_ms"],
        "overhead_p50_ms": round(g["p50_ms"] - d["p50_ms"], 3),
        "overhead_p99_ms": round(g["p99_ms"] - d["p99_ms"], 3),
        "gateway_order_request_mean_ms": round(inside_ms, 3) if inside_ms else None,
        "latency_statuses": statuses,  # warm-up orders included
        "orders_per_s": round(tput["orders_per_s"]),
        "throughput_n": THROUGHPUT_N,
        "throughput_seconds": round(tput["seconds"], 2),
        "throughput_statuses": tput["statuses"],
        "cpu_ms_per_order": {k: round(v, 3) for k, v in cpu.items()},
        # the bench's own XADDs, XREADs and INFO calls are not the gateway's
        "redis_commands_per_order": round(
            (cmds1 - cmds0 - THROUGHPUT_N - tput["reads"] - 1) / THROUGHPUT_N, 2
        ),
        "venue_accepted": check["accepted"],
        "venue_duplicates": check["duplicates"],
        "targets_met": g["p50_ms"] - d["p50_ms"] < 2.0 and tput["orders_per_s"] >= 500,
    }


def report(r: Result) -> None:
    print(
        f"{r['date']}: {r['cpus']} cores {r['machine']}, python {r['python']}, redis {r['redis_version']},"
        f" redis-py parser {r['redis_parser']}"
    )
    print(f"orders: {r['order']}; paper venue in step mode, rate limits off")
    print(f"latency, one order at a time, {r['latency_n']} orders per path ({ROUNDS} runs alternated)")
    print(
        f"  direct python-binance -> venue:      p50 {r['direct_p50_ms']:.3f} ms  p99 {r['direct_p99_ms']:.3f} ms"
    )
    print(
        f"  XADD orders:cmd:sim:bench -> events:  p50 {r['gateway_p50_ms']:.3f} ms  p99 {r['gateway_p99_ms']:.3f} ms"
        f"  (max {r['gateway_max_ms']:.3f} ms; {r['latency_statuses']})"
    )
    print(
        f"  gateway overhead:                     p50 {r['overhead_p50_ms']:.3f} ms  p99 {r['overhead_p99_ms']:.3f} ms"
        "  (target p50 < 2 ms)"
    )
    print(f"  the gateway's own POST /order time, mean: {r['gateway_order_request_mean_ms']} ms")
    print(
        f"sustained: {r['throughput_n']:,} commands at once -> all updates in {r['throughput_seconds']} s:"
        f" {r['orders_per_s']:,} orders/s (target >= 500); {r['throughput_statuses']}"
    )
    print(
        f"  per order while sustained: CPU {r['cpu_ms_per_order']} ms,"
        f" {r['redis_commands_per_order']} Redis commands by the gateway"
    )
    print(f"venue journal: {r['venue_accepted']:,} bench orders accepted, {r['venue_duplicates']} twice")
    print(f"targets met: {'yes' if r['targets_met'] else 'NO'}")


def main() -> None:
    t0 = time.monotonic()
    idle = int(sys.argv[2]) if len(sys.argv) == 3 and sys.argv[1] == "--idle-bots" else 0
    result = bench(idle)
    result["idle_bots"] = idle
    result["bench_seconds"] = round(time.monotonic() - t0, 1)
    report(result)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
