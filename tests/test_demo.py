"""The one-command demo: `automata run` in an empty AUTOMATA_HOME brings up Redis, the paper venue,
every service and the three demo bots; each bot trades on the paper venue; the CLI shows them;
Ctrl-C stops everything with exit 0 and leaves no process behind."""

from __future__ import annotations

import os
import signal
import urllib.error
import urllib.request
from decimal import Decimal
from pathlib import Path

import orjson
import psutil
import pytest
import redis
import sqlalchemy as sa
from redis.backoff import NoBackoff
from redis.retry import Retry

from cli.demo import DEMO_BOTS
from cli.main import command_names
from services.strategy_runner.bots import load_bots
from shared.ledger import schema
from shared.ledger.db import open_ledger
from tests.helpers.demo import accepted_by_bot, demo_env, stack_processes, start_demo, wait_running
from tests.helpers.procs import python, wait_until

SERVICES = {"market_gateway", "order_gateway", "notifier", "ledger", "web", "strategy_runner"}


def ledger_bots(engine: sa.Engine) -> set[str]:
    """The bots with fills in the ledger (none while its schema is not there yet)."""
    try:
        with engine.connect() as conn:
            return set(conn.execute(sa.select(schema.fills.c.bot).distinct()).scalars())
    except sa.exc.DBAPIError:
        return set()


def healthy(port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=5) as reply:
            return orjson.loads(reply.read()).get("ok") is True
    except OSError:  # 503 while a check fails, or not listening yet
        return False


def gone(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


def profit_fills(env: dict[str, str], tmp_path: Path) -> int:
    """The demo bots' fills `automata profit` counts."""
    return sum(p["fills"] for p in orjson.loads(cli(env, tmp_path, "profit", "--json"))["bots"])


def cli(env: dict[str, str], tmp_path: Path, *args: str) -> str:
    logs = len(list(tmp_path.glob(f"{args[0]}-*.log")))  # one log a run: its output alone
    proc = python("cli", *args, env=env, log_path=tmp_path / f"{args[0]}-{logs}.log")
    proc.cwd = Path(env["AUTOMATA_HOME"])
    assert proc.start().popen is not None
    assert proc.popen.wait(60) == 0, proc.output()
    return proc.output()


def check_acl(env: dict[str, str], procs: dict[str, psutil.Process]) -> None:
    """The demo runs as production does: Redis refuses a client without a password, every service
    has its own user and was never refused a command, and no program's environment holds a
    password (each names its own password file)."""
    port = int(env["AUTOMATA_REDIS_PORT"])
    secrets = Path(env["AUTOMATA_HOME"]) / "var/secrets/redis"
    with pytest.raises(redis.exceptions.AuthenticationError):
        redis.Redis(port=port, retry=Retry(NoBackoff(), 0)).ping()  # a refused AUTH, not retried
    admin = redis.Redis(port=port, username="admin", password=(secrets / "admin").read_text().strip())
    try:
        assert admin.acl_log() == [], admin.acl_log()
        users = {c["user"] for c in admin.client_list()}
        assert {"market_gateway", "order_gateway", "notifier", "ledger", "web", "bots_demo"} <= users, users
    finally:
        admin.close()
    passwords = [p.read_text().strip() for p in secrets.iterdir() if p.name != "users.acl"]
    for name in (
        "market_gateway",
        "order_gateway",
        "notifier",
        "ledger",
        "web",
        "bots_demo",
        "exchange_sim",
        "supervisord",
    ):
        environ = Path(f"/proc/{procs[name].pid}/environ").read_text()
        assert not any(pw in environ for pw in passwords), f"a Redis password in {name}'s environment"
        if name not in ("exchange_sim", "supervisord"):
            assert f"REDIS_PASSWORD_FILE={secrets / name}" in environ.split("\0"), name


def check_dashboard(env: dict[str, str], banner: str) -> None:
    """The banner names the dashboard; with the token `automata run` wrote, its API shows the
    balances the paper venue reports and the three bots; without it, nothing."""
    base = f"http://127.0.0.1:{env['WEB_PORT']}"
    assert f"Dashboard: {base}/" in banner, banner
    token = (Path(env["AUTOMATA_HOME"]) / "var/secrets/web_token").read_text().strip()
    assert token not in banner

    def get(path: str, auth: bool = True) -> tuple[int, dict]:
        headers = {"Authorization": f"Bearer {token}"} if auth else {}
        try:
            with urllib.request.urlopen(
                urllib.request.Request(base + path, headers=headers), timeout=10
            ) as reply:
                return reply.status, orjson.loads(reply.read())
        except urllib.error.HTTPError as exc:
            return exc.code, {}

    assert get("/api/balances", auth=False)[0] == 401
    balances = wait_until(lambda: (doc := get("/api/balances")[1]) and doc["accounts"] and doc, timeout=30,
                          what="balances on the dashboard")  # fmt: skip
    (account,) = balances["accounts"]
    assert account["venue"] == "sim" and "USDT" in {b["asset"] for b in account["balances"]}
    assert {b["bot"] for b in get("/api/bots")[1]["bots"]} == {b.id for b in load_bots(DEMO_BOTS)}


@pytest.mark.slow
def test_demo_runs_three_bots_that_trade_and_ctrl_c_stops_everything(tmp_path: Path) -> None:
    bots = [b.id for b in load_bots(DEMO_BOTS)]
    trading = [b.id for b in load_bots(DEMO_BOTS) if b.strategy != "manual"]  # demo_manual waits for a person
    assert len(trading) == 3 and len(bots) == 4
    env = demo_env(tmp_path / "home")
    log = tmp_path / "run.log"
    demo = start_demo(env, log)
    pids: list[int] = []
    try:
        wait_running(demo)
        procs = stack_processes(env)
        pids = [p.pid for p in procs.values()]
        # the three demo bots share one strategy_runner process (deploy/bots.demo.toml: process "demo")
        assert {"redis", "exchange_sim", "bots_demo"} <= set(procs), procs

        # every service healthy: its heartbeat names its pid, its /health says ok
        def beats() -> list[dict]:
            lines = cli(env, tmp_path, "health", "--json").splitlines()
            return [orjson.loads(line) for line in lines if line.startswith("{")]

        def all_healthy() -> list[dict] | None:
            found = beats()
            ok = {b["service"] for b in found} == SERVICES and all(healthy(b["metrics_port"]) for b in found)
            return found if ok else None

        found = wait_until(all_healthy, timeout=60, interval=0.5, what="every service healthy")
        runners = [b for b in found if b["service"] == "strategy_runner"]
        assert [(b["instance"], b["bots"]) for b in runners] == [("demo", bots)]
        assert {b["pid"] for b in found} <= set(pids)

        # every demo bot has orders the paper venue accepted (its journal, by cid prefix)
        orders = wait_until(
            lambda: (o := accepted_by_bot(env, trading)) and all(o.values()) and o,
            timeout=60,
            interval=0.5,
            what="an accepted order from every demo bot",
        )
        assert {o["symbol"] for placed in orders.values() for o in placed} == {"BTCUSDT"}
        # the ledger keeps what they traded (demo_dca's first order is a market buy: it fills)
        ledger = open_ledger(f"sqlite:///{Path(env['AUTOMATA_HOME']) / 'var/ledger.sqlite3'}", source="test")
        wait_until(
            lambda: "demo_dca" in ledger_bots(ledger), timeout=60, interval=0.5, what="a fill in the ledger"
        )
        ledger.dispose()
        shown = cli(env, tmp_path, "status" if "status" in command_names() else "bots")
        for bot in bots:
            assert bot in shown, shown
        check_dashboard(env, demo.output())
        said = cli(env, tmp_path, "tail", "decisions", "--bot", "demo_dca")  # why it acts, in words
        assert "demo_dca: cycle 1 opened: market buy for 20.00 USDT at about " in said, said
        # `automata trade` works out of the box: demo_manual buys at market, then its exit OCO goes out
        traded = " ".join(
            cli(
                env, tmp_path, "trade", "buy", "BTCUSDT", "--quote", "100", "--tp", "2%", "--sl", "1%"
            ).split()
        )
        assert "sent to demo_manual" in traded and "; entry demo_manual-000001" in traded, traded
        assert "entry demo_manual-000001 BUY BTCUSDT MARKET" in traded and "FILLED" in traded, traded
        wait_until(lambda: len(accepted_by_bot(env, ["demo_manual"])["demo_manual"]) == 3, timeout=30, interval=0.5,
                   what="demo_manual's entry and the two legs of its exit OCO at the venue")  # fmt: skip
        # `automata profit` fills up as the demo trades (issue 15: "make run shows it")
        first = wait_until(
            lambda: profit_fills(env, tmp_path), timeout=60, interval=0.5, what="fills in profit"
        )
        wait_until(
            lambda: profit_fills(env, tmp_path) > first, timeout=120, interval=1, what="profit filling up"
        )
        assert "demo_dca" in cli(env, tmp_path, "profit")
        # `automata equity`: the valued part of the account, naming what the ledger has no price for
        equity = wait_until(
            lambda: orjson.loads(cli(env, tmp_path, "equity", "--json")),
            timeout=60,
            interval=0.5,
            what="equity",
        )
        assert [(e["venue"], e["quote_asset"]) for e in equity] == [("sim", "USDT")]
        assert "ETH" in equity[0]["unvalued"] and Decimal(equity[0]["last"]["value"]) > 0
        assert "excludes: " in cli(env, tmp_path, "equity")

        check_acl(env, procs)

        assert demo.popen is not None
        demo.popen.send_signal(signal.SIGINT)
        assert demo.popen.wait(90) == 0, demo.output()[-3000:]
        assert all(gone(pid) for pid in pids), "nothing left running"
        assert not (Path(env["AUTOMATA_HOME"]) / "var/run/automata.json").exists()
    finally:
        demo.kill()
        for pid in pids:
            if not gone(pid):
                os.kill(pid, signal.SIGKILL)
