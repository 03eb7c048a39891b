"""Redis connections from REDIS_URL (default redis://127.0.0.1:6379/0), as the Redis user named
by REDIS_USER with the password read from REDIS_PASSWORD_FILE (shared/redis_acl.py): a password
kept in a file of its own is in no process's environment and in no URL on a command line."""

from __future__ import annotations

import os
from collections.abc import Mapping
from urllib.parse import quote, urlsplit, urlunsplit

import redis.asyncio as aioredis
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from shared.logs import register_secret

# safe_url is re-exported (its callers import it from here); both live in shared/urls.py
from shared.urls import safe_url as safe_url
from shared.urls import url_passwords

DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/0"

# Redis itself unreachable (restarting, network blip).
REDIS_ERRORS = (RedisConnectionError, RedisTimeoutError)
# What a consumer loop survives by waiting and reconnecting (Redis restarted, network blip).
TRANSIENT_ERRORS = (RedisConnectionError, RedisTimeoutError, ConnectionError, OSError)


USER_ENV = "REDIS_USER"
PASSWORD_FILE_ENV = "REDIS_PASSWORD_FILE"


class RedisCredentialsError(ValueError):
    """REDIS_PASSWORD_FILE cannot be read (the message names the file)."""


def redis_url() -> str:
    return with_credentials(os.environ.get("REDIS_URL") or DEFAULT_REDIS_URL, os.environ)


def with_credentials(url: str, env: Mapping[str, str]) -> str:
    """`url` as REDIS_USER with REDIS_PASSWORD_FILE's password (when set); every password the
    URL ends up with is registered for log masking."""
    user, password_file = env.get(USER_ENV), env.get(PASSWORD_FILE_ENV)
    if user or password_file:
        parts = urlsplit(url)
        old_user = parts.username or ""
        password = parts.password or ""
        if password_file:
            try:
                with open(password_file, encoding="utf-8") as fh:
                    password = fh.read().strip()
            except OSError as exc:
                raise RedisCredentialsError(
                    f"{PASSWORD_FILE_ENV}: {password_file}: cannot read: {exc.strerror}"
                ) from None
        creds = quote(user or old_user, safe="") + (":" + quote(password, safe="") if password else "")
        host = parts.netloc.rsplit("@", 1)[-1]
        url = urlunsplit(parts._replace(netloc=f"{creds}@{host}" if creds else host))
    for secret in url_passwords(url):
        register_secret(secret)
    return url


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
