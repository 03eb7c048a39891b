"""`automata health`: every service's heartbeat (pid, metrics port, age). Grows into `status`."""

from __future__ import annotations

import time

import orjson
import redis
import typer
from rich.console import Console
from rich.table import Table

from cli import connect
from cli.heartbeats import Heartbeat, bot_inputs, read_heartbeats
from cli.paths import UsageError
from shared.redis_conn import safe_url


def _duration(seconds: float) -> str:
    seconds = int(seconds)
    if seconds < 120:
        return f"{seconds}s"
    if seconds < 7200:
        return f"{seconds // 60}m"
    return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"


def _extra(beat: Heartbeat) -> str:
    return " ".join(
        f"{k}={','.join(map(str, v)) if isinstance(v, list) else v}"
        for k, v in sorted(beat.extra.items())
        if k != "inputs"  # the bots' inputs: a line of their own below the table
    )


def table(beats: list[Heartbeat]) -> Table:
    out = Table(title=None, show_edge=False, header_style="bold")
    out.add_column("service", no_wrap=True, min_width=15)
    for column in ("instance", "pid", "metrics port", "beat", "up"):
        out.add_column(column, no_wrap=True)
    out.add_column("info", no_wrap=True, overflow="ellipsis", max_width=60)
    for b in beats:
        beat = _duration(b.age_s) + (" [red]stale[/]" if b.stale else " ago")
        out.add_row(
            b.service, b.instance, str(b.pid), str(b.metrics_port), beat, _duration(b.uptime_s), _extra(b)
        )
    return out


def health(
    as_json: bool = typer.Option(False, "--json", help="one JSON object a service, for scripts"),
) -> None:
    """List the running services from their heartbeat keys svc:* (pid, metrics port, age).

    Exits 1 when a bot is stalled (no candle for its stall_after_s: 3 intervals, at least 30 s)."""
    console = Console()
    try:
        url = connect.redis_url()
    except UsageError as exc:
        console.print(f"[red]{exc}[/]")
        raise typer.Exit(2) from None
    try:
        beats = read_heartbeats(connect.client(url))
    except redis.RedisError as exc:
        console.print(f"[red]cannot reach Redis at {safe_url(url)}: {exc}[/]")
        raise typer.Exit(1) from None
    stalled = {bot: info for bot, info in bot_inputs(beats).items() if info["stalled"]}
    if as_json:
        for b in beats:
            doc = {
                "service": b.service,
                "instance": b.instance,
                "pid": b.pid,
                "metrics_port": b.metrics_port,
                "age_s": round(b.age_s, 1),
                "uptime_s": round(b.uptime_s, 1),
                "stale": b.stale,
                **b.extra,
            }
            print(orjson.dumps(doc).decode())
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
