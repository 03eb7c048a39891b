"""Redis with one least-privilege ACL user per service, exactly as deploy/compose.redis-auth.yml
sets it up on top of docker-compose.yml with the files `automata deploy compose` writes: redis-server
loads the generated ACL file, each container names its user (REDIS_USER) and its own password
file (REDIS_PASSWORD_FILE, a compose secret); the order gateway and the CLI work with it, and no
password ever shows in what the programs print or log."""

from __future__ import annotations

import re
import stat
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import redis
import yaml

from shared.redis_conn import with_credentials
from shared.redis_server import find_redis_server, free_port
from tests.helpers.cli import cli
from tests.helpers.gateway import start_gateway, wait_gateway_ready, write_config
from tests.helpers.procs import ROOT, base_env, wait_until
from tests.helpers.sim import sim_fixture

sim = sim_fixture()
OVERRIDE = ROOT / "deploy" / "compose.redis-auth.yml"
BOTS = ROOT / "examples" / "bots.example.toml"


@pytest.fixture(scope="module")
def deployed(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """`automata deploy compose` run in a project directory: its bots file, ACL and passwords."""
    project = tmp_path_factory.mktemp("project")
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "cli",
            "deploy",
            "compose",
            "--bots",
            str(BOTS),
            "--out",
            "docker-compose.bots.yml",
        ],
        cwd=project,
        env=base_env(""),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return {
        "project": project,
        "override": yaml.safe_load(OVERRIDE.read_text()),
        "bots": yaml.safe_load((project / "docker-compose.bots.yml").read_text()),
        "output": done.stdout + done.stderr,
    }


def secret_file(deployed: dict[str, Any], compose: dict[str, Any], name: str) -> Path:
    """Where compose's secret `name` comes from, in the project directory."""
    return deployed["project"] / compose["secrets"][name]["file"]


def service_env(deployed: dict[str, Any], compose: dict[str, Any], service: str, port: int) -> dict[str, str]:
    """The Redis part of a container's environment, its secret mounted where compose mounts it."""
    env = dict(compose["services"][service]["environment"])
    mounted = env["REDIS_PASSWORD_FILE"].removeprefix("/run/secrets/")
    assert compose["services"][service]["secrets"] == [mounted]  # its own password, no other
    env["REDIS_PASSWORD_FILE"] = str(secret_file(deployed, compose, mounted))
    env["REDIS_URL"] = f"redis://127.0.0.1:{port}/0"
    return env


@pytest.fixture
def acl_redis(deployed: dict[str, Any], tmp_path: Path):
    """redis-server with the override's command line and the generated ACL file."""
    override, port = deployed["override"], free_port()
    args = override["services"]["redis"]["command"]
    assert args[0] == "redis-server" and "--aclfile" in args
    acl = str(secret_file(deployed, override, "redis_acl"))
    args = [acl if a == "/run/secrets/redis_acl" else a for a in args[1:]]
    log = (tmp_path / "redis.log").open("wb")
    proc = subprocess.Popen(
        [find_redis_server(), *args, "--port", str(port), "--bind", "127.0.0.1", "--dir", str(tmp_path)],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    admin_pw = secret_file(deployed, override, "redis_admin").read_text().strip()
    admin = redis.Redis(port=port, username="admin", password=admin_pw)

    def up() -> bool:
        assert proc.poll() is None, (tmp_path / "redis.log").read_text()
        try:
            return admin.ping()
        except redis.RedisError:
            return False

    wait_until(up, what="redis-server with ACL users")
    try:
        yield port, admin
    finally:
        admin.close()
        proc.kill()
        proc.wait(5)
        log.close()


def test_every_container_has_a_user_of_its_own(deployed) -> None:
    base = yaml.safe_load((ROOT / "docker-compose.yml").read_text())["services"]
    override, bots = deployed["override"], deployed["bots"]
    uses_redis = {
        n for n, s in base.items() if n != "redis" and "exchange_sim" not in " ".join(s.get("command", []))
    }
    users = {n: s["environment"]["REDIS_USER"] for n, s in override["services"].items() if "environment" in s}
    assert set(users) == uses_redis | {"cli"}
    assert all(users[n] == n for n in uses_redis) and users["cli"] == "admin"
    # generated runners: their own user and password, no .env
    assert bots["services"], bots
    for name, service in bots["services"].items():
        assert service["environment"]["REDIS_USER"] == name
        assert service["secrets"] == [f"redis_{name}"] and "env_file" not in service
    # secrets: .env to the order gateway only, notifier.env to the notifier only, web.env to the
    # dashboard only, none in common
    assert not any("env_file" in s for n, s in base.items() if n not in ("order_gateway", "notifier", "web"))
    assert base["order_gateway"]["env_file"] == ".env"
    assert base["notifier"]["env_file"] == "notifier.env"
    assert base["web"]["env_file"] == "web.env"
    secrets = deployed["project"] / "secrets" / "redis"
    assert stat.S_IMODE(secrets.stat().st_mode) == 0o700
    assert {p.name for p in secrets.iterdir()} >= {"users.acl", "admin", *users.values(), *bots["services"]}


def test_services_and_cli_with_acl_users(sim, deployed, acl_redis, tmp_path) -> None:
    port, admin = acl_redis
    override = deployed["override"]
    composes = [(override, n) for n in ("market_gateway", "order_gateway", "notifier", "bots_demo")]
    composes += [(deployed["bots"], n) for n in deployed["bots"]["services"]]
    for compose, service in composes:
        env = service_env(deployed, compose, service, port)
        user = redis.Redis.from_url(with_credentials(env["REDIS_URL"], env), client_name=f"probe-{service}")
        assert user.ping()
        assert {"name": f"probe-{service}", "user": service}.items() <= next(
            c for c in admin.client_list() if c["name"] == f"probe-{service}"
        ).items()
        with pytest.raises(redis.exceptions.NoPermissionError):
            user.flushall()
        user.close()
    admin.acl_log_reset()

    config = write_config(tmp_path / "automata.toml", sim)
    og_env = {**base_env(""), **service_env(deployed, override, "order_gateway", port)}
    og_env["AUTOMATA_CONFIG"] = str(config)
    gateway = start_gateway(og_env, config, tmp_path / "og.log")
    outputs: list[str] = [deployed["output"]]
    try:
        wait_gateway_ready(admin, gateway)
        as_admin = {
            **base_env(""),
            **service_env(deployed, override, "cli", port),
            "AUTOMATA_CONFIG": str(config),
        }
        order = cli(as_admin, "order", "buy", "BTCUSDT", "--quote", "50")
        assert order.returncode == 0, order.stdout + order.stderr
        assert re.search(r"manual-\d+ BUY BTCUSDT MARKET", order.stdout) and "FILLED" in order.stdout
        doctor = cli(as_admin, "doctor")
        assert doctor.returncode == 0 and "✓ redis aof" in doctor.stdout, doctor.stdout
        status = cli(as_admin, "status")
        assert status.returncode == 0 and "order_gateway" in status.stdout
        assert "redis://admin:***@127.0.0.1" in status.stdout
        as_notifier = {**as_admin, **service_env(deployed, override, "notifier", port)}
        limited = cli(as_notifier, "doctor")  # CONFIG is refused: AOF cannot be told, not a failure
        assert limited.returncode == 0, limited.stdout
        assert "– redis aof" in limited.stdout and "no permissions" in limited.stdout
        wrong = tmp_path / "wrong"
        wrong.write_text("not-the-password\n")
        refused = cli({**as_admin, "REDIS_PASSWORD_FILE": str(wrong)}, "orders")
        assert refused.returncode == 1 and "cannot reach Redis at redis://admin:***@" in refused.stdout
        outputs += [p.stdout + p.stderr for p in (order, doctor, status, limited, refused)]
        assert not [e for e in admin.acl_log() if e["username"] == "order_gateway"]  # never refused
    finally:
        assert gateway.terminate() == 0, gateway.output()[-2000:]
    outputs.append(gateway.output())
    passwords = [p.read_text().strip() for p in (deployed["project"] / "secrets" / "redis").iterdir()]
    for text in outputs:
        for secret in passwords:
            assert secret not in text
    assert "Traceback" not in "".join(outputs)
