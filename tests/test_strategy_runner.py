"""The strategy runner as a real process: exactly-once handling, crash replay, lease, control."""

from __future__ import annotations

import json
import os
import random
import signal
import time
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from shared.codec import decode
from shared.messages import ControlAction, Notification, OrderStatus, PlaceOrder
from shared.streams import bot_state
from tests.helpers.bots import (
    add_candle,
    candle,
    commands,
    control,
    fill,
    publish_filters,
    reading_candles,
    write_bots,
)
from tests.helpers.procs import python, wait_until

SCRIPTED = Path(__file__).parent / "helpers" / "scripted.py"

# no order gateway here: the test answers each runner's start-up sync (tests/helpers/syncs.py)
pytestmark = pytest.mark.usefixtures("answer_syncs")

BOT = {"id": "t1", "strategy": "tests.helpers.scripted:Scripted", "venue": "sim", "symbol": "BTCUSDT",
       "interval": "1m", "lease_ms": 1500}  # fmt: skip
# rising candles 0, 2, 4 (buys at 101, 103, 105), falling ones between
SCRIPT = [("100", "101"), ("101", "100"), ("100", "103"), ("103", "102"), ("102", "105"), ("105", "104")]


@pytest.fixture
def bots_file(tmp_path):
    return write_bots(tmp_path / "bots.toml", BOT)


def runner(env, tmp_path, bots_file, name="r1"):
    env = {**env, "AUTOMATA_BOTS": str(bots_file), "CONSUMER_NAME": name, "INSTANCE": name}
    return python(
        "services.strategy_runner", "--bot", "t1", env=env, log_path=tmp_path / f"{name}.log"
    ).start()


def state_doc(r) -> dict:
    raw = r.get(bot_state("t1"))
    return json.loads(raw) if raw else {}


def start_runner(env, tmp_path, bots_file, r, name="r1"):
    proc = runner(env, tmp_path, bots_file, name)
    wait_until(lambda: r.get("bot:t1:lease") is not None, timeout=20, what=f"{name} lease")
    wait_until(lambda: reading_candles(r, "t1"), timeout=20, what="candle group")
    return proc


def wait_for_holder(r, name: str) -> None:
    wait_until(
        lambda: (r.get("bot:t1:lease") or b"").decode().startswith(f"{name}:"),
        timeout=20,
        what=f"{name} lease",
    )


def run_script(r) -> None:
    for i, (o, c) in enumerate(SCRIPT):
        add_candle(r, candle(i, o, c))


def test_scripted_sequence_gives_exactly_the_expected_commands(env, tmp_path, sync_redis, bots_file):
    publish_filters(sync_redis)
    proc = start_runner(env, tmp_path, bots_file, sync_redis)
    run_script(sync_redis)
    wait_until(
        lambda: state_doc(sync_redis).get("state", {}).get("candles") == 6, timeout=20, what="6 candles"
    )
    cmds = commands(sync_redis)
    assert [(c.cid, c.side, c.price, c.quantity) for c in cmds] == [
        ("t1-000001", "BUY", Decimal("101"), Decimal("0.1")),
        ("t1-000002", "BUY", Decimal("103"), Decimal("0.1")),
        ("t1-000003", "BUY", Decimal("105"), Decimal("0.1")),
    ]
    fill(sync_redis, cmds[1])
    wait_until(lambda: len(commands(sync_redis)) == 4, what="take profit")
    sell = commands(sync_redis)[3]
    assert (sell.cid, sell.side, sell.price) == ("t1-000004", "SELL", Decimal("104.03"))
    fill(sync_redis, cmds[1])  # a duplicate update is harmless
    add_candle(sync_redis, candle(6, "104", "103"))
    wait_until(lambda: state_doc(sync_redis)["state"]["candles"] == 7, what="7th candle")
    assert len(commands(sync_redis)) == 4
    assert proc.terminate() == 0


def test_replay_after_sigkill_at_random_points_is_exact(env, tmp_path, sync_redis, bots_file):
    """Candles arrive in bursts and the runner, once it is working, is killed -9 at a random moment
    of each burst: the commands and the final state are exactly the scripted answer, each cid once."""
    publish_filters(sync_redis)
    rng = random.Random(7)
    n, bursts = 1200, 6  # bursts long enough (~40 ms of work each) for a random kill to land inside
    closes = [Decimal(1000) + i for i in range(n)]
    proc = start_runner(env, tmp_path, bots_file, sync_redis)
    killed_mid_work = 0

    def done() -> int:
        return state_doc(sync_redis).get("state", {}).get("candles", 0)

    for burst in range(bursts):
        wait_for_holder(sync_redis, f"r{burst + 1}")
        size = n // bursts
        first, end = burst * size, (burst + 1) * size
        pipe = sync_redis.pipeline(transaction=False)  # the whole burst at once: a backlog to work on
        for i in range(first, end):  # alternate rising / falling: a buy every 2nd
            c = closes[i]
            add_candle(pipe, candle(i, str(c - 1 if i % 2 == 0 else c + 1), str(c)))
        pipe.execute()
        wait_until(lambda f=first: done() > f, interval=0.001, what="the burst under way")
        time.sleep(rng.uniform(0, 0.01))  # a random kill point; correctness must not depend on it
        os.kill(proc.pid, signal.SIGSTOP)  # frozen where it is: what it has done is what it did
        killed_mid_work += first < done() < end
        proc.kill()
        proc = runner(env, tmp_path, bots_file, f"r{burst + 2}")
    wait_until(
        lambda: state_doc(sync_redis).get("state", {}).get("candles") == n, timeout=60, what="all candles"
    )
    cmds = commands(sync_redis)
    expected = [(f"t1-{i + 1:06d}", closes[2 * i]) for i in range(n // 2)]
    assert [(c.cid, c.price) for c in cmds] == expected
    assert state_doc(sync_redis)["state"]["seq"] == n // 2
    assert killed_mid_work >= 1, "no kill landed in the middle of a burst"
    wait_until(
        lambda: (sync_redis.get("bot:t1:lease") or b"").decode().startswith(f"r{bursts + 1}:"), timeout=20
    )
    assert proc.terminate() == 0


def test_two_runners_only_one_acts_and_the_other_takes_over(env, tmp_path, sync_redis, bots_file):
    publish_filters(sync_redis)
    first = start_runner(env, tmp_path, bots_file, sync_redis, "a")
    second = runner(env, tmp_path, bots_file, "b")
    add_candle(sync_redis, candle(0, "100", "101"))
    wait_until(lambda: len(commands(sync_redis)) == 1, what="first buy")
    assert sync_redis.get("bot:t1:lease").decode().split(":")[0] == "a"
    first.kill()
    add_candle(sync_redis, candle(1, "101", "102"))
    wait_until(lambda: len(commands(sync_redis)) == 2, timeout=20, what="standby took over")
    assert sync_redis.get("bot:t1:lease").decode().split(":")[0] == "b"
    assert [c.cid for c in commands(sync_redis)] == ["t1-000001", "t1-000002"]
    assert second.terminate() == 0


def test_a_candle_another_consumer_read_is_handled_before_the_next_one(env, tmp_path, sync_redis):
    """A runner that lost its lease while frozen reads once more on waking before its commit is
    fenced: what it read stays pending in its name. The lease holder must handle it before the
    next candle; handled after, it would be skipped as older than the last applied one (lost).
    The test plays that predecessor, with the holder frozen meanwhile so it cannot read first."""
    publish_filters(sync_redis)
    bots_file = write_bots(tmp_path / "bots.toml", {**BOT, "lease_ms": 10_000})  # no takeover while frozen
    proc = start_runner(env, tmp_path, bots_file, sync_redis)
    add_candle(sync_redis, candle(0, "100", "101"))
    wait_until(lambda: len(commands(sync_redis)) == 1, what="the runner serving")
    os.kill(proc.pid, signal.SIGSTOP)

    def reading() -> bool:  # a blocked XREADGROUP of the runner would take the next candle itself
        return any(c["cmd"] == "xreadgroup" and "b" in c["flags"] for c in sync_redis.client_list())

    wait_until(lambda: not reading(), what="the frozen runner's blocking read ended")
    add_candle(sync_redis, candle(1, "101", "102"))
    assert sync_redis.xreadgroup("bot:t1", "predecessor", {"md:candles:sim:BTCUSDT:1m": ">"}, count=1)
    add_candle(sync_redis, candle(2, "102", "103"))
    os.kill(proc.pid, signal.SIGCONT)
    wait_until(lambda: len(commands(sync_redis)) == 3, what="both candles handled")
    assert [(c.cid, c.price) for c in commands(sync_redis)] == [
        ("t1-000001", Decimal("101")), ("t1-000002", Decimal("102")), ("t1-000003", Decimal("103"))]  # fmt: skip
    assert state_doc(sync_redis)["state"]["candles"] == 3
    assert sync_redis.xpending("md:candles:sim:BTCUSDT:1m", "bot:t1")["pending"] == 0
    assert proc.terminate() == 0


def test_pause_resume_stop_close_through_the_control_stream(env, tmp_path, sync_redis, bots_file):
    publish_filters(sync_redis)
    proc = start_runner(env, tmp_path, bots_file, sync_redis)
    add_candle(sync_redis, candle(0, "100", "101"))
    wait_until(lambda: len(commands(sync_redis)) == 1)
    control(sync_redis, "t1", ControlAction.PAUSE)
    wait_until(lambda: state_doc(sync_redis)["state"].get("mode") == "paused", what="paused")
    add_candle(sync_redis, candle(1, "101", "102"))  # rising, but paused: no order
    wait_until(lambda: "md:candles:sim:BTCUSDT:1m" in state_doc(sync_redis)["last_applied"] and
               state_doc(sync_redis)["last_applied"]["md:candles:sim:BTCUSDT:1m"].startswith(str(candle(1, "1", "1").open_time)))  # fmt: skip
    assert len(commands(sync_redis)) == 1
    control(sync_redis, "t1", ControlAction.RESUME)
    wait_until(lambda: state_doc(sync_redis)["state"].get("mode", "running") == "running", what="resumed")
    add_candle(sync_redis, candle(2, "102", "103"))
    wait_until(lambda: len(commands(sync_redis)) == 2, what="buy after resume")
    buy = commands(sync_redis)[0]
    fill(sync_redis, buy)  # position 0.1 BTC; the take profit goes out
    wait_until(lambda: len(commands(sync_redis)) == 3)
    control(sync_redis, "t1", ControlAction.STOP)
    wait_until(lambda: len(commands(sync_redis)) == 5, what="stop cancels the 2 open orders")
    assert {type(c).__name__ for c in commands(sync_redis)[3:]} == {"CancelOrder"}
    assert state_doc(sync_redis)["state"]["mode"] == "stopped"
    for placed in [c for c in commands(sync_redis) if isinstance(c, PlaceOrder)][1:]:
        fill(sync_redis, placed, OrderStatus.CANCELED, qty="0")  # the venue confirms both cancels
    wait_until(lambda: not state_doc(sync_redis)["state"].get("orders"), what="cancels confirmed")
    control(sync_redis, "t1", ControlAction.CLOSE)  # nothing open: the close sells at once
    wait_until(lambda: any(isinstance(c, PlaceOrder) and c.order_type == "MARKET" for c in commands(sync_redis)),
               what="close sells the position at market")  # fmt: skip
    sell = commands(sync_redis)[-1]
    assert (sell.side, sell.quantity) == ("SELL", Decimal("0.1"))
    assert proc.terminate() == 0


def failing_bot(env, tmp_path, sync_redis, params: dict, low: str, high: str) -> tuple[Any, dict, list[str]]:
    """The scripted bot with `params` started and given one rising candle it fails on: the
    runner, the bot's state document once the failure is recorded (paused), the script's lines."""
    bots_file = write_bots(tmp_path / "bots.toml", {**BOT, "params": params})
    publish_filters(sync_redis)
    proc = start_runner(env, tmp_path, bots_file, sync_redis)
    add_candle(sync_redis, candle(0, low, high))
    wait_until(lambda: state_doc(sync_redis).get("failed"), what="failure recorded")
    doc = state_doc(sync_redis)
    assert doc["state"]["mode"] == "paused"
    return proc, doc, SCRIPTED.read_text().splitlines()


def test_strategy_that_raises_pauses_the_bot_and_keeps_the_entry(env, tmp_path, sync_redis):
    proc, doc, code = failing_bot(env, tmp_path, sync_redis, {"fail_on": "13"}, "12", "13")
    # the error names the strategy's own line, not the runner's frames that called it
    raised = next(n for n, text in enumerate(code, 1) if "failure at close" in text)
    where = f"scripted.py, line {raised}, in on_candle)"
    assert "scripted failure" in doc["failed"]["error"] and doc["failed"]["error"].endswith(where)
    notes = [decode(f) for _, f in sync_redis.xrange("notify")]
    errors = [n for n in notes if isinstance(n, Notification) and n.kind == "error" and n.bot == "t1"]
    assert errors and where in errors[0].text
    assert sync_redis.xpending("md:candles:sim:BTCUSDT:1m", "bot:t1")["pending"] == 0
    # the bot fixed (here: the same strategy won't fail on resume since the entry is replayed after
    # the resume, and fails again) -> still paused, entry still kept
    control(sync_redis, "t1", ControlAction.RESUME)
    wait_until(lambda: state_doc(sync_redis)["version"] > doc["version"])
    assert state_doc(sync_redis)["failed"]["id"] == doc["failed"]["id"]
    assert state_doc(sync_redis)["state"]["mode"] == "paused"
    assert proc.terminate() == 0


def test_a_step_that_keeps_an_order_it_does_not_send_pauses_the_bot_naming_the_order(
    env, tmp_path, sync_redis
):
    """The buy kept in the state, its command dropped: refused at once (the bot would wait for an
    order no venue ever sees), said with the handler's line, and nothing half done is committed."""
    proc, doc, code = failing_bot(env, tmp_path, sync_redis, {"drop_on": "101"}, "100", "101")
    assert not doc["state"].get("orders")
    hook = next(n for n, text in enumerate(code, 1) if "def on_candle" in text)
    error = doc["failed"]["error"]
    assert error.startswith("UnsentOrder: the new state tracks order t1-000001 (BUY LIMIT, tag buy)"), error
    assert error.endswith(f"scripted.py, line {hook}, in on_candle)"), error
    assert commands(sync_redis) == []
    assert proc.terminate() == 0


def test_bad_bot_config_fails_before_anything_starts(env, tmp_path, sync_redis):
    bots_file = write_bots(tmp_path / "bots.toml", {**BOT, "params": {"qty": "lots"}})
    proc = runner(env, tmp_path, bots_file)
    assert proc.popen.wait(30) == 2
    out = proc.output()
    assert str(bots_file) in out and "bot t1" in out and "qty" in out
    assert not sync_redis.exists("bot:t1:lease")


def test_a_broken_bot_in_the_file_stops_its_own_runner_not_the_others(env, tmp_path, sync_redis):
    """A bot added to the bots file with a typo in its params, or a strategy that does not
    import, must not keep the bots already there from (re)starting: only its runner refuses."""
    (tmp_path / "trap_runner_bot.py").write_text("def on_candle(self)\n")  # a SyntaxError
    broken = [
        {**BOT, "id": "t2", "params": {"fial_on": "13"}},
        {**BOT, "id": "t3", "strategy": "trap_runner_bot:Bot"},
    ]
    bots_file = write_bots(tmp_path / "bots.toml", BOT, *broken)
    publish_filters(sync_redis)
    proc = start_runner(env, tmp_path, bots_file, sync_redis)  # t1 runs
    env = {
        **env,
        "AUTOMATA_BOTS": str(bots_file),
        "PYTHONPATH": f"{tmp_path}{os.pathsep}{env.get('PYTHONPATH', '')}",
    }
    for bot_id, field in (
        ("t2", "fial_on: unknown parameter (did you mean fail_on?)"),
        ("t3", "SyntaxError in"),
    ):
        refused = python(
            "services.strategy_runner", "--bot", bot_id, env=env, log_path=tmp_path / f"{bot_id}.log"
        )
        assert refused.start().popen.wait(30) == 2
        assert f"{bots_file}: bot {bot_id}: " in refused.output() and field in refused.output()
        assert not sync_redis.exists(f"bot:{bot_id}:lease")
    assert proc.terminate() == 0


@pytest.mark.parametrize(
    ("param", "hook", "failure"),
    [("fail_at_start", "initial_state", "failure at start"),
     ("fail_in_history", "history_needed", "failure sizing the history")],
)  # fmt: skip
def test_a_bot_whose_strategy_cannot_start_waits_and_its_process_mates_trade_on(
    env, tmp_path, sync_redis, param, hook, failure
):
    """initial_state or history_needed raising crashed the whole process (every bot sharing it),
    and again at each restart; now that bot says why once and waits, and the other bot of the
    process trades."""
    bots_file = write_bots(tmp_path / "bots.toml", {**BOT, "params": {param: True}}, {**BOT, "id": "t2"})
    publish_filters(sync_redis)
    env = {**env, "AUTOMATA_BOTS": str(bots_file)}
    proc = python(
        "services.strategy_runner", "--bot", "t1", "--bot", "t2", env=env, log_path=tmp_path / "pair.log"
    ).start()
    wait_until(lambda: reading_candles(sync_redis, "t2"), timeout=20, what="t2 reads candles")
    line = next(n for n, text in enumerate(SCRIPTED.read_text().splitlines(), 1) if failure in text)

    def start_error() -> Notification | None:
        notes = [decode(f) for _, f in sync_redis.xrange("notify")]
        return next(
            (n for n in notes if isinstance(n, Notification) and n.bot == "t1" and n.kind == "error"), None
        )

    wait_until(lambda: start_error() is not None, timeout=20, what="t1's error notification")
    text = start_error().text
    assert f"t1: cannot start: its {hook} raised: RuntimeError: scripted {failure}" in text
    assert f"scripted.py, line {line}, in {hook}" in text
    add_candle(sync_redis, candle(0, "100", "101"))  # rising: t2 buys
    wait_until(lambda: [c for c in commands(sync_redis) if isinstance(c, PlaceOrder) and c.bot == "t2"],
               what="t2's buy")  # fmt: skip
    assert proc.popen.poll() is None and not sync_redis.exists("bot:t1:lease")
    assert proc.terminate() == 0


def test_cli_pause_and_resume_reach_the_runner(env, tmp_path, sync_redis, bots_file):
    publish_filters(sync_redis)
    proc = start_runner(env, tmp_path, bots_file, sync_redis)
    for action, mode in (("pause", "paused"), ("resume", "running")):
        cli = python(
            "cli.main", action, "t1", "--wait", "20", env=env, log_path=tmp_path / f"cli-{action}.log"
        ).start()
        assert cli.popen.wait(30) == 0, cli.output()
        assert f"t1 is {mode}" in cli.output()
        assert state_doc(sync_redis)["state"].get("mode", "running") == mode
    listing = python("cli.main", "bots", env=env, log_path=tmp_path / "cli-bots.log").start()
    assert listing.popen.wait(30) == 0 and "t1" in listing.output() and "running" in listing.output()
    assert proc.terminate() == 0


def test_timer_survives_a_restart_and_fires_once(env, tmp_path, sync_redis):
    """A timer set by the strategy outlives a SIGKILL of its runner: the next runner re-arms it
    from the state, and it fires exactly once (one TimerFired entry, one order)."""
    from shared.messages import Candle

    bots_file = write_bots(tmp_path / "bots.toml", {**BOT, "params": {"timer_ms": 2500}})
    publish_filters(sync_redis)
    proc = start_runner(env, tmp_path, bots_file, sync_redis)
    now = int(time.time() * 1000)
    first = Candle(venue="sim", symbol="BTCUSDT", interval="1m", open_time=now - 60_000, close_time=now - 1,
                   open=Decimal("101"), high=Decimal("101"), low=Decimal("100"), close=Decimal("100"),
                   volume=Decimal("1"))  # fmt: skip
    from tests.helpers.bots import add_candle as put

    put(sync_redis, first)
    wait_until(lambda: state_doc(sync_redis).get("state", {}).get("timers"), what="timer set")
    assert sync_redis.zscore("bot:t1:timers", "recheck") == now - 1 + 2500
    proc.kill()  # before it is due
    proc = runner(env, tmp_path, bots_file, "r2")
    wait_until(lambda: len(commands(sync_redis)) == 1, timeout=20, what="the timer's order")
    fired = [e for e in sync_redis.xrange("bot:t1:control") if e[1][b"type"] == b"timer"]
    assert len(fired) == 1 and not sync_redis.exists("bot:t1:timers")
    assert commands(sync_redis)[0].cid == "t1-000001"
    wait_for_holder(sync_redis, "r2")
    assert proc.terminate() == 0
