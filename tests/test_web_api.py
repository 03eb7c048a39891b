"""The web service's REST API on a real Redis and a real SQLite ledger, and its safety:
credentials, CSRF, read-only, the bind check."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from decimal import Decimal
from pathlib import Path

import httpx
import pytest
import redis

from services.web.settings import WebSettings
from shared.codec import decode, encode
from shared.messages import (
    Balance,
    BalanceUpdate,
    BookTicker,
    BotControl,
    Candle,
    ControlAction,
    Decision,
    PlaceOrder,
)
from shared.redis_server import RedisServer
from tests.helpers import ledger_data, procs
from tests.helpers.web import TOKEN, bot_doc, client, put_bot

AUTH = {"authorization": f"Bearer {TOKEN}"}


@pytest.fixture
def ledger(tmp_path: Path) -> str:
    url = f"sqlite:///{tmp_path / 'ledger.sqlite3'}"
    ledger_data.seeded(url)
    return url


@pytest.fixture
def settings(redis_server: RedisServer, ledger: str) -> WebSettings:
    return WebSettings(redis_url=redis_server.url, ledger_url=ledger, token=TOKEN)


@pytest.fixture
async def api(settings: WebSettings) -> AsyncIterator[httpx.AsyncClient]:
    async with client(settings) as c:
        yield c


async def test_health_says_redis_is_reachable(api: httpx.AsyncClient) -> None:
    reply = await api.get("/api/health")
    assert reply.status_code == 200
    assert reply.json()["redis"] is True and reply.json()["auth"] is True


async def test_openapi_document_lists_every_endpoint(api: httpx.AsyncClient) -> None:
    doc = (await api.get("/api/openapi.json")).json()
    assert doc["openapi"].startswith("3.")
    for path in ("/api/balances", "/api/bots", "/api/bots/{bot}/chart", "/api/live", "/api/trades.csv"):
        assert path in doc["paths"], path
    assert doc["paths"]["/api/bots/{bot}/pause"]["post"]["security"]


async def test_reads_need_the_token_when_one_is_set(api: httpx.AsyncClient) -> None:
    assert (await api.get("/api/bots")).status_code == 401
    assert (
        await api.get("/api/bots", headers={"authorization": "Bearer wrong-token-xxxxxxxx"})
    ).status_code == 401
    assert (await api.get("/api/bots", headers=AUTH)).status_code == 200


async def test_balances_free_locked_total_and_equity(api: httpx.AsyncClient, sync_redis: redis.Redis) -> None:
    snapshot = BalanceUpdate(venue="sim", snapshot=True, balances=(
        Balance("USDT", Decimal("1000"), Decimal("250")), Balance("BTC", Decimal("0.5"), Decimal("0.25")),
        Balance("DOGE", Decimal("10"), Decimal("0"))))  # fmt: skip
    sync_redis.xadd("account:sim", encode(snapshot))
    sync_redis.xadd("md:book:sim:BTCUSDT", encode(BookTicker(venue="sim", symbol="BTCUSDT", bid=Decimal("99"),
                                                            ask=Decimal("101"), bid_qty=Decimal(1), ask_qty=Decimal(1), ts=1)))  # fmt: skip
    doc = (await api.get("/api/balances", headers=AUTH)).json()
    (acct,) = doc["accounts"]
    rows = {row["asset"]: row for row in acct["balances"]}
    assert (
        rows["USDT"]["total"] == "1250" and rows["BTC"]["locked"] == "0.25" and rows["BTC"]["total"] == "0.75"
    )
    assert Decimal(acct["equity"]) == Decimal("1250") + Decimal("0.75") * 100
    assert acct["unvalued"] == ["DOGE"] and acct["quote"] == "USDT"


async def test_bots_show_mode_position_profit_and_last_decision(
    api: httpx.AsyncClient, sync_redis: redis.Redis
) -> None:
    put_bot(sync_redis, "b1")
    sync_redis.xadd("bot:b1:decisions", encode(Decision(bot="b1", text="bought the dip", topic="entry")))
    (bot,) = (await api.get("/api/bots", headers=AUTH)).json()["bots"]
    assert bot["bot"] == "b1" and bot["mode"] == "running" and bot["position"] == "0.5"
    assert bot["realised"] == "1.25" and bot["last_decision"]["text"] == "bought the dip"
    assert bot["unrealised"] is not None  # the seeded ledger has an open b1 cycle priced by a candle
    detail = (await api.get("/api/bots/b1", headers=AUTH)).json()
    assert detail["summary"]["bot"] == "b1" and detail["state"]["mode"] == "running"
    assert (await api.get("/api/bots/nobody", headers=AUTH)).status_code == 404


async def test_history_from_the_ledger(api: httpx.AsyncClient) -> None:
    fills = (await api.get("/api/bots/b1/fills", headers=AUTH)).json()["fills"]
    assert [f["cid"] for f in fills][:2] == ["b1-000001", "b1-000002"]  # newest first
    cycles = (await api.get("/api/bots/b1/cycles", headers=AUTH)).json()["cycles"]
    assert [c["number"] for c in cycles] == [4, 3, 2, 1]
    profit = (await api.get("/api/profit?period=weekly&n=3", headers=AUTH)).json()
    assert len(profit["periods"]) == 3 and any(r["bot"] == "b1" for r in profit["rows"])
    equity = (await api.get("/api/equity", headers=AUTH)).json()["series"]
    assert equity and equity[0]["quote_asset"] == "USDT"
    csv = await api.get("/api/trades.csv?bot=b1", headers=AUTH)
    lines = csv.text.strip().splitlines()
    assert csv.headers["content-type"].startswith("text/csv")
    assert lines[0].startswith("time_utc,venue,symbol,bot") and len(lines) == 1 + 3


async def test_a_bad_parameter_is_a_422_naming_it(api: httpx.AsyncClient) -> None:
    reply = await api.get("/api/trades?limit=0", headers=AUTH)
    assert reply.status_code == 422 and reply.json()["error"].startswith("limit:")


async def test_pause_with_the_token_appends_the_clis_control(
    api: httpx.AsyncClient, sync_redis: redis.Redis
) -> None:
    put_bot(sync_redis, "b1")
    reply = await api.post("/api/bots/b1/pause", json={"reason": "lunch"}, headers=AUTH)
    assert reply.status_code == 200, reply.text
    ((entry_id, fields),) = sync_redis.xrange("bot:b1:control")
    msg = decode(fields)
    assert isinstance(msg, BotControl) and msg.action is ControlAction.PAUSE
    assert msg.source == "web" and msg.reason == "lunch" and reply.json()["entry"] == entry_id.decode()


async def test_control_without_or_with_a_wrong_token_is_refused(
    api: httpx.AsyncClient, sync_redis: redis.Redis
) -> None:
    put_bot(sync_redis, "b1")
    assert (await api.post("/api/bots/b1/pause", json={})).status_code == 401
    wrong = {"authorization": "Bearer " + "x" * len(TOKEN)}
    assert (await api.post("/api/bots/b1/stop", json={}, headers=wrong)).status_code == 401
    assert (
        await api.post("/api/orders", json={"side": "BUY", "symbol": "BTCUSDT", "quantity": "1"})
    ).status_code == 401
    assert sync_redis.xlen("bot:b1:control") == 0 and not sync_redis.exists("orders:cmd:sim:manual")


async def test_an_unknown_bot_gets_no_control_stream(api: httpx.AsyncClient, sync_redis: redis.Redis) -> None:
    reply = await api.post("/api/bots/typo/pause", json={}, headers=AUTH)
    assert reply.status_code == 404 and "unknown bot" in reply.json()["error"]
    assert not sync_redis.exists("bot:typo:control")


async def test_a_session_needs_the_csrf_header_and_its_own_origin(
    api: httpx.AsyncClient, sync_redis: redis.Redis
) -> None:
    put_bot(sync_redis, "b1")
    assert (await api.post("/api/login", json={"token": "wrong"})).status_code == 401
    login = await api.post("/api/login", json={"token": TOKEN})
    assert login.status_code == 200 and "automata_session" in api.cookies
    assert (await api.get("/api/bots")).status_code == 200  # the cookie is enough to read
    assert (await api.post("/api/bots/b1/pause", json={})).status_code == 403  # no CSRF header
    csrf = {"x-csrf-token": api.cookies["automata_csrf"]}
    evil = {**csrf, "origin": "http://evil.example"}
    assert (await api.post("/api/bots/b1/pause", json={}, headers=evil)).status_code == 403
    assert sync_redis.xlen("bot:b1:control") == 0
    ok = await api.post("/api/bots/b1/pause", json={}, headers={**csrf, "origin": "http://127.0.0.1:8780"})
    assert ok.status_code == 200 and sync_redis.xlen("bot:b1:control") == 1
    await api.post("/api/logout")
    assert (await api.get("/api/bots")).status_code == 401


async def test_read_only_refuses_every_control(settings: WebSettings, sync_redis: redis.Redis) -> None:
    put_bot(sync_redis, "b1")
    ro = WebSettings(**{**settings.__dict__, "read_only": True})
    async with client(ro, **AUTH) as api:
        assert (await api.get("/api/bots")).status_code == 200
        assert (await api.post("/api/bots/b1/pause", json={})).status_code == 403
        reply = await api.post("/api/orders", json={"side": "BUY", "symbol": "BTCUSDT", "quantity": "1"})
        assert reply.status_code == 403 and "read-only" in reply.json()["error"]
    assert not sync_redis.exists("bot:b1:control")


async def test_without_a_token_reads_are_open_and_control_is_refused(
    redis_server: RedisServer, sync_redis: redis.Redis
) -> None:
    put_bot(sync_redis, "b1")
    async with client(
        WebSettings(redis_url=redis_server.url, ledger_url="sqlite:////nonexistent/x.db")
    ) as api:
        assert (await api.get("/api/bots")).status_code == 200
        assert (await api.get("/api/bots/b1/fills")).json() == {"fills": []}  # no ledger yet: empty
        assert (await api.post("/api/bots/b1/pause", json={})).status_code == 403
    assert not sync_redis.exists("bot:b1:control")


async def test_a_manual_order_goes_to_the_manual_command_stream(
    api: httpx.AsyncClient, sync_redis: redis.Redis
) -> None:
    reply = await api.post("/api/orders", json={"side": "BUY", "symbol": "btcusdt", "quantity": "0.01",
                                                "price": "90000"}, headers=AUTH)  # fmt: skip
    assert reply.status_code == 200, reply.text
    ((_id, fields),) = sync_redis.xrange("orders:cmd:sim:manual")
    cmd = decode(fields)
    assert isinstance(cmd, PlaceOrder) and cmd.cid == reply.json()["cid"] and cmd.symbol == "BTCUSDT"
    assert cmd.price == Decimal("90000") and cmd.quantity == Decimal("0.01")
    bad = await api.post(
        "/api/orders", json={"side": "BUY", "symbol": "BTCUSDT", "quantity": "-1"}, headers=AUTH
    )
    assert bad.status_code == 422 and "quantity" in bad.json()["error"]
    both = await api.post("/api/orders", json={"side": "SELL", "symbol": "BTCUSDT"}, headers=AUTH)
    assert both.status_code == 422
    assert sync_redis.xlen("orders:cmd:sim:manual") == 1


async def test_a_cancel_of_a_bots_order_is_forced_and_asks_the_bot(
    api: httpx.AsyncClient, sync_redis: redis.Redis
) -> None:
    refused = await api.post("/api/orders/b1-000007/cancel", json={}, headers=AUTH)
    assert refused.status_code == 422 and "belongs to bot 'b1'" in refused.json()["error"]
    stateless = await api.post("/api/orders/b1-000007/cancel", json={"force": True}, headers=AUTH)
    assert stateless.status_code == 422 and "no state" in stateless.json()["error"]
    assert not sync_redis.exists("bot:b1:control")
    put_bot(sync_redis, "b1")
    asked = await api.post("/api/orders/b1-000007/cancel", json={"force": True, "reason": "x"}, headers=AUTH)
    assert asked.status_code == 200 and asked.json()["stream"] == "bot:b1:control"
    ((_id, fields),) = sync_redis.xrange("bot:b1:control")
    msg = decode(fields)
    assert isinstance(msg, BotControl) and (msg.action, msg.cid, msg.source) == (
        ControlAction.CANCEL,
        "b1-000007",
        "web",
    )
    sent = await api.post(
        "/api/orders/manual-000042/cancel", json={"venue": "sim", "symbol": "BTCUSDT"}, headers=AUTH
    )
    assert sent.status_code == 200 and sync_redis.xlen("orders:cmd:sim:manual") == 1
    assert not sync_redis.exists("orders:cmd:sim:b1")  # a bot's command stream: only its runner writes it


async def test_the_paper_venues_api_is_not_reachable(api: httpx.AsyncClient) -> None:
    for path in ("/api/v3/order", "/sim/api/v3/account", "/api/sim/faults", "/v5/order/create"):
        assert (await api.get(path, headers=AUTH)).status_code == 404
        assert (await api.post(path, headers=AUTH)).status_code in (404, 405)


def test_listening_beyond_loopback_without_a_token_is_refused(
    redis_server: RedisServer, tmp_path: Path
) -> None:
    proc = procs.python("services.web", "--host", "0.0.0.0", "--port", "0", env=procs.base_env(redis_server.url),
                        log_path=tmp_path / "web.log").start()  # fmt: skip
    assert proc.popen is not None and proc.popen.wait(30) == 2
    lines = proc.output().strip().splitlines()
    assert len(lines) == 1 and "without authentication" in lines[0] and "AUTOMATA_WEB_TOKEN" in lines[0]


def test_the_token_never_reaches_the_log(redis_server: RedisServer, tmp_path: Path) -> None:
    from tests.helpers.web import start_service

    proc, base = start_service(redis_server.url, tmp_path, AUTOMATA_WEB_TOKEN=TOKEN, LOG_LEVEL="DEBUG")
    assert httpx.get(base + "/api/bots", headers=AUTH, timeout=5).status_code == 200
    httpx.post(base + "/api/login", json={"token": TOKEN}, timeout=5)
    assert proc.terminate() == 0
    assert TOKEN not in proc.output() and "dashboard at" in proc.output()


async def test_a_login_form_sets_the_session_and_goes_on(api: httpx.AsyncClient) -> None:
    wrong = await api.post("/api/login", data={"token": "nope", "next": "/bots/b1"})
    assert wrong.status_code == 401 and "automata_session" not in api.cookies
    reply = await api.post("/api/login", data={"token": TOKEN, "next": "/bots/b1"})
    assert reply.status_code == 303 and reply.headers["location"] == "/bots/b1"
    assert "automata_session" in api.cookies and (await api.get("/api/bots")).status_code == 200
    away = await api.post("/api/login", data={"token": TOKEN, "next": "//evil.example/"})
    assert away.headers["location"] == "/"


async def test_the_chart_has_the_candles_and_the_bots_fills_among_them(
    api: httpx.AsyncClient, sync_redis: redis.Redis
) -> None:
    put_bot(sync_redis, "b1")  # its state says it reads md:candles:sim:BTCUSDT:1m
    start = int(ledger_data.MIDNIGHT.timestamp() * 1000) - 60_000
    for i in range(3):  # the minute before midnight (fill b1-000002) to two after (b1-000001)
        t = start + i * 60_000
        candle = Candle(venue="sim", symbol="BTCUSDT", interval="1m", open_time=t, close_time=t + 59_999,
                        open=Decimal(100), high=Decimal(111), low=Decimal(99), close=Decimal(105), volume=Decimal(1))  # fmt: skip
        sync_redis.xadd("md:candles:sim:BTCUSDT:1m", encode(candle), id=f"{t}-1")
    chart = (await api.get("/api/bots/b1/chart?limit=2", headers=AUTH)).json()
    assert chart["venue"] == "sim" and chart["interval"] == "1m"
    assert [c["open_time"] for c in chart["candles"]] == [
        start + 60_000,
        start + 120_000,
    ]  # newest 2, oldest first
    assert [f["cid"] for f in chart["fills"]] == ["b1-000001"]  # the one inside those two candles
    assert (await api.get("/api/bots/b1/chart?interval=2x", headers=AUTH)).status_code == 422


async def test_the_profit_summary_follows_a_new_fill(api: httpx.AsyncClient, ledger: str) -> None:

    from shared.ledger import schema
    from shared.ledger.db import open_ledger

    def realised() -> Decimal:
        return next(Decimal(r["realised"]) for r in rows if r["bot"] == "g1")

    rows = (await api.get("/api/profit", headers=AUTH)).json()["rows"]
    before = realised()
    engine = open_ledger(ledger, source="test")
    with engine.begin() as conn:
        later = ledger_data.NOW + ledger_data.TICK
        conn.execute(schema.cycles.insert(), [ledger_data._cycle("g1", 4, later, "5", "0.1")])
        conn.execute(
            schema.fills.insert(), [ledger_data._fill(9, "g1", "ETHUSDT", "SELL", later, "3100", "0.01")]
        )
    engine.dispose()
    rows = (await api.get("/api/profit", headers=AUTH)).json()["rows"]
    assert realised() == before + 5


async def test_a_body_too_large_is_refused_before_it_is_read(
    api: httpx.AsyncClient, sync_redis: redis.Redis
) -> None:
    put_bot(sync_redis, "b1")
    reply = await api.post("/api/bots/b1/pause", content=b'{"reason": "' + b"x" * 100_000 + b'"}',
                           headers={**AUTH, "content-type": "application/json"})  # fmt: skip
    assert reply.status_code == 413 and not sync_redis.exists("bot:b1:control")


def test_a_token_file_that_cannot_be_read_is_one_clear_line(
    redis_server: RedisServer, tmp_path: Path
) -> None:
    missing = tmp_path / "no-such-token"
    proc = procs.python("services.web", "--port", "0", log_path=tmp_path / "web.log",
                        env=procs.base_env(redis_server.url, AUTOMATA_WEB_TOKEN_FILE=str(missing))).start()  # fmt: skip
    assert proc.popen is not None and proc.popen.wait(30) == 2
    (line,) = proc.output().strip().splitlines()
    assert "AUTOMATA_WEB_TOKEN_FILE" in line and str(missing) in line


def open_dca_cycle(ledger: str, bot: str, number: int) -> None:
    """An open cycle of `bot` in the ledger: an opening market buy (two fills, average 40,500)
    and a safety buy at 40,000."""
    import sqlalchemy as sa

    from shared.ledger import schema
    from tests.helpers.ledger_data import NOW, TICK, D

    buys = [(f"{bot}-000010", "40400", "0.0001", "0.0001"), (f"{bot}-000010", "40600", "0.0001", "0.0002"),
            (f"{bot}-000011", "40000", "0.0003", "0.0003")]  # fmt: skip
    engine = sa.create_engine(ledger)
    with engine.begin() as conn:
        conn.execute(schema.cycles.insert().values(
            bot=bot, number=number, venue="sim", symbol="BTCUSDT", quote_asset="USDT", opened_at=NOW, buys=3, sells=0,
            bought_qty=D("0.0005"), sold_qty=D(0), spent=D("20.1"), received=D(0), fees=D(0)))  # fmt: skip
        for n, (cid, price, qty, cum) in enumerate(buys):
            conn.execute(schema.fills.insert().values(
                venue="sim", symbol="BTCUSDT", trade_id=f"d{n}", cid=cid, cum_filled_qty=D(cum), bot=bot, side="BUY",
                price=D(price), qty=D(qty), quote_qty=D(price) * D(qty), fee=D(0), fee_asset="USDT",
                time=NOW + n * TICK, cycle=number))  # fmt: skip
        for cid, qty, quote in ((f"{bot}-000010", "0.0002", "8.1"), (f"{bot}-000011", "0.0003", "12")):
            conn.execute(schema.orders.insert().values(
                cid=cid, bot=bot, venue="sim", symbol="BTCUSDT", side="BUY", order_type="MARKET", status="FILLED",
                orig_qty=D(qty), cum_filled_qty=D(qty), cum_quote_qty=D(quote), fee=D(0), created_at=NOW,
                updated_at=NOW))  # fmt: skip
    engine.dispose()


async def test_a_dca_bots_ladder_its_decisions_and_notifications(
    settings: WebSettings, sync_redis: redis.Redis, tmp_path: Path
) -> None:
    import msgspec

    from shared.filters import SymbolFilters
    from shared.messages import Notification
    from tests.helpers.bots import write_bots

    bots = write_bots(tmp_path / "bots.toml", {"id": "d1", "strategy": "dca", "symbol": "BTCUSDT"},
                      {"id": "g9", "strategy": "grid"})  # fmt: skip
    filters = SymbolFilters(symbol="BTCUSDT", base_asset="BTC", quote_asset="USDT", tick_size=Decimal("0.01"),
                            step_size=Decimal("0.00001"), min_notional=Decimal(5))  # fmt: skip
    sync_redis.hset("venue:sim:symbols", "BTCUSDT", msgspec.json.encode(filters))
    put_bot(sync_redis, "d1", bot_doc(phase="safety", level=1, cycle=3, last_buy_price="40000"))
    for i in range(3):
        sync_redis.xadd("bot:d1:decisions", encode(Decision(bot="d1", text=f"decision {i}")))
    sync_redis.xadd("notify", encode(Notification(id="n1", kind="fill", text="d1 bought", bot="d1")))
    sync_redis.xadd("notify", encode(Notification(id="n2", kind="info", text="something else")))
    async with client(WebSettings(**{**settings.__dict__, "bots_file": str(bots)}), **AUTH) as api:
        # a safety order filled (the state's last buy is its 40,000) but the ledger has no opening
        # buy: no reference to start from rather than a ladder shifted down to the safety level
        assert (await api.get("/api/bots/d1/plan")).status_code == 404
        open_dca_cycle(settings.ledger_url, "d1", 3)
        plan = (await api.get("/api/bots/d1/plan")).json()
        # the ladder starts at the opening buy's average (8.1 / 0.0002), not at the last buy
        assert (
            Decimal(plan["ref_price"]) == Decimal("40500")
            and plan["cycle"] == 3
            and plan["phase"] == "safety"
        )
        levels = plan["levels"]
        assert (
            levels[0]["level"] == 0
            and levels[0]["filled"]
            and levels[1]["filled"]
            and not levels[2]["filled"]
        )
        assert Decimal(levels[1]["price"]) < Decimal(levels[0]["price"])  # a safety order buys lower
        assert (await api.get("/api/bots/d1/plan?price=50000")).json()["ref_price"] == "50000"
        assert (await api.get("/api/bots/d1/plan?price=-1")).status_code == 422
        assert (await api.get("/api/bots/b1/plan")).status_code == 404  # not a DCA bot of the bots file
        decisions = (await api.get("/api/bots/d1/decisions?limit=2")).json()["decisions"]
        assert [d["text"] for d in decisions] == ["decision 2", "decision 1"]
        mine = (await api.get("/api/notifications?bot=d1")).json()["notifications"]
        assert [n["text"] for n in mine] == ["d1 bought"]
        assert len((await api.get("/api/notifications")).json()["notifications"]) == 2


def test_read_only_from_the_command_line(
    redis_server: RedisServer, tmp_path: Path, sync_redis: redis.Redis
) -> None:
    from tests.helpers.web import start_service

    put_bot(sync_redis, "b1")
    proc, base = start_service(redis_server.url, tmp_path, "--read-only", AUTOMATA_WEB_TOKEN=TOKEN)
    assert httpx.get(base + "/api/health", timeout=5).json()["read_only"] is True
    assert httpx.post(base + "/api/bots/b1/pause", json={}, headers=AUTH, timeout=5).status_code == 403
    assert not sync_redis.exists("bot:b1:control") and proc.terminate() == 0


async def test_wrong_logins_are_limited_per_client_address(settings: WebSettings) -> None:
    async with client(settings) as api:
        for _ in range(5):
            assert (await api.post("/api/login", json={"token": "wrong-guess"})).status_code == 401
        refused = await api.post("/api/login", json={"token": "wrong-guess"})
        assert refused.status_code == 429 and 1 <= int(refused.headers["retry-after"]) <= 60
        assert "too many wrong tokens" in refused.json()["error"]
        # while limited even the right token is not compared: a guesser learns nothing
        assert (await api.post("/api/login", json={"token": TOKEN})).status_code == 429
        # another address is not held back by this one's failures
        app = api._transport.app  # type: ignore[attr-defined]
        other = httpx.ASGITransport(app=app, client=("192.0.2.7", 4000))
        async with httpx.AsyncClient(transport=other, base_url=str(api.base_url)) as elsewhere:
            assert (await elsewhere.post("/api/login", json={"token": TOKEN})).status_code == 200


async def test_the_overview_and_a_bots_page_give_the_same_unrealised_profit(
    settings: WebSettings, sync_redis: redis.Redis, tmp_path: Path
) -> None:
    for bot in ("b1", "x1", "z9"):  # open cycles priced by a candle and by a fill; no cycle at all
        put_bot(sync_redis, bot)

    async def both(api: httpx.AsyncClient) -> list[tuple[object, object]]:
        listed = {b["bot"]: b["unrealised"] for b in (await api.get("/api/bots")).json()["bots"]}
        return [(listed[bot], (await api.get(f"/api/bots/{bot}")).json()["summary"]["unrealised"])
                for bot in ("b1", "x1", "z9")]  # fmt: skip

    async with client(settings, **AUTH) as api:
        # b1: 0.2 BTC at the newest candle's 105 less 19.04; x1 at its last fill; z9 holds nothing
        assert await both(api) == [("1.96", "1.96"), ("-0.000035", "-0.000035"), ("0", "0")]
    # a ledger the ledger service has not created yet: not known on either, never a guess on one
    early = WebSettings(**{**settings.__dict__, "ledger_url": f"sqlite:///{tmp_path / 'not-yet.sqlite3'}"})
    async with client(early, **AUTH) as api:
        assert await both(api) == [(None, None)] * 3


async def test_the_equity_is_the_clis_window_not_every_clock_in_the_ledger(
    api: httpx.AsyncClient, ledger: str
) -> None:
    """The paper venue's market runs on its own clock (from 2024-01-01) while the balance
    snapshots carry the wall clock: the ledger holds equity on both. The overview drew one line
    from 2024 to now, its drawdown from a 2024 high; it shows what `automata equity` shows, the
    last 30 days (or the 30 up to the newest value), with that window's drawdown."""
    from datetime import UTC, datetime

    from shared.ledger import queries, schema
    from shared.ledger.db import open_ledger

    engine = open_ledger(ledger, source="test")
    with engine.begin() as conn:
        conn.execute(schema.equity.insert(), [dict(venue="sim", quote_asset="USDT", at=datetime(2024, 1, 1, 9, tzinfo=UTC),
                                                   value=Decimal(5000), unvalued="ETH")])  # fmt: skip
        cli = queries.equity_window(conn).series[0]
    engine.dispose()
    series = (await api.get("/api/equity", headers=AUTH)).json()["series"][0]
    assert series["first"]["at"] == int(datetime(2026, 12, 4, 10, tzinfo=UTC).timestamp() * 1000)
    assert Decimal(series["drawdown"]) == cli.drawdown == 110 and Decimal(series["high"]["value"]) == 1100
    everything = (await api.get("/api/equity?since=0", headers=AUTH)).json()["series"][0]
    assert Decimal(everything["high"]["value"]) == 5000  # asked for: the whole ledger


def padded(value: object) -> list[str]:
    """Every money text in a JSON document with NUMERIC's padding ('42000.000000000000000000', '0E-18')."""
    if isinstance(value, dict):
        return [p for v in value.values() for p in padded(v)]
    if isinstance(value, list):
        return [p for v in value for p in padded(v)]
    if isinstance(value, str) and re.fullmatch(r"-?\d+\.\d*0{6,}|-?\d\.\d*0E-\d+|-?0E-\d+", value):
        return [value]
    return []


async def test_money_reads_the_same_from_either_database(redis_server: RedisServer, ledger_url: str) -> None:
    """On PostgreSQL every amount came out with NUMERIC(38, 18)'s 18 places ('0E-18' for a zero
    fee, '41825.980000000000000000'), on SQLite as written: the API differed by database."""
    ledger_data.seeded(ledger_url)
    settings = WebSettings(redis_url=redis_server.url, ledger_url=ledger_url, token=TOKEN)
    async with client(settings) as api:
        for path in ("/api/trades", "/api/bots/b1/fills", "/api/bots/b1/cycles", "/api/bots/b1/orders",
                     "/api/profit", "/api/equity"):  # fmt: skip
            reply = await api.get(path, headers=AUTH)
            assert reply.status_code == 200, reply.text
            assert padded(reply.json()) == [], path
