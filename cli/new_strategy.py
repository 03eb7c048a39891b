"""`automata new-strategy NAME [--out FILE]`: a runnable strategy of one's own, from a template.

Writes FILE (default `./strategies_user/NAME.py`) and its test beside it (`test_NAME.py`): a
small dip buyer with a take profit, written against the public strategy interface
(shared/strategy/) with comments on every hook, ready to be copied and changed. A bot names it
in the bots file as `strategy = "strategies_user.NAME:ClassName"` (the module path from the
working directory, which is AUTOMATA_HOME for the services). Nothing is overwritten: when
either file exists the command says so and writes nothing. docs/STRATEGY_GUIDE.md walks
through the rest (testing, backtesting, paper, testnet, live).
"""

from __future__ import annotations

import keyword
import re
import sys
from pathlib import Path

import typer
from rich.console import Console

DEFAULT_DIR = Path("strategies_user")
NAME_RE = re.compile(r"[a-z][a-z0-9_]{0,39}")


class NewStrategyError(ValueError):
    """A name or path that cannot make a strategy module; the message says why."""


def class_name(name: str) -> str:
    """my_dip_bot -> MyDipBot."""
    return "".join(part.capitalize() for part in name.split("_") if part)


def module_path(path: Path, cwd: Path) -> str | None:
    """The dotted module a bots file names for `path`, seen from `cwd`; None if not importable so."""
    try:
        rel = path.resolve().relative_to(cwd.resolve()).with_suffix("")
    except ValueError:
        return None
    parts = rel.parts
    if not parts or not all(p.isidentifier() and not keyword.iskeyword(p) for p in parts):
        return None
    return ".".join(parts)


def check_name(name: str) -> None:
    if not NAME_RE.fullmatch(name) or keyword.iskeyword(name) or name.startswith("test"):
        raise NewStrategyError(
            f"{name!r} is not a strategy name: use lower case letters, digits and _, starting with a "
            "letter (at most 40), not a Python keyword and not starting with 'test'"
        )


def render(name: str, spec: str) -> tuple[str, str]:
    """The strategy module and its test, for strategy `name` loaded as `spec` (module:Class)."""
    cls = class_name(name)
    values = {"name": name, "cls": cls, "spec": spec}
    return STRATEGY_TEMPLATE.format(**values), TEST_TEMPLATE.format(**values)


def write_strategy(name: str, out: Path | None, cwd: Path) -> tuple[Path, Path, str]:
    """Write the strategy and its test; refuse (writing nothing) if either exists."""
    check_name(name)
    path = out if out is not None else DEFAULT_DIR / f"{name}.py"
    if path.suffix != ".py":
        raise NewStrategyError(f"{path}: a strategy file ends in .py")
    test = path.with_name(f"test_{path.stem}.py")
    for existing in (path, test):
        if existing.exists():
            raise NewStrategyError(f"{existing} exists: not overwritten (choose another name or --out)")
    module = module_path(path, cwd)
    spec = f"{module or path.stem}:{class_name(name)}"
    strategy_text, test_text = render(name, spec)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("x", encoding="utf-8") as f:  # "x": never over a file created meanwhile
        f.write(strategy_text)
    with test.open("x", encoding="utf-8") as f:
        f.write(test_text)
    return path, test, spec


def new_strategy(
    name: str = typer.Argument(..., help="the strategy's name: lower case, digits and _ (e.g. my_dip)"),
    out: Path = typer.Option(None, "--out", help="the file to write (default ./strategies_user/NAME.py)"),
) -> None:
    """Write a runnable strategy file and its test from a template, to start a bot of your own."""
    console = Console(highlight=False, soft_wrap=True)
    cwd = Path.cwd()
    try:
        path, test, spec = write_strategy(name, out, cwd)
    except (NewStrategyError, OSError) as exc:
        Console(stderr=True, highlight=False).print(f"[red]error:[/red] {exc}")
        raise typer.Exit(1) from None
    console.print(f"wrote {path} and its test {test}")
    if module_path(path, cwd) is None:
        console.print(
            f"[yellow]{path} is not importable from here as a package path: put its folder on "
            f"PYTHONPATH, or keep it under this directory[/]"
        )
    console.print(
        "next:\n"
        f"  {_python(cwd)} -m pytest -q {test}      # its test (from this directory)\n"
        f'  in a bots file:  strategy = "{spec}"\n'
        "  docs/STRATEGY_GUIDE.md: backtest it, then paper, testnet and live"
    )


def _python(cwd: Path) -> str:
    """This Python as a path from cwd when it lies under it (.venv/bin/python in a clone), else
    whole: the hint must run where the user stands, in the clone or not."""
    exe = Path(sys.executable)
    try:
        return str(exe.relative_to(cwd))
    except ValueError:
        return str(exe)


STRATEGY_TEMPLATE = '''"""{name}: buy a dip, sell at a take profit (written by `automata new-strategy`; change it).

When flat with nothing open, a candle closing `dip` below the highest close of the previous
`lookback` candles buys `quote_amount` at market; once bought, a limit sell for the whole
position waits at the average entry price x (1 + take_profit). One trade at a time.

A strategy is a pure state machine: everything it knows comes in params, state, the event and
ctx, and it answers with the new state and the commands to send. No I/O, no clock, no
randomness, so the runner can persist it and replay it after a crash, and the backtester runs
it unchanged. Money is Decimal, never float.

Bots file:  strategy = "{spec}"
"""

from __future__ import annotations

from decimal import Decimal

import msgspec

from shared.messages import Candle, OrderUpdate, Side
from shared.strategy import (
    OrderChange,
    Step,
    Strategy,
    StrategyContext,
    StrategyState,
    fill_notification,
    limit_order,
    market_order,
)


class {cls}Params(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """The bot's `[bots.params]` table; a wrong name or type stops the bot with a clear error."""

    lookback: int = 20  # candles whose highest close is the reference
    dip: Decimal = Decimal("0.005")  # buy when the close is this far under it (0.005 = 0.5 %)
    quote_amount: Decimal = Decimal("50")  # quote spent by each buy
    take_profit: Decimal = Decimal("0.004")  # sell this far above the average entry

    def __post_init__(self) -> None:  # each refusal names its field: the runner shows it as is
        if self.lookback < 1:
            raise ValueError(f"lookback must be at least 1, got {{self.lookback}}")
        for name in ("dip", "take_profit"):
            value = getattr(self, name)
            if not 0 < value < 1:
                raise ValueError(f"{{name}} must be a fraction between 0 and 1 (0.005 is 0.5 %), got {{value}}")
        if self.quote_amount <= 0:
            raise ValueError(f"quote_amount must be above 0, got {{self.quote_amount}}")


class {cls}State(StrategyState, frozen=True, kw_only=True):
    """What the bot remembers (persisted after every event). StrategyState already holds the
    mode, the position, the open orders and the timers; add only your own fields."""

    trades: int = 0  # round trips closed


def holding(state: StrategyState, price: Decimal, ctx: StrategyContext) -> bool:
    """A position worth selling at price. What rounding and fees paid in base leave over after a
    sell (dust under the step size or the minimum order) is not a trade in progress."""
    base = ctx.filters.round_qty(state.position.base)
    return base > 0 and base * price >= ctx.filters.min_notional


class {cls}(Strategy[{cls}Params, {cls}State]):
    name = "{name}"
    params_type = {cls}Params
    state_type = {cls}State
    history_size = 200  # closed candles kept in ctx.history (at least lookback + 1)

    def history_needed(self, params: {cls}Params, interval: str) -> int:
        return params.lookback + 1

    def on_candle(
        self, params: {cls}Params, state: {cls}State, candle: Candle, ctx: StrategyContext
    ) -> Step[{cls}State]:
        """A closed candle of the bot's interval (only while the bot runs)."""
        if state.orders or holding(state, candle.close, ctx):
            return state, []  # a trade is on: its orders decide
        previous = list(ctx.history)[-params.lookback - 1 : -1]
        if len(previous) < params.lookback:
            return state, []  # not enough history yet
        high = max(c.close for c in previous)
        if candle.close > high * (1 - params.dip):
            return state, []
        state, buy = market_order(state, ctx, Side.BUY, quote=params.quote_amount, tag="entry")
        return state, [buy] if buy else []  # None: the amount breaks the symbol's filters

    def on_order_update(
        self,
        params: {cls}Params,
        state: {cls}State,
        change: OrderChange,
        update: OrderUpdate,
        ctx: StrategyContext,
    ) -> Step[{cls}State]:
        """An update that moved one of its orders forward, already applied to state.position."""
        if not change.finished:
            return state, []  # a partial fill: wait for the order to finish
        rec = change.after
        if rec.tag == "entry" and state.position.base > 0:
            price = state.position.avg_price * (1 + params.take_profit)
            state, sell = limit_order(state, ctx, Side.SELL, state.position.base, price, tag="exit")
            return state, [sell] if sell else []
        if rec.tag == "exit" and rec.cum_filled_qty > 0:
            state = msgspec.structs.replace(state, trades=state.trades + 1)
            return state, [fill_notification(ctx, rec)]
        return state, []

    def on_resume(self, params: {cls}Params, state: {cls}State, ctx: StrategyContext) -> Step[{cls}State]:
        """After a resume (or a restart's sync): put back the take profit if it is missing."""
        if holding(state, state.position.avg_price, ctx) and not state.orders:
            price = state.position.avg_price * (1 + params.take_profit)
            state, sell = limit_order(state, ctx, Side.SELL, state.position.base, price, tag="exit")
            return state, [sell] if sell else []
        return state, []
'''

TEST_TEMPLATE = '''"""Tests of {name} (written by `automata new-strategy`): run them from the directory that holds
strategies_user/, with `.venv/bin/python -m pytest -q path/to/this_file.py`.

The Driver of shared.strategy.testing plays the exchange by hand: feed candles and fills, read
the commands the strategy answers with. Then a short backtest runs it over synthetic candles,
as `automata backtest` would.
"""

from __future__ import annotations

from decimal import Decimal

from backtest.config import BacktestConfig, make_filters, to_setup
from backtest.engine import run_backtest
from backtest.report import build_report
from backtest.series import synthetic
from shared.messages import Notification, OrderStatus, OrderType, PlaceOrder, Side
from shared.strategy import load_strategy
from shared.strategy.testing import Driver

SPEC = "{spec}"  # as a bots file names it
PARAMS = {{"lookback": 3, "dip": "0.01", "quote_amount": "50", "take_profit": "0.02"}}


def test_it_buys_a_dip_then_sells_at_the_take_profit():
    d = Driver(load_strategy(SPEC), PARAMS)
    for _ in range(3):
        assert d.candle("100", "101", "99", "100") == []  # no dip: nothing
    [buy] = d.candle("100", "100", "98", "98.5")  # 1.5 % under the highest close
    assert isinstance(buy, PlaceOrder) and buy.side == Side.BUY and buy.order_type == OrderType.MARKET
    [sell] = d.fill(buy.cid, price="98.5")
    assert sell.side == Side.SELL and sell.price == Decimal("100.47")  # 98.5 x 1.02
    assert sell.quantity == d.state.position.base
    [note] = d.fill(sell.cid)
    assert isinstance(note, Notification) and d.state.trades == 1 and d.state.position.base == 0


def test_dust_left_by_a_fee_in_base_does_not_block_the_next_trade():
    d = Driver(load_strategy(SPEC), PARAMS)
    for _ in range(3):
        d.candle("100", "101", "99", "100")
    [buy] = d.candle("100", "100", "98", "98.5")
    # the venue took its fee in BTC: 0.1 % of 0.50761
    fee = {{"fee": "0.00050761", "fee_asset": "BTC"}}
    [sell] = d.update(buy.cid, OrderStatus.FILLED, cum_qty="0.50761", cum_quote="49.999585", **fee)
    assert sell.quantity == Decimal("0.50710")  # rounded down to the step: 0.00000239 BTC stays
    d.fill(sell.cid)
    assert 0 < d.state.position.base < d.filters.step_size
    for _ in range(3):
        assert d.candle("100", "101", "99", "100") == []
    [again] = d.candle("100", "100", "98", "98.5")
    assert again.side == Side.BUY


def test_bad_params_are_refused_by_name():
    strategy = load_strategy(SPEC)
    for bad in ({{"dip": "2"}}, {{"take_profit": "-0.01"}}, {{"lookback": 0}}, {{"no_such_param": 1}}):
        try:
            strategy.parse_params(bad)
        except ValueError as exc:
            assert next(iter(bad)) in str(exc), exc  # the error names the field
            continue
        raise AssertionError(f"accepted {{bad}}")


def test_it_backtests():
    strategy = load_strategy(SPEC)
    cfg = BacktestConfig(
        strategy=strategy,
        params=strategy.parse_params({{}}),
        filters=make_filters("BTCUSDT", None, "test"),
    )
    series = synthetic(3000, seed=5, vol=0.002)
    report = build_report(run_backtest(to_setup(cfg), series), include_fills=False)
    assert report["buys"] > 0 and report["orders_rejected"] == 0  # it traded on a random walk
'''
