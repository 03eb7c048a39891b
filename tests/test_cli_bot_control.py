"""`automata pause|resume|stop|close` on a bot of one's own, as the strategy guide's user meets it:
a bot named `boom` (rich turned `bot:boom:control` into an emoji), and `resume --wait` on a bot
whose strategy fails again on the entry it kept (it said "has not applied it yet (is its runner
running?)" while the runner had applied the resume and paused the bot again)."""

from __future__ import annotations

import json

import pytest

from shared.streams import bot_state
from tests.helpers.bots import add_candle, candle, publish_filters, reading_candles, write_bots
from tests.helpers.cli import cli
from tests.helpers.procs import python, wait_until

pytestmark = pytest.mark.usefixtures("answer_syncs")  # no order gateway: the test answers the sync

BOT = {"id": "boom", "strategy": "tests.helpers.scripted:Scripted", "venue": "sim", "symbol": "BTCUSDT",
       "interval": "1m", "params": {"fail_on": "13"}}  # fmt: skip


def _doc(r) -> dict:
    raw = r.get(bot_state("boom"))
    return json.loads(raw) if raw else {}


def test_resume_wait_says_the_strategy_failed_again_and_names_the_stream_plainly(env, tmp_path, sync_redis):
    bots = write_bots(tmp_path / "bots.toml", BOT)
    env = {**env, "AUTOMATA_BOTS": str(bots), "INSTANCE": "boom"}
    publish_filters(sync_redis)
    proc = python("services.strategy_runner", "--bot", "boom", env=env, log_path=tmp_path / "r.log").start()
    wait_until(lambda: reading_candles(sync_redis, "boom"), timeout=20, what="candle group")
    add_candle(sync_redis, candle(0, "12", "13"))  # the strategy raises on this close
    wait_until(lambda: _doc(sync_redis).get("failed"), timeout=20, what="failure recorded")

    res = cli(env, "resume", "boom", "--wait", "10")
    out = res.stdout + res.stderr
    assert "bot:boom:control" in out and "💥" not in out, out
    assert res.returncode == 1, out
    assert "failed again" in out and "scripted failure" in out and "not applied" not in out, out
    assert _doc(sync_redis)["state"]["mode"] == "paused"
    assert proc.terminate() == 0
