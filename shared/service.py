"""What every service process shares: config, logging, Redis, /metrics + /health, a heartbeat
key, and a clean stop on SIGTERM (finish the entry in hand, ack, exit 0).

A service module provides `async def start(ctx) -> None` that registers its components
(anything with `run()` and `stop()`, e.g. a bus Consumer) with `ctx.add(...)`.
"""

from __future__ import annotations

import asyncio
import faulthandler
import logging
import os
import signal
import socket
import sys
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

import orjson
import redis.asyncio as aioredis

from shared import metrics
from shared.config import AppConfig, ConfigError, ServiceConfig, load_config
from shared.logs import setup_logging
from shared.redis_conn import (
    REDIS_ERRORS,
    TRANSIENT_ERRORS,
    RedisWritesRefused,
    connect,
    safe_url,
    unavailable,
)
from shared.streams import health as health_key

log = logging.getLogger("automata.service")

HEARTBEAT_EVERY_S = 5.0
HEARTBEAT_TTL_MS = 15_000
STOP_GRACE_S = 10.0
EXIT_GRACE_S = 5.0  # from "stopped" to the process gone


class Component(Protocol):
    async def run(self) -> None: ...

    def stop(self) -> None: ...


@dataclass
class RedisHealth:
    """What the heartbeat last learnt of Redis: since when (time.monotonic()) it refuses writes
    or cannot be reached, and why. The notifier tells the user of it directly (redis_watch.py):
    a notification about Redis cannot go through Redis."""

    refused_since: float | None = None
    down_since: float | None = None
    reason: str = ""


@dataclass
class ServiceContext:
    """Handed to a service's start(): its config, Redis and a place to register components."""

    name: str
    instance: str
    config: AppConfig
    redis: aioredis.Redis
    args: Any = None
    components: list[Component] = field(default_factory=list)
    health_checks: dict[str, Callable[[], Awaitable[bool]]] = field(default_factory=dict)
    stopping: asyncio.Event = field(default_factory=asyncio.Event)
    on_stop: list[Callable[[], Awaitable[None]]] = field(default_factory=list)
    info: dict[str, Any] = field(default_factory=dict)
    redis_health: RedisHealth = field(default_factory=RedisHealth)

    def add(self, component: Component) -> Component:
        self.components.append(component)
        return component

    @property
    def consumer_name(self) -> str:
        """A stable consumer name: a restarted process replays its own pending entries."""
        return os.environ.get("CONSUMER_NAME") or f"{self.name}-{self.instance}"


async def every(seconds: float, stop: asyncio.Event, tick: Callable[[], Awaitable[None]]) -> None:
    """tick(), then again each `seconds` until `stop` is set: a component's periodic loop (a stop
    ends the wait at once, not at the next tick)."""
    while not stop.is_set():
        await tick()
        try:
            await asyncio.wait_for(stop.wait(), timeout=seconds)
        except TimeoutError:
            pass


def _instance() -> str:
    return os.environ.get("INSTANCE") or socket.gethostname().split(".")[0]


def _service_config(cfg: AppConfig, name: str) -> ServiceConfig:
    return getattr(cfg.services, name, ServiceConfig())


async def _wait_for_redis(redis: aioredis.Redis, stopping: asyncio.Event, url: str) -> bool:
    delay = 0.1
    while not stopping.is_set():
        try:
            await redis.ping()
            return True
        except TRANSIENT_ERRORS as exc:
            log.warning("waiting for redis at %s (%s)", safe_url(url), unavailable(exc))
            try:
                await asyncio.wait_for(stopping.wait(), timeout=delay)
            except TimeoutError:
                pass
            delay = min(delay * 2, 2.0)
    return False


async def _heartbeat(ctx: ServiceContext, port: int) -> None:
    key = health_key(ctx.name, ctx.instance)
    started = int(time.time() * 1000)
    state = ctx.redis_health

    async def beat() -> None:
        doc = {
            "pid": os.getpid(),
            "metrics_port": port,
            "started": started,
            "ts": int(time.time() * 1000),
            **ctx.info,
        }
        try:
            await ctx.redis.set(key, orjson.dumps(doc), px=HEARTBEAT_TTL_MS)
            if state.refused_since is not None:
                log.warning("redis takes writes again")
            state.refused_since = state.down_since = None
        except RedisWritesRefused as exc:
            log.error("%s: no heartbeat until it takes writes again", unavailable(exc))
            state.reason, state.down_since = unavailable(exc), None
            state.refused_since = state.refused_since or time.monotonic()
        except REDIS_ERRORS as exc:
            state.reason, state.refused_since = unavailable(exc), None
            state.down_since = state.down_since or time.monotonic()

    await every(HEARTBEAT_EVERY_S, ctx.stopping, beat)
    try:
        await ctx.redis.delete(key)
    except REDIS_ERRORS:
        pass


async def _serve(
    name: str, start: Callable[[ServiceContext], Awaitable[None]], cfg: AppConfig, args: Any
) -> int:
    loop = asyncio.get_running_loop()
    redis = connect(cfg.redis.url, client_name=name)
    ctx = ServiceContext(name=name, instance=_instance(), config=cfg, redis=redis, args=args)

    def _on_signal(signum: int) -> None:
        log.info("received %s: stopping", signal.Signals(signum).name)
        ctx.stopping.set()
        for component in ctx.components:
            component.stop()

    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, _on_signal, sig)

    async def health() -> dict[str, Any]:
        report: dict[str, Any] = {"service": name, "instance": ctx.instance, "pid": os.getpid()}
        try:
            await asyncio.wait_for(redis.ping(), timeout=1.0)
            report["redis"] = True
        except Exception:
            report["redis"] = False
        for check_name, check in ctx.health_checks.items():
            try:
                report[check_name] = bool(await check())
            except Exception:
                report[check_name] = False
        report["tasks_alive"] = all(not t.done() for t in tasks) if tasks else True
        report["ok"] = all(v for k, v in report.items() if isinstance(v, bool))
        return report

    tasks: list[asyncio.Task[Any]] = []
    svc_cfg = _service_config(cfg, name)
    port_env = os.environ.get("METRICS_PORT")
    server = metrics.MetricsServer(
        svc_cfg.metrics_host, int(port_env) if port_env else svc_cfg.metrics_port, health
    )
    port = await server.start()
    metrics.service_info().labels(name, ctx.instance).set(1)
    log.info(
        "%s starting (redis %s, metrics http://%s:%d/metrics)",
        name,
        safe_url(cfg.redis.url),
        svc_cfg.metrics_host,
        port,
    )
    code = 0
    try:
        if not await _wait_for_redis(redis, ctx.stopping, cfg.redis.url):
            return 0
        await start(ctx)
        tasks = [asyncio.create_task(c.run(), name=type(c).__name__) for c in ctx.components]
        tasks.append(asyncio.create_task(_heartbeat(ctx, port), name="heartbeat"))
        log.info("%s ready with %d component(s)", name, len(ctx.components))
        stopper = asyncio.create_task(ctx.stopping.wait())
        done, _ = await asyncio.wait([*tasks, stopper], return_when=asyncio.FIRST_COMPLETED)
        for task in done:
            if task is not stopper and task.exception() is not None:
                log.error("component %s crashed", task.get_name(), exc_info=task.exception())
                code = 1
        ctx.stopping.set()
        for component in ctx.components:
            component.stop()
        _, pending = await asyncio.wait(tasks, timeout=STOP_GRACE_S)
        for task in pending:
            log.warning(
                "component %s did not stop in %.0fs; cancelling it (it waits in %s)",
                task.get_name(),
                STOP_GRACE_S,
                _waits_in(task),
            )
            task.cancel()
        for hook in ctx.on_stop:
            await hook()
    finally:
        await server.stop()
        await redis.aclose()
    log.info("%s stopped (exit %d)", name, code)
    await _end_stray_tasks(code)
    # Everything is drained and acked. What is left (the loop's thread pool, interpreter exit)
    # must not hang the stop either: past the grace, dump every thread's stack and exit with 1.
    faulthandler.dump_traceback_later(EXIT_GRACE_S, exit=True)
    return code


def _waits_in(task: asyncio.Task[Any]) -> str:
    """Where a task is suspended (its innermost await), to find what held up a stop."""
    frames = task.get_stack()
    if not frames:
        return "?"
    frame = frames[-1]
    return f"{frame.f_code.co_filename}:{frame.f_lineno} {frame.f_code.co_name}"


async def _end_stray_tasks(code: int) -> None:
    """Cancel what libraries left running; exit at once if some of it will not end.

    The loop's own cleanup waits for every cancelled task without a time limit, and one library
    task that swallows its cancellation (python-binance's websocket read loop, closing while it
    reconnects, was seen doing it) would hang the stop for good. By now every entry is acked
    and Redis is closed, so leaving such a task behind loses nothing."""
    stray = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
    for task in stray:
        task.cancel()
    if not stray:
        return
    _, still = await asyncio.wait(stray, timeout=EXIT_GRACE_S)
    if still:
        names = ", ".join(sorted({getattr(t.get_coro(), "__qualname__", t.get_name()) for t in still}))
        log.warning("%d task(s) would not end when cancelled (%s): exiting without them", len(still), names)
        logging.shutdown()
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)


def run_service(
    name: str,
    start: Callable[[ServiceContext], Awaitable[None]],
    args: Any = None,
) -> None:
    """Entry point of `python -m services.<name>`: never returns (sys.exit with the code)."""
    try:
        cfg = load_config(service=name)
    except ConfigError as exc:
        setup_logging(name)
        print(f"configuration error: {exc}", file=sys.stderr)
        sys.exit(2)
    setup_logging(name, _service_config(cfg, name).log_level if "LOG_LEVEL" not in os.environ else None)
    try:
        import uvloop

        runner = uvloop.run
    except ImportError:  # pragma: no cover - uvloop is a pinned dependency
        runner = asyncio.run
    sys.exit(runner(_serve(name, start, cfg, args)))
