"""`automata dca plan` and `automata dca menu` (the menu driven through stdin, as a program would)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from decimal import Decimal as D
from pathlib import Path

import msgspec
from typer.testing import CliRunner

from backtest.config import load_backtest_config
from backtest.series import synthetic
from cli.dca import ITEMS, dca_app, item_prompt
from shared.display import quote
from strategies.dca_params import ALIASES, DcaParams
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


def test_menu_asks_every_parameter_in_english_and_enter_keeps_defaults(tmp_path):
    data = write_csv(synthetic(1500, seed=3, vol=0.003, start_ms=1_677_628_800_000), tmp_path / "c.csv")
    answers = [""] * len(ITEMS)  # every parameter: its default
    answers[0] = "250"  # base_order_quote
    answers[4] = "0.02"  # take_profit
    answers += ["y", "100"]  # print the plan at 100
    answers += ["y", str(tmp_path / "mine.json")]  # save
    answers += ["y", str(data)]  # run it (a backtest on the file)
    answers += ["s"]  # configure another: the Portuguese "sim" is still a yes
    answers += [""] * len(ITEMS) + ["n", "n", "y", "", "n"]  # second round: defaults, live instructions, quit
    out = run_menu(answers, tmp_path)
    positions = [out.index(item_prompt(*item)) for item in ITEMS]
    assert positions == sorted(positions)
    assert "base_order_quote (qty_inicial): " in out and "max_safety_orders (limite_recompras): " in out
    assert "[300]" in out and "[0.035]" in out and "[5000]" in out and "? (y/n) [y]" in out
    assert "(s/n)" not in out and "Item " not in out
    assert out.index("Print the plan") < out.index("Save the strategy") < out.index("Run it")
    assert out.index("Run it") < out.index("Configure another strategy")
    plan = build_plan(DcaParams(base_order_quote=D(250), take_profit=D("0.02")), D(100), btc_filters())
    assert quote(plan.total_cost) in out
    body = json.loads((tmp_path / "mine.json").read_text())
    assert set(body["params"]) == {f.name for f in msgspec.structs.fields(DcaParams)}  # English names only
    assert not set(body["params"]) & set(ALIASES)
    saved = load_backtest_config(tmp_path / "mine.json")
    assert saved.params == DcaParams(base_order_quote=D(250), take_profit=D("0.02"))
    assert "closed cycles" in out  # the backtest ran
    assert "[[bots]]" in out and 'strategy = "dca"' in out and "max_safety_orders = 20" in out
    assert out.rstrip().endswith("bye")


def test_menu_refuses_a_bad_value_in_one_readable_line_and_asks_again(tmp_path):
    first, second = item_prompt(*ITEMS[0]), item_prompt(*ITEMS[1])
    limit = item_prompt(*next(i for i in ITEMS if i[0] == "max_safety_orders"))
    answers = ["abc", "400"] + [""] * 11 + ["2.5", "NaN", "3", "", "", "maybe", "n", "y", "-1"]
    out = run_menu(answers, tmp_path)  # then end of input: it leaves quietly
    assert out.count(first) == 2 and out.count(second) == 1
    assert "  not a number: 'abc'\n" in out
    assert (
        out.count(limit) == 3
        and "  not a whole number: '2.5'\n" in out
        and "not a finite number: 'NaN'" in out
    )
    assert "  answer y or n, not 'maybe'\n" in out
    assert "not a positive number: '-1'" in out  # the plan's reference price
    assert "class" not in out and "ConversionSyntax" not in out and "Traceback" not in out


def test_a_plan_saved_with_the_portuguese_names_still_loads(tmp_path):
    """An older saved plan (the Portuguese names of the original DCA spreadsheet) loads into the
    same params as the English one; `dca plan` prints the same ladder for both."""
    english = {"base_order_quote": 120, "max_safety_orders": 4, "budget": 900, "reinvest_profit": False}
    portuguese = {"qty_inicial": 120, "limite_recompras": 4, "saldo_limite": 900, "lucro_reaplicar": "n"}
    outputs = []
    for name, params in (("en.json", english), ("pt.json", portuguese)):
        (tmp_path / name).write_text(json.dumps({"strategy": "dca", "symbol": "BTCUSDT", "params": params}))
        assert load_backtest_config(tmp_path / name).params == DcaParams(
            base_order_quote=D(120), max_safety_orders=4, budget=D(900), reinvest_profit=False
        )
        result = CliRunner().invoke(dca_app, ["plan", str(tmp_path / name), "--price", "100"])
        assert result.exit_code == 0, result.output
        outputs.append(result.output)
    assert outputs[0] == outputs[1] and "levels 0..4" in outputs[0]


def test_a_bots_file_with_the_portuguese_names_still_loads(tmp_path):
    from services.strategy_runner.bots import load_bots
    from strategies.dca import DcaStrategy

    table = '[[bots]]\nid = "{id}"\nstrategy = "dca"\nvenue = "sim"\nsymbol = "BTCUSDT"\n[bots.params]\n'
    (tmp_path / "bots.toml").write_text(
        table.format(id="old")
        + 'qty_inicial = 100\nlimite_recompras = 5\nsaldo_limite = 1000\nlucro_reaplicar = "s"\n'
        + table.format(id="new")
        + "base_order_quote = 100\nmax_safety_orders = 5\nbudget = 1000\nreinvest_profit = true\n"
    )
    old, new = (DcaStrategy().parse_params(bot.params) for bot in load_bots(tmp_path / "bots.toml"))
    assert old == new == DcaParams(base_order_quote=D(100), max_safety_orders=5, budget=D(1000))
