"""A setup of one's own (automata.toml in AUTOMATA_HOME) beside the paper venue `automata run`
starts: with SIM_PORT moved, the venue listened there while the gateways, reading a sim venue
with no base_url (automata.example.toml's), kept knocking on 127.0.0.1:8800 (anyone's venue)."""

from __future__ import annotations

import shutil
from pathlib import Path

from cli import demo
from cli.paths import Home
from services.market_gateway.plan import build_plan
from shared.config import load_config
from tests.helpers.cli import cli
from tests.helpers.demo import demo_env

REPO = Path(__file__).resolve().parent.parent


def _own_config(tmp_path: Path) -> Path:
    path = tmp_path / "automata.toml"
    shutil.copy(REPO / "automata.example.toml", path)
    with path.open("a", encoding="utf-8") as f:
        f.write('\n[[market_gateway.feeds]]\nvenue = "sim"\nsymbols = ["BTCUSDT"]\nintervals = ["1m"]\n')
    return path


def test_a_sim_venue_without_base_url_follows_sim_port(tmp_path: Path, monkeypatch) -> None:
    path = _own_config(tmp_path)
    monkeypatch.setenv("AUTOMATA_CONFIG", str(path))
    cfg = load_config(path, env={"SIM_PORT": "8931"})
    assert cfg.venues["sim"].base_url == "http://127.0.0.1:8931"
    [plan] = build_plan(cfg)
    assert plan.base_url == "http://127.0.0.1:8931"
    # unset, 0 (any free port) or a base_url of the file's own: as before
    assert load_config(path, env={}).venues["sim"].base_url == ""
    assert load_config(path, env={"SIM_PORT": "0"}).venues["sim"].base_url == ""
    path.write_text(path.read_text().replace('base_url = ""', 'base_url = "http://10.0.0.5:8800"', 1))
    assert load_config(path, env={"SIM_PORT": "8931"}).venues["sim"].base_url == "http://10.0.0.5:8800"


def test_fresh_refuses_to_forget_the_orders_of_an_exchange(tmp_path: Path) -> None:
    """`automata run --fresh` (`make run-fresh`) forgets Redis: beside Binance or Bybit, which keep
    their orders, the bots would start again from order 1 with orders open there nobody tracks.
    Refused, naming the venue, before anything is removed; the paper venue's setup may."""
    home = tmp_path / "home"
    env = demo_env(home)
    own = home / "automata.toml"
    shutil.copy(REPO / "automata.example.toml", own)
    with own.open("a", encoding="utf-8") as f:
        f.write('\n[venues.bn]\nkind = "binance"\ntestnet = true\n')
    kept = home / "var" / "redis" / "appendonlydir"
    kept.mkdir(parents=True)
    result = cli(env, "run", "--fresh", "--timeout", "30")
    out = result.stdout + result.stderr
    assert result.returncode == 2, out
    assert "bn (binance, testnet)" in out and "automata close" in out and "Traceback" not in out
    assert kept.exists(), "nothing forgotten"
    setup = demo.choose(Home(home), {})
    assert demo.real_venues(setup) == ["bn (binance, testnet)"]
    own.unlink()
    assert demo.real_venues(demo.choose(Home(home), {})) == []  # the demo: the paper venue only
