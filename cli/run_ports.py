"""The fixed ports `automata run` will open, checked before anything starts.

A second run beside another one (another AUTOMATA_HOME) used to start Redis and supervisord and
then fail with "could not start: notifier (FATAL ...)": the services' metrics ports (9101-9107
by default) were the other run's. Every port the run will listen on is named up front, with the
variable that moves it.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Mapping

import msgspec

from cli.demo import Setup
from cli.paths import UsageError
from shared.config import ConfigError, load_config

_MOVE = {
    "redis": "AUTOMATA_REDIS_PORT",
    "sim": "SIM_PORT",
    "web": "WEB_PORT",
    "metrics": "METRICS_PORT=0 lets every service pick a free one",
}


def in_use(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.5)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def _wanted(
    redis_port: int, setup: Setup, want_sim: bool, environ: Mapping[str, str]
) -> list[tuple[int, str]]:
    """(port, what listens there and how to move it) for each port this run fixes, in order."""
    ports = [(redis_port, f"Redis ({_MOVE['redis']})")]
    if want_sim:
        ports.append((setup.sim_port, f"the paper venue ({_MOVE['sim']})"))
    env = {**environ, **setup.env}
    try:
        cfg = load_config(setup.config, env=env)
    except ConfigError:
        return ports  # the services name the config's fault themselves
    web = env.get("WEB_PORT", "")
    ports.append((int(web) if web.isdigit() else cfg.web.port, f"the dashboard ({_MOVE['web']})"))
    if not environ.get("METRICS_PORT"):
        for name in msgspec.structs.fields(cfg.services):
            port = getattr(cfg.services, name.name).metrics_port
            # the paper venue serves /metrics on its own port (SIM_PORT), never this table's
            if port and name.name != "exchange_sim":
                ports.append((port, f"{name.name}'s metrics ({_MOVE['metrics']})"))
    return ports


def _owners(wanted: list[tuple[int, str]]) -> dict[int, list[str]]:
    """port -> what would listen there, in order (two: WEB_PORT set to SIM_PORT, say)."""
    owners: dict[int, list[str]] = {}
    for port, what in wanted:
        owners.setdefault(port, []).append(what)
    return owners


def wanted_ports(redis_port: int, setup: Setup, want_sim: bool, environ: Mapping[str, str]) -> dict[int, str]:
    """port -> what listens there (and how to move it), for the ports this run fixes."""
    return {port: whats[0] for port, whats in _owners(_wanted(redis_port, setup, want_sim, environ)).items()}


def check_ports_free(
    redis_port: int, setup: Setup, want_sim: bool, environ: Mapping[str, str] = os.environ
) -> None:
    """UsageError naming every port of the run another program already holds, or that two of its
    own programs would share."""
    owners = _owners(_wanted(redis_port, setup, want_sim, environ))
    # two of its own programs on one port: the dashboard could not bind while the banner pointed
    # at the venue
    if clashes := [f"{port}: " + " and ".join(whats) for port, whats in owners.items() if len(whats) > 1]:
        raise UsageError("one port for two programs of this run: " + "; ".join(clashes))
    taken = [f"{port}: {whats[0]}" for port, whats in owners.items() if in_use(port)]
    if taken:
        raise UsageError(
            "ports already in use (another `automata run` or program holds them): " + "; ".join(taken)
        )
