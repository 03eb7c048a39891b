"""Redis connections from REDIS_URL (default redis://127.0.0.1:6379/0), as the Redis user named
by REDIS_USER with the password read from REDIS_PASSWORD_FILE (shared/redis_acl.py): a password
kept in a file of its own is in no process's environment and in no URL on a command line."""

from __future__ import annotations

import os

import redis.asyncio as aioredis
from redis._parsers.base import BaseParser
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import ResponseError
from redis.exceptions import TimeoutError as RedisTimeoutError

# re-exported (their callers import them from here); they live in shared/urls.py, which the
# configuration uses without importing redis-py (~9 MB the paper venue then never holds)
from shared.redis_lean import DRIVER_INFO
from shared.urls import PASSWORD_FILE_ENV as PASSWORD_FILE_ENV
from shared.urls import USER_ENV as USER_ENV
from shared.urls import RedisCredentialsError as RedisCredentialsError
from shared.urls import safe_url as safe_url
from shared.urls import with_credentials as with_credentials

DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/0"


class RedisWritesRefused(ResponseError):
    """Redis answered MISCONF: it cannot write its AOF (a full disk, a failing device) and refuses
    every write, PING included, until a write succeeds again (it retries on its own, about every
    100 ms). Like a restart of Redis, a pause of the whole bus, never the fault of the entry in
    hand: handled as Redis unavailable, so nothing is counted as a failed delivery, nothing is
    dead-lettered, no service exits, and each carries on once the disk has room."""


# redis-py raises a plain ResponseError for MISCONF; map it (every client, the CLI's too).
BaseParser.EXCEPTION_CLASSES["MISCONF"] = RedisWritesRefused

# Redis itself unreachable (restarting, network blip), or refusing writes (its disk is full).
REDIS_ERRORS = (RedisConnectionError, RedisTimeoutError, RedisWritesRefused)
# What a consumer loop survives by waiting and reconnecting (Redis restarted, network blip).
TRANSIENT_ERRORS = (*REDIS_ERRORS, ConnectionError, OSError)


def unavailable(exc: BaseException) -> str:
    """What a log line says of a Redis that is away: the error's name, or, when Redis refuses
    writes, its own words and the likely cause (the operator must free disk space)."""
    if isinstance(exc, RedisWritesRefused):
        text = str(exc)  # in a pipeline, prefixed with the command and quoted
        said = text[text.find("Errors") :].rstrip("',)") if "Errors" in text else text
        return f"redis refuses writes: {said}; is its disk full?"
    return type(exc).__name__


def redis_url() -> str:
    return with_credentials(os.environ.get("REDIS_URL") or DEFAULT_REDIS_URL, os.environ)


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
        driver_info=DRIVER_INFO,
    )
