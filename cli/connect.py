"""Which system a CLI command talks to: the running `automata run` under AUTOMATA_HOME, else the
config file and REDIS_URL. Never a default Redis that may be someone else's.

Each piece is found in this order (a variable the user set always wins):
- Redis: REDIS_URL (with REDIS_USER / REDIS_PASSWORD_FILE, as for every service); else the Redis
  of the `automata run` recorded in var/run/automata.json (cli/state.py), as its `admin` user with
  the password `automata run` keeps in var/secrets/redis/admin (0600); else the [redis] url the
  config file names. None of these: NotFound, which says what to do.
- the config file: AUTOMATA_CONFIG; else the run's (for the demo on a moved SIM_PORT, the copy
  pointing at the paper venue it started); else automata.toml in AUTOMATA_HOME (or here).
- the bots file: AUTOMATA_BOTS; else the run's; else bots.toml in AUTOMATA_HOME (or here).

`system()` exports the config and bots files it found as AUTOMATA_CONFIG / AUTOMATA_BOTS in this
process, so the code shared with the services (load_config, the reconcile's bots) reads the same
files the running services read.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import redis

from cli import paths
from cli.state import RunState, read_state
from services.strategy_runner.bots import DEFAULT_BOTS_FILE
from shared import redis_acl
from shared.config import DEFAULT_CONFIG, ConfigError, load_dotenv_file, read_toml
from shared.redis_conn import RedisCredentialsError, safe_url, with_credentials

RUN = "automata run"


class NotFound(paths.UsageError):
    """No system to talk to (nothing running here, nothing named), or a run that lost its Redis."""


@dataclass(frozen=True)
class System:
    """What a command talks to. `run` is the live `automata run` here; `left` a record of one
    whose Redis is gone."""

    home: paths.Home
    run: RunState | None
    left: RunState | None
    config: Path | None  # None: no config file (every setting at its default)
    config_from: str  # who named it: AUTOMATA_CONFIG, automata run, or "" (found in place)
    bots: Path | None
    redis: str | None  # the URL, credentials included (show it through safe_url)
    redis_from: str  # REDIS_URL, automata run, or the config file

    def line(self) -> str:
        """A few short lines saying which system this is, for `status` and `doctor`."""
        parts = []
        if self.run is not None:
            parts.append(f"{RUN} in {self.home.root} (pid {self.run.runner.pid})")
        else:
            parts.append(self.nothing()[0])
        if self.redis is not None:
            shown = (
                f"127.0.0.1:{self.run.redis_port}"
                if self.run and self.redis_from == RUN
                else safe_url(self.redis)
            )
            parts.append(f"redis {shown}" + ("" if self.redis_from == RUN else f" ({self.redis_from})"))
        if self.run is not None and self.run.sim_port:
            parts.append(f"paper venue :{self.run.sim_port}")
        if self.config is None:
            parts.append("no config file (all defaults)")
        else:
            parts.append(f"config {self.config}" + (f" ({self.config_from})" if self.config_from else ""))
        head, *rest = parts
        where = [p for p in rest if not p.startswith(("config ", "no config"))]
        config = [p for p in rest if p not in where]
        lines = [
            f"system: {head}",
            *(["  " + ", ".join(where)] if where else []),
            *("  " + c for c in config),
        ]
        return "\n".join(lines)  # short lines: status and doctor fit 80 columns

    def nothing(self) -> tuple[str, str]:
        """Why there is no run to talk to, and what to do about it."""
        root = self.home.root
        if self.left is not None and self.left.runner.alive():
            return (
                f"the {RUN} under {root} (pid {self.left.runner.pid}) has lost its Redis (pid {self.left.redis.pid})",
                "`automata down`, then `automata run`",
            )
        if self.left is not None:
            return (
                f"the {RUN} under {root} is gone (its record {self.home.state_file} stayed)",
                "`automata down` cleans up, `automata run` starts it again",
            )
        # a run started with AUTOMATA_HOME=DIR is found only by commands given the same
        return f"nothing running under {root}", (
            "start it with `automata run` (one started elsewhere: set AUTOMATA_HOME to its directory)"
        )

    def need_redis(self) -> str:
        """The Redis URL, or NotFound saying why there is none and what to do."""
        if self.redis is not None:
            return self.redis
        why, remedy = self.nothing()
        if self.config is not None:
            raise NotFound(f"{why} and {self.config} names no [redis] url: {remedy}, or set REDIS_URL")
        raise NotFound(f"{why}: {remedy}, or set REDIS_URL / AUTOMATA_CONFIG")

    def need_config(self) -> None:
        """NotFound unless there is a config to go by: a run's, or a file (the defaults name a
        paper venue on 127.0.0.1:8800 that may be anyone's)."""
        if self.config is None and self.run is None:
            why, remedy = self.nothing()
            raise NotFound(
                f"{why} and there is no config file ({DEFAULT_CONFIG}): {remedy}, or set AUTOMATA_CONFIG"
            )


def _found_here(home: paths.Home, name: str) -> Path | None:
    for path in (home.root / name, Path(name).resolve()):
        if path.exists():
            return path
    return None


def _named(variable: str) -> Path | None:
    named = os.environ.get(variable)
    if not named:
        return None
    if not Path(named).exists():
        raise paths.UsageError(f"{named}: file not found (named by {variable})")
    return Path(named)


def _config_redis(config: Path) -> str | None:
    """The [redis] url the config file names (none: the file says nothing about Redis)."""
    try:
        section = read_toml(config).get("redis")
    except ConfigError as exc:
        raise paths.UsageError(f"configuration error: {exc}") from None
    url = section.get("url") if isinstance(section, dict) else None
    return url if isinstance(url, str) and url else None


def _check_url(url: str, source: str) -> None:
    """A URL redis-py cannot parse is a UsageError naming where it came from, not a traceback."""
    try:
        redis.connection.parse_url(url)
    except ValueError as exc:
        raise paths.UsageError(f"{source}: not a Redis URL: {safe_url(url)} ({exc})") from None


def _export(variable: str, path: Path | None, default: str) -> None:
    """Name `path` in this process's environment, unless the default lookup finds it already."""
    if path is not None and path.resolve() != Path(default).resolve():
        os.environ.setdefault(variable, str(path))


def system() -> System:
    """Find the system (see the module's docstring); UsageError for a file named but missing,
    an unreadable config or bad Redis credentials. Talks to nothing."""
    load_dotenv_file()  # a REDIS_URL or AUTOMATA_CONFIG in .env counts as set, as for the services
    home = paths.home()
    state = read_state(home.state_file)
    run = state if state is not None and state.redis.alive() else None
    left = state if state is not None and run is None else None

    config, config_from = _named("AUTOMATA_CONFIG"), "AUTOMATA_CONFIG"
    if config is None and run is not None and run.config:
        config, config_from = Path(run.config), RUN
    if config is None:
        config, config_from = _found_here(home, DEFAULT_CONFIG), ""
    bots = _named("AUTOMATA_BOTS")
    if bots is None and run is not None and run.bots:
        bots = Path(run.bots)
    if bots is None:
        bots = _found_here(home, DEFAULT_BOTS_FILE)

    try:
        if os.environ.get("REDIS_URL"):
            url: str | None = with_credentials(os.environ["REDIS_URL"], os.environ)
            redis_from = "REDIS_URL"
        elif run is not None:
            admin = {
                "REDIS_USER": redis_acl.ADMIN,
                "REDIS_PASSWORD_FILE": str(home.redis_secrets / redis_acl.ADMIN),
            }
            url, redis_from = with_credentials(f"redis://127.0.0.1:{run.redis_port}/0", admin), RUN
        else:
            raw = _config_redis(config) if config is not None else None
            url = with_credentials(raw, os.environ) if raw else None
            redis_from = f"[redis] url of {config}"
    except RedisCredentialsError as exc:
        raise paths.UsageError(str(exc)) from None
    if url is not None:
        _check_url(url, redis_from)

    _export("AUTOMATA_CONFIG", config, DEFAULT_CONFIG)
    _export("AUTOMATA_BOTS", bots, DEFAULT_BOTS_FILE)
    return System(home, run, left, config, config_from, bots, url, redis_from)


def redis_url() -> str:
    """The located Redis URL, or NotFound / UsageError (see System.need_redis)."""
    return system().need_redis()


def client(url: str | None = None) -> redis.Redis:
    return redis.Redis.from_url(url or redis_url(), socket_connect_timeout=2, socket_timeout=5)
