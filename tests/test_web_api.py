"""The web service's REST API on a real Redis (and a real SQLite ledger where history is read)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest

from services.web.app import create_app
from services.web.settings import WebSettings
from shared.redis_server import RedisServer

TOKEN = "t" * 24


@pytest.fixture
async def client(redis_server: RedisServer, tmp_path) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(WebSettings(redis_url=redis_server.url, ledger_url=f"sqlite:///{tmp_path / 'l.sqlite3'}",
                                 token=TOKEN))  # fmt: skip
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://127.0.0.1:8780") as c,
    ):
        yield c


async def test_health_says_redis_is_reachable(client: httpx.AsyncClient) -> None:
    reply = await client.get("/api/health")
    assert reply.status_code == 200
    assert reply.json()["redis"] is True and reply.json()["auth"] is True


async def test_openapi_document_lists_the_endpoints(client: httpx.AsyncClient) -> None:
    doc = (await client.get("/api/openapi.json")).json()
    assert doc["openapi"].startswith("3.")
    assert "/api/health" in doc["paths"]
