"""`automata status`: the whole system at a glance, read from Redis alone.

Services come from their heartbeats; a service whose pid runs on this machine (checked by its
command line, so a recycled pid or a process on another host is never mistaken for it) also
shows its resident memory and the verdict of its own /health endpoint. Then the consumer
groups (pending = delivered, not acked; lag = not delivered yet), open orders per venue from
the write-ahead log, the bots' persisted state, and the dead-letter streams.
"""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import psutil
import redis
from rich.markup import escape
from rich.table import Table

from cli import common, output
from cli.heartbeats import Heartbeat, bot_inputs, read_heartbeats
from shared import bot_view, display
from shared.display import UNKNOWN
from shared.redis_conn import safe_url
from shared.redis_server import refusing_writes


@dataclass
class Proc:
    """What this machine can tell about a service's process (nothing when it is not here)."""

    rss_mb: float | None = None
    health: str = "-"


def _local_process(beat: Heartbeat) -> psutil.Process | None:
    try:
        proc = psutil.Process(beat.pid)
        if f"services.{beat.service}" in " ".join(proc.cmdline()):
            return proc
    except (psutil.Error, OSError):
        pass
    return None


def _health(port: int) -> str:
    if not port:
        return "-"
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=1.0) as reply:
            doc = json.loads(reply.read())
    except urllib.error.HTTPError as exc:  # 503: some check failed; the body says which
        try:
            doc = json.loads(exc.read())
        except ValueError:
            return f"HTTP {exc.code}"
    except (OSError, ValueError):
        return "no answer"
    if doc.get("ok"):
        return "ok"
    failing = [k for k, v in doc.items() if v is False and k != "ok"]
    return "failing: " + ",".join(failing)


def with_reasons(health: str, extra: dict[str, Any]) -> str:
    """ "failing: database" with the reason the service's heartbeat gives for each failing check
    (the ledger's `database`: which URL, and why it cannot connect), so the operator need not
    open its log."""
    if not health.startswith("failing: "):
        return health
    names = health.removeprefix("failing: ").split(",")
    reasons = [f"{n}: {extra[n]}" for n in names if isinstance(extra.get(n), str)]
    return f"{health} ({'; '.join(reasons)})" if reasons else health


def _probe(beat: Heartbeat) -> Proc:
    proc = _local_process(beat)
    if proc is None:
        return Proc()
    try:
        rss = proc.memory_info().rss / 1e6
    except psutil.Error:
        return Proc()
    return Proc(rss_mb=rss, health=_health(beat.metrics_port))


def services(r: redis.Redis) -> list[dict[str, Any]]:
    beats = read_heartbeats(r)
    with ThreadPoolExecutor(max_workers=8) as pool:
        procs = list(pool.map(_probe, beats))
    rows = []
    for beat, proc in zip(beats, procs, strict=True):
        rows.append(
            {
                "service": beat.service,
                "instance": beat.instance,
                "pid": beat.pid,
                "beat_age_s": round(beat.age_s, 1),
                "stale": beat.stale,
                "uptime_s": round(beat.uptime_s),
                "rss_mb": None if proc.rss_mb is None else round(proc.rss_mb, 1),
                "health": "stale" if beat.stale else with_reasons(proc.health, beat.extra),
                # venue -> ms until which the venue halted trading (a ban: the order gateway's)
                "halted": beat.extra.get("halted") or {},
            }
        )
    return rows


def redis_info(r: redis.Redis) -> dict[str, Any]:
    """Version, memory and AOF of the server (empty if INFO is not allowed to this user)."""
    try:
        info = r.info()
    except redis.RedisError:
        return {}
    return {
        "version": info.get("redis_version"),
        "rss_mb": round(info.get("used_memory_rss", 0) / 1e6, 1),
        "aof": bool(info.get("aof_enabled")),
        "clients": info.get("connected_clients"),
        "refusing_writes": refusing_writes(info),  # None, or why nothing trades (a full disk)
    }


def groups(r: redis.Redis) -> list[dict[str, Any]]:
    """Every consumer group of every stream: consumers, pending, lag."""
    rows = []
    for key in sorted(r.scan_iter(count=1000, _type="stream")):
        stream = key.decode()
        try:
            infos = r.xinfo_groups(stream)
        except redis.ResponseError:
            continue
        for g in infos:
            name = g["name"].decode() if isinstance(g["name"], bytes) else g["name"]
            rows.append(
                {
                    "stream": stream,
                    "group": name,
                    "consumers": g.get("consumers", 0),
                    "pending": g.get("pending", 0),
                    "lag": g.get("lag"),  # None: Redis cannot tell (entries deleted or trimmed)
                }
            )
    return rows


def open_orders(r: redis.Redis) -> dict[str, int]:
    out = {}
    for key in sorted(r.scan_iter(match="og:open:*", count=1000)):
        out[key.decode().split(":", 2)[2]] = r.scard(key)
    return out


bots = bot_view.bots  # `automata status` and `automata bots` list them so


def bots_table(rows: list[dict[str, Any]], precisions: output.Precisions) -> Table:
    """Bots at the symbol's precision; a bot's id is never cut (`demo_fractal` was shown as
    `demo_frac` over `tal` at 80 columns), the failure wraps, and its column is there only when a
    bot failed, so the table fits 80 columns."""
    failures = any(b["failed"] for b in rows)
    columns = ("bot", "mode", "input", "position", "avg price", "realised", "open", *(("failed",) if failures else ()))  # fmt: skip
    t = output.table(*columns, numeric=("position", "avg price", "realised", "open"), wrap=("input", "failed"))  # fmt: skip
    for b in rows:
        p = precisions.of(b["venue"], b["symbol"]) if b["venue"] else UNKNOWN
        failed = f"[red]{escape(b['failed'][:120])}[/]" if b["failed"] else "-"
        cells = [escape(b["bot"]), b["mode"], _input(b), p.qty(b["position"]), p.price(b["avg_price"]), display.quote(b["realised"]), str(b["open_orders"])]  # fmt: skip
        t.add_row(*cells, *((failed,) if failures else ()))
    return t


def dlqs(r: redis.Redis) -> dict[str, int]:
    return {k.decode(): r.xlen(k) for k in sorted(r.scan_iter(match="dlq:*", count=1000))}


def _services_table(rows: list[dict[str, Any]]) -> Table:
    t = output.table("service", "instance", "pid", "beat", "up", "rss MB", "health", numeric=("pid", "rss MB"), wrap=("instance", "health"))  # fmt: skip
    for s in rows:
        beat = common.ago(s["beat_age_s"]) + (" [red]stale[/]" if s["stale"] else " ago")
        rss = "-" if s["rss_mb"] is None else f"{s['rss_mb']:.1f}"
        health = s["health"] if s["health"] in ("ok", "-") else f"[red]{s['health']}[/]"
        for venue, until in sorted(s["halted"].items()):
            end = datetime.fromtimestamp(int(until) / 1000, UTC)
            health += f" [red]{venue} halted (a ban) until {end:%H:%M:%S} UTC[/]"
        t.add_row(s["service"], s["instance"], str(s["pid"]), beat, common.ago(s["uptime_s"]), rss, health)
    return t


def _groups_table(rows: list[dict[str, Any]]) -> Table:
    t = output.table("stream", "group", "consumers", "pending", "lag", numeric=("consumers", "pending", "lag"), wrap=("stream", "group"))  # fmt: skip
    for g in rows:
        lag = "?" if g["lag"] is None else str(g["lag"])
        t.add_row(g["stream"], g["group"], str(g["consumers"]), str(g["pending"]), lag)
    return t


def _input(bot: dict[str, Any]) -> str:
    """When the bot's last candle came: "stalled" in red past its stall_after_s."""
    if bot["last_input_s"] is None:
        return "-"
    ago = common.ago(bot["last_input_s"]) + " ago"
    return f"[red]stalled ({ago})[/]" if bot["stalled"] else ago


def status(
    as_json: bool = output.json_option(),
) -> None:
    """Services (heartbeat, memory, health), stream lag, open orders, bots and dead letters."""
    out = common.console()
    system = common.located(out)
    r, url = common.redis_client(out, system)
    doc = {
        "redis": {"url": safe_url(url), **redis_info(r)},
        "services": services(r),
        "groups": groups(r),
        "open_orders": open_orders(r),
        "bots": bots(r, bot_inputs(read_heartbeats(r))),
        "dlq": dlqs(r),
        "ts": int(time.time() * 1000),
    }
    if as_json:
        output.emit(doc)
        return
    out.print(escape(system.line()), soft_wrap=True)
    info = doc["redis"]
    extra = f" (redis {info['version']}, rss {info['rss_mb']} MB, aof {'on' if info['aof'] else 'OFF'})" if "version" in info else ""  # fmt: skip
    out.print(f"[bold]redis[/] {info['url']}{extra}")
    if info.get("refusing_writes"):
        out.print(f"  [red]{escape(info['refusing_writes'])}[/]")
    out.print("\n[bold]services[/]")
    out.print(_services_table(doc["services"]) if doc["services"] else "  no heartbeats (nothing running?)")
    local = [s["rss_mb"] for s in doc["services"] if s["rss_mb"] is not None]
    if local:
        out.print(f"  resident memory of the {len(local)} local service(s): {sum(local):.1f} MB")
    out.print("\n[bold]consumer groups[/]")
    out.print(_groups_table(doc["groups"]) if doc["groups"] else "  none")
    out.print("\n[bold]open orders[/]")
    orders = doc["open_orders"]
    out.print("  " + (", ".join(f"{v}: {n}" for v, n in orders.items()) if orders else "none"))
    out.print("\n[bold]bots[/]")
    out.print(bots_table(doc["bots"], output.Precisions(r)) if doc["bots"] else "  none")
    out.print("\n[bold]dead letters[/]")
    dead = {k: n for k, n in doc["dlq"].items() if n}
    out.print("  " + (", ".join(f"[red]{k}: {n}[/]" for k, n in dead.items()) if dead else "none"))
