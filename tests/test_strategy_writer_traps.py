"""The mistakes a new strategy writer makes, met on docs/STRATEGY_GUIDE.md's own path (the
minimal bot, a strategy file, `automata backtest`): each is refused with one clear line naming
the file and the field (or the line of code), never passed over in silence."""

from __future__ import annotations

import re
from decimal import Decimal as D
from pathlib import Path

import msgspec
import pytest
from typer.testing import CliRunner

from backtest.series import synthetic
from cli.backtest import backtest_app
from cli.new_strategy import render
from shared.exits import Exits, Target
from shared.strategy.params import ParamsError, load_params
from shared.strategy.registry import StrategyLoadError, load_strategy
from shared.trade_terms import TermsError, parse_terms
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


def test_shares_that_do_not_make_the_whole_position_are_refused() -> None:
    """Every target with a share: they must add up to 1 (the last one sold the rest whatever
    its own share said); some without: the shares given must leave them something."""
    with pytest.raises(ValueError, match="add up to 0.8, not the whole position"):
        Exits(take_profits=(Target(gain=D("0.01"), share=D("0.5")), Target(gain=D("0.02"), share=D("0.3"))))
    with pytest.raises(ValueError, match="add up to 1, leaving nothing for the 1 target without a share"):
        Exits(take_profits=(Target(gain=D("0.01"), share=D(1)), Target(gain=D("0.02"))))
    Exits(take_profits=(Target(gain=D("0.01"), share=D("0.5")), Target(gain=D("0.02"))))  # the rest
    Exits(take_profits=(Target(gain=D("0.01"), share=D("0.6")), Target(price=D(50_000), share=D("0.4"))))
    with pytest.raises(TermsError, match="tp: the shares add up to 80%, less than 100%"):
        parse_terms("buy", "BTCUSDT", {"quote": "100", "tp": "2%,4%:50%,30%"})


class BuggyCheck(msgspec.Struct, frozen=True):
    stop: float = 0.01

    def __post_init__(self) -> None:
        if not self.stop.is_finite():  # a float has no is_finite: the bug under test
            raise ValueError("stop must be finite")


def test_a_params_check_that_raises_is_a_config_error_naming_its_line() -> None:
    """Only ValueError and TypeError were turned into a config error: any other exception of a
    params' __post_init__ went out as a traceback from the backtest and the runner."""
    line = next(
        n for n, text in enumerate(Path(__file__).read_text().splitlines(), 1) if "the bug under test" in text
    )
    where = rf"\(.*{Path(__file__).name}, line {line}, in __post_init__\)"
    with pytest.raises(
        ParamsError, match=rf"bots.toml: bot b: params: checking the params raised AttributeError: .*{where}"
    ):
        load_params(BuggyCheck, {}, source="bots.toml: bot b: params")


@pytest.mark.parametrize(
    ("build", "says"),
    [
        (
            lambda: Exits(stop_loss=0.005),
            r'stop_loss must be a Decimal, e\.g\. Decimal\("0.005"\), got float 0.005',
        ),
        (
            lambda: Exits(stop_price=40_000),
            r'stop_price must be a Decimal, e\.g\. Decimal\("40000"\), got int 40000',
        ),
        (lambda: Target(gain=0.01), r'gain must be a Decimal, e\.g\. Decimal\("0.01"\), got float 0.01'),
        (lambda: Exits(take_profits=Target(gain=D("0.01"))), "take_profits must be a tuple of Target"),
        (lambda: Exits(take_profits=(D("0.01"),)), "take_profits must be a tuple of Target, .* got Decimal"),
        (lambda: Exits(stop_loss=D("0.01"), break_even=True), "break_even needs a target"),
        (
            lambda: Exits(stop_loss=D("0.01"), time_limit_s=90.5),
            "time_limit_s must be a whole number of seconds",
        ),
    ],
)
def test_exits_written_in_a_bots_code_the_way_a_newcomer_writes_them_are_refused_by_name(build, says) -> None:
    """Floats, a Target where a tuple goes, a break-even with no target to trigger it: an
    AttributeError from deep inside (`'float' object has no attribute 'is_finite'`), or
    nothing at all, before."""
    with pytest.raises(ValueError, match=says):
        build()


def test_a_break_even_without_a_target_is_refused_as_a_trade_term() -> None:
    with pytest.raises(TermsError, match="break_even: break_even needs a target"):
        parse_terms("buy", "BTCUSDT", {"quote": "100", "sl": "1%", "break_even": "yes"})


class WithExits(msgspec.Struct, frozen=True):
    exits: Exits = Exits()


def test_shares_that_do_not_add_up_in_a_params_table_are_refused_naming_the_field() -> None:
    table = {"exits": {"take_profits": [{"gain": 0.003, "share": 0.5}, {"gain": 0.006, "share": 0.3}]}}
    with pytest.raises(ParamsError, match=r"bot.toml: params: exits: the targets' shares add up to 0.8"):
        load_params(WithExits, table, source="bot.toml: params")


@pytest.fixture
def user_dir(tmp_path, monkeypatch) -> Path:
    """A folder on the Python path for the user's strategy modules (each test its own names)."""
    folder = tmp_path / "user"
    folder.mkdir()
    monkeypatch.syspath_prepend(str(folder))
    return folder


MINIMAL = (Path(__file__).resolve().parents[1] / "examples" / "minimal.py").read_text(encoding="utf-8")


def test_a_syntax_error_in_a_strategy_names_the_whole_path_and_the_line(user_dir, data) -> None:
    module = user_dir / "trap_syntax_bot.py"
    module.write_text(
        MINIMAL.replace("def on_candle(self, params, state, candle, ctx):", "def on_candle(self)")
    )
    line = MINIMAL.splitlines().index("    def on_candle(self, params, state, candle, ctx):") + 1
    with pytest.raises(StrategyLoadError, match=rf"SyntaxError in {re.escape(str(module))}, line {line}: "):
        load_strategy("trap_syntax_bot:Minimal")
    config = strategy_file(user_dir, "trap_syntax_bot:Minimal", "")
    result = backtest(config, data)
    assert result.exit_code == 2 and f"{module}, line {line}" in one_line(result.output)


def test_an_error_raised_while_importing_a_strategy_names_its_file_and_line(user_dir) -> None:
    module = user_dir / "trap_import_bot.py"
    module.write_text("import msgspec\n\nLIMIT = undefined_name\n")
    with pytest.raises(
        StrategyLoadError,
        match=rf"NameError: .*undefined_name.* \({re.escape(str(module))}, line 3, in <module>\)",
    ):
        load_strategy("trap_import_bot:Bot")


def test_a_missing_or_misspelt_class_name_says_which_classes_the_module_has(user_dir) -> None:
    (user_dir / "trap_user").mkdir()
    (user_dir / "trap_user" / "class_bot.py").write_text(MINIMAL)
    hint = re.escape("it defines Minimal: name one, e.g. 'trap_user.class_bot:Minimal'")
    with pytest.raises(StrategyLoadError, match=f"has no STRATEGY or bot; {hint}"):
        load_strategy("trap_user.class_bot")
    with pytest.raises(StrategyLoadError, match=f"has no Minimall; {hint}"):
        load_strategy("trap_user.class_bot:Minimall")


def test_a_strategy_that_raises_stops_the_backtest_with_one_line_naming_its_code(user_dir, data) -> None:
    """Not forty lines of the CLI's and the engine's frames: the candle, the error and the line
    of the strategy's own code, as the runner's error notification says it."""
    module = user_dir / "trap_raising_bot.py"
    code = MINIMAL.replace("if state.trade is None and", "if 1 / 0 and")
    module.write_text(code)
    line = next(n for n, text in enumerate(code.splitlines(), 1) if "1 / 0" in text)
    result = backtest(strategy_file(user_dir, "trap_raising_bot:Minimal", ""), data)
    assert result.exit_code == 2
    said = one_line(result.output)
    assert said.startswith("error: the strategy raised on the candle of 2023-03-01 00:00: ZeroDivisionError")
    assert f"({module}, line {line}, in on_candle)" in said and "Traceback" not in result.output


DROPS_ITS_ORDER = """
from decimal import Decimal

import msgspec

from shared.messages import Side
from shared.strategy import Strategy, StrategyState
from shared.strategy.actions import limit_order


class Params(msgspec.Struct, frozen=True):
    pass


class Dip(Strategy[Params, StrategyState]):
    name = "dip"
    params_type = Params

    def on_candle(self, params, state, candle, ctx):
        if not state.orders:
            state, _ = limit_order(state, ctx, Side.BUY, Decimal("0.001"), candle.close * Decimal("0.99"))
        return state, []


def dip(params, state, event, ctx):
    if not state.orders and hasattr(event, "close"):
        state, _ = limit_order(state, ctx, Side.BUY, Decimal("0.001"), event.close * Decimal("0.99"))
    return state, []
"""


@pytest.mark.parametrize(("name", "hook"), [("Dip", "on_candle"), ("dip", "dip")])
def test_an_order_kept_in_the_state_but_not_sent_stops_the_backtest_naming_it(
    user_dir, data, name, hook
) -> None:
    """`state, _ = limit_order(...)`: the order tracked, its command dropped. Before, the bot
    waited for it for good in silence (live too); now the step is refused, naming the order and
    the handler, in a class or a plain function bot alike."""
    module = user_dir / f"trap_unsent_{hook}.py"
    module.write_text(DROPS_ITS_ORDER)
    line = next(n for n, text in enumerate(DROPS_ITS_ORDER.splitlines(), 1) if f"def {hook}(" in text)
    result = backtest(strategy_file(user_dir, f"trap_unsent_{hook}:{name}", ""), data)
    assert result.exit_code == 2
    said = one_line(result.output)
    assert said.startswith(
        "error: the strategy raised on the candle of 2023-03-01 00:00: UnsentOrder: the new state tracks "
        "order backtest-000001 (BUY LIMIT) but the commands returned do not send it"
    ), said
    assert said.endswith(f"({module}, line {line}, in {hook})") and "Traceback" not in result.output


@pytest.mark.parametrize("hook", ["history_needed", "initial_state"])
def test_a_strategy_that_cannot_start_stops_the_backtest_with_one_line(user_dir, data, hook) -> None:
    module = user_dir / f"trap_{hook}_bot.py"
    code = (
        MINIMAL
        + f"\n\nclass Broken(Minimal):\n    def {hook}(self, params, other):\n        raise RuntimeError('no start today')\n"
    )
    module.write_text(code)
    result = backtest(strategy_file(user_dir, f"trap_{hook}_bot:Broken", ""), data)
    assert result.exit_code == 2
    said = one_line(result.output)
    assert said.startswith(f"error: the strategy's {hook} raised: RuntimeError: no start today"), said
    assert (
        f"({module}, line {len(code.splitlines())}, in {hook})" in said and "Traceback" not in result.output
    )


def test_exits_refused_while_a_strategy_imports_name_the_users_line_not_shared_exits(user_dir) -> None:
    module = user_dir / "trap_float_bot.py"
    code = MINIMAL.replace('stop_loss=Decimal("0.005")', "stop_loss=0.005")
    module.write_text(code)
    line = next(n for n, text in enumerate(code.splitlines(), 1) if text.startswith("EXITS = "))
    said = rf"stop_loss must be a Decimal, .* got float 0.005 \({re.escape(str(module))}, line {line}, in <module>\)"
    with pytest.raises(StrategyLoadError, match=said):
        load_strategy("trap_float_bot:Minimal")


@pytest.mark.parametrize(
    ("amount", "says"),
    [
        ("-100", "the entry's quote amount -100 is not above 0"),
        ("0.5", "the entry (0.50 USDT) is under BTCUSDT's minimum order of 5 USDT"),
    ],
)
def test_an_entry_too_small_to_send_says_why_instead_of_waiting_in_silence(
    tmp_path, data, amount, says
) -> None:
    """The minimal bot's quote_amount has no check of its own: negative, or under the minimum
    order, open_trade sent nothing and said nothing (a backtest with no order and no reason)."""
    result = backtest(strategy_file(tmp_path, "examples.minimal:Minimal", f"quote_amount = {amount}"), data)
    said = one_line(result.output)
    assert result.exit_code == 0 and "orders placed / rejected │ 0 / 0" in said
    assert f"its last reason: trade not opened: {says}" in said


def test_a_strategy_class_without_its_params_type_is_refused_when_loaded(user_dir) -> None:
    """`param_type = Params` (a typo): an AttributeError in the middle of the backtest or the
    runner's start, before."""
    (user_dir / "trap_attr_bot.py").write_text(
        MINIMAL.replace("    params_type = Params", "    param_type = Params")
    )
    with pytest.raises(
        StrategyLoadError, match=r"Minimal.params_type must be the msgspec.Struct class of its params"
    ):
        load_strategy("trap_attr_bot:Minimal")


@pytest.mark.parametrize(
    ("param", "says"),
    [
        ("take_profit = -0.01", "take_profit must be above 0, got -0.01"),
        ("quote_amount = -5", "quote_amount must be above 0, got -5"),
        ("stop_loss = -0.02", "stop_loss must be a fraction in (0, 1) (0.02 is 2 %), got -0.02"),
        ("trailing_stop = 2", "trailing_stop must be a fraction in (0, 1) (0.02 is 2 %), got 2"),
    ],
)
def test_the_example_bots_negative_or_percent_values_are_refused_naming_the_field(
    tmp_path, data, param, says
):
    """A negative take_profit was refused as "a target's gain must be above 0", naming no field."""
    result = backtest(strategy_file(tmp_path, "examples.breakout:Breakout", param), data)
    assert result.exit_code == 2 and f"bot.toml: params: {says}" in one_line(result.output)


def test_the_templates_params_name_the_field_and_the_value_refused(user_dir) -> None:
    """`automata new-strategy`'s dip buyer said "dip and take_profit are fractions between 0 and 1"
    whichever was wrong, and never the value."""
    strategy_code, _ = render("trap_template", "trap_template:TrapTemplate")
    (user_dir / "trap_template.py").write_text(strategy_code)
    strategy = load_strategy("trap_template:TrapTemplate")
    with pytest.raises(
        ParamsError, match=r"take_profit must be a fraction between 0 and 1 \(0.005 is 0.5 %\), got -0.01"
    ):
        strategy.parse_params({"take_profit": "-0.01"})
    with pytest.raises(ParamsError, match="quote_amount must be above 0, got 0"):
        strategy.parse_params({"quote_amount": 0})
