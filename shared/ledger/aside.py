"""Setting the previous run's ledger aside for `automata run --fresh`, kept whole, on either database.

Why: a fresh run forgets Redis and the paper venue, so the bots' order ids start again at
`{bot}-000001`. A ledger that still holds those ids for the previous run's orders takes the new
orders' updates for repeats (a row only moves forward): their fills are never written and
`automata profit` shows the old run. So the old history moves out of the way, nothing deleted:

- SQLite: the file (with its -wal and -shm) is renamed `ledger-before-fresh-<UTC time>.sqlite3`.
- PostgreSQL: the ledger's tables (and `alembic_version`) move, in one transaction, from the
  schema the URL's user works in (`current_schema()`, usually `public`) into a new schema
  `ledger_before_fresh_<UTC time>` of the same database. The new run's ledger creates its tables
  afresh; the old ones stay queryable there (`?options=-csearch_path%3D<schema>` on DATABASE_URL
  points `automata trades`, `profit`... at them). A database that cannot be reached, or a user
  without the right to create a schema, is an AsideError naming the URL's source: the caller
  stops before it forgets anything.
"""

from __future__ import annotations

import os
import time
from collections.abc import Mapping
from pathlib import Path

import sqlalchemy as sa
from dotenv import dotenv_values

from shared.config import DEFAULT_CONFIG, load_config
from shared.ledger import schema
from shared.ledger.db import HOME_ENV, describe, ledger_url, open_ledger
from shared.urls import safe_url

PREFIX = "ledger_before_fresh_"
VERSION_TABLE = "alembic_version"


class AsideError(RuntimeError):
    """The previous ledger could not be set aside (the message names the URL's source)."""


def stamp() -> str:
    """The UTC time that names what is set aside."""
    return time.strftime("%Y%m%dT%H%M%S", time.gmtime())


def search_path_url(url: str, schema_name: str) -> str:
    """`url` reading `schema_name` (libpq's `options`): how to look at a run set aside."""
    sep = "&" if "?" in url else "?"
    return f"{url}{sep}options=-csearch_path%3D{schema_name}"


def run_ledger_url(root: Path, environ: Mapping[str, str] | None = None) -> tuple[str, str]:
    """(url, source) of the ledger the services of a run in AUTOMATA_HOME `root` open, as they
    find it from there (their working directory): DATABASE_URL from the environment or the home's
    `.env`, else `[ledger] url` of the config (AUTOMATA_CONFIG, else automata.toml), else the
    home's SQLite file. Why: a DATABASE_URL kept in `.env` must be set aside too."""
    environ = os.environ if environ is None else environ
    dotenv = root / ".env"
    env = {k: v for k, v in dotenv_values(dotenv).items() if v is not None} if dotenv.is_file() else {}
    env = {**env, **environ, HOME_ENV: str(root)}
    config = root / (env.get("AUTOMATA_CONFIG") or DEFAULT_CONFIG)
    config_url = load_config(config, env=env).ledger.url if config.is_file() else ""
    return ledger_url(config_url, env)


def set_aside(url: str, source: str, when: str | None = None) -> str | None:
    """Move the ledger at `url` aside; where it is kept (a file, or `schema "X"`), or None when
    there was nothing to move. AsideError when the database refuses or cannot be reached."""
    when = when or stamp()
    engine = open_ledger(url, source=source)
    try:
        if engine.dialect.name == "sqlite":
            return _sqlite_aside(Path(engine.url.database or ""), when)
        kept = _schema_aside(engine, when)
    except sa.exc.SQLAlchemyError as exc:
        raise AsideError(
            f"cannot set the previous run's ledger aside in {safe_url(url)} ({source}): {describe(exc)}. "
            "Nothing was removed. Let its user create schemas (GRANT CREATE ON DATABASE ...), or point "
            f"{source} at a new, empty database."
        ) from None
    finally:
        engine.dispose()
    if kept is None:
        return None
    shown = safe_url(search_path_url(url, kept))
    return f"schema \"{kept}\" of the same database (to read it: {source}='{shown}')"


def _sqlite_aside(path: Path, when: str) -> str | None:
    if str(path) in ("", ":memory:") or not path.exists():
        return None
    kept = path.with_name(f"{path.stem}-before-fresh-{when}{path.suffix}")
    for suffix in ("", "-wal", "-shm"):
        part = path.with_name(path.name + suffix)
        if part.exists():
            os.replace(part, kept.with_name(kept.name + suffix))
    return str(kept)


def _schema_aside(engine: sa.Engine, when: str) -> str | None:
    kept = PREFIX + when.lower()
    with engine.begin() as conn:
        current = conn.execute(sa.text("SELECT current_schema()")).scalar()
        if current is None:  # an empty search_path: the ledger could not have written anything
            return None
        present = set(sa.inspect(conn).get_table_names(schema=current))
        ours = [t for t in (*schema.metadata.tables, VERSION_TABLE) if t in present]
        if not ours:
            return None
        conn.execute(sa.text(f'CREATE SCHEMA "{kept}"'))
        for table in ours:  # its indexes, constraints and owned sequences move with it
            conn.execute(sa.text(f'ALTER TABLE "{current}"."{table}" SET SCHEMA "{kept}"'))
    return kept
