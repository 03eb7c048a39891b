"""A setup of one's own (automata.toml in AUTOMATA_HOME) beside the paper venue `automata run`
starts: with SIM_PORT moved, the venue listened there while the gateways, reading a sim venue
with no base_url (automata.example.toml's), kept knocking on 127.0.0.1:8800 (anyone's venue)."""

from __future__ import annotations

import shutil
from pathlib import Path

from services.market_gateway.plan import build_plan
from shared.config import load_config

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
