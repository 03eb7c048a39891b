"""A Redis whose disk can fill up and get room again, without root: redis-server runs under a
file-size limit (RLIMIT_FSIZE) that the test lowers to the AOF's present size, so its next append
fails as on a full disk (Redis reports "No space left on device" and answers MISCONF to every
write), and raises again to give it room. SIGXFSZ is ignored in the server (set before exec, so
inherited), or the first refused write would kill it instead."""

from __future__ import annotations

import resource
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import redis

from shared.redis_conn import RedisWritesRefused
from shared.redis_server import RedisServer
from tests.helpers.procs import wait_until

if TYPE_CHECKING:
    from tests.helpers.powercut import Stack

# what every service logs while Redis refuses writes (shared/redis_conn.py: unavailable)
REFUSED = "redis refuses writes"

# exec redis-server with SIGXFSZ ignored (an ignored signal stays ignored across exec)
_IGNORE_XFSZ = "import os, signal, sys; signal.signal(signal.SIGXFSZ, signal.SIG_IGN); os.execv(sys.argv[1], sys.argv[1:])"


class FillableRedis(RedisServer):
    """A RedisServer (AOF on) whose disk `fill()` fills and `make_room()` frees."""

    def args(self) -> list[str]:
        return [sys.executable, "-c", _IGNORE_XFSZ, *super().args()]

    def _limit(self, size: int) -> None:
        assert self.proc is not None and self.proc.poll() is None, "redis-server is not running"
        resource.prlimit(self.proc.pid, resource.RLIMIT_FSIZE, (size, resource.RLIM_INFINITY))

    def fill(self, client: redis.Redis) -> None:
        """No room for one more byte of AOF; returns once Redis refuses writes (a write of the
        test's own finds the disk full)."""
        incr = max(self.aof_dir.glob("*.incr.aof"), key=lambda p: p.stat().st_mtime)
        self._limit(incr.stat().st_size)

        def refused() -> bool:
            try:
                client.set("full_disk:probe", "1")
            except RedisWritesRefused:
                return True
            return False

        wait_until(refused, timeout=10, what="redis refusing writes (its AOF cannot grow)")

    def make_room(self, client: redis.Redis) -> None:
        """Room again; returns once Redis takes writes (it retries its AOF on its own)."""
        self._limit(resource.RLIM_INFINITY)

        def taken() -> bool:
            try:
                return bool(client.set("full_disk:probe", "2"))
            except RedisWritesRefused:
                return False

        wait_until(taken, timeout=10, what="redis taking writes again")


def start_fillable(directory: Path) -> FillableRedis:
    server = FillableRedis(directory)
    server.start()
    return server


def fill_the_disk(stack: Stack, candles: int = 2) -> None:
    """A power-cut cycle's full disk (tests/helpers/powercut.py): Redis refuses every write while
    the market moves on `candles` (resting orders fill at the venue, nobody can book them), until
    every service has said why it waits (its heartbeat, at most 5 s: the bots' leases lapse by
    then). The stack's `until` fails the cycle if a process exits meanwhile."""
    server = stack.server
    assert isinstance(server, FillableRedis), "a full-disk cycle needs a FillableRedis"
    server.fill(stack.r)
    seen = {name: len(proc.output()) for name, proc in stack.procs.items()}
    for _ in range(candles):
        stack.advance(pace=False)
    stack.until(lambda: all(REFUSED in p.output()[seen[n]:] for n, p in stack.procs.items()),
                "every service saying Redis refuses writes", 30)  # fmt: skip
