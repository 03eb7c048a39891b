"""`automata run` names every port it needs that another program holds, before it starts anything
(cli/run_ports.py): a second demo beside a first one failed with "could not start: notifier
(FATAL ...)", the first run holding the services' metrics ports."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from cli import demo
from cli.paths import Home, UsageError
from cli.run_ports import check_ports_free, wanted_ports
from shared.redis_server import free_port
from tests.helpers.cli import cli
from tests.helpers.demo import demo_env


def test_the_demo_wants_redis_the_venue_the_dashboard_and_each_services_metrics(tmp_path: Path) -> None:
    setup = demo.choose(Home(tmp_path))
    ports = wanted_ports(6390, setup, True, {})
    assert ports[6390].startswith("Redis") and ports[8800].startswith("the paper venue") and 8780 in ports
    assert {9101, 9102, 9104, 9106, 9107} <= set(ports) and "METRICS_PORT=0" in ports[9104]
    assert 9105 not in ports  # the paper venue serves its metrics on SIM_PORT, not [services.exchange_sim]
    moved = wanted_ports(6390, setup, True, {"METRICS_PORT": "0", "WEB_PORT": "8999"})
    assert not {9101, 9102, 9104, 9105, 9106, 9107} & set(moved) and "WEB_PORT" in moved[8999]


def test_a_run_beside_a_program_on_its_ports_names_them_and_starts_nothing(tmp_path: Path) -> None:
    env = demo_env(tmp_path / "home")
    with socket.socket() as web, socket.socket() as venue:
        for sock in (web, venue):
            sock.bind(("127.0.0.1", 0))
            sock.listen()
        env |= {"WEB_PORT": str(web.getsockname()[1]), "SIM_PORT": str(venue.getsockname()[1])}
        env["AUTOMATA_REDIS_PORT"] = str(free_port())
        result = cli(env, "run", "--timeout", "30")
    out = result.stdout + result.stderr
    assert result.returncode == 2, out
    assert (
        f"{env['WEB_PORT']}: the dashboard (WEB_PORT)" in out
        and f"{env['SIM_PORT']}: the paper venue (SIM_PORT)" in out
    )
    assert "Traceback" not in out and not (tmp_path / "home" / "var" / "redis" / "appendonlydir").exists()


def test_a_port_two_programs_of_the_run_would_share_is_refused(tmp_path: Path) -> None:
    """WEB_PORT set to SIM_PORT: the dashboard could not bind while the banner showed the venue's
    address as the dashboard's."""
    environ = {"SIM_PORT": "8897", "WEB_PORT": "8897", "METRICS_PORT": "0"}
    setup = demo.choose(Home(tmp_path), environ)
    with pytest.raises(
        UsageError, match="8897: the paper venue \\(SIM_PORT\\) and the dashboard \\(WEB_PORT\\)"
    ):
        check_ports_free(free_port(), setup, True, environ)
