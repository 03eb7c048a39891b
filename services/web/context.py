"""What every request handler shares: the settings, a Redis client of each kind, the ledger."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import redis
import redis.asyncio as aioredis

from services.web.auth import LoginLimit
from services.web.live import Hub
from services.web.settings import WebSettings
from shared.redis_conn import connect
from shared.redis_lean import DRIVER_INFO

if TYPE_CHECKING:
    import sqlalchemy as sa
    from sqlalchemy.engine import Engine

    from services.web.history import ProfitCache


class WebContext:
    """Clients made on first use: a page that never asks for history never opens the ledger."""

    def __init__(self, settings: WebSettings) -> None:
        self.settings = settings
        self.redis = redis.Redis.from_url(settings.redis_url, socket_connect_timeout=2, socket_timeout=5,
                                          client_name="web", driver_info=DRIVER_INFO)  # fmt: skip
        self.aredis: aioredis.Redis = connect(settings.redis_url, client_name="web-live")
        self.hub = Hub(self.aredis)
        self._profit_cache: ProfitCache | None = None
        self.login_limit = LoginLimit()
        self._engine: Engine | None = None
        self._lock = threading.Lock()
        self._ready = False

    @property
    def ledger(self) -> Engine:
        """The ledger's engine (read only here: the ledger service migrates and writes it)."""
        with self._lock:
            if self._engine is None:
                from shared.ledger.db import ledger_url, open_ledger

                url, source = ledger_url(self.settings.ledger_url)
                self._engine = open_ledger(url, source=source)
            return self._engine

    @property
    def profit_cache(self) -> ProfitCache:
        if self._profit_cache is None:
            from services.web.history import ProfitCache

            self._profit_cache = ProfitCache()
        return self._profit_cache

    @contextlib.contextmanager
    def reading(self) -> Iterator[sa.Connection | None]:
        """A connection to the ledger, None while there is none yet (no SQLite file, no tables:
        the ledger service creates them; a reader never creates an empty database in passing)."""
        import sqlalchemy as sa

        engine = self.ledger
        if not self._ready:
            if engine.dialect.name == "sqlite" and not Path(engine.url.database or "").is_file():
                yield None
                return
            with engine.connect() as conn:
                self._ready = sa.inspect(conn).has_table("fills")
            if not self._ready:
                yield None
                return
        with engine.connect() as conn:
            yield conn

    async def close(self) -> None:
        self.hub.close()
        self.redis.close()
        await self.aredis.aclose()
        if self._engine is not None:
            self._engine.dispose()
