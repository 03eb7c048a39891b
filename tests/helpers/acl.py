"""A real redis-server loaded with the generated ACL (shared/redis_acl.py), connected to as admin."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from shared import redis_acl
from shared.redis_acl import Runner
from shared.redis_server import RedisServer


def start_acl_redis(
    directory: Path, secrets: Path, runners: Sequence[Runner] = (), server: type[RedisServer] = RedisServer
) -> RedisServer:
    """redis-server in `directory` with the ACL and password files written to `secrets`; `server`
    may be a RedisServer subclass (tests/helpers/full_disk.py: one whose disk can fill)."""
    acl = redis_acl.write_acl(secrets, runners)
    password = (secrets / redis_acl.ADMIN).read_text().strip()
    return server(directory, aclfile=acl, username=redis_acl.ADMIN, password=password).start()
