"""Retention (issue 15, item 5): Redis keeps what recovery needs once the ledger holds the rest.

A real redis-server, real consumer groups, SQLite and a real PostgreSQL for the ledger's side,
and the ledger service as a subprocess for the whole loop (docs/ARCHITECTURE.md, "Retention").
"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import redis
import redis.asyncio as aioredis
import sqlalchemy as sa

from services.ledger.retention import Retention, Rule
from shared import streams as s
from shared.codec import encode
from shared.ledger import schema as t
from shared.ledger.db import open_ledger, upgrade
from shared.messages import Balance, BalanceUpdate, Candle, OrderStatus, OrderUpdate
from tests.helpers.ledger import ingested, start_ledger, stop_ledger
from tests.helpers.procs import wait_until

BOT = "b1"
EVENTS = s.order_events(BOT)
NOTHING_KEPT = Rule(0, 0, 0)
NOW_MS = 10**13  # later than any id or record time in these tests


def ledger_engine(url: str) -> sa.Engine:
    engine = open_ledger(url, source="test")
    upgrade(engine)
    return engine


def ingested_ids(engine: sa.Engine, stream: str) -> list[str]:
    with engine.connect() as conn:
        found = conn.execute(sa.select(t.ingested.c.entry_id).where(t.ingested.c.stream == stream)).scalars()
        return sorted(found, key=lambda i: int(i.split("-")[0]))


async def ids(r: aioredis.Redis, stream: str) -> list[str]:
    return [i.decode() for i, _ in await r.xrange(stream)]


async def test_a_stream_keeps_what_any_group_still_needs(
    tmp_path: Path, redis_client: aioredis.Redis
) -> None:
    r = redis_client
    engine = ledger_engine(f"sqlite:///{tmp_path / 'l.sqlite3'}")
    added = [(await r.xadd(EVENTS, {"n": str(i)}, id=f"{i}-0")).decode() for i in range(1, 11)]
    other = s.order_events("b2")  # the ledger has no group on it yet
    await r.xadd(other, {"n": "1"}, id="1-0")
    for group in (s.GROUP_LEDGER, f"bot:{BOT}"):
        await r.xgroup_create(EVENTS, group, id="0")
    await r.xreadgroup(s.GROUP_LEDGER, "c", {EVENTS: ">"}, count=8)  # 1..8 delivered
    await r.xack(EVENTS, s.GROUP_LEDGER, *added[:5])  # 6, 7, 8 pending: not yet in the database
    await r.xreadgroup(f"bot:{BOT}", "c", {EVENTS: ">"}, count=9)
    await r.xack(EVENTS, f"bot:{BOT}", *added[:9])
    info: dict[str, object] = {}
    keys = [
        {"stream": stream, "entry_id": i, "at": datetime.now(UTC)}
        for stream in (EVENTS, other)
        for i in added
    ]
    with engine.begin() as conn:  # as if the ledger had written them all
        conn.execute(t.ingested.insert(), keys)

    async def streams() -> list[str]:
        return [EVENTS, other]

    retention = Retention(r, engine, streams, NOTHING_KEPT, 60, info)
    assert await retention.round(NOW_MS) == (5, 1, 0)
    assert await ids(r, EVENTS) == added[5:]  # from the ledger's oldest pending entry on
    assert await ids(r, other) == ["1-0"]
    assert ingested_ids(engine, EVENTS) == added[5:]  # the keys of trimmed entries: pruned
    assert ingested_ids(engine, other) == added  # none below its first entry

    await r.xack(EVENTS, s.GROUP_LEDGER, *added[5:8])  # written: 1..8 acked
    assert await retention.round(NOW_MS) == (3, 1, 0)
    assert await ids(r, EVENTS) == added[8:]  # 9 and 10: the bot's group has not read 10

    await r.xgroup_create(EVENTS, "late", id="0")  # a group that has read nothing yet
    await r.xreadgroup(s.GROUP_LEDGER, "c", {EVENTS: ">"})
    await r.xack(EVENTS, s.GROUP_LEDGER, *added[8:])
    await r.xreadgroup(f"bot:{BOT}", "c", {EVENTS: ">"})
    await r.xack(EVENTS, f"bot:{BOT}", added[9])
    assert await retention.round(NOW_MS) == (0, 0, 0)
    assert await ids(r, EVENTS) == added[8:]
    assert info["trimmed"] == 8

    young = Retention(r, engine, streams, Rule(NOW_MS - 9, 0, 0), 60, {})  # ids from 9 ms on are young
    await r.xgroup_destroy(EVENTS, "late")
    assert await young.round(NOW_MS) == (0, 0, 0)  # every group done with 9, but it is young
    assert await retention.round(NOW_MS) == (2, 1, 0)
    assert await ids(r, EVENTS) == [] and ingested_ids(engine, EVENTS) == []
    assert info["pruned"] == 10
    engine.dispose()


async def test_an_account_keeps_its_newest_snapshot(tmp_path: Path, redis_client: aioredis.Redis) -> None:
    r = redis_client
    engine = ledger_engine(f"sqlite:///{tmp_path / 'l.sqlite3'}")
    account = s.account("sim")
    usdt = (Balance("USDT", Decimal(1), Decimal(0)),)
    for i, snapshot in enumerate((True, False, False, True, False), start=1):
        await r.xadd(
            account, encode(BalanceUpdate(venue="sim", balances=usdt, snapshot=snapshot)), id=f"{i}-0"
        )
    await r.xgroup_create(account, s.GROUP_LEDGER, id="0")
    ledger_view = [i.decode() for i, _ in (await r.xreadgroup(s.GROUP_LEDGER, "c", {account: ">"}))[0][1]]
    await r.xack(account, s.GROUP_LEDGER, *ledger_view)

    async def streams() -> list[str]:
        return [account]

    assert await Retention(r, engine, streams, NOTHING_KEPT, 60, {}).round(NOW_MS) == (3, 1, 0)
    assert await ids(r, account) == ["4-0", "5-0"]  # the newest snapshot and the delta after it
    engine.dispose()


def record(cid: str, status: OrderStatus, filled: str, updated_ts: int) -> dict[str, str]:
    return {"cid": cid, "bot": cid.split("-")[0], "venue": "sim", "symbol": "BTCUSDT", "status": str(status),
            "cum_filled_qty": filled, "updated_ts": str(updated_ts)}  # fmt: skip


def order_row(cid: str, status: OrderStatus, filled: str) -> dict[str, object]:
    t0 = datetime.now(UTC)
    return {"cid": cid, "bot": cid.split("-")[0], "venue": "sim", "symbol": "BTCUSDT", "side": "BUY", "order_type": "LIMIT",
            "status": str(status), "orig_qty": Decimal(1), "cum_filled_qty": Decimal(filled),
            "cum_quote_qty": Decimal(0), "fee": Decimal(0), "created_at": t0, "updated_at": t0}  # fmt: skip


async def test_closed_write_ahead_records_go_once_the_ledger_holds_their_final_state(
    ledger_url: str, redis_client: aioredis.Redis
) -> None:
    r = redis_client
    engine = ledger_engine(ledger_url)
    old, young = 1_000, NOW_MS - 1_000
    records = {
        "b1-1": record("b1-1", OrderStatus.FILLED, "1", old),  # goes
        "b1-2": record("b1-2", OrderStatus.CANCELED, "0.5", old),  # goes
        "b1-3": record("b1-3", OrderStatus.FILLED, "1", old),  # the ledger still has it half filled
        "b1-4": record("b1-4", OrderStatus.FILLED, "1", old),  # not in the ledger at all
        "b1-5": record("b1-5", OrderStatus.FILLED, "1", old),  # still in og:open (reconciliation)
        "b1-6": record("b1-6", OrderStatus.FILLED, "1", young),  # closed too recently
        "b1-7": record("b1-7", OrderStatus.NEW, "0", old),  # open
        "b2-1": record("b2-1", OrderStatus.FILLED, "1", old),  # a command of b2 is still pending
    }
    commands = s.order_commands("sim", "b2")
    await r.xadd(commands, {"m": "1"})
    await r.xgroup_create(commands, s.GROUP_ORDER_GATEWAY, id="0")
    [[_stream, [(pending, _fields)]]] = await r.xreadgroup(s.GROUP_ORDER_GATEWAY, "og", {commands: ">"})
    for cid, fields in records.items():
        await r.hset(s.og_order(cid), mapping=fields)
    await r.sadd(s.og_open("sim"), "b1-5", "b1-7")
    with engine.begin() as conn:
        conn.execute(
            t.orders.insert(),
            [
                order_row("b1-1", OrderStatus.FILLED, "1"),
                order_row("b1-2", OrderStatus.CANCELED, "0.5"),
                order_row("b1-3", OrderStatus.PARTIALLY_FILLED, "0.5"),
                order_row("b1-5", OrderStatus.FILLED, "1"),
                order_row("b1-6", OrderStatus.FILLED, "1"),
                order_row("b1-7", OrderStatus.NEW, "0"),
                order_row("b2-1", OrderStatus.FILLED, "1"),
            ],
        )

    async def streams() -> list[str]:
        return []

    retention = Retention(r, engine, streams, Rule(0, 0, 10_000), 60, {})
    assert await retention.round(NOW_MS) == (0, 0, 2)
    left = sorted(k.decode() for k in await r.keys(s.og_order(s.ANY)))
    assert left == [s.og_order(c) for c in ("b1-3", "b1-4", "b1-5", "b1-6", "b1-7", "b2-1")]
    assert await retention.round(NOW_MS) == (0, 0, 0)
    await r.xack(commands, s.GROUP_ORDER_GATEWAY, pending)  # b2's command handled
    assert await retention.round(NOW_MS) == (0, 0, 1)
    assert not await r.exists(s.og_order("b2-1"))
    engine.dispose()


def list_record(list_cid: str, phase: str, legs: tuple[str, ...], updated_ts: int) -> dict[str, str]:
    """An og:list hash as services/order_gateway/list_wal.ListRecord writes it."""
    return {"list_cid": list_cid, "bot": BOT, "venue": "sim", "symbol": "BTCUSDT", "kind": "OCO",
            "mode": "emulated", "legs": ",".join(legs), "phase": phase, "updated_ts": str(updated_ts)}  # fmt: skip


async def test_list_records_go_after_their_legs_and_a_leg_stays_while_its_list_is_open(
    ledger_url: str, redis_client: aioredis.Redis
) -> None:
    r = redis_client
    engine = ledger_engine(ledger_url)
    old, young = 1_000, NOW_MS - 1_000
    lists = {
        "b1-10": ("done", ("b1-11", "b1-12"), old),  # done: its legs go, then it
        "b1-20": ("working", ("b1-21", "b1-22"), old),  # open: its finished leg stays
        "b1-30": ("done", ("b1-31", "b1-32"), old),  # one leg not in the ledger: it and the list stay
        "b1-40": ("done", ("b1-41", "b1-42"), young),  # done too recently: its legs go, it stays
    }
    legs = {
        "b1-11": OrderStatus.FILLED, "b1-12": OrderStatus.EXPIRED, "b1-21": OrderStatus.FILLED,
        "b1-22": OrderStatus.NEW, "b1-31": OrderStatus.FILLED, "b1-32": OrderStatus.CANCELED,
        "b1-41": OrderStatus.FILLED, "b1-42": OrderStatus.EXPIRED,
    }  # fmt: skip
    for list_cid, (phase, cids, updated) in lists.items():
        await r.hset(s.og_list(list_cid), mapping=list_record(list_cid, phase, cids, updated))
        for cid in cids:
            await r.hset(s.og_order(cid), mapping={**record(cid, legs[cid], "1", old), "list_cid": list_cid})
    await r.sadd(s.og_open_lists("sim"), "b1-20")
    await r.sadd(s.og_open("sim"), "b1-22")
    with engine.begin() as conn:
        conn.execute(t.orders.insert(), [order_row(c, st, "1") for c, st in legs.items() if c != "b1-31"])

    async def streams() -> list[str]:
        return []

    retention = Retention(r, engine, streams, Rule(0, 0, 10_000), 60, {})
    assert await retention.round(NOW_MS) == (0, 0, 6)  # b1-11, b1-12, b1-10; b1-32; b1-41, b1-42
    left = sorted(k.decode() for k in await r.keys("og:*"))
    kept = [s.og_list(c) for c in ("b1-20", "b1-30", "b1-40")] + [s.og_open_lists("sim")]
    assert left == sorted([*kept, s.og_open("sim"), *(s.og_order(c) for c in ("b1-21", "b1-22", "b1-31"))])

    # the open list finishes: the gateway marks its last leg final, the list done and closed
    await r.hset(s.og_order("b1-22"), mapping={"status": str(OrderStatus.CANCELED)})
    await r.srem(s.og_open("sim"), "b1-22")
    await r.hset(s.og_list("b1-20"), "phase", "done")
    await r.srem(s.og_open_lists("sim"), "b1-20")
    with engine.begin() as conn:
        conn.execute(t.orders.update().where(t.orders.c.cid == "b1-22").values(status="CANCELED"))
    assert await retention.round(NOW_MS) == (0, 0, 3)  # b1-21, b1-22, then b1-20
    assert not await r.exists(s.og_list("b1-20"), s.og_order("b1-21"), s.og_order("b1-22"))
    assert await r.exists(s.og_list("b1-30"), s.og_order("b1-31"), s.og_list("b1-40")) == 3
    engine.dispose()


def test_the_ledger_service_trims_what_it_wrote_and_leaves_the_candles(
    tmp_path: Path, env: dict[str, str], sync_redis: redis.Redis
) -> None:
    config = tmp_path / "automata.toml"
    config.write_text(
        "[ledger]\nretention_every_s = 1\nstream_keep_s = 0\nwal_keep_s = 0\n"
        '[[ledger.candles]]\nvenue = "sim"\nsymbols = ["BTCUSDT"]\n'
        "[notifier]\nbackfill_s = 0\n"
    )
    candles = s.candles("sim", "BTCUSDT", "1m")
    for i in range(3):
        candle = Candle(venue="sim", symbol="BTCUSDT", interval="1m", open_time=i * 60_000,
                        close_time=i * 60_000 + 59_999, open=Decimal(1), high=Decimal(1), low=Decimal(1),
                        close=Decimal(1), volume=Decimal(1))  # fmt: skip
        sync_redis.xadd(candles, encode(candle), id=f"{i * 60_000}-1")
    update = OrderUpdate(cid="b1-000001", bot=BOT, venue="sim", symbol="BTCUSDT", status=OrderStatus.NEW,
                         side="BUY", order_type="LIMIT", price=Decimal(1), orig_qty=Decimal(1))  # fmt: skip
    for _ in range(4):
        sync_redis.xadd(EVENTS, encode(update))
    url = f"sqlite:///{tmp_path / 'l.sqlite3'}"
    ledger = start_ledger({**env, "AUTOMATA_CONFIG": str(config)}, tmp_path / "ledger.log", url)
    try:
        wait_until(lambda: sync_redis.xlen(EVENTS) == 0, timeout=60, what="the order updates trimmed")
        # the round's log line comes once the round is over (pruning and write-ahead cleanup after the trim)
        wait_until(lambda: "retention: trimmed" in ledger.output(), timeout=30, what="the round's log line")
        assert "retention: trimmed" in ledger.output()
        assert sync_redis.xlen(candles) == 3
        engine = open_ledger(url)
        wait_until(lambda: not ingested(engine, EVENTS), timeout=30, what="their ingested keys pruned")
        assert len(ingested(engine, candles)) == 3  # the candles' stream is not trimmed: kept
        with engine.connect() as conn:
            assert conn.execute(sa.select(t.orders.c.status)).scalars().all() == ["NEW"]
            assert conn.execute(sa.select(sa.func.count()).select_from(t.candles)).scalar() == 3
        engine.dispose()
    finally:
        assert stop_ledger(ledger) == 0
