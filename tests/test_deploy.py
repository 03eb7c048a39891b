"""Deployment: supervisord restarts a service killed with SIGKILL; docker-compose.yml has the
properties the design asks for; `automata run` brings everything up and Ctrl-C stops it all."""

from __future__ import annotations

import configparser
import os
import re
import signal
import subprocess
import sys
import tomllib
from collections.abc import Iterator
from pathlib import Path

import msgspec
import orjson
import psutil
import pytest
import redis
import yaml
from dotenv import dotenv_values

from cli.demo import DEMO_BOTS
from cli.deploy import acl_runners
from cli.paths import SUPERVISORD_CONF
from cli.run import WATCHER
from services.strategy_runner.bots import load_bots
from shared import redis_acl
from shared.config import AppConfig, load_config
from shared.redis_server import RedisServer, free_port
from tests.helpers.acl import start_acl_redis
from tests.helpers.procs import ROOT, Proc, base_env, python, wait_until

CORE = ("market_gateway", "order_gateway", "notifier", "ledger", "web")


def supervisorctl(env: dict[str, str], *args: str) -> str:
    result = subprocess.run(
        [sys.executable, "-m", "supervisor.supervisorctl", "-c", str(SUPERVISORD_CONF), *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=30,
    )
    return result.stdout


def program_pid(env: dict[str, str], name: str) -> int:
    out = supervisorctl(env, "pid", name).strip()
    return int(out) if out.isdigit() else 0


def heartbeat_pid(client: redis.Redis, key: str) -> int:
    raw = client.get(key)
    return orjson.loads(raw)["pid"] if raw else 0


def gone(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


# -- supervisord ---------------------------------------------------------------------------------


def test_supervisord_conf_declares_every_service() -> None:
    conf = configparser.RawConfigParser()
    conf.read(SUPERVISORD_CONF)
    programs = {s.removeprefix("program:"): conf[s] for s in conf.sections() if s.startswith("program:")}
    for name in (*CORE, "exchange_sim"):
        assert f"-m services.{name}" in programs[name]["command"]
    runners = {n: p for n, p in programs.items() if "services.strategy_runner" in p["command"]}
    assert runners, "at least one strategy_runner program (one per bot or process group)"
    for name, prog in runners.items():
        ids = re.findall(r"--bot (\w+)", prog["command"])
        instance = re.search(r'INSTANCE="(\w+)"', prog["environment"])
        assert ids and instance, name
        # bot_<id> for a bot of its own, bots_<process> for a group, INSTANCE the id / process
        assert name == (f"bot_{ids[0]}" if len(ids) == 1 else f"bots_{instance[1]}"), name
        assert instance[1] == (ids[0] if len(ids) == 1 else name.removeprefix("bots_")), name
        bots_file = re.search(r"--bots %\(here\)s/(\S+)", prog["command"])
        if bots_file:  # a bot file shipped in deploy/ must declare the bots, grouped as run here
            declared = {b.id: b for b in load_bots(SUPERVISORD_CONF.parent / bots_file[1])}
            assert set(ids) <= set(declared), name
            if len(ids) > 1:
                assert {declared[i].process for i in ids} == {instance[1]}, name
    for name, prog in programs.items():
        assert prog["autorestart"] == "true", name
        assert prog["stopsignal"] == "TERM", name
        assert int(prog["stopwaitsecs"]) >= 15, name
        assert prog["stdout_logfile"].startswith("%(ENV_AUTOMATA_HOME)s/var/log/"), name
        assert prog["stdout_logfile_maxbytes"] and int(prog["stdout_logfile_backups"]) >= 1, name
        assert prog["command"].startswith("%(here)s/../.venv/bin/python "), name


@pytest.fixture
def acl_home(tmp_path: Path) -> Iterator[tuple[Path, RedisServer]]:
    """An AUTOMATA_HOME whose var/secrets/redis holds the ACL of deploy/supervisord.conf's
    programs, and a redis-server loaded with it (as `automata run` sets them up)."""
    home = tmp_path / "home"
    for sub in ("var/log", "var/run"):
        (home / sub).mkdir(parents=True)
    runners = acl_runners(load_bots(DEMO_BOTS, check_params=False))
    server = start_acl_redis(tmp_path / "redis", home / "var/secrets/redis", runners)
    redis_acl.ensure_password(home / "var/secrets/web_token")  # the dashboard's token
    try:
        yield home, server
    finally:
        server.kill()


def test_supervisord_restarts_a_service_killed_with_sigkill(
    acl_home: tuple[Path, RedisServer], tmp_path: Path
) -> None:
    home, server = acl_home
    sync_redis = redis.Redis.from_url(server.url)
    env = base_env(
        f"redis://127.0.0.1:{server.port}/0",
        AUTOMATA_HOME=str(home),
        INSTANCE="sv",
        WEB_PORT=str(free_port()),
    )
    sup = Proc(
        [sys.executable, "-m", "supervisor.supervisord", "-c", str(SUPERVISORD_CONF)],
        env,
        tmp_path / "supervisord.out",
        cwd=home,
    ).start()
    pids: set[int] = set()
    try:
        key = "svc:order_gateway:sv"
        old = wait_until(
            lambda: (p := program_pid(env, "order_gateway")) and heartbeat_pid(sync_redis, key) == p and p,
            timeout=60,
            interval=0.1,
            what="order_gateway running with a heartbeat",
        )
        pids.add(old)
        os.kill(old, signal.SIGKILL)
        new = wait_until(
            lambda: (p := program_pid(env, "order_gateway")) not in (0, old) and p,
            timeout=60,
            interval=0.1,
            what="order_gateway restarted",
        )
        pids.add(new)
        wait_until(
            lambda: heartbeat_pid(sync_redis, key) == new, timeout=30, what="the new process's heartbeat"
        )
        for name in CORE:  # the demo bots (autostart=false) run only when `automata run` starts them
            pids.add(wait_until(lambda n=name: program_pid(env, n), timeout=60, what=f"{name} running"))

        assert sup.terminate(timeout=60) == 0, sup.output()
        log = (home / "var/log/supervisord.log").read_text()
        for name in CORE:
            assert f"stopped: {name} (exit status 0)" in log, log[-3000:]
        assert all(gone(pid) for pid in pids)
        assert "exited: order_gateway (terminated by SIGKILL" in log
        assert sync_redis.acl_log() == [], "every program ran as its own user, never refused"
    finally:
        sync_redis.close()
        sup.kill()
        for pid in pids:
            if not gone(pid):
                os.kill(pid, signal.SIGKILL)


# -- docker compose ------------------------------------------------------------------------------


def test_docker_compose_file() -> None:
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    services = compose["services"]

    redis_svc = services["redis"]
    command = (
        " ".join(redis_svc["command"]) if isinstance(redis_svc["command"], list) else redis_svc["command"]
    )
    assert "--appendonly yes" in command
    assert redis_svc["healthcheck"]["test"]
    assert redis_svc["restart"] == "unless-stopped"
    volume = redis_svc["volumes"][0].split(":")
    assert volume[1] == "/data" and volume[0] in compose["volumes"], "a named volume for Redis data"

    runners = {n: s for n, s in services.items() if "services.strategy_runner" in s.get("command", [])}
    assert runners, "strategy runners declared one service per bot or process group"
    bots = {
        n: [c for i, c in enumerate(s["command"][1:]) if s["command"][i] == "--bot"]
        for n, s in runners.items()
    }
    every = [b for ids in bots.values() for b in ids]
    assert len(set(every)) == len(every), "no bot runs in two services"
    for name in (*CORE, "exchange_sim", *runners):
        svc = services[name]
        assert svc["restart"] == "unless-stopped", name
        # secrets per container: .env (exchange keys) to the order gateway, notifier.env to the
        # notifier, web.env to the dashboard, nothing to the market gateway, the paper venue or
        # the strategy runners
        expected = {"order_gateway": ".env", "notifier": "notifier.env", "web": "web.env"}
        assert svc.get("env_file") == expected.get(name), name
        assert svc["depends_on"]["redis"]["condition"] == "service_healthy", name
        assert svc["environment"]["REDIS_URL"] == "redis://redis:6379/0", name
        assert svc["build"] == "." and svc["image"] == services["market_gateway"]["image"], name
    for name in (*CORE, "exchange_sim"):
        assert services[name]["command"][:3] == ["python", "-m", f"services.{name}"]
    # the dashboard listens beyond its container only with its token (web.env), published on loopback
    assert services["web"]["command"][3:] == ["--host", "0.0.0.0"]
    assert all(port.startswith("127.0.0.1:") for port in services["web"]["ports"])
    for name, svc in runners.items():
        ids, instance = bots[name], svc["environment"]["INSTANCE"]
        assert instance == (ids[0] if len(ids) == 1 else name.removeprefix("bots_")), name
        command = svc["command"]
        if "--bots" in command and command[command.index("--bots") + 1].startswith("/app/"):
            shipped = ROOT / command[command.index("--bots") + 1].removeprefix("/app/")
            declared = {b.id: b for b in load_bots(shipped)}
            assert set(ids) <= set(declared), name
            if len(ids) > 1:
                assert {declared[i].process for i in ids} == {instance}, name

    # what the image is configured with must load
    env_example = {k: v or "" for k, v in dotenv_values(ROOT / ".env.example").items()}
    assert {"BINANCE_API_KEY", "BINANCE_API_SECRET", "BINANCE_API_TEST"} <= set(env_example)
    cfg = load_config(ROOT / "deploy" / "docker.toml", env=env_example)
    assert cfg.services.notifier.metrics_host == "0.0.0.0"
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert "AUTOMATA_CONFIG=/app/deploy/docker.toml" in dockerfile
    ignored = (ROOT / ".dockerignore").read_text().split()
    assert {".env", ".venv", "var", ".git"} <= set(ignored), "no secrets or local state in the image"


# -- automata run --------------------------------------------------------------------------------


@pytest.fixture
def demo_env(tmp_path: Path) -> dict[str, str]:
    env = base_env("redis://127.0.0.1:1/0", AUTOMATA_HOME=str(tmp_path / "home"))
    env.pop("REDIS_URL")  # `automata run` sets it; `automata health` must find the demo by itself
    env["AUTOMATA_REDIS_PORT"] = str(free_port())
    env["WEB_PORT"] = str(free_port())  # the dashboard: never the fixed 8780 another run may hold
    (tmp_path / "home").mkdir()
    return env


def start_demo(env: dict[str, str], log: Path) -> Proc:
    # --no-sim: this test is about the process tree; the demo with the paper venue has its own test
    return Proc(
        [sys.executable, "-m", "cli", "run", "--no-sim"], env, log, cwd=Path(env["AUTOMATA_HOME"])
    ).start()


def demo_processes(env: dict[str, str], log: Path) -> tuple[redis.Redis, list[int]]:
    """Wait for `automata run` to be up; return a client on its Redis and every pid it runs."""
    wait_until(
        lambda: "Automata is running" in log.read_text(), timeout=90, interval=0.1, what="automata run"
    )
    state = orjson.loads((Path(env["AUTOMATA_HOME"]) / "var/run/automata.json").read_bytes())
    admin = (Path(env["AUTOMATA_HOME"]) / "var/secrets/redis/admin").read_text().strip()
    client = redis.Redis(port=int(env["AUTOMATA_REDIS_PORT"]), username="admin", password=admin)
    beats = [orjson.loads(client.get(k)) for k in client.scan_iter(match="svc:*")]
    return client, [state["redis"]["pid"], state["supervisord"]["pid"], *(b["pid"] for b in beats)]


def test_automata_run_starts_everything_and_ctrl_c_stops_it(demo_env: dict[str, str], tmp_path: Path) -> None:
    log = tmp_path / "run.log"
    demo = start_demo(demo_env, log)
    pids: list[int] = []
    try:
        client, pids = demo_processes(demo_env, log)
        assert all(not gone(pid) for pid in pids)
        assert client.config_get("appendonly")["appendonly"] == "yes"

        health = python("cli", "health", "--json", env=demo_env, log_path=tmp_path / "health.log")
        assert health.start().popen.wait(30) == 0, health.output()
        services = {orjson.loads(line)["service"] for line in health.output().splitlines()}
        assert services == set(CORE), "AUTOMATA_CONFIG is set: not the demo, so no demo bots"

        assert demo.popen is not None
        demo.popen.send_signal(signal.SIGINT)
        assert demo.popen.wait(90) == 0, demo.output()
        assert all(gone(pid) for pid in pids), "nothing left running"
        assert not (Path(demo_env["AUTOMATA_HOME"]) / "var/run/automata.json").exists()
        assert list((Path(demo_env["AUTOMATA_HOME"]) / "var/redis").glob("appendonlydir/*.aof"))
    finally:
        demo.kill()
        for pid in pids:
            if not gone(pid):
                os.kill(pid, signal.SIGKILL)


def test_automata_down_stops_a_run_from_another_terminal(demo_env: dict[str, str], tmp_path: Path) -> None:
    log = tmp_path / "run.log"
    demo = start_demo(demo_env, log)
    pids: list[int] = []
    try:
        _, pids = demo_processes(demo_env, log)
        # once up, `automata run` is cli/watch.py under the same pid: stdlib only, a few MB
        runner = psutil.Process(demo.pid)
        wait_until(lambda: str(WATCHER) in runner.cmdline(), timeout=30, what="the exec into cli/watch.py")
        assert runner.cmdline()[1:3] == ["-S", "-I"]
        assert runner.memory_info().rss < 20 * 2**20, runner.memory_info()
        assert {c.pid for c in runner.children()} == set(pids[:2]), (
            "Redis and supervisord are still its children"
        )
        down = python("cli", "down", env=demo_env, log_path=tmp_path / "down.log")
        down.cwd = Path(demo_env["AUTOMATA_HOME"])
        assert down.start().popen.wait(120) == 0, down.output()
        assert demo.popen is not None and demo.popen.wait(10) == 0, demo.output()
        assert all(gone(pid) for pid in pids)
    finally:
        demo.kill()
        for pid in pids:
            if not gone(pid):
                os.kill(pid, signal.SIGKILL)


# -- automata.example.toml -----------------------------------------------------------------------


def config_fields(t: msgspec.inspect.Type, prefix: str = "") -> list[str]:
    """Dotted paths of every field of a config Struct (`venues.*.kind`, `market_gateway.feeds[].venue`)."""
    if isinstance(t, msgspec.inspect.Metadata):
        return config_fields(t.type, prefix)
    if isinstance(t, msgspec.inspect.StructType):
        return [p for f in t.fields for p in config_fields(f.type, f"{prefix}.{f.name}".lstrip("."))]
    if isinstance(t, msgspec.inspect.DictType) and isinstance(t.value_type, msgspec.inspect.StructType):
        return config_fields(t.value_type, f"{prefix}.*")
    if isinstance(t, msgspec.inspect.ListType) and isinstance(t.item_type, msgspec.inspect.StructType):
        return config_fields(t.item_type, f"{prefix}[]")
    return [prefix]


def test_example_config_documents_every_field_with_its_default() -> None:
    path = ROOT / "automata.example.toml"
    text = path.read_text()
    assert load_config(path, env={}) == AppConfig(), "the example holds exactly the defaults"
    data = tomllib.loads(text)
    for field in config_fields(msgspec.inspect.type_info(AppConfig)):
        if "*" in field or "[]" in field:  # shown as commented-out examples
            leaf = field.rsplit(".", 1)[-1]
            assert re.search(rf"^#? ?{leaf} = ", text, re.MULTILINE), f"{field} is not documented"
        else:
            node: object = data
            for part in field.split("."):
                assert isinstance(node, dict) and part in node, f"{field} is missing from {path.name}"
                node = node[part]
