"""The demo with its web dashboard, for the browser tests (tests/test_web_browser.py).

`automata run` in a temporary AUTOMATA_HOME on moved ports (tests/helpers/demo.py). The run writes
the dashboard's token (var/secrets/web_token), so its pages ask for a login; the dashboard's
address is the one its heartbeat names (`url`, services/web/__main__.py), found as `automata
status` finds the services, never guessed.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import orjson
import redis

from cli.heartbeats import read_heartbeats
from tests.helpers.cli import cli
from tests.helpers.demo import admin, demo_env, running_demo
from tests.helpers.procs import wait_until


@dataclass
class WebDemo:
    env: dict[str, str]
    url: str  # the dashboard, without the trailing slash
    token: str  # what a user types on the login page
    redis: redis.Redis  # the demo's Redis as its admin user


def automata(env: dict[str, str], *args: str) -> str:
    """`automata ARGS` against the demo; its standard output (a failure fails the test)."""
    res = cli(env, *args, timeout=120)
    assert res.returncode == 0, f"automata {' '.join(args)}: {res.stdout}{res.stderr}"
    return res.stdout


def demo_state(demo: WebDemo, bot: str) -> dict[str, Any]:
    """The bot's persisted state (bot:{bot}:state's `state`), {} before it has one."""
    doc = orjson.loads(demo.redis.get(f"bot:{bot}:state") or b"{}")
    return doc.get("state") or {}


def bot_mode(demo: WebDemo, bot: str) -> str:
    """The bot's mode as its persisted state says."""
    return demo_state(demo, bot).get("mode", "running")


def web_url(r: redis.Redis) -> str:
    """The dashboard's URL from its heartbeat, once it answers."""

    def answering() -> str | None:
        beat = next((b for b in read_heartbeats(r) if b.service == "web" and b.extra.get("url")), None)
        if beat is None:
            return None
        url = str(beat.extra["url"]).rstrip("/")
        try:
            return url if httpx.get(f"{url}/api/health", timeout=2).status_code == 200 else None
        except httpx.HTTPError:
            return None

    return wait_until(answering, timeout=60, interval=0.3, what="the web service's heartbeat and /api/health")


@contextlib.contextmanager
def running_web_demo(root: Path) -> Iterator[WebDemo]:
    env = demo_env(root / "home")
    with running_demo(env, root / "run.log"):
        client = admin(env)
        token = (Path(env["AUTOMATA_HOME"]) / "var/secrets/web_token").read_text().strip()
        try:
            yield WebDemo(env, web_url(client), token, client)
        finally:
            client.close()
