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


class _Refused(Exception):
    """The request cannot be answered as asked: reply with this status, then close."""

    def __init__(self, status: int) -> None:
        super().__init__(status)
        self.status = status


class MetricsServer:
    """/metrics (Prometheus text) and /health (JSON, 200 or 503) on a tiny asyncio HTTP server.

    Plain asyncio instead of aiohttp: a strategy runner needs nothing else from aiohttp, and
    importing it costs each such process ~14 MB (docs/BENCHMARKS.md, Footprint). Each request
    is one GET answered with `Connection: close`, which is all a scraper or a health probe does.

    Whoever reaches the port must not be able to hold the service's memory or its sockets:
    the request line and headers are read within HEAD_TIMEOUT_S and MAX_HEAD_BYTES (else 408,
    414 or 431), at most MAX_CONNECTIONS are open at once (more are answered 503 and closed at
    once), and a body is never read, only discarded after the answer (at most LINGER_BYTES, for
    at most LINGER_S) so that the client reads the answer instead of a reset."""

    HEAD_TIMEOUT_S = 5.0
    MAX_HEAD_BYTES = 8192
    MAX_CONNECTIONS = 16
    LINGER_S = 5.0
    LINGER_BYTES = 128 * 1024

    _REASONS = {
        200: "OK",
        400: "Bad Request",
        404: "Not Found",
        405: "Method Not Allowed",
        408: "Request Timeout",
        414: "URI Too Long",
        431: "Request Header Fields Too Large",
        503: "Service Unavailable",
    }

    def __init__(self, host: str, port: int, health: HealthCheck) -> None:
        self.host, self.port, self._health = host, port, health
        self._server: asyncio.Server | None = None
        self._open = 0

    async def start(self) -> int:
        self._server = await asyncio.start_server(
            self._serve, self.host, self.port, reuse_address=True, limit=self.MAX_HEAD_BYTES
        )
        self.port = self._server.sockets[0].getsockname()[1]
        return self.port

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if self._open >= self.MAX_CONNECTIONS:
            writer.write(self._response(503, "text/plain", b"too many connections\n"))
            writer.close()
            return
        self._open += 1
        try:
            await self._exchange(reader, writer)
        except Exception as exc:  # one client's mischief is never a crash of the service
            log.debug("metrics connection dropped: %s: %s", type(exc).__name__, exc)
            writer.transport.abort()
        finally:
            self._open -= 1

    async def _exchange(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        method, linger = b"", True
        answer: tuple[int, str, bytes] | None = None
        try:
            async with asyncio.timeout(self.HEAD_TIMEOUT_S):
                head = await self._read_head(reader)
            if head:
                method, path = self._request_line(head[0])
                answer = await self._answer(method, path)
        except TimeoutError:  # too slow: answer, but read nothing more from it
            answer, linger = (408, "text/plain", b"request head too slow\n"), False
        except _Refused as exc:
            answer = (exc.status, "text/plain", f"{self._REASONS[exc.status]}\n".encode())
        async with asyncio.timeout(self.LINGER_S):
            if answer is not None:
                status, ctype, body = answer
                writer.write(self._response(status, ctype, body if method != b"HEAD" else b"", len(body)))
                await writer.drain()
            if linger:  # let the client read the answer and hang up, rather than reset it
                if writer.can_write_eof():
                    writer.write_eof()
                left = self.LINGER_BYTES
                while (chunk := await reader.read(min(left, 65536))) and (left := left - len(chunk)) > 0:
                    pass
            writer.close()
            await writer.wait_closed()

    async def _read_head(self, reader: asyncio.StreamReader) -> list[bytes]:
        """The request line and header lines, within MAX_HEAD_BYTES; [] when the client left."""
        lines: list[bytes] = []
        size = 0
        while True:
            try:
                line = await reader.readuntil(b"\n")
            except asyncio.LimitOverrunError:
                raise _Refused(431 if lines else 414) from None
            except asyncio.IncompleteReadError as exc:  # the client ended its side: answer what came
                return [*lines, exc.partial] if exc.partial else lines
            size += len(line)
            if size > self.MAX_HEAD_BYTES:
                raise _Refused(431 if lines else 414)
            if line.strip():
                lines.append(line)
            elif lines:  # the blank line after the headers (blank lines before the request: skipped)
                return lines

    @staticmethod
    def _request_line(line: bytes) -> tuple[bytes, bytes]:
        parts = line.split()
        if len(parts) != 3 or not parts[2].startswith(b"HTTP/1."):
            raise _Refused(400)
        return parts[0], parts[1].split(b"?")[0]

    def _response(self, status: int, ctype: str, body: bytes, length: int | None = None) -> bytes:
        head = (
            f"HTTP/1.1 {status} {self._REASONS.get(status, 'OK')}\r\nContent-Type: {ctype}\r\n"
            f"Content-Length: {len(body) if length is None else length}\r\nConnection: close\r\n\r\n"
        )
        return head.encode() + body

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
