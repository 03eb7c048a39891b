"""The order gateway against the paper venue, with real python-binance, real Redis, real SIGKILL."""

from __future__ import annotations

from decimal import Decimal
from types import SimpleNamespace

import pytest

from services.exchange_sim.bybit_format import exec_id
from shared.codec import decode
from shared.messages import Notification, OrderStatus, OrderType, Side
from shared.streams import og_open, og_order
from tests.helpers.gateway import (
    accepted,
    place,
    start_gateway,
    updates,
    wait_gateway_ready,
    wait_status,
    write_config,
)
from tests.helpers.procs import wait_until
from tests.helpers.sim import sim_fixture

sim = sim_fixture()


@pytest.fixture
def config(tmp_path, sim):
    return write_config(tmp_path / "og.toml", sim)


@pytest.fixture
def gateway(env, config, tmp_path, sync_redis):
    proc = start_gateway(env, config, tmp_path / "og.log")
    wait_gateway_ready(sync_redis)
    yield proc
    if proc.alive():
        assert proc.terminate() == 0, proc.output()[-2000:]


def price_of(sim) -> Decimal:
    return Decimal(sim.control.state()["prices"]["BTCUSDT"])


def test_place_partial_fill_cancel_and_market(sim, gateway, sync_redis):
    p = price_of(sim)
    buy = place(sync_redis, 1, price=str(p - 100), qty="0.003")
    new = wait_status(sync_redis, buy.cid, OrderStatus.NEW)
    assert new.venue_order_id and new.cum_filled_qty == 0
    sim.control.market("BTCUSDT", max_fill="0.001")
    sim.control.set_price("BTCUSDT", str(p - 150))  # touches the limit: fills 0.001 of 0.003
    part = wait_status(sync_redis, buy.cid, OrderStatus.PARTIALLY_FILLED)
    assert (part.cum_filled_qty, part.last_fill_qty, part.fee_asset) == (
        Decimal("0.001"),
        Decimal("0.001"),
        "BTC",
    )
    assert part.fee == Decimal("0.000001")
    trades = [
        e["trade"]["trade_id"]
        for e in sim.control.journal()
        if e["kind"] == "trade" and e["client_order_id"] == buy.cid
    ]
    assert part.trade_id == str(trades[0]), "the update names the venue's trade that made its growth"
    place(sync_redis, 2, order_type=OrderType.LIMIT, price=str(p + 100), side=Side.SELL, qty="0.001")
    wait_status(sync_redis, "b1-000002", OrderStatus.NEW)
    from shared.codec import encode
    from shared.messages import CancelOrder

    sync_redis.xadd(
        "orders:cmd:sim:b1", encode(CancelOrder(cid=buy.cid, bot="b1", venue="sim", symbol="BTCUSDT"))
    )
    canceled = wait_status(sync_redis, buy.cid, OrderStatus.CANCELED)
    assert canceled.cum_filled_qty == Decimal("0.001")
    market = place(sync_redis, 3, order_type=OrderType.MARKET, qty=None, quote="50")
    filled = wait_status(sync_redis, market.cid, OrderStatus.FILLED)
    assert filled.cum_quote_qty <= Decimal("50") and filled.fee_asset == "BTC" and filled.fee > 0
    assert sync_redis.smembers(og_open("sim")) == {b"b1-000002"}
    # a stop-market order goes to Binance as it is (type STOP_LOSS, its stop price)
    stop = place(
        sync_redis, 4, order_type=OrderType.STOP_LOSS, side=Side.SELL, qty="0.001", stop=str(p - 1000)
    )
    resting = wait_status(sync_redis, stop.cid, OrderStatus.NEW)
    assert (resting.order_type, resting.stop_price) == (OrderType.STOP_LOSS, Decimal(p - 1000))
    balances = [decode(f) for _, f in sync_redis.xrange("account:sim")]
    assert balances and any(b.asset == "BTC" for b in balances[-1].balances)


@pytest.mark.parametrize("point", ["og.after_wal", "og.after_reply", "og.after_commit"])
def test_sigkill_at_each_point_of_the_place_path(point, sim, env, config, tmp_path, sync_redis):
    proc = start_gateway(env, config, tmp_path / "og1.log", AUTOMATA_FAILPOINTS=point)
    wait_gateway_ready(sync_redis)
    cmd = place(sync_redis, 1, order_type=OrderType.MARKET, qty="0.002")
    wait_until(lambda: not proc.alive(), timeout=20, what=f"gateway killed at {point}")
    assert proc.popen.returncode == -9
    restarted = start_gateway(env, config, tmp_path / "og2.log")
    filled = wait_status(sync_redis, cmd.cid, OrderStatus.FILLED, timeout=30)
    assert filled.cum_filled_qty == Decimal("0.002")
    assert accepted(sim, cmd.cid) == 1, "the venue accepted the order exactly once"
    wait_until(
        lambda: sync_redis.xpending("orders:cmd:sim:b1", "order_gateway")["pending"] == 0,
        what="command acked",
    )
    wait_gateway_ready(sync_redis, restarted)
    assert restarted.terminate() == 0


def test_sigkill_while_the_request_is_in_flight(sim, env, tmp_path, sync_redis):
    config = write_config(
        tmp_path / "og.toml", sim, poll_every_s=600
    )  # no poller: nothing learns it meanwhile
    proc = start_gateway(env, config, tmp_path / "og1.log")
    wait_gateway_ready(sync_redis)
    sim.control.fault("drop_reply", match={"path": "/api/v3/order", "method": "POST"}, hold_s=30)
    sim.control.fault(
        "drop_event", count=10, match={"client_order_id": "b1-000001"}
    )  # nothing via the stream either
    cmd = place(sync_redis, 1, order_type=OrderType.MARKET, qty="0.002")
    wait_until(lambda: accepted(sim, cmd.cid) == 1, what="the venue took the order")
    proc.kill()  # the reply never came back: the gateway cannot know
    record = sync_redis.hgetall(og_order(cmd.cid))
    assert record[b"status"] in (b"PENDING_SUBMIT", b"UNKNOWN")
    restarted = start_gateway(env, config, tmp_path / "og2.log")
    wait_status(sync_redis, cmd.cid, OrderStatus.FILLED, timeout=30)
    assert accepted(sim, cmd.cid) == 1
    wait_gateway_ready(sync_redis, restarted)
    assert restarted.terminate() == 0


@pytest.mark.parametrize(
    "fault", [{"kind": "drop_reply", "hold_s": 5}, {"kind": "error", "http_status": 504, "body": "html"}]
)
def test_lost_reply_or_504_is_resolved_by_query(fault, sim, env, tmp_path, sync_redis):
    """Neither the reply nor the user stream nor the poller tells: only the query by cid can."""
    config = write_config(tmp_path / "og.toml", sim, poll_every_s=600)
    gateway = start_gateway(env, config, tmp_path / "og.log")
    wait_gateway_ready(sync_redis, gateway)
    sim.control.fault(match={"path": "/api/v3/order", "method": "POST"}, **fault)
    sim.control.fault("drop_event", count=10, match={"client_order_id": "b1-000001"})
    cmd = place(sync_redis, 1, order_type=OrderType.MARKET, qty="0.001")
    filled = wait_status(sync_redis, cmd.cid, OrderStatus.FILLED, timeout=30)
    assert filled.reconciled
    assert accepted(sim, cmd.cid) == 1
    statuses = [u.status for u in updates(sync_redis, cmd.cid)]
    # UNKNOWN first when the timeout came before the start-up poll's query found it
    assert statuses in ([OrderStatus.UNKNOWN, OrderStatus.FILLED], [OrderStatus.FILLED])
    assert gateway.terminate() == 0


def test_polling_recovers_fills_the_user_stream_missed(sim, gateway, sync_redis):
    p = price_of(sim)
    cmd = place(sync_redis, 1, price=str(p - 50), qty="0.002")
    wait_status(sync_redis, cmd.cid, OrderStatus.NEW)
    sim.control.fault("drop_event", count=100, match={"event": "executionReport"})
    sim.control.close_ws()
    sim.control.market("BTCUSDT", max_fill="0.001")
    sim.control.set_price("BTCUSDT", str(p - 60))
    sim.control.set_price("BTCUSDT", str(p - 61))
    filled = wait_status(sync_redis, cmd.cid, OrderStatus.FILLED, timeout=30)
    assert filled.reconciled and filled.cum_filled_qty == Decimal("0.002")
    assert filled.fee == Decimal("0.000002"), "fees of fills the stream missed come from the venue's trades"
    assert filled.trade_id == "", "polled growth names no trade (the ledger's sync finds them)"
    cums = [u.cum_filled_qty for u in updates(sync_redis, cmd.cid)]
    assert cums == sorted(cums), "cumulative quantities only move forward"


def test_lost_redis_write_is_adopted_and_redis_restart_is_survived(
    sim, env, config, tmp_path, sync_redis, redis_server
):
    import redis as redis_lib

    proc = start_gateway(env, config, tmp_path / "og1.log")
    wait_gateway_ready(sync_redis)
    p = price_of(sim)
    cmd = place(sync_redis, 7, price=str(p - 200))
    wait_status(sync_redis, cmd.cid, OrderStatus.NEW)
    assert proc.terminate() == 0
    # Redis loses the record (the last second before a power cut): the venue still has the order
    sync_redis.delete(og_order(cmd.cid))
    sync_redis.srem(og_open("sim"), cmd.cid)
    proc = start_gateway(env, config, tmp_path / "og2.log")
    wait_until(lambda: sync_redis.hget(og_order(cmd.cid), "adopted") == b"1", timeout=30, what="adopted")
    assert sync_redis.sismember(og_open("sim"), cmd.cid)

    def summaries() -> list:
        notes = [decode(f) for _, f in sync_redis.xrange("notify")]
        return [n for n in notes if isinstance(n, Notification) and n.kind == "reconciliation"]

    wait_until(lambda: len(summaries()) == 2, what="the second start's reconciliation summary")
    assert summaries()[-1].data["adopted"] == 1
    # Redis itself killed -9 and restarted: the gateway reconnects and keeps working
    redis_server.kill()
    redis_server.start()
    r = redis_lib.Redis.from_url(redis_server.url)
    second = place(r, 8, order_type=OrderType.MARKET, qty="0.001")
    wait_status(r, second.cid, OrderStatus.FILLED, timeout=30)
    assert accepted(sim, second.cid) == 1
    assert proc.terminate() == 0
    r.close()


def test_refusals_each_have_their_outcome(sim, gateway, sync_redis):
    p = price_of(sim)
    tiny = place(sync_redis, 1, price=str(p - 100), qty="0.00002")  # under min notional
    rej = wait_status(sync_redis, tiny.cid, OrderStatus.REJECTED)
    assert "NOTIONAL" in rej.reason and accepted(sim, tiny.cid) == 0, "never sent"
    bad = place(sync_redis, 2, price="100", qty="1", symbol="NOPEUSDT")
    assert "invalid symbol" in wait_status(sync_redis, bad.cid, OrderStatus.REJECTED).reason
    sim.control.set_balance("USDT", "10")
    poor = place(sync_redis, 3, price=str(p - 100), qty="0.01")
    assert "-2010" in wait_status(sync_redis, poor.cid, OrderStatus.REJECTED).reason
    sim.control.set_balance("USDT", "10000")
    sim.control.skew(4000)  # the venue's clock jumps: -1021, resync, retry
    skewed = place(sync_redis, 4, order_type=OrderType.MARKET, qty="0.001")
    wait_status(sync_redis, skewed.cid, OrderStatus.FILLED)
    sim.control.skew(0)
    # POST only: a query of an earlier order (a slow reply resolved by query) must not take them
    sim.control.fault("rate_limit", count=1, retry_after=1, match={"path": "/api/v3/order", "method": "POST"})
    limited = place(sync_redis, 5, order_type=OrderType.MARKET, qty="0.001")
    wait_status(sync_redis, limited.cid, OrderStatus.FILLED)
    assert accepted(sim, limited.cid) == 1
    sim.control.fault("ban", count=1, match={"path": "/api/v3/order", "method": "POST"})
    banned = place(sync_redis, 6, order_type=OrderType.MARKET, qty="0.001")
    assert "418" in wait_status(sync_redis, banned.cid, OrderStatus.REJECTED).reason
    after_ban = place(sync_redis, 7, order_type=OrderType.MARKET, qty="0.001")
    assert "halted" in wait_status(sync_redis, after_ban.cid, OrderStatus.REJECTED).reason
    notes = [decode(f) for _, f in sync_redis.xrange("notify")]
    assert any(n.kind == "venue_halted" for n in notes if isinstance(n, Notification))


def test_a_ban_met_by_the_poller_refuses_the_next_order_at_once(sim, gateway, sync_redis):
    """The venue bans the IP on a request that is no order (the poller's listing of open
    orders): the next order is refused with the ban's reason, never queued behind the pause
    and sent minutes late."""
    p = price_of(sim)
    resting = place(sync_redis, 1, price=str(p - 500), qty="0.001")
    wait_status(sync_redis, resting.cid, OrderStatus.NEW)  # an open order: the poller lists them
    sim.control.fault("ban", count=1, match={"path": "/api/v3/openOrders"})

    def halted() -> bool:
        notes = [decode(f) for _, f in sync_redis.xrange("notify")]
        return any(isinstance(n, Notification) and n.kind == "venue_halted" for n in notes)

    wait_until(halted, what="the poller meets the ban and the user is told")
    late = place(sync_redis, 2, order_type=OrderType.MARKET, qty="0.001")
    reason = wait_status(sync_redis, late.cid, OrderStatus.REJECTED, timeout=10).reason
    assert "halted" in reason and "418" in reason
    assert accepted(sim, late.cid) == 0, "never sent"


def test_bybit_protocol_place_fill_cancel(sim, env, tmp_path, sync_redis):
    """The same gateway through pybit against the venue's Bybit V5 face."""
    config = tmp_path / "og_bybit.toml"
    config.write_text(
        f'[venues.sim]\nkind = "sim"\nprotocol = "bybit"\nbase_url = "{sim.base_url}"\n'
        "[order_gateway]\npoll_every_s = 0.5\nrecv_window_ms = 5000\nrequest_timeout_s = 3\n"
    )
    proc = start_gateway(env, config, tmp_path / "og.log")
    wait_gateway_ready(sync_redis, proc)
    p = price_of(sim)
    rest = place(sync_redis, 1, price=str(p - 100), qty="0.002")
    assert wait_status(sync_redis, rest.cid, OrderStatus.NEW).venue_order_id
    market = place(sync_redis, 2, order_type=OrderType.MARKET, qty="0.001")
    filled = wait_status(sync_redis, market.cid, OrderStatus.FILLED)
    assert filled.cum_filled_qty == Decimal("0.001") and filled.fee_asset == "BTC" and filled.fee > 0
    sim.control.set_price("BTCUSDT", str(p - 150))
    assert wait_status(sync_redis, rest.cid, OrderStatus.FILLED).cum_filled_qty == Decimal("0.002")
    # the `execution` topic names the trade of a growth the stream told (the resting order's);
    # the market order's fill was read by the query after order/create: derived, never a wrong id
    for cid, told in ((rest.cid, True), (market.cid, False)):
        trades = [
            e["trade"]
            for e in sim.control.journal(account="bybit")
            if e["kind"] == "trade" and e["client_order_id"] == cid
        ]
        named = [
            (exec_id(SimpleNamespace(symbol="BTCUSDT", trade_id=t["trade_id"])), Decimal(t["qty"]))
            for t in trades
        ]
        growths = [(u.trade_id, u.last_fill_qty) for u in updates(sync_redis, cid) if u.last_fill_qty > 0]
        assert growths == named if told else all(g in named or g[0] == "" for g in growths), (growths, named)
    third = place(sync_redis, 3, price=str(p - 500), qty="0.001")
    wait_status(sync_redis, third.cid, OrderStatus.NEW)
    from shared.codec import encode
    from shared.messages import CancelOrder

    sync_redis.xadd(
        "orders:cmd:sim:b1", encode(CancelOrder(cid=third.cid, bot="b1", venue="sim", symbol="BTCUSDT"))
    )
    wait_status(sync_redis, third.cid, OrderStatus.CANCELED)
    dup = place(sync_redis, 1, price=str(p - 100), qty="0.002")  # a replayed command: never sent twice
    wait_until(lambda: sync_redis.xpending("orders:cmd:sim:b1", "order_gateway")["pending"] == 0)
    assert (
        sum(
            1
            for e in sim.control.journal(account="bybit")
            if e["kind"] == "accepted" and e.get("client_order_id") == dup.cid
        )
        == 1
    )
    # a stop-market order goes out as a conditional order and waits for its trigger...
    stop = place(
        sync_redis, 4, order_type=OrderType.STOP_LOSS, side=Side.SELL, qty="0.001", stop=str(p - 1000)
    )
    waiting = wait_status(sync_redis, stop.cid, OrderStatus.NEW)
    assert waiting.venue_order_id and waiting.stop_price == p - 1000
    # ...and one the price has already passed is refused: the bot hears REJECTED with the reason
    passed = place(sync_redis, 5, order_type=OrderType.STOP_LOSS, side=Side.SELL, qty="0.001", stop=str(p))
    assert "would trigger at once" in wait_status(sync_redis, passed.cid, OrderStatus.REJECTED).reason
    assert not any(e.get("client_order_id") == passed.cid for e in sim.control.journal(account="bybit"))
    assert proc.terminate() == 0
