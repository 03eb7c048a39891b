"""The generated Redis ACL (shared/redis_acl.py) against a real redis-server loaded with it: each
service's user can do what the service does and is refused (NOPERM) what it may not do; without
a password nothing works. The services running under it: tests/test_demo.py."""

from __future__ import annotations

import stat
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
from redis.backoff import NoBackoff
from redis.exceptions import AuthenticationError, NoPermissionError, ResponseError
from redis.retry import Retry

from services.ledger.retention import TRIM
from shared.redis_acl import Runner
from shared.redis_server import RedisServer
from tests.helpers.acl import start_acl_redis

RUNNER = Runner("bots_one", "one", (("alpha", "sim"), ("beta", "sim")))
OTHER = Runner("bot_gamma", "gamma", (("gamma", "binance"),))
Call = Callable[[redis.Redis], Any]


@pytest.fixture(scope="module")
def acl_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[RedisServer, Path]]:
    root = tmp_path_factory.mktemp("acl")
    secrets = root / "secrets"
    server = start_acl_redis(root / "redis", secrets, [RUNNER, OTHER])
    try:
        yield server, secrets
    finally:
        server.kill()


@pytest.fixture(scope="module")
def connect(acl_server: tuple[RedisServer, Path]) -> Iterator[Callable[[str], redis.Redis]]:
    server, secrets = acl_server
    clients: list[redis.Redis] = []

    def as_user(user: str) -> redis.Redis:
        client = redis.Redis(port=server.port, username=user, password=(secrets / user).read_text().strip())
        clients.append(client)
        return client

    admin = as_user("admin")
    # what the services find in a running system
    admin.xadd("md:candles:sim:BTCUSDT:1m", {"m": "1"})
    admin.xadd("md:candles:binance:BTCUSDT:1m", {"m": "1"})
    admin.xadd("account:sim", {"m": "1"})
    admin.hset("venue:sim:symbols", "BTCUSDT", "{}")
    for bot in ("alpha", "gamma"):
        admin.set(f"bot:{bot}:state", "{}")
        admin.xadd(f"orders:events:{bot}", {"m": "1"})
        admin.xadd(f"bot:{bot}:control", {"m": "1"})
    admin.hset("og:order:gamma-1", "cid", "gamma-1")
    admin.xadd("orders:cmd:sim", {"m": "1"})  # the legacy shared stream an upgrade may leave
    admin.xadd("orders:cmd:sim:gamma", {"m": "1"})
    admin.xadd("notify", {"m": "1"})
    yield as_user
    for client in clients:
        client.close()


def denied(client: redis.Redis, call: Call) -> bool:
    try:
        call(client)
    except NoPermissionError:
        return True
    except ResponseError as exc:  # a command a script runs, refused: the script fails
        return "can't access" in str(exc) or "no permissions" in str(exc)
    return False


def allowed(client: redis.Redis, calls: dict[str, Call]) -> None:
    for what, call in calls.items():
        try:
            call(client)
        except ResponseError as exc:
            if "BUSYGROUP" not in str(exc):
                raise AssertionError(f"{what}: {exc}") from None


def refused(client: redis.Redis, calls: dict[str, Call]) -> None:
    for what, call in calls.items():
        assert denied(client, call), f"{what} was allowed"


def test_the_files_are_private_and_hold_only_hashes(acl_server) -> None:
    _, secrets = acl_server
    assert stat.S_IMODE(secrets.stat().st_mode) == 0o700
    text = (secrets / "users.acl").read_text()
    for path in secrets.iterdir():
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, path
        if path.name != "users.acl":
            assert path.read_text().strip() not in text  # only `#<sha256>`
    assert "user default off" in text


def test_without_a_password_nothing_works(acl_server) -> None:
    server, _ = acl_server
    once = Retry(NoBackoff(), 0)  # redis-py retries a refused AUTH (a ConnectionError) with backoff
    anonymous = redis.Redis(port=server.port, retry=once)
    with pytest.raises(AuthenticationError):
        anonymous.ping()
    with pytest.raises(AuthenticationError):
        redis.Redis(port=server.port, username="bots_one", password="wrong", retry=once).ping()
    anonymous.close()


def test_a_strategy_runner_reaches_only_its_own_bots(connect) -> None:
    bot = connect("bots_one")
    pipe = bot.pipeline(transaction=True)
    pipe.set("bot:alpha:state", "{}").zadd("bot:beta:timers", {"t": 1}).xadd("bot:alpha:control", {"m": "1"})
    allowed(
        bot,
        {
            "group on market data": lambda r: r.xgroup_create(
                "md:candles:sim:BTCUSDT:1m", "bot:alpha", id="0"
            ),
            "own events group": lambda r: r.xgroup_create("orders:events:alpha", "bot:alpha", id="0"),
            "own control group": lambda r: r.xgroup_create("bot:alpha:control", "bot:alpha", id="0"),
            "read in group": lambda r: r.xreadgroup(
                "bot:alpha",
                "c",
                {"md:candles:sim:BTCUSDT:1m": ">", "orders:events:alpha": "0", "bot:alpha:control": "0"},
            ),
            "ack market data": lambda r: r.xack("md:candles:sim:BTCUSDT:1m", "bot:alpha", "0-1"),
            "autoclaim": lambda r: r.xautoclaim("md:candles:sim:BTCUSDT:1m", "bot:alpha", "c", 0),
            "own order commands": lambda r: r.xadd("orders:cmd:sim:alpha", {"m": "1"}),
            "its other bot's order commands": lambda r: r.xadd("orders:cmd:sim:beta", {"m": "1"}),
            "notification": lambda r: r.xadd("notify", {"m": "1"}),
            "own decisions, trimmed": lambda r: r.xadd("bot:beta:decisions", {"m": "1"}, maxlen=5000),
            "dead letter": lambda r: r.xadd("dlq:md:candles:sim:BTCUSDT:1m", {"m": "1"}),
            "balances": lambda r: r.xrevrange("account:sim", count=5),
            "filters": lambda r: r.hget("venue:sim:symbols", "BTCUSDT"),
            "state + lease": lambda r: r.mget("bot:alpha:lease", "bot:alpha:state"),
            "lease": lambda r: r.set("bot:alpha:lease", "me", px=10_000),
            "commit": lambda r: pipe.watch("bot:alpha:lease", "bot:alpha:state") or pipe.execute(),
            "own keys deleted": lambda r: r.delete("bot:beta:timers", "bot:alpha:lease"),
            "heartbeat": lambda r: r.set("svc:strategy_runner:one", "{}", px=15_000),
        },
    )
    refused(
        bot,
        {
            "XADD market data": lambda r: r.xadd("md:candles:sim:BTCUSDT:1m", {"m": "1"}),
            "XADD another bot's events": lambda r: r.xadd("orders:events:gamma", {"m": "1"}),
            "XADD its own venue's account": lambda r: r.xadd("account:sim", {"m": "1"}),
            "XADD another venue's commands": lambda r: r.xadd("orders:cmd:binance:alpha", {"m": "1"}),
            "XADD another bot's commands": lambda r: r.xadd("orders:cmd:sim:gamma", {"m": "1"}),
            "XADD a new bot's commands": lambda r: r.xadd("orders:cmd:sim:delta", {"m": "1"}),
            "XADD the legacy shared commands": lambda r: r.xadd("orders:cmd:sim", {"m": "1"}),
            "XADD another venue's legacy commands": lambda r: r.xadd("orders:cmd:binance", {"m": "1"}),
            "read its own commands": lambda r: r.xrange("orders:cmd:sim:alpha"),
            "DEL its own commands": lambda r: r.delete("orders:cmd:sim:alpha"),
            "XTRIM another bot's commands": lambda r: r.xtrim("orders:cmd:sim:gamma", maxlen=0),
            "read another venue's market data": lambda r: r.xrange("md:candles:binance:BTCUSDT:1m"),
            "SET another bot's state": lambda r: r.set("bot:gamma:state", "{}"),
            "GET another bot's state": lambda r: r.get("bot:gamma:state"),
            "XADD another bot's control": lambda r: r.xadd("bot:gamma:control", {"m": "1"}),
            "XADD another bot's decisions": lambda r: r.xadd("bot:gamma:decisions", {"m": "1"}),
            "read another bot's decisions": lambda r: r.xrange("bot:gamma:decisions"),
            "DEL another bot's key": lambda r: r.delete("bot:gamma:state"),
            "UNLINK market data": lambda r: r.unlink("md:candles:sim:BTCUSDT:1m"),
            "DEL the notifications": lambda r: r.delete("notify"),
            "XTRIM market data": lambda r: r.xtrim("md:candles:sim:BTCUSDT:1m", maxlen=0),
            "EVAL": lambda r: r.eval("return 1", 0),
            "EVALSHA": lambda r: r.evalsha("e0e1f9fabfc9d4800c877a703b823ac0578ff8db", 0),
            "SCRIPT LOAD": lambda r: r.script_load("return 1"),
            "SCRIPT FLUSH": lambda r: r.script_flush(),
            "FUNCTION FLUSH": lambda r: r.function_flush(),
            "XGROUP DESTROY": lambda r: r.xgroup_destroy("orders:events:alpha", "bot:alpha"),
            "XGROUP DESTROY market data": lambda r: r.xgroup_destroy(
                "md:candles:sim:BTCUSDT:1m", "bot:alpha"
            ),
            "XGROUP SETID": lambda r: r.xgroup_setid("orders:events:alpha", "bot:alpha", "$"),
            "SCAN": lambda r: r.scan(0),
            "KEYS": lambda r: r.keys("*"),
            "RANDOMKEY": lambda r: r.randomkey(),
            "FLUSHALL": lambda r: r.flushall(),
            "FLUSHDB": lambda r: r.flushdb(),
            "CONFIG": lambda r: r.config_get("*"),
            "ACL": lambda r: r.acl_list(),
            "SHUTDOWN": lambda r: r.execute_command("SHUTDOWN", "NOSAVE"),
            "CLIENT KILL": lambda r: r.execute_command("CLIENT", "KILL", "TYPE", "normal"),
            "MONITOR-like CLIENT LIST": lambda r: r.client_list(),
            "PUBLISH": lambda r: r.publish("anything", "x"),
            "the order gateway's records": lambda r: r.hgetall("og:order:gamma-1"),
            "the order gateway's lease": lambda r: r.set("og:lease:sim", "me"),
            "another runner's heartbeat": lambda r: r.set("svc:strategy_runner:gamma", "{}"),
            "the weight budget": lambda r: r.hincrby("ratelimit:sim", "used", 1),
            "RENAME into its keys": lambda r: r.rename("notify", "bot:alpha:stolen"),
            "COPY out of another bot": lambda r: r.copy("bot:gamma:state", "bot:alpha:copy"),
        },
    )


def test_the_market_gateway_writes_market_data_only(connect) -> None:
    mg = connect("market_gateway")
    allowed(
        mg,
        {
            "candle": lambda r: r.xadd("md:candles:sim:BTCUSDT:1m", {"m": "1"}),
            "last candle": lambda r: r.xrevrange("md:candles:sim:BTCUSDT:1m", count=1),
            "alert": lambda r: r.xadd("notify", {"m": "1"}),
            "weight budget": lambda r: r.hincrby("ratelimit:binance", "used", 1),
            "script": lambda r: r.register_script("return redis.call('XADD', KEYS[1], '*', 'a', '1')")(
                keys=["md:book:sim:BTCUSDT"]
            ),
        },
    )
    refused(
        mg,
        {
            "an order command": lambda r: r.xadd("orders:cmd:sim:alpha", {"m": "1"}),
            "a bot's state": lambda r: r.set("bot:alpha:state", "{}"),
            "a bot's control": lambda r: r.xadd("bot:alpha:control", {"m": "1"}),
            "order events": lambda r: r.xadd("orders:events:alpha", {"m": "1"}),
            "a script writing an order command": lambda r: r.register_script(
                "return redis.call('XADD', 'orders:cmd:sim:alpha', '*', 'a', '1')"
            )(keys=["md:book:sim:BTCUSDT"]),
            "reading notifications": lambda r: r.xrange("notify"),
            "SCAN": lambda r: r.scan(0),
            "FLUSHALL": lambda r: r.flushall(),
            "SCRIPT FLUSH": lambda r: r.script_flush(),
            "FUNCTION FLUSH": lambda r: r.function_flush(),
        },
    )


def test_the_order_gateway_cannot_touch_bot_state(connect) -> None:
    og = connect("order_gateway")
    allowed(
        og,
        {
            "commands group": lambda r: r.xgroup_create("orders:cmd:sim:gamma", "order_gateway", id="0"),
            "legacy commands group": lambda r: r.xgroup_create("orders:cmd:sim", "order_gateway", id="0"),
            "read commands": lambda r: r.xreadgroup(
                "order_gateway", "c", {"orders:cmd:sim:gamma": ">", "orders:cmd:sim": ">"}
            ),
            "find the bots' command streams": lambda r: r.scan(0, match="orders:cmd:sim:*", _type="stream"),
            "a new bot's stream, before its first command": lambda r: r.xgroup_create(
                "orders:cmd:sim:delta", "order_gateway", id="0", mkstream=True
            ),
            "dead-letter a command": lambda r: r.xadd("dlq:orders:cmd:sim:gamma", {"m": "1"}),
            "an event to a bot": lambda r: r.xadd("orders:events:alpha", {"m": "1"}),
            "account": lambda r: r.xadd("account:sim", {"m": "1"}),
            "filters": lambda r: r.hset("venue:sim:symbols", "ETHUSDT", "{}"),
            "records": lambda r: r.hset("og:order:alpha-1", "cid", "alpha-1"),
            "open set": lambda r: r.sadd("og:open:sim", "alpha-1"),
            "list records": lambda r: r.hset("og:list:alpha-1", "list_cid", "alpha-1"),
            "open lists": lambda r: r.sadd("og:lists:sim", "alpha-1"),
            "the book, for an emulated OCO": lambda r: r.xrevrange("md:book:sim:BTCUSDT", count=1),
            "the book's new entries": lambda r: r.xread({"md:book:sim:BTCUSDT": "0-0"}, count=1),
            "whether the book exists (warned when it does not)": lambda r: r.exists("md:book:sim:BTCUSDT"),
            "reconcile scan": lambda r: r.scan(0, match="og:order:*"),
            "notification": lambda r: r.xadd("notify", {"m": "1"}),
        },
    )
    refused(
        og,
        {
            "GET a bot's state": lambda r: r.get("bot:alpha:state"),
            "SET a bot's state": lambda r: r.set("bot:alpha:state", "{}"),
            "a bot's control": lambda r: r.xadd("bot:alpha:control", {"m": "1"}),
            "market data": lambda r: r.xadd("md:candles:sim:BTCUSDT:1m", {"m": "1"}),
            "write the book": lambda r: r.xadd("md:book:sim:BTCUSDT", {"m": "1"}),
            "FLUSHALL": lambda r: r.flushall(),
            "KEYS": lambda r: r.keys("*"),
            "CONFIG": lambda r: r.config_get("*"),
            "FUNCTION FLUSH": lambda r: r.function_flush(),
        },
    )


def test_the_notifier_cannot_send_orders(connect) -> None:
    nt = connect("notifier")
    allowed(
        nt,
        {
            "its group": lambda r: r.xgroup_create("notify", "notifier:console", id="0"),
            "read": lambda r: r.xreadgroup("notifier:console", "c", {"notify": ">"}),
            "dedupe": lambda r: r.hset("notifier:sent:console:n1", "t", 1),
            "/status": lambda r: [r.get(k) for k in r.scan_iter(match="bot:*:state")],
            "/pause": lambda r: (
                r.exists("bot:alpha:state", "bot:alpha:control") and r.xadd("bot:alpha:control", {"m": "1"})
            ),
            "/balance": lambda r: r.xrevrange("account:sim", count=5),
            # /status, /bots, /balance, /trades show amounts at the symbol's tick and step
            "the symbol filters": lambda r: r.hgetall("venue:sim:symbols"),
        },
    )
    refused(
        nt,
        {
            "an order command": lambda r: r.xadd("orders:cmd:sim:alpha", {"m": "1"}),
            "a bot's state": lambda r: r.set("bot:alpha:state", "{}"),
            "order events": lambda r: r.xadd("orders:events:alpha", {"m": "1"}),
            "the order gateway's records": lambda r: r.hgetall("og:order:gamma-1"),
            "FLUSHALL": lambda r: r.flushall(),
            "EVAL": lambda r: r.eval("return 1", 0),
        },
    )


def watched(client: redis.Redis, key: str, commands: Callable[[Any], object]) -> None:
    """WATCH key, then the commands in MULTI/EXEC (as the ledger's retention does)."""
    with client.pipeline() as pipe:
        pipe.watch(key)
        pipe.multi()
        commands(pipe)
        pipe.execute()


def test_the_ledger_reads_what_it_keeps_and_writes_nothing_anyone_acts_on(connect) -> None:
    lg = connect("ledger")
    allowed(
        lg,
        {
            "its groups": lambda r: [
                r.xgroup_create(k, "ledger", id="0")
                for k in ("orders:events:alpha", "account:sim", "md:candles:sim:BTCUSDT:1m", "notify")
            ],
            "read": lambda r: r.xreadgroup("ledger", "c", {"orders:events:alpha": ">", "notify": ">"}),
            "ack": lambda r: r.xack("orders:events:alpha", "ledger", "0-1"),
            "gaps": lambda r: (r.xinfo_stream("account:sim"), r.xinfo_groups("account:sim")),
            "new bots": lambda r: list(r.scan_iter(match="orders:events:*", _type="stream")),
            "filters": lambda r: r.hgetall("venue:sim:symbols"),
            "a bot's state (the position it took over)": lambda r: r.get("bot:alpha:state"),
            "a gap report": lambda r: r.xadd("notify", {"m": "1"}),
            "a dead letter": lambda r: r.xadd("dlq:orders:events:alpha", {"m": "1"}),
            "heartbeat": lambda r: (r.set("svc:ledger:t1", "{}", px=1000), r.delete("svc:ledger:t1")),
            "retention: a stream": lambda r: r.register_script(TRIM)(
                keys=["orders:events:alpha"], args=["ledger", "1-0"]
            ),
            "retention: a record": lambda r: (
                r.sismember("og:open:sim", "gamma-2"),
                watched(
                    r,
                    "og:order:gamma-2",
                    lambda p: (p.hmget("og:order:gamma-2", ["status"]), p.delete("og:order:gamma-2")),
                ),
            ),
            "retention: a list": lambda r: (
                r.sismember("og:lists:sim", "gamma-3"),
                r.pipeline().watch("og:list:gamma-3", "og:order:gamma-4", "og:order:gamma-5"),
                watched(
                    r,
                    "og:list:gamma-3",
                    lambda p: (p.hmget("og:list:gamma-3", ["phase", "legs"]), p.delete("og:list:gamma-3")),
                ),
            ),
        },
    )
    # retention: whether a bot's command is still pending (NOGROUP here: allowed, nothing to see)
    assert not denied(lg, lambda r: r.xpending("orders:cmd:sim:gamma", "order_gateway"))
    refused(
        lg,
        {
            "order events": lambda r: r.xadd("orders:events:alpha", {"m": "1"}),
            "an order command": lambda r: r.xadd("orders:cmd:sim:alpha", {"m": "1"}),
            "a bot's control": lambda r: r.xadd("bot:alpha:control", {"m": "1"}),
            "writing a bot's state": lambda r: r.set("bot:alpha:state", "{}"),
            "a bot's decisions": lambda r: r.xrange("bot:alpha:decisions"),
            "market data": lambda r: r.xadd("md:candles:sim:BTCUSDT:1m", {"m": "1"}),
            "the filters": lambda r: r.hset("venue:sim:symbols", "X", "{}"),
            "trimming market data": lambda r: r.xtrim("md:candles:sim:BTCUSDT:1m", maxlen=0),
            "by the script": lambda r: r.register_script(TRIM)(
                keys=["md:candles:sim:BTCUSDT:1m"], args=["ledger", "9-0"]
            ),
            "writing the order gateway's records": lambda r: r.hset("og:order:gamma-1", "status", "NEW"),
            "reading them whole": lambda r: r.hgetall("og:order:gamma-1"),
            "the open set": lambda r: r.srem("og:open:sim", "gamma-1"),
            "writing a list's record": lambda r: r.hset("og:list:gamma-3", "phase", "done"),
            "reading it whole": lambda r: r.hgetall("og:list:gamma-3"),
            "the open lists": lambda r: r.srem("og:lists:sim", "gamma-3"),
            "its lease": lambda r: r.delete("og:lease:sim"),
            "FLUSHALL": lambda r: r.flushall(),
        },
    )


def test_the_web_service_reads_and_sends_only_what_the_cli_sends(connect, acl_server) -> None:
    """The real dashboard as user `web`: every read endpoint, a pause and a manual order work, and
    the live feed's plain XREAD; a bot's command stream, its state and the services' groups do not."""
    import asyncio

    from services.web.settings import WebSettings
    from tests.helpers.web import TOKEN, client

    server, secrets = acl_server
    password = (secrets / "web").read_text().strip()
    settings = WebSettings(redis_url=f"redis://web:{password}@127.0.0.1:{server.port}/0",
                           ledger_url="sqlite:////nonexistent/ledger.db", token=TOKEN)  # fmt: skip

    async def use_it() -> None:
        async with client(settings, authorization=f"Bearer {TOKEN}") as web:
            for path in ("/api/health", "/api/services", "/api/balances", "/api/bots", "/api/bots/alpha",
                         "/api/bots/alpha/decisions", "/api/bots/alpha/chart", "/api/notifications"):  # fmt: skip
                reply = await web.get(path)
                assert reply.status_code == 200, (path, reply.text)
            assert (await web.get("/api/health")).json()["redis"] is True
            assert (await web.post("/api/bots/alpha/pause", json={})).status_code == 200
            order = await web.post(
                "/api/orders", json={"side": "BUY", "symbol": "BTCUSDT", "quantity": "0.01"}
            )
            assert order.status_code == 200, order.text

    asyncio.run(use_it())
    wb = connect("web")
    allowed(
        wb,
        {
            "the live feed": lambda r: r.xread(
                {"notify": "0", "account:sim": "0", "orders:events:alpha": "0"}
            ),
            "heartbeat": lambda r: (r.set("svc:web:t1", "{}", px=1000), r.delete("svc:web:t1")),
            "a candle chart": lambda r: r.xrevrange("md:candles:sim:BTCUSDT:1m", count=10),
            "an order's record": lambda r: r.hgetall("og:order:gamma-1"),
        },
    )
    refused(
        wb,
        {
            "a bot's command stream": lambda r: r.xadd("orders:cmd:sim:alpha", {"m": "1"}),
            "a bot's state": lambda r: r.set("bot:alpha:state", "{}"),
            "order events": lambda r: r.xadd("orders:events:alpha", {"m": "1"}),
            "notify": lambda r: r.xadd("notify", {"m": "1"}),
            "a service's group": lambda r: r.xreadgroup("ledger", "c", {"notify": ">"}),
            "market data": lambda r: r.xadd("md:candles:sim:BTCUSDT:1m", {"m": "1"}),
            "trimming": lambda r: r.xtrim("notify", maxlen=0),
            "FLUSHALL": lambda r: r.flushall(),
            "a script of its own": lambda r: r.eval(
                "return redis.call('DEL', KEYS[1])", 1, "bot:alpha:state"
            ),
        },
    )


def test_transactions_written_under_the_acl_survive_a_restart(tmp_path) -> None:
    """Redis replays its append-only file as the `default` user and checks each EXEC against that
    user's rights again: with none (the file's first form), every MULTI/EXEC of the file, bots'
    states and the commands beside them, was refused at the restart and lost (NOPERM in the log)."""
    secrets = tmp_path / "secrets"
    server = start_acl_redis(tmp_path / "redis", secrets, [RUNNER])
    password = (secrets / "admin").read_text().strip()
    try:
        with redis.Redis(port=server.port, username="admin", password=password) as admin:
            admin.set("svc:web:t1", "{}")  # a plain write first, as in every running system
            with admin.pipeline(transaction=True) as commit:
                commit.set("bot:alpha:state", '{"version":7}')
                commit.xadd("orders:cmd:sim:alpha", {"m": "1"})
                commit.execute()
        server.stop()  # a clean stop: everything is in the file
        server.start()
        with redis.Redis(port=server.port, username="admin", password=password) as admin:
            assert admin.get("bot:alpha:state") == b'{"version":7}'
            assert admin.xlen("orders:cmd:sim:alpha") == 1
        assert "NOPERM" not in (server.directory / "redis.log").read_text()
        with pytest.raises(AuthenticationError):  # and `default` still lets nobody in
            redis.Redis(port=server.port, retry=Retry(NoBackoff(), 0)).ping()
    finally:
        server.kill()
