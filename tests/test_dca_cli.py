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
from strategies.dca_params import DcaParams
from strategies.dca_plan import build_plan
from tests.test_backtest_cli import write_csv

ROOT = Path(__file__).resolve().parents[1]


def test_plan_prints_every_level_the_total_and_the_budget_cut():
    result = CliRunner().invoke(dca_app, ["plan", "--price", "100"])
    assert result.exit_code == 0, result.output
    plan = build_plan(DcaParams(), D(100), btc_filters())
    assert f"if every safety order fills: {plan.total_cost:.2f} USDT (levels 0..20" in result.output
    assert f"cuts the ladder at level {plan.cut_level}: level {plan.cut_level} is cut to" in result.output
    assert f"levels {plan.cut_level + 1}..20 are not placed" in result.output
    assert f"costs at most {plan.placed_cost:.2f}" in result.output
    assert result.output.count("not placed") == 20 - plan.cut_level + 1
    for row in plan.rows:
        assert f"{row.cum_cost:.2f}" in result.output
    for header in ("step", "drop", "buy price", "avg entry", "target", "TP price", "rise needed"):
        assert header in result.output


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
    assert f"{plan.total_cost:.2f}" in out
    saved = load_backtest_config(tmp_path / "minha.json")
    assert saved.params == DcaParams(base_order_quote=D(250), take_profit=D("0.02"))
    assert "closed cycles" in out  # the backtest ran
    assert "[[bots]]" in out and 'strategy = "dca"' in out  # the second round asked for live instructions
    assert out.rstrip().endswith("bye")


def test_menu_refuses_a_bad_value_and_asks_again(tmp_path):
    out = run_menu(["abc", "400"], tmp_path)  # then end of input: it leaves quietly
    assert out.count("Item 1: qty_inicial") == 2 and "invalid" in out
    assert "Item 1.1: multiplicador_qty" in out


def test_menu_says_a_price_is_not_a_number_in_words(tmp_path):
    out = run_menu([""] * len(ITEMS) + ["s", "xyz", "100"], tmp_path)  # Item 7's reference price
    assert "invalid: 'xyz' is not a number" in out and "decimal." not in out
