"""A strategy runner publishes its bot's decisions to `bot:{bot}:decisions` as its own Redis user
under the generated ACL (a real redis-server), keeps them in its log, and `automata tail
decisions --bot ID` shows them; another runner's user can neither write nor read them."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import redis
from redis.exceptions import NoPermissionError

from shared import redis_acl
from shared.codec import decode, encode
from shared.messages import Decision
from shared.redis_acl import Runner
from shared.streams import bot_decisions
from tests.helpers.acl import start_acl_redis
from tests.helpers.bots import add_candle, candle, publish_filters, reading_candles, write_bots
from tests.helpers.procs import ROOT, base_env, python, wait_until
from tests.helpers.syncs import SyncAnswerer

RUNNERS = [Runner("bot_d1", "d1", (("d1", "sim"),)), Runner("bot_d2", "d2", (("d2", "sim"),))]
GRID = {"id": "d1", "strategy": "grid", "venue": "sim", "symbol": "BTCUSDT", "interval": "1m", "lease_ms": 1500,
        "params": {"lower": "40000", "upper": "44000", "levels": 5, "quote_per_level": 100}}  # fmt: skip
SAID = [
    "no entry: price 27,000.00 below the grid's range 40,000.00–44,000.00",
    "grid started at 42,100.00 in its range 40,000.00–44,000.00: 2 buys below, 2 sells above "
    "(buying 0.0047 BTC at market for them)",
]


def client(port: int, secrets: Path, user: str) -> redis.Redis:
    return redis.Redis(port=port, username=user, password=(secrets / user).read_text().strip())


@pytest.fixture
def acl(tmp_path: Path):
    secrets = tmp_path / "secrets"
    server = start_acl_redis(tmp_path / "redis", secrets, RUNNERS)
    answerer = SyncAnswerer(server.url)  # the admin's URL: it plays the order gateway's sync answer
    answerer.start()
    try:
        yield server, secrets
    finally:
        answerer.stop()
        server.kill()


def test_a_runner_publishes_and_logs_its_decisions_and_tail_shows_them(acl, tmp_path: Path) -> None:
    server, secrets = acl
    admin = client(server.port, secrets, redis_acl.ADMIN)
    publish_filters(admin)
    env = base_env(
        f"redis://127.0.0.1:{server.port}/0", REDIS_USER="bot_d1", REDIS_PASSWORD_FILE=str(secrets / "bot_d1"),
        AUTOMATA_BOTS=str(write_bots(tmp_path / "bots.toml", GRID)), CONSUMER_NAME="d1", INSTANCE="d1",
    )  # fmt: skip
    proc = python(
        "services.strategy_runner", "--bot", "d1", env=env, log_path=tmp_path / "runner.log"
    ).start()
    try:
        wait_until(lambda: reading_candles(admin, "d1"), timeout=30, what="the runner's candle group")
        for i, close in enumerate(["27000", "27050", "26990"]):  # below the range: said once
            add_candle(admin, candle(i, close, close))
        add_candle(admin, candle(3, "41900", "42100"))
        wait_until(lambda: admin.xlen(bot_decisions("d1")) >= 2, timeout=30, what="two decisions")
        wait_until(lambda: SAID[1] in proc.output(), timeout=10, what="the decision in the runner's log")
    finally:
        assert proc.terminate() == 0, proc.output()[-3000:]
    entries = admin.xrange(bot_decisions("d1"))
    assert [decode(f).text for _, f in entries] == SAID  # type: ignore[attr-defined]
    logged = [json.loads(line) for line in proc.output().splitlines() if line.startswith("{")]
    kept = [d for d in logged if d["msg"].removeprefix("bot d1: ") in SAID]
    assert [d["msg"] for d in kept] == [f"bot d1: {text}" for text in SAID]  # each once, in order
    assert kept[0]["bot"] == "d1" and kept[0]["price"] == "27000"
    # another bot's runner may neither forge nor read this bot's decisions
    other = client(server.port, secrets, "bot_d2")
    fake = encode(Decision(bot="d1", text="forged"))
    for call in (lambda: other.xadd(bot_decisions("d1"), fake), lambda: other.xrange(bot_decisions("d1"))):
        with pytest.raises(NoPermissionError):
            call()
    other.close()
    # the CLI, as the admin: one readable line per decision
    cli_env = base_env(server.url, AUTOMATA_HOME=str(tmp_path / "home"))
    tail = subprocess.run([sys.executable, "-m", "cli", "tail", "decisions", "--bot", "d1"], env=cli_env,
                          capture_output=True, text=True, timeout=60, cwd=ROOT)  # fmt: skip
    assert tail.returncode == 0, tail.stderr
    shown = [" ".join(line.split()) for line in tail.stdout.splitlines()]
    assert [line.split(" d1: ", 1)[1] for line in shown] == SAID, tail.stdout
    assert shown[0].startswith("2023-11-14 22:14:19 d1: ")  # the time of its candle's close
    bad = subprocess.run([sys.executable, "-m", "cli", "tail", "decisions", "--bot", "no-such-bot!"], env=cli_env,
                         capture_output=True, text=True, timeout=60, cwd=ROOT)  # fmt: skip
    assert bad.returncode == 2 and "invalid bot id" in bad.stdout + bad.stderr
    admin.close()
