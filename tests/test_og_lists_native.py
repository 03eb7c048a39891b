"""Native OCO (the venue's order-list endpoints) through the order gateway and python-binance,
against the paper venue: one leg fills, the other expires; a refusal rejects every leg; the
gateway SIGKILLed at each failpoint of the list path, or the reply dropped: never two lists,
never a leg left open, every leg's final state reaches the bot."""

from __future__ import annotations

from decimal import Decimal

import pytest

from shared.messages import OrderStatus
from shared.streams import og_open, og_open_lists, og_order
from tests.helpers.gateway import updates, wait_gateway_ready, wait_status
from tests.helpers.lists import (
    SYMBOL,
    cancel_list,
    forget_list,
    list_record,
    oco,
    oco_command,
    send_list,
    start,
    write_config,
)
from tests.helpers.procs import wait_until
from tests.helpers.sim import sim_fixture

sim = sim_fixture()


@pytest.fixture
def config(tmp_path, sim):
    return write_config(tmp_path / "automata.toml", sim, emulate=False)


def price_of(sim) -> Decimal:
    return Decimal(sim.control.state()["prices"][SYMBOL])


def at_venue(sim, cid: str) -> list[dict]:
    """Every order the venue holds with this client order id (two would be a second list)."""
    return [o for o in sim.control.orders() if o["client_order_id"] == cid]


def assert_agree(sim, sync_redis, cmd, statuses: dict[str, OrderStatus]) -> None:
    """The bot heard each leg's final status, the venue holds each leg once with that status,
    and the log keeps nothing open."""
    for cid, status in statuses.items():
        heard = wait_status(sync_redis, cid, status, timeout=30)
        assert heard.list_cid == cmd.list_cid
        orders = at_venue(sim, cid)
        assert len(orders) == 1 and orders[0]["status"] == status.value, orders
    wait_until(lambda: list_record(sync_redis, cmd.list_cid).get("phase") == "done", what="list done")
    assert not sync_redis.smembers(og_open_lists("sim"))
    assert not {leg.cid.encode() for leg in cmd.legs} & sync_redis.smembers(og_open("sim"))


def working_oco(sim, env, config, tmp_path, sync_redis):
    """A started gateway and a sell OCO 500 above and below the price, both legs NEW at the venue."""
    proc = start("services.order_gateway", env, config, tmp_path / "og.log")
    wait_gateway_ready(sync_redis)
    p = price_of(sim)
    cmd = oco(sync_redis, 1, above=p + 500, below=p - 500)
    for leg in cmd.legs:
        assert wait_status(sync_redis, leg.cid, OrderStatus.NEW).venue_order_id
    return proc, p, cmd


def test_native_oco_one_leg_fills_the_other_expires(sim, env, config, tmp_path, sync_redis):
    proc, p, cmd = working_oco(sim, env, config, tmp_path, sync_redis)
    limit, stop = cmd.legs
    assert list_record(sync_redis, cmd.list_cid)["mode"] == "native"
    sim.control.set_price(SYMBOL, str(p + 600))  # the limit leg trades
    assert_agree(sim, sync_redis, cmd, {limit.cid: OrderStatus.FILLED, stop.cid: OrderStatus.EXPIRED})
    # the stop side: the stop triggers, the limit leg expires
    q = price_of(sim)
    second = oco(sync_redis, 10, above=q + 500, below=q - 500)
    wait_status(sync_redis, second.legs[1].cid, OrderStatus.NEW)
    sim.control.set_price(SYMBOL, str(q - 700))
    assert_agree(sim, sync_redis, second, {second.legs[0].cid: OrderStatus.EXPIRED,
                                           second.legs[1].cid: OrderStatus.FILLED})  # fmt: skip
    # cancelled by the bot: both legs end
    third = oco(sync_redis, 20, above=q + 500, below=q - 1500)
    wait_status(sync_redis, third.legs[1].cid, OrderStatus.NEW)
    cancel_list(sync_redis, third.list_cid)
    assert_agree(sim, sync_redis, third, {leg.cid: OrderStatus.CANCELED for leg in third.legs})
    # refused by the venue (no such balance): every leg REJECTED with the reason
    refused = oco(sync_redis, 30, above=q + 500, below=q - 1500, qty="1000")
    for leg in refused.legs:
        rejected = wait_status(sync_redis, leg.cid, OrderStatus.REJECTED)
        assert rejected.reason and rejected.list_cid == refused.list_cid
        assert not at_venue(sim, leg.cid)
    assert proc.terminate() == 0, proc.output()[-3000:]


@pytest.mark.parametrize(
    "point", ["og.list.after_wal", "og.list.after_reply", "og.list.after_commit", "drop_reply"]
)
def test_sigkill_on_the_list_path_never_two_lists_never_a_leg_left_open(
    point, sim, env, tmp_path, sync_redis
):  # fmt: skip
    config = write_config(tmp_path / "automata.toml", sim, emulate=False, poll_every_s=600)
    extra = {} if point == "drop_reply" else {"AUTOMATA_FAILPOINTS": point}
    proc = start("services.order_gateway", env, config, tmp_path / "og1.log", **extra)
    wait_gateway_ready(sync_redis)
    if point == "drop_reply":  # the venue takes the list, the reply never comes back
        sim.control.fault("drop_reply", match={"path": "/api/v3/order", "method": "POST"}, hold_s=30)
    p = price_of(sim)
    cmd = oco(sync_redis, 1, above=p + 500, below=p - 500)
    limit, stop = cmd.legs
    if point == "drop_reply":
        wait_until(lambda: at_venue(sim, limit.cid), what="the venue took the list")
        proc.kill()
    wait_until(lambda: not proc.alive(), timeout=20, what=f"gateway killed at {point}")
    restarted = start("services.order_gateway", env, config, tmp_path / "og2.log")
    for leg in cmd.legs:
        wait_status(sync_redis, leg.cid, OrderStatus.NEW, timeout=30)
        assert len(at_venue(sim, leg.cid)) == 1, "never two lists"
    wait_until(lambda: sync_redis.xpending("orders:cmd:sim:b1", "order_gateway")["pending"] == 0,
               what="command acked")  # fmt: skip
    sim.control.set_price(SYMBOL, str(p + 600))
    assert_agree(sim, sync_redis, cmd, {limit.cid: OrderStatus.FILLED, stop.cid: OrderStatus.EXPIRED})
    statuses = [u.status for u in updates(sync_redis, stop.cid)]
    assert statuses[-1] is OrderStatus.EXPIRED and OrderStatus.REJECTED not in statuses
    wait_gateway_ready(sync_redis, restarted)
    assert restarted.terminate() == 0, restarted.output()[-3000:]


@pytest.mark.parametrize(
    "fault",
    [
        {"kind": "drop_reply", "hold_s": 5},
        {"kind": "error", "http_status": 504, "body": "html"},
        {"kind": "empty_body"},
    ],
)
def test_an_unknown_outcome_is_resolved_by_the_list_query(fault, sim, env, tmp_path, sync_redis):
    """Neither the reply nor the user stream nor the poller tells: only the list's query can."""
    config = write_config(tmp_path / "automata.toml", sim, emulate=False, poll_every_s=600)
    proc = start("services.order_gateway", env, config, tmp_path / "og.log")
    wait_gateway_ready(sync_redis, proc)
    sim.control.fault(match={"path": "/api/v3/order", "method": "POST"}, **fault)
    p = price_of(sim)
    for leg in oco_command(1, above=p + 500, below=p - 500).legs:  # nothing via the stream either
        sim.control.fault("drop_event", count=10, match={"client_order_id": leg.cid})
    cmd = oco(sync_redis, 1, above=p + 500, below=p - 500)
    for leg in cmd.legs:
        assert wait_status(sync_redis, leg.cid, OrderStatus.NEW, timeout=30).reconciled
        assert len(at_venue(sim, leg.cid)) == 1, "sent once"
    assert list_record(sync_redis, cmd.list_cid)["send_attempts"] == "1"
    assert proc.terminate() == 0, proc.output()[-3000:]


def list_lost(sim, env, config, tmp_path, sync_redis):
    """A working OCO whose writes (its record and its legs') Redis lost while the gateway was
    down, as a power cut can; the gateway restarted has adopted both legs from the venue."""
    proc, p, cmd = working_oco(sim, env, config, tmp_path, sync_redis)
    proc.kill()
    forget_list(sync_redis, cmd)
    proc = start("services.order_gateway", env, config, tmp_path / "og2.log")
    wait_gateway_ready(sync_redis)
    for leg in cmd.legs:
        wait_until(lambda c=leg.cid: sync_redis.hget(og_order(c), "list_cid") == cmd.list_cid.encode(),
                   timeout=30, what=f"{leg.cid} adopted with its list")  # fmt: skip
        assert sync_redis.hget(og_order(leg.cid), "adopted") in (b"True", b"true", b"1")
    return proc, p, cmd


def test_legs_adopted_after_redis_lost_the_list_still_name_it(sim, env, config, tmp_path, sync_redis):
    """Redis lost the list's writes while the gateway was down (its record and its legs'): the
    restarted gateway adopts the legs it finds at the venue, each with its list's cid (the
    adapter looks the list up by its number), and they go on to their end with it."""
    proc, p, cmd = list_lost(sim, env, config, tmp_path, sync_redis)
    limit, stop = cmd.legs
    sim.control.set_price(SYMBOL, str(p + 600))  # the limit leg trades, the venue expires the stop
    for cid, status in ((limit.cid, OrderStatus.FILLED), (stop.cid, OrderStatus.EXPIRED)):
        assert wait_status(sync_redis, cid, status, timeout=30).list_cid == cmd.list_cid
    assert proc.terminate() == 0, proc.output()[-3000:]


def test_a_list_whose_record_redis_lost_is_cancelled_by_its_adopted_legs(
    sim, env, config, tmp_path, sync_redis
):
    """The bot cancels the list (its smart trade's stop moves, a close, a held order booked)
    after Redis lost its record: the gateway has no list, but the adopted legs name it, and
    each open one is cancelled; the cancel was dropped before ("no such list") and the legs
    stayed open at the venue for good (found by the smart-trade power cuts)."""
    proc, _, cmd = list_lost(sim, env, config, tmp_path, sync_redis)
    cancel_list(sync_redis, cmd.list_cid)
    for leg in cmd.legs:
        assert wait_status(sync_redis, leg.cid, OrderStatus.CANCELED, timeout=30).list_cid == cmd.list_cid
        assert [o["status"] for o in at_venue(sim, leg.cid)] == ["CANCELED"]
    assert not {leg.cid.encode() for leg in cmd.legs} & sync_redis.smembers(og_open("sim"))
    assert proc.terminate() == 0, proc.output()[-3000:]


def test_a_list_asked_again_after_redis_lost_it_is_its_adopted_legs(sim, env, config, tmp_path, sync_redis):
    """The bot asks for the list again after Redis lost its record and its legs' (its command
    replayed, or its older state sending it anew): the legs the gateway adopted from the venue
    are those orders, so the answer is their states (NEW), the list's record is written again and
    nothing is sent. It was refused as a conflict before: the bot heard its live legs REJECTED
    and sold by its own watch what the venue's stop sold too (found by the smart-trade power
    cuts)."""
    proc, p, cmd = list_lost(sim, env, config, tmp_path, sync_redis)
    seen = len(updates(sync_redis))
    send_list(sync_redis, cmd)
    wait_until(
        lambda: list_record(sync_redis, cmd.list_cid).get("phase"), timeout=30, what="the list written again"
    )
    legs = {leg.cid for leg in cmd.legs}
    wait_until(
        lambda: {u.cid for u in updates(sync_redis)[seen:]} >= legs, timeout=30, what="both legs answered"
    )
    answers = updates(sync_redis)[seen:]
    assert {u.cid: u.status for u in answers} == {leg.cid: OrderStatus.NEW for leg in cmd.legs}, answers
    assert all(len(at_venue(sim, leg.cid)) == 1 for leg in cmd.legs), "nothing sent again"
    sim.control.set_price(SYMBOL, str(p + 600))  # the limit leg trades, the venue expires the stop
    assert_agree(
        sim, sync_redis, cmd, {cmd.legs[0].cid: OrderStatus.FILLED, cmd.legs[1].cid: OrderStatus.EXPIRED}
    )
    assert proc.terminate() == 0, proc.output()[-3000:]
