"""The ledger while the demo trades (issue 15): SIGKILLed at random moments, its database (a real
PostgreSQL) killed and restarted; afterwards, and after `automata ledger sync`, its fills are
the paper venue's trades one row per trade, and each bot's realised profit in the ledger is the
bot's own figure.

Real parts throughout: `automata run` (Redis, the paper venue, every service under supervisord,
the demo bots) in a temporary home on free ports, the ledger process killed with SIGKILL (and
restarted by supervisord), the PostgreSQL cluster of the `postgres` fixture killed and started.
The paper venue runs faster than the demo's speed so that the bots trade within seconds; the
market is then stopped (speed 0: no more candles, so no more fills) for the comparison.
"""

from __future__ import annotations

import contextlib
import os
import random
import signal
from collections.abc import Callable, Iterator
from decimal import Decimal
from pathlib import Path

import orjson
import psutil
import pytest
import redis
import sqlalchemy as sa

from shared import streams as s
from shared.ledger import schema as t
from shared.ledger.db import open_ledger
from tests.helpers.demo import demo_env, journal, run_state, sim_url, start_demo, wait_running
from tests.helpers.procs import python, wait_until
from tests.helpers.sim import SimControl

SPEED = "600"  # market minutes per wall minute: a 1m candle every 0.1 s
KILLS = 4
DROPPED_S = 5  # for this long the paper venue sends no trade event
# the fractal bot protects BTC it holds from before (a position the ledger never saw bought):
# its realised profit counts that position's cost, the ledger's cannot; its fills are compared
PROFIT_BOTS = ("demo_dca", "demo_grid")
# the bots' arithmetic runs at 28 significant digits, the ledger keeps NUMERIC(38, 18) (and on
# PostgreSQL continues from the stored, rounded position after a restart): equal to 12 places
PRECISION = Decimal("1e-12")


def admin(env: dict[str, str]) -> redis.Redis:
    password = (Path(env["AUTOMATA_HOME"]) / "var/secrets/redis/admin").read_text().strip()
    return redis.Redis(port=int(env["AUTOMATA_REDIS_PORT"]), username="admin", password=password)


def venue_trades(env: dict[str, str]) -> dict[str, tuple[str, Decimal, Decimal]]:
    """The paper venue's trades of the bots' orders: trade id -> (cid, qty, price)."""
    out = {}
    for entry in journal(env):
        if entry.get("kind") == "trade" and "-" in (entry.get("client_order_id") or ""):
            trade = entry["trade"]
            out[str(trade["trade_id"])] = (
                entry["client_order_id"],
                Decimal(trade["qty"]),
                Decimal(trade["price"]),
            )
    return out


def ledger_fills(engine: sa.Engine) -> list[tuple[str | None, str, Decimal, Decimal]]:
    f = t.fills.c
    try:
        with engine.connect() as conn:
            return [tuple(r) for r in conn.execute(sa.select(f.trade_id, f.cid, f.qty, f.price))]
    except sa.exc.DBAPIError:
        return []  # the schema is not there yet, or the server is down


def ingested(engine: sa.Engine) -> int:
    try:
        with engine.connect() as conn:
            return conn.execute(sa.select(sa.func.count()).select_from(t.ingested)).scalar() or 0
    except sa.exc.DBAPIError:
        return 0


def ledger_pid(env: dict[str, str]) -> int | None:
    """The running ledger's pid (a killed one not yet reaped is a zombie: not it)."""
    for child in psutil.Process(run_state(env)["supervisord"]["pid"]).children():
        try:
            if "services.ledger" in child.cmdline():
                return child.pid
        except psutil.Error:
            continue
    return None


def kill_ledger(env: dict[str, str]) -> None:
    """SIGKILL the ledger; supervisord starts a new one."""
    pid = ledger_pid(env)
    assert pid is not None, "the ledger is running"
    os.kill(pid, signal.SIGKILL)
    wait_until(lambda: ledger_pid(env) not in (None, pid), timeout=30, interval=0.1, what="a new ledger")


def caught_up(r: redis.Redis) -> bool:
    """The ledger has read and written every bot's order updates."""
    for key in r.scan_iter(match=s.ANY_ORDER_EVENTS, _type="stream"):
        groups = {g["name"].decode(): g for g in r.xinfo_groups(key)}
        group = groups.get(s.GROUP_LEDGER)
        if group is None or group.get("lag") != 0 or group["pending"] != 0:
            return False
    return True


def bot_realised(r: redis.Redis, bot: str) -> Decimal:
    """The bot's own figure, to PRECISION."""
    raw = r.get(s.bot_state(bot))
    realised = Decimal(orjson.loads(raw)["state"]["position"].get("realised", "0")) if raw else Decimal(0)
    return realised.quantize(PRECISION)


def ledger_realised(engine: sa.Engine, bot: str) -> Decimal:
    """The bot's realised profit after its last fill in the ledger (one symbol each), to PRECISION."""
    f = t.fills.c
    with engine.connect() as conn:
        last = conn.execute(sa.select(f.realised_total).where(f.bot == bot).order_by(f.id.desc()).limit(1))
        return (last.scalar() or Decimal(0)).quantize(PRECISION)


def sync(env: dict[str, str], logs: Path, name: str) -> str:
    logs.mkdir(parents=True, exist_ok=True)
    proc = python("cli", "ledger", "sync", env=env, log_path=logs / f"{name}.log")
    proc.cwd = Path(env["AUTOMATA_HOME"])
    assert proc.start().popen is not None
    assert proc.popen.wait(120) == 0, proc.output()
    return proc.output()


@pytest.fixture
def demo_home(tmp_path: Path) -> Iterator[dict[str, str]]:
    env = demo_env(tmp_path / "home")
    env["SIM_SPEED"] = SPEED
    yield env


def settle_and_check(
    env: dict[str, str], logs: Path, r: redis.Redis, engine: sa.Engine, control: SimControl
) -> None:
    """Stop the market (no more candles: the bots stop trading), wait for the ledger to read
    everything, sync twice, then compare trade by trade and each bot's realised profit."""
    control.speed(0)
    trades = wait_until(
        lambda: caught_up(r) and len(ledger_fills(engine)) >= len(v := venue_trades(env)) and v,
        timeout=60,
        interval=0.2,
        what="the ledger caught up with the venue",
    )
    derived = [row for row in ledger_fills(engine) if row[0] is None]
    said = sync(env, logs, "sync")
    assert f"sim: {len(trades)} venue trade(s) read: " in " ".join(said.split()), said
    if derived:  # each a single trade (polling saw one fill at a time), or replaced by its trades
        assert "every fill already has its trade id" not in said, said
    fills = ledger_fills(engine)
    assert len(fills) == len(trades) and all(trade_id is not None for trade_id, *_ in fills), (fills, trades)
    assert {tid: (cid, qty, price) for tid, cid, qty, price in fills} == trades
    again = sync(env, logs, "sync-again")
    assert "every fill already has its trade id" in again, again
    assert ledger_fills(engine) == fills
    for bot in PROFIT_BOTS:
        with contextlib.suppress(AssertionError):  # the bot may still be applying its last updates
            wait_until(lambda bot=bot: bot_realised(r, bot) == ledger_realised(engine, bot), timeout=30)
        assert bot_realised(r, bot) == ledger_realised(engine, bot), bot


def trade_with_kills(
    env: dict[str, str], tmp_path: Path, url: str, outage: Callable[[], Callable[[], None]] | None = None
) -> None:
    """Run the demo, SIGKILL the ledger KILLS times at random moments (and, with `outage`, kill
    the database midway: it returns what starts it again), stop the market and check; trade on,
    stop and check again."""
    demo = start_demo(env, tmp_path / "run.log")
    engine = open_ledger(url, source="test")
    seed = random.randrange(2**32)
    print(f"kill moments: random.Random({seed})")  # shown with a failure, to replay it
    rng = random.Random(seed)
    try:
        wait_running(demo)
        r = admin(env)
        control = SimControl(sim_url(env))
        # trades the user stream never tells: the order gateway learns them by polling, as
        # growth without a trade id (derived fills, for `automata ledger sync` to settle)
        for kill in range(KILLS):
            if kill == 1:
                control.fault(
                    "drop_event", seconds=DROPPED_S, match={"event": "executionReport", "exec_type": "TRADE"}
                )
            target = ingested(engine) + rng.randint(1, 40)  # mid-stream: somewhere in the next batches
            wait_until(
                lambda n=target: ingested(engine) >= n, timeout=60, interval=0.05, what=f"{target} entries"
            )
            kill_ledger(env)
            if outage is not None and kill == KILLS // 2:
                restart = outage()
                trades = len(venue_trades(env))  # the bots trade on while the database is away
                wait_until(lambda n=trades: len(venue_trades(env)) > n, timeout=60, what="a trade meanwhile")
                restart()
        wait_until(lambda: len(venue_trades(env)) >= 6, timeout=60, what="six trades")
        settle_and_check(env, tmp_path / "first", r, engine, control)
        # trading on after a sync: the ledger service continues from the fills the sync wrote
        control.speed(float(SPEED))
        before = len(venue_trades(env))
        wait_until(lambda: len(venue_trades(env)) >= before + 3, timeout=60, what="three more trades")
        settle_and_check(env, tmp_path / "second", r, engine, control)
        r.close()
    finally:
        engine.dispose()
        if demo.popen is not None and demo.alive():
            demo.popen.send_signal(signal.SIGINT)
            try:
                demo.popen.wait(60)
            except Exception:
                demo.kill()


@pytest.mark.slow
def test_sqlite_ledger_sigkilled_while_the_demo_trades_holds_every_venue_trade_once(
    demo_home: dict[str, str], tmp_path: Path
) -> None:
    url = f"sqlite:///{Path(demo_home['AUTOMATA_HOME']) / 'var/ledger.sqlite3'}"
    trade_with_kills(demo_home, tmp_path, url)


@pytest.mark.slow
def test_postgresql_ledger_and_server_killed_while_the_demo_trades_holds_every_venue_trade_once(
    demo_home: dict[str, str], tmp_path: Path, postgres, pg_url: str
) -> None:
    if postgres.cluster is None:
        pytest.skip("TEST_DATABASE_URL: a server this test cannot kill")
    (Path(demo_home["AUTOMATA_HOME"]) / ".env").write_text(f"DATABASE_URL={pg_url}\n")  # the ledger's alone

    def outage() -> Callable[[], None]:
        postgres.cluster.kill()
        return postgres.cluster.start

    trade_with_kills(demo_home, tmp_path, pg_url, outage)
