"""Which Redis a CLI command talks to.

REDIS_URL wins (as for every service, with REDIS_USER / REDIS_PASSWORD_FILE); else the Redis of
an `automata run` going on under AUTOMATA_HOME (so `automata health` finds the demo on its own
port), as its `admin` user with the password `automata run` keeps in var/secrets/redis/admin
(0600); else the config file's [redis] url.
"""

from __future__ import annotations

import os

import redis

from cli import paths
from cli.state import read_state
from shared import redis_acl
from shared.config import ConfigError, load_config
from shared.redis_conn import RedisCredentialsError, with_credentials


def redis_url() -> str:
    try:
        if os.environ.get("REDIS_URL"):
            return with_credentials(os.environ["REDIS_URL"], os.environ)
        home = paths.home()
        state = read_state(home.state_file)
        if state is not None and state.redis.alive():
            admin = {
                "REDIS_USER": redis_acl.ADMIN,
                "REDIS_PASSWORD_FILE": str(home.redis_secrets / redis_acl.ADMIN),
            }
            return with_credentials(f"redis://127.0.0.1:{state.redis_port}/0", admin)
    except RedisCredentialsError as exc:
        raise paths.UsageError(str(exc)) from None
    try:
        return load_config().redis.url
    except ConfigError as exc:
        raise paths.UsageError(f"configuration error: {exc}") from None


def client(url: str | None = None) -> redis.Redis:
    return redis.Redis.from_url(url or redis_url(), socket_connect_timeout=2, socket_timeout=5)
