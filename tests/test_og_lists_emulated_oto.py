"""Emulated OTO and OTOCO (the order gateway sends the working leg, holds the pending legs and
sends them once it filled; an OTOCO's pair an emulated OCO), against the paper venue with the
real market gateway (book tickers), the real order gateway with pybit or python-binance (the
venue's config asking for emulation); SIGKILLs between the fill and the pending leg's send
repaired with exactly one pending order at the venue."""

from __future__ import annotations

from decimal import Decimal

import pytest

from shared.messages import ListKind, OrderStatus, OrderType, PlaceOrderList, Side, TimeInForce
from shared.streams import og_order
from tests.helpers.gateway import accepted, updates, wait_gateway_ready, wait_status
from tests.helpers.lists import (
    assert_finished,
    cancel_list,
    emulated_fixtures,
    list_command,
    list_record,
    move,
    open_at_venue,
    price_of,
    send_list,
    start,
    wait_phase,
)
from tests.helpers.procs import wait_until
from tests.helpers.sim import sim_fixture

sim = sim_fixture()
protocol, config, market = emulated_fixtures()


def bracket(sim, r, kind: ListKind, seq: int = 1, tif: TimeInForce = TimeInForce.GTC, *,
            wait: bool = True) -> tuple[Decimal, PlaceOrderList]:  # fmt: skip
    """A buy LIMIT 300 below the price, then (OTO) a sell LIMIT_MAKER 500 above, or (OTOCO) that
    and a sell STOP_LOSS 1000 below; sent, and (`wait`) every leg NEW to the bot, the list waiting."""
    p = price_of(sim)
    sells = [(Side.SELL, OrderType.LIMIT_MAKER, p + 500)]
    if kind is ListKind.OTOCO:
        sells.append((Side.SELL, OrderType.STOP_LOSS, p - 1000))
    cmd = send_list(r, list_command(seq, kind, [(Side.BUY, OrderType.LIMIT, p - 300), *sells], tif=tif))
    if tif is TimeInForce.GTC and wait:
        wait_waiting(r, cmd)
    return p, cmd


def wait_waiting(r, cmd: PlaceOrderList) -> None:
    for leg in cmd.legs:
        wait_status(r, leg.cid, OrderStatus.NEW, timeout=30)
    wait_phase(r, cmd, "waiting")


def record(r, cid: str) -> dict[str, str]:
    return {k.decode(): v.decode() for k, v in r.hgetall(og_order(cid)).items()}


def venue_order(sim, cid: str) -> dict:
    return next(
        o for o in sim.control.orders("binance") + sim.control.orders("bybit") if o["client_order_id"] == cid
    )


def assert_released(sim, r, cid: str) -> None:
    """The leg sent exactly once, open at the venue, and the gateway's record says the same."""
    wait_until(lambda: record(r, cid).get("status") == "NEW" and "held" not in record(r, cid), timeout=30,
               what=f"{cid} released")  # fmt: skip
    wait_until(lambda: cid in open_at_venue(sim), timeout=30, what=f"{cid} at the venue")
    at_venue, ours = venue_order(sim, cid), record(r, cid)
    assert accepted(sim, cid) == 1, "sent exactly once"
    terms = ("quantity", "price", "stop_price"), ("orig_qty", "price", "stop_price")
    assert [Decimal(at_venue[k] or 0) for k in terms[0]] == [Decimal(ours.get(k) or 0) for k in terms[1]]
    assert ours["venue_order_id"] == str(at_venue["order_id"])


def test_oto_a_filled_working_leg_sends_the_pending_leg(sim, env, config, market, tmp_path, sync_redis):
    """Held (NEW to the bot, not at the venue) until the working leg filled, then sent once as
    the bot asked: an ordinary order, cancelled with its list."""
    proc = start("services.order_gateway", env, config, tmp_path / "og.log")
    wait_gateway_ready(sync_redis)
    p, cmd = bracket(sim, sync_redis, ListKind.OTO)
    working, pending = cmd.legs
    assert open_at_venue(sim) == [working.cid], "the pending leg is held by the gateway"
    assert record(sync_redis, pending.cid)["held"] == "1"
    move(sim, sync_redis, p - 400)
    wait_status(sync_redis, working.cid, OrderStatus.FILLED)
    assert_released(sim, sync_redis, pending.cid)
    assert open_at_venue(sim) == [pending.cid]
    said = [u for u in updates(sync_redis, pending.cid) if u.status is OrderStatus.NEW]
    assert len(said) >= 2 and all(u.list_cid == cmd.list_cid for u in said), "NEW held, then NEW at the venue"
    assert list_record(sync_redis, cmd.list_cid)["phase"] == "releasing"
    cancel_list(sync_redis, cmd.list_cid)  # released: an ordinary order, cancelled with its list
    wait_status(sync_redis, pending.cid, OrderStatus.CANCELED)
    assert_finished(sim, sync_redis, cmd)
    # a pending leg of another type the venue takes: a STOP_LOSS sell, sent as one once the buy
    # filled, triggered by the venue
    q = price_of(sim)
    legs = [(Side.BUY, OrderType.LIMIT, q - 300), (Side.SELL, OrderType.STOP_LOSS, q - 800)]
    stop_oto = send_list(sync_redis, list_command(10, ListKind.OTO, legs))
    wait_waiting(sync_redis, stop_oto)
    move(sim, sync_redis, q - 400)
    assert_released(sim, sync_redis, stop_oto.legs[1].cid)
    move(sim, sync_redis, q - 900)
    filled = wait_status(sync_redis, stop_oto.legs[1].cid, OrderStatus.FILLED)
    assert filled.order_type is OrderType.STOP_LOSS and filled.cum_filled_qty == Decimal("0.002")
    assert_finished(sim, sync_redis, stop_oto)
    assert proc.terminate() == 0, proc.output()[-3000:]


def test_a_refused_list_and_a_working_leg_ended_unfilled(sim, env, config, market, tmp_path, sync_redis):
    """A refusal rejects every leg before anything is sent; a working leg cancelled with its list,
    or ended unfilled by the venue, expires the held leg, which never reaches the venue."""
    proc = start("services.order_gateway", env, config, tmp_path / "og.log")
    wait_gateway_ready(sync_redis)
    # a pair the gateway cannot emulate (two limits): every leg REJECTED with the reason, none sent
    p = price_of(sim)
    legs = [
        (Side.BUY, OrderType.LIMIT, p - 300),
        *[(Side.SELL, OrderType.LIMIT_MAKER, p + x) for x in (500, 600)],
    ]
    refused = send_list(sync_redis, list_command(20, ListKind.OTOCO, legs))
    for leg in refused.legs:
        rejected = wait_status(sync_redis, leg.cid, OrderStatus.REJECTED)
        assert "must be one limit leg" in rejected.reason and accepted(sim, leg.cid) == 0
    _, cmd = bracket(sim, sync_redis, ListKind.OTO)
    cancel_list(sync_redis, cmd.list_cid)
    wait_status(sync_redis, cmd.legs[0].cid, OrderStatus.CANCELED)
    wait_status(sync_redis, cmd.legs[1].cid, OrderStatus.CANCELED)  # as the engine ends it
    assert_finished(sim, sync_redis, cmd)
    # an IOC working leg below the market ends unfilled at once: its pending leg expires with it
    _, ioc = bracket(sim, sync_redis, ListKind.OTO, seq=10, tif=TimeInForce.IOC)
    expired = wait_status(sync_redis, ioc.legs[1].cid, OrderStatus.EXPIRED)
    assert "the working leg is" in (expired.reason or "")
    assert_finished(sim, sync_redis, ioc)
    assert [accepted(sim, x.legs[1].cid) for x in (cmd, ioc)] == [0, 0], "nothing else reached the venue"
    assert proc.terminate() == 0, proc.output()[-3000:]


@pytest.mark.parametrize("reach", ["stop", "limit"])
def test_otoco_the_filled_working_leg_starts_an_emulated_oco(
    reach, sim, env, config, market, tmp_path, sync_redis
):
    """The working buy fills: the pair's limit leg is sent, its stop held and watched; then the
    stop reached (the limit cancelled, the stop sent) or the limit filled (the stop expired)."""
    proc = start("services.order_gateway", env, config, tmp_path / "og.log")
    wait_gateway_ready(sync_redis)
    p, cmd = bracket(sim, sync_redis, ListKind.OTOCO)
    working, limit, stop = cmd.legs
    assert open_at_venue(sim) == [working.cid]
    move(sim, sync_redis, p - 400)
    wait_status(sync_redis, working.cid, OrderStatus.FILLED)
    wait_phase(sync_redis, cmd, "working")
    assert_released(sim, sync_redis, limit.cid)
    assert open_at_venue(sim) == [limit.cid] and record(sync_redis, stop.cid)["held"] == "1"
    if reach == "stop":
        trigger_id, _ = move(sim, sync_redis, p - 1100)
        wait_status(sync_redis, limit.cid, OrderStatus.CANCELED)
        filled = wait_status(sync_redis, stop.cid, OrderStatus.FILLED)
        assert filled.order_type is OrderType.MARKET and filled.cum_filled_qty == Decimal("0.002")
        assert accepted(sim, stop.cid) == 1 and list_record(sync_redis, cmd.list_cid)["trigger"] == trigger_id
    else:
        move(sim, sync_redis, p + 600)
        wait_status(sync_redis, limit.cid, OrderStatus.FILLED)
        wait_status(sync_redis, stop.cid, OrderStatus.EXPIRED)
        assert accepted(sim, stop.cid) == 0
    assert_finished(sim, sync_redis, cmd)
    assert proc.terminate() == 0, proc.output()[-3000:]


# where the gateway dies, and the list it carries
CRASHES = [
    ("og.list.after_wal", ListKind.OTO),  # written ahead, nothing sent
    ("og.oto.after_fill", ListKind.OTO),  # the fill in the log, RELEASING not written
    ("og.oto.before_send", ListKind.OTO),  # RELEASING written, the pending leg still held
    ("og.emu.after_release", ListKind.OTO),  # released in the log, not sent
    ("og.oto.before_send", ListKind.OTOCO),
]


@pytest.mark.parametrize(("point", "kind"), CRASHES, ids=[f"{p}-{k.value}" for p, k in CRASHES])
def test_sigkill_between_the_fill_and_the_pending_send_is_repaired(point, kind, sim, env, config, market,
                                                                    tmp_path, sync_redis):  # fmt: skip
    """Killed after the write-ahead, between the working leg's fill and the pending leg's send,
    or between writing the phase and acting: after a restart exactly one pending order at the
    venue, never two or none."""
    proc = start("services.order_gateway", env, config, tmp_path / "og1.log", AUTOMATA_FAILPOINTS=point)
    wait_gateway_ready(sync_redis)
    early = point == "og.list.after_wal"  # killed before the working leg is sent
    p, cmd = bracket(sim, sync_redis, kind, wait=not early)
    sent = cmd.legs[1]  # an OTO's pending leg; an OTOCO's limit leg (its stop stays held)
    if not early:
        move(sim, sync_redis, p - 400)
    wait_until(lambda: not proc.alive(), timeout=20, what=f"gateway killed at {point}")
    assert proc.popen.returncode == -9
    restarted = start("services.order_gateway", env, config, tmp_path / "og2.log")
    if early:  # the working leg sent after its recvWindow, the pending leg held
        wait_waiting(sync_redis, cmd)
        assert open_at_venue(sim) == [cmd.legs[0].cid] and accepted(sim, cmd.legs[0].cid) == 1
        move(sim, sync_redis, p - 400)
    wait_status(sync_redis, cmd.legs[0].cid, OrderStatus.FILLED, timeout=30)
    assert_released(sim, sync_redis, sent.cid)
    wait_phase(sync_redis, cmd, "releasing" if kind is ListKind.OTO else "working")
    assert open_at_venue(sim) == [sent.cid], "exactly one pending order at the venue"
    cancel_list(sync_redis, cmd.list_cid)
    for leg in cmd.legs[1:]:
        wait_status(sync_redis, leg.cid, OrderStatus.CANCELED)
    assert_finished(sim, sync_redis, cmd)
    assert accepted(sim, sent.cid) == 1
    wait_gateway_ready(sync_redis, restarted)
    assert restarted.terminate() == 0, restarted.output()[-3000:]


def test_a_resent_otoco_never_fires_its_stop_on_a_price_from_before_its_resend(
    sim, env, config, market, tmp_path, sync_redis
):
    """The gateway died before sending the OTOCO; the market fell past the pair's stop while it
    was down. Resent, the working buy fills at once and the pair goes out: its stop must not fire
    on the book tick from before the resend (the stream's latest), only on a later one."""
    proc = start(
        "services.order_gateway", env, config, tmp_path / "og1.log", AUTOMATA_FAILPOINTS="og.list.after_wal"
    )
    wait_gateway_ready(sync_redis)
    p, cmd = bracket(sim, sync_redis, ListKind.OTOCO, wait=False)
    working, limit, stop = cmd.legs
    wait_until(lambda: not proc.alive(), timeout=20, what="gateway killed before the send")
    stale_id, _ = move(sim, sync_redis, p - 1100)
    restarted = start("services.order_gateway", env, config, tmp_path / "og2.log")
    wait_status(sync_redis, working.cid, OrderStatus.FILLED, timeout=30)
    assert_released(sim, sync_redis, limit.cid)
    wait_phase(sync_redis, cmd, "working")
    trigger_id, _ = move(sim, sync_redis, p - 1200)
    assert trigger_id != stale_id
    wait_status(sync_redis, limit.cid, OrderStatus.CANCELED, timeout=30)
    wait_status(sync_redis, stop.cid, OrderStatus.FILLED, timeout=30)
    assert list_record(sync_redis, cmd.list_cid)["trigger"] == trigger_id, "fired on the book's backlog"
    assert accepted(sim, stop.cid) == 1
    assert_finished(sim, sync_redis, cmd)
    assert restarted.terminate() == 0, restarted.output()[-3000:]
