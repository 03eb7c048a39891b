"""SyncBot: the order gateway finds every order of a bot's prefix at the venue that its log
lost, adopts it with the venue's terms, and answers BotSynced after those updates.

Real gateway process, real paper venue (its clock on market time, far from the wall clock),
orders placed behind the gateway's back with the real python-binance and pybit clients."""

from __future__ import annotations

from decimal import Decimal

from shared.messages import Level, OrderStatus, OrderType, Side
from shared.streams import og_order
from tests.helpers.bybit import bybit_http
from tests.helpers.gateway import (
    accepted,
    place,
    start_gateway,
    updates,
    wait_gateway_ready,
    wait_status,
)
from tests.helpers.og_sync import (
    before_answer,
    lose,
    notes,
    place_behind,
    reconciled_gateway_fixture,
    send_sync,
    venue_client,
    venue_far_from_wall_clock,
    wait_reconciled,
    wait_synced,
)
from tests.helpers.procs import wait_until
from tests.helpers.sim import sim_fixture

sim = sim_fixture()


gateway = reconciled_gateway_fixture()


def price_of(sim, symbol: str = "BTCUSDT") -> Decimal:
    return Decimal(sim.control.state()["prices"][symbol])


def no_pending(r) -> bool:
    return r.xpending("orders:cmd:sim:b1", "order_gateway")["pending"] == 0


def answered(r, cid: str, count: int):
    """The `count`-th update of cid, once it is there."""
    return wait_until(
        lambda: (u := updates(r, cid)) and len(u) >= count and u[count - 1], what=f"{cid} #{count}"
    )


def test_sync_adopts_what_the_log_lost_then_claims_and_conflicts(sim, gateway, sync_redis):
    r = sync_redis
    assert venue_far_from_wall_clock(sim), "the venue's order times must not be near the local clock"
    p = price_of(sim)
    place(r, 1, price=str(p - 400))
    wait_status(r, "b1-000001", OrderStatus.NEW)
    place(r, 2, order_type=OrderType.MARKET, qty="0.001")
    wait_status(r, "b1-000002", OrderStatus.FILLED)
    lose(r, "b1-000002")  # Redis lost it; the bot's state rolled back to seq 1
    client = venue_client(sim)
    place_behind(sim, client, "b1-000003", symbol="BTCUSDT", side="BUY", type="LIMIT", timeInForce="GTC",
                 quantity="0.002", price=str(p - 500))  # fmt: skip
    place_behind(sim, client, "b1-000004", symbol="BTCUSDT", side="BUY", type="MARKET", quoteOrderQty="50")
    place_behind(sim, client, "b1-000005", symbol="BTCUSDT", side="SELL", type="MARKET", quantity="0.001")

    send_sync(r, seq=1, token="t1")
    synced = wait_synced(r, "t1")
    lost = {"b1-000002", "b1-000003", "b1-000004", "b1-000005"}
    assert synced.max_seq == 5 and set(synced.adopted) == lost
    adopted = {u.cid: u for u in before_answer(r, "t1") if u.adopted}
    assert set(adopted) == lost, "every adoption reached the bot before the answer"
    rest = adopted["b1-000003"]
    assert (rest.status, rest.side, rest.order_type, rest.orig_qty, rest.price) == (
        OrderStatus.NEW, Side.BUY, OrderType.LIMIT, Decimal("0.002"), p - 500,
    )  # fmt: skip
    by_quote = adopted["b1-000004"]
    assert by_quote.status is OrderStatus.FILLED and by_quote.orig_quote_qty == Decimal("50")
    assert by_quote.cum_quote_qty <= Decimal("50") and by_quote.cum_filled_qty > 0
    sold = adopted["b1-000005"]
    assert (sold.side, sold.status, sold.cum_filled_qty) == (Side.SELL, OrderStatus.FILLED, Decimal("0.001"))
    record = r.hgetall(og_order("b1-000004"))
    assert (record[b"adopted"], record[b"request"]) == (b"1", b"")
    assert Decimal(record[b"orig_quote_qty"].decode()) == 50, "the venue's terms are kept"
    wait_until(lambda: no_pending(r), what="SyncBot acked")

    # the bot asks again for what the venue holds, with the same terms: the same orders
    place(r, 3, price=str(p - 500), qty="0.002")
    again = answered(r, "b1-000003", 2)
    assert again.status is OrderStatus.NEW and not again.reason
    place(r, 4, order_type=OrderType.MARKET, qty=None, quote="50")
    assert answered(r, "b1-000004", 2).status is OrderStatus.FILLED
    # other terms under an id the venue already used: a conflict, never the other order's state
    place(r, 5, order_type=OrderType.MARKET, qty="0.001", side=Side.BUY)
    refused = answered(r, "b1-000005", 2)
    assert refused.status is OrderStatus.REJECTED and refused.reason.startswith("conflict:")
    assert refused.side is Side.BUY and "SELL" in refused.reason
    assert r.hget(og_order("b1-000005"), "side") == b"SELL", "the record is untouched"
    assert r.hget(og_order("b1-000005"), "status") == b"FILLED"
    conflicts = notes(r, "conflict")
    assert len(conflicts) == 1 and conflicts[0].level is Level.ERROR and "b1-000005" in conflicts[0].text
    assert [accepted(sim, f"b1-00000{i}") for i in range(1, 6)] == [1] * 5, "nothing sent twice"
    wait_until(lambda: no_pending(r), what="commands acked")


def test_probing_finds_an_order_the_lists_do_not_show(sim, gateway, sync_redis):
    """A filled order on another symbol than the SyncBot's: neither open nor among that
    symbol's latest orders; only asking for its cid (on the symbols of the bot's records) finds it."""
    r = sync_redis
    place(r, 1, order_type=OrderType.MARKET, qty=None, quote="20", symbol="ETHUSDT")
    wait_status(r, "b1-000001", OrderStatus.FILLED)
    place_behind(sim, venue_client(sim), "b1-000002", symbol="ETHUSDT", side="BUY", type="MARKET",
                 quoteOrderQty="20")  # fmt: skip
    send_sync(r, seq=0, token="t2", symbol="BTCUSDT")
    synced = wait_synced(r, "t2")
    assert (synced.adopted, synced.max_seq) == (("b1-000002",), 2)
    assert r.hget(og_order("b1-000002"), "symbol") == b"ETHUSDT"
    # nothing of the prefix anywhere: max_seq is the bot's own sequence
    send_sync(r, seq=7, token="t3")
    assert (wait_synced(r, "t3").max_seq, wait_synced(r, "t3").adopted) == (7, ())


def test_sync_on_the_bybit_face(sim, env, tmp_path, sync_redis):
    """The same through pybit: order history over the venue's own time, a market buy sized in
    the quote coin (marketUnit quoteCoin) adopted with its quote amount."""
    r = sync_redis
    config = tmp_path / "og_bybit.toml"
    config.write_text(
        f'[venues.sim]\nkind = "sim"\nprotocol = "bybit"\nbase_url = "{sim.base_url}"\n'
        "[order_gateway]\npoll_every_s = 0.5\nrecv_window_ms = 5000\nrequest_timeout_s = 3\n"
    )
    proc = start_gateway(env, config, tmp_path / "og.log")
    wait_gateway_ready(r, proc)
    wait_reconciled(r)
    p = price_of(sim)
    s = bybit_http(sim)
    for cid in ("b1-000001", "b1-000002"):
        sim.control.fault("drop_event", count=20, match={"client_order_id": cid})
    s.place_order(category="spot", symbol="BTCUSDT", side="Buy", orderType="Limit", qty="0.002",
                  price=str(p - 500), orderLinkId="b1-000001")  # fmt: skip
    s.place_order(category="spot", symbol="BTCUSDT", side="Buy", orderType="Market", qty="50",
                  orderLinkId="b1-000002")  # fmt: skip
    send_sync(r, seq=0, token="t4")
    synced = wait_synced(r, "t4")
    assert (set(synced.adopted), synced.max_seq) == ({"b1-000001", "b1-000002"}, 2)
    adopted = {u.cid: u for u in before_answer(r, "t4") if u.adopted}
    assert adopted["b1-000001"].orig_qty == Decimal("0.002") and adopted["b1-000001"].price == p - 500
    by_quote = adopted["b1-000002"]
    assert by_quote.orig_quote_qty == Decimal("50") and by_quote.orig_qty == by_quote.cum_filled_qty > 0
    place(r, 2, order_type=OrderType.MARKET, qty=None, quote="50")  # claimed: the same order
    assert answered(r, "b1-000002", 2).status is OrderStatus.FILLED
    place(r, 1, price=str(p + 500), qty="0.002", side=Side.SELL)
    assert answered(r, "b1-000001", 2).reason.startswith("conflict:")
    journal = sim.control.journal(account="bybit")
    assert sum(1 for e in journal if e["kind"] == "accepted" and e.get("client_order_id") == "b1-000002") == 1
    assert proc.terminate() == 0
