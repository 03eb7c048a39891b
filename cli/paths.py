"""Where a local deployment lives: AUTOMATA_HOME (default: the current directory) and its var/.

`automata run` keeps everything it writes under $AUTOMATA_HOME/var: redis/ (the AOF), log/,
exchange_sim/ (the paper venue's saved state),
run/ (supervisord's pid file and socket, and automata.json, the record `automata down` reads),
secrets/redis/ (the Redis ACL file and one 0600 password file per Redis user, shared/redis_acl.py).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SUPERVISORD_CONF = REPO / "deploy" / "supervisord.conf"
DEFAULT_REDIS_PORT = 6390  # never 6379: the demo must not touch a Redis the machine already runs


class UsageError(Exception):
    """A problem the user can fix; printed without a traceback."""


@dataclass(frozen=True)
class Home:
    root: Path

    @property
    def var(self) -> Path:
        return self.root / "var"

    @property
    def redis_dir(self) -> Path:
        return self.var / "redis"

    @property
    def log_dir(self) -> Path:
        return self.var / "log"

    @property
    def venue_dir(self) -> Path:
        """The paper venue's saved state (SIM_STATE_DIR): accounts, orders, trades, market clock."""
        return self.var / "exchange_sim"

    @property
    def run_dir(self) -> Path:
        return self.var / "run"

    @property
    def redis_secrets(self) -> Path:
        """One password file per Redis user (0600) and the ACL file (deploy/supervisord.conf
        points each program at its own)."""
        return self.var / "secrets" / "redis"

    @property
    def state_file(self) -> Path:
        return self.run_dir / "automata.json"

    @property
    def supervisor_socket(self) -> Path:
        return self.run_dir / "supervisor.sock"

    def make_dirs(self) -> None:
        for path in (self.redis_dir, self.log_dir, self.run_dir):
            path.mkdir(parents=True, exist_ok=True)


def home() -> Home:
    return Home(Path(os.environ.get("AUTOMATA_HOME") or os.getcwd()).resolve())


def redis_port() -> int:
    raw = os.environ.get("AUTOMATA_REDIS_PORT") or str(DEFAULT_REDIS_PORT)
    try:
        port = int(raw)
    except ValueError:
        raise UsageError(f"AUTOMATA_REDIS_PORT: not a port number: {raw!r}") from None
    if not 0 < port < 65536:
        raise UsageError(f"AUTOMATA_REDIS_PORT: out of range: {port}")
    return port
