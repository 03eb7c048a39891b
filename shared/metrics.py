"""Prometheus metrics helpers and the /metrics + /health HTTP endpoint every service exposes.

The metric types come from shared/prom.py, not prometheus-client: importing that costs each
service process ~2.1 MB RSS for code the services never use (see its docstring)."""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import orjson

from shared.prom import CONTENT_TYPE_LATEST, REGISTRY, Counter, Gauge, Histogram, generate_latest

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
    """/metrics (Prometheus text) and /health (JSON, 200 or 503) on a tiny asyncio HTTP server.

    Plain asyncio instead of aiohttp: a strategy runner needs nothing else from aiohttp, and
    importing it costs each such process ~14 MB (docs/BENCHMARKS.md, Footprint). Each request
    is one GET answered with `Connection: close`, which is all a scraper or a health probe does."""

    _REASONS = {200: "OK", 404: "Not Found", 405: "Method Not Allowed", 503: "Service Unavailable"}

    def __init__(self, host: str, port: int, health: HealthCheck) -> None:
        self.host, self.port, self._health = host, port, health
        self._server: asyncio.Server | None = None

    async def start(self) -> int:
        self._server = await asyncio.start_server(self._serve, self.host, self.port, reuse_address=True)
        self.port = self._server.sockets[0].getsockname()[1]
        return self.port

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            request = await asyncio.wait_for(reader.readline(), 5)
            while (await asyncio.wait_for(reader.readline(), 5)) not in (b"\r\n", b"\n", b""):
                pass  # headers: not needed
            parts = request.split()
            method = parts[0] if parts else b""
            path = parts[1].split(b"?")[0] if len(parts) > 1 else b"/"
            status, ctype, body = await self._answer(method, path)
            head = (
                f"HTTP/1.1 {status} {self._REASONS.get(status, 'OK')}\r\nContent-Type: {ctype}\r\n"
                f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n"
            )
            writer.write(head.encode() + (body if method != b"HEAD" else b""))
            await writer.drain()
        except (TimeoutError, ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            writer.close()

    async def _answer(self, method: bytes, path: bytes) -> tuple[int, str, bytes]:
        if method not in (b"GET", b"HEAD"):
            return 405, "text/plain", b"only GET\n"
        if path == b"/metrics":
            return 200, CONTENT_TYPE_LATEST, generate_latest(REGISTRY)
        if path == b"/health":
            try:
                report = await self._health()
            except Exception as exc:  # a failing check is a 503, not a crash
                report = {"ok": False, "error": f"{type(exc).__name__}: {exc}"}
            return (200 if report.get("ok") else 503), "application/json", orjson.dumps(report)
        return 404, "text/plain", b"not found\n"
