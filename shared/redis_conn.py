"""Redis connections from REDIS_URL (default redis://127.0.0.1:6379/0)."""

from __future__ import annotations

import os

import redis.asyncio as aioredis
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/0"

# Redis itself unreachable (restarting, network blip).
REDIS_ERRORS = (RedisConnectionError, RedisTimeoutError)
# What a consumer loop survives by waiting and reconnecting (Redis restarted, network blip).
TRANSIENT_ERRORS = (RedisConnectionError, RedisTimeoutError, ConnectionError, OSError)


def redis_url() -> str:
    return os.environ.get("REDIS_URL") or DEFAULT_REDIS_URL


def connect(url: str | None = None, *, client_name: str | None = None) -> aioredis.Redis:
    """An asyncio client (bytes responses) that retries a failed command a few times with backoff."""
    return aioredis.Redis.from_url(
        url or redis_url(),
        decode_responses=False,
        retry=Retry(ExponentialBackoff(cap=1.0, base=0.05), retries=3),
        retry_on_error=[RedisConnectionError, RedisTimeoutError],
        health_check_interval=15,
        socket_connect_timeout=5,
        client_name=client_name,
    )


def safe_url(url: str) -> str:
    """The URL with any password replaced, for logs."""
    if "@" not in url or "://" not in url:
        return url
    scheme, rest = url.split("://", 1)
    creds, host = rest.rsplit("@", 1)
    user = creds.split(":", 1)[0] if ":" in creds else ""
    return f"{scheme}://{user}:***@{host}"
