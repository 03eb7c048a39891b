"""A second `automata run` in the same AUTOMATA_HOME carries on trading; `--fresh` starts clean.

One demo home, run three times (the only way to test a restart): the paper venue keeps its
accounts, orders and market clock under var/exchange_sim, so after a kill -9 of the venue alone
(supervisord restarts it) and after a clean Ctrl-C and a new `automata run`, no order is lost,
the candles go on after the ones Redis kept, and the bots trade again. A bot whose candles stop
(the venue's clock paused) shows as stalled in `status` and `health` and notifies, once each way.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import urllib.request
from decimal import Decimal
from pathlib import Path
from typing import Any

import psutil
import pytest
import redis

from cli.demo import DEMO_BOTS
from services.strategy_runner.bots import load_bots
from shared.codec import decode
from shared.messages import Notification
from shared.streams import NOTIFY, candles, og_open, og_order
from tests.helpers.demo import accepted_by_bot, admin, demo_env, sim_url, stack_processes, wait_running
from tests.helpers.procs import Proc, wait_until

pytestmark = pytest.mark.slow

STREAM = candles("sim", "BTCUSDT", "1m")
UNKNOWN = "unknown to the venue"


def venue(env: dict[str, str]) -> Any:
    """python-binance's blocking Client on the demo's paper venue."""
    from binance import Client

    cls = type("SimClient", (Client,), {"API_URL": f"{sim_url(env)}/api"})
    return cls("sim-key", "sim-secret", ping=False)


def control(env: dict[str, str], path: str, body: dict[str, Any] | None = None) -> Any:
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(
        f"{sim_url(env)}/{path}", data=data, method="GET" if data is None else "POST"
    )
    request.add_header("Content-Type", "application/json")
    with urllib.request.urlopen(request, timeout=10) as reply:
        return json.loads(reply.read())


def last_candle_ms(r: redis.Redis) -> int:
    entries = r.xrevrange(STREAM, count=1)
    return int(entries[0][0].split(b"-")[0]) if entries else 0


def venue_orders(env: dict[str, str]) -> dict[int, dict[str, Any]]:
    return {o["orderId"]: o for o in venue(env).get_all_orders(symbol="BTCUSDT", limit=1000)}


def check_open_orders_known(env: dict[str, str], r: redis.Redis) -> None:
    """Every order the gateway holds open in Redis is known to the venue, with the same id."""
    client = venue(env)
    for cid in sorted(m.decode() for m in r.smembers(og_open("sim"))):
        record = {k.decode(): v.decode() for k, v in r.hgetall(og_order(cid)).items()}
        found = client.get_order(symbol=record.get("symbol", "BTCUSDT"), origClientOrderId=cid)
        assert found["clientOrderId"] == cid, (cid, found)


def sim_pid(env: dict[str, str]) -> int | None:
    """The paper venue's pid (None while supervisord has not reaped or restarted it)."""
    try:
        proc = stack_processes(env).get("exchange_sim")
    except psutil.Error:  # a child killed and not reaped yet: a zombie has no command line
        return None
    return proc.pid if proc is not None else None


def gateway_log(env: dict[str, str]) -> str:
    path = Path(env["AUTOMATA_HOME"]) / "var/log/order_gateway.log"
    return path.read_text(errors="replace") if path.exists() else ""


def cli(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "cli", *args], env=env, cwd=env["AUTOMATA_HOME"], capture_output=True, text=True,
        timeout=60,
    )  # fmt: skip


def notes(r: redis.Redis, kind: str) -> list[Notification]:
    out = []
    for _id, fields in r.xrange(NOTIFY):
        msg = decode(fields)
        if isinstance(msg, Notification) and msg.id.startswith(kind):
            out.append(msg)
    return out


def stop(demo: Proc) -> None:
    assert demo.popen is not None
    demo.popen.send_signal(signal.SIGINT)
    assert demo.popen.wait(90) == 0, demo.output()[-3000:]


def start(env: dict[str, str], log: Path, *args: str) -> Proc:
    """`automata run ARGS` in the demo's home, once it says it is running."""
    demo = Proc([sys.executable, "-m", "cli", "run", *args], env, log, cwd=Path(env["AUTOMATA_HOME"])).start()
    wait_running(demo)
    return demo


def test_restart_carries_on_trading_and_fresh_starts_clean(tmp_path: Path) -> None:
    bots = [b.id for b in load_bots(DEMO_BOTS)]
    trading = [b.id for b in load_bots(DEMO_BOTS) if b.strategy != "manual"]  # demo_manual waits for a person
    env = demo_env(tmp_path / "home")
    demos: list[Proc] = []
    try:
        # -- the first run: every bot trades
        demos.append(start(env, tmp_path / "run1.log"))
        wait_until(lambda: all(accepted_by_bot(env, trading).values()), timeout=90, interval=0.5,
                   what="an accepted order from every demo bot")  # fmt: skip
        r = admin(env)

        # -- kill -9 of the venue alone: supervisord restarts it, and it lost no order
        before = venue_orders(env)
        sim = stack_processes(env)["exchange_sim"]
        sim.send_signal(signal.SIGKILL)
        wait_until(lambda: sim_pid(env) not in (None, sim.pid), timeout=60, interval=0.5,
                   what="supervisord to restart the paper venue")  # fmt: skip
        after = wait_until(lambda: _try(venue_orders, env), timeout=60, interval=0.5, what="the venue back")
        assert set(before) <= set(after), sorted(set(before) - set(after))
        for oid, order in before.items():  # the same order, only further along
            assert after[oid]["clientOrderId"] == order["clientOrderId"]
            assert Decimal(after[oid]["executedQty"]) >= Decimal(order["executedQty"])

        # -- Ctrl-C, then `automata run` again in the same home
        candle_before = wait_until(lambda: last_candle_ms(r), what="a candle in Redis")
        market_before = control(env, "health")["market_time"]
        orders_before = len(venue_orders(env))
        versions = {bot: json.loads(r.get(f"bot:{bot}:state"))["version"] for bot in bots}
        r.close()
        stop(demos[-1])
        demos.append(start(env, tmp_path / "run2.log"))
        r = admin(env)
        # every bot carries on from its state: Redis replayed every transaction of its file
        assert all(json.loads(r.get(f"bot:{b}:state"))["version"] >= v for b, v in versions.items()), versions
        assert "NOPERM" not in (Path(env["AUTOMATA_HOME"]) / "var" / "redis" / "redis.log").read_text()
        assert control(env, "health")["market_time"] > market_before  # never back in market time
        wait_until(lambda: last_candle_ms(r) > candle_before, timeout=60, interval=0.2,
                   what="a new candle after the ones Redis kept")  # fmt: skip
        wait_until(lambda: len(venue_orders(env)) > orders_before or accepted_by_bot(env, bots) != {b: [] for b in bots},
                   timeout=90, interval=0.5, what="a new order after the restart")  # fmt: skip
        check_open_orders_known(env, r)
        assert UNKNOWN not in gateway_log(env)  # neither after the kill -9 nor after the restart

        # -- the venue's clock stops: every bot stalled in status and health, notified once
        control(env, "control/speed", {"speed": 0})
        shown = wait_until(lambda: _stalled(env, bots), timeout=60, interval=1, what="the bots shown stalled")
        assert set(shown) == set(bots)
        # with the market still, nothing is in flight: the venue, the gateway's write-ahead log
        # and the bots' states agree on which orders are open
        at_venue = {o["clientOrderId"] for o in venue(env).get_open_orders(symbol="BTCUSDT")}
        in_redis = {m.decode() for m in r.smembers(og_open("sim"))}
        held = {
            cid for bot in bots for cid in json.loads(r.get(f"bot:{bot}:state"))["state"].get("orders", {})
        }
        assert at_venue == in_redis == held, (at_venue ^ in_redis, in_redis ^ held)
        health = cli(env, "health")
        assert health.returncode == 1 and "stalled" in health.stdout, health.stdout + health.stderr
        wait_until(lambda: {n.bot for n in notes(r, "bot_stalled")} == set(bots), timeout=30,
                   what="a stall notification from every bot")  # fmt: skip
        control(env, "control/speed", {"speed": 120})
        wait_until(lambda: {n.bot for n in notes(r, "bot_recovered")} == set(bots), timeout=60,
                   what="a recovery notification from every bot")  # fmt: skip
        stalls = {n.id for n in notes(r, "bot_stalled")}
        assert len(stalls) == len(bots)  # once each, not once a check
        wait_until(lambda: cli(env, "health").returncode == 0, timeout=30, what="health ok again")
        r.close()
        stop(demos[-1])

        # -- --fresh: Redis's data and the venue's state are gone, the market starts over (slowly
        # here, so it cannot catch up with where the first run was before the test looks)
        demos.append(start({**env, "SIM_SPEED": "12"}, tmp_path / "run3.log", "--fresh"))
        assert "a fresh start: removed" in demos[-1].output()
        assert control(env, "health")["market_time"] < market_before
        r = admin(env)
        assert not stalls & {n.id for n in notes(r, "bot_stalled")}
        assert all(int(o["time"]) < market_before for o in venue_orders(env).values())
        r.close()
        stop(demos[-1])
    finally:
        for demo in demos:
            demo.kill()
        _kill_leftovers(env)


def _try(fn: Any, *args: Any) -> Any:
    try:
        return fn(*args) or True
    except Exception:
        return None


def _stalled(env: dict[str, str], bots: list[str]) -> list[str] | None:
    result = cli(env, "status", "--json")
    if result.returncode != 0:
        return None
    doc = json.loads(result.stdout)
    stalled = [b["bot"] for b in doc["bots"] if b.get("stalled")]
    return stalled if set(stalled) == set(bots) else None


def _kill_leftovers(env: dict[str, str]) -> None:
    try:
        procs = stack_processes(env)
    except (OSError, ValueError, KeyError, psutil.Error):
        return
    for proc in procs.values():
        try:
            os.kill(proc.pid, signal.SIGKILL)
        except OSError:
            pass


def test_redis_data_without_a_saved_venue_is_refused_with_the_remedy(tmp_path: Path) -> None:
    """A home from before the venue kept its state: running on would freeze silently (a market
    older than the candles Redis kept), so `automata run` refuses and names --fresh."""
    env = demo_env(tmp_path / "home")
    aof = Path(env["AUTOMATA_HOME"]) / "var/redis/appendonlydir"
    aof.mkdir(parents=True)
    (aof / "appendonly.aof.1.incr.aof").write_bytes(b"")
    res = cli(env, "run")
    assert res.returncode == 2, res.stdout + res.stderr
    assert "--fresh" in res.stdout and "no saved state" in res.stdout and "Traceback" not in res.stderr
    assert not (Path(env["AUTOMATA_HOME"]) / "var/run/automata.json").exists()  # nothing started
