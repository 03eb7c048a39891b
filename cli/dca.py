"""`automata dca plan [--price P] [CONFIG]` and `automata dca menu`: the DCA strategy's plan
table and its interactive menu (docs/STRATEGIES.md §1).

The plan is strategies.dca_plan.build_plan: the ladder code the strategy itself runs. The menu
reads plain lines from standard input, so a program can drive it: each answer is one line,
an empty line keeps the default shown in brackets, end of input leaves. The menu asks each
parameter by its English name, the name it is saved under, with its Portuguese alias beside it
(the name older configs use; both are read back). A bad answer gets one line saying why ("not a
number: 'abc'") and the question again.
Register with `app.add_typer(dca_app, name="dca")`; `python -m cli.dca` works too.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any, TextIO

import msgspec
import typer
from rich.console import Console
from rich.table import Table

from backtest.config import BacktestConfigError, load_backtest_config, make_filters
from cli import output, paths
from shared.display import Precision, quote, ratio_pct
from shared.filters import SymbolFilters
from shared.strategy import ParamsError
from strategies.dca_params import ALIASES, DcaParams, parse_dca_params, yes_or_no
from strategies.dca_plan import Plan, build_plan

dca_app = typer.Typer(help="DCA strategy: plan table and interactive menu.", no_args_is_help=True)

DEFAULT_PRICE = Decimal("100")
DEFAULT_FILE = "dca_strategy.json"

# The parameters the menu asks, in order: (field, its Portuguese alias, what it is).
ITEMS: list[tuple[str, str, str]] = [
    ("base_order_quote", "qty_inicial", "quote amount of the market buy that opens a cycle"),
    ("order_size_multiplier", "multiplicador_qty", "each safety order's amount = previous × this"),
    ("order_size_min", "qty_minima", "lowest amount the multiplier may reach"),
    ("order_size_max", "qty_maxima", "highest amount the multiplier may reach"),
    ("take_profit", "lucro_alvo_inicial", "target over the average entry (0.035 = 3.5 %)"),
    ("take_profit_multiplier", "multiplicador_lucro", "after each safety fill: target × this"),
    ("take_profit_min", "lucro_alvo_minimo", "lowest target"),
    ("take_profit_max", "lucro_alvo_maximo", "highest target"),
    ("step", "recompra_queda_inicial", "drop from the last buy that triggers safety order 1"),
    ("step_multiplier", "multiplicador_recompra", "each next drop = previous × this"),
    ("step_min", "recompra_queda_minimo", "smallest drop"),
    ("step_max", "recompra_queda_maximo", "largest drop"),
    ("max_safety_orders", "limite_recompras", "safety orders per cycle at most"),
    ("fee", "taxa", "fee rate (0.001 = 0.1 %)"),
    ("budget", "saldo_limite", "most quote a cycle may commit (0 = all free balance)"),
    ("reinvest_profit", "lucro_reaplicar", "reinvest realised profit into later cycles"),
]
assert all(ALIASES[alias] == field for field, alias, _ in ITEMS)
FIELD_TYPES = {f.name: f.type for f in msgspec.structs.fields(DcaParams)}


def item_prompt(field: str, alias: str, meaning: str) -> str:
    """How the menu asks a parameter: its English name, its Portuguese alias, what it is."""
    return f"{field} ({alias}): {meaning}"


def _pct(value: Decimal | None) -> str:
    return "" if value is None else ratio_pct(value)


def _budget_note(plan: Plan, level: int) -> str:
    placed = {r.level: r for r in plan.placed}
    if level not in placed:
        return "not placed"
    row = placed[level]
    return f"cut to {quote(row.quote)}" if row.budget_cut else ""


PLAN_COLUMNS = ("level", "step", "drop", "buy price", "quote", "qty", "cum. cost", "avg entry", "target",
                "TP price", "rise needed", "profit at TP", "budget")  # fmt: skip
SHORT = {"rise needed": "rise", "profit at TP": "profit"}  # headers of the narrow table
# on a narrow console: two figures a cell, one over the other
PLAN_PAIRS = (("level", "step"), ("buy price", "drop"), ("quote", "qty"), ("cum. cost", "avg entry"),
              ("target", "rise needed"), ("TP price", "profit at TP"), ("budget",))  # fmt: skip


def plan_table(plan: Plan, filters: SymbolFilters, console: Console | None = None) -> Table:
    """Every level at the symbol's precision; when the console is too narrow for 13 columns,
    each cell holds two figures (level over step, buy price over drop, ...)."""
    q, b, p = filters.quote_asset, filters.base_asset, Precision.of(filters)
    title = f"DCA plan at {p.price(plan.ref_price)} {q}"
    names = {"quote": f"quote {q}", "qty": f"qty {b}"}
    cells = []
    for r in plan.rows:
        cells.append({
            "level": str(r.level), "step": _pct(r.step) if r.step is not None else "market", "drop": _pct(r.drop),
            "buy price": p.price(r.price), "quote": quote(r.quote), "qty": p.qty(r.qty),
            "cum. cost": quote(r.cum_cost), "avg entry": p.price(r.avg_entry), "target": _pct(r.target),
            "TP price": p.price(r.tp_price), "rise needed": _pct(r.rise), "profit at TP": quote(r.profit),
            "budget": _budget_note(plan, r.level),
        })  # fmt: skip
    wide = Table(title=title)
    for col in PLAN_COLUMNS:
        wide.add_column(names.get(col, col), justify="right", no_wrap=True)
    for row in cells:
        wide.add_row(*(row[col] for col in PLAN_COLUMNS))
    if console is None or output.fits(console, wide):
        return wide
    narrow = Table(title=title, show_lines=True)
    for pair in PLAN_PAIRS:
        narrow.add_column(
            "\n".join(SHORT.get(col, col) for col in pair), justify="right", no_wrap=pair != ("budget",)
        )
    for row in cells:
        narrow.add_row(*("\n".join(row[col] for col in pair) for pair in PLAN_PAIRS))
    return narrow


def plan_footer(plan: Plan, params: DcaParams, filters: SymbolFilters) -> list[str]:
    q, p = filters.quote_asset, Precision.of(filters)
    last = plan.rows[-1]
    lines = [
        f"Total cost of the cycle if every safety order fills: {quote(plan.total_cost)} {q} "
        f"(levels 0..{last.level}, fees at {_pct(params.fee)} included); "
        f"lowest buy {p.price(last.price)} ({_pct(last.drop)} below {p.price(plan.ref_price)})."
    ]
    if len(plan.rows) <= params.max_safety_orders:
        lines.append(
            f"Safety order {len(plan.rows)} and later would be under the exchange's minimum order size: "
            "the ladder ends there."
        )
    budget = f"the budget {quote(params.budget)} {q}" if params.budget > 0 else "the free balance"
    if plan.cut_level is None:
        lines.append(f"The whole ladder fits {budget}.")
        return lines
    end = plan.placed[-1]
    what = f"level {end.level} is cut to {quote(end.quote)} {q}" if end.budget_cut else "nothing is cut"
    skipped = f"levels {end.level + 1}..{last.level} are not placed" if last.level > end.level else ""
    lines.append(
        f"{budget[0].upper()}{budget[1:]} cuts the ladder at level {plan.cut_level}: {what}"
        f"{'; ' + skipped if skipped else ''}. The cycle then costs at most {quote(plan.placed_cost)} {q}."
    )
    return lines


def print_plan(
    params: DcaParams, price: Decimal, filters: SymbolFilters, console: Console | None = None
) -> Plan:
    console = console or Console(highlight=False)
    plan = build_plan(params, price, filters)
    console.print(plan_table(plan, filters, console))
    for line in plan_footer(plan, params, filters):
        console.print(line, highlight=False)
    return plan


def _load(config: Path | None, symbol: str) -> tuple[DcaParams, SymbolFilters]:
    if config is None:
        return DcaParams(), make_filters(symbol, None, "defaults")
    cfg = load_backtest_config(paths.home().saved_plan(config))
    if not isinstance(cfg.params, DcaParams):
        raise BacktestConfigError(f"{config}: strategy {cfg.strategy.name!r} is not dca")
    return cfg.params, cfg.filters


@dca_app.command("plan")
def plan_command(
    config: Path = typer.Argument(None, help="strategy file or bot config (default: the DCA defaults)"),
    price: str = typer.Option(str(DEFAULT_PRICE), "--price", help="reference price of the opening buy"),
    symbol: str = typer.Option("BTCUSDT", "--symbol", help="symbol whose filters round the orders"),
    as_json: bool = output.json_option("print the plan (every level, costs, where the budget cuts) as JSON"),
) -> None:
    """Print every level of one cycle, its total cost and where the budget cuts the ladder."""
    try:
        params, filters = _load(config, symbol)
        ref = Decimal(price)
        if ref <= 0:
            raise ValueError
    except (BacktestConfigError, ParamsError) as exc:
        Console(stderr=True).print(f"[red]error:[/red] {exc}", highlight=False)
        raise typer.Exit(2) from None
    except (InvalidOperation, ValueError):
        Console(stderr=True).print(f"[red]error:[/red] --price {price!r} is not a positive number")
        raise typer.Exit(2) from None
    if as_json:
        output.emit({"symbol": filters.symbol, "quote_asset": filters.quote_asset, "base_asset": filters.base_asset,
                     **msgspec.to_builtins(build_plan(params, ref, filters), builtin_types=(Decimal,))})  # fmt: skip
        return
    print_plan(params, ref, filters)


# --- the menu ------------------------------------------------------------------------------


class Menu:
    """The DCA menu over a pair of text streams (stdin/stdout by default)."""

    def __init__(self, inp: TextIO, out: TextIO, symbol: str = "BTCUSDT") -> None:
        self.inp, self.out = inp, out
        self.filters = make_filters(symbol, None, "defaults")
        self.console = Console(file=out, force_terminal=False, color_system=None, highlight=False)

    def say(self, text: str = "") -> None:
        self.out.write(text + "\n")
        self.out.flush()

    def ask(self, prompt: str, default: str) -> str | None:
        """One answer line; the default for an empty line; None at end of input."""
        self.out.write(f"{prompt} [{default}]: ")
        self.out.flush()
        line = self.inp.readline()
        if not line:
            self.say()
            return None
        return line.strip() or default

    def ask_until(self, prompt: str, default: str, check: Callable[[str], Any]) -> Any:
        while True:
            answer = self.ask(prompt, default)
            if answer is None:
                raise EOFError
            try:
                return check(answer)
            except (ValueError, ArithmeticError, msgspec.ValidationError) as exc:
                self.say(f"  {answer_error(answer, exc)}")

    def yes(self, prompt: str, default: str = "y") -> bool:
        return self.ask_until(f"{prompt}? (y/n)", default, yes_no)

    def configure(self, start: DcaParams) -> DcaParams:
        """Every parameter, each defaulting to start's value; asked again until the whole is valid."""
        values = msgspec.to_builtins(start)
        while True:
            for field, alias, meaning in ITEMS:
                current = values[field]
                if field == "reinvest_profit":
                    values[field] = self.yes(item_prompt(field, alias, meaning), "y" if current else "n")
                    continue

                def check(answer: str, field: str = field) -> str:
                    number(answer, whole=FIELD_TYPES[field] is int)  # the whole is checked below
                    return answer

                values[field] = self.ask_until(item_prompt(field, alias, meaning), str(current), check)
            try:
                return parse_dca_params(values, source="menu")
            except ParamsError as exc:
                self.say(f"  {exc}; once more from the first parameter")

    def run(self) -> int:
        params = DcaParams()
        try:
            while True:
                self.say("Trader Automata — DCA strategy (Enter keeps the value in brackets)")
                params = self.configure(params)
                self.actions(params)
                if not self.yes("Configure another strategy"):
                    self.say("bye")
                    return 0
                params = DcaParams()
        except EOFError:
            return 0

    def actions(self, params: DcaParams) -> None:
        if self.yes("Print the plan and its total cost"):
            price = self.ask_until("  reference price", str(DEFAULT_PRICE), _positive)
            print_plan(params, price, self.filters, self.console)
        if self.yes("Save the strategy to a file"):
            name = self.ask_until("  file", DEFAULT_FILE, str)
            path = save_strategy(params, Path(name), self.filters.symbol)
            self.say(f"  saved to {path}")
        if self.yes("Run it"):
            data = self.ask("  candle file to backtest it on (Enter: how to run it live)", "")
            if data:
                self.backtest(params, Path(data))
            else:
                self.say(live_instructions(params, self.filters.symbol))

    def backtest(self, params: DcaParams, data: Path) -> None:
        from backtest.config import BacktestConfig, to_setup
        from backtest.engine import run_backtest
        from backtest.report import build_report
        from backtest.series import CandleSeries, SeriesError, interval_name
        from cli.backtest import print_summary
        from strategies.dca import DcaStrategy

        try:
            series = CandleSeries.from_csv(data)
        except (OSError, ValueError, SeriesError) as exc:
            self.say(f"  cannot read {data}: {exc}")
            return
        cfg = BacktestConfig(
            strategy=DcaStrategy(),
            params=params,
            filters=self.filters,
            interval=interval_name(series.interval_ms),
        )
        report = build_report(run_backtest(to_setup(cfg), series), data=str(data), include_fills=False)
        print_summary(report, self.console, cycles=10)


class AnswerError(ValueError):
    """An answer the menu cannot use; the message is the one line the user sees."""


def number(answer: str, *, whole: bool = False) -> Decimal:
    """answer as a finite Decimal (a whole number if `whole`), else AnswerError saying why."""
    try:
        value = Decimal(answer.strip().replace("_", ""))
    except ArithmeticError:
        raise AnswerError(f"not a number: {answer!r}") from None
    if not value.is_finite():
        raise AnswerError(f"not a finite number: {answer!r}")
    if whole and value != value.to_integral_value():
        raise AnswerError(f"not a whole number: {answer!r}")
    return value


def yes_no(answer: str) -> bool:
    result = yes_or_no(answer)
    if result is None:
        raise AnswerError(f"answer y or n, not {answer!r}")
    return result


def answer_error(answer: str, exc: Exception) -> str:
    """One readable line for a refused answer (never a Python repr of the exception)."""
    if isinstance(exc, AnswerError | ParamsError):
        return str(exc)
    if isinstance(exc, ArithmeticError):
        return f"not a number: {answer!r}"
    return f"not accepted: {answer!r} ({exc})"


def _positive(answer: str) -> Decimal:
    value = number(answer)
    if value <= 0:
        raise AnswerError(f"not a positive number: {answer!r}")
    return value


def save_strategy(params: DcaParams, path: Path, symbol: str) -> Path:
    """Save as JSON (a valid .js object too), English names: `automata backtest` and `automata
    dca plan` read it (and a file with the Portuguese aliases too).

    A bare name goes to $AUTOMATA_HOME/var/plans (never the working directory, often the clone);
    a path with a directory is written where it says."""
    if not path.is_absolute() and len(path.parts) == 1:
        path = paths.home().plans_dir / path
    path.parent.mkdir(parents=True, exist_ok=True)
    body = {"strategy": "dca", "symbol": symbol, "params": msgspec.to_builtins(params)}
    path.write_text(json.dumps(body, indent=2) + "\n", encoding="utf-8")
    return path


def live_instructions(params: DcaParams, symbol: str) -> str:
    lines = [
        "  To run it live, add the bot to your bot config (TOML):",
        "",
        "  [[bots]]",
        '  id = "dca1"',
        '  venue = "sim"            # or your binance / bybit venue',
        f'  symbol = "{symbol}"',
        '  interval = "1m"',
        '  strategy = "dca"',
        "  [bots.params]",
    ]
    for name, value in msgspec.to_builtins(params).items():
        if value is None:
            continue
        text = (
            str(value).lower()
            if isinstance(value, bool)
            else (str(value) if isinstance(value, int) else f'"{value}"')
        )
        lines.append(f"  {name} = {text}")
    lines += [
        "",
        "  then start its runner: python -m services.strategy_runner --bot dca1",
        '  (`automata run` does not start your bots; README, "Paper trading", or `automata deploy supervisor`)',
    ]
    return "\n".join(lines)


@dca_app.command("menu")
def menu_command(
    symbol: str = typer.Option("BTCUSDT", "--symbol", help="symbol whose filters round the orders"),
) -> None:
    """Ask every DCA parameter (Enter keeps each default), then print, save or run the plan."""
    raise typer.Exit(Menu(sys.stdin, sys.stdout, symbol).run())


if __name__ == "__main__":
    dca_app()
