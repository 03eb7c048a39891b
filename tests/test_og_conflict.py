"""One client order id, one order: a replayed command with the same terms is answered with the
order's state; with other terms it is a conflict. A command of a window Redis lost is never
accepted twice by the venue, whatever symbol its order was on and wherever the venue's clock is.

Real gateway process, real paper venue, real python-binance."""

from __future__ import annotations

from decimal import Decimal

from shared.codec import encode
from shared.messages import Level, OrderStatus, OrderType, Side
from shared.streams import og_order, og_symbols
from tests.helpers.gateway import (
    accepted,
    place,
    start_gateway,
    updates,
    wait_gateway_ready,
    wait_status,
    write_config,
)
from tests.helpers.og_sync import lose, notes, venue_far_from_wall_clock, wait_reconciled, write_bots
from tests.helpers.procs import wait_until
from tests.helpers.sim import sim_fixture

sim = sim_fixture()


def nth_update(r, cid: str, n: int):
    return wait_until(lambda: (u := updates(r, cid)) and len(u) >= n and u[n - 1], what=f"{cid} update #{n}")


def acked(r) -> bool:
    return r.xpending("orders:cmd:sim:b1", "order_gateway")["pending"] == 0


def test_same_terms_replay_is_the_same_order_other_terms_a_conflict(sim, env, tmp_path, sync_redis):
    r = sync_redis
    gateway = start_gateway(env, write_config(tmp_path / "og.toml", sim), tmp_path / "og.log")
    wait_gateway_ready(r, gateway)
    p = Decimal(sim.control.state()["prices"]["BTCUSDT"])
    asked = p - Decimal("100.019")  # rounded down to the tick by the gateway before sending
    place(r, 1, price=str(asked), qty="0.0012345")
    new = wait_status(r, "b1-000001", OrderStatus.NEW)
    assert (new.orig_qty, new.price) == (Decimal("0.00123"), p - Decimal("100.02")), "the venue's terms"
    place(r, 1, price=str(asked), qty="0.0012345")  # the very same command, replayed
    assert nth_update(r, "b1-000001", 2).status is OrderStatus.NEW
    place(r, 1, price=str(p - Decimal("100.02")), qty="0.00123")  # the same order as it was sent
    assert nth_update(r, "b1-000001", 3).status is OrderStatus.NEW
    place(r, 1, price=str(asked), qty="0.0012345", side=Side.SELL)  # the same id, another order
    conflict = nth_update(r, "b1-000001", 4)
    assert conflict.status is OrderStatus.REJECTED and conflict.reason.startswith("conflict:")
    assert conflict.side is Side.SELL and conflict.orig_qty == Decimal("0.0012345"), "the command's own terms"
    assert (
        r.hget(og_order("b1-000001"), "status") == b"NEW" and r.hget(og_order("b1-000001"), "side") == b"BUY"
    )
    place(r, 1, order_type=OrderType.MARKET, qty="0.00123")  # a market order under a limit's id
    assert nth_update(r, "b1-000001", 5).reason.startswith("conflict:")
    found = notes(r, "conflict")
    assert len(found) == 2 and all(n.level is Level.ERROR and n.bot == "b1" for n in found)
    assert accepted(sim, "b1-000001") == 1
    assert [o["status"] for o in sim.control.orders() if o.get("client_order_id") == "b1-000001"] == ["NEW"]
    wait_until(lambda: acked(r), what="every command acked")
    assert gateway.terminate() == 0


def test_a_lost_window_replayed_is_not_accepted_twice(sim, env, tmp_path, sync_redis):
    """Market orders filled in the lost window, one on a symbol only the bots file names (the
    log's symbol set lost it too), one on a symbol only the log's set remembers: reconciliation
    adopts both, and the replayed commands are answered with their fills, never sent again."""
    r = sync_redis
    assert venue_far_from_wall_clock(sim)
    config = write_config(tmp_path / "og.toml", sim)
    bots = write_bots(tmp_path / "bots.toml", ("b1", "BTCUSDT"))
    gateway = start_gateway(env, config, tmp_path / "og1.log", AUTOMATA_BOTS=str(bots))
    wait_gateway_ready(r, gateway)
    wait_reconciled(r)
    btc = place(r, 1, order_type=OrderType.MARKET, qty="0.001")
    eth = place(r, 2, order_type=OrderType.MARKET, qty=None, quote="20", symbol="ETHUSDT")
    wait_status(r, btc.cid, OrderStatus.FILLED)
    wait_status(r, eth.cid, OrderStatus.FILLED)
    assert r.smembers(og_symbols("sim")) == {b"BTCUSDT", b"ETHUSDT"}
    assert gateway.terminate() == 0
    # the power cut: both records gone, and the symbol set lost BTCUSDT
    lose(r, btc.cid, eth.cid)
    r.srem(og_symbols("sim"), "BTCUSDT")
    r.delete("orders:events:b1")
    gateway = start_gateway(env, config, tmp_path / "og2.log", AUTOMATA_BOTS=str(bots))
    summary = wait_reconciled(r, starts=2)
    assert summary.data["adopted"] == 2 and summary.data["skipped"] == 0
    for cmd in (btc, eth):
        assert r.hget(og_order(cmd.cid), "adopted") == b"1"
        r.xadd("orders:cmd:sim:b1", encode(cmd))  # the rolled-back bot sends it again
    wait_until(lambda: all(len(updates(r, c.cid)) == 2 for c in (btc, eth)), what="replays answered")
    for cmd in (btc, eth):
        answers = updates(r, cmd.cid)
        assert [u.status for u in answers] == [OrderStatus.FILLED, OrderStatus.FILLED]
        assert answers[0].adopted and answers[0].cum_filled_qty > 0
        assert accepted(sim, cmd.cid) == 1, f"{cmd.cid} accepted once"
    wait_until(lambda: acked(r), what="replays acked")
    assert gateway.terminate() == 0
