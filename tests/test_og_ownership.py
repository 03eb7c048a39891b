"""Order ownership: a bot's command (on its own stream, naming itself) may still name any client
order id. A bot acting on another bot's order (cancel, cancel-all, a place or replay under its
cid, a sync) is refused: the order is untouched at the venue, the refusal goes to the sender's
own events stream, the owner's stream gets nothing. (A command naming another bot than its
stream's: tests/test_og_sender.py.)

Real gateway process, real paper venue, real python-binance."""

from __future__ import annotations

import time
from decimal import Decimal

from shared.codec import encode
from shared.messages import (
    BotSynced,
    CancelAll,
    CancelOrder,
    Level,
    OrderStatus,
    OrderType,
    OrderUpdate,
    PlaceOrder,
    Side,
    TimeInForce,
)
from shared.streams import og_order, order_commands
from tests.helpers.gateway import place, wait_status
from tests.helpers.og_sync import (
    events,
    notes,
    place_behind,
    reconciled_gateway_fixture,
    send_sync,
    venue_client,
)
from tests.helpers.procs import wait_until
from tests.helpers.sim import sim_fixture

sim = sim_fixture()
EVIL = "evil"  # a compromised bot: it may XADD anything naming itself to its own command stream


gateway = reconciled_gateway_fixture()


def send(r, cmd) -> None:
    r.xadd(order_commands("sim", cmd.bot), encode(cmd))


def limit_of(bot: str, cid: str, price: Decimal) -> PlaceOrder:
    return PlaceOrder(cid=cid, bot=bot, venue="sim", symbol="BTCUSDT", side=Side.BUY,
                      order_type=OrderType.LIMIT, quantity=Decimal("0.001"), price=price,
                      time_in_force=TimeInForce.GTC, ts=int(time.time() * 1000))  # fmt: skip


def refusals(r, bot: str) -> list[OrderUpdate]:
    return [m for m in events(r, bot) if isinstance(m, OrderUpdate) and m.status is OrderStatus.REJECTED]


def venue_status(sim, cid: str) -> str:
    return next(o["status"] for o in sim.control.orders() if o.get("client_order_id") == cid)


def test_a_bot_cannot_cancel_replay_or_take_another_bots_order(sim, gateway, sync_redis):
    r = sync_redis
    p = Decimal(sim.control.state()["prices"]["BTCUSDT"])
    place(r, 1, price=str(p - 300))
    wait_status(r, "b1-000001", OrderStatus.NEW)
    owner_events = len(events(r, "b1"))

    send(r, CancelOrder(cid="b1-000001", bot=EVIL, venue="sim", symbol="BTCUSDT"))
    send(r, CancelAll(bot=EVIL, venue="sim"))
    send(r, limit_of(EVIL, "b1-000001", p - 300))  # "replays" b1's order to learn or steer it
    send(r, limit_of(EVIL, "b1-000002", p - 200))  # takes b1's next cid before b1 uses it
    # the intruder's commands run in its lane, in order: the last refusal means all are done
    wait_until(lambda: len(refusals(r, EVIL)) >= 3, what="three refusals on the sender's stream")

    refused = refusals(r, EVIL)
    assert [u.cid for u in refused] == ["b1-000001", "b1-000001", "b1-000002"]
    assert all(u.bot == EVIL and "does not belong to bot 'evil'" in u.reason for u in refused)
    assert refused[0].side is None, "a refused cancel says nothing of the order it named"
    assert venue_status(sim, "b1-000001") == "NEW", "the order is untouched at the venue"
    assert r.hget(og_order("b1-000001"), "status") == b"NEW" and r.hget(og_order("b1-000001"), "bot") == b"b1"
    assert not r.exists(og_order("b1-000002")), "a refused place writes no record under the cid"
    assert len(events(r, "b1")) == owner_events, "the owner's stream got nothing"
    found = notes(r, "refused")
    assert len(found) == 3 and all(n.level is Level.ERROR and n.bot == EVIL for n in found)
    assert "b1-000001" in found[0].text and "cancel" in found[0].text

    # the owner's own commands still work: its next cid is free, its cancel goes through
    place(r, 2, price=str(p - 200))
    assert wait_status(r, "b1-000002", OrderStatus.NEW).bot == "b1"
    send(r, CancelOrder(cid="b1-000001", bot="b1", venue="sim", symbol="BTCUSDT"))
    wait_status(r, "b1-000001", OrderStatus.CANCELED)
    assert venue_status(sim, "b1-000002") == "NEW"


def test_a_sync_never_moves_another_bots_orders(sim, gateway, sync_redis):
    r = sync_redis
    p = Decimal(sim.control.state()["prices"]["BTCUSDT"])
    place_behind(sim, venue_client(sim), "b1-000007", symbol="BTCUSDT", side="BUY", type="LIMIT",
                 timeInForce="GTC", quantity="0.001", price=str(p - 400))  # fmt: skip
    send_sync(r, seq=0, token="intruder", bot=EVIL)
    answer = wait_until(
        lambda: next((m for m in events(r, EVIL) if isinstance(m, BotSynced)), None), what="the sync answer"
    )
    assert (answer.adopted, answer.max_seq) == ((), 0), "another bot's orders are not the sender's"
    assert not r.exists(og_order("b1-000007"))
    # b1's own sync adopts under b1 and answers b1 only
    send_sync(r, seq=0, token="named", bot="b1")
    wait_until(lambda: r.hget(og_order("b1-000007"), "bot") == b"b1", what="b1-000007 adopted under b1")
    assert not [m for m in events(r, EVIL) if isinstance(m, OrderUpdate)], "nothing of b1's reached evil"
