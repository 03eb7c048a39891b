"""Shared plumbing of the service benches (bench/order_gateway.py, bench/strategy_runner.py).

Not a bench itself (running it does nothing). It starts what the benches measure as real
processes, the way production runs them: a private redis-server (AOF on) on a free port, the
paper venue (`python -m services.exchange_sim`, step mode, rate limits off so the figures are
the software's, not Binance's quota), the order gateway (`python -m services.order_gateway`,
production defaults but a weight limit no bench reaches) and strategy runners. Measuring code
runs in spawned child processes under uvloop, as the services do; latencies are taken with
`time.monotonic_ns()`, which Linux shares between processes.
"""

from __future__ import annotations

import contextlib
import datetime
import multiprocessing as mp
import os
import platform
import shutil
import sys
import tempfile
import time
from collections.abc import Callable, Coroutine, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # `python bench/x.py` puts bench/ first, not the repository
    sys.path.insert(0, str(ROOT))

from shared.redis_server import RedisServer  # noqa: E402

Result = dict[str, Any]
BOT = "bench"  # the bot id every bench order belongs to (cid `bench-000001`)
SIM_ENV = {
    "SIM_WEIGHT_LIMIT": "0",  # Binance's quotas (6000 weight/min, 100 orders/10 s) are off:
    "SIM_ORDER_LIMIT_10S": "0",  # the benches measure the software, not the quota
    "SIM_BALANCES": "USDT=100000000,BTC=10000",  # never the limit either
}


# -- figures ---------------------------------------------------------------------------------


def percentiles(ns: Sequence[int]) -> Result:
    """p50 / p99 / max in ms of latencies in ns (nearest rank, as bench/bus.py)."""
    ms = sorted(x / 1e6 for x in ns)
    if not ms:
        return {"n": 0, "p50_ms": None, "p99_ms": None, "max_ms": None}
    return {
        "n": len(ms),
        "p50_ms": round(ms[len(ms) // 2], 3),
        "p99_ms": round(ms[min(int(len(ms) * 0.99), len(ms) - 1)], 3),
        "max_ms": round(ms[-1], 3),
    }


def cpu_seconds(pid: int) -> float:
    """User + system CPU time a process has used so far (Linux /proc), to tell work per order
    from waiting: wall times on a shared 2-core machine move with whatever else runs."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def redis_commands(redis_url: str) -> int:
    """Commands the server has processed so far (INFO stats)."""
    import redis

    client = redis.Redis.from_url(redis_url)
    try:
        return int(client.info("stats")["total_commands_processed"])
    finally:
        client.close()


def cpu_model() -> str:
    """The CPU's model name (Linux /proc/cpuinfo), for docs/BENCHMARKS.md."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith(("model name", "Model", "Hardware")):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def host() -> Result:
    """The machine alone (no Redis needed): `uname -a`'s fields, CPU model, usable cores."""
    u = platform.uname()
    return {
        "date": datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "uname": f"{u.system} {u.node} {u.release} {u.version} {u.machine}",
        "cpu_model": cpu_model(),
        "nproc": len(os.sched_getaffinity(0)),
        "machine": platform.machine(),
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
    }


def machine(redis_url: str) -> Result:
    """What the figures were measured on, for docs/BENCHMARKS.md, with Redis's fsync policy as
    the server itself reports it."""
    import redis

    client = redis.Redis.from_url(redis_url)
    try:
        version = str(client.info("server")["redis_version"])
        appendfsync = client.config_get("appendfsync")["appendfsync"]
    finally:
        client.close()
    from redis.utils import HIREDIS_AVAILABLE

    return {
        **host(),
        "redis_version": version,
        "redis_parser": "hiredis" if HIREDIS_AVAILABLE else "python",  # redis-py's reply parser
        "appendfsync": appendfsync.decode() if isinstance(appendfsync, bytes) else appendfsync,
    }


def sim_client(base_url: str) -> Any:
    """python-binance AsyncClient aimed at the venue (as tests/helpers/sim.binance_client)."""
    from binance import AsyncClient

    ws = base_url.replace("http://", "ws://")
    cls = type(
        "SimAsyncClient", (AsyncClient,), {"API_URL": f"{base_url}/api", "WS_API_URL": f"{ws}/ws-api/v3"}
    )
    return cls("sim-key", "sim-secret")


# -- child processes (spawned, uvloop) -------------------------------------------------------


def _child(conn: Any, fn: Callable[..., Coroutine[Any, Any, Result]], args: tuple[Any, ...]) -> None:
    import uvloop

    try:
        conn.send(uvloop.run(fn(*args)))
    except BaseException as exc:  # report it to the parent instead of dying silently
        conn.send(RuntimeError(f"{fn.__name__}: {type(exc).__name__}: {exc}"))
        raise


class Child:
    """One measurement in a fresh spawned process; result() waits for its figures."""

    CTX = mp.get_context("spawn")

    def __init__(self, fn: Callable[..., Coroutine[Any, Any, Result]], *args: Any) -> None:
        self._recv, send = self.CTX.Pipe(duplex=False)
        self._proc = self.CTX.Process(target=_child, args=(send, fn, args), daemon=True)
        self._proc.start()
        send.close()

    def result(self, timeout: float = 120.0) -> Result:
        if not self._recv.poll(timeout):
            self._proc.kill()
            raise TimeoutError("bench child did not answer")
        out = self._recv.recv()
        self._proc.join(10)
        if isinstance(out, BaseException):
            raise out
        return out


def run(fn: Callable[..., Coroutine[Any, Any, Result]], *args: Any, timeout: float = 120.0) -> Result:
    return Child(fn, *args).result(timeout)


# -- the services ----------------------------------------------------------------------------


@dataclass
class Stack:
    """Redis plus whichever services a bench started; stop() ends them, newest first."""

    tmp: Path
    redis: RedisServer
    env: dict[str, str]
    sim: Any = None  # tests.helpers.sim.SimVenue
    procs: list[Any] = field(default_factory=list)  # tests.helpers.procs.Proc
    gateway: bool = False  # an order gateway runs (start_gateway)

    @property
    def url(self) -> str:
        return self.redis.url

    def sync_redis(self) -> Any:
        import redis

        return redis.Redis.from_url(self.url)

    def start_sim(self) -> Any:
        from tests.helpers.sim import start_sim

        self.sim = start_sim(self.tmp / "sim", extra_env=SIM_ENV)
        return self.sim

    def start_gateway(self) -> Any:
        """The order gateway aimed at the venue; returns once it published the symbol filters."""
        from tests.helpers.gateway import wait_gateway_ready
        from tests.helpers.procs import python

        config = self.tmp / "og.toml"
        config.write_text(
            f'[venues.sim]\nkind = "sim"\nbase_url = "{self.sim.base_url}"\n'
            "[order_gateway]\nweight_limit = 100000000\n"  # the venue's quota is off, ours too
            "rescan_every_s = 0.2\n"  # a bot's new command stream is read at once, not up to 5 s later
        )
        proc = python(
            "services.order_gateway", env={**self.env, "AUTOMATA_CONFIG": str(config)},
            log_path=self.tmp / "og.log",
        ).start()  # fmt: skip
        self.procs.append(proc)
        self.gateway = True
        r = self.sync_redis()
        try:
            wait_gateway_ready(r, proc)
        finally:
            r.close()
        return proc

    def start_runner(self, bots_file: Path, bot: str = BOT, name: str = "r1") -> Any:
        """`python -m services.strategy_runner --bot BOT`; returns once it holds the lease and
        its candle group exists (candles published from then on are its input) and, with a
        gateway running, once the gateway reads the bot's command stream (else the first orders
        would wait for its rescan, and the start-up sync's answer with them)."""
        from shared.streams import GROUP_ORDER_GATEWAY, bot_group, bot_lease, order_commands
        from tests.helpers.procs import python, wait_until

        env = {**self.env, "AUTOMATA_BOTS": str(bots_file), "CONSUMER_NAME": name, "INSTANCE": name}
        proc = python("services.strategy_runner", "--bot", bot, env=env, log_path=self.tmp / f"{name}.log")
        self.procs.append(proc.start())
        r = self.sync_redis()
        stream = "md:candles:sim:BTCUSDT:1m"

        def ready() -> bool:
            if not proc.alive():
                raise RuntimeError(f"strategy runner exited:\n{proc.output()[-3000:]}")
            if not r.get(bot_lease(bot)) or not r.exists(stream):
                return False
            if bot_group(bot).encode() not in [g["name"] for g in r.xinfo_groups(stream)]:
                return False
            commands = order_commands("sim", bot)
            return not self.gateway or (
                bool(r.exists(commands))
                and GROUP_ORDER_GATEWAY.encode() in [g["name"] for g in r.xinfo_groups(commands)]
            )

        try:
            wait_until(ready, timeout=30, what="the strategy runner to start")
        finally:
            r.close()
        return proc

    def stop(self) -> None:
        for proc in reversed(self.procs):
            try:
                proc.terminate(10)
            except Exception:
                proc.kill()
        if self.sim is not None:
            try:
                self.sim.stop()
            except Exception:
                self.sim.proc.kill()
        self.redis.stop()


@contextlib.contextmanager
def stack(appendfsync: str = "everysec") -> Iterator[Stack]:
    """A private redis-server in a temporary directory (on disk: /tmp here is not a tmpfs, which
    bench/fsync.py checks), with AOF and the given fsync policy; services are added by the bench.
    BENCH_LOGS=DIR keeps the services' logs there."""
    from tests.helpers.procs import base_env

    with tempfile.TemporaryDirectory(prefix="automata-bench-") as tmp:
        server = RedisServer(Path(tmp) / "redis", appendfsync=appendfsync).start()
        s = Stack(Path(tmp), server, base_env(server.url, LOG_LEVEL="WARNING"))
        try:
            yield s
        finally:
            s.stop()
            keep = os.environ.get("BENCH_LOGS")  # a directory to keep the services' logs in
            if keep:
                Path(keep).mkdir(parents=True, exist_ok=True)
                for log in Path(tmp).rglob("*.log"):
                    shutil.copy(log, Path(keep) / log.name)


def elapsed_since(t0: float) -> float:
    return round(time.monotonic() - t0, 1)
