"""`automata backtest`: report, JSON, chart, time range, sweeps, and clear errors."""

from __future__ import annotations

import json
from decimal import Decimal as D
from pathlib import Path

import pytest
from typer.testing import CliRunner

from backtest.series import CandleSeries, iso, synthetic
from cli.backtest import backtest_app
from shared.display import pct, quote


def write_csv(series: CandleSeries, path: Path) -> Path:
    lines = ["open_time,open,high,low,close,volume"]
    for i in range(len(series)):
        c = series.candle(i, "sim", "BTCUSDT", "1m")
        lines.append(f"{iso(c.open_time)}:00+00:00,{c.open},{c.high},{c.low},{c.close},1")
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> Path:
    series = synthetic(3000, seed=11, vol=0.003, start_ms=1_677_628_800_000)  # from 2023-03-01
    return write_csv(series, tmp_path_factory.mktemp("data") / "candles.csv")


@pytest.fixture
def config(tmp_path) -> Path:
    path = tmp_path / "dca.toml"
    path.write_text(
        'strategy = "dca"\nsymbol = "BTCUSDT"\n[params]\nqty_inicial = 200\nrecompra_queda_inicial = 0.005\n'
    )
    return path


def invoke(*args: str):
    return CliRunner().invoke(backtest_app, [str(a) for a in args], catch_exceptions=False)


def test_backtest_prints_the_report_and_writes_json_and_chart(tmp_path, data, config):
    out, png = tmp_path / "r.json", tmp_path / "r.png"
    result = invoke(config, "--data", data, "--json", out, "--chart", png, "--no-progress")
    assert result.exit_code == 0, result.output
    for text in ("net profit", "closed cycles", "max drawdown", "buy and hold", "time in market", "cycles ("):
        assert text in result.output
    report = json.loads(out.read_text())
    for key in (
        "net_profit",
        "cycles",
        "safety_fills",
        "max_drawdown",
        "fees",
        "max_committed",
        "final_base",
    ):
        assert key in report
    assert report["final_quote"] and report["cycles"] >= 1 and report["fills"]
    assert report["params"]["base_order_quote"] == "200" and report["params"]["step"] == "0.005"
    first = report["fills"][0]
    assert first["side"] == "BUY" and first["tag"] == "base1" and D(first["quote"]) <= 200
    # balances add up: net profit = final equity - initial capital
    final = D(report["final_quote"]) + D(report["final_base"]) * D(report["final_price"])
    assert D(report["net_profit"]) == final - D(report["initial_quote"])
    assert len(report["cycles_table"]) >= report["cycles"]
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_plain_and_fast_give_the_same_report(tmp_path, data, config):
    a, b = tmp_path / "a.json", tmp_path / "b.json"
    assert invoke(config, "--data", data, "--json", a).exit_code == 0
    assert invoke(config, "--data", data, "--json", b, "--plain").exit_code == 0
    ra, rb = json.loads(a.read_text()), json.loads(b.read_text())
    assert rb["path"] == "plain" and ra["path"] == "fast"
    for key in ("fills", "net_profit", "cycles", "max_drawdown", "max_committed"):
        assert ra[key] == rb[key]


def test_from_and_to_limit_the_candles(tmp_path, data, config):
    out = tmp_path / "r.json"
    result = invoke(
        config, "--data", data, "--from", "2023-03-01T10:00", "--to", "2023-03-01T20:00", "--json", out
    )
    assert result.exit_code == 0, result.output
    report = json.loads(out.read_text())
    assert (
        report["candles"] == 600
        and report["from"] == "2023-03-01 10:00"
        and report["to"] == "2023-03-01 20:00"
    )


def test_sweep_runs_every_combination_in_parallel(tmp_path, data, config):
    out = tmp_path / "s.json"
    result = invoke(
        config,
        "--data",
        data,
        "--sweep",
        "take_profit=0.01,0.02",
        "--sweep",
        "taxa=0,0.001",
        "--jobs",
        "2",
        "--json",
        out,
    )
    assert result.exit_code == 0, result.output
    runs = json.loads(out.read_text())["sweep"]
    assert sorted((r["params"]["take_profit"], r["params"]["taxa"]) for r in runs) == [
        ("0.01", "0"),
        ("0.01", "0.001"),
        ("0.02", "0"),
        ("0.02", "0.001"),
    ]
    by = {(r["params"]["take_profit"], r["params"]["taxa"]): r for r in runs}
    assert D(by[("0.01", "0")]["fees"]) == 0 and D(by[("0.01", "0.001")]["fees"]) > 0
    assert "sweep: 4 runs" in result.output
    # 80 columns (the runner's console): one paragraph a run, best first, nothing cut
    assert "…" not in result.output and max(map(len, result.output.splitlines())) <= 80
    best = max(runs, key=lambda r: D(r["net_profit"]))
    first = result.output.split("1. ", 1)[1]
    assert first.startswith(" ".join(f"{k}={v}" for k, v in best["params"].items()))
    assert f"net profit {quote(best['net_profit'])}" in first


def test_errors_name_the_file_and_the_field(tmp_path, data):
    bad = tmp_path / "bad.toml"
    bad.write_text('strategy = "dca"\n[params]\nlucro_alvo_inicial = "muito"\n')
    result = invoke(bad, "--data", data)
    assert result.exit_code == 2 and "bad.toml" in result.output and "take_profit" in result.output
    unknown = tmp_path / "unknown.toml"
    unknown.write_text('strategy = "dca"\n[params]\ncolour = 1\n')
    result = invoke(unknown, "--data", data)
    assert result.exit_code == 2 and "colour" in result.output
    nostrat = tmp_path / "nostrat.toml"
    nostrat.write_text('strategy = "martingale"\n')
    assert "unknown strategy" in invoke(nostrat, "--data", data).output


def test_a_bot_config_entry_is_backtested_by_id(tmp_path, data):
    cfg = tmp_path / "bots.toml"
    cfg.write_text(
        '[[bots]]\nid = "a"\nsymbol = "BTCUSDT"\nstrategy = "dca"\n[bots.params]\nqty_inicial = 100\n'
        '[[bots]]\nid = "b"\nsymbol = "BTCUSDT"\nstrategy = "dca"\n[bots.params]\nqty_inicial = 150\n'
    )
    out = tmp_path / "r.json"
    assert invoke(cfg, "--data", data, "--bot", "b", "--json", out).exit_code == 0
    assert json.loads(out.read_text())["params"]["base_order_quote"] == "150"


def test_the_report_fits_80_columns_and_json_dash_prints_it(data, config):
    narrow = CliRunner().invoke(backtest_app, [str(config), "--data", str(data)], env={"COLUMNS": "80"})
    assert narrow.exit_code == 0, narrow.output
    assert "…" not in narrow.output and max(map(len, narrow.output.splitlines())) <= 80
    assert "start / end" in narrow.output and "E-" not in narrow.output
    report = json.loads(invoke(config, "--data", data, "--json", "-").output)
    assert D(report["net_profit"]) and report["cycles"] >= 1 and "cycles (" not in json.dumps(report)
    shown = f"{quote(report['net_profit'])} ({pct(D(str(report['return_pct'])))})"
    assert shown in narrow.output  # the same figures, as a person reads them


def test_safety_orders_are_shown_for_dca_only(tmp_path, data, config):
    """A grid has no safety orders: its report shows no "safety fills" row and no safety column
    (they said 0 for every bot that is not DCA)."""
    grid = tmp_path / "grid.toml"
    grid.write_text('strategy = "grid"\nsymbol = "BTCUSDT"\n[params]\nlower = 20000\nupper = 26000\nlevels = 7\n'
                    "quote_per_level = 50\n")  # fmt: skip
    for path, shown in ((config, True), (grid, False)):
        result = invoke(path, "--data", data, "--no-progress")
        assert result.exit_code == 0, result.output
        assert ("safety fills" in result.output) is shown and ("safety" in result.output) is shown, (
            result.output
        )


def test_a_misspelt_key_of_a_bot_or_strategy_file_is_refused_naming_file_bot_and_key(tmp_path, data):
    """A bot table's `stratgy = "grid"` ran the default dca, a `[bots.parmas]`-style table or
    `symbl` was dropped without a word, while the strategy runner refuses the same file: the
    backtest refuses it too, naming the file, the bot and the key; a params error names the bot."""
    bots = tmp_path / "bots.toml"
    bots.write_text(
        '[[bots]]\nid = "a"\nstrategy = "dca"\n[bots.params]\nqty_inicial = 100\n'
        '[[bots]]\nid = "b"\nstratgy = "grid"\n[bots.params]\nqty_inicial = 100\n'
    )
    assert invoke(bots, "--data", data, "--bot", "a", "--json", tmp_path / "a.json").exit_code == 0
    result = invoke(bots, "--data", data, "--bot", "b")
    assert result.exit_code == 2
    assert "bots.toml: bot b: unknown key(s) stratgy" in " ".join(result.output.split())
    plan = tmp_path / "plan.toml"
    plan.write_text('strategy = "dca"\nsymbl = "ETHUSDT"\n[params]\nqty_inicial = 100\n')
    result = invoke(plan, "--data", data)
    assert result.exit_code == 2 and "plan.toml: unknown key(s) symbl" in " ".join(result.output.split())
    typo = tmp_path / "typo.toml"
    typo.write_text('[[bots]]\nid = "c"\nstrategy = "dca"\n[bots.params]\nlucro_alvo_inicial = "x"\n')
    result = invoke(typo, "--data", data)
    assert result.exit_code == 2 and "typo.toml: bot c: params: take_profit" in " ".join(
        result.output.split()
    )


def test_a_fractal_stop_backtested_without_base_says_to_give_it_with_base(tmp_path, data):
    """The fractal trailing stop sells a position it did not open; a run starting with no base
    placed nothing and said only "0 BTC is under the exchange minimum". The warning now names
    --base with the bot's quantity (every word of it shown: "[backtest]" is no markup), and
    --base gives the run that position."""
    bots = tmp_path / "bots.toml"
    bots.write_text(
        '[[bots]]\nid = "guard"\nstrategy = "fractal_trailing"\n'
        '[bots.params]\nentry = 20000\nquantity = 0.01\ninterval = "5m"\nlookback_days = 1\n'
    )
    result = invoke(bots, "--data", data)
    assert result.exit_code == 0, result.output
    said = " ".join(result.output.split())
    assert "give it the position with --base 0.01 (or base = 0.01 under [backtest])" in said
    out = tmp_path / "r.json"
    assert invoke(bots, "--data", data, "--base", "0.01", "--json", out).exit_code == 0
    report = json.loads(out.read_text())
    assert report["initial_base"] == "0.01" and report["orders_placed"] > 0 and not report["warnings"]
    refused = invoke(bots, "--data", data, "--base", "-1")
    assert refused.exit_code == 2 and "--base '-1' must be a number >= 0" in refused.output


def test_a_candle_file_with_a_bad_value_or_row_says_which_candle_and_column(tmp_path, config):
    """`abc` as a price said "invalid literal for int() with base 10: 'abc'"; a short row
    "list index out of range", with the file's name twice."""
    head = "open_time,open,high,low,close,volume\n2023-03-01 00:00:00+00:00,23140.48,23150.77,23128.52,23142.31,2.1\n"
    word = tmp_path / "word.csv"
    word.write_text(head + "2023-03-01 00:01:00+00:00,23142.31,abc,23128.52,23142.31,2.1\n")
    result = invoke(config, "--data", word)
    assert result.exit_code == 2
    assert f"error: {word}: candle 2 (2023-03-01 00:01): high 'abc' is not a number" in " ".join(
        result.output.split()
    )
    short = tmp_path / "short.csv"
    short.write_text(head + "2023-03-01 00:01:00+00:00,23142.31,23150\n")
    said = " ".join(invoke(config, "--data", short).output.split())
    assert f"error: {short}:3: 3 column(s), a candle needs 6" in said and said.count(str(short)) == 1
