"""The `automata` commands that reach a venue, against the paper venue and a real order gateway:
ticker, book, manual orders, balance, status, reconcile (concurrent runs), doctor."""

from __future__ import annotations

import json
import re
import time
import urllib.request
from decimal import Decimal
from pathlib import Path

import pytest
import redis
from typer.testing import CliRunner

from cli.main import app
from services.order_gateway.venues.binance import filters_from_symbol
from shared.codec import decode
from shared.display import Precision, pct, quote
from shared.messages import OrderStatus, OrderUpdate
from shared.streams import og_open, og_order, order_events
from tests.helpers.cli import PLAIN, assert_fits, cli, cli_proc, rows
from tests.helpers.gateway import start_gateway, wait_gateway_ready, write_config
from tests.helpers.procs import wait_until
from tests.helpers.sim import SimVenue, sim_fixture

D = Decimal
sim = sim_fixture()


@pytest.fixture
def config(tmp_path: Path, sim: SimVenue) -> Path:
    path = write_config(tmp_path / "automata.toml", sim, venues='["sim"]')  # the gateway serves sim
    path.write_text(
        path.read_text()
        + f'[venues.simbybit]\nkind = "sim"\nprotocol = "bybit"\nbase_url = "{sim.base_url}"\n'
    )
    return path


@pytest.fixture
def cenv(env: dict[str, str], config: Path) -> dict[str, str]:
    return {**env, "AUTOMATA_CONFIG": str(config)}


@pytest.fixture
def gateway(cenv, tmp_path, sync_redis):
    proc = start_gateway(cenv, Path(cenv["AUTOMATA_CONFIG"]), tmp_path / "og.log")
    wait_gateway_ready(sync_redis, proc)
    yield proc
    if proc.alive():
        assert proc.terminate() == 0, proc.output()[-2000:]


def rest(sim: SimVenue, path: str) -> dict:
    with urllib.request.urlopen(f"{sim.base_url}{path}", timeout=10) as reply:
        return json.loads(reply.read())


def precision(sim: SimVenue, symbol: str = "BTCUSDT") -> Precision:
    """The symbol's tick and step as the venue's exchange info has them: what the CLI rounds to."""
    (info,) = rest(sim, f"/api/v3/exchangeInfo?symbol={symbol}")["symbols"]
    return Precision.of(filters_from_symbol(info))


def manual_updates(r: redis.Redis, cid: str) -> list[OrderUpdate]:
    return [u for _, f in r.xrange(order_events("manual")) if (u := decode(f)).cid == cid]


def test_ticker_and_book_show_what_the_venue_serves(sim, cenv) -> None:
    t = rest(sim, "/api/v3/ticker/24hr?symbol=BTCUSDT")
    avg = rest(sim, "/api/v3/avgPrice?symbol=BTCUSDT")
    p = precision(sim)
    res = cli(cenv, "ticker", "btcusdt", columns=80)
    assert res.returncode == 0, res.stdout + res.stderr
    assert_fits(res.stdout)
    lines = {line.split("  ")[0].strip(): line for line in res.stdout.splitlines()}
    assert lines["last price"].split()[-1] == p.price(t["lastPrice"])
    change = lines["24h change"].split()
    sign = "+" if D(t["priceChange"]) > 0 else ""
    assert change[2] == sign + p.price(t["priceChange"])
    assert change[3] == f"({pct(D(t['priceChangePercent']), sign=True)})"
    assert lines["avg price (5 min)"].split()[-1] == p.price(avg["price"])
    assert lines["best bid"].split()[-3:] == [p.price(t["bidPrice"]), "x", p.qty(t["bidQty"])]
    assert lines["best ask"].split()[-3:] == [p.price(t["askPrice"]), "x", p.qty(t["askQty"])]
    doc = json.loads(cli(cenv, "ticker", "BTCUSDT", "--json").stdout)  # exact, as the venue sent them
    assert (
        D(doc["bid"]) == D(t["bidPrice"]) and D(doc["volume"]) == D(t["volume"]) and "E" not in doc["volume"]
    )

    depth = rest(sim, "/api/v3/depth?symbol=BTCUSDT&limit=3")
    res = cli(cenv, "book", "BTCUSDT", "--depth", "3", columns=80)
    assert res.returncode == 0, res.stdout + res.stderr
    assert_fits(res.stdout)
    body = [[c.strip() for c in line.split("│")] for line in res.stdout.splitlines() if "│" in line]
    assert body == [
        [p.qty(b[1]), p.price(b[0]), p.price(a[0]), p.qty(a[1])]
        for b, a in zip(depth["bids"], depth["asks"], strict=True)
    ]
    assert f"spread {p.price(D(depth['asks'][0][0]) - D(depth['bids'][0][0]))}" in res.stdout
    book = json.loads(cli(cenv, "book", "BTCUSDT", "--depth", "3", "--json").stdout)
    assert [(D(x["price"]), D(x["qty"])) for x in book["bids"]] == [(D(a), D(b)) for a, b in depth["bids"]]

    # the same market through the venue's Bybit face (pybit)
    bybit = cli(cenv, "ticker", "BTCUSDT", "--venue", "simbybit")
    assert bybit.returncode == 0, bybit.stdout + bybit.stderr
    assert "avg price (24 h, volume weighted)" in bybit.stdout and p.price(t["lastPrice"]) in bybit.stdout
    assert len([x for x in cli(cenv, "book", "BTCUSDT", "--venue", "simbybit", "--depth", "2").stdout.splitlines() if "│" in x]) == 2  # fmt: skip

    bad = cli(cenv, "ticker", "NOPE")
    assert bad.returncode == 2 and "Traceback" not in bad.stderr, bad.stdout + bad.stderr
    assert "unknown symbol 'NOPE' on sim (symbols: BTCUSDC, BTCUSDT, ETHUSDT)" in bad.stdout


def test_manual_orders_balance_and_status_through_the_gateway(sim, cenv, gateway, sync_redis) -> None:
    r = sync_redis
    p = precision(sim)
    price = D(sim.control.state()["prices"]["BTCUSDT"])
    limit = price - 1000
    started_ms = int(time.time() * 1000)
    res = cli(cenv, "order", "buy", "BTCUSDT", "0.01", "--price", str(limit))
    assert res.returncode == 0, res.stdout + res.stderr
    first = manual_cid(res.stdout)
    # the counter starts at the clock, so a Redis that lost its last second never reuses a cid
    assert seq(first) >= started_ms
    assert f"{first} BUY BTCUSDT LIMIT 0.01 @ {p.price(limit)}: NEW, filled 0" in res.stdout
    assert r.hget(og_order(first), "bot") == b"manual"

    table = rows(cli(cenv, "orders", "--bot", "manual").stdout)
    assert table[first][:8] == ["sim", "BTCUSDT", "BUY", "LIMIT", p.price(limit), "0.01", "0", "NEW"]

    # balance: the gateway's snapshot plus its deltas, the limit order's quote locked
    locked = quote(D("0.01") * limit)  # USDT, a quote asset: to the cent
    wait_until(lambda: rows(cli(cenv, "balance", "sim").stdout).get("USDT", [None, None])[1] == locked,
               timeout=20, what="USDT locked by the order in the balance")  # fmt: skip
    prices = {s: D(p) for s, p in sim.control.state()["prices"].items()}
    bals = sim.control.balances()
    equity = sum(
        (D(b["free"]) + D(b["locked"])) * (D(1) if a == "USDT" else prices[f"{a}USDT"])
        for a, b in bals.items()
        if f"{a}USDT" in prices or a == "USDT"
    )
    live = cli(cenv, "balance", "sim", "--live")
    assert live.returncode == 0, live.stdout + live.stderr
    assert f"equity: {equity:,.2f} USDT" in live.stdout
    assert "not valued (no USDT price in Redis): USDC" in live.stdout
    assert rows(live.stdout)["BTC"][3] == p.price(prices["BTCUSDT"])

    spent = cli(cenv, "order", "buy", "BTCUSDT", "--quote", "100")
    assert spent.returncode == 0, spent.stdout
    second = manual_cid(spent.stdout)
    assert f"{second} BUY BTCUSDT MARKET" in spent.stdout and ": FILLED, filled " in spent.stdout
    sold = cli(cenv, "order", "sell", "btcusdt", "0.001")
    third = manual_cid(sold.stdout)
    assert f"{third} SELL BTCUSDT MARKET 0.001: FILLED" in sold.stdout
    assert seq(first) < seq(second) < seq(third)

    r.set("manual:seq", "7")  # the counter as a Redis that lost writes might hold it
    rejected = cli(cenv, "order", "buy", "BTCUSDT", "0.000001", "--price", str(limit))
    last = manual_cid(rejected.stdout)
    assert rejected.returncode == 1 and "REJECTED" in rejected.stdout and seq(last) > seq(third)

    status = cli(cenv, "status")
    gw = rows(status.stdout)["order_gateway"]
    assert float(gw[-2]) > 10 and gw[-1] == "ok"  # resident MB of the real process, its /health
    assert "sim: 1" in status.stdout

    cancel = cli(cenv, "order", "cancel", first)
    assert cancel.returncode == 0, cancel.stdout
    assert f"{first} BUY BTCUSDT LIMIT 0.01" in cancel.stdout and "CANCELED" in cancel.stdout
    assert "already CANCELED" in cli(cenv, "order", "cancel", first).stdout
    assert "no open orders" in cli(cenv, "orders").stdout
    assert r.get("manual:seq") == last.split("-")[1].encode()


def manual_cid(text: str) -> str:
    found = re.search(r"manual-\d+", text)
    assert found, text
    return found.group(0)


def seq(cid: str) -> int:
    return int(cid.split("-")[1])


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["order", "buy", "BTCUSDT", "1", "--quote", "5"], "either QTY"),
        (["order", "buy", "BTCUSDT", "--quote", "5", "--price", "1"], "--quote is for market orders"),
        (["order", "sell", "BTCUSDT", "abc"], "not a number"),
        (["order", "sell", "BTCUSDT", "0"], "must be a positive number"),
        (["order", "buy", "BTCUSDT", "1", "--venue", "kraken"], "venue 'kraken' is not configured"),
        (["order", "cancel", "demo-000001"], "belongs to bot 'demo'"),  # a bot's order needs --force
        (["order", "cancel", "foreign-id"], "not an Automata client order id"),
        (["ticker", "BTCUSDT", "--venue", "kraken"], "venue 'kraken' is not configured"),
    ],
)
def test_usage_errors_are_refused_before_anything_is_sent(cenv, sync_redis, args, says) -> None:
    res = CliRunner().invoke(app, args, env={**cenv, **PLAIN})
    assert res.exit_code == 2, res.output
    assert says in res.output
    assert not sync_redis.exists("orders:cmd:sim:manual")


def test_an_order_stays_queued_when_no_gateway_answers(cenv, sync_redis) -> None:
    res = cli(cenv, "order", "buy", "BTCUSDT", "0.01", "--wait", "0.5")
    assert res.returncode == 1
    assert "no answer within 0.5s" in res.stdout and "orders:cmd:sim:manual" in res.stdout
    assert sync_redis.xlen("orders:cmd:sim:manual") == 1


def test_reconcile_adopts_lost_orders_and_catches_up_fills_safely_in_parallel(
    sim, cenv, gateway, sync_redis, tmp_path
) -> None:
    r = sync_redis
    price = D(sim.control.state()["prices"]["BTCUSDT"])
    assert cli(cenv, "order", "buy", "BTCUSDT", "0.01", "--price", str(price - 1000)).returncode == 0
    (cid,) = [c.decode() for c in r.smembers(og_open("sim"))]  # manual-{seq}, seq at or above the time in ms
    # Redis loses the write-ahead record (as if the last writes never reached the AOF)
    r.delete(og_order(cid))
    r.srem(og_open("sim"), cid)
    before = len(manual_updates(r, cid))

    def run_two(tag: str) -> list[str]:
        procs = [cli_proc(cenv, tmp_path / f"{tag}{i}.log", "reconcile", "sim") for i in range(2)]
        for p in procs:
            assert p.popen.wait(60) == 0, p.output()
        return [p.output() for p in procs]

    outs = run_two("adopt")  # while the gateway runs, two at once
    assert all("reconciled sim: checked " in o for o in outs)
    assert sum(int(o.split("adopted ")[1].split(",")[0]) for o in outs) == 1
    assert r.hget(og_order(cid), "adopted") == b"1" and r.sismember(og_open("sim"), cid)
    adopted = manual_updates(r, cid)[before:]
    assert [(u.status, u.reconciled) for u in adopted] == [(OrderStatus.NEW, True)]

    # the gateway is down while the order fills: reconcile tells the bot, once
    assert gateway.terminate() == 0
    sim.control.set_price("BTCUSDT", str(price - 1100))
    outs = run_two("fill")
    assert sum(int(o.split("filled while down ")[1].split(",")[0]) for o in outs) == 1
    fills = [u for u in manual_updates(r, cid) if u.status is OrderStatus.FILLED]
    assert len(fills) == 1 and fills[0].cum_filled_qty == D("0.01") and fills[0].reconciled
    assert not r.sismember(og_open("sim"), cid)
    again = cli(cenv, "reconcile", "sim", "--no-notify")
    assert "reconciled sim: checked 0, filled while down 0" in again.stdout
    summary = json.loads(cli(cenv, "reconcile", "sim", "--no-notify", "--json").stdout)
    assert summary["venue"] == "sim" and summary["checked"] == 0 and summary["unresolved"] == 0
    notes = [decode(f) for _, f in r.xrange("notify")]
    assert sum(1 for m in notes if m.kind == "reconciliation") >= 5  # the gateway's and the four CLI runs


def test_doctor_checks_redis_config_clock_and_keys(sim, cenv, sync_redis) -> None:
    cfg = Path(cenv["AUTOMATA_CONFIG"])
    with cfg.open("a") as f:  # a Binance venue on the Spot Testnet (here: the paper venue's Binance face)
        f.write(f'[venues.bintest]\nkind = "binance"\ntestnet = true\nbase_url = "{sim.base_url}"\n')
        f.write('[keys.bintest]\napi_key = "sim-key"\napi_secret = "sim-secret"\n')
    res = cli(cenv, "doctor")
    assert res.returncode == 0, res.stdout + res.stderr
    out = res.stdout
    for line in ("✓ config", "✓ redis ", "✓ redis aof", "✓ sim clock", "✓ sim keys", "– sim withdraw",
                 "✓ simbybit keys", "✓ bintest keys", "– bintest withdraw"):  # fmt: skip
        assert line in out, out
    assert "canTrade" in out and out.strip().endswith("all good")

    with cfg.open("a") as f:  # a main-net venue without keys
        f.write(f'[venues.binance]\nkind = "binance"\nbase_url = "{sim.base_url}"\n')
    sim.control.skew(5000)
    sync_redis.config_set("appendonly", "no")
    try:
        res = cli(cenv, "doctor")
    finally:
        sync_redis.config_set("appendonly", "yes")
        sim.control.skew(0)
    out = res.stdout
    assert res.returncode == 1, out
    assert "✗ redis aof" in out and "appendonly no" in out
    assert "✗ sim clock" in out and "ahead of this machine" in out and "– sim keys" in out
    assert "✗ binance keys" in out and "no API keys" in out
    assert "sim-secret" not in out + res.stderr

    away = cli({**cenv, "REDIS_URL": "redis://127.0.0.1:1/0"}, "doctor")  # Redis away: said once
    assert away.returncode == 1 and "✓ sim clock" in away.stdout and "✗ redis" in away.stdout, away.stdout
    assert "weight budget" not in away.stderr, away.stderr

    cfg.write_text("[venues.sim]\nkind = 42\n")
    broken = cli(cenv, "doctor")
    assert broken.returncode == 1 and "✗ config" in broken.stdout and "venues.sim.kind" in broken.stdout
