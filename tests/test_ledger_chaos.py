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
from collections import defaultdict
from collections.abc import Callable, Iterator
from decimal import Decimal
from pathlib import Path

import orjson
import psutil
import pytest
import redis
import sqlalchemy as sa

from cli.demo import DEMO_BOTS
from services.strategy_runner.bots import load_bots
from shared import streams as s
from shared.codec import encode
from shared.ledger import schema as t
from shared.ledger.db import open_ledger
from shared.messages import BotControl, ControlAction
from tests.helpers.demo import demo_env, journal, run_state, sim_url, start_demo, wait_running
from tests.helpers.procs import python, wait_until
from tests.helpers.sim import SimControl

SPEED = "600"  # market minutes per wall minute: a 1m candle every 0.1 s
BOTS = [b.id for b in load_bots(DEMO_BOTS)]
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


def trim_behind_a_stopped_ledger(env: dict[str, str], r: redis.Redis) -> None:
    """SIGSTOP the ledger; once the bots have traded on, trim each bot's order updates up to
    what the bot itself has read (what MAXLEN does to a ledger that is down), then SIGKILL the
    ledger: the new one reports the gap, and `automata ledger sync` must fill it."""
    pid = ledger_pid(env)
    assert pid is not None
    os.kill(pid, signal.SIGSTOP)
    try:
        before = len(venue_trades(env))
        wait_until(lambda: len(venue_trades(env)) >= before + 2, timeout=60, what="trades the ledger misses")
        for key in r.scan_iter(match=s.ANY_ORDER_EVENTS, _type="stream"):
            bot = s.order_events_bot(key.decode())
            groups = {g["name"].decode(): g for g in r.xinfo_groups(key)}
            if bot is not None and s.bot_group(bot) in groups:
                ms, seq = groups[s.bot_group(bot)]["last-delivered-id"].decode().split("-")
                r.xtrim(key, minid=f"{ms}-{int(seq) + 1}")  # all the bot has read
    finally:
        os.kill(pid, signal.SIGKILL)
    wait_until(lambda: ledger_pid(env) not in (None, pid), timeout=30, interval=0.1, what="a new ledger")


def caught_up(r: redis.Redis, streams: str = s.ANY_ORDER_EVENTS, group_name: str = s.GROUP_LEDGER) -> bool:
    """The group (the ledger's, by default) has read and handled every entry of the streams
    (services/ledger/sync.py's rule: it was handed each stream's newest entry, holds none unacked)."""
    for key in r.scan_iter(match=streams, _type="stream"):
        group = next((g for g in r.xinfo_groups(key) if g["name"].decode() == group_name), None)
        newest = r.xinfo_stream(key).get("last-entry")
        if group is None or group["pending"]:
            return False
        handed = tuple(map(int, group["last-delivered-id"].decode().split("-")))
        if newest is not None and handed < tuple(map(int, newest[0].decode().split("-"))):
            return False
    return True


def control_bots(r: redis.Redis, action: ControlAction) -> None:
    """Pause or resume every demo bot (as `automata pause` does) and wait until each applied it."""
    for bot in BOTS:
        entry = r.xadd(s.bot_control(bot), encode(BotControl(bot=bot, action=action, source="test"))).decode()

        def applied(bot: str = bot, entry: str = entry) -> bool:
            raw = r.get(s.bot_state(bot))
            done = orjson.loads(raw).get("last_applied", {}).get(s.bot_control(bot), "0-0") if raw else "0-0"
            return tuple(map(int, done.split("-"))) >= tuple(map(int, entry.split("-")))

        wait_until(applied, timeout=30, interval=0.1, what=f"{bot} applying {action.value}")


def settled(env: dict[str, str], r: redis.Redis) -> dict[str, tuple[str, Decimal, Decimal]] | None:
    """The venue's trades once the order gateway's records hold every one of them (each
    order's filled quantity) and the ledger has read every update the gateway published."""
    trades = venue_trades(env)
    filled: dict[str, Decimal] = defaultdict(Decimal)
    for cid, qty, _price in trades.values():
        filled[cid] += qty
    for cid, qty in filled.items():
        recorded = r.hget(s.og_order(cid), "cum_filled_qty")
        if recorded is None or Decimal(recorded.decode()) != qty:
            return None
    if not trades or not caught_up(r, "orders:cmd:sim:*", s.GROUP_ORDER_GATEWAY):  # nothing on its way
        return None
    return trades if caught_up(r) else None


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
    """Pause the bots and stop the market (no more candles), wait until the gateway knows every
    trade and the ledger has read everything, sync twice, then compare trade by trade and each
    bot's realised profit."""
    control_bots(r, ControlAction.PAUSE)  # no new orders
    control.speed(0)  # no more candles: resting orders stay as they are
    trades = wait_until(
        lambda: settled(env, r), timeout=60, interval=0.2, what="the gateway and the ledger settled"
    )
    derived = [row for row in ledger_fills(engine) if row[0] is None]
    said = sync(env, logs, "sync")
    assert f"sim: {len(trades)} venue trade(s) read: " in " ".join(said.split()), said
    if derived:  # each a single trade (polling saw one fill at a time), or replaced by its trades
        assert "every fill already has its trade id" not in said, said
    fills = ledger_fills(engine)
    assert len(fills) == len(trades) and all(trade_id is not None for trade_id, *_ in fills), (fills, trades)
    assert {tid: (cid, qty, price) for tid, cid, qty, price in fills} == trades
    makers = {e["trade"]["trade_id"]: e["trade"]["maker"] for e in journal(env) if e.get("kind") == "trade"}
    with engine.connect() as conn:  # from the live update (Binance "m") or the sync (myTrades isMaker)
        rows = conn.execute(sa.select(t.fills.c.trade_id, t.fills.c.is_maker)).all()
    assert {tid: maker for tid, maker in rows} == {str(tid): makers[int(tid)] for tid, _ in rows}
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
            if kill == KILLS - 1:
                trim_behind_a_stopped_ledger(env, r)
            else:
                kill_ledger(env)
            if outage is not None and kill == KILLS // 2:
                restart = outage()
                trades = len(venue_trades(env))  # the bots trade on while the database is away
                wait_until(lambda n=trades: len(venue_trades(env)) > n, timeout=60, what="a trade meanwhile")
                restart()
        wait_until(lambda: len(venue_trades(env)) >= 6, timeout=60, what="six trades")
        settle_and_check(env, tmp_path / "first", r, engine, control)
        # trading on after a sync: the ledger service continues from the fills the sync wrote
        control_bots(r, ControlAction.RESUME)
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
