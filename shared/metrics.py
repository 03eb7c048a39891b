"""Prometheus metrics helpers and the /metrics + /health HTTP endpoint every service exposes."""

from __future__ import annotations

import functools
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import orjson
from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, Counter, Gauge, Histogram, generate_latest

log = logging.getLogger("automata.metrics")

HealthCheck = Callable[[], Awaitable[dict[str, Any]]]


@dataclass(frozen=True)
class BusMetrics:
    handled: Counter
    failed: Counter
    dead_lettered: Counter
    claimed: Counter


@functools.cache
def bus_metrics() -> BusMetrics:
    labels = ("stream", "group")
    return BusMetrics(
        handled=Counter("automata_bus_entries_handled_total", "Entries handled and acked", labels),
        failed=Counter("automata_bus_handler_failures_total", "Handler exceptions", labels),
        dead_lettered=Counter("automata_bus_dead_lettered_total", "Entries moved to dlq:{stream}", labels),
        claimed=Counter("automata_bus_claimed_total", "Entries taken over from dead consumers", labels),
    )


@functools.cache
def service_info() -> Gauge:
    return Gauge("automata_service_up", "1 while the service runs", ("service", "instance"))


def counter(name: str, doc: str, labels: tuple[str, ...] = ()) -> Counter:
    """A counter registered once per process (safe to call from several modules)."""
    return _get_or_make(Counter, name, doc, labels)


def gauge(name: str, doc: str, labels: tuple[str, ...] = ()) -> Gauge:
    return _get_or_make(Gauge, name, doc, labels)


def histogram(
    name: str, doc: str, labels: tuple[str, ...] = (), buckets: tuple[float, ...] | None = None
) -> Histogram:
    kwargs = {"buckets": buckets} if buckets else {}
    return _get_or_make(Histogram, name, doc, labels, **kwargs)


_made: dict[str, Any] = {}


def _get_or_make(kind: type, name: str, doc: str, labels: tuple[str, ...], **kwargs: Any) -> Any:
    if name not in _made:
        _made[name] = kind(name, doc, labels, **kwargs)
    return _made[name]


class MetricsServer:
    """aiohttp app serving /metrics (Prometheus text) and /health (JSON, 200 or 503)."""

    def __init__(self, host: str, port: int, health: HealthCheck) -> None:
        self.host, self.port, self._health = host, port, health
        self._runner: web.AppRunner | None = None

    async def start(self) -> int:
        app = web.Application()
        app.router.add_get("/metrics", self._metrics)
        app.router.add_get("/health", self._health_view)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, self.port, reuse_address=True)
        await site.start()
        server = site._server
        if server is not None and server.sockets:
            self.port = server.sockets[0].getsockname()[1]
        return self.port

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    async def _metrics(self, _request: web.Request) -> web.Response:
        return web.Response(body=generate_latest(REGISTRY), headers={"Content-Type": CONTENT_TYPE_LATEST})

    async def _health_view(self, _request: web.Request) -> web.Response:
        try:
            report = await self._health()
        except Exception as exc:  # a failing check is a 503, not a crash
            report = {"ok": False, "error": f"{type(exc).__name__}: {exc}"}
        status = 200 if report.get("ok") else 503
        return web.Response(body=orjson.dumps(report), status=status, content_type="application/json")
