"""The web service for tests: the real app on a real Redis and ledger, over httpx (in process,
through ASGI) or as a real `python -m services.web` process; and bot state to show."""

from __future__ import annotations

import contextlib
import socket
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import orjson
import redis

from services.web.app import create_app
from services.web.settings import WebSettings
from tests.helpers import procs

TOKEN = "test-token-0123456789abcdef"
BASE = "http://127.0.0.1:8780"


@contextlib.asynccontextmanager
async def client(settings: WebSettings, **headers: str) -> AsyncIterator[httpx.AsyncClient]:
    """An httpx client speaking to the app in process (its lifespan run, as uvicorn would)."""
    app = create_app(settings)
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=BASE, headers=headers) as c,
    ):
        yield c


def bot_doc(mode: str = "running", *, base: str = "0.5", cost: str = "50", realised: str = "1.25",
            orders: dict[str, Any] | None = None, version: int = 3, **state: Any) -> dict[str, Any]:  # fmt: skip
    """A bot's persisted state document as a runner writes it (bot:{id}:state)."""
    return {
        "version": version,
        "state": {"mode": mode, "position": {"base": base, "cost": cost, "realised": realised},
                  "orders": orders or {}, **state},
        "last_applied": {"md:candles:sim:BTCUSDT:1m": "1-1"},
    }  # fmt: skip


def put_bot(r: redis.Redis, bot: str, doc: dict[str, Any] | None = None) -> None:
    r.set(f"bot:{bot}:state", orjson.dumps(doc or bot_doc()))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_service(redis_url: str, tmp: Path, *args: str, **env: str) -> tuple[procs.Proc, str]:
    """`python -m services.web` on a free port, once it answers /api/health: (process, base URL)."""
    port = free_port()
    proc = procs.python("services.web", "--port", str(port), *args, env=procs.base_env(redis_url, **env),
                        log_path=tmp / f"web-{port}.log").start()  # fmt: skip
    base = f"http://127.0.0.1:{port}"

    def answers() -> bool:
        if not proc.alive():
            raise AssertionError(f"the web service exited: {proc.output()}")
        try:
            return httpx.get(base + "/api/health", timeout=1).status_code == 200
        except httpx.HTTPError:
            return False

    procs.wait_until(answers, timeout=30, what="the web service to answer")
    return proc, base
