"""Which Redis a CLI command talks to.

REDIS_URL wins (as for every service); else the Redis of an `automata run` going on under
AUTOMATA_HOME (so `automata health` finds the demo on its own port); else the config file's
[redis] url.
"""

from __future__ import annotations

import os

import redis

from cli import paths
from cli.state import read_state
from shared.config import ConfigError, load_config


def redis_url() -> str:
    if os.environ.get("REDIS_URL"):
        return os.environ["REDIS_URL"]
    state = read_state(paths.home().state_file)
    if state is not None and state.redis.alive():
        return f"redis://127.0.0.1:{state.redis_port}/0"
    try:
        return load_config().redis.url
    except ConfigError as exc:
        raise paths.UsageError(f"configuration error: {exc}") from None


def client(url: str | None = None) -> redis.Redis:
    return redis.Redis.from_url(url or redis_url(), socket_connect_timeout=2, socket_timeout=5)
