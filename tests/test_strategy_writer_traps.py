"""The mistakes a new strategy writer makes, met on docs/STRATEGY_GUIDE.md's own path (the
minimal bot, a strategy file, `automata backtest`): each is refused with one clear line naming
the file and the field (or the line of code), never passed over in silence."""

from __future__ import annotations

from decimal import Decimal as D
from pathlib import Path

import msgspec
import pytest
from typer.testing import CliRunner

from backtest.series import synthetic
from cli.backtest import backtest_app
from shared.strategy.params import ParamsError, load_params
from tests.test_backtest_cli import write_csv


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> Path:
    series = synthetic(600, seed=11, vol=0.003, start_ms=1_677_628_800_000)
    return write_csv(series, tmp_path_factory.mktemp("data") / "candles.csv")


def backtest(config: Path, data: Path, *args: str):
    return CliRunner().invoke(backtest_app, [str(config), "--data", str(data), "--no-progress", *args])


def one_line(output: str) -> str:
    return " ".join(output.split())


def strategy_file(tmp_path: Path, strategy: str, params: str) -> Path:
    path = tmp_path / "bot.toml"
    path.write_text(f'strategy = "{strategy}"\nsymbol = "BTCUSDT"\ninterval = "1m"\n[params]\n{params}\n')
    return path


class Loose(msgspec.Struct, frozen=True):
    quote_amount: D = D("100")


def test_a_typo_in_a_param_is_refused_even_when_the_struct_would_drop_it() -> None:
    """The guide's minimal bot declares its params without forbid_unknown_fields: the loader
    refuses the typo itself, and says which field was meant."""
    typo = r"bots.toml: quote_amout: unknown parameter \(did you mean quote_amount\?\)"
    with pytest.raises(ParamsError, match=typo):
        load_params(Loose, {"quote_amout": 30}, source="bots.toml")
    with pytest.raises(ParamsError, match="colour: unknown parameter"):
        load_params(Loose, {"colour": "red"})
    assert load_params(Loose, {"quote_amount": 30}).quote_amount == 30


def test_a_typo_in_the_minimal_bots_params_stops_the_backtest(tmp_path, data) -> None:
    config = strategy_file(tmp_path, "examples.minimal:Minimal", "quote_amout = 30")
    result = backtest(config, data)
    assert result.exit_code == 2, result.output
    said = one_line(result.output)
    assert f"{config}: params: quote_amout: unknown parameter (did you mean quote_amount?)" in said
    plain = strategy_file(tmp_path, "examples.minimal:Minimal", "")
    swept = backtest(plain, data, "--sweep", "quote_amout=50,100")
    assert swept.exit_code == 2 and "quote_amout: unknown parameter" in one_line(swept.output)
