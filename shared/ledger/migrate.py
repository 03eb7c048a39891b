"""Migrations in a process of their own: `python -m shared.ledger.migrate`.

Why: Alembic (with Mako and its plugins) costs a process ~11 MB that it keeps for the rest of
its life. The ledger service runs its migrations here, in a child that exits when they are done,
and never imports Alembic itself (tests/test_ledger_service.py holds it to that). The child
reads the URL from its environment (DATABASE_URL, the variable the ledger already reads), never
from its command line, where `ps` would show the password.
"""

from __future__ import annotations

import os
import subprocess
import sys

import sqlalchemy as sa

from shared.ledger.db import DATABASE_URL_ENV, describe, open_ledger, upgrade

SOURCE_ENV = "AUTOMATA_LEDGER_URL_SOURCE"
EX_TEMPFAIL = 75  # sysexits.h: the database is away, try again later
TIMEOUT_S = 600.0
TRANSIENT = (sa.exc.OperationalError, sa.exc.InterfaceError, OSError)  # unreachable, restarted, disk full


class MigrationUnavailable(OSError):
    """The database could not be reached (or written) while migrating: try again later."""


def upgrade_apart(url: str, source: str) -> None:
    """Run `upgrade(open_ledger(url))` in a child process. MigrationUnavailable when the database
    is away (the caller retries), RuntimeError with the child's last lines when it failed."""
    env = {**os.environ, DATABASE_URL_ENV: url, SOURCE_ENV: source}
    done = subprocess.run(
        [sys.executable, "-m", "shared.ledger.migrate"],
        env=env,
        capture_output=True,
        text=True,
        timeout=TIMEOUT_S,
        check=False,
    )
    if done.returncode == 0:
        return
    lines = [line for line in done.stderr.strip().splitlines() if line.strip()]
    if done.returncode == EX_TEMPFAIL:
        raise MigrationUnavailable(lines[-1] if lines else "database unavailable")
    tail = "\n".join(lines[-5:])
    raise RuntimeError(f"ledger migrations failed (exit {done.returncode}): {tail}")


def main() -> int:
    engine = open_ledger(os.environ[DATABASE_URL_ENV], source=os.environ.get(SOURCE_ENV, "ledger url"))
    try:
        upgrade(engine)
    except TRANSIENT as exc:
        print(describe(exc), file=sys.stderr)
        return EX_TEMPFAIL
    finally:
        engine.dispose()
    return 0


if __name__ == "__main__":
    sys.exit(main())
