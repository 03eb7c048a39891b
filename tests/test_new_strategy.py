"""`automata new-strategy NAME`: the template imports, passes its own tests and backtests, as a user
would run them (the real `automata` console script, the generated pytest file, from the folder
the strategy was written in); it never overwrites a file."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from backtest.series import synthetic
from tests.test_backtest_cli import write_csv

AUTOMATA = Path(sys.executable).with_name("automata")


def automata(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(AUTOMATA), *args], cwd=cwd, capture_output=True, text=True, timeout=120, env=_env()
    )


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}  # as a user's shell has it
    return {**env, "COLUMNS": "200"}


@pytest.fixture(scope="module")
def home(tmp_path_factory) -> Path:
    """A user's folder with the strategy written by the command."""
    home = tmp_path_factory.mktemp("home")
    result = automata("new-strategy", "my_dip", cwd=home)
    assert result.returncode == 0, result.stderr
    assert 'strategy = "strategies_user.my_dip:MyDip"' in result.stdout
    # the hint's Python exists where the user stands (outside the clone: not ".venv/bin/python")
    python = next(line.split()[0] for line in result.stdout.splitlines() if "-m pytest" in line)
    assert (home / python).is_file(), result.stdout
    return home


def test_the_template_passes_its_own_tests(home):
    test = home / "strategies_user" / "test_my_dip.py"
    assert (home / "strategies_user" / "my_dip.py").is_file() and test.is_file()
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(test.relative_to(home))],
        cwd=home,
        capture_output=True,
        text=True,
        timeout=300,
        env=_env(),
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "4 passed" in proc.stdout


def test_automata_backtest_runs_the_template_named_as_in_a_bots_file(home):
    write_csv(synthetic(2000, seed=5, vol=0.002, start_ms=1_677_628_800_000), home / "candles.csv")
    (home / "my_dip.toml").write_text(
        'strategy = "strategies_user.my_dip:MyDip"\nsymbol = "BTCUSDT"\n[params]\nquote_amount = 100\n'
    )
    result = automata("backtest", "my_dip.toml", "--data", "candles.csv", "--json", "report.json", cwd=home)
    assert result.returncode == 0, result.stderr
    report = json.loads((home / "report.json").read_text())
    assert report["strategy"] == "my_dip" and report["buys"] > 0 and report["orders_rejected"] == 0


def test_it_never_overwrites_and_refuses_bad_names(home):
    path = home / "strategies_user" / "my_dip.py"
    before = path.read_text()
    again = automata("new-strategy", "my_dip", cwd=home)
    assert (
        again.returncode == 1
        and "exists: not overwritten" in again.stderr
        and "Traceback" not in again.stderr
    )
    assert path.read_text() == before
    (home / "strategies_user" / "test_other.py").write_text("# mine\n")  # the test file alone exists
    clash = automata("new-strategy", "other", cwd=home)
    assert clash.returncode == 1 and not (home / "strategies_user" / "other.py").exists()
    for bad in ("My-Bot", "class", "test_x", "9lives"):
        refused = automata("new-strategy", bad, cwd=home)
        assert refused.returncode == 1 and "not a strategy name" in refused.stderr, bad


def test_out_writes_elsewhere_with_the_matching_module_path(home):
    result = automata("new-strategy", "trend", "--out", "bots/trend_bot.py", cwd=home)
    assert result.returncode == 0, result.stderr
    assert 'strategy = "bots.trend_bot:Trend"' in result.stdout
    assert 'SPEC = "bots.trend_bot:Trend"' in (home / "bots" / "test_trend_bot.py").read_text()
