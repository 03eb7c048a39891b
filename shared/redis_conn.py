"""Redis connections from REDIS_URL (default redis://127.0.0.1:6379/0), as the Redis user named
by REDIS_USER with the password read from REDIS_PASSWORD_FILE (shared/redis_acl.py): a password
kept in a file of its own is in no process's environment and in no URL on a command line."""

from __future__ import annotations

import os
from collections.abc import Mapping
from urllib.parse import parse_qsl, quote, urlencode, urlsplit, urlunsplit

import redis.asyncio as aioredis
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from shared.logs import register_secret

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


def url_passwords(url: str) -> list[str]:
    """Every password a Redis URL carries: in the user info and in a `password=` query."""
    try:
        parts = urlsplit(url)
        found = [parts.password] if parts.password else []
    except ValueError:
        return []
    found += [v for k, v in parse_qsl(parts.query) if k.lower() == "password" and v]
    return found


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
    """The URL with any password replaced, for logs: `user:pw@`, `:pw@` and `?password=` of
    redis://, rediss:// and unix:// URLs. A URL that does not parse is hidden whole."""
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises on a malformed port
    except ValueError:
        return "<unparsable redis url>"
    netloc = parts.netloc
    if "@" in netloc:  # `redis://secret@host`: redis-py takes a lone user info as the password
        creds, host = netloc.rsplit("@", 1)
        netloc = f"{creds.split(':', 1)[0] if ':' in creds else ''}:***@{host}"
    query = parts.query
    if query:
        pairs = parse_qsl(query, keep_blank_values=True)
        query = "?" + urlencode([(k, "***" if k.lower() == "password" else v) for k, v in pairs], safe="*")
    fragment = f"#{parts.fragment}" if parts.fragment else ""
    return f"{parts.scheme}://{netloc}{parts.path}{query}{fragment}"
