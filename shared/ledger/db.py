"""Opening the ledger's database and bringing its schema up to date.

The URL: DATABASE_URL, else `[ledger] url`, else the SQLite file $AUTOMATA_HOME/var/ledger.sqlite3
(AUTOMATA_HOME defaults to the working directory). SQLite runs in WAL mode with
`synchronous=FULL` (a committed transaction survives a power cut), foreign keys on and a busy
timeout (the ledger writes while readers such as `automata profit` read). PostgreSQL goes through
psycopg 3: `postgresql+psycopg://USER:PASSWORD@HOST:PORT/DB` (`postgres://` and `postgresql://`
are taken to mean the same). A URL is only ever shown with its password masked.
"""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event, text
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError, DBAPIError, NoSuchModuleError

from shared.logs import register_secret
from shared.urls import safe_url, url_passwords

DATABASE_URL_ENV = "DATABASE_URL"
HOME_ENV = "AUTOMATA_HOME"
SQLITE_FILE = Path("var") / "ledger.sqlite3"
BUSY_TIMEOUT_MS = 10_000
CONNECT_TIMEOUT_S = 5
MIGRATIONS = Path(__file__).resolve().parent / "migrations"
EXPECTED = "expected sqlite:///PATH or postgresql+psycopg://USER:PASSWORD@HOST:PORT/DB"


# SQLite says "disk I/O error" when a write fails with EFBIG (a file-size limit) or EIO, and
# "database or disk is full" only for ENOSPC: both deserve the likely cause.
HINTS = {
    "disk I/O error": "a full disk, a file-size limit or a failing device?",
    "database or disk is full": "free some space: the ledger retries",
}


def reason(exc: BaseException) -> str:
    """The first line of a database error's own message: without the SQL or its parameters."""
    text = str(getattr(exc, "orig", None) or exc).strip()
    return text.splitlines()[0] if text else ""


def describe(exc: BaseException) -> str:
    """One line about a database error (its type, reason and likely cause)."""
    inner = getattr(exc, "orig", None) or exc
    line = reason(exc)
    hint = HINTS.get(line)
    return f"{type(inner).__name__}: {line}" + (f" ({hint})" if hint else "")


# What a connection error most likely means, by a phrase in it (psycopg's and SQLite's texts).
CONNECT_HINTS = (
    ("password authentication failed", "the user or password in {source} is wrong"),
    ("no password supplied", "{source} names no password and the server asks for one"),
    ("does not exist", "create it (createdb / CREATE ROLE) or fix the name in {source}"),
    ("failed to resolve host", "the host in {source} is unknown (a password with @ unencoded? write it %40)"),
    ("Connection refused", "is PostgreSQL running at the host and port {source} names?"),
    ("timeout expired", "is PostgreSQL running at the host and port {source} names?"),
    (
        "unable to open database file",
        "the folder of the SQLite file {source} names is missing or not writable",
    ),
)


def cannot_connect(exc: BaseException, url: str, source: str) -> str:
    """One line for a ledger database that cannot be reached: the URL (password masked), where it
    came from, the database's reason and what it most likely means. Why: a wrong password or host
    must point at the variable to fix, not only at the server's words."""
    line = describe(exc)
    hint = next((h for phrase, h in CONNECT_HINTS if phrase in line), "")
    return f"{safe_url(url)} ({source}): {line}" + (f": {hint.format(source=source)}" if hint else "")


class LedgerUrlError(ValueError):
    """A database URL that cannot be used; the message names where it came from, password masked."""


def default_url(env: Mapping[str, str]) -> str:
    home = Path(env.get(HOME_ENV) or os.getcwd())
    return f"sqlite:///{home / SQLITE_FILE}"


def ledger_url(config_url: str = "", env: Mapping[str, str] | None = None) -> tuple[str, str]:
    """(url, where it came from): DATABASE_URL, else the config's `[ledger] url`, else the default."""
    env = os.environ if env is None else env
    if env.get(DATABASE_URL_ENV):
        return env[DATABASE_URL_ENV], DATABASE_URL_ENV
    if config_url:
        return config_url, "[ledger] url"
    return default_url(env), "the default"


def _parse(url: str, source: str) -> URL:
    def fail(problem: str) -> LedgerUrlError:
        return LedgerUrlError(f"{source}: {safe_url(url)}: {problem} ({EXPECTED})")

    try:
        parsed = make_url(url)
    except (ArgumentError, ValueError):
        raise fail("not a database URL") from None
    if parsed.drivername in ("postgres", "postgresql"):
        parsed = parsed.set(drivername="postgresql+psycopg")
    if parsed.drivername not in ("sqlite", "sqlite+pysqlite", "postgresql+psycopg"):
        raise fail(f"unsupported database {parsed.drivername!r}")
    if parsed.get_backend_name() == "sqlite" and not parsed.database:
        raise fail("no SQLite file named")
    if parsed.get_backend_name() == "postgresql" and not parsed.database:
        raise fail("no database named")
    if "@" in (parsed.host or ""):  # SQLAlchemy ends the password at its first `@`
        raise fail("the password has an `@` in it: write it percent-encoded, `%40`")
    return parsed


def _sqlite_pragmas(dbapi_conn: sqlite3.Connection, _record: Any) -> None:
    """Every new SQLite connection: WAL, fsync at each commit, foreign keys, wait for a lock."""
    cursor = dbapi_conn.cursor()
    try:
        cursor.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
        cursor.execute("PRAGMA journal_mode = WAL")
        cursor.execute("PRAGMA synchronous = FULL")
        cursor.execute("PRAGMA foreign_keys = ON")
    finally:
        cursor.close()


def open_ledger(url: str | None = None, *, source: str = "ledger url") -> Engine:
    """An Engine on the ledger's database (no connection made yet). url None: `ledger_url()`
    without a config. A bad URL raises LedgerUrlError naming `source`."""
    if url is None:
        url, source = ledger_url()
    for secret in url_passwords(url):
        register_secret(secret)
    parsed = _parse(url, source)
    kwargs: dict[str, Any] = {}
    if parsed.get_backend_name() == "sqlite":
        if parsed.database != ":memory:":
            Path(parsed.database or "").parent.mkdir(parents=True, exist_ok=True)
        kwargs["connect_args"] = {"timeout": BUSY_TIMEOUT_MS / 1000}
    else:
        kwargs["pool_pre_ping"] = True  # a restarted server: the next checkout reconnects
        kwargs["connect_args"] = {"connect_timeout": CONNECT_TIMEOUT_S}  # a silent host: an error, not a hang
    try:
        engine = create_engine(parsed, **kwargs)
    except (ArgumentError, NoSuchModuleError, ImportError) as exc:
        raise LedgerUrlError(f"{source}: {safe_url(url)}: {type(exc).__name__}: {exc} ({EXPECTED})") from None
    if engine.dialect.name == "sqlite":
        event.listen(engine, "connect", _sqlite_pragmas)
    return engine


# The newest migration (tests/test_ledger_schema.py checks it is Alembic's head): a database
# already there is seen with one query, without importing Alembic (about 11 MB; the ledger
# service never holds them: its migrations run in a child, shared/ledger/migrate.py).
HEAD = "0005"


def at_head(engine: Engine) -> bool:
    """The database is at HEAD. A database that cannot be reached raises (OperationalError)."""
    with engine.connect() as connection:
        try:
            return connection.execute(text("SELECT version_num FROM alembic_version")).scalar() == HEAD
        except DBAPIError:  # no alembic_version table yet: a new database
            return False


def upgrade(engine: Engine, revision: str = "head") -> None:
    """Run the Alembic migrations up to `revision` (already there: nothing happens). Needs no
    alembic.ini: the migrations ship inside the package (shared/ledger/migrations)."""
    if revision in ("head", HEAD) and at_head(engine):
        return
    from alembic import command
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, revision)


def current_revision(engine: Engine) -> str | None:
    """The schema revision the database is at (None: never migrated)."""
    from alembic.migration import MigrationContext

    with engine.connect() as connection:
        return MigrationContext.configure(connection).get_current_revision()
