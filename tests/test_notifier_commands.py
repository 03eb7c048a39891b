"""Telegram commands against a real notifier process and the fake Bot API: allowed chats act on
bots (a BotControl lands on `bot:{bot}:control`) and read status, bots and balances; anyone else
is refused and logged, and gets nothing."""

from __future__ import annotations

import time
from decimal import Decimal
from pathlib import Path

import msgspec
import orjson
import redis

from shared.codec import decode, encode
from shared.filters import SymbolFilters
from shared.messages import Balance, BalanceUpdate, BotControl, ControlAction
from shared.streams import venue_symbols
from tests.helpers.notifier_fakes import CHATS, FakeTelegram, start_notifier, wait_ready, write_config
from tests.helpers.procs import Proc, wait_until

ALLOWED = CHATS[0]
STRANGER = 999


def seed_bot(client: redis.Redis, bot: str, mode: str) -> None:
    doc = {
        "version": 3,
        "last_applied": {"md:candles:sim:BTCUSDT:1m": "1-0"},  # the bot's market: sim BTCUSDT
        "state": {"mode": mode, "position": {"base": "0.123456789", "realised": "12.3E-7"}},
    }
    client.set(f"bot:{bot}:state", orjson.dumps(doc))


def ask(telegram: FakeTelegram, proc: Proc, chat: int, text: str) -> str:
    """Send a command as `chat`, wait for the bot's answer to that chat, return it."""
    before = len(telegram.texts(chat))
    telegram.push_message(chat, text)

    def answered() -> list[str]:
        assert proc.alive(), proc.output()[-3000:]
        return telegram.texts(chat)[before:]

    return wait_until(answered, timeout=15, what=f"the answer to {text!r}")[0]


def controls(client: redis.Redis, bot: str) -> list[BotControl]:
    return [decode(fields) for _id, fields in client.xrange(f"bot:{bot}:control")]  # type: ignore[misc]


def test_commands_from_an_allowed_chat_act_on_bots(
    env: dict[str, str], sync_redis: redis.Redis, tmp_path: Path, telegram: FakeTelegram
) -> None:
    seed_bot(sync_redis, "dca1", "running")
    seed_bot(sync_redis, "grid1", "paused")
    balances = (
        Balance("USDT", Decimal("900.5"), Decimal("99.5")),
        Balance("BTC", Decimal("0.25"), Decimal(0)),
    )
    sync_redis.xadd("account:sim", encode(BalanceUpdate(venue="sim", balances=balances, snapshot=True)))
    # the symbol filters the order gateway publishes: amounts are shown at their precision
    btc = SymbolFilters(symbol="BTCUSDT", base_asset="BTC", quote_asset="USDT", tick_size=Decimal("0.01"),
                        step_size=Decimal("0.00001"))  # fmt: skip
    sync_redis.hset(venue_symbols("sim"), "BTCUSDT", msgspec.json.encode(btc))
    delta = (Balance("BTC", Decimal("0.3"), Decimal(0)),)
    sync_redis.xadd(
        "account:sim", encode(BalanceUpdate(venue="sim", balances=delta, ts=int(time.time() * 1000)))
    )
    proc = start_notifier(env, tmp_path, write_config(tmp_path / "n.toml", telegram, None))
    try:
        wait_ready(sync_redis, proc)
        bots = ask(telegram, proc, ALLOWED, "/bots")
        assert "dca1: running" in bots and "grid1: paused" in bots, bots
        assert "position 0.12345, realised 0.0000012" in bots, "to the step, never in exponent notation"

        assert "pause sent to dca1" in ask(telegram, proc, ALLOWED, "/pause dca1")
        assert "resume sent to grid1" in ask(telegram, proc, ALLOWED, "/resume@automata_bot grid1")
        assert "stop sent to dca1" in ask(telegram, proc, ALLOWED, "/stop dca1")
        assert [(c.action, c.source) for c in controls(sync_redis, "dca1")] == [
            (ControlAction.PAUSE, "telegram"),
            (ControlAction.STOP, "telegram"),
        ]
        assert [c.action for c in controls(sync_redis, "grid1")] == [ControlAction.RESUME]
        # README's "Steer the bots": the same from Telegram, `automata close` included
        assert "close sent to grid1" in ask(telegram, proc, ALLOWED, "/close grid1")
        assert [c.action for c in controls(sync_redis, "grid1")] == [
            ControlAction.RESUME,
            ControlAction.CLOSE,
        ]

        assert "Unknown bot" in ask(telegram, proc, ALLOWED, "/pause nosuchbot")
        assert not sync_redis.exists("bot:nosuchbot:control")
        assert "Usage" in ask(telegram, proc, ALLOWED, "/pause")

        status = ask(telegram, proc, ALLOWED, "/status")
        assert "notifier (t1)" in status and "dca1: running" in status, status

        balance = ask(telegram, proc, ALLOWED, "/balance sim")
        assert "USDT: 1,000.00 (free 900.50, locked 99.50)" in balance, balance
        assert "BTC: 0.3 " in balance, "the newer delta wins over the snapshot"
        assert "Unknown venue 'account:x'" in ask(telegram, proc, ALLOWED, "/balance account:x")

        assert "/pause BOT" in ask(telegram, proc, ALLOWED, "/nonsense")
    finally:
        assert proc.terminate() == 0


def test_an_unauthorised_chat_is_refused_and_logged(
    env: dict[str, str], sync_redis: redis.Redis, tmp_path: Path, telegram: FakeTelegram
) -> None:
    seed_bot(sync_redis, "dca1", "running")
    proc = start_notifier(env, tmp_path, write_config(tmp_path / "n.toml", telegram, None))
    try:
        wait_ready(sync_redis, proc)
        telegram.push_message(STRANGER, "/pause dca1", username="mallory")
        telegram.push_message(STRANGER, "/balance")
        # updates are handled in order: once the allowed chat has its answer, the stranger's were seen
        assert "dca1" in ask(telegram, proc, ALLOWED, "/bots")
        assert not sync_redis.exists("bot:dca1:control"), "a stranger's /pause must not reach the bot"
        assert telegram.texts(STRANGER) == []
        log = proc.output()
        assert (
            "refused telegram command /pause from user 999 ('mallory') in chat 999: not an allowed user"
            in log
        )
    finally:
        assert proc.terminate() == 0

    # the getUpdates offset is kept: a restarted notifier does not run the same commands again
    proc = start_notifier(env, tmp_path, write_config(tmp_path / "n.toml", telegram, None), name="again")
    try:
        wait_ready(sync_redis, proc)
        answers = len(telegram.texts(ALLOWED))
        assert "dca1" in ask(telegram, proc, ALLOWED, "/bots")
        assert len(telegram.texts(ALLOWED)) == answers + 1
        assert "refused" not in proc.output()
    finally:
        assert proc.terminate() == 0


def test_a_command_that_fails_is_answered_not_left_silent(
    env: dict[str, str], sync_redis: redis.Redis, tmp_path: Path, telegram: FakeTelegram
) -> None:
    """A command whose handler raises (here a bot state document of an odd shape) tells the user it
    failed; it used to be logged only, and the user waited for an answer that never came."""
    sync_redis.set("bot:odd:state", orjson.dumps({"version": 1, "last_applied": 5, "state": {}}))
    proc = start_notifier(env, tmp_path, write_config(tmp_path / "n.toml", telegram, None))
    try:
        wait_ready(sync_redis, proc)
        answer = ask(telegram, proc, ALLOWED, "/bots")
        assert "/bots failed (TypeError)" in answer, answer
        assert "/pause BOT" in ask(telegram, proc, ALLOWED, "/help"), "the notifier carries on"
    finally:
        assert proc.terminate() == 0
