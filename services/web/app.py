"""The app factory: Starlette routes for /api, the static files, the pages (services/web/pages.py).

Handlers that read Redis or the ledger are plain functions Starlette runs in its thread pool:
they share the synchronous code the CLI uses (one way to read a bot's state, one way to send a
control), while the live feed (live.py) reads the streams with an asyncio client."""

from __future__ import annotations

import contextlib
import importlib.util
from collections.abc import AsyncIterator
from pathlib import Path

import anyio.to_thread
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Mount
from starlette.staticfiles import StaticFiles

from services.web import api
from services.web.context import WebContext
from services.web.settings import WebSettings
from shared.redis_conn import RedisWritesRefused, unavailable

STATIC = Path(__file__).with_name("static")
# Handlers run in a few threads, not anyio's default 40: each thread may grow a malloc arena of
# its own, and a dashboard has a handful of viewers (docs/ARCHITECTURE.md, memory).
THREADS = 4


async def _writes_refused(_request: Request, exc: Exception) -> JSONResponse:
    """Redis refuses writes (its disk is full): a control or an order was not sent; say why with a
    503 (try again later), not a bare 500."""
    return JSONResponse({"error": f"{unavailable(exc)} Nothing was sent."}, status_code=503)


def create_app(settings: WebSettings) -> Starlette:
    """The ASGI app. `services.web.pages.mount(app)` adds the pages when that module exists."""
    ctx = WebContext(settings)

    @contextlib.asynccontextmanager
    async def lifespan(_app: Starlette) -> AsyncIterator[None]:
        anyio.to_thread.current_default_thread_limiter().total_tokens = THREADS
        try:
            yield
        finally:
            await ctx.close()

    app = Starlette(routes=[*api.routes(), Mount("/static", StaticFiles(directory=STATIC, check_dir=False), name="static")],
                    lifespan=lifespan, exception_handlers={RedisWritesRefused: _writes_refused})  # fmt: skip
    app.state.ctx = ctx
    if importlib.util.find_spec("services.web.pages") is not None:
        from services.web import pages

        pages.mount(app)
    return app
