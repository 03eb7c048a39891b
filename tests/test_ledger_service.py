"""The ledger service: every entry written exactly once, whatever crashes when (issue 15).

Real parts: a redis-server, SQLite files and a real PostgreSQL (the `ledger_url` fixture runs a
test on both), the service as a subprocess killed with SIGKILL, the PostgreSQL cluster killed.
"""

from __future__ import annotations

import asyncio
import json
import random
import resource
import socket
from decimal import Decimal
from decimal import Decimal as D
from typing import Any

import msgspec
import pytest
import redis.asyncio as aioredis
import sqlalchemy as sa

from services.ledger.gaps import report_gap
from services.ledger.writer import Writer, read_opening, utc
from services.strategy_runner.state_store import RunnerDoc, encode_doc
from shared import streams as s
from shared.codec import decode, encode
from shared.ledger import schema as t
from shared.ledger.db import open_ledger, upgrade
from shared.messages import Balance, BalanceUpdate, Candle, Notification, OrderUpdate, PlaceOrder
from shared.strategy.position import Position
from shared.strategy.testing import BTC_FILTERS, Driver
from strategies.dca import DcaStrategy
from strategies.fractal_trailing import FractalTrailingStrategy
from tests.helpers.cli import cli
from tests.helpers.ledger import (
    BOT,
    PRICE,
    expected_fills,
    fills_of,
    ingested,
    order_updates,
    start_ledger,
    stop_ledger,
    wait_all_written,
    xadd,
)
from tests.helpers.postgres import PostgresCluster
from tests.helpers.procs import wait_until

STREAM = s.order_events(BOT)


def writer_on(url: str) -> tuple[sa.Engine, Writer]:
    engine = open_ledger(url, source="test")
    upgrade(engine)
    return engine, Writer(engine, lambda venue, symbol: BTC_FILTERS, lambda venue: "USDT")


def test_a_replay_writes_nothing_twice(ledger_url: str) -> None:
    engine, writer = writer_on(ledger_url)
    entries = [(f"{i + 1}-0", u) for i, u in enumerate(order_updates(4))]
    assert all(writer.write(STREAM, entry_id, u) for entry_id, u in entries)
    first = sorted(fills_of(engine))
    assert set(first) == expected_fills(4) and len(first) == 8
    assert not any(writer.write(STREAM, entry_id, u) for entry_id, u in entries)  # the replay
    assert sorted(fills_of(engine)) == first
    with engine.connect() as conn:
        orders = conn.execute(sa.select(t.orders.c.status, t.orders.c.cum_filled_qty)).all()
    assert [(status, qty) for status, qty in orders] == [("FILLED", Decimal("0.002"))] * 4


def test_a_replay_in_one_batch_with_or_without_returning(tmp_path) -> None:
    """A batch that repeats itself and entries written before: each written once, whether the
    keys are claimed with INSERT ... RETURNING or (SQLite before 3.35) with a SELECT."""
    for returning in (True, False):
        engine, writer = writer_on(f"sqlite:///{tmp_path}/returning-{returning}.sqlite3")
        engine.dialect.insert_executemany_returning = returning
        entries = [(STREAM, f"{i + 1}-0", u) for i, u in enumerate(order_updates(4))]
        assert writer.write_many(entries[:4]) == 4
        assert writer.write_many(entries + entries) == len(entries) - 4
        fills = fills_of(engine)
        assert len(fills) == 8 and set(fills) == expected_fills(4)
        assert ingested(engine, STREAM) == {entry_id for _s, entry_id, _u in entries}
        engine.dispose()


class Recording(Driver):
    """A strategy (DCA unless told) driven by hand; every order update it is sent is kept for the ledger."""

    def __init__(self, strategy: Any = None, params: dict[str, Any] | None = None) -> None:
        super().__init__(strategy or DcaStrategy(), params or {"fee": "0.001"})
        self.updates: list[OrderUpdate] = []

    def send(self, event):  # noqa: ANN001, ANN201 - Driver.send's own signature
        if isinstance(event, OrderUpdate):
            self.updates.append(event)
        return super().send(event)


def test_the_ledgers_realised_profit_is_the_bots_own(ledger_url: str) -> None:
    d = Recording()
    base = d.candle("100", "100", "100", "100")[0]
    d.fill(base.cid, price="100", fee_rate="0.001")
    so1 = next(r for r in d.state.orders.values() if r.tag == "so1")
    d.fill(so1.cid, qty=str(so1.quantity / 2), fee_rate="0.001", status="PARTIALLY_FILLED")
    d.fill(so1.cid, fee_rate="0.001")
    tp = next(r for r in d.state.orders.values() if r.tag.startswith("tp") and r.status != "CANCELED")
    d.update(tp.cid, "CANCELED")
    tp = next(r for r in d.state.orders.values() if r.tag.startswith("tp"))
    d.fill(tp.cid, fee_rate="0.001")
    assert d.state.position.realised != 0 and d.state.position.base == 0
    engine, writer = writer_on(ledger_url)
    for i, u in enumerate(d.updates):
        writer.write(s.order_events(d.bot), f"{i + 1}-0", u)
    with engine.connect() as conn:
        totals = conn.execute(sa.select(t.fills.c.realised_total).order_by(t.fills.c.id)).scalars().all()
        realised = conn.execute(sa.select(t.fills.c.realised)).scalars().all()
        cycles = conn.execute(sa.select(t.cycles.c.number, t.cycles.c.closed_at, t.cycles.c.profit)).all()
    assert totals[-1] == d.state.position.realised == sum(realised, Decimal(0))
    assert (
        len(cycles) == 1 and cycles[0].closed_at is not None and cycles[0].profit == d.state.position.realised
    )


def test_a_position_taken_over_at_the_start_counts_at_its_entry_price(
    ledger_url: str, redis_server, sync_redis
) -> None:
    """The fractal stop protects 1 BTC "bought at 100" that it never bought itself; its stop sells
    it at 101. The ledger starts the bot's books from that position (the `opening` of its state
    document, as the runner stores it), so its profit is the bot's 0.899, not the whole 100.899."""
    d = Recording(FractalTrailingStrategy(), {"entry": "100", "quantity": "1", "interval": "1m", "pad": "1"})
    for low in ["105", "104", "102", "104", "106"]:  # a down fractal at 102: the stop
        cmds = d.candle(str(D(low) + 2), str(D(low) + 3), low, str(D(low) + 2))
    (stop,) = [c for c in cmds if isinstance(c, PlaceOrder)]
    cmds = d.fill(stop.cid, price="101", fee_rate="0.001")
    (closed,) = [c for c in cmds if isinstance(c, Notification) and c.kind == "position_closed"]
    profit = D(closed.data["profit"])
    assert profit == d.state.position.realised == D("0.899")

    sync_redis.set(
        s.bot_state(d.bot), encode_doc(RunnerDoc(version=3, state=msgspec.Raw(msgspec.json.encode(d.state))))
    )
    opening = asyncio.run(read_opening_from(redis_server.url, d.bot))
    assert opening == d.state.opening == Position(base=D(1), cost=D(100))
    engine, _ = writer_on(ledger_url)
    writer = Writer(engine, lambda venue, symbol: BTC_FILTERS, lambda venue: "USDT", {d.bot: opening}.get)
    for i, u in enumerate(d.updates):
        writer.write(s.order_events(d.bot), f"{i + 1}-0", u)
    with engine.connect() as conn:
        (total,) = conn.execute(sa.select(t.fills.c.realised_total)).scalars().all()
        (cycle,) = conn.execute(
            sa.select(t.cycles.c.closed_at, t.cycles.c.profit, t.cycles.c.bought_qty, t.cycles.c.spent)
        ).all()
    assert total == profit and cycle.profit == profit and cycle.closed_at is not None
    assert (cycle.bought_qty, cycle.spent) == (1, 100)  # the position taken over, at its cost


async def read_opening_from(url: str, bot: str) -> Position | None:
    r = aioredis.Redis.from_url(url)
    try:
        return await read_opening(r, bot)
    finally:
        await r.aclose()


def test_sigkilled_at_random_points_the_ledger_has_every_fill_once(tmp_path, env, sync_redis) -> None:
    url = f"sqlite:///{tmp_path / 'ledger.sqlite3'}"
    engine = open_ledger(url, source="test")
    updates = list(order_updates(30))
    quarter, rng, ids = len(updates) // 4, random.Random(15), set()
    ledger = start_ledger(env, tmp_path / "ledger.log", url)
    for kill in range(4):
        before = len(ingested(engine, STREAM))
        ids |= {xadd(sync_redis, STREAM, u) for u in updates[kill * quarter : (kill + 1) * quarter]}
        target = rng.randint(before + 1, len(ids))  # SIGKILL once this many are in, mid-stream
        wait_until(lambda n=target: len(ingested(engine, STREAM)) >= n, timeout=60, what=f"{target} entries")
        ledger.kill()
        ledger = start_ledger(env, tmp_path / f"ledger{kill}.log", url)
    ids |= {xadd(sync_redis, STREAM, u) for u in updates[4 * quarter :]}
    wait_all_written(engine, STREAM, ids, ledger)
    assert sorted(fills_of(engine)) == sorted(expected_fills(30))
    wait_until(
        lambda: sync_redis.xpending(STREAM, s.GROUP_LEDGER)["pending"] == 0, timeout=30, what="all acked"
    )
    assert stop_ledger(ledger) == 0


def test_postgresql_killed_mid_ingest_loses_nothing_and_writes_nothing_twice(
    tmp_path, env, sync_redis, postgres, pg_url
) -> None:
    if postgres.cluster is None:
        pytest.skip("TEST_DATABASE_URL: a server this test cannot kill")
    engine = open_ledger(pg_url, source="test")
    updates = list(order_updates(10))
    ledger = start_ledger(env, tmp_path / "ledger.log", pg_url)
    ids = {xadd(sync_redis, STREAM, u) for u in updates[:20]}
    wait_all_written(engine, STREAM, ids, ledger)
    postgres.cluster.kill()
    try:
        ids |= {xadd(sync_redis, STREAM, u) for u in updates[20:]}
        wait_until(lambda: "database unavailable" in ledger.output(), timeout=60, what="the ledger noticing")
        assert sync_redis.xpending(STREAM, s.GROUP_LEDGER)["pending"] > 0  # nothing acked unwritten
    finally:
        postgres.cluster.start()
    engine.dispose()
    wait_all_written(engine, STREAM, ids, ledger)
    assert sorted(fills_of(engine)) == sorted(expected_fills(10))
    wait_until(
        lambda: sync_redis.xpending(STREAM, s.GROUP_LEDGER)["pending"] == 0, timeout=30, what="all acked"
    )
    assert stop_ledger(ledger) == 0
    engine.dispose()


async def test_a_stream_trimmed_before_the_ledger_read_it_is_reported(tmp_path, redis_client) -> None:
    engine, _writer = writer_on(f"sqlite:///{tmp_path / 'ledger.sqlite3'}")
    updates = list(order_updates(3))
    for u in updates:
        await redis_client.xadd(STREAM, encode(u))
    assert not await report_gap(redis_client, engine, STREAM, s.GROUP_LEDGER)  # whole: nothing to say
    await redis_client.xtrim(STREAM, maxlen=5, approximate=False)
    assert await report_gap(redis_client, engine, STREAM, s.GROUP_LEDGER)
    assert not await report_gap(redis_client, engine, STREAM, s.GROUP_LEDGER)  # once per gap
    with engine.connect() as conn:
        (gap,) = conn.execute(sa.select(t.stream_gaps)).mappings().all()
    first = (await redis_client.xrange(STREAM, count=1))[0][0].decode()
    assert gap["stream"] == STREAM and gap["first_id"] == first and gap["last_seen_id"] == ""
    (note,) = [decode(f) for _i, f in await redis_client.xrange(s.NOTIFY)]
    assert isinstance(note, Notification) and STREAM in note.text
    await redis_client.xgroup_create(STREAM, s.GROUP_LEDGER, id="0")
    await redis_client.xreadgroup(s.GROUP_LEDGER, "c", {STREAM: ">"})
    await redis_client.xadd(STREAM, encode(updates[0]))
    await redis_client.xtrim(STREAM, maxlen=1, approximate=False)  # only what it read went
    assert not await report_gap(redis_client, engine, STREAM, s.GROUP_LEDGER)


def test_balances_and_equity_at_the_last_price_known(ledger_url: str) -> None:
    engine, writer = writer_on(ledger_url)
    btc = lambda free: Balance("BTC", Decimal(free), Decimal("0.5"))  # noqa: E731
    usdt = lambda free: Balance("USDT", Decimal(free), Decimal(0))  # noqa: E731
    candle = Candle(venue="sim", symbol="BTCUSDT", interval="1m", open_time=0, close_time=59_999,
                    open=PRICE, high=PRICE, low=PRICE, close=Decimal("100.5"), volume=Decimal(1))  # fmt: skip
    batch = [
        (
            "account:sim",
            "1-0",
            BalanceUpdate(venue="sim", balances=(usdt("10"),)),
        ),  # a delta first: no equity
        ("md:candles:sim:BTCUSDT:1m", "2-1", candle),
        ("account:sim", "3-0", BalanceUpdate(venue="sim", balances=(btc("0.5"), usdt("50")), snapshot=True)),
        ("account:sim", "4-0", BalanceUpdate(venue="sim", balances=(usdt("60"),))),
    ]
    assert writer.write_many(batch) == 4
    with engine.connect() as conn:
        values = conn.execute(sa.select(t.equity.c.value).order_by(t.equity.c.at)).scalars().all()
        assert conn.execute(sa.select(sa.func.count()).select_from(t.balances)).scalar() == 4
    assert values == [Decimal("150.5"), Decimal("160.5")]  # 1 BTC at 100.5 + USDT
    restarted = Writer(engine, lambda venue, symbol: BTC_FILTERS, lambda venue: "USDT")
    restarted.load_prices()  # the price it knew before the restart values the next snapshot
    assert restarted.write(
        "account:sim", "5-0", BalanceUpdate(venue="sim", balances=(btc("1.5"),), snapshot=True)
    )
    with engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.max(t.equity.c.at))).scalar() == utc(5)
        assert conn.execute(sa.select(t.equity.c.value).where(t.equity.c.at == utc(5))).scalar() == Decimal(
            "201.0"
        )


def test_equity_of_an_account_partly_without_a_price_names_what_it_leaves_out(ledger_url: str) -> None:
    """The demo holds ETH the ledger has no price for: equity is the valued part, ETH named (as
    `automata balance` shows it), not no equity at all."""
    engine, writer = writer_on(ledger_url)
    bal = lambda asset, total: Balance(asset, Decimal(total), Decimal(0))  # noqa: E731
    candle = Candle(venue="sim", symbol="BTCUSDT", interval="1m", open_time=0, close_time=59_999,
                    open=PRICE, high=PRICE, low=PRICE, close=Decimal("100"), volume=Decimal(1))  # fmt: skip
    account = (bal("BTC", "2"), bal("ETH", "3"), bal("XRP", "0"), bal("USDT", "50"))
    assert writer.write_many([
        ("account:sim", "1-0", BalanceUpdate(venue="sim", balances=account, snapshot=True)),
        ("md:candles:sim:BTCUSDT:1m", "2-0", candle),
        ("account:sim", "3-0", BalanceUpdate(venue="sim", balances=(bal("USDT", "60"),))),
        ("md:candles:sim:ETHUSDT:1m", "4-0", msgspec.structs.replace(candle, symbol="ETHUSDT", close=Decimal(10))),
        ("account:sim", "5-0", BalanceUpdate(venue="sim", balances=(bal("USDT", "70"),))),
    ]) == 5  # fmt: skip
    e = t.equity.c
    with engine.connect() as conn:
        rows = conn.execute(sa.select(e.at, e.value, e.unvalued).order_by(e.at)).all()
    assert [(v, u) for _at, v, u in rows] == [
        (Decimal(50), "BTC ETH"),  # no price yet but the quote asset's; XRP: nothing held
        (Decimal(260), "ETH"),  # 2 BTC at 100 + 60 USDT
        (Decimal(300), ""),  # and 3 ETH at 10
    ]
    engine.dispose()


def test_a_full_disk_is_retried_and_nothing_is_acked_unwritten(tmp_path, env, sync_redis) -> None:
    """The ledger under a file-size limit (RLIMIT_FSIZE: its writes past it fail, as on a full
    disk): a clear error, retried; what the database refused stays pending in Redis, and the
    ledger started again without the limit writes everything exactly once."""
    path = tmp_path / "ledger.sqlite3"
    url = f"sqlite:///{path}"
    engine = open_ledger(url, source="test")
    upgrade(engine)  # the schema fits; the history will not
    limit = path.stat().st_size + 8192

    def full_disk() -> None:
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    ids = {xadd(sync_redis, STREAM, u) for u in order_updates(600)}  # ~1 MB to write, 2,400 entries
    ledger = start_ledger(env, tmp_path / "full.log", url, preexec_fn=full_disk)
    error = "ledger database unavailable (OperationalError: "
    wait_until(lambda: ledger.output().count(error) >= 2, timeout=60, what="the write retried")
    assert ledger.alive()
    line = next(x for x in ledger.output().splitlines() if error in x)
    assert "disk I/O error (a full disk, a file-size limit" in line and "retrying in" in line, line
    written = ingested(engine, STREAM)
    group = next(g for g in sync_redis.xinfo_groups(STREAM) if g["name"] == s.GROUP_LEDGER.encode())
    pending = {
        e["message_id"].decode() for e in sync_redis.xpending_range(STREAM, s.GROUP_LEDGER, "-", "+", 10_000)
    }
    assert group["pending"] > 0 and pending and not (pending & written)  # refused: pending, not acked
    delivered = int(group["entries-read"])
    assert delivered == len(written) + len(pending) < len(ids)  # everything else acked was written
    assert ledger.terminate() == 0

    again = start_ledger(env, tmp_path / "again.log", url)
    wait_all_written(engine, STREAM, ids, again)
    assert sorted(fills_of(engine)) == sorted(expected_fills(600))
    with engine.connect() as conn:
        rows = conn.execute(
            sa.select(sa.func.count()).select_from(t.ingested).where(t.ingested.c.stream == STREAM)
        )
        assert rows.scalar() == len(ids)
    wait_until(
        lambda: sync_redis.xpending(STREAM, s.GROUP_LEDGER)["pending"] == 0, timeout=30, what="all acked"
    )
    assert stop_ledger(again) == 0
    engine.dispose()


def test_a_bad_url_stops_it_and_an_unreachable_database_is_waited_for(tmp_path, env, sync_redis) -> None:
    bad = start_ledger(env, tmp_path / "bad.log", "mysql://u:secret@h/db")
    assert bad.popen.wait(30) == 2
    assert (
        "DATABASE_URL: mysql://u:***@h/db: unsupported database" in bad.output()
        and "secret" not in bad.output()
    )
    with socket.socket() as sock:  # a port nothing listens on
        sock.bind(("127.0.0.1", 0))
        url = f"postgresql+psycopg://u:secret@127.0.0.1:{sock.getsockname()[1]}/db"
    ledger = start_ledger(env, tmp_path / "away.log", url)
    wait_until(lambda: "cannot open the ledger database" in ledger.output(), timeout=30, what="the retry")
    assert ledger.alive() and "secret" not in ledger.output()
    assert (
        "(DATABASE_URL)" in ledger.output()
        and "is PostgreSQL running at the host and port" in ledger.output()
    )
    assert ledger.terminate() == 0


def test_equity_and_balances_are_timed_on_one_clock_the_gateways(ledger_url: str) -> None:
    """A balance delta names the venue's time of the change, a snapshot (a REST call) none: the
    paper venue's market clock runs from 2024-01-01 at 120x, so the equity series of the demo
    interleaved 2024 market times with today's wall clock, and `automata equity` counted, ordered
    and took the drawdown of two unrelated series. Every point takes the order gateway's clock
    (`ts`, when it published), the one both kinds carry."""
    engine, writer = writer_on(ledger_url)
    usdt = lambda free: Balance("USDT", Decimal(free), Decimal(0))  # noqa: E731
    wall, market = 1_796_000_000_000, 1_704_100_000_000  # 2026-12 and 2024-01-01
    assert writer.write_many([
        ("account:sim", "1-0", BalanceUpdate(venue="sim", balances=(usdt("100"),), snapshot=True, ts=wall)),
        ("account:sim", "2-0", BalanceUpdate(venue="sim", balances=(usdt("90"),), venue_ts=market, ts=wall + 500)),
        ("account:sim", "3-0", BalanceUpdate(venue="sim", balances=(usdt("95"),), snapshot=True, ts=wall + 900)),
    ]) == 3  # fmt: skip
    with engine.connect() as conn:
        points = conn.execute(sa.select(t.equity.c.at, t.equity.c.value).order_by(t.equity.c.at)).all()
        balances = conn.execute(sa.select(t.balances.c.at).order_by(t.balances.c.id)).scalars().all()
    assert [(at.replace(tzinfo=None), v) for at, v in points] == [
        (utc(wall).replace(tzinfo=None), Decimal(100)),
        (utc(wall + 500).replace(tzinfo=None), Decimal(90)),
        (utc(wall + 900).replace(tzinfo=None), Decimal(95)),
    ]
    assert [at.replace(tzinfo=None) for at in balances] == [
        utc(ms).replace(tzinfo=None) for ms in (wall, wall + 500, wall + 900)
    ]
    engine.dispose()


def test_the_ledger_is_up_while_its_database_is_away_and_catches_up(
    tmp_path, env, sync_redis, postgres
) -> None:
    """A PostgreSQL down (or a wrong password) when the ledger started kept it from starting at
    all: no heartbeat, so `automata run` waited 90 s and stopped every service, the trading ones
    included. Now it is up meanwhile, its heartbeat says why its database is away, and it writes
    what it missed once the database answers."""
    if postgres.cluster is None:
        pytest.skip("needs PostgreSQL's server binaries: a cluster of its own, started late")
    cluster = PostgresCluster(postgres.cluster.bin_dir)  # made, not started: nothing on its port
    try:
        url = f"postgresql+psycopg://postgres:pw-s3cret@127.0.0.1:{cluster.port}/postgres"
        ids = {xadd(sync_redis, STREAM, u) for u in order_updates(2)}
        ledger = start_ledger(env, tmp_path / "ledger.log", url)
        beat = lambda: msgspec.json.decode(sync_redis.get("svc:ledger:t1") or b"{}")  # noqa: E731
        wait_until(
            lambda: "database" in beat(), timeout=60, what="the ledger's heartbeat naming its database"
        )
        said = beat()["database"]
        assert beat()["pid"] == ledger.popen.pid
        assert "(DATABASE_URL)" in said and "is PostgreSQL running" in said and "pw-s3cret" not in said, said
        # `automata status` gives the reason beside "failing: database", not only the log
        shown = cli(env, "status", "--json")
        row = next(s for s in json.loads(shown.stdout)["services"] if s["service"] == "ledger")
        assert row["health"] == f"failing: database (database: {said})", row
        assert "pw-s3cret" not in shown.stdout + shown.stderr
        cluster.start()
        engine = open_ledger(url, source="test")
        wait_all_written(engine, STREAM, ids, ledger)
        wait_until(
            lambda: "database" not in beat(), timeout=30, what="the heartbeat without the database's error"
        )
        assert len(fills_of(engine)) == 4
        engine.dispose()
        assert stop_ledger(ledger) == 0
    finally:
        cluster.remove()
