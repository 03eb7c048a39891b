"""Emulated OCO (the order gateway holds the stop leg and watches the book), against the paper
venue with the real market gateway (book tickers), the real order gateway and python-binance,
the venue's config asking for emulation; a SIGKILL between the trigger and the send repaired."""

from __future__ import annotations

from decimal import Decimal

import pytest

from shared.messages import OrderStatus, OrderType, Side
from shared.streams import og_list, og_open, og_open_lists, og_order
from tests.helpers.gateway import accepted, updates, wait_gateway_ready, wait_status
from tests.helpers.lists import (
    assert_finished,
    books,
    cancel_list,
    emulated_fixtures,
    forget_list,
    list_record,
    move,
    oco,
    open_at_venue,
    price_of,
    send_list,
    start,
    wait_phase,
)
from tests.helpers.og_sync import send_sync, wait_synced
from tests.helpers.procs import wait_until
from tests.helpers.sim import sim_fixture

sim = sim_fixture()
protocol, config, market = emulated_fixtures()


def working_oco(sim, sync_redis, seq: int = 1):
    """A sell OCO 500 above and below the price, both legs NEW to the bot and the book watched."""
    p = price_of(sim)
    cmd = oco(sync_redis, seq, above=p + 500, below=p - 500)
    wait_working(sync_redis, cmd)
    return p, cmd


def wait_working(sync_redis, cmd) -> None:
    for leg in cmd.legs:
        wait_status(sync_redis, leg.cid, OrderStatus.NEW, timeout=30)
    wait_phase(sync_redis, cmd, "working")


def test_stop_reached_cancels_the_limit_leg_within_one_book_update(
    sim, env, config, market, tmp_path, sync_redis
):
    proc = start("services.order_gateway", env, config, tmp_path / "og.log")
    wait_gateway_ready(sync_redis)
    p, cmd = working_oco(sim, sync_redis)
    limit, stop = cmd.legs
    held = updates(sync_redis, stop.cid)[-1]
    assert held.order_type is OrderType.STOP_LOSS and held.list_cid == cmd.list_cid
    assert open_at_venue(sim) == [limit.cid], "the stop leg is held by the gateway, not at the venue"
    move(sim, sync_redis, p - 100)  # not reached: nothing happens
    trigger_id, tick = move(sim, sync_redis, p - 700)
    assert tick.bid <= p - 500
    canceled = wait_status(sync_redis, limit.cid, OrderStatus.CANCELED)
    assert canceled.list_cid == cmd.list_cid
    filled = wait_status(sync_redis, stop.cid, OrderStatus.FILLED)
    assert filled.cum_filled_qty == Decimal("0.002") and filled.order_type is OrderType.MARKET
    # the book update that reached the stop is the one recorded, and no later one was needed
    assert list_record(sync_redis, cmd.list_cid)["trigger"] == trigger_id
    assert books(sync_redis)[-1][0] == trigger_id
    assert accepted(sim, stop.cid) == 1 and accepted(sim, limit.cid) == 1
    assert_finished(sim, sync_redis, cmd)
    assert proc.terminate() == 0, proc.output()[-3000:]


def test_a_limit_fill_expires_the_held_leg_and_a_cancel_ends_both(
    sim, env, config, market, tmp_path, sync_redis
):
    proc = start("services.order_gateway", env, config, tmp_path / "og.log")
    wait_gateway_ready(sync_redis)
    p, cmd = working_oco(sim, sync_redis)
    limit, stop = cmd.legs
    move(sim, sync_redis, p + 600)  # the limit leg trades
    wait_status(sync_redis, limit.cid, OrderStatus.FILLED)
    expired = wait_status(sync_redis, stop.cid, OrderStatus.EXPIRED)
    assert expired.cum_filled_qty == 0 and accepted(sim, stop.cid) == 0
    assert_finished(sim, sync_redis, cmd)
    # a second list, cancelled by the bot: both legs end, nothing left anywhere
    _, second = working_oco(sim, sync_redis, 10)
    cancel_list(sync_redis, second.list_cid)
    wait_status(sync_redis, second.legs[0].cid, OrderStatus.CANCELED)
    wait_status(sync_redis, second.legs[1].cid, OrderStatus.CANCELED)
    assert_finished(sim, sync_redis, second)
    # a replay of the first list is answered with its legs' states, never sent again
    oco(sync_redis, 1, above=p + 500, below=p - 500)
    wait_until(lambda: len([u for u in updates(sync_redis, stop.cid) if u.status is OrderStatus.EXPIRED]) == 2,
               what="the replay answered")  # fmt: skip
    assert accepted(sim, limit.cid) == 1
    assert proc.terminate() == 0, proc.output()[-3000:]


# where the gateway dies, what moves the market, and each leg's final status
CRASHES = {
    "og.list.after_wal": ("stop", OrderStatus.CANCELED, OrderStatus.FILLED),  # nothing sent yet
    "og.emu.after_trigger": ("stop", OrderStatus.CANCELED, OrderStatus.FILLED),
    "og.emu.after_cancel": ("stop", OrderStatus.CANCELED, OrderStatus.FILLED),
    "og.emu.after_fill": ("limit", OrderStatus.FILLED, OrderStatus.EXPIRED),
}


@pytest.mark.parametrize("point", sorted(CRASHES))
def test_sigkill_on_the_emulation_path_is_repaired(point, sim, env, config, market, tmp_path, sync_redis):
    """Killed after the write-ahead, between the trigger and the cancel, between the cancel and
    the send, or between the limit leg's fill and the held leg's expiry: finished on restart."""
    move_to, limit_final, stop_final = CRASHES[point]
    proc = start("services.order_gateway", env, config, tmp_path / "og1.log", AUTOMATA_FAILPOINTS=point)
    wait_gateway_ready(sync_redis)
    trigger_id = ""
    if point == "og.list.after_wal":
        p = price_of(sim)
        cmd = oco(sync_redis, 1, above=p + 500, below=p - 500)
    else:
        p, cmd = working_oco(sim, sync_redis)
        trigger_id, _ = move(sim, sync_redis, p - 700 if move_to == "stop" else p + 600)
    limit, stop = cmd.legs
    wait_until(lambda: not proc.alive(), timeout=20, what=f"gateway killed at {point}")
    assert proc.popen.returncode == -9
    restarted = start("services.order_gateway", env, config, tmp_path / "og2.log")
    if point == "og.list.after_wal":  # the limit leg sent after its recvWindow, the stop held
        wait_working(sync_redis, cmd)
        trigger_id, _ = move(sim, sync_redis, p - 700)
    wait_status(sync_redis, limit.cid, limit_final, timeout=30)
    final = wait_status(sync_redis, stop.cid, stop_final, timeout=30)
    assert accepted(sim, limit.cid) == 1
    if stop_final is OrderStatus.FILLED:
        assert final.cum_filled_qty == Decimal("0.002")
        assert accepted(sim, stop.cid) == 1, "the stop leg was sent exactly once"
        assert list_record(sync_redis, cmd.list_cid)["trigger"] == trigger_id
    else:
        assert accepted(sim, stop.cid) == 0, "the held leg never reached the venue"
    assert_finished(sim, sync_redis, cmd)
    wait_gateway_ready(sync_redis, restarted)
    assert restarted.terminate() == 0, restarted.output()[-3000:]


def test_a_buy_oco_stop_triggers_on_the_ask(sim, env, config, market, tmp_path, sync_redis):
    """A buy OCO [STOP_LOSS_LIMIT above, LIMIT_MAKER below]: the ask reaching the stop cancels the
    limit leg and sends the stop leg as a LIMIT at its price (the market past it: it rests)."""
    proc = start("services.order_gateway", env, config, tmp_path / "og.log")
    wait_gateway_ready(sync_redis)
    p = price_of(sim)
    cmd = oco(sync_redis, 1, above=p + 500, below=p - 500, side=Side.BUY, stop_type=OrderType.STOP_LOSS_LIMIT)
    stop, limit = cmd.legs
    wait_working(sync_redis, cmd)
    move(sim, sync_redis, p + 300)  # not reached
    trigger_id, tick = move(sim, sync_redis, p + 600)
    assert tick.ask >= p + 500
    wait_status(sync_redis, limit.cid, OrderStatus.CANCELED)
    wait_until(lambda: [o for o in sim.control.orders("binance") + sim.control.orders("bybit")
                        if o["client_order_id"] == stop.cid], what="the stop leg at the venue")  # fmt: skip
    move(sim, sync_redis, p + 400)  # a buy LIMIT at the stop's price (p + 500) fills at or below it
    filled = wait_status(sync_redis, stop.cid, OrderStatus.FILLED)
    assert filled.order_type is OrderType.LIMIT and filled.cum_filled_qty == Decimal("0.002")
    assert list_record(sync_redis, cmd.list_cid)["trigger"] == trigger_id
    assert_finished(sim, sync_redis, cmd)
    assert proc.terminate() == 0, proc.output()[-3000:]


def test_a_list_redis_lost_is_emulated_again_from_its_adopted_limit_leg(
    sim, env, config, market, tmp_path, sync_redis
):
    """Redis lost the list's writes while the gateway was down (a power cut): the restarted
    gateway adopts the limit leg it finds at the venue, the held stop leg is gone with the list.
    The bot asks for the list again: the limit leg is that order, so the list is emulated again
    from it, the stop held again (nothing sent), and the stop reached still sells once. Refused
    as a conflict before, the bot heard its live limit leg REJECTED (found by the smart-trade
    power cuts)."""
    proc = start("services.order_gateway", env, config, tmp_path / "og.log")
    wait_gateway_ready(sync_redis)
    p, cmd = working_oco(sim, sync_redis)
    limit, stop = cmd.legs
    proc.kill()
    forget_list(sync_redis, cmd)
    proc = start("services.order_gateway", env, config, tmp_path / "og2.log")
    wait_gateway_ready(sync_redis)
    wait_until(lambda: sync_redis.hget(og_order(limit.cid), "adopted") in (b"True", b"true", b"1"),
               timeout=30, what="the limit leg adopted")  # fmt: skip
    seen = len(updates(sync_redis))
    send_list(sync_redis, cmd)
    wait_phase(sync_redis, cmd, "working")
    wait_until(lambda: {u.cid for u in updates(sync_redis)[seen:]} >= {limit.cid, stop.cid}, timeout=30,
               what="both legs answered")  # fmt: skip
    assert {u.status for u in updates(sync_redis)[seen:]} == {OrderStatus.NEW}
    assert open_at_venue(sim) == [limit.cid] and accepted(sim, limit.cid) == 1
    move(sim, sync_redis, p - 700)  # the stop reached: the limit leg cancelled, the stop sold once
    wait_status(sync_redis, limit.cid, OrderStatus.CANCELED, timeout=30)
    assert wait_status(sync_redis, stop.cid, OrderStatus.FILLED, timeout=30).cum_filled_qty == Decimal(
        "0.002"
    )
    assert accepted(sim, stop.cid) == 1
    assert_finished(sim, sync_redis, cmd)
    assert proc.terminate() == 0, proc.output()[-3000:]


def test_a_fired_list_redis_lost_is_answered_with_its_sale_never_sold_again(
    sim, env, config, market, tmp_path, sync_redis
):
    """The stop had fired (the limit leg cancelled, the stop leg sold as a MARKET) when Redis lost
    the list's writes and its legs' (a power cut). The restarted bot syncs (both legs adopted,
    closed) and asks for the list again: it hears the limit leg CANCELED and the stop leg
    FILLED, nothing is sent again (the position sold once) and nothing is left open."""
    proc = start("services.order_gateway", env, config, tmp_path / "og.log")
    wait_gateway_ready(sync_redis)
    p, cmd = working_oco(sim, sync_redis)
    limit, stop = cmd.legs
    move(sim, sync_redis, p - 700)
    wait_status(sync_redis, limit.cid, OrderStatus.CANCELED, timeout=30)
    wait_status(sync_redis, stop.cid, OrderStatus.FILLED, timeout=30)
    proc.kill()
    forget_list(sync_redis, cmd)
    proc = start("services.order_gateway", env, config, tmp_path / "og2.log")
    wait_gateway_ready(sync_redis)
    send_sync(sync_redis, 0, "after-the-cut")
    assert wait_synced(sync_redis, "after-the-cut").max_seq >= 3
    seen = len(updates(sync_redis))
    send_list(sync_redis, cmd)
    wait_until(lambda: {u.cid for u in updates(sync_redis)[seen:]} >= {limit.cid, stop.cid}, timeout=30,
               what="both legs answered")  # fmt: skip
    answered = {u.cid: u for u in updates(sync_redis)[seen:]}
    assert answered[limit.cid].status is OrderStatus.CANCELED
    assert answered[stop.cid].status is OrderStatus.FILLED
    assert answered[stop.cid].cum_filled_qty == Decimal("0.002")
    move(sim, sync_redis, p - 800)  # the book still past the stop: nothing more is sold
    assert accepted(sim, limit.cid) == 1 and accepted(sim, stop.cid) == 1
    assert open_at_venue(sim) == []
    assert_finished(sim, sync_redis, cmd)
    assert proc.terminate() == 0, proc.output()[-3000:]


@pytest.mark.parametrize("kept", ["working", "sending"])
def test_a_fired_stop_whose_firing_redis_lost_is_found_at_the_venue(
    kept, sim, env, config, market, tmp_path, sync_redis
):
    """Redis lost the writes since the stop fired ("working": the list WORKING, its limit leg NEW
    in the log) or since the limit leg's cancel ("sending": the list SENDING): its stop leg held,
    while the venue cancelled the limit leg and sold the stop leg at market under its id. The
    restarted gateway must learn the sale (the stop leg FILLED, never CANCELED as a held leg
    ended with its limit leg, nor sent again) and never sell again."""
    proc = start("services.order_gateway", env, config, tmp_path / "og.log")
    wait_gateway_ready(sync_redis)
    p, cmd = working_oco(sim, sync_redis)
    limit, stop = cmd.legs
    keys = [og_list(cmd.list_cid), og_open_lists("sim"), og_open("sim"), og_order(stop.cid)]
    if kept == "working":
        keys.append(og_order(limit.cid))
    saved = {k: sync_redis.dump(k) for k in keys}
    move(sim, sync_redis, p - 700)
    wait_status(sync_redis, stop.cid, OrderStatus.FILLED, timeout=30)
    proc.kill()
    for k, v in saved.items():
        sync_redis.restore(k, 0, v, replace=True)
    if kept == "sending":
        sync_redis.hset(og_list(cmd.list_cid), "phase", "sending")
        sync_redis.srem(og_open("sim"), limit.cid)
    seen = len(updates(sync_redis))
    proc = start("services.order_gateway", env, config, tmp_path / "og2.log")
    wait_gateway_ready(sync_redis)
    wait_phase(sync_redis, cmd, "done")
    after = [u for u in updates(sync_redis)[seen:] if u.cid == stop.cid]
    assert after and after[-1].status is OrderStatus.FILLED, after
    assert OrderStatus.CANCELED not in {u.status for u in after}
    move(sim, sync_redis, p - 800)
    assert accepted(sim, limit.cid) == 1 and accepted(sim, stop.cid) == 1
    assert_finished(sim, sync_redis, cmd)
    assert proc.terminate() == 0, proc.output()[-3000:]


def test_a_resent_list_never_fires_on_a_price_from_before_its_resend(
    sim, env, config, market, tmp_path, sync_redis
):
    """The gateway died before sending the list; the market passed its stop while it was down
    (that book tick the stream's latest at the restart). The list is resent with the same ids:
    a venue's stop sees only prices after its order exists, so the stop must not fire on that
    tick, only on a later one (it fired at once before, and sold twice in the smart-trade power
    cuts when the bot's cancel of the list came after)."""
    proc = start(
        "services.order_gateway", env, config, tmp_path / "og1.log", AUTOMATA_FAILPOINTS="og.list.after_wal"
    )
    wait_gateway_ready(sync_redis)
    p = price_of(sim)
    cmd = oco(sync_redis, 1, above=p + 500, below=p - 500)
    limit, stop = cmd.legs
    wait_until(lambda: not proc.alive(), timeout=20, what="gateway killed before the send")
    stale_id, stale = move(sim, sync_redis, p - 700)
    assert stale.bid <= p - 500
    restarted = start("services.order_gateway", env, config, tmp_path / "og2.log")
    wait_working(sync_redis, cmd)  # the limit leg resent after its recvWindow, the stop held
    assert books(sync_redis)[-1][0] == stale_id
    trigger_id, _ = move(sim, sync_redis, p - 800)
    wait_status(sync_redis, limit.cid, OrderStatus.CANCELED, timeout=30)
    assert wait_status(sync_redis, stop.cid, OrderStatus.FILLED, timeout=30).cum_filled_qty == Decimal(
        "0.002"
    )
    assert list_record(sync_redis, cmd.list_cid)["trigger"] == trigger_id, "fired on the book's backlog"
    assert accepted(sim, limit.cid) == 1 and accepted(sim, stop.cid) == 1
    assert_finished(sim, sync_redis, cmd)
    assert restarted.terminate() == 0, restarted.output()[-3000:]


def test_a_stop_passed_while_the_gateway_was_down_fires_on_restart(
    sim, env, config, market, tmp_path, sync_redis
):
    """The list reached the venue, then the gateway died and the market passed its stop: the
    restarted gateway fires it on the latest book tick (newer than the list's send), as a venue
    would have, without waiting for another."""
    proc = start("services.order_gateway", env, config, tmp_path / "og1.log")
    wait_gateway_ready(sync_redis)
    p, cmd = working_oco(sim, sync_redis)
    limit, stop = cmd.legs
    proc.kill()
    trigger_id, _ = move(sim, sync_redis, p - 700)
    restarted = start("services.order_gateway", env, config, tmp_path / "og2.log")
    wait_status(sync_redis, limit.cid, OrderStatus.CANCELED, timeout=30)
    wait_status(sync_redis, stop.cid, OrderStatus.FILLED, timeout=30)
    assert list_record(sync_redis, cmd.list_cid)["trigger"] == trigger_id
    assert books(sync_redis)[-1][0] == trigger_id, "no later tick was needed"
    assert accepted(sim, limit.cid) == 1 and accepted(sim, stop.cid) == 1
    assert_finished(sim, sync_redis, cmd)
    assert restarted.terminate() == 0, restarted.output()[-3000:]
