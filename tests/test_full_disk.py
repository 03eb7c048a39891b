"""A full disk under Redis: it cannot append to its AOF and answers MISCONF to every write (PING
included) until it can again. No order may leave without its write-ahead record, no service may
exit or dead-letter anything over it, and everything carries on once the disk has room.

Real redis-server whose AOF stops growing (tests/helpers/full_disk.py: a file-size limit, the
kernel's "no space" without root), real order gateway and strategy runner, real paper venue.
Every service at once, with power cuts while the disk is full: `make soak`
(tests/test_power_cut.py::test_soak_full_disks)."""

from __future__ import annotations

import json
import os
import signal
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from services.web.settings import WebSettings
from shared.messages import OrderStatus, OrderType
from shared.streams import bot_state
from tests.helpers.bots import add_candle, candle, publish_filters, reading_candles, write_bots
from tests.helpers.cli import cli
from tests.helpers.full_disk import FillableRedis, start_fillable
from tests.helpers.gateway import (
    accepted,
    place,
    start_gateway,
    wait_gateway_ready,
    wait_status,
    write_config,
)
from tests.helpers.procs import base_env, frozen, python, wait_until
from tests.helpers.sim import sim_fixture
from tests.helpers.syncs import SyncAnswerer
from tests.helpers.web import TOKEN, client, put_bot

sim = sim_fixture()


@pytest.fixture
def disk(tmp_path: Path) -> Iterator[FillableRedis]:
    server = start_fillable(tmp_path / "redis")
    try:
        yield server
    finally:
        server.kill()


@pytest.mark.parametrize("point", ["og.before_wal", "og.after_wal"])
def test_an_order_waits_out_a_full_disk_and_is_sent_once(sim, disk, tmp_path, point):
    """The disk fills while the gateway has a place command in hand, just before (or just after)
    writing its record. Before: the record is refused, so nothing is sent until the disk has
    room. After: the record was taken, so the order is sent; its reply cannot be written, and is
    once the disk has room, from the venue's answer, never by sending again. Either way the
    gateway stays up, counts no failed delivery, dead-letters nothing, and says why it waits."""
    r = redis.Redis.from_url(disk.url)
    config = write_config(tmp_path / "og.toml", sim, lease_ms=600_000)  # the freeze outlasts no lease
    gateway = start_gateway(
        base_env(disk.url), config, tmp_path / "og.log", AUTOMATA_FAILPOINTS=f"{point}:stop"
    )
    wait_gateway_ready(r, gateway)
    cmd = place(r, 1, order_type=OrderType.MARKET)
    wait_until(lambda: frozen(gateway), what=f"the gateway frozen at {point}")
    disk.fill(r)
    os.kill(gateway.pid, signal.SIGCONT)
    wait_until(
        lambda: "redis refuses writes" in gateway.output(), timeout=20, what="the gateway saying why it waits"
    )
    assert gateway.alive(), gateway.output()[-3000:]
    assert accepted(sim, cmd.cid) == (0 if point == "og.before_wal" else 1)
    disk.make_room(r)
    wait_status(r, cmd.cid, OrderStatus.FILLED)
    assert accepted(sim, cmd.cid) == 1
    assert gateway.alive() and not r.keys("dlq:*"), gateway.output()[-3000:]
    assert "handler failed" not in gateway.output()
    r.close()


def test_a_bot_runner_waits_out_a_full_disk_and_trades_on(disk, tmp_path):
    """The disk stays full past the bot's lease (1 s): its runner can neither renew nor take the
    lease back, nor commit a step. It used to crash (the renewal's refused write), taking every
    bot of its process down; now it stands by, says why, and serves the bot again with room."""
    r = redis.Redis.from_url(disk.url)
    publish_filters(r)
    bots = write_bots(tmp_path / "bots.toml", {"id": "fd", "strategy": "tests.helpers.scripted:Scripted",
                      "venue": "sim", "symbol": "BTCUSDT", "interval": "1m", "lease_ms": 1000})  # fmt: skip
    answerer = SyncAnswerer(disk.url)
    answerer.start()
    try:
        env = base_env(disk.url, AUTOMATA_BOTS=str(bots))
        runner = python(
            "services.strategy_runner", "--bot", "fd", env=env, log_path=tmp_path / "runner.log"
        ).start()
        wait_until(lambda: reading_candles(r, "fd"), timeout=30, what="the bot reading candles")
        add_candle(r, candle(0, "100", "101"))
        wait_until(lambda: candles_done(r) == 1, timeout=20, what="the first candle applied")
        disk.fill(r)
        wait_until(lambda: "redis unavailable while taking the lease" in runner.output(), timeout=30,
                   what="the runner, its lease lapsed, waiting to take it back")  # fmt: skip
        assert runner.alive(), runner.output()[-3000:]
        paused = cli(env, "pause", "fd")  # the operator's command is refused in one clear line
        assert paused.returncode == 1 and "Traceback" not in paused.stderr, paused.stdout + paused.stderr
        assert "redis refuses writes" in paused.stderr and "is its disk full?" in paused.stderr
        disk.make_room(r)
        add_candle(r, candle(1, "101", "102"))
        wait_until(lambda: candles_done(r) == 2, timeout=30, what="the bot trading on")
        assert runner.alive() and not r.keys("dlq:*"), runner.output()[-3000:]
    finally:
        answerer.stop()
        r.close()


def candles_done(r: redis.Redis) -> int:
    raw = r.get(bot_state("fd"))
    return json.loads(raw).get("state", {}).get("candles", 0) if raw else 0


def test_status_and_doctor_tell_the_operator_redis_cannot_write(disk):
    """While its disk is full, `automata status` and `automata doctor` say that Redis refuses
    writes and what to do; once it has room, neither does."""
    r = redis.Redis.from_url(disk.url)
    env = base_env(disk.url)
    said = "redis cannot write its AOF (a full disk?)"
    disk.fill(r)
    status, doctor = cli(env, "status"), cli(env, "doctor")
    assert status.returncode == 0 and said in " ".join(status.stdout.split()), status.stdout + status.stderr
    assert doctor.returncode == 1 and "✗ redis disk" in doctor.stdout, doctor.stdout + doctor.stderr
    assert said in " ".join(doctor.stdout.split())
    disk.make_room(r)
    assert said not in cli(env, "status").stdout and "redis disk" not in cli(env, "doctor").stdout
    r.close()


async def test_the_dashboard_answers_a_control_redis_refuses_with_503_and_why(disk, tmp_path):
    """A control from the web API while the disk is full: 503 naming the cause, not a bare 500."""
    r = redis.Redis.from_url(disk.url)
    put_bot(r, "b1")
    settings = WebSettings(redis_url=disk.url, ledger_url=f"sqlite:///{tmp_path / 'ledger.db'}", token=TOKEN)
    disk.fill(r)
    async with client(settings, authorization=f"Bearer {TOKEN}") as api:
        reply = await api.post("/api/bots/b1/pause", json={})
    assert reply.status_code == 503 and "redis refuses writes" in reply.json()["error"], reply.text
    disk.make_room(r)
    assert not r.exists("bot:b1:control")
    r.close()
