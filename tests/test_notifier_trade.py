"""Telegram's /trade against a real notifier process and the fake Bot API: an allowed user's trade
lands on the manual bot's control stream as the CLI's TradeRequest would (source telegram); a
bad term is answered naming it, with nothing written; no manual bot on the symbol says how to
add one; a stranger's /trade is refused and reaches nothing."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import redis

from shared.codec import decode
from shared.exits import Exits, Target
from shared.messages import Side, TradeRequest
from shared.streams import bot_control
from tests.helpers.bots import write_bots
from tests.helpers.notifier_fakes import CHATS, FakeTelegram, start_notifier, wait_ready, write_config
from tests.test_notifier_commands import STRANGER, ask

ALLOWED = CHATS[0]


def requests(r: redis.Redis, bot: str) -> list[TradeRequest]:
    return [decode(f) for _id, f in r.xrange(bot_control(bot))]  # type: ignore[misc]


def test_trade_from_an_allowed_chat_reaches_the_manual_bot(
    env: dict[str, str], sync_redis: redis.Redis, tmp_path: Path, telegram: FakeTelegram
) -> None:
    bots = write_bots(tmp_path / "bots.toml", {"id": "mbtc", "strategy": "manual", "symbol": "BTCUSDT"},
                      {"id": "dca1", "strategy": "dca", "symbol": "ETHUSDT"})  # fmt: skip
    proc = start_notifier(
        {**env, "AUTOMATA_BOTS": str(bots)}, tmp_path, write_config(tmp_path / "n.toml", telegram, None)
    )
    try:
        wait_ready(sync_redis, proc)
        telegram.push_message(STRANGER, "/trade buy BTCUSDT 100 tp 2%", username="mallory")
        said = ask(telegram, proc, ALLOWED, "/trade buy btcusdt 100 tp 2%,4% sl 1% trailing 0.5%")
        (sent,) = requests(sync_redis, "mbtc")  # the stranger's came first and reached nothing
        assert said == (f"Trade {sent.id} sent to mbtc: buy BTCUSDT quote 100 at market tp 2%,4% sl 1% trailing 0.5%. "
                        "The bot answers in a notification.")  # fmt: skip
        assert isinstance(sent, TradeRequest) and sent.source == f"telegram user {ALLOWED}"
        assert (sent.bot, sent.symbol, sent.side, sent.quote, sent.quantity) == (
            "mbtc",
            "BTCUSDT",
            Side.BUY,
            Decimal(100),
            None,
        )
        assert sent.exits == Exits(take_profits=(Target(gain=Decimal("0.02")), Target(gain=Decimal("0.04"))),
                                   stop_loss=Decimal("0.01"), trailing_stop=Decimal("0.005"))  # fmt: skip
        assert telegram.texts(STRANGER) == []

        bad = ask(telegram, proc, ALLOWED, "/trade buy BTCUSDT 100 tp 2%,4% sl 0.01")
        assert bad.startswith("Not sent: sl: write it as a percent, e.g. 1% (got '0.01')"), bad
        none = ask(telegram, proc, ALLOWED, "/trade buy ETHUSDT 100 tp 2%")
        assert none.startswith(
            "Not sent: no bot takes manual trades on ETHUSDT: add a bot to the bots file"
        ), none
        assert ask(telegram, proc, ALLOWED, "/trade sell BTCUSDT").startswith("Trade ")
        assert [r.side for r in requests(sync_redis, "mbtc")] == [Side.BUY, Side.SELL]
        assert "Usage: /trade buy SYMBOL QUOTE" in ask(telegram, proc, ALLOWED, "/trade")
        assert not sync_redis.exists(bot_control("dca1"))
    finally:
        assert proc.terminate() == 0
    assert "refused telegram command /trade from user 999 ('mallory')" in proc.output()
