"""What the inspection and trading commands share: a console, Redis or a clean exit, the config.

Every failure a user can fix (Redis down, a bad config file) ends the command with a one-line
reason and exit code 1 (2 for usage and configuration), never a traceback; the Redis URL is
only ever shown with its password masked.
"""

from __future__ import annotations

import importlib.util
import sys
from collections.abc import Iterable
from typing import NoReturn

import redis
import typer
from rich.console import Console
from rich.markup import escape

from cli import connect
from cli.paths import UsageError
from shared.config import AppConfig, ConfigError, load_config
from shared.display import listing as listing  # error messages list known names
from shared.redis_conn import RedisWritesRefused, safe_url, unavailable


def console() -> Console:
    """A console made per command, so NO_COLOR / COLUMNS of this invocation apply."""
    return Console(highlight=False, emoji=False)


def fail(out: Console, message: str, code: int = 1) -> NoReturn:
    out.print(f"[red]{escape(message)}[/]", soft_wrap=True)  # one line, however narrow the terminal
    raise typer.Exit(code)


def require_matplotlib() -> None:
    """Charts need matplotlib, an extra (`charts`) the Docker image leaves out (docs/DEPENDENCIES.md):
    say so and exit 2 before any work, instead of an ImportError after it."""
    if importlib.util.find_spec("matplotlib") is None:
        fail(
            Console(stderr=True),
            "drawing a chart needs matplotlib, which this install leaves out (the Docker image does): "
            "pip install 'automata[charts]', or `make venv` in a checkout",
            2,
        )


def located(out: Console) -> connect.System:
    """The system this command talks to (cli/connect.py), or a clean exit 2 (a file named but
    missing, an unreadable config, bad Redis credentials)."""
    try:
        return connect.system()
    except UsageError as exc:
        fail(out, str(exc), 2)


def redis_client(out: Console, system: connect.System | None = None) -> tuple[redis.Redis, str]:
    """A client that answered PING, and its URL (for messages: pass it through safe_url)."""
    try:
        url = (system or located(out)).need_redis()
    except UsageError as exc:
        fail(out, str(exc), 1 if isinstance(exc, connect.NotFound) else 2)
    client = connect.client(url)
    try:
        client.ping()
    except RedisWritesRefused as exc:  # it answers, but refuses writes (PING counts as one then)
        print(
            f"warning: {unavailable(exc)} Commands that change something fail until it has room.",
            file=sys.stderr,
        )
    except redis.RedisError as exc:
        fail(out, f"cannot reach Redis at {safe_url(url)}: {exc}")
    return client, url


def config(out: Console, system: connect.System | None = None) -> AppConfig:
    """The located system's config; exits 1 when there is no system to go by (cli/connect.py),
    2 when the config does not load."""
    system = system or located(out)
    try:
        system.need_config()
    except connect.NotFound as exc:
        fail(out, str(exc))
    try:
        return load_config()
    except ConfigError as exc:
        fail(out, f"configuration error: {exc}", 2)


def config_or_none() -> AppConfig | None:
    """The config when it loads (for optional details such as a venue's quote asset)."""
    try:
        connect.system()
        return load_config()
    except (ConfigError, UsageError):
        return None


def check_venue(out: Console, cfg: AppConfig, venue: str) -> None:
    if venue not in cfg.venues:
        fail(out, f"venue {venue!r} is not configured (venues: {', '.join(sorted(cfg.venues))})", 2)


def check_symbol(out: Console, venue: str, symbol: str, known: Iterable[str]) -> None:
    """Exit 2 listing the venue's symbols when `symbol` is not one of them (an empty list: the
    venue could not tell, let it answer)."""
    from shared.control import ControlError
    from shared.control import check_symbol as check

    try:
        check(venue, symbol, known)
    except ControlError as exc:
        fail(out, str(exc), 2)


def short(exc: BaseException) -> str:
    """An error in a line: client libraries put whole responses (and signed query strings) in theirs."""
    text = str(exc).split(" <", 1)[0].split("?", 1)[0]
    return text if len(text) <= 120 else text[:117] + "..."


def ago(seconds: float) -> str:
    seconds = max(0, int(seconds))
    if seconds < 120:
        return f"{seconds}s"
    if seconds < 7200:
        return f"{seconds // 60}m"
    if seconds < 172800:
        return f"{seconds // 3600}h"
    return f"{seconds // 86400}d"
