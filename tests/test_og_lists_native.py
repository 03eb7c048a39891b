"""Native OCO (the venue's order-list endpoints) through the order gateway and python-binance,
against the paper venue: one leg fills, the other expires; a refusal rejects every leg; the
gateway SIGKILLed at each failpoint of the list path, or the reply dropped: never two lists,
never a leg left open, every leg's final state reaches the bot."""

from __future__ import annotations

from decimal import Decimal

import pytest

from shared.messages import OrderStatus
from shared.streams import og_open, og_open_lists
from tests.helpers.gateway import updates, wait_gateway_ready, wait_status
from tests.helpers.lists import SYMBOL, cancel_list, list_record, oco, oco_command, start, write_config
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


def test_native_oco_one_leg_fills_the_other_expires(sim, env, config, tmp_path, sync_redis):
    proc = start("services.order_gateway", env, config, tmp_path / "og.log")
    wait_gateway_ready(sync_redis)
    p = price_of(sim)
    cmd = oco(sync_redis, 1, above=p + 500, below=p - 500)
    limit, stop = cmd.legs
    for leg in cmd.legs:
        assert wait_status(sync_redis, leg.cid, OrderStatus.NEW).venue_order_id
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
