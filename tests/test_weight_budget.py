"""The venue's request-weight budget shared through Redis (shared/ratelimit.py VenueBudget).

Unit tests against a real redis-server: two VenueBudget objects stand for two processes (the
order gateway and the market gateway) spending one venue's budget. The budget's window is the
minute on Redis's clock, so each test first waits until the minute has a few seconds left.
"""

from __future__ import annotations

import time

import pytest
import redis.asyncio as aioredis

from shared.ratelimit import (
    Priority,
    VenueBudget,
    budget_limit,
    priority_of,
    urgent_as,
)
from shared.streams import weight_budget
from tests.helpers.procs import wait_until

P = Priority


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


async def test_a_429_pauses_every_process(redis_client, fresh_minute) -> None:
    og, md = budgets(redis_client)
    og.block(30.0, "HTTP 429 from sim")
    assert await og.try_acquire(0, P.ORDERS) > 0  # passed on (also done by a task at once)
    wait = await md.try_acquire(1, P.ORDERS)
    assert 25 < wait <= 30  # even orders: the venue refuses everything from the IP meanwhile
    assert await md.try_acquire(1, P.ORDERS) > 0


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


def test_endpoint_priorities() -> None:
    assert [priority_of(e) for e in ("order", "cancel", "get_order", "klines", "open_orders")] == [
        P.ORDERS,
        P.ORDERS,
        P.RECOVERY,
        P.BACKFILL,
        P.POLLING,
    ]
    assert priority_of("something_new") is P.RECOVERY
    with urgent_as(P.RECOVERY):  # reconciliation's listing of open orders
        assert priority_of("open_orders") is P.RECOVERY
        assert priority_of("order") is P.ORDERS  # never less urgent than the endpoint
    assert priority_of("open_orders") is P.POLLING
    assert budget_limit(6000) == 4800
