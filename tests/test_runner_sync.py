"""The runner's start: the sync with the venue (through the order gateway) comes before any
candle; entries that do not belong on their stream are dead-lettered at once; a step's balances
are the ones committed with the step before."""

from __future__ import annotations

import json
import time
from decimal import Decimal

import msgspec

from shared.codec import decode, encode
from shared.messages import (
    Balance,
    BalanceUpdate,
    BotControl,
    BotSynced,
    CancelOrder,
    ControlAction,
    OrderStatus,
    OrderType,
    OrderUpdate,
    PlaceOrder,
    Side,
    SyncBot,
)
from shared.streams import (
    account,
    bot_control,
    bot_state,
    candle_entry_id,
    candles,
    order_commands,
    order_events,
)
from tests.helpers.bots import add_candle, candle, commands, publish_filters, write_bots
from tests.helpers.procs import python, wait_until

BOT = {"id": "t1", "strategy": "tests.helpers.scripted:Scripted", "lease_ms": 1500}


def start(env, tmp_path):
    bots = write_bots(tmp_path / "bots.toml", BOT)
    env = {**env, "AUTOMATA_BOTS": str(bots), "INSTANCE": "r1"}
    return python("services.strategy_runner", "--bot", "t1", env=env, log_path=tmp_path / "r1.log").start()


def doc(r) -> dict:
    raw = r.get(bot_state("t1"))
    return json.loads(raw) if raw else {}


def sync_requests(r) -> list[SyncBot]:
    return [decode(f) for _, f in r.xrange(order_commands("sim", "t1")) if f[b"type"] == b"sync"]


def test_candles_wait_until_the_sync_is_answered_and_new_ids_start_past_the_venues(env, tmp_path, sync_redis):
    publish_filters(sync_redis)
    proc = start(env, tmp_path)
    (request,) = wait_until(lambda: sync_requests(sync_redis), timeout=20, what="the runner's SyncBot")
    assert (request.bot, request.venue, request.symbol, request.seq) == ("t1", "sim", "BTCUSDT", 0)
    assert doc(sync_redis)["state"]["sync"] == request.token
    add_candle(sync_redis, candle(0, "100", "101"))  # rising: the script would buy
    # the gateway found an order of t1 at the venue the state does not know (a lost write) ...
    found = OrderUpdate(cid="t1-000005", bot="t1", venue="sim", symbol="BTCUSDT", status=OrderStatus.NEW,
                        side=Side.BUY, order_type=OrderType.LIMIT, price=Decimal("90"), orig_qty=Decimal("0.1"),
                        venue_ts=1, adopted=True)  # fmt: skip
    sync_redis.xadd(order_events("t1"), encode(found))
    wait_until(lambda: "t1-000005" in doc(sync_redis)["state"].get("adopted", {}), what="the order held")
    assert commands(sync_redis) == []  # still syncing: the candle is not even read
    assert candles("sim", "BTCUSDT", "1m") not in doc(sync_redis)["last_applied"]
    # ... and answers: the bot's ids go on after every one the venue has seen
    answer = BotSynced(bot="t1", venue="sim", token=request.token, max_seq=7, adopted=("t1-000005",))
    sync_redis.xadd(order_events("t1"), encode(answer))
    cancel, buy = wait_until(lambda: commands(sync_redis), what="the candle's commands")
    # the held order went to the venue before this candle opened and differs from the candle's
    # buy: no replay claims it, so it is booked and cancelled; the buy takes the next free id
    assert isinstance(cancel, CancelOrder) and cancel.cid == "t1-000005"
    assert isinstance(buy, PlaceOrder) and buy.cid == "t1-000008" and buy.price == Decimal("101")
    assert doc(sync_redis)["state"].get("sync", "") == ""
    assert proc.terminate() == 0
    # a restart asks again, with its state's sequence
    proc = start(env, tmp_path)
    wait_until(lambda: len(sync_requests(sync_redis)) == 2, timeout=20, what="the second SyncBot")
    assert sync_requests(sync_redis)[1].seq == 8
    assert proc.terminate() == 0


def test_an_unanswered_sync_is_asked_again_and_only_the_latest_answer_counts(env, tmp_path, sync_redis):
    publish_filters(sync_redis)
    bots = write_bots(tmp_path / "bots.toml", {**BOT, "sync_retry_s": 1})
    env = {**env, "AUTOMATA_BOTS": str(bots), "INSTANCE": "r1"}
    proc = python("services.strategy_runner", "--bot", "t1", env=env, log_path=tmp_path / "r1.log").start()
    first, second = wait_until(lambda: sync_requests(sync_redis)[:2] if len(sync_requests(sync_redis)) >= 2 else None,
                               timeout=20, what="the sync asked twice")  # fmt: skip
    assert first.token != second.token
    add_candle(sync_redis, candle(0, "100", "101"))
    stale = BotSynced(bot="t1", venue="sim", token=first.token, max_seq=3)
    sync_redis.xadd(order_events("t1"), encode(stale))  # the answer to a request given up on

    def answer_the_pending_one() -> list:
        token = doc(sync_redis)["state"].get("sync")  # a retry may replace it at any moment
        if token:
            sync_redis.xadd(
                order_events("t1"), encode(BotSynced(bot="t1", venue="sim", token=token, max_seq=5))
            )
        return commands(sync_redis)

    (buy,) = wait_until(answer_the_pending_one, interval=0.3, what="the candle's buy")
    assert buy.cid == "t1-000006"  # max_seq 5 of the latest answer, not 3 of the stale one
    assert proc.terminate() == 0


def test_entries_that_do_not_belong_on_their_stream_are_dead_lettered_at_once(
    env, tmp_path, sync_redis, answer_syncs
):
    publish_filters(sync_redis)
    proc = start(env, tmp_path)
    wait_until(lambda: answer_syncs.answered == 1 and not doc(sync_redis)["state"].get("sync"), what="synced")
    stream = candles("sim", "BTCUSDT", "1m")
    wrong = msgspec.structs.replace(candle(0, "100", "101"), symbol="ETHUSDT")
    sync_redis.xadd(stream, encode(wrong), id=candle_entry_id(wrong.open_time))
    sync_redis.xadd(bot_control("t1"), encode(BotControl(bot="other", action=ControlAction.STOP)))
    wait_until(lambda: sync_redis.xlen(f"dlq:{stream}") == 1 and sync_redis.xlen(f"dlq:{bot_control('t1')}") == 1,
               what="both dead-lettered")  # fmt: skip
    reason = sync_redis.xrange(f"dlq:{stream}")[0][1][b"dlq_reason"].decode()
    assert "ETHUSDT" in reason and "BTCUSDT" in reason
    assert b"other" in sync_redis.xrange(f"dlq:{bot_control('t1')}")[0][1][b"dlq_reason"]
    add_candle(sync_redis, candle(1, "100", "102"))  # the runner goes on; the bot was not stopped
    wait_until(lambda: commands(sync_redis), what="the next candle's buy")
    assert doc(sync_redis)["state"].get("mode", "running") == "running"
    assert proc.terminate() == 0


def test_a_step_sees_the_balances_committed_with_the_step_before(env, tmp_path, sync_redis, answer_syncs):
    publish_filters(sync_redis)
    snapshot = BalanceUpdate(venue="sim", balances=(Balance("USDT", Decimal("500"), Decimal(0)),), snapshot=True,
                             ts=int(time.time() * 1000))  # fmt: skip
    sync_redis.xadd(account("sim"), encode(snapshot))
    proc = start(env, tmp_path)
    wait_until(lambda: doc(sync_redis).get("balances") == {"USDT": "500"}, what="balances committed")
    assert proc.terminate() == 0
