"""Per-bot lanes in the order gateway: one bot's stuck order does not delay another bot's, a
bot's commands keep their order, and a SIGKILL with several lanes busy loses and doubles nothing.
Real gateway process, real paper venue, real SIGKILL."""

from __future__ import annotations

import time
from decimal import Decimal

import redis

from shared.codec import decode, encode
from shared.messages import CancelOrder, OrderStatus, OrderType, OrderUpdate, PlaceOrder, Side, TimeInForce
from shared.streams import dlq, order_commands, order_events
from tests.helpers.cmdstreams import command_streams, pending_entries
from tests.helpers.gateway import accepted, start_gateway, wait_gateway_ready, write_config
from tests.helpers.procs import wait_until
from tests.helpers.sim import SimVenue, sim_fixture

sim = sim_fixture()
SETTLED = {OrderStatus.NEW, OrderStatus.FILLED, OrderStatus.PARTIALLY_FILLED, OrderStatus.CANCELED,
           OrderStatus.REJECTED, OrderStatus.EXPIRED}  # fmt: skip


def send(r: redis.Redis, msg: PlaceOrder | CancelOrder) -> tuple[str, str]:
    """XADD one command to its bot's stream; returns (stream, entry id)."""
    stream = order_commands("sim", msg.bot)
    return stream, r.xadd(stream, encode(msg)).decode()


def order(bot: str, seq: int, *, price: Decimal | None = None, side: Side = Side.BUY) -> PlaceOrder:
    """A limit order at `price`, or a market order without one."""
    return PlaceOrder(
        cid=f"{bot}-{seq:06d}", bot=bot, venue="sim", symbol="BTCUSDT", side=side,
        order_type=OrderType.LIMIT if price else OrderType.MARKET, quantity=Decimal("0.001"), price=price,
        time_in_force=TimeInForce.GTC if price else None, ts=int(time.time() * 1000),
    )  # fmt: skip


def events(r: redis.Redis, bot: str) -> list[OrderUpdate]:
    return [decode(f) for _, f in r.xrange(order_events(bot))]


def statuses(r: redis.Redis, bot: str, cid: str) -> list[OrderStatus]:
    return [u.status for u in events(r, bot) if u.cid == cid]


def pending_ids(r: redis.Redis) -> set[tuple[str, str]]:
    return set(pending_entries(r))


def journal_seq(sim: SimVenue, kind: str, cid: str) -> int:
    return next(
        e["seq"] for e in sim.control.journal() if e["kind"] == kind and e.get("client_order_id") == cid
    )


def stick(sim: SimVenue, cid: str) -> None:
    """The venue takes this order but neither its reply nor any answer about it comes back."""
    sim.control.fault("drop_reply", seconds=120, match={"client_order_id": cid}, hold_s=30)
    sim.control.fault("drop_event", seconds=120, match={"client_order_id": cid})


def test_a_stuck_bot_does_not_delay_another_and_keeps_its_own_order(sim, env, tmp_path, sync_redis):
    config = write_config(tmp_path / "og.toml", sim, poll_every_s=600)  # no poller: only the lane can tell
    gateway = start_gateway(env, config, tmp_path / "og.log")
    wait_gateway_ready(sync_redis, gateway)
    price = Decimal(sim.control.state()["prices"]["BTCUSDT"]) - 100
    a1, a2, b1 = order("ba", 1, price=price), order("ba", 2, price=price), order("bb", 1, price=price)
    stick(sim, a1.cid)
    a1_entry = send(sync_redis, a1)
    send(sync_redis, CancelOrder(cid=a1.cid, bot="ba", venue="sim", symbol="BTCUSDT"))
    send(sync_redis, a2)
    wait_until(lambda: accepted(sim, a1.cid) == 1, what="the venue took a1 (its reply is held)")
    send(sync_redis, b1)
    wait_until(lambda: OrderStatus.NEW in statuses(sync_redis, "bb", b1.cid), timeout=20, what="b1 NEW")
    # observed while b1 is NEW: bot ba is still stuck on a1, and its later commands wait behind it
    assert a1_entry in pending_ids(sync_redis), "a1's command is not settled yet"
    assert not set(statuses(sync_redis, "ba", a1.cid)) & SETTLED
    assert accepted(sim, a2.cid) == 0, "a2 waits for a1 and its cancel"
    sim.control.clear_faults()
    wait_until(lambda: OrderStatus.NEW in statuses(sync_redis, "ba", a2.cid), timeout=30, what="a2 NEW")
    a1_seen = [s for s in statuses(sync_redis, "ba", a1.cid) if s is not OrderStatus.UNKNOWN]
    assert a1_seen == [OrderStatus.NEW, OrderStatus.CANCELED], "a1 resolved, then cancelled, then a2 sent"
    assert journal_seq(sim, "canceled", a1.cid) < journal_seq(sim, "accepted", a2.cid)
    assert [accepted(sim, c) for c in (a1.cid, a2.cid, b1.cid)] == [1, 1, 1]
    wait_until(lambda: not pending_ids(sync_redis), what="every command acked")
    assert gateway.terminate() == 0


def test_sigkill_with_several_lanes_busy_loses_and_doubles_nothing(sim, env, tmp_path, sync_redis):
    config = write_config(tmp_path / "og.toml", sim, poll_every_s=600)
    gateway = start_gateway(env, config, tmp_path / "og1.log")
    wait_gateway_ready(sync_redis, gateway)
    price = Decimal(sim.control.state()["prices"]["BTCUSDT"]) - 100
    bots = ("ka", "kb", "kc", "kd")
    commands: list[PlaceOrder] = []
    for bot in bots[:3]:
        stick(sim, f"{bot}-000001")  # three lanes busy resolving their first order
    for seq in (1, 2, 3):
        for bot in bots:
            cmd = order(bot, seq, price=price if seq == 2 else None, side=Side.BUY)
            commands.append(cmd)
            send(sync_redis, cmd)
    stuck = [f"{bot}-000001" for bot in bots[:3]]
    wait_until(lambda: all(accepted(sim, c) == 1 for c in stuck), what="the stuck orders reached the venue")
    wait_until(lambda: all(set(statuses(sync_redis, "kd", c.cid)) & SETTLED for c in commands[3::4]),
               timeout=20, what="the free lane's orders")  # fmt: skip
    assert len(pending_ids(sync_redis)) == 9, "three lanes hold three commands each"
    gateway.kill()
    sim.control.clear_faults()
    restarted = start_gateway(env, config, tmp_path / "og2.log")

    def answered() -> bool:
        return all(set(statuses(sync_redis, c.bot, c.cid)) & SETTLED for c in commands)

    wait_until(answered, timeout=40, what="every command answered")
    wait_until(lambda: not pending_ids(sync_redis), what="every command acked")
    assert {c.cid: accepted(sim, c.cid) for c in commands} == {c.cid: 1 for c in commands}
    for bot in bots:  # each bot's orders reached the venue in the order it sent them
        seqs = [journal_seq(sim, "accepted", f"{bot}-{s:06d}") for s in (1, 2, 3)]
        assert seqs == sorted(seqs), bot
    assert not any(sync_redis.xlen(dlq(s)) for s in command_streams(sync_redis))
    assert restarted.terminate() == 0
