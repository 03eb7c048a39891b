"""A recovery is routed like the alarm it ends: `"bot_*" = ["telegram"]` (automata.example.toml's
kind of route) brings both "Bot stalled" and "Bot receiving input again" to Telegram, and
`"feed_*"` both ends of a market data stall. The recoveries used to be kind "info", so such a
route sent the alarm to Telegram and the all-clear only to the "*" channels: a user was told a
bot stalled and never that it came back."""

from __future__ import annotations

import time
from pathlib import Path

import redis

from services.market_gateway.alerts import stall_notification
from services.market_gateway.stall import StallEvent
from services.strategy_runner.stall import input_notification
from shared.codec import encode
from tests.helpers.notifier_fakes import CHATS, FakeTelegram, start_notifier, wait_ready, write_config
from tests.helpers.procs import wait_until

STREAM = "md:candles:sim:BTCUSDT:1m"


def test_a_recovery_goes_where_its_alarm_went(
    env: dict[str, str], sync_redis: redis.Redis, tmp_path: Path, telegram: FakeTelegram
) -> None:
    now = int(time.time() * 1000)
    notes = [
        input_notification("b1", STREAM, "stalled", now - 30_000, now - 10_000),
        input_notification("b1", STREAM, "recovered", now - 30_000, now),
        stall_notification("sim", StallEvent("socket_down", None, 20.0), now - 10_000),
        stall_notification("sim", StallEvent("socket_up", None, 30.0), now),
    ]
    for note in notes:
        sync_redis.xadd("notify", encode(note))
    routes = '[notifier.routes]\n"bot_*" = ["telegram"]\n"feed_*" = ["telegram"]\n"*" = ["console"]\n'
    proc = start_notifier(env, tmp_path, write_config(tmp_path / "n.toml", telegram, None, routes))
    try:
        wait_ready(sync_redis, proc)
        wait_until(lambda: len(telegram.texts(CHATS[0])) >= 4, timeout=15, what="four messages")
        texts = "\n".join(telegram.texts(CHATS[0]))
        for title in (
            "Bot stalled",
            "Bot receiving input again",
            "Market data stalled",
            "Market data recovered",
        ):
            assert title in texts, texts
    finally:
        assert proc.terminate() == 0
