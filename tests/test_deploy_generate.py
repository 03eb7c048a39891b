"""`automata deploy supervisor|compose` generate one strategy runner per bot of the bots file."""

from __future__ import annotations

import configparser
import shutil
import subprocess

import yaml

from tests.helpers.bots import publish_filters, write_bots
from tests.helpers.procs import ROOT, python, wait_until

BOTS = [
    {"id": "alpha", "strategy": "tests.helpers.scripted:Scripted"},
    {"id": "beta", "strategy": "examples.breakout:Breakout", "params": {"lookback": 5}},
    {"id": "off", "strategy": "dca", "enabled": False},
]


def run_cli(env, tmp_path, *args) -> str:
    proc = python("cli.main", "deploy", *args, env=env, log_path=tmp_path / "cli.log").start()
    assert proc.popen.wait(60) == 0, proc.output()
    return proc.output()


def test_compose_override_has_one_runner_per_enabled_bot(env, tmp_path):
    bots = write_bots(tmp_path / "bots.toml", *BOTS)
    out = tmp_path / "docker-compose.bots.yml"
    run_cli(env, tmp_path, "compose", "--bots", str(bots), "--out", str(out))
    services = yaml.safe_load(out.read_text())["services"]
    assert set(services) == {"bot_alpha", "bot_beta"}
    beta = services["bot_beta"]
    assert beta["command"][-4:] == ["--bot", "beta", "--bots", "/app/config/bots.toml"]
    assert beta["environment"]["INSTANCE"] == "beta" and beta["restart"] == "unless-stopped"


def test_generated_supervisor_config_runs_each_bot_under_supervisord(env, tmp_path, sync_redis):
    bots = write_bots(tmp_path / "bots.toml", *BOTS)
    conf = tmp_path / "deploy" / "supervisord.conf"
    conf.parent.mkdir()
    run_cli(env, tmp_path, "supervisor", "--bots", str(bots), "--out", str(conf))
    parser = configparser.RawConfigParser()
    parser.read(conf)
    programs = [s for s in parser.sections() if s.startswith("program:bot_")]
    assert programs == ["program:bot_alpha", "program:bot_beta"]
    assert "program:order_gateway" in parser.sections()
    # run it for real: supervisord starts both runners (services off to keep it small)
    for section in parser.sections():
        if section.startswith("program:") and not section.startswith("program:bot_"):
            parser.set(section, "autostart", "false")
    with open(conf, "w") as fh:
        parser.write(fh)
    (tmp_path / ".venv").symlink_to(ROOT / ".venv")  # %(here)s/../.venv, as in the repository
    for name in ("shared", "services", "cli", "examples", "strategies", "tests"):
        (tmp_path / name).symlink_to(ROOT / name)
    home = tmp_path / "home"
    (home / "var" / "log").mkdir(parents=True)
    (home / "var" / "run").mkdir(parents=True)
    publish_filters(sync_redis)
    sup_env = {**env, "AUTOMATA_HOME": str(home)}
    supervisord = shutil.which("supervisord", path=str(ROOT / ".venv" / "bin"))
    proc = subprocess.Popen(
        [supervisord, "-c", str(conf)], env=sup_env, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT
    )
    try:
        wait_until(lambda: sync_redis.exists("bot:alpha:lease") and sync_redis.exists("bot:beta:lease"), timeout=40,
                   what="both bots running")  # fmt: skip
        assert not sync_redis.exists("bot:off:lease")
    finally:
        ctl = shutil.which("supervisorctl", path=str(ROOT / ".venv" / "bin"))
        subprocess.run([ctl, "-c", str(conf), "shutdown"], env=sup_env, capture_output=True, timeout=60)
        proc.wait(60)
    assert proc.returncode == 0


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
