"""A bot through the whole order path: runner -> orders:cmd -> order gateway -> paper venue.

Kill -9 the runner and the gateway at random moments while candles arrive: every order the
scripted strategy asks for reaches the venue exactly once (its journal), with the cids the
script dictates, and the bot's state ends where an uninterrupted run would."""

from __future__ import annotations

import json
import random
import time
from decimal import Decimal

import pytest

from shared.streams import bot_state
from tests.helpers.bots import add_candle, candle, reading_candles, write_bots
from tests.helpers.gateway import start_gateway, wait_gateway_ready, write_config
from tests.helpers.procs import python, wait_until
from tests.helpers.sim import sim_fixture

sim = sim_fixture()


def state(r) -> dict:
    raw = r.get(bot_state("t1"))
    return json.loads(raw)["state"] if raw else {}


def test_orders_reach_the_venue_exactly_once_through_crashes(sim, env, tmp_path, sync_redis):
    chaos(sim, env, tmp_path, sync_redis, n=40, seed=11)


@pytest.mark.soak
@pytest.mark.timeout(900)
def test_soak_long_chaos_run(sim, env, tmp_path, sync_redis):
    """`make soak`: the same, over 380 candles with a random kill of the runner or the gateway every
    4 (~95 kills). 190 resting orders: under the venue's 200 open orders per symbol."""
    chaos(sim, env, tmp_path, sync_redis, n=380, seed=12, kill_every=4, settle=True)


def chaos(
    sim, env, tmp_path, sync_redis, *, n: int, seed: int, kill_every: int = 8, settle: bool = False
) -> None:
    price = Decimal(sim.control.state()["prices"]["BTCUSDT"])
    sim.control.set_balance("USDT", "1000000")  # every resting buy locks ~40 USDT
    bots = write_bots(tmp_path / "bots.toml", {"id": "t1", "strategy": "tests.helpers.scripted:Scripted",
                                               "lease_ms": 1000, "params": {"qty": "0.001"}})  # fmt: skip
    renv = {**env, "AUTOMATA_BOTS": str(bots)}
    config = write_config(tmp_path / "og.toml", sim)
    gateway = start_gateway(env, config, tmp_path / "og0.log")
    wait_gateway_ready(sync_redis)
    runner = python(
        "services.strategy_runner",
        "--bot",
        "t1",
        env={**renv, "INSTANCE": "r0"},
        log_path=tmp_path / "r0.log",
    ).start()
    wait_until(lambda: reading_candles(sync_redis, "t1"), timeout=30, what="runner up")
    rng = random.Random(seed)
    # limit buys well below the market: they rest at the venue, one per rising candle
    closes = [price - 1000 - i for i in range(n)]
    for i, close in enumerate(closes):
        add_candle(sync_redis, candle(i, str(close - 1 if i % 2 == 0 else close + 1), str(close)))
        if i % kill_every == kill_every - 1:
            time.sleep(rng.uniform(0.0, 0.05))  # a random kill point; correctness must not depend on it
            victim = rng.choice(["runner", "gateway"])
            if victim == "runner":
                runner.kill()
                runner = python("services.strategy_runner", "--bot", "t1", env={**renv, "INSTANCE": f"r{i}"},
                                log_path=tmp_path / f"r{i}.log").start()  # fmt: skip
                if settle:  # let it take over and work before the next kill
                    wait_until(lambda i=i: (sync_redis.get("bot:t1:lease") or b"").startswith(f"r{i}:".encode()),
                               timeout=30, what="the new runner holds the lease")  # fmt: skip
            else:
                gateway.kill()
                gateway = start_gateway(env, config, tmp_path / f"og{i}.log")
                if settle:
                    wait_gateway_ready(sync_redis, gateway)
    wait_until(lambda: state(sync_redis).get("candles") == n, timeout=60, what="all candles applied")
    expected = [f"t1-{k + 1:06d}" for k in range(n // 2)]
    try:
        wait_until(lambda: len([o for o in sim.control.orders() if o["client_order_id"].startswith("t1-")]) == n // 2,
                   timeout=60, what="every order at the venue")  # fmt: skip
    except AssertionError:
        records = [sync_redis.hgetall(k) for k in sync_redis.scan_iter("og:order:t1-*")]
        by_status: dict[str, int] = {}
        for rec in records:
            by_status[rec[b"status"].decode()] = by_status.get(rec[b"status"].decode(), 0) + 1
        rejected = [rec[b"reason"].decode() for rec in records if rec[b"status"] == b"REJECTED"][:3]
        pending = sync_redis.xpending("orders:cmd:sim:t1", "order_gateway")["pending"]
        raise AssertionError(f"records {by_status}, rejected e.g. {rejected}, commands pending {pending}, "
                             f"commands {sync_redis.xlen('orders:cmd:sim:t1')}") from None  # fmt: skip
    journal = [e for e in sim.control.journal() if e["kind"] == "accepted"]
    cids = [e["client_order_id"] for e in journal if e["client_order_id"].startswith("t1-")]
    assert sorted(cids) == expected, "each order accepted by the venue exactly once"
    prices = {o["client_order_id"]: Decimal(o["price"]) for o in sim.control.orders()}
    assert [prices[c] for c in expected] == [closes[2 * k] for k in range(n // 2)]
    wait_until(lambda: len(state(sync_redis).get("orders", {})) == n // 2 and all(
        o.get("status") == "NEW" for o in state(sync_redis)["orders"].values()), timeout=60, what="bot saw every NEW")  # fmt: skip
    assert state(sync_redis)["seq"] == n // 2
    wait_until(lambda: sync_redis.get("bot:t1:lease") is not None, timeout=30)
    wait_gateway_ready(sync_redis, gateway)
    assert gateway.terminate() == 0
