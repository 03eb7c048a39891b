"""POST /api/smart-trades on a real Redis: the checks every control has (token, CSRF, read-only),
the trade grammar's refusals as a 422 naming the field, no bot taking trades on the symbol, and
a good trade written to the manual bot's control stream as `automata trade` writes it (the bot
found in the bots file, or in a strategy runner's heartbeat). No runner here: the answer is
`waiting` (tests/test_trade_e2e.py has the bot answering)."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import orjson
import redis

from services.web.settings import WebSettings
from shared.codec import decode
from shared.exits import Exits, Target
from shared.messages import Side, TradeRequest
from shared.redis_server import RedisServer
from shared.streams import bot_control, health
from tests.helpers.bots import write_bots
from tests.helpers.web import TOKEN, client

AUTH = {"authorization": f"Bearer {TOKEN}"}
GOOD = {
    "side": "buy",
    "symbol": "btcusdt",
    "quote": "100",
    "tp": "2%,4%",
    "sl": "1%",
    "trailing": "0.5%",
    "wait": 0,
}


def settings(server: RedisServer, bots: Path | None = None, **more: object) -> WebSettings:
    return WebSettings(redis_url=server.url, ledger_url="sqlite:////nonexistent/x.db", token=TOKEN,
                       bots_file=str(bots) if bots else "", **more)  # type: ignore[arg-type]  # fmt: skip


def requests(r: redis.Redis, bot: str) -> list[TradeRequest]:
    return [decode(f) for _, f in r.xrange(bot_control(bot))]  # type: ignore[misc]


async def test_a_trade_reaches_the_manual_bot_of_the_bots_file(
    redis_server: RedisServer, sync_redis: redis.Redis, tmp_path: Path
) -> None:
    bots = write_bots(tmp_path / "bots.toml", {"id": "mbtc", "strategy": "manual", "symbol": "BTCUSDT"})
    async with client(settings(redis_server, bots), **AUTH) as api:
        reply = await api.post("/api/smart-trades", json=GOOD)
        assert reply.status_code == 200, reply.text
        body = reply.json()
        (sent,) = requests(sync_redis, "mbtc")
        assert body == {"id": sent.id, "bot": "mbtc", "stream": "bot:mbtc:control", "entry": body["entry"],
                        "trade": "buy BTCUSDT quote 100 at market tp 2%,4% sl 1% trailing 0.5%", "outcome": "waiting",
                        "answer": "", "cid": "", "status": "", "reason": ""}  # fmt: skip
        assert (sent.source, sent.side, sent.quote) == ("web", Side.BUY, Decimal(100))
        assert sent.exits == Exits(take_profits=(Target(gain=Decimal("0.02")), Target(gain=Decimal("0.04"))),
                                   stop_loss=Decimal("0.01"), trailing_stop=Decimal("0.005"))  # fmt: skip


async def test_refusals_name_the_field_and_write_nothing(
    redis_server: RedisServer, sync_redis: redis.Redis, tmp_path: Path
) -> None:
    # no bots file: the bot is found in its runner's heartbeat
    sync_redis.set(
        health("strategy_runner", "r1"), orjson.dumps({"pid": 1, "ts": 1, "trades": {"mbtc": "sim:BTCUSDT"}})
    )
    async with client(settings(redis_server), **AUTH) as api:
        for change, error in (
            ({"tp": "2%,4%:50%"}, "tp: 2 targets but 1 shares in '2%,4%:50%'"),
            ({"sl": "0.01"}, "sl: write it as a percent, e.g. 1% (got '0.01')"),
            (
                {"quote": None, "qty": None},
                "quote: give the quote amount to spend or the quantity to buy (one of them)",
            ),
            (
                {"trailing_tp": "1%", "tp": None},
                "trailing_tp: a trailing take profit needs a target to start trailing from",
            ),
            (
                {"time_limit": "soon"},
                "time_limit: a duration such as 90s, 30m, 4h or 1d (at most 365d), got 'soon'",
            ),
            ({"symbol": "ETHUSDT"}, "no bot takes manual trades on ETHUSDT: add a bot to the bots file"),
            ({"bot": "other"}, "bot 'other' takes no manual trades (bots that do: mbtc)"),
        ):
            reply = await api.post(
                "/api/smart-trades", json={k: v for k, v in {**GOOD, **change}.items() if v is not None}
            )
            assert reply.status_code == 422 and reply.json()["error"].startswith(error), (change, reply.text)
        reply = await api.post("/api/smart-trades", json={**GOOD, "leverage": "10"})
        assert reply.status_code == 422 and "leverage" in reply.json()["error"]
        assert (await api.post("/api/smart-trades", json={**GOOD, "wait": 0})).status_code == 200
    assert len(requests(sync_redis, "mbtc")) == 1


async def test_the_token_csrf_and_read_only_guard_it_as_every_control(
    redis_server: RedisServer, sync_redis: redis.Redis, tmp_path: Path
) -> None:
    bots = write_bots(tmp_path / "bots.toml", {"id": "mbtc", "strategy": "manual", "symbol": "BTCUSDT"})
    async with client(settings(redis_server, bots)) as api:
        assert (await api.post("/api/smart-trades", json=GOOD)).status_code == 401
        assert (await api.post("/api/login", json={"token": TOKEN})).status_code == 200
        assert (
            await api.post("/api/smart-trades", json=GOOD)
        ).status_code == 403  # a session needs the CSRF header
    async with client(settings(redis_server, bots, read_only=True), **AUTH) as api:
        reply = await api.post("/api/smart-trades", json=GOOD)
        assert reply.status_code == 403 and "read-only" in reply.json()["error"]
    assert sync_redis.xlen(bot_control("mbtc")) == 0
