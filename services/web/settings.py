"""What the web service needs to know, taken from the loaded config (shared/config.py `[web]`).

A plain frozen dataclass so a test builds one in a line; the token never shows in its repr."""

from __future__ import annotations

import ipaddress
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from shared.config import AppConfig, ConfigError

MIN_TOKEN_LENGTH = 16


class UnsafeBind(ValueError):
    """The service would listen beyond this machine without a token."""


@dataclass(frozen=True)
class WebSettings:
    redis_url: str
    ledger_url: str = ""  # "" = the ledger's own default (DATABASE_URL, `[ledger] url`, var/)
    token: str = field(default="", repr=False)
    read_only: bool = False
    host: str = "127.0.0.1"
    port: int = 8780
    origins: tuple[str, ...] = ()  # extra Origins trusted for control actions (a reverse proxy)
    quotes: Mapping[str, str] = field(default_factory=lambda: {"sim": "USDT"})  # venue -> quote asset
    bots_file: str = ""  # AUTOMATA_BOTS: the bots the system runs (unknown bot ids are refused)

    @classmethod
    def from_config(
        cls,
        cfg: AppConfig,
        *,
        host: str | None = None,
        port: int | None = None,
        read_only: bool = False,
        env: Mapping[str, str] | None = None,
    ) -> WebSettings:
        env = os.environ if env is None else env
        return cls(
            redis_url=cfg.redis.url,
            ledger_url=cfg.ledger.url,
            token=cfg.web.token,
            read_only=read_only or cfg.web.read_only,
            host=host or cfg.web.host,
            port=port if port is not None else _env_port(env, cfg.web.port),
            origins=tuple(cfg.web.origins),
            quotes={name: venue.quote_asset for name, venue in cfg.venues.items()},
            bots_file=bots_file(env),
        )

    def check(self) -> None:
        """Refuse a bind beyond loopback without a token, and a token too short to be one."""
        if self.token and len(self.token) < MIN_TOKEN_LENGTH:
            raise UnsafeBind(f"the web token must have at least {MIN_TOKEN_LENGTH} characters")
        if not self.token and not is_loopback(self.host):
            raise UnsafeBind(
                f"refusing to listen on {self.host} without authentication: set AUTOMATA_WEB_TOKEN "
                "(or [web] token), or listen on 127.0.0.1"
            )


def bots_file(env: Mapping[str, str]) -> str:
    """The bots the system runs, as the CLI finds them: AUTOMATA_BOTS, else the file the running
    `automata run` uses (its state file: the demo's bots), else bots.toml in AUTOMATA_HOME."""
    from cli.paths import Home
    from cli.state import read_state
    from services.strategy_runner.bots import DEFAULT_BOTS_FILE

    if env.get("AUTOMATA_BOTS"):
        return env["AUTOMATA_BOTS"]
    home = Home(Path(env.get("AUTOMATA_HOME") or "."))
    state = read_state(home.state_file)
    if state is not None and state.bots:
        return state.bots
    own = home.root / DEFAULT_BOTS_FILE
    return str(own) if own.is_file() else ""


def _env_port(env: Mapping[str, str], default: int) -> int:
    raw = env.get("WEB_PORT")
    if not raw:
        return default
    if not raw.isdigit() or int(raw) > 65535:
        raise ConfigError(f"environment: WEB_PORT: not a port number: {raw!r}")
    return int(raw)


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
