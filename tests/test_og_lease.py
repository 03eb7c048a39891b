"""One active order gateway per venue: a lease with fencing, a standby taking over.

In-process against a real redis-server for the write-ahead log's fencing; real gateway
processes, the real paper venue, SIGKILL and SIGSTOP/SIGCONT for the rest."""

from __future__ import annotations

import json
import os
import signal
import time
import urllib.request
from decimal import Decimal

import msgspec
import pytest
import redis

from services.order_gateway.gateway import LeasedAdapter
from services.order_gateway.wal import Wal
from shared.bus import FencedError
from shared.codec import decode, encode
from shared.lease import Lease
from shared.messages import Notification, OrderStatus, OrderType, OrderUpdate, PlaceOrder, Side
from shared.order_record import OrderRecord
from shared.streams import og_lease, og_order, order_commands, order_events
from tests.helpers.cmdstreams import pending_entries, readers
from tests.helpers.gateway import accepted, start_gateway, wait_gateway_ready, write_config
from tests.helpers.procs import Proc, frozen, wait_until
from tests.helpers.sim import SimVenue, sim_fixture

sim = sim_fixture()
LEASE = og_lease("sim")

# -- the write-ahead log's fencing, in-process ------------------------------------------------


def record(cid: str) -> OrderRecord:
    return OrderRecord(cid=cid, bot="fx", venue="sim", symbol="BTCUSDT", status=OrderStatus.PENDING_SUBMIT,
                       side=Side.BUY, order_type=OrderType.MARKET, orig_qty=Decimal("0.001"))  # fmt: skip


async def fill(current: OrderRecord):
    return msgspec.structs.replace(current, status=OrderStatus.FILLED), []


async def test_a_gateway_that_lost_its_lease_writes_nothing(redis_client):
    lease = Lease(redis_client, LEASE, "og-a/1", 5000)
    assert await lease.try_acquire()
    wal = Wal(redis_client, "sim", lease)
    assert await wal.create(record("fx-000001"))
    await redis_client.set(LEASE, "og-b/2")  # the lease expired and another gateway took it
    with pytest.raises(FencedError):
        await wal.create(record("fx-000002"))
    assert not await redis_client.exists(og_order("fx-000002"))
    with pytest.raises(FencedError):
        await wal.save(record("fx-000003"))
    assert not await redis_client.exists(og_order("fx-000003"))
    with pytest.raises(FencedError):
        await wal.update("fx-000001", fill)
    assert (await wal.get("fx-000001")).status is OrderStatus.PENDING_SUBMIT


async def test_a_renewal_between_watch_and_exec_does_not_fail_a_write(redis_client):
    lease = Lease(redis_client, LEASE, "og-a/1", 5000)
    assert await lease.try_acquire()
    wal = Wal(redis_client, "sim", lease)
    assert await wal.create(record("fx-000001"))
    renewals = 0

    async def renew_then_fill(current: OrderRecord):
        nonlocal renewals
        if renewals == 0:  # our own renewal lands after the WATCH: the EXEC is refused, then tried again
            renewals += 1
            assert await lease.renew()
        return await fill(current)

    assert (await wal.update("fx-000001", renew_then_fill)).status is OrderStatus.FILLED
    assert renewals == 1 and (await wal.get("fx-000001")).status is OrderStatus.FILLED


# -- two gateways, one venue -----------------------------------------------------------------


def heartbeat(r: redis.Redis, instance: str) -> dict:
    return json.loads(r.get(f"svc:order_gateway:{instance}") or b"{}")


def role(r: redis.Redis, instance: str) -> str | None:
    return heartbeat(r, instance).get("lease", {}).get("sim")


def holder(r: redis.Redis) -> str:
    return (r.get(LEASE) or b"").decode()


def http(r: redis.Redis, instance: str, path: str) -> str:
    port = heartbeat(r, instance)["metrics_port"]
    with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5) as reply:
        return reply.read().decode()


def market(bot: str, seq: int) -> PlaceOrder:
    return PlaceOrder(cid=f"{bot}-{seq:06d}", bot=bot, venue="sim", symbol="BTCUSDT", side=Side.BUY,
                      order_type=OrderType.MARKET, quantity=Decimal("0.001"), ts=int(time.time() * 1000))  # fmt: skip


def send(r: redis.Redis, *cmds: PlaceOrder) -> list[PlaceOrder]:
    for cmd in cmds:
        r.xadd(order_commands("sim", cmd.bot), encode(cmd))
    return list(cmds)


def updates(r: redis.Redis, bot: str, cid: str) -> list[OrderUpdate]:
    return [u for u in (decode(f) for _, f in r.xrange(order_events(bot))) if u.cid == cid]


def wait_filled(r: redis.Redis, cmds: list[PlaceOrder], timeout: float = 30) -> None:
    wait_until(lambda: all(any(u.status is OrderStatus.FILLED for u in updates(r, c.bot, c.cid)) for c in cmds),
               timeout=timeout, what="every order FILLED")  # fmt: skip


def stick(sim: SimVenue, cid: str) -> None:
    """The venue takes this order but neither its reply nor any event about it comes back."""
    sim.control.fault("drop_reply", seconds=120, match={"client_order_id": cid}, hold_s=30)
    sim.control.fault("drop_event", seconds=120, match={"client_order_id": cid})


def pending(r: redis.Redis) -> int:
    return len(pending_entries(r))


@pytest.fixture
def pair(sim, env, tmp_path, sync_redis):
    """start(**g1_env) -> (g1 holding the venue's lease, g2 its standby); short lease, no poller.
    Both are stopped cleanly (exit 0) at the end."""
    procs: list[Proc] = []

    def start(**g1_env: str) -> tuple[Proc, Proc]:
        config = write_config(tmp_path / "og.toml", sim, poll_every_s=600, lease_ms=1500)
        g1 = start_gateway(env, config, tmp_path / "g1.log", INSTANCE="g1", **g1_env)
        procs.append(g1)
        wait_until(
            lambda: holder(sync_redis).startswith("order_gateway-g1-sim/"), timeout=20, what="g1 holds"
        )
        wait_gateway_ready(sync_redis, g1)
        g2 = start_gateway(env, config, tmp_path / "g2.log", INSTANCE="g2")
        procs.append(g2)
        wait_until(lambda: "standing by" in g2.output(), timeout=20, what="g2 standing by")
        return g1, g2

    yield start
    for proc in procs:
        if proc.alive():
            os.kill(proc.pid, signal.SIGCONT)
            assert proc.terminate() == 0, proc.output()[-3000:]


def test_only_the_holder_serves_and_the_standby_says_so(sim, pair, sync_redis):
    g1, g2 = pair()
    cmds = send(sync_redis, *(market(bot, seq) for seq in (1, 2) for bot in ("la", "lb", "lc")))
    wait_filled(sync_redis, cmds)
    assert {c.cid: accepted(sim, c.cid) for c in cmds} == {c.cid: 1 for c in cmds}
    assert readers(sync_redis) == {"order_gateway-g1-sim"}, "the standby never read a command"
    assert "automata_order_commands_total{" not in http(sync_redis, "g2", "/metrics"), "nor sent one"
    assert "automata_order_commands_total{" in http(sync_redis, "g1", "/metrics")
    assert json.loads(http(sync_redis, "g2", "/health"))["ok"], "a standby is healthy"
    assert holder(sync_redis).startswith("order_gateway-g1-sim/")
    wait_until(lambda: (role(sync_redis, "g1"), role(sync_redis, "g2")) == ("active", "standby"), timeout=10,
               what="the heartbeats say who serves")  # fmt: skip
    assert g2.output().count("standing by") == 1, "it says once that it waits"


def test_the_standby_takes_over_when_the_holder_is_killed(sim, pair, sync_redis):
    g1, g2 = pair()
    stuck = send(sync_redis, market("ka", 1), market("ka", 2))  # ka-1's reply never comes back to g1
    stick(sim, stuck[0].cid)
    wait_until(lambda: accepted(sim, stuck[0].cid) == 1, what="the venue took ka-000001")
    g1.kill()
    sim.control.clear_faults()
    new = send(sync_redis, market("kb", 1))
    wait_until(lambda: holder(sync_redis).startswith("order_gateway-g2-sim/"), timeout=20, what="g2 holds")
    wait_filled(sync_redis, stuck + new)
    assert {c.cid: accepted(sim, c.cid) for c in stuck + new} == {c.cid: 1 for c in stuck + new}
    assert any(u.reconciled for u in updates(sync_redis, "ka", stuck[0].cid)), (
        "resolved by g2, from the venue"
    )
    notes = [decode(f) for _, f in sync_redis.xrange("notify")]
    assert len([n for n in notes if isinstance(n, Notification) and n.kind == "reconciliation"]) == 2
    wait_until(lambda: pending(sync_redis) == 0, what="every command acked")


def snapshot(r: redis.Redis) -> dict:
    """Everything a gateway writes besides notifications: records, open set, bots' updates."""
    keys = sorted(k.decode() for k in r.keys("og:*") if not k.startswith(b"og:lease"))
    state = {k: r.hgetall(k) if r.type(k) == b"hash" else sorted(r.smembers(k)) for k in keys}
    state |= {k.decode(): r.xlen(k) for k in r.keys("orders:events:*")}
    return state


def test_a_holder_frozen_past_its_lease_writes_nothing_when_it_wakes(sim, pair, sync_redis):
    g1, g2 = pair()
    stuck = send(sync_redis, market("sa", 1), market("sa", 2))
    stick(sim, stuck[0].cid)
    wait_until(lambda: accepted(sim, stuck[0].cid) == 1, what="the venue took sa-000001")
    os.kill(g1.pid, signal.SIGSTOP)  # frozen while waiting for the reply, with sa-000002 queued
    sim.control.clear_faults()
    wait_until(lambda: holder(sync_redis).startswith("order_gateway-g2-sim/"), timeout=20, what="g2 holds")
    new = send(sync_redis, market("sb", 1))
    wait_filled(sync_redis, stuck + new)
    wait_until(lambda: pending(sync_redis) == 0, what="every command acked")
    before = snapshot(sync_redis)
    os.kill(g1.pid, signal.SIGCONT)  # its request timed out meanwhile: it would record that
    wait_until(lambda: role(sync_redis, "g1") == "standby", timeout=20, what="g1 back to standing by")
    assert snapshot(sync_redis) == before, "the woken holder's writes were fenced"
    assert "lease lost" in g1.output() or "may have expired" in g1.output()
    assert {c.cid: accepted(sim, c.cid) for c in stuck + new} == {c.cid: 1 for c in stuck + new}
    assert holder(sync_redis).startswith("order_gateway-g2-sim/")
    late = send(sync_redis, market("sb", 2))  # and g2 serves on
    wait_filled(sync_redis, late)
    assert accepted(sim, late[0].cid) == 1


def test_a_holder_frozen_between_its_log_and_its_send_sends_nothing_when_it_wakes(sim, pair, sync_redis):
    """The worst place to freeze: the order is in the log, not yet sent. The new holder finds it
    PENDING_SUBMIT, waits out the venue's recvWindow and sends it; the woken one must not."""
    g1, g2 = pair(AUTOMATA_FAILPOINTS="og.after_wal:stop")
    cmd = send(sync_redis, market("fa", 1))
    wait_until(lambda: frozen(g1), what="g1 frozen right after writing fa-000001 to the log")
    assert accepted(sim, cmd[0].cid) == 0
    wait_until(lambda: holder(sync_redis).startswith("order_gateway-g2-sim/"), timeout=20, what="g2 holds")
    wait_filled(sync_redis, cmd)
    wait_until(lambda: pending(sync_redis) == 0, what="the command acked")
    before = snapshot(sync_redis)
    os.kill(g1.pid, signal.SIGCONT)
    wait_until(lambda: "standing by" in g1.output(), timeout=20, what="g1 back to standing by")
    assert accepted(sim, cmd[0].cid) == 1, "sent once, by the holder"
    assert snapshot(sync_redis) == before


async def test_a_lapsed_lease_stops_a_send_before_it_leaves(redis_client):
    calls: list[str] = []

    class Venue:
        recv_window_ms = 1000

        async def place(self, *args) -> str:
            calls.append("place")
            return "sent"

    lease = Lease(redis_client, LEASE, "og-a/1", 5000)
    assert await lease.try_acquire()
    adapter = LeasedAdapter(Venue(), lease)
    assert await adapter.place() == "sent" and adapter.recv_window_ms == 1000
    lease.valid_until = time.monotonic() - 0.001  # as after a freeze longer than the lease
    with pytest.raises(FencedError):
        await adapter.place()
    assert calls == ["place"]


def test_a_restarted_gateway_takes_its_own_lease_back_at_once(sim, env, tmp_path, sync_redis):
    config = write_config(tmp_path / "og.toml", sim, lease_ms=600_000)  # waiting it out would fail the test
    first: Proc = start_gateway(env, config, tmp_path / "og1.log", INSTANCE="solo")
    wait_gateway_ready(sync_redis, first)
    first.kill()
    again = start_gateway(env, config, tmp_path / "og2.log", INSTANCE="solo")
    cmd = send(sync_redis, market("ra", 1))
    wait_filled(sync_redis, cmd, timeout=20)  # long before a 10-minute lease could expire
    assert "took over the lease of an earlier run" in again.output()
    assert again.terminate() == 0
    assert not sync_redis.exists(LEASE), "released on a clean stop"
