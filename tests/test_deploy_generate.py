"""`automata deploy supervisor|compose` generate one strategy runner per bot of the bots file, or
one per `process` group for bots that share a process."""

from __future__ import annotations

import configparser
import os
import shlex
import shutil
import subprocess
from pathlib import Path

import redis
import yaml
from supervisor.options import ServerOptions

from shared.redis_server import RedisServer
from tests.helpers.bots import publish_filters, write_bots
from tests.helpers.procs import ROOT, base_env, python, wait_until

BOTS = [
    {"id": "alpha", "strategy": "tests.helpers.scripted:Scripted"},
    {"id": "beta", "strategy": "examples.breakout:Breakout", "process": "pair", "params": {"lookback": 5}},
    {"id": "gamma", "strategy": "tests.helpers.scripted:Scripted", "process": "pair"},
    {"id": "off", "strategy": "dca", "enabled": False, "process": "pair"},
]


def run_cli(env, tmp_path, *args) -> str:
    proc = python("cli.main", "deploy", *args, env=env, log_path=tmp_path / "cli.log").start()
    assert proc.popen.wait(60) == 0, proc.output()
    return proc.output()


def test_compose_override_has_one_runner_per_enabled_bot_or_group(env, tmp_path):
    bots = write_bots(tmp_path / "bots.toml", *BOTS)
    out = tmp_path / "docker-compose.bots.yml"
    secrets = tmp_path / "secrets" / "redis"
    run_cli(env, tmp_path, "compose", "--bots", str(bots), "--out", str(out), "--secrets", str(secrets))
    generated = yaml.safe_load(out.read_text())
    services = generated["services"]
    assert set(services) == {"bot_alpha", "bots_pair"}
    alpha = services["bot_alpha"]
    assert alpha["command"][-4:] == ["--bot", "alpha", "--bots", "/app/config/bots.toml"]
    assert alpha["environment"]["INSTANCE"] == "alpha" and alpha["restart"] == "unless-stopped"
    pair = services["bots_pair"]
    assert pair["command"][-6:] == ["--bot", "beta", "--bot", "gamma", "--bots", "/app/config/bots.toml"]
    assert pair["environment"]["INSTANCE"] == "pair"
    # each runner its own Redis user and password file, and no .env (keys, tokens)
    for name, service in services.items():
        assert "env_file" not in service
        assert service["environment"]["REDIS_USER"] == name
        assert service["environment"]["REDIS_PASSWORD_FILE"] == f"/run/secrets/redis_{name}"
        assert service["secrets"] == [f"redis_{name}"]
        assert generated["secrets"][f"redis_{name}"] == {"file": str(secrets / name)}
        assert (secrets / name).is_file()
    acl = (secrets / "users.acl").read_text()
    assert "user bot_alpha on #" in acl and "user bots_pair on #" in acl and "user bots_demo on #" in acl


def test_generated_supervisor_config_runs_each_bot_under_supervisord(tmp_path):
    """Written outside deploy/ and outside the repository (%(here)s is the file's own directory),
    then run by supervisord started with no AUTOMATA_HOME: every path in it is absolute."""
    bots = write_bots(tmp_path / "bots.toml", *BOTS)
    conf = tmp_path / "elsewhere" / "supervisord.conf"
    conf.parent.mkdir()
    home = tmp_path / "home"
    env = base_env("redis://127.0.0.1:1/0", AUTOMATA_HOME=str(home))
    run_cli(env, tmp_path, "supervisor", "--bots", str(bots), "--out", str(conf))
    assert_paths_exist(conf, home)
    # the ACL it wrote: one user per runner, each program pointed at its own password file
    secrets = home / "var" / "secrets" / "redis"
    admin = (secrets / "admin").read_text().strip()
    server = RedisServer(tmp_path / "redis", aclfile=secrets / "users.acl", username="admin", password=admin)
    server.start()
    sync_redis = redis.Redis.from_url(server.url)
    env["REDIS_URL"] = f"redis://127.0.0.1:{server.port}/0"
    parser = configparser.RawConfigParser()
    parser.read(conf)
    programs = [s for s in parser.sections() if s.startswith(("program:bot_", "program:bots_"))]
    assert programs == ["program:bot_alpha", "program:bots_pair"]
    assert "program:order_gateway" in parser.sections()
    # run it for real: supervisord starts both runners (services off to keep it small)
    for section in parser.sections():
        if section.startswith("program:") and section not in programs:
            parser.set(section, "autostart", "false")
    with open(conf, "w") as fh:
        parser.write(fh)
    for program in programs:
        user = program.removeprefix("program:")
        assert f'REDIS_USER="{user}",REDIS_PASSWORD_FILE="{secrets / user}"' in parser.get(
            program, "environment"
        )
    publish_filters(sync_redis)
    sup_env = {k: v for k, v in env.items() if k != "AUTOMATA_HOME"}
    supervisord = shutil.which("supervisord", path=str(ROOT / ".venv" / "bin"))
    proc = subprocess.Popen(
        [supervisord, "-c", str(conf)], env=sup_env, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT
    )
    try:
        leases = ("bot:alpha:lease", "bot:beta:lease", "bot:gamma:lease")
        wait_until(lambda: all(sync_redis.exists(k) for k in leases), timeout=40, what="every bot running")
        assert not sync_redis.exists("bot:off:lease")
        # the lease holder names the runner's INSTANCE: alpha alone, beta and gamma in one process
        holders = [sync_redis.get(k).decode().split(":")[0] for k in leases]
        assert holders == ["alpha", "pair", "pair"]
        assert sync_redis.acl_log() == [], "each runner as its own user, never refused"
    finally:
        sync_redis.close()
        server.kill()
        ctl = shutil.which("supervisorctl", path=str(ROOT / ".venv" / "bin"))
        subprocess.run([ctl, "-c", str(conf), "shutdown"], env=sup_env, capture_output=True, timeout=60)
        proc.wait(60)
    assert proc.returncode == 0


def assert_paths_exist(conf, home) -> None:
    """supervisord's own parser (ServerOptions.realize, as `supervisord -c`) accepts the file, with
    no AUTOMATA_HOME in the environment, and every path it names exists: the interpreter, the code
    on PYTHONPATH, each program's directory, bots file and Redis password file, the log, pid and
    socket directories."""
    text = conf.read_text()
    assert "%(here)s" not in text and "%(ENV_" not in text
    saved = os.environ.pop("AUTOMATA_HOME", None)
    try:
        options = ServerOptions()
        options.realize(args=["-c", str(conf)])
    finally:
        if saved is not None:
            os.environ["AUTOMATA_HOME"] = saved
    home = home.resolve()
    assert Path(options.directory) == home
    for path in (options.logfile, options.pidfile, options.server_configs[0]["file"]):
        assert Path(path).parent.is_dir() and Path(path).is_relative_to(home), path
    assert Path(options.childlogdir).is_dir()
    programs = [p for group in options.process_group_configs for p in group.process_configs]
    assert {p.name for p in programs} >= {"market_gateway", "order_gateway", "notifier", "exchange_sim"}
    for program in programs:
        argv = shlex.split(program.command)
        assert os.access(argv[0], os.X_OK), (program.name, argv[0])
        assert Path(program.directory) == home, program.name
        module = argv[argv.index("-m") + 1]  # services.<name>, found on PYTHONPATH
        assert Path(program.environment["PYTHONPATH"], *module.split(".")).is_dir(), program.name
        if "--bots" in argv:
            assert Path(argv[argv.index("--bots") + 1]).is_file(), program.name
        if "REDIS_PASSWORD_FILE" in program.environment:
            assert Path(program.environment["REDIS_PASSWORD_FILE"]).is_file(), program.name
        assert Path(program.stdout_logfile).parent.is_dir(), program.name


def test_paper_profile_override_feeds_the_demo_bots():
    """deploy/compose.paper.yml points every service of the paper profile at a config whose market
    gateway feeds the paper venue's candles (docker.toml has none: a real deployment has no venue)."""
    from shared.config import load_config

    override = yaml.safe_load((ROOT / "deploy" / "compose.paper.yml").read_text())["services"]
    base = yaml.safe_load((ROOT / "docker-compose.yml").read_text())["services"]
    paper_services = {name for name, svc in base.items() if "paper" in svc.get("profiles", [])}
    assert paper_services | {"market_gateway", "order_gateway", "notifier"} == set(override)
    assert {svc["environment"]["AUTOMATA_CONFIG"] for svc in override.values()} == {
        "/app/deploy/docker-paper.toml"
    }
    cfg = load_config(ROOT / "deploy" / "docker-paper.toml", env={})
    feed = cfg.market_gateway.feeds[0]
    assert (feed.venue, list(feed.symbols), cfg.venues["sim"].base_url) == (
        "sim",
        ["BTCUSDT"],
        "http://exchange_sim:8800",
    )
    assert cfg.services == load_config(ROOT / "deploy" / "docker.toml", env={}).services


def test_committed_demo_runners_match_the_demo_bots_file():
    """deploy/supervisord.conf and docker-compose.yml declare the demo's runners by hand: they must
    say what `automata deploy` would generate from deploy/bots.demo.toml (its `process` groups)."""
    from cli.deploy import render_compose, render_supervisor
    from services.strategy_runner.bots import load_bots

    demo = ROOT / "deploy" / "bots.demo.toml"
    bots = load_bots(demo)

    def runner_commands(parser) -> dict[str, list[str]]:
        return {
            s.removeprefix("program:"): parser.get(s, "command").split()
            for s in parser.sections()
            if s.startswith(("program:bot_", "program:bots_"))
        }

    committed, generated = configparser.RawConfigParser(), configparser.RawConfigParser()
    committed.read(ROOT / "deploy" / "supervisord.conf")
    generated.read_string(render_supervisor(bots, demo))
    want = {
        name: cmd[cmd.index("--bot") : cmd.index("--bots")]
        for name, cmd in runner_commands(generated).items()
    }
    got = {
        name: cmd[cmd.index("--bot") : cmd.index("--bots")]
        for name, cmd in runner_commands(committed).items()
    }
    assert (
        got
        == want
        == {
            "bots_demo": [
                "--bot",
                "demo_dca",
                "--bot",
                "demo_grid",
                "--bot",
                "demo_fractal",
                "--bot",
                "demo_manual",
            ]
        }
    )

    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())["services"]
    made = yaml.safe_load(render_compose(bots, demo))["services"]
    runners = {n: s["command"][3:-2] for n, s in compose.items() if n.startswith(("bot_", "bots_"))}
    assert runners == {n: s["command"][3:-2] for n, s in made.items()}
    assert compose["bots_demo"]["environment"]["INSTANCE"] == made["bots_demo"]["environment"]["INSTANCE"]
