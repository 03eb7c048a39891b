"""A full disk under Redis: it cannot append to its AOF and answers MISCONF to every write (PING
included) until it can again. No order may leave without its write-ahead record, no service may
exit or dead-letter anything over it, and everything carries on once the disk has room.

Real redis-server whose AOF stops growing (tests/helpers/full_disk.py: a file-size limit, the
kernel's "no space" without root), real order gateway, real paper venue."""

from __future__ import annotations

import os
import signal
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from shared.messages import OrderStatus, OrderType
from tests.helpers.full_disk import FillableRedis, start_fillable
from tests.helpers.gateway import (
    accepted,
    place,
    start_gateway,
    wait_gateway_ready,
    wait_status,
    write_config,
)
from tests.helpers.procs import base_env, frozen, wait_until
from tests.helpers.sim import sim_fixture

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
