"""Reading the services' heartbeat keys `svc:{service}:{instance}` (see shared/service.py)."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import orjson
import redis

from services.strategy_runner.stall import is_stalled
from shared.service import HEARTBEAT_EVERY_S


@dataclass(frozen=True)
class Heartbeat:
    service: str
    instance: str
    pid: int
    metrics_port: int
    ts_ms: int
    started_ms: int
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def age_s(self) -> float:
        return max(0.0, time.time() - self.ts_ms / 1000)

    @property
    def uptime_s(self) -> float:
        return max(0.0, time.time() - self.started_ms / 1000)

    @property
    def stale(self) -> bool:
        """Missed two beats: the process is probably stuck (the key itself expires after 15 s)."""
        return self.age_s > 2 * HEARTBEAT_EVERY_S + 1


def _parse(key: bytes, raw: bytes | None) -> Heartbeat | None:
    if raw is None:
        return None
    parts = key.decode(errors="replace").split(":", 2)
    if len(parts) != 3:
        return None
    try:
        doc = orjson.loads(raw)
        return Heartbeat(
            service=parts[1],
            instance=parts[2],
            pid=int(doc.pop("pid", 0)),
            metrics_port=int(doc.pop("metrics_port", 0)),
            ts_ms=int(doc.pop("ts", 0)),
            started_ms=int(doc.pop("started", 0)),
            extra=doc,
        )
    except (ValueError, TypeError, AttributeError):
        return None


def read_heartbeats(client: redis.Redis) -> list[Heartbeat]:
    """Every live heartbeat, sorted by service and instance."""
    keys = sorted(client.scan_iter(match="svc:*", count=200))
    if not keys:
        return []
    beats = (_parse(k, v) for k, v in zip(keys, client.mget(keys), strict=True))
    return sorted((b for b in beats if b is not None), key=lambda b: (b.service, b.instance))


def heartbeat_bots(beats: list[Heartbeat]) -> list[str]:
    """The bots the strategy runners say they run."""
    return [
        str(bot)
        for beat in beats
        if beat.service == "strategy_runner" and isinstance(beat.extra.get("bots"), list)
        for bot in beat.extra["bots"]
    ]


def bot_inputs(beats: list[Heartbeat]) -> dict[str, dict[str, Any]]:
    """Each running bot's input as its runner reports it (services/strategy_runner/stall.py):
    last_input_ms, stall_after_s, and `stalled` as of now."""
    now_ms = int(time.time() * 1000)
    out: dict[str, dict[str, Any]] = {}
    for beat in beats:
        inputs = beat.extra.get("inputs")
        if beat.service != "strategy_runner" or not isinstance(inputs, dict):
            continue
        for bot, info in inputs.items():
            if isinstance(info, dict):
                out[bot] = {**info, "stalled": is_stalled(info, now_ms)}
    return out
