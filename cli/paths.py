"""Where a local deployment lives: AUTOMATA_HOME (default: the current directory) and its var/.

`automata run` keeps everything it writes under $AUTOMATA_HOME/var: redis/ (the AOF), log/,
exchange_sim/ (the paper venue's saved state),
run/ (supervisord's pid file and socket, and automata.json, the record `automata down` reads),
secrets/redis/ (the Redis ACL file and one 0600 password file per Redis user, shared/redis_acl.py).
The other commands write there too, unless told a path: the keystore (secrets/keystore.json),
the DCA plans the menu saves (plans/), the charts (charts/). Nothing lands in the working
directory by default, so a clone used as AUTOMATA_HOME keeps a clean `git status`.
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
    def secrets(self) -> Path:
        return self.var / "secrets"

    @property
    def redis_secrets(self) -> Path:
        """One password file per Redis user (0600) and the ACL file (deploy/supervisord.conf
        points each program at its own)."""
        return self.secrets / "redis"

    @property
    def web_token(self) -> Path:
        """The dashboard's token (0600), written by `automata run` and `automata deploy supervisor`
        when missing; the web service reads it through AUTOMATA_WEB_TOKEN_FILE."""
        return self.secrets / "web_token"

    @property
    def keystore(self) -> Path:
        """The keystore's default place (shared/keystore.py resolve_path: the services find it so)."""
        from shared.keystore import home_keystore

        return home_keystore(self.root)

    @property
    def plans_dir(self) -> Path:
        """Where `automata dca menu` saves a plan given by a bare name, and where commands that
        read a plan look for a bare name not found in the working directory."""
        return self.var / "plans"

    @property
    def charts_dir(self) -> Path:
        return self.var / "charts"

    def saved_plan(self, path: Path) -> Path:
        """`path` itself when it exists or is not a bare relative name, else the plan of that name
        in plans_dir when one was saved there (so `automata dca plan my.json` finds the menu's)."""
        if path.exists() or path.is_absolute() or len(path.parts) != 1:
            return path
        saved = self.plans_dir / path
        return saved if saved.exists() else path

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
