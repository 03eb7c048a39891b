"""The venue's request-weight budget shared through Redis (shared/ratelimit.py VenueBudget).

Unit tests against a real redis-server: two VenueBudget objects stand for two processes (the
order gateway and the market gateway) spending one venue's budget. The budget's window is the
minute on Redis's clock, so each of them first waits until the minute has a few seconds left.
Then the services themselves: the paper venue with a low weight limit, an order gateway
restarted with many open orders to reconcile and poll, and the market gateway backfilling.
"""

from __future__ import annotations

import asyncio
import json
import time
import urllib.request
from decimal import Decimal
from pathlib import Path

import pytest
import redis
import redis.asyncio as aioredis

from shared.messages import OrderStatus, OrderType
from shared.ratelimit import (
    Priority,
    VenueBudget,
    VenuePaused,
    budget_limit,
    polling_task,
    priority_of,
)
from shared.streams import candles, weight_budget
from tests.helpers.gateway import place, start_gateway, wait_gateway_ready, wait_status, write_config
from tests.helpers.procs import Proc, python, wait_until
from tests.helpers.sim import SimVenue, sim_fixture

P = Priority
WARMUP = 5_000  # candles of history at the venue, and what the market gateway loads: 5 pages a stream
sim = sim_fixture(extra_env={"SIM_WARMUP": str(WARMUP)})


@pytest.fixture
def fresh_minute() -> None:
    """Every spend of a test falls in one window (Redis runs on this machine's clock)."""
    wait_until(lambda: time.time() % 60 < 55, timeout=10, what="a minute with time left")


def budgets(redis_client: aioredis.Redis, limit: int = 100, venue: str = "sim") -> tuple[VenueBudget, ...]:
    return tuple(VenueBudget(venue, limit, redis=redis_client) for _ in range(2))


async def spend(budget: VenueBudget, priority: Priority, weight: int, times: int = 1) -> None:
    for _ in range(times):
        assert await budget.try_acquire(weight, priority) == 0, (priority, weight)


async def test_each_priority_spends_only_up_to_its_share(redis_client, fresh_minute) -> None:
    og, md = budgets(redis_client)  # limit 100: orders 100, recovery 85, backfill 70, polling 50
    assert [og.cap(p) for p in P] == [100, 85, 70, 50]
    await spend(og, P.POLLING, 10, times=5)  # the order gateway's poller: 50
    assert await og.try_acquire(10, P.POLLING) > 0  # polling backs off first...
    assert await md.try_acquire(1, P.POLLING) > 0  # ...in every process
    await spend(md, P.BACKFILL, 20)  # the market gateway's backfill still finds room: 70
    assert await md.try_acquire(2, P.BACKFILL) > 0
    await spend(og, P.RECOVERY, 15)  # recovery: 85
    assert await og.try_acquire(1, P.RECOVERY) > 0
    await spend(og, P.ORDERS, 1, times=15)  # orders: the whole budget
    assert await og.try_acquire(1, P.ORDERS) > 0
    spent = {k.decode(): int(v) for k, v in (await redis_client.hgetall(weight_budget("sim"))).items()}
    assert (spent["used"], spent["p0"], spent["p1"], spent["p2"], spent["p3"]) == (100, 15, 15, 20, 50)
    # what waited counted nothing; another venue has a budget of its own
    (other, _) = budgets(redis_client, venue="bysim")
    assert await other.try_acquire(50, P.POLLING) == 0


async def test_a_wait_lasts_until_the_minute_rolls(redis_client, fresh_minute) -> None:
    og, _ = budgets(redis_client)
    await spend(og, P.POLLING, 50)
    wait = await og.try_acquire(1, P.POLLING)
    assert 0 < wait <= 60 - time.time() % 60 + 1  # the venue's window is the minute, as ours


async def test_the_venues_count_wins_when_higher(redis_client, fresh_minute) -> None:
    og, md = budgets(redis_client)
    await spend(og, P.RECOVERY, 4)
    og.observe_used(80)  # other programs on the IP: the venue says 80 of this minute are gone
    await spend(og, P.ORDERS, 1)  # the header rides along with the next request
    assert og.level == 80  # the larger of ours (5) and the venue's, which counts ours too
    assert await md.try_acquire(2, P.BACKFILL) > 0  # 80 + 2 > 70: backfill waits
    assert await md.try_acquire(5, P.RECOVERY) == 0  # 80 + 5 <= 85
    assert await md.try_acquire(1, P.ORDERS) == 0


async def test_orders_go_at_once_and_are_counted_right_after(redis_client, fresh_minute) -> None:
    og, md = budgets(redis_client)
    assert not og.orders_at_once(1)  # nothing seen this minute: the first order asks
    await og.acquire(1, P.ORDERS)
    assert og.orders_at_once(1)
    for _ in range(9):
        await og.acquire(1, P.ORDERS)  # sent at once, counted right after
    await og.settle()
    spent = await redis_client.hgetall(weight_budget("sim"))
    assert (int(spent[b"used"]), int(spent[b"p0"])) == (10, 10)
    await spend(md, P.RECOVERY, 75)
    await og.acquire(1, P.ORDERS)  # still at once (the level it saw was 10)...
    await og.settle()
    assert og.level == 86 and not og.orders_at_once(5)  # ...but now it knows: 86 + 5 > 90
    md.block(30.0, "HTTP 429 from sim")
    await md.try_acquire(0, P.ORDERS)
    assert await og.try_acquire(0, P.ORDERS) > 0  # any answer tells it of the pause
    assert not og.orders_at_once(1)


async def test_a_429_pauses_every_process(redis_client, fresh_minute) -> None:
    og, md = budgets(redis_client)
    og.block(30.0, "HTTP 429 from sim")
    assert await og.try_acquire(0, P.ORDERS) > 0  # passed on (also done by a task at once)
    wait = await md.try_acquire(1, P.ORDERS)
    assert 25 < wait <= 30  # even orders: the venue refuses everything from the IP meanwhile
    assert await md.try_acquire(1, P.ORDERS) > 0


async def test_an_order_is_refused_rather_than_held_through_a_long_pause(redis_client, fresh_minute) -> None:
    """A ban another process met pauses every process: an order would wait it out and go minutes
    late; it is refused at once (the order gateway halts on it as on its own ban), a short pause
    it waits out, and a poll still waits."""
    og, md = budgets(redis_client)
    md.block(120.0, "HTTP 418 from sim")
    await md.try_acquire(0, P.ORDERS)  # passed on to Redis
    with pytest.raises(VenuePaused) as refused:
        await asyncio.wait_for(og.acquire(1, P.ORDERS), 5)
    assert 110 < refused.value.seconds <= 120 and "REST paused for" in str(refused.value)
    await redis_client.hset(weight_budget("sim"), "blocked_until", 0)  # the ban over early
    other = VenueBudget("sim", 100, redis=redis_client)
    other.block(1.0, "HTTP 429 from sim")
    await other.try_acquire(0, P.ORDERS)
    started = time.monotonic()
    await asyncio.wait_for(og.acquire(1, P.ORDERS), 5)  # a second's pause: waited out, then sent
    assert time.monotonic() - started > 0.5


async def test_polling_waits_longer_as_the_budget_fills(redis_client, fresh_minute) -> None:
    og, _ = budgets(redis_client)
    assert og.poll_interval(2.0) == 2.0  # nothing known spent
    await spend(og, P.POLLING, 25)  # half of polling's share
    assert og.poll_interval(2.0) == pytest.approx(4.0)
    await spend(og, P.POLLING, 25)  # polling's share is gone: wait for the next minute
    assert og.poll_interval(2.0) >= 60 - time.time() % 60 - 1


async def test_acquire_spends_and_returns(redis_client, fresh_minute) -> None:
    og, _ = budgets(redis_client)
    await og.acquire(30, P.BACKFILL)
    await og.acquire(70, P.ORDERS)
    assert og.level == 100
    assert int(await redis_client.hget(weight_budget("sim"), "used")) == 100


async def test_without_redis_each_process_counts_alone(caplog) -> None:
    budget = VenueBudget("sim", 100, redis_url="redis://127.0.0.1:1/0")
    await budget.acquire(10, P.ORDERS)  # Redis is not there: a local bucket of the whole limit
    assert "counting alone" in caplog.text
    await budget.acquire(10, P.ORDERS)  # and it does not try again at once
    await budget.aclose()


async def test_endpoint_priorities() -> None:
    names = ("order", "cancel", "get_order", "my_trades", "klines", "open_orders", "account", "ticker")
    # a market order's price check is part of placing it; listings for reconciliation or a
    # bot's sync are recovery
    assert [priority_of(e) for e in names] == [P.ORDERS] * 2 + [P.RECOVERY] * 2 + [P.BACKFILL] + [
        P.RECOVERY
    ] * 2 + [P.ORDERS]
    assert priority_of("something_new") is P.RECOVERY

    async def poller() -> list[Priority]:
        polling_task()
        return [priority_of(e) for e in ("open_orders", "account", "get_order", "order")]

    # the poller's listings are polling; its queries of single orders still recovery
    assert await asyncio.create_task(poller()) == [P.POLLING, P.POLLING, P.RECOVERY, P.ORDERS]
    assert priority_of("open_orders") is P.RECOVERY  # only in the poller's own task
    assert budget_limit(6000) == 4800


# -- the services ---------------------------------------------------------------------------------

VENUE_LIMIT = 1_000  # weight a minute at the venue; our budget is 800 of it (polling 400, backfill 560)
OPEN_ORDERS = 30  # the restarted gateway queries each (recovery) and polls them all (80 a listing)
FILLED_WHILE_DOWN = 10
SYMBOLS = ("BTCUSDT", "ETHUSDT")


def system_config(path: Path, sim: SimVenue) -> Path:
    """One automata.toml for both gateways: the venue's limit, the gateway polling every 0.5 s,
    and a market gateway that paces itself below what the order gateway spends (as in the
    incident, where its own 1,200 was below the IP's count)."""
    write_config(path, sim, weight_limit=VENUE_LIMIT, poll_every_s=0.5)
    with path.open("a") as f:
        f.write(
            f"[market_gateway]\nwarmup = {WARMUP}\nweight_per_minute = 200\nrest_poll_s = 0.3\n"
            f'stall_factor = 100\n[[market_gateway.feeds]]\nvenue = "sim"\nsymbols = {json.dumps(SYMBOLS)}\n'
            'intervals = ["1m"]\n'
        )
    return path


def venue_newest_closed(sim: SimVenue, symbol: str) -> int:
    url = f"{sim.base_url}/api/v3/klines?symbol={symbol}&interval=1m&limit=1"  # closed ones only
    with urllib.request.urlopen(url, timeout=10) as reply:
        return json.loads(reply.read())[-1][0]


def stored(r: redis.Redis, symbol: str) -> tuple[int, int]:
    """(newest open time, entries) of the symbol's candle stream; the entries are checked to be
    one a minute without a gap (entry ids are open times)."""
    stream = candles("sim", symbol, "1m")
    first, top, n = r.pipeline().xrange(stream, count=1).xrevrange(stream, count=1).xlen(stream).execute()
    if not top:
        return 0, 0
    oldest, newest = int(first[0][0].split(b"-")[0]), int(top[0][0].split(b"-")[0])
    assert newest - oldest == (n - 1) * 60_000, f"{stream}: a gap"
    return newest, n


def metric(r: redis.Redis, proc: Proc, name: str, **labels: str) -> float:
    """A sample of the process's /metrics (its port from its heartbeat); 0 when absent."""
    beats = [json.loads(r.get(k) or b"{}") for k in r.keys("svc:*")]
    port = next(b["metrics_port"] for b in beats if b.get("pid") == proc.pid)
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as reply:
        text = reply.read().decode()
    want = sorted(f'{k}="{v}"' for k, v in labels.items())
    for line in text.splitlines():
        head, _, value = line.rpartition(" ")
        if head.startswith(name + "{") and sorted(head[len(name) + 1 : -1].split(",")) == want:
            return float(value)
    return 0.0


def test_backfill_completes_while_a_restarted_gateway_has_many_open_orders(sim, env, tmp_path, sync_redis):
    config = system_config(tmp_path / "automata.toml", sim)
    first = start_gateway(env, config, tmp_path / "og1.log")
    wait_gateway_ready(sync_redis, first)
    price = Decimal(sim.control.state()["prices"]["BTCUSDT"])
    cmds = [place(sync_redis, i, price=str(price - 100 - i)) for i in range(1, OPEN_ORDERS + 1)]
    for cmd in cmds:
        wait_status(sync_redis, cmd.cid, OrderStatus.NEW)
    first.kill()
    # while the gateway is down, the market trades through the ten highest bids
    sim.control.set_price("BTCUSDT", str(price - 100 - FILLED_WHILE_DOWN - Decimal("0.5")))
    newest = {s: venue_newest_closed(sim, s) for s in SYMBOLS}  # step mode: the market stands still
    # from here on the venue allows VENUE_LIMIT a minute (the test spends none of it); both
    # counts start from zero
    sim.control.limits(reset=True, weight_limit=VENUE_LIMIT, ban_after=3, ban_seconds=120)
    sync_redis.delete(weight_budget("sim"))

    gateway = start_gateway(env, config, tmp_path / "og2.log")
    # recovery: the orders filled while the gateway was down reach the bot (queries and trades:
    # about half the budget), then its poller keeps asking for far more than its share
    for cmd in cmds[:FILLED_WHILE_DOWN]:
        wait_status(sync_redis, cmd.cid, OrderStatus.FILLED, timeout=60)
    # the market gateway starts into a minute where the IP has spent more than its own allowance
    # (the incident: it saw the venue's count above it and paused for the rest of the minute)
    wait_until(
        lambda: sim.control.state()["limits"]["used_weight"] >= 300, timeout=60, what="300 weight spent"
    )
    market = python(
        "services.market_gateway", env={**env, "AUTOMATA_CONFIG": str(config)}, log_path=tmp_path / "md.log"
    ).start()

    # the backfill completed: every stream holds the venue's history without a gap, up to its
    # newest closed candle (that one the gateway may hold back until the socket proves it closed)
    def backfilled() -> bool:
        assert market.alive(), market.output()[-3000:]
        return all(stored(sync_redis, s) >= (newest[s] - 60_000, WARMUP - 1) for s in SYMBOLS)

    wait_until(backfilled, timeout=90, what=f"{WARMUP} candles backfilled on each stream")
    # orders go through meanwhile
    order = place(sync_redis, OPEN_ORDERS + 1, order_type=OrderType.MARKET, price=None)
    wait_status(sync_redis, order.cid, OrderStatus.FILLED, timeout=30)
    # and live candles keep reaching the streams
    sim.control.advance(candles=1)
    wait_until(
        lambda: all(stored(sync_redis, s)[0] == newest[s] + 60_000 for s in SYMBOLS),
        timeout=30,
        what="a live candle on each stream",
    )
    # polling gave way: it waited for the budget (every 0.5 s a listing of weight 80 wants far
    # more than its 400), while the venue never had to refuse anyone
    wait_until(
        lambda: metric(sync_redis, gateway, "automata_weight_waits_total", venue="sim", priority="polling"),
        timeout=60,
        what="the poller waiting for the budget",
    )
    spent = {k.decode(): int(v) for k, v in sync_redis.hgetall(weight_budget("sim")).items()}
    assert spent["used"] <= budget_limit(VENUE_LIMIT), spent
    assert sim.control.state()["limits"]["banned_until_ms"] == 0
    og_log, md_log = gateway.output(), market.output()
    for refusal in ("REST paused", "Too much request weight", "rate limited", "banned"):
        assert refusal not in md_log, md_log[-3000:]
        assert refusal not in og_log, og_log[-3000:]
    assert gateway.terminate() == 0, og_log[-2000:]
    assert market.terminate() == 0, md_log[-2000:]
