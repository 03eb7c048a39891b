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
from rich.progress import BarColumn, Progress, TaskProgressColumn, TextColumn, TimeRemainingColumn
from rich.table import Table

from backtest.config import BacktestConfig, BacktestConfigError, load_backtest_config, to_setup
from backtest.engine import BacktestError, run_backtest
from backtest.report import build_report
from backtest.series import CandleSeries, SeriesError, interval_name, parse_time
from backtest.sweep import SUMMARY_KEYS, parse_sweep, run_sweep
from cli import paths
from cli.common import require_matplotlib
from shared.candle_files import CandleFileError

LONG_RUN = 200_000  # candles from which a progress bar is shown (on a terminal)

backtest_app = typer.Typer(add_completion=False, pretty_exceptions_enable=False)


def _fail(message: str) -> typer.Exit:
    Console(stderr=True).print(f"[red]error:[/red] {message}", highlight=False)
    return typer.Exit(2)


def load_series(path: Path, start: str | None, end: str | None) -> CandleSeries:
    try:
        series = CandleSeries.from_csv(path).between(parse_time(start), parse_time(end))
    except (OSError, CandleFileError, SeriesError, ValueError) as exc:
        raise _fail(f"{path}: {exc}") from None
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


def _money(value: str, places: int = 2) -> str:
    return f"{Decimal(value):,.{places}f}"


def print_summary(report: dict[str, Any], console: Console, *, cycles: int = 30) -> None:
    """The report as a person reads it: key figures, then the per-cycle table."""
    q = report["symbol"]
    table = Table(
        title=f"{report['strategy']} on {q} {report['interval']}, {report['from']} → {report['to']}"
    )
    table.add_column("figure")
    table.add_column("value", justify="right")
    rows = [
        ("net profit", f"{_money(report['net_profit'])} ({report['return_pct']:.2f} %)"),
        (
            "realised / unrealised",
            f"{_money(report['realised_profit'])} / {_money(report['unrealised_profit'])}",
        ),
        ("closed cycles", f"{report['cycles']}{' (+1 open)' if report['open_cycle'] else ''}"),
        ("win rate", f"{report['win_rate'] * 100:.1f} %"),
        ("safety fills", str(report["safety_fills"])),
        ("max drawdown", f"{report['max_drawdown'] * 100:.2f} % ({report['max_drawdown_quote']:,.2f})"),
        ("most quote committed", _money(report["max_committed"])),
        ("fees paid", _money(report["fees"])),
        ("time in market", f"{report['time_in_market'] * 100:.1f} %"),
        (
            "buy and hold",
            f"{_money(report['buy_and_hold_profit'])} ({report['buy_and_hold_return_pct']:.2f} %)",
        ),
        ("final balances", f"{_money(report['final_quote'])} quote + {Decimal(report['final_base'])} base"),
        ("orders placed / rejected", f"{report['orders_placed']} / {report['orders_rejected']}"),
        (
            "candles",
            f"{report['candles']:,} ({report['candles_processed']:,} handled, {report['path']} path, "
            f"{report['elapsed_s']:.3f} s)",
        ),
    ]
    for name, value in rows:
        table.add_row(name, value)
    console.print(table)
    shown = report["cycles_table"] if cycles <= 0 else report["cycles_table"][-cycles:]
    if not shown:
        return
    ct = Table(title=f"cycles ({len(shown)} of {len(report['cycles_table'])} shown)")
    for col in ("#", "start", "end", "buys", "safety", "spent", "received", "fees", "profit"):
        ct.add_column(col, justify="right")
    for c in shown:
        ct.add_row(
            str(c["number"]),
            c["start"],
            c["end"] or "open",
            str(c["buys"]),
            str(c["safety_fills"]),
            _money(c["spent"]),
            _money(c["received"]),
            _money(c["fees"], 4),
            _money(c["profit"], 4),
        )
    console.print(ct)


def print_decisions(report: dict[str, Any], console: Console, last: int) -> None:
    """The bot's last decisions (what it did or chose not to do, and why), then the warnings."""
    shown = report["decisions"][-last:] if last > 0 else []
    if shown:
        console.print(f"decisions (last {len(shown)}):", highlight=False)
        for d in shown:
            console.print(f"  {d['time']}  {d['text']}", markup=False, highlight=False)
    for line in report["warnings"]:
        console.print(f"[yellow]warning:[/yellow] {line}", highlight=False)


def _cell(key: str, value: Any) -> str:
    if key in ("win_rate", "max_drawdown", "time_in_market"):
        return f"{value * 100:.1f} %"
    if key == "return_pct":
        return f"{value:.2f} %"
    if isinstance(value, str):
        return _money(value)
    return str(value)


def _print_sweep(results: list[dict[str, Any]], console: Console) -> None:
    ranked = sorted(results, key=lambda r: Decimal(r["net_profit"]), reverse=True)
    table = Table(title=f"sweep: {len(results)} runs, best first")
    table.add_column("params", no_wrap=True)
    for key in SUMMARY_KEYS:
        table.add_column(key.replace("_", " "), justify="right")
    for r in ranked:
        cells = [_cell(key, r[key]) for key in SUMMARY_KEYS]
        table.add_row(" ".join(f"{k}={v}" for k, v in r["params"].items()), *cells)
    console.print(table)


def _overrides(cfg: BacktestConfig, capital: str | None, fee_asset: str | None) -> BacktestConfig:
    changes: dict[str, Any] = {}
    if capital is not None:
        try:
            changes["capital"] = Decimal(capital)
        except InvalidOperation:
            raise _fail(f"--capital {capital!r} is not a number") from None
    if fee_asset is not None:
        if fee_asset not in ("quote", "base"):
            raise _fail("--fee-asset must be quote or base")
        changes["fee_asset"] = fee_asset
    return BacktestConfig(**{**cfg.__dict__, **changes}) if changes else cfg


@backtest_app.command()
def backtest_command(
    config: Path = typer.Argument(..., help="strategy file or bot config (TOML or JSON)"),
    data: Path = typer.Option(..., "--data", help="candle CSV (Binance kline layout or open_time,open,...)"),
    start: str = typer.Option(None, "--from", help="first candle (ISO date/time, UTC, or epoch ms)"),
    end: str = typer.Option(None, "--to", help="end of the run, exclusive"),
    json_out: Path = typer.Option(None, "--json", help="write the JSON report (with every fill) here"),
    chart: Path = typer.Option(None, "--chart", help="write an equity + trades chart PNG here"),
    bot: str = typer.Option(None, "--bot", help="which bot of a bot config"),
    capital: str = typer.Option(None, "--capital", help="quote balance at the start (default 10000)"),
    fee_asset: str = typer.Option(
        None, "--fee-asset", help="quote (default) or base: where buy fees are charged"
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
    console = Console(width=max(Console().width, 160))
    if chart is not None:
        require_matplotlib()
    try:
        cfg = _overrides(load_backtest_config(paths.home().saved_plan(config), bot=bot), capital, fee_asset)
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
    print_summary(report, console, cycles=cycles)
    print_decisions(report, console, decisions)
    if json_out is not None:
        json_out.write_text(json.dumps(report, indent=1) + "\n", encoding="utf-8")
        console.print(f"JSON report: {json_out}")
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
    _print_sweep(results, console)
    if out is not None:
        out.write_text(json.dumps({"sweep": results}, indent=1) + "\n", encoding="utf-8")
        console.print(f"JSON report: {out}")


if __name__ == "__main__":
    backtest_app()
