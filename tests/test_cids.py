"""Client order ids as a type (shared/ids.py): our own (`{bot}-{seq:06d}`, within the venues'
36 characters) are checked where a command is decoded, so a PlaceOrder or CancelOrder with a
malformed cid is dead-lettered with the reason before it reaches the order gateway's log or the
venue; what the gateway reports (OrderUpdate, BotSynced) carries any venue's cid, ours or
foreign, unchecked. The wire format stays a plain string.

Unit checks of the codec, then a real order gateway process, real paper venue and python-binance."""

from __future__ import annotations

import time
from decimal import Decimal

import pytest

from shared import ids
from shared.codec import DecodeError, decode, encode
from shared.messages import (
    BotSynced,
    CancelOrder,
    Notification,
    OrderStatus,
    OrderType,
    OrderUpdate,
    PlaceOrder,
    Side,
    TimeInForce,
)
from shared.strategy.testing import Driver
from shared.streams import dlq, og_order, order_commands
from strategies.grid import GridStrategy
from tests.helpers.gateway import BOT, place, wait_status
from tests.helpers.og_sync import events, place_behind, reconciled_gateway_fixture, send_sync, venue_client
from tests.helpers.procs import wait_until
from tests.helpers.sim import sim_fixture

BAD_CIDS = [
    "b1 000001",  # a space
    "b1-000001\n",  # a trailing newline (`$` would have matched it)
    "b1-١٢٣٤٥٦",  # Arabic-Indic digits: \d and int() take them, the venues do not
    "b1-00001",  # five digits
    "b1-" + "1" * 34,  # 37 characters: over Binance's and Bybit's 36
    "x-HNA2TXFJ1234",  # a foreign (broker) id
    "",
]


def limit(cid: str, price: Decimal, bot: str = BOT) -> PlaceOrder:
    return PlaceOrder(cid=cid, bot=bot, venue="sim", symbol="BTCUSDT", side=Side.BUY, order_type=OrderType.LIMIT,
                      quantity=Decimal("0.001"), price=price, time_in_force=TimeInForce.GTC,
                      ts=int(time.time() * 1000))  # fmt: skip


# --- the types -----------------------------------------------------------------------------


def test_our_cids_are_made_and_parsed_in_one_format():
    cid = ids.format_cid("dca_1", 42)
    assert cid == "dca_1-000042" and ids.check_cid(cid) == cid
    assert ids.parse_cid(cid) == ids.CidParts("dca_1", 42)
    assert ids.format_cid("a" * 24, 10**10) == "a" * 24 + "-10000000000"  # 36: the longest a venue takes
    with pytest.raises(ids.IdError, match="36"):
        ids.format_cid("a" * 24, 10**11)
    for bad in BAD_CIDS:
        assert ids.bot_of(bad) is None and ids.seq_of(bad, "b1") is None
        with pytest.raises(ids.IdError):
            ids.check_cid(bad)
    with pytest.raises(ids.IdError):
        ids.check_bot_id("b1\n")


@pytest.mark.parametrize("bad", BAD_CIDS)
def test_a_command_with_a_malformed_cid_is_refused_on_decode(bad):
    for cmd in (limit(bad, Decimal(100)), CancelOrder(cid=bad, bot=BOT, venue="sim", symbol="BTCUSDT")):
        with pytest.raises(DecodeError, match=r"\$\.cid"):
            decode(encode(cmd))


def test_the_wire_format_is_unchanged():
    """A command written before the types existed (str keys, as redis-cli would) decodes; a
    cid still travels as a plain JSON string."""
    fields = {"type": "place", "v": "1", "data": '{"type":"place","cid":"b1-000001","bot":"b1","venue":"sim",'
              '"symbol":"BTCUSDT","side":"BUY","order_type":"LIMIT","quantity":"0.001","price":"100"}'}  # fmt: skip
    msg = decode(fields)
    assert isinstance(msg, PlaceOrder) and msg.cid == "b1-000001"
    assert b'"cid":"b1-000001"' in encode(msg)[b"data"]


def test_what_the_gateway_reports_carries_any_venues_cid():
    """A foreign order's cid (placed by hand, or by another tool) decodes in an update and a
    sync answer; a strategy given one books nothing and only warns."""
    for foreign in ("web_7Hq2ZkP0aa", "x-HNA2TXFJ1234", "and_3f9c"):
        update = OrderUpdate(cid=foreign, bot=BOT, venue="sim", symbol="BTCUSDT", status=OrderStatus.FILLED,
                             side=Side.BUY, order_type=OrderType.LIMIT, orig_qty=Decimal(1),
                             cum_filled_qty=Decimal(1), cum_quote_qty=Decimal(100), adopted=True)  # fmt: skip
        assert decode(encode(update)) == update
        synced = BotSynced(bot=BOT, venue="sim", token="t", adopted=(foreign,))
        assert decode(encode(synced)) == synced
        d = Driver(GridStrategy(), {"lower": "90", "upper": "110", "levels": 5})
        before = d.state
        said = d.send(update)  # a warning that the bot holds no such order, nothing else
        assert [(type(c), c.kind) for c in said] == [(Notification, "reconciliation")] and foreign in said[
            0
        ].text
        assert d.state == before


# --- the order gateway ---------------------------------------------------------------------

sim = sim_fixture()
gateway = reconciled_gateway_fixture()


def test_the_gateway_dead_letters_a_malformed_cid_and_serves_the_next_command(sim, gateway, sync_redis):
    r = sync_redis
    stream = order_commands("sim", BOT)
    p = Decimal(sim.control.state()["prices"]["BTCUSDT"]) - 300
    for bad in BAD_CIDS:
        r.xadd(stream, encode(limit(bad, p)))
    r.xadd(stream, encode(CancelOrder(cid="b1-1", bot=BOT, venue="sim", symbol="BTCUSDT")))
    place(r, 1, price=str(p))  # the bot's next, well-formed command
    wait_status(r, "b1-000001", OrderStatus.NEW)

    dead = wait_until(lambda: len(d := r.xrange(dlq(stream))) == len(BAD_CIDS) + 1 and d, what="dead letters")
    reasons = [f[b"dlq_reason"].decode() for _, f in dead]
    assert all(reason.startswith("decode error: invalid ") and "$.cid" in reason for reason in reasons), (
        reasons
    )
    assert sum("length <= 36" in reason for reason in reasons) == 1
    assert r.xpending(stream, "order_gateway")["pending"] == 0
    at_venue = {o.get("client_order_id") for o in sim.control.orders()}
    assert at_venue.isdisjoint(BAD_CIDS) and "b1-000001" in at_venue
    assert not any(r.exists(og_order(bad)) for bad in BAD_CIDS if bad)
    assert all(u.cid == "b1-000001" for u in events(r) if isinstance(u, OrderUpdate)), (
        "no answer to the bad ones"
    )


def test_an_adopted_order_flows_and_a_foreign_one_is_left_alone(sim, gateway, sync_redis):
    """An order of the bot's placed behind the gateway's back is adopted and its cid flows both
    ways (the update, the sync answer, the bot's claim of it); an order with a foreign cid at the
    venue is not the bot's: no record, no update, and nothing is dead-lettered."""
    r = sync_redis
    p = Decimal(sim.control.state()["prices"]["BTCUSDT"]) - 400
    client = venue_client(sim)
    terms = dict(symbol="BTCUSDT", side="BUY", type="LIMIT", timeInForce="GTC", quantity="0.001")
    place_behind(sim, client, "b1-000007", price=str(p), **terms)
    client.create_order(newClientOrderId="web_7Hq2ZkP0aa", price=str(p - 10), **terms)  # by hand, foreign

    send_sync(r, seq=0, token="after-cut")
    answer = wait_until(
        lambda: next((m for m in events(r) if isinstance(m, BotSynced) and m.token == "after-cut"), None),
        what="the sync answer",
    )
    assert answer.adopted == ("b1-000007",)
    adopted = [u for u in events(r) if isinstance(u, OrderUpdate) and u.cid == "b1-000007"]
    assert adopted and adopted[-1].adopted and adopted[-1].status is OrderStatus.NEW

    r.xadd(order_commands("sim", BOT), encode(limit("b1-000007", p)))  # the bot claims it: same terms
    wait_until(lambda: len([u for u in events(r) if isinstance(u, OrderUpdate) and u.cid == "b1-000007"])
               > len(adopted), what="the claim answered")  # fmt: skip
    assert not r.exists(dlq(order_commands("sim", BOT)))
    assert not r.exists(og_order("web_7Hq2ZkP0aa"))
    assert not [u for u in events(r) if isinstance(u, OrderUpdate) and u.cid == "web_7Hq2ZkP0aa"]
    orders = {o.get("client_order_id"): o for o in sim.control.orders()}
    assert orders["web_7Hq2ZkP0aa"]["status"] == "NEW" and orders["b1-000007"]["status"] == "NEW"
    assert sum(1 for o in sim.control.orders() if o.get("client_order_id") == "b1-000007") == 1


def test_a_sync_stops_probing_at_the_longest_cid_a_venue_takes(sim, gateway, sync_redis):
    """A bot with a 24-character id at sequence 10**11 - 2 has one cid left within 36 characters:
    the sync probes it, stops there, and answers (no order can exist past it)."""
    r, bot = sync_redis, "b" * 24
    send_sync(r, seq=10**11 - 2, token="last-cids", bot=bot)
    answer = wait_until(
        lambda: next(
            (m for m in events(r, bot) if isinstance(m, BotSynced) and m.token == "last-cids"), None
        ),
        what="the sync answer",
    )
    assert (answer.adopted, answer.max_seq) == ((), 10**11 - 2)
    assert not r.exists(dlq(order_commands("sim", bot)))
