"""The tests' Redis under the generated ACL, and each service started on it as its own user.

The `redis_server` fixture starts Redis with an ACL file: `default` as shared/redis_acl.py
writes it (off, every right, for the AOF replay) and `admin`, whose password is in the fixture's
URL, so tests and the CLI keep every right. A service a test starts (`python -m services.X`,
tests/helpers/procs.py) connects as X's own user, with the rights shared/redis_acl.py gives it,
created on the server (ACL SETUSER, then ACL SAVE so it survives a restart) the first time it is
needed. So a command a service lacks the right for fails in the tests as it would under
`automata run` and `automata deploy`, not only there (two such gaps shipped before: Telegram's
commands and the AOF replay of every transaction).

A strategy runner's user covers its `--bot` ids on any venue and any INSTANCE (every bot's keys when it names
none): the tests' bots trade on many venue names, and the point is the commands, not the venue.
AUTOMATA_TEST_ACL=0 runs the suite the old way (no ACL, every client as the default user).
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Sequence
from pathlib import Path
from urllib.parse import urlsplit

import redis

from shared import redis_acl
from shared.redis_acl import Runner
from shared.redis_server import RedisServer

ENABLED = os.environ.get("AUTOMATA_TEST_ACL", "1") != "0"
SERVICES = {  # module -> its Redis user (the paper venue has none: it does not use Redis)
    "services.market_gateway": redis_acl.market_gateway_user,
    "services.order_gateway": redis_acl.order_gateway_user,
    "services.notifier": redis_acl.notifier_user,
    "services.ledger": redis_acl.ledger_user,
    "services.web": redis_acl.web_user,
}
RUNNER = "services.strategy_runner"
_SERVERS: dict[int, AclRedis] = {}  # port -> server, for Proc.start to find


class AclRedis:
    """A RedisServer under the ACL; `service_env` adds a service's user to a child's env."""

    def __init__(self, directory: Path) -> None:
        self.secrets = directory.parent / f"{directory.name}-acl"
        self.secrets.mkdir(parents=True, exist_ok=True, mode=0o700)
        password = secrets.token_hex(16)
        aclfile = self.secrets / redis_acl.ACL_FILE
        aclfile.write_text(redis_acl.acl_text([redis_acl.admin_user()], {redis_acl.ADMIN: password}))
        self.server = RedisServer(directory, aclfile=aclfile, username=redis_acl.ADMIN, password=password)
        self.created: set[str] = set()

    def start(self) -> RedisServer:
        self.server.start()
        _SERVERS[self.server.port] = self
        return self.server

    def forget(self) -> None:
        _SERVERS.pop(self.server.port, None)

    def user_env(self, user: redis_acl.User) -> dict[str, str]:
        """REDIS_USER and REDIS_PASSWORD_FILE for `user`, created on the server if new."""
        path = self.secrets / user.name
        if user.name not in self.created:
            password = redis_acl.ensure_password(path)
            rules = user.rules
            if self.server.located.major < redis_acl.SELECTORS_MAJOR:
                rules = redis_acl.flat_rules(rules)
            client = redis.Redis.from_url(self.server.url)
            try:
                client.execute_command(
                    "ACL",
                    "SETUSER",
                    user.name,
                    "reset",
                    "on",
                    f"#{redis_acl.password_hash(password)}",
                    *rules,
                )
                client.execute_command("ACL", "SAVE")
            finally:
                client.close()
            self.created.add(user.name)
        return {"REDIS_USER": user.name, "REDIS_PASSWORD_FILE": str(path)}


def runner_user(args: Sequence[str]) -> redis_acl.User:
    """The user of a runner started with these arguments: its `--bot` ids, any venue."""
    bots = [args[i + 1] for i, arg in enumerate(args[:-1]) if arg == "--bot"]
    bots += [arg.split("=", 1)[1] for arg in args if arg.startswith("--bot=")]
    ids = sorted(set(bots)) or ["*"]
    name = "runner_" + "_".join(b.replace("*", "all") for b in ids)
    return redis_acl.runner_user(redis_acl.Runner(name, "*", tuple((b, "*") for b in ids)))


def service_env(args: Sequence[str], env: dict[str, str]) -> dict[str, str]:
    """`env` with the service's own Redis user when `args` start a service (`-m services.X`) on
    an ACL'd test Redis and `env` names no user yet; `env` unchanged otherwise."""
    if "REDIS_USER" in env or "-m" not in args:
        return env
    module = args[args.index("-m") + 1] if args.index("-m") + 1 < len(args) else ""
    make = SERVICES.get(module)
    if make is None and module != RUNNER:
        return env
    try:
        port = urlsplit(env.get("REDIS_URL", "")).port
    except ValueError:
        return env
    server = _SERVERS.get(port or 0)
    if server is None:
        return env
    user = make() if make is not None else runner_user(args)
    # the URL without admin's password: no service's environment holds another user's secret
    bare = urlsplit(env["REDIS_URL"])._replace(netloc=f"127.0.0.1:{port}").geturl()
    return {**env, "REDIS_URL": bare, **server.user_env(user)}


def start_acl_redis(
    directory: Path, secrets: Path, runners: Sequence[Runner] = (), server: type[RedisServer] = RedisServer
) -> RedisServer:
    """redis-server in `directory` with the ACL and password files written to `secrets` (every
    user at once, as `automata run` writes them); `server` may be a RedisServer subclass
    (tests/helpers/full_disk.py: one whose disk can fill)."""
    acl = redis_acl.write_acl(secrets, runners)
    password = (secrets / redis_acl.ADMIN).read_text().strip()
    return server(directory, aclfile=acl, username=redis_acl.ADMIN, password=password).start()
