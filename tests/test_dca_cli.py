"""`automata dca plan` and `automata dca menu` (the menu driven through stdin, as a program would)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from decimal import Decimal as D
from pathlib import Path

from typer.testing import CliRunner

from backtest.config import load_backtest_config
from backtest.series import synthetic
from cli.dca import ITEMS, dca_app
from shared.display import quote
from strategies.dca_params import DcaParams
from strategies.dca_plan import build_plan
from tests.test_backtest_cli import write_csv

ROOT = Path(__file__).resolve().parents[1]


def test_plan_prints_every_level_the_total_and_the_budget_cut():
    result = CliRunner().invoke(dca_app, ["plan", "--price", "100"], env={"COLUMNS": "80"})
    assert result.exit_code == 0, result.output
    plan = build_plan(DcaParams(), D(100), btc_filters())
    flat = " ".join(result.output.split())  # the footer wraps at 80 columns
    assert f"if every safety order fills: {quote(plan.total_cost)} USDT (levels 0..20" in flat
    assert f"cuts the ladder at level {plan.cut_level}: level {plan.cut_level} is cut to" in flat
    assert f"levels {plan.cut_level + 1}..20 are not placed" in flat
    assert f"costs at most {quote(plan.placed_cost)}" in flat
    assert result.output.count("not placed") == 20 - plan.cut_level + 1
    for row in plan.rows:
        assert quote(row.cum_cost) in result.output
    # 80 columns: two figures a cell, nothing cut
    assert "…" not in result.output and max(map(len, result.output.splitlines())) <= 80
    for header in ("step", "drop", "buy price", "avg entry", "target", "TP price", "rise"):
        assert header in result.output
    wide = CliRunner().invoke(dca_app, ["plan", "--price", "100"], env={"COLUMNS": "200"}).output
    assert "rise needed" in wide and "profit at TP" in wide and "…" not in wide


def test_plan_json_has_every_level_as_exact_decimals():
    result = CliRunner().invoke(dca_app, ["plan", "--price", "100", "--json"])
    assert result.exit_code == 0, result.output
    doc = json.loads(result.output)
    plan = build_plan(DcaParams(), D(100), btc_filters())
    assert doc["symbol"] == "BTCUSDT" and doc["cut_level"] == plan.cut_level
    assert [D(r["cum_cost"]) for r in doc["rows"]] == [r.cum_cost for r in plan.rows]
    assert all("E" not in r["qty"] for r in doc["rows"])


def btc_filters():
    from backtest.config import make_filters

    return make_filters("BTCUSDT", None, "test")


def test_plan_reads_a_config_with_the_documents_names(tmp_path):
    cfg = tmp_path / "estrategia.json"
    cfg.write_text(json.dumps({"qty_inicial": 100, "limite_recompras": 3, "saldo_limite": 0, "taxa": 0}))
    result = CliRunner().invoke(dca_app, ["plan", str(cfg), "--price", "50"])
    assert result.exit_code == 0, result.output
    assert "The whole ladder fits the free balance." in result.output
    assert "levels 0..3" in result.output
    bad = CliRunner().invoke(dca_app, ["plan", "--price", "abc"])
    assert bad.exit_code == 2


def run_menu(answers: list[str], cwd: Path) -> str:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.run(
        [sys.executable, "-m", "cli.dca", "menu"],
        input="\n".join(answers) + "\n",
        capture_output=True,
        text=True,
        cwd=cwd,
        env=env,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


def test_menu_asks_items_1_to_10_in_order_and_enter_keeps_defaults(tmp_path):
    data = write_csv(synthetic(1500, seed=3, vol=0.003, start_ms=1_677_628_800_000), tmp_path / "c.csv")
    answers = [""] * len(ITEMS)  # Items 1..6: every default
    answers[0] = "250"  # Item 1: qty_inicial
    answers[4] = "0.02"  # Item 2: lucro_alvo_inicial
    answers += ["s", "100"]  # Item 7: print the plan at 100
    answers += ["s", str(tmp_path / "minha.json")]  # Item 8: save
    answers += ["s", str(data)]  # Item 9: run it (a backtest on the file)
    answers += ["s"]  # Item 10: configure another
    answers += [""] * len(ITEMS) + ["n", "n", "s", "", "n"]  # second round: defaults, live instructions, quit
    out = run_menu(answers, tmp_path)
    positions = [out.index(f"Item {item}: {alias}") for item, alias, _, _ in ITEMS]
    assert positions == sorted(positions)
    assert "[300]" in out and "[0.035]" in out and "[5000]" in out and "(s/n) [s]" in out
    assert out.index("Item 7: imprimir_estrategia") < out.index("Item 8: salvar_estrategia")
    assert out.index("Item 9: executar_estrategia") < out.index("Item 10: configurar_nova_estrategia")
    plan = build_plan(DcaParams(base_order_quote=D(250), take_profit=D("0.02")), D(100), btc_filters())
    assert quote(plan.total_cost) in out
    saved = load_backtest_config(tmp_path / "minha.json")
    assert saved.params == DcaParams(base_order_quote=D(250), take_profit=D("0.02"))
    assert "closed cycles" in out  # the backtest ran
    assert "[[bots]]" in out and 'strategy = "dca"' in out  # the second round asked for live instructions
    assert out.rstrip().endswith("bye")


def test_menu_refuses_a_bad_value_and_asks_again(tmp_path):
    out = run_menu(["abc", "400"], tmp_path)  # then end of input: it leaves quietly
    assert out.count("Item 1: qty_inicial") == 2 and "invalid" in out
    assert "Item 1.1: multiplicador_qty" in out
