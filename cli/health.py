"""`automata health`: every service's heartbeat (pid, metrics port, age). Grows into `status`."""

from __future__ import annotations

import orjson
import redis
import typer
from rich.console import Console
from rich.table import Table

from cli import common
from cli.heartbeats import Heartbeat, read_heartbeats
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
        f"{k}={','.join(map(str, v)) if isinstance(v, list) else v}" for k, v in sorted(beat.extra.items())
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
    """List the running services from their heartbeat keys svc:* (pid, metrics port, age)."""
    console = Console()
    client, url = common.redis_client(console)
    try:
        beats = read_heartbeats(client)
    except redis.RedisError as exc:
        console.print(f"[red]cannot reach Redis at {safe_url(url)}: {exc}[/]")
        raise typer.Exit(1) from None
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
        return
    if not beats:
        console.print(f"no service has a heartbeat in {safe_url(url)}")
        return
    console.print(f"services in {safe_url(url)}:")
    console.print(table(beats))
