"""`automata status`, `orders`, `balance` and `tail` against a real Redis holding what the
services write (heartbeats, groups, write-ahead records, bot state, balances, market data)."""

from __future__ import annotations

import os
import signal
import time
from datetime import UTC, datetime
from decimal import Decimal

import msgspec
import orjson
import pytest
import redis
from typer.testing import CliRunner

from cli.main import app
from shared.codec import encode
from shared.filters import SymbolFilters
from shared.messages import (
    Balance,
    BalanceUpdate,
    BookTicker,
    Candle,
    Notification,
    OrderStatus,
    OrderType,
    OrderUpdate,
    PlaceOrder,
    Side,
)
from shared.order_record import OrderRecord
from shared.streams import account, book, candles, og_open, og_order, order_events, venue_symbols
from tests.helpers.cli import assert_fits, cli, cli_proc, rows
from tests.helpers.procs import wait_until

D = Decimal


def record(cid: str, venue: str, status: OrderStatus, filled: str = "0", **kw) -> OrderRecord:
    terms = {"side": Side.BUY, "order_type": OrderType.LIMIT, "price": D("30000"), **kw}
    return OrderRecord(
        cid=cid, bot=cid.split("-")[0], venue=venue, symbol="BTCUSDT", status=status, orig_qty=D("0.01"),
        cum_filled_qty=D(filled), created_ts=int(time.time() * 1000), updated_ts=int(time.time() * 1000), **terms,
    )  # fmt: skip


def save(r: redis.Redis, rec: OrderRecord) -> None:
    r.hset(og_order(rec.cid), mapping=rec.to_hash())
    if not rec.terminal:
        r.sadd(og_open(rec.venue), rec.cid)


# Long enough for a loaded machine: a heartbeat's staleness comes from its `ts`, not its TTL.
HEARTBEAT_TTL_MS = 300_000


@pytest.fixture
def seeded(sync_redis: redis.Redis) -> redis.Redis:
    r = sync_redis
    now = int(time.time() * 1000)
    # services: one fresh heartbeat (its pid is not a service here: no memory shown), one stale
    beat = {"pid": os.getpid(), "metrics_port": 0, "started": now - 600_000, "ts": now, "venues": ["sim"]}
    r.set("svc:order_gateway:t1", orjson.dumps(beat), px=HEARTBEAT_TTL_MS)
    r.set("svc:notifier:t1", orjson.dumps({**beat, "ts": now - 60_000}), px=HEARTBEAT_TTL_MS)
    # a runner whose bot `demo` got its last candle a minute ago (stalled after 10 s), `quiet` just now
    inputs = {"demo": {"last_input_ms": now - 60_000, "stall_after_s": 10.0, "stalled": True},
              "quiet": {"last_input_ms": now, "stall_after_s": 10.0, "stalled": False}}  # fmt: skip
    r.set("svc:strategy_runner:t1", orjson.dumps({**beat, "inputs": inputs}), px=HEARTBEAT_TTL_MS)
    # a consumer group with one entry pending and two not delivered yet
    for i in range(3):
        cmd = PlaceOrder(cid=f"demo-{i + 1:06d}", bot="demo", venue="sim", symbol="BTCUSDT", side=Side.BUY,
                         order_type=OrderType.MARKET, quantity=D("0.001"))  # fmt: skip
        r.xadd("orders:cmd:sim:demo", encode(cmd))
    r.xgroup_create("orders:cmd:sim:demo", "order_gateway", id="0")
    r.xreadgroup("order_gateway", "og-1", {"orders:cmd:sim:demo": ">"}, count=1)
    # the write-ahead log
    save(r, record("demo-000001", "sim", OrderStatus.NEW))
    save(r, record("manual-000001", "sim", OrderStatus.PARTIALLY_FILLED, filled="0.004"))
    save(r, record("manual-000002", "sim", OrderStatus.FILLED, filled="0.01"))
    save(r, record("grid-000007", "bybit", OrderStatus.NEW, reason="[x] bracketed reason"))
    # a bot that failed on an entry
    state = {"mode": "paused", "position": {"base": "0.5", "cost": "15000", "realised": "12.5"},
             "orders": {"demo-000001": {"cid": "demo-000001"}}}  # fmt: skip
    failed = {"stream": "md:candles:sim:BTCUSDT:1m", "id": "1-1", "error": "ZeroDivisionError: boom"}
    applied = {"md:candles:sim:BTCUSDT:1m": "1-0"}  # the bot's market: sim BTCUSDT
    r.set(
        "bot:demo:state",
        orjson.dumps({"version": 3, "last_applied": applied, "state": state, "failed": failed}),
    )
    # a bot whose figures come raw out of its arithmetic (more digits than the symbol has)
    raw = {"mode": "running", "position": {"base": "0.00471000", "cost": "197.8895", "realised": "0.4230933965714599752750361"}}  # fmt: skip
    r.set("bot:grid2:state", orjson.dumps({"version": 9, "last_applied": applied, "state": raw}))
    # the symbol filters the order gateway publishes: amounts are shown at this precision
    btc = SymbolFilters(symbol="BTCUSDT", base_asset="BTC", quote_asset="USDT", tick_size=D("0.01"),
                        step_size=D("0.00001"))  # fmt: skip
    r.hset(venue_symbols("sim"), "BTCUSDT", msgspec.json.encode(btc))
    r.xadd("dlq:orders:cmd:sim:demo", {"type": "nope", "data": "{}", "dlq_reason": "unknown message type"})
    r.xadd("dlq:orders:cmd:sim:demo", {"type": "nope", "data": "{}", "dlq_reason": "unknown message type"})
    # balances: a snapshot, then a delta for BTC; prices from the book (BTC) and candles (ETH)
    snap = BalanceUpdate(venue="sim", snapshot=True, ts=now, balances=(
        Balance("USDT", D("1000"), D("200")), Balance("BTC", D("0.5"), D("0")), Balance("ETH", D("2"), D("0")),
        Balance("USDC", D("50"), D("0")), Balance("DOGE", D("0"), D("0"))))  # fmt: skip
    r.xadd(account("sim"), encode(snap))
    r.xadd(
        account("sim"),
        encode(BalanceUpdate(venue="sim", balances=(Balance("BTC", D("0.6"), D("0")),), ts=now)),
    )
    r.xadd(book("sim", "BTCUSDT"), encode(BookTicker(venue="sim", symbol="BTCUSDT", bid=D("30000"),
           bid_qty=D("1"), ask=D("30010"), ask_qty=D("1"), ts=now)))  # fmt: skip
    for interval, close, t in (("1m", "2000", now - 60_000), ("5m", "1900", now - 600_000)):
        candle = Candle(venue="sim", symbol="ETHUSDT", interval=interval, open_time=t, close_time=t + 59_999,
                        open=D(close), high=D(close), low=D(close), close=D(close), volume=D("1"))  # fmt: skip
        r.xadd(candles("sim", "ETHUSDT", interval), encode(candle))
    return r


def test_status_shows_services_groups_orders_bots_and_dead_letters(env, seeded) -> None:
    res = cli(env, "status")
    assert res.returncode == 0, res.stderr
    out = res.stdout
    assert "aof on" in out
    table = rows(out)
    assert table["order_gateway"][:2] == ["t1", str(os.getpid())]
    assert table["order_gateway"][-2:] == ["-", "-"]  # not a service process: no memory, no health
    assert table["notifier"][-1] == "stale"
    assert table["orders:cmd:sim:demo"] == ["order_gateway", "1", "1", "2"]  # consumers, pending, lag
    assert "bybit: 1, sim: 2" in out
    assert table["demo"][1].startswith("stalled (")  # its last candle a minute ago
    assert table["demo"][:1] + table["demo"][2:] == ["paused", "0.5", "30,000.00", "12.50", "1", "ZeroDivisionError: boom"]  # fmt: skip
    assert table["grid2"] == [
        "running",
        "-",
        "0.00471",
        "42,014.76",
        "0.42",
        "0",
        "-",
    ]  # no runner reports it
    assert "dlq:orders:cmd:sim:demo: 2" in out

    doc = orjson.loads(cli(env, "status", "--json").stdout)
    assert doc["open_orders"] == {"bybit": 1, "sim": 2}
    assert doc["dlq"] == {"dlq:orders:cmd:sim:demo": 2}
    assert {g["group"]: g["lag"] for g in doc["groups"]} == {"order_gateway": 2}
    assert [(b["bot"], b["stalled"]) for b in doc["bots"]] == [("demo", True), ("grid2", None)]
    assert doc["bots"][0]["last_input_s"] >= 60
    grid2 = next(b for b in doc["bots"] if b["bot"] == "grid2")  # exact decimals, as strings
    assert grid2["realised"] == "0.4230933965714599752750361" and grid2["position"] == "0.00471"
    assert (grid2["venue"], grid2["symbol"]) == ("sim", "BTCUSDT")


def test_every_reading_command_fits_80_columns_and_speaks_json(env, seeded) -> None:
    # first, while the seeded heartbeats live (HEARTBEAT_TTL_MS)
    beats = [orjson.loads(line) for line in cli(env, "health", "--json").stdout.splitlines()]
    assert {b["service"] for b in beats} == {"order_gateway", "notifier", "strategy_runner"}
    assert all("stale" in b for b in beats)
    for args in (["status"], ["bots"], ["orders"], ["orders", "--all"], ["balance"], ["health"]):
        res = cli(env, *args, columns=80)
        assert res.returncode == (1 if args == ["health"] else 0), res.stdout + res.stderr  # demo is stalled
        assert_fits(res.stdout)
    narrow = cli(env, "orders", columns=80).stdout  # two lines an order: cid over side, type, symbol
    assert "manual-000001" in narrow and "BUY LIMIT BTCUSDT" in narrow and "30,000.00" in narrow
    assert "PARTIALLY_FILLED" in narrow and "bracketed" in narrow  # the note wraps

    bots = orjson.loads(cli(env, "bots", "--json").stdout)
    assert {b["bot"]: b["mode"] for b in bots} == {"demo": "paused", "grid2": "running"}
    assert {b["bot"]: b["avg_price"] for b in bots}["demo"] == "30000"
    orders = orjson.loads(cli(env, "orders", "--json").stdout)
    assert {o["cid"]: o["cum_filled_qty"] for o in orders} == {"demo-000001": "0", "manual-000001": "0.004", "grid-000007": "0"}  # fmt: skip
    assert all(o["price"] == "30000" and o["status"] for o in orders)
    [acct] = orjson.loads(cli(env, "balance", "sim", "--json").stdout)
    assert acct["equity"] == "23203" and acct["unvalued"] == ["USDC"] and acct["complete"] is True
    assert {b["asset"]: b["total"] for b in acct["balances"]} == {"BTC": "0.6", "ETH": "2", "USDC": "50", "USDT": "1200"}  # fmt: skip
    runner = CliRunner()  # the help texts, in process
    for args in (["status"], ["bots"], ["orders"], ["balance"], ["health"], ["tail"], ["ticker"], ["book"],
                 ["reconcile"], ["backtest"], ["dca", "plan"]):  # fmt: skip
        assert "--json" in runner.invoke(app, [*args, "--help"], env={"COLUMNS": "120"}).output, args


def test_bot_ids_stay_whole_at_80_columns(env, seeded) -> None:
    """The demo's `automata bots` at 80 columns showed `demo_frac` over `tal` and `demo_manu` over
    `al`: an id is never cut, and the failure column is there only when a bot failed."""
    state = {"mode": "running", "position": {"base": "0.00000528", "cost": "0.2225", "realised": "0.0025"}}
    applied = {"md:candles:sim:BTCUSDT:1m": "1-0"}
    for bot in ("demo_fractal", "demo_manual"):
        seeded.set(f"bot:{bot}:state", orjson.dumps({"version": 3, "last_applied": applied, "state": state}))
    for failing in (True, False):
        if not failing:
            seeded.delete("bot:demo:state")
        out = cli(env, "bots", columns=80).stdout
        assert_fits(out)
        table = rows(out)
        assert table["demo_fractal"][:1] == ["running"] and "demo_manual" in table, out
        assert ("fail" in out.splitlines()[0]) is failing


def test_health_fails_while_a_bot_is_stalled(env, seeded) -> None:
    res = cli(env, "health")
    assert res.returncode == 1, res.stdout + res.stderr
    stalled = [line for line in res.stdout.splitlines() if "stalled" in line]
    assert len(stalled) == 1 and stalled[0].startswith("bot demo is stalled: no candle for "), res.stdout
    seeded.delete("svc:strategy_runner:t1")  # no runner: nothing to say about its bots
    assert cli(env, "health").returncode == 0


def test_status_shows_a_venue_halted_by_a_ban(env, seeded) -> None:
    """The order gateway's heartbeat says until when a ban halts a venue; status shows it (the
    user had only the notification, and `automata order` waiting without a word why)."""
    now = int(time.time() * 1000)
    until = now + 600_000
    beat = {"pid": os.getpid(), "metrics_port": 0, "started": now, "ts": now, "halted": {"bsim": until}}
    seeded.set("svc:order_gateway:t2", orjson.dumps(beat), px=HEARTBEAT_TTL_MS)
    end = datetime.fromtimestamp(until / 1000, UTC)
    assert f"bsim halted (a ban) until {end:%H:%M:%S} UTC" in cli(env, "status").stdout.replace("\n", " ")


def test_status_and_balance_without_redis(env) -> None:
    down = {**env, "REDIS_URL": "redis://:hunter2@127.0.0.1:1/0"}
    for args in (["status"], ["balance"], ["orders"]):
        res = cli(down, *args)
        assert res.returncode == 1
        assert "cannot reach Redis at redis://:***@127.0.0.1:1/0" in res.stdout
        assert "hunter2" not in res.stdout + res.stderr and "Traceback" not in res.stderr


def test_orders_open_filtered_and_all(env, seeded) -> None:
    out = cli(env, "orders").stdout
    table = rows(out)
    assert set(table) == {"demo-000001", "manual-000001", "grid-000007"}
    assert table["manual-000001"][:8] == ["sim", "BTCUSDT", "BUY", "LIMIT", "30,000.00", "0.01", "0.004", "PARTIALLY_FILLED"]  # fmt: skip
    assert table["grid-000007"][-1] == "[x] bracketed reason"
    assert "3 open orders" in out
    assert set(rows(cli(env, "orders", "--venue", "sim").stdout)) == {"demo-000001", "manual-000001"}
    one = cli(env, "orders", "--bot", "manual").stdout
    assert set(rows(one)) == {"manual-000001"} and "1 open order\n" in one  # not "1 open orders"
    everything = rows(cli(env, "orders", "--all", "--bot", "manual").stdout)
    assert everything["manual-000002"][7] == "FILLED"
    # a stop order: its trigger price in a column of its own (it showed "-", its price unknown)
    save(seeded, record("grid-000009", "sim", OrderStatus.NEW, order_type=OrderType.STOP_LOSS, price=None,
                        stop_price=D("29500"), side=Side.SELL))  # fmt: skip
    stops = rows(cli(env, "orders", "--bot", "grid").stdout)
    assert stops["grid-000009"][:7] == ["sim", "BTCUSDT", "SELL", "STOP_LOSS", "-", "29,500.00", "0.01"]
    assert stops["grid-000007"][4:6] == ["30,000.00", "-"]
    assert "stop 29,500.00" in cli(env, "orders", "--bot", "grid", columns=80).stdout
    refused = cli(env, "orders", "--venue", "nowhere")  # a typo: refused, the known venues listed
    assert refused.returncode == 2 and "unknown venue 'nowhere' (venues: bybit, sim)" in refused.stdout


def test_balance_values_every_asset_at_its_last_price(env, seeded) -> None:
    res = cli(env, "balance", "sim")
    assert res.returncode == 0, res.stdout + res.stderr
    table = rows(res.stdout)
    assert table["USDT"] == ["1,000.00", "200.00", "1,200.00", "1.00", "1,200.00"]  # a quote asset: cents
    assert table["BTC"] == [
        "0.6",
        "0",
        "0.6",
        "30,005.00",
        "18,003.00",
    ]  # the delta over the snapshot; book mid
    assert table["ETH"] == ["2", "0", "2", "2,000.00", "4,000.00"]  # the newest candle's close
    assert table["USDC"][-2:] == ["-", "-"] and "DOGE" not in table  # no price; zero balance hidden
    assert "equity: 23,203.00 USDT" in res.stdout
    assert "not valued (no USDT price in Redis; --live asks the venue): USDC" in res.stdout
    # no VENUE: every venue with balances
    assert "equity: 23,203.00 USDT" in cli(env, "balance").stdout
    unknown = cli(env, "balance", "bybit")  # neither configured nor with balances: a typo
    assert unknown.returncode == 2 and "unknown venue 'bybit' (venues: sim)" in unknown.stdout


def test_tail_decodes_entries_and_follows(env, seeded, tmp_path) -> None:
    r = seeded
    note = Notification(id="n-1", kind="fill", text="bought 0.01 BTC", bot="demo")
    r.xadd("notify", encode(note))
    r.xadd("notify", {"type": "mystery", "data": "{}"})
    out = cli(env, "tail", "notify", "-n", "5").stdout.splitlines()
    assert len(out) == 2
    assert ' notification id=n-1 kind=fill text="bought 0.01 BTC" ' in out[0]
    assert " mystery undecodable=" in out[1]
    last = orjson.loads(cli(env, "tail", account("sim"), "-n", "1", "--json").stdout)
    assert last["type"] == "balance" and last["balances"] == [{"asset": "BTC", "free": "0.6", "locked": "0"}]
    [text] = cli(env, "tail", account("sim"), "-n", "1").stdout.splitlines()
    assert ' balances=[{"asset":"BTC","free":"0.6","locked":"0"}] ' in text, text  # never Decimal('0.6')
    assert cli(env, "tail", "nosuch").returncode == 1
    assert "is a string, not a stream" in cli(env, "tail", "bot:demo:state").stdout

    stream = order_events("manual")
    first = OrderUpdate(
        cid="manual-000001", bot="manual", venue="sim", symbol="BTCUSDT", status=OrderStatus.NEW
    )
    r.xadd(stream, encode(first))
    log = tmp_path / "tail.log"
    proc = cli_proc(env, log, "tail", stream, "--follow", "-n", "1")
    wait_until(lambda: "status=NEW" in proc.output(), timeout=20, what="tail to print the last entry")
    filled = OrderUpdate(cid="manual-000001", bot="manual", venue="sim", symbol="BTCUSDT",
                         status=OrderStatus.FILLED, cum_filled_qty=D("0.01"), cum_quote_qty=D("300.00000000"),
                         last_fill_qty=D("0E-8"), fee=D("5.9E-7"), fee_asset="BTC")  # fmt: skip
    r.xadd(stream, encode(filled))
    wait_until(lambda: "status=FILLED cum_filled_qty=0.01" in proc.output(), timeout=20, what="the new entry")
    # decimals exact and never in exponent notation, in the lines and in --json
    words = proc.output().split()  # a field's place in the line is not the point
    assert "cum_quote_qty=300" in words and "last_fill_qty=0" in words
    assert "fee=0.00000059" in words and "E-" not in proc.output()
    doc = orjson.loads(cli(env, "tail", stream, "-n", "1", "--json").stdout)
    assert (doc["fee"], doc["last_fill_qty"], doc["cum_quote_qty"]) == ("0.00000059", "0", "300")
    os.kill(proc.pid, signal.SIGINT)
    assert proc.popen.wait(10) == 0
    assert proc.output().count("manual-000001") == 2
