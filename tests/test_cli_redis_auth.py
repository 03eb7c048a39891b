"""Redis with a password and one ACL user per service, exactly as deploy/compose.redis-auth.yml
sets it up on top of docker-compose.yml: REDIS_URL carries the user and password, the order
gateway and the CLI work with it, the service users cannot run @dangerous commands, and no
password ever shows in what the programs print or log."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
import redis
import yaml

from shared.redis_server import find_redis_server, free_port
from tests.helpers.cli import cli
from tests.helpers.gateway import start_gateway, wait_gateway_ready, write_config
from tests.helpers.procs import ROOT, base_env, wait_until
from tests.helpers.sim import sim_fixture

sim = sim_fixture()
OVERRIDE = ROOT / "deploy" / "compose.redis-auth.yml"
PASSWORDS = {
    "REDIS_ADMIN_PASSWORD": "p@ss:w/rd#adm",  # URL-reserved characters: percent-encoded in a URL
    "REDIS_MARKET_GATEWAY_PASSWORD": "mg-6b1f0c",
    "REDIS_ORDER_GATEWAY_PASSWORD": "og-95d2aa",
    "REDIS_NOTIFIER_PASSWORD": "nt-3e77c1",
    "REDIS_BOT_PASSWORD": "bot-0d4e9f",
}
SECRETS = [*PASSWORDS.values(), quote(PASSWORDS["REDIS_ADMIN_PASSWORD"], safe="")]


def interpolate(value: Any, env: dict[str, str]) -> Any:
    """Compose's variable substitution (${VAR}, ${VAR:?error}, $$), applied after YAML parsing."""
    if isinstance(value, dict):
        return {k: interpolate(v, env) for k, v in value.items()}
    if isinstance(value, list):
        return [interpolate(v, env) for v in value]
    if isinstance(value, str):
        return re.sub(r"\$\{(\w+)(?::\?[^}]*)?\}", lambda m: env[m[1]], value).replace("$$", "$")
    return value


@pytest.fixture(scope="module")
def override() -> dict[str, Any]:
    return interpolate(yaml.safe_load(OVERRIDE.read_text()), PASSWORDS)


@pytest.fixture
def acl_redis(override, tmp_path: Path):
    """redis-server with the override's command line (on a free port, in a temporary directory)."""
    port = free_port()
    args = override["services"]["redis"]["command"]
    assert args[0] == "redis-server"
    log = (tmp_path / "redis.log").open("wb")
    proc = subprocess.Popen(
        [find_redis_server(), *args[1:], "--port", str(port), "--bind", "127.0.0.1", "--dir", str(tmp_path)],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    admin = redis.Redis(host="127.0.0.1", port=port, password=PASSWORDS["REDIS_ADMIN_PASSWORD"])

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


def service_url(override: dict[str, Any], service: str, port: int) -> str:
    return override["services"][service]["environment"]["REDIS_URL"].replace(
        "@redis:6379", f"@127.0.0.1:{port}"
    )


def test_the_override_covers_every_service_of_docker_compose(override) -> None:
    base = yaml.safe_load((ROOT / "docker-compose.yml").read_text())["services"]
    uses_redis = {
        n for n, s in base.items() if n != "redis" and "exchange_sim" not in " ".join(s.get("command", []))
    }
    covered = {n for n, s in override["services"].items() if "REDIS_URL" in s.get("environment", {})}
    assert covered == uses_redis
    assert "--appendonly" in override["services"]["redis"]["command"]


def test_services_and_cli_with_acl_users_and_passwords(sim, override, acl_redis, tmp_path) -> None:
    port, admin = acl_redis
    for service in ("market_gateway", "order_gateway", "notifier", "bots_demo"):
        user = redis.Redis.from_url(service_url(override, service, port))
        assert user.xadd("probe", {"a": "1"}) and user.acl_whoami() != "default"
        with pytest.raises(redis.exceptions.NoPermissionError):
            user.flushall()
        user.close()

    config = write_config(tmp_path / "automata.toml", sim)
    og_env = {**base_env(service_url(override, "order_gateway", port)), "AUTOMATA_CONFIG": str(config)}
    gateway = start_gateway(og_env, config, tmp_path / "og.log")
    outputs: list[str] = []
    try:
        wait_gateway_ready(admin, gateway)
        admin_url = f"redis://default:{quote(PASSWORDS['REDIS_ADMIN_PASSWORD'], safe='')}@127.0.0.1:{port}/0"
        as_admin = {**base_env(admin_url), "AUTOMATA_CONFIG": str(config)}
        as_notifier = {**as_admin, "REDIS_URL": service_url(override, "notifier", port)}

        order = cli(as_admin, "order", "buy", "BTCUSDT", "--quote", "50")
        assert order.returncode == 0, order.stdout + order.stderr
        assert re.search(r"manual-\d+ BUY BTCUSDT MARKET", order.stdout) and "FILLED" in order.stdout
        doctor = cli(as_admin, "doctor")
        assert doctor.returncode == 0 and "✓ redis aof" in doctor.stdout, doctor.stdout
        status = cli(as_notifier, "status")
        assert status.returncode == 0 and "order_gateway" in status.stdout
        assert "redis://notifier:***@127.0.0.1" in status.stdout
        limited = cli(as_notifier, "doctor")  # CONFIG is @dangerous: AOF cannot be told, not a failure
        assert limited.returncode == 0, limited.stdout
        assert "– redis aof" in limited.stdout and "no permissions" in limited.stdout
        wrong = cli({**as_admin, "REDIS_URL": admin_url.replace("%40", "")}, "orders")
        assert wrong.returncode == 1 and "cannot reach Redis at redis://default:***@" in wrong.stdout
        outputs += [p.stdout + p.stderr for p in (order, doctor, status, limited, wrong)]
    finally:
        assert gateway.terminate() == 0, gateway.output()[-2000:]
    outputs.append(gateway.output())
    for text in outputs:
        for secret in SECRETS:
            assert secret not in text
    assert "Traceback" not in "".join(outputs)
