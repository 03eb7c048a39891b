"""`automata backtest CONFIG --data FILE [--from --to] [--json FILE] [--chart PNG]`.

Runs the strategy a config names over a candle file with the backtester (backtest/), prints
the report, a per-cycle table, the bot's last decisions (`--decisions N`) and a warning when it
traded nothing (backtest/advice.py), optionally writes the JSON report and a chart. With
`--sweep NAME=V1,V2` (repeatable) it runs every combination in parallel and ranks them.
Register with `app.command("backtest")(backtest_command)`; `python -m cli.backtest` works too.
"""

from __future__ import annotations

import json
import sys
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, Progress, TaskProgressColumn, TextColumn, TimeRemainingColumn
from rich.table import Table

from backtest.config import BacktestConfig, BacktestConfigError, load_backtest_config, to_setup
from backtest.engine import BacktestError, run_backtest
from backtest.report import build_report
from backtest.series import CandleSeries, SeriesError, interval_name, parse_time
from backtest.sweep import SUMMARY_KEYS, parse_sweep, run_sweep
from cli import output, paths
from cli.common import require_matplotlib
from shared.candle_files import CandleFileError
from shared.display import pct, qty, quote, ratio_pct
from shared.matching.engine import MARKET_FILLS

LONG_RUN = 200_000  # candles from which a progress bar is shown (on a terminal)

backtest_app = typer.Typer(add_completion=False, pretty_exceptions_enable=False)


def _fail(message: str) -> typer.Exit:
    Console(stderr=True).print(
        f"[red]error:[/red] {escape(message)}", highlight=False, soft_wrap=True
    )  # one line
    return typer.Exit(2)


def load_series(path: Path, start: str | None, end: str | None) -> CandleSeries:
    try:
        series = CandleSeries.from_csv(path).between(parse_time(start), parse_time(end))
    except (OSError, CandleFileError, SeriesError, ValueError) as exc:
        said = str(exc)  # the reader's errors name the file and line already
        raise _fail(said if said.startswith(f"{path}:") else f"{path}: {said}") from None
    if len(series) == 0:
        raise _fail(f"{path}: no candles between {start or 'the start'} and {end or 'the end'}")
    return series


def _progress_bar(console: Console) -> Progress:
    return Progress(
        TextColumn("[progress.description]{task.description}"),
        BarColumn(),
        TaskProgressColumn(),
        TimeRemainingColumn(),
        console=console,
        transient=True,
    )


def print_summary(report: dict[str, Any], console: Console, *, cycles: int = 30) -> None:
    """The report as a person reads it: key figures, then the per-cycle table."""
    q = report["symbol"]
    table = Table(
        title=f"{report['strategy']} on {q} {report['interval']}, {report['from']} → {report['to']}"
    )
    table.add_column("figure")
    table.add_column("value", justify="right")
    rows = [
        ("net profit", f"{quote(report['net_profit'])} ({pct(_dec(report['return_pct']))})"),
        ("realised / unrealised", f"{quote(report['realised_profit'])} / {quote(report['unrealised_profit'])}"),
        ("closed cycles", f"{report['cycles']}{' (+1 open)' if report['open_cycle'] else ''}"),
        ("win rate", ratio_pct(_dec(report["win_rate"]))),
        *([("safety fills", str(report["safety_fills"]))] if _safety(report) else []),
        ("max drawdown", f"{ratio_pct(_dec(report['max_drawdown']))} ({quote(_dec(report['max_drawdown_quote']))})"),
        ("most quote committed", quote(report["max_committed"])),
        ("fees paid", quote(report["fees"])),
        ("time in market", ratio_pct(_dec(report["time_in_market"]))),
        ("buy and hold", f"{quote(report['buy_and_hold_profit'])} ({pct(_dec(report['buy_and_hold_return_pct']))})"),
        ("final balances", f"{quote(report['final_quote'])} quote + {qty(report['final_base'])} base"),
        ("orders placed / rejected", f"{report['orders_placed']} / {report['orders_rejected']}"),
        (
            "candles",
            f"{report['candles']:,} ({report['candles_processed']:,} handled, {report['path']} path, "
            f"{report['elapsed_s']:.3f} s)",
        ),
    ]  # fmt: skip
    for name, value in rows:
        table.add_row(name, value)
    console.print(table)
    shown = report["cycles_table"] if cycles <= 0 else report["cycles_table"][-cycles:]
    if shown:
        console.print(cycles_table(console, shown, len(report["cycles_table"]), safety=_safety(report)))


def _safety(report: dict[str, Any]) -> bool:
    """Whether the safety-order figures mean anything here: DCA's, or a bot's that tags its
    orders as DCA's safety orders ("so...")."""
    return report["strategy"] == "dca" or int(report["safety_fills"]) > 0


def _dec(value: Any) -> Decimal | str:
    """A report figure as a Decimal (the report writes some as JSON numbers, never as money)."""
    return Decimal(str(value)) if isinstance(value, int | float) else value


def cycles_table(console: Console, shown: list[dict[str, Any]], total: int, *, safety: bool = True) -> Table:
    """One row a cycle; on a narrow console the start sits over the end and spent over received."""
    title = f"cycles ({len(shown)} of {total} shown)"
    wide_cols = (
        "#",
        "start",
        "end",
        "buys",
        *(["safety"] if safety else []),
        "spent",
        "received",
        "fees",
        "profit",
    )
    narrow_cols = (
        "#",
        "start / end",
        "buys / safety" if safety else "buys",
        "spent / received",
        "fees",
        "profit",
    )
    wide, narrow = Table(title=title), Table(title=title)
    for col in wide_cols:
        wide.add_column(col, justify="right", no_wrap=True)
    for col in narrow_cols:
        narrow.add_column(col, justify="right", no_wrap=True)
    for c in shown:
        cells = {"#": str(c["number"]), "start": c["start"], "end": c["end"] or "open", "buys": str(c["buys"]),
                 "safety": str(c["safety_fills"]), "spent": quote(c["spent"]), "received": quote(c["received"]),
                 "fees": quote(c["fees"]), "profit": quote(c["profit"])}  # fmt: skip
        wide.add_row(*(cells[k] for k in wide_cols))
        narrow.add_row(*("\n".join(cells[k] for k in col.split(" / ")) for col in narrow_cols))
    if output.fits(console, wide):
        return wide
    narrow.show_lines = True
    return narrow


def print_decisions(report: dict[str, Any], console: Console, last: int) -> None:
    """The bot's last decisions (what it did or chose not to do, and why), then the warnings."""
    shown = report["decisions"][-last:] if last > 0 else []
    if shown:
        console.print(f"decisions (last {len(shown)}):", highlight=False)
        for d in shown:
            console.print(f"  {d['time']}  {d['text']}", markup=False, highlight=False)
    for line in report["warnings"]:
        console.print(f"[yellow]warning:[/yellow] {escape(line)}", highlight=False)


def _cell(key: str, value: Any) -> str:
    if key in ("win_rate", "max_drawdown", "time_in_market"):
        return ratio_pct(_dec(value))
    if key == "return_pct":
        return pct(_dec(value))
    if isinstance(value, str):
        return quote(value)
    return str(value)


def _print_sweep(results: list[dict[str, Any]], console: Console) -> None:
    """The runs best first: a table, or on a narrow console one paragraph a run (nothing cut)."""
    ranked = sorted(results, key=lambda r: Decimal(r["net_profit"]), reverse=True)
    title = f"sweep: {len(results)} runs, best first"
    table = Table(title=title)
    table.add_column("params", overflow="fold")
    for key in SUMMARY_KEYS:
        table.add_column(key.replace("_", " "), justify="right", no_wrap=True)
    for r in ranked:
        cells = [_cell(key, r[key]) for key in SUMMARY_KEYS]
        table.add_row(" ".join(f"{k}={v}" for k, v in r["params"].items()), *cells)
    if output.fits(console, table):
        console.print(table)
        return
    console.print(f"[bold]{title}[/]")
    for i, r in enumerate(ranked, 1):
        params = " ".join(f"{k}={v}" for k, v in r["params"].items())
        figures = ", ".join(f"{key.replace('_', ' ')} {_cell(key, r[key])}" for key in SUMMARY_KEYS)
        console.print(f"{i}. [bold]{escape(params)}[/]: {escape(figures)}")


def _write_json(doc: dict[str, Any], path: Path, console: Console) -> None:
    """The JSON report to a file, or to stdout for `--json -`."""
    if str(path) == "-":
        output.emit(doc)
        return
    path.write_text(json.dumps(doc, indent=1) + "\n", encoding="utf-8")
    console.print(f"JSON report: {path}")


def _overrides(
    cfg: BacktestConfig, capital: str | None, market_fill: str | None, base: str | None = None
) -> BacktestConfig:
    changes: dict[str, Any] = {}
    for option, name, value in (("--capital", "capital", capital), ("--base", "base", base)):
        if value is None:
            continue
        try:
            changes[name] = Decimal(value)
        except InvalidOperation:
            raise _fail(f"{option} {value!r} is not a number") from None
        if not changes[name].is_finite() or changes[name] < 0:
            raise _fail(f"{option} {value!r} must be a number >= 0")
    if market_fill is not None:
        if market_fill not in MARKET_FILLS:
            raise _fail(f"--market-fill must be one of {', '.join(MARKET_FILLS)}")
        changes["market_fill"] = market_fill
    return BacktestConfig(**{**cfg.__dict__, **changes}) if changes else cfg


@backtest_app.command()
def backtest_command(
    config: Path = typer.Argument(..., help="strategy file or bot config (TOML or JSON)"),
    data: Path = typer.Option(..., "--data", help="candle CSV (Binance kline layout or open_time,open,...)"),
    start: str = typer.Option(None, "--from", help="first candle (ISO date/time, UTC, or epoch ms)"),
    end: str = typer.Option(None, "--to", help="end of the run, exclusive"),
    json_out: Path = typer.Option(
        None,
        "--json",
        help="write the JSON report (with every fill) to this file; `-`: print it instead of the tables",
    ),
    chart: Path = typer.Option(None, "--chart", help="write an equity + trades chart PNG here"),
    bot: str = typer.Option(None, "--bot", help="which bot of a bot config"),
    capital: str = typer.Option(None, "--capital", help="quote balance at the start (default 10000)"),
    base: str = typer.Option(
        None,
        "--base",
        help="base balance at the start (default 0): the position a fractal trailing stop protects",
    ),
    market_fill: str = typer.Option(
        None,
        "--market-fill",
        help="next_step (default, as the paper venue): market orders fill at the next price; now: at the last",
    ),
    sweep: list[str] = typer.Option(None, "--sweep", help="NAME=V1,V2,... ; repeat to sweep several params"),
    jobs: int = typer.Option(0, "--jobs", help="parallel runs of a sweep (default: every core)"),
    plain: bool = typer.Option(False, "--plain", help="reference path: hand every candle to the strategy"),
    cycles: int = typer.Option(30, "--cycles", help="cycles shown in the table (0 = all)"),
    progress: bool = typer.Option(None, "--progress/--no-progress", help="progress bar (default: long runs)"),
    decisions: int = typer.Option(
        10, "--decisions", help="the bot's last N decisions shown under the report (0 = none)"
    ),
) -> None:
    """Backtest a strategy config over historical candles with the live strategy code."""
    console = Console(highlight=False, emoji=False)
    if chart is not None:
        require_matplotlib()
    try:
        cfg = _overrides(
            load_backtest_config(paths.home().saved_plan(config), bot=bot), capital, market_fill, base
        )
    except BacktestConfigError as exc:
        raise _fail(str(exc)) from None
    series = load_series(data, start, end)
    cfg = BacktestConfig(**{**cfg.__dict__, "interval": interval_name(series.interval_ms)})
    if sweep:
        _sweep(cfg, series, sweep, jobs, console, json_out)
        return
    show = progress if progress is not None else (len(series) >= LONG_RUN and sys.stderr.isatty())
    try:
        if show:
            with _progress_bar(Console(stderr=True)) as bar:
                task = bar.add_task("backtest", total=len(series))
                result = run_backtest(
                    to_setup(cfg), series, fast=not plain, progress=lambda i, n: bar.update(task, completed=i)
                )
        else:
            result = run_backtest(to_setup(cfg), series, fast=not plain)
    except BacktestError as exc:
        raise _fail(str(exc)) from None
    report = build_report(result, data=str(data))
    if json_out is None or str(json_out) != "-":
        print_summary(report, console, cycles=cycles)
        print_decisions(report, console, decisions)
    if json_out is not None:
        _write_json(report, json_out, console)
    if chart is not None:
        from backtest.chart import draw_chart

        draw_chart(result, chart)
        console.print(f"chart: {chart}")


def _sweep(
    cfg: BacktestConfig, series: CandleSeries, specs: list[str], jobs: int, console: Console, out: Path | None
) -> None:
    try:
        points = parse_sweep(specs)
        with _progress_bar(Console(stderr=True)) as bar:
            task = bar.add_task("sweep", total=len(points))
            results = run_sweep(
                cfg, series, points, jobs=jobs or None, on_done=lambda i, n: bar.update(task, completed=i)
            )
    except (BacktestConfigError, BacktestError) as exc:
        raise _fail(str(exc)) from None
    if out is None or str(out) != "-":
        _print_sweep(results, console)
    if out is not None:
        _write_json({"sweep": results}, out, console)


if __name__ == "__main__":
    backtest_app()
