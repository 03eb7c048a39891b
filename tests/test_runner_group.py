"""Several bots in one strategy_runner process (`--bot A --bot B`, bots sharing a `process`).

What must hold is what holds for a bot alone: each bot's commands and state are exact after
SIGKILLs of the shared process, each bot has its own lease and consumer group, a bot whose
strategy raises is paused alone while the others go on, and control reaches only its bot."""

from __future__ import annotations

import json
import random
import time
from decimal import Decimal

import pytest

from shared.messages import ControlAction
from shared.streams import bot_state, candles
from tests.helpers.bots import (
    add_candle,
    candle,
    commands,
    control,
    publish_filters,
    reading_candles,
    write_bots,
)
from tests.helpers.procs import python, wait_until

# no order gateway here: the test answers each runner's start-up sync (tests/helpers/syncs.py)
pytestmark = pytest.mark.usefixtures("answer_syncs")

BASE = {"strategy": "tests.helpers.scripted:Scripted", "venue": "sim", "symbol": "BTCUSDT", "interval": "1m",
        "lease_ms": 1500, "process": "g"}  # fmt: skip
N, BURSTS = 600, 3
CLOSES = [Decimal(1000) + i for i in range(N)]
FAIL_AT = 333  # the candle whose close makes bot c raise
CANDLES = candles("sim", "BTCUSDT", "1m")


def state(r, bot: str) -> dict:
    raw = r.get(bot_state(bot))
    return json.loads(raw) if raw else {}


def candles_done(r, bot: str) -> int:
    return state(r, bot).get("state", {}).get("candles", 0)


def start(env, tmp_path, bots_file, name: str):
    env = {**env, "AUTOMATA_BOTS": str(bots_file), "CONSUMER_NAME": name, "INSTANCE": name}
    args = ["--bot", "a", "--bot", "b", "--bot", "c"]
    return python("services.strategy_runner", *args, env=env, log_path=tmp_path / f"{name}.log").start()


def holders(r) -> list[str]:
    return [(r.get(f"bot:{bot}:lease") or b"").decode().split(":")[0] for bot in "abc"]


def serving(r, name: str) -> bool:
    """`name` holds every bot's lease, and every bot reads the candle stream (on the first
    start a bot's candle group is created just after its lease is taken)."""
    return holders(r) == [name] * 3 and reading_candles(r, *"abc")


def cids_and_prices(r, bot: str) -> list[tuple[str, Decimal]]:
    return [(c.cid, c.price) for c in commands(r) if c.cid.startswith(f"{bot}-")]


def test_three_bots_in_one_process_survive_sigkills_and_fail_alone(env, tmp_path, sync_redis):
    bots_file = write_bots(
        tmp_path / "bots.toml",
        {"id": "a", **BASE},
        {"id": "b", **BASE, "params": {"qty": "0.2"}},
        {"id": "c", **BASE, "params": {"fail_on": str(CLOSES[FAIL_AT])}},
    )
    publish_filters(sync_redis)
    rng = random.Random(11)
    proc = start(env, tmp_path, bots_file, "r1")
    size = N // BURSTS
    killed_mid_work = 0
    for burst in range(BURSTS):
        name = f"r{burst + 1}"
        wait_until(lambda n=name: serving(sync_redis, n), timeout=20, what=f"{name} holds all")
        first, half = burst * size, burst * size + size // 2
        for i in range(first, (burst + 1) * size):  # alternate rising / falling: a buy every 2nd
            c = CLOSES[i]
            add_candle(sync_redis, candle(i, str(c - 1 if i % 2 == 0 else c + 1), str(c)))
            if i == half:  # the burst under way before the rest arrives, so the kill lands mid-work
                wait_until(lambda f=first: any(candles_done(sync_redis, b) > f for b in "ab"),
                           timeout=20, what="the burst under way")  # fmt: skip
        time.sleep(rng.uniform(0, 0.01))  # a random kill point; correctness must not depend on it
        proc.kill()
        killed_mid_work += any(burst * size < candles_done(sync_redis, b) < (burst + 1) * size for b in "ab")
        proc = start(env, tmp_path, bots_file, f"r{burst + 2}")
    assert killed_mid_work >= 1, "no kill landed in the middle of a burst"

    for bot in "ab":
        wait_until(lambda b=bot: candles_done(sync_redis, b) == N, timeout=60, what=f"{bot}: all candles")
    wait_until(lambda: state(sync_redis, "c").get("failed"), timeout=30, what="c: failure recorded")
    buys = [CLOSES[2 * i] for i in range(N // 2)]
    for bot in "ab":
        assert cids_and_prices(sync_redis, bot) == [(f"{bot}-{i + 1:06d}", p) for i, p in enumerate(buys)]
        assert state(sync_redis, bot)["state"].get("mode", "running") == "running"
    qty = {c.cid[0]: c.quantity for c in commands(sync_redis)}
    assert qty["a"] == Decimal("0.1") and qty["b"] == Decimal("0.2")
    # c stopped at its failing candle, paused, with that entry kept; its earlier buys exact
    doc = state(sync_redis, "c")
    assert doc["state"]["mode"] == "paused" and doc["state"]["candles"] == FAIL_AT
    assert "scripted failure" in doc["failed"]["error"]
    c_buys = [p for p in buys if p < CLOSES[FAIL_AT]]
    assert cids_and_prices(sync_redis, "c") == [(f"c-{i + 1:06d}", p) for i, p in enumerate(c_buys)]
    # one consumer group per bot on the shared candle stream, each one's pending list its own
    assert reading_candles(sync_redis, *"abc")
    assert sync_redis.xpending(CANDLES, "bot:a")["pending"] == 0

    # control reaches its bot only: pausing a leaves b trading
    control(sync_redis, "a", ControlAction.PAUSE)
    wait_until(lambda: state(sync_redis, "a")["state"].get("mode") == "paused", what="a paused")
    c = Decimal(2000)
    add_candle(sync_redis, candle(N, str(c - 1), str(c)))
    wait_until(lambda: candles_done(sync_redis, "b") == N + 1, what="b handles the next candle")
    assert cids_and_prices(sync_redis, "b")[-1] == (f"b-{N // 2 + 1:06d}", c)
    assert cids_and_prices(sync_redis, "a")[-1] == (f"a-{N // 2:06d}", buys[-1])
    assert proc.terminate() == 0


def test_a_bot_named_twice_or_unknown_stops_the_process_before_it_starts(env, tmp_path, sync_redis):
    bots_file = write_bots(tmp_path / "bots.toml", {"id": "a", **BASE})
    env = {**env, "AUTOMATA_BOTS": str(bots_file)}
    for args, said in ((["--bot", "a", "--bot", "a"], "twice"), (["--bot", "a", "--bot", "zz"], "'zz'")):
        proc = python("services.strategy_runner", *args, env=env, log_path=tmp_path / "bad.log").start()
        assert proc.popen.wait(30) == 2
        assert said in proc.output(), proc.output()
    assert not sync_redis.exists("bot:a:lease")
