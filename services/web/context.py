"""What every request handler shares: the settings, a Redis client of each kind, the ledger."""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING

import redis
import redis.asyncio as aioredis

from services.web.settings import WebSettings
from shared.redis_conn import connect

if TYPE_CHECKING:
    from sqlalchemy.engine import Engine


class WebContext:
    """Clients made on first use: a page that never asks for history never opens the ledger."""

    def __init__(self, settings: WebSettings) -> None:
        self.settings = settings
        self.redis = redis.Redis.from_url(settings.redis_url, socket_connect_timeout=2, socket_timeout=5,
                                          client_name="web")  # fmt: skip
        self.aredis: aioredis.Redis = connect(settings.redis_url, client_name="web-live")
        self._engine: Engine | None = None
        self._lock = threading.Lock()

    @property
    def ledger(self) -> Engine:
        """The ledger's engine (read only here: the ledger service migrates and writes it)."""
        with self._lock:
            if self._engine is None:
                from shared.ledger.db import ledger_url, open_ledger

                url, source = ledger_url(self.settings.ledger_url)
                self._engine = open_ledger(url, source=source)
            return self._engine

    async def close(self) -> None:
        self.redis.close()
        await self.aredis.aclose()
        if self._engine is not None:
            self._engine.dispose()
