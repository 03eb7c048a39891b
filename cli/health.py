"""`automata health`: every service's heartbeat (pid, metrics port, age). Grows into `status`."""

from __future__ import annotations

import time
from typing import Any

import redis
import typer
from rich.markup import escape
from rich.table import Table

from cli import common, output
from cli.heartbeats import Heartbeat, bot_inputs, read_heartbeats
from shared.redis_conn import safe_url


def _duration(seconds: float) -> str:
    seconds = int(seconds)
    if seconds < 120:
        return f"{seconds}s"
    if seconds < 7200:
        return f"{seconds // 60}m"
    return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"


def _extra(beat: Heartbeat) -> str:
    def text(v: Any) -> str:
        if isinstance(v, list):
            return ", ".join(map(str, v))
        if isinstance(v, dict):
            return ", ".join(f"{k}:{x}" for k, x in v.items())
        return str(v)

    # the bots' inputs get a line of their own below the table
    return " ".join(f"{k}={text(v)}" for k, v in sorted(beat.extra.items()) if k != "inputs")


def table(beats: list[Heartbeat]) -> Table:
    """One row a service; its extra details wrap, so the table fits 80 columns."""
    out = output.table("service", "instance", "pid", "port", "beat", "up", "info", numeric=("pid", "port"), wrap=("info",))  # fmt: skip
    for b in beats:
        beat = _duration(b.age_s) + (" [red]stale[/]" if b.stale else " ago")
        port = str(b.metrics_port) if b.metrics_port else "-"
        out.add_row(b.service, b.instance, str(b.pid), port, beat, _duration(b.uptime_s), escape(_extra(b)))
    return out


def beat_doc(b: Heartbeat) -> dict[str, Any]:
    return {"service": b.service, "instance": b.instance, "pid": b.pid, "metrics_port": b.metrics_port,
            "age_s": round(b.age_s, 1), "uptime_s": round(b.uptime_s, 1), "stale": b.stale, **b.extra}  # fmt: skip


def health(
    as_json: bool = output.json_option("one JSON object a line for each service, for scripts"),
) -> None:
    """List the running services from their heartbeat keys svc:* (pid, metrics port, age).

    Exits 1 when a bot is stalled (no candle for its stall_after_s: 3 intervals, at least 30 s)."""
    console = common.console()
    client, url = common.redis_client(console)
    try:
        beats = read_heartbeats(client)
    except redis.RedisError as exc:
        console.print(f"[red]cannot reach Redis at {safe_url(url)}: {exc}[/]")
        raise typer.Exit(1) from None
    stalled = {bot: info for bot, info in bot_inputs(beats).items() if info["stalled"]}
    if as_json:
        for b in beats:
            output.emit(beat_doc(b))
        if stalled:
            raise typer.Exit(1)
        return
    if not beats:
        console.print(f"no service has a heartbeat in {safe_url(url)}")
        return
    console.print(f"services in {safe_url(url)}:")
    console.print(table(beats))
    for bot, info in sorted(stalled.items()):
        silent = max(0.0, time.time() - int(info["last_input_ms"]) / 1000)
        console.print(f"[red]bot {bot} is stalled: no candle for {_duration(silent)}[/]")
    if stalled:
        raise typer.Exit(1)
