"""Parameter sweeps: every combination of some params, run in parallel across the cores.

`--sweep take_profit=0.02,0.03,0.035 --sweep step=0.01,0.015` runs 6 backtests. Workers are
forked after the candles are loaded, so each one shares them instead of reading the file again.
"""

from __future__ import annotations

import itertools
import multiprocessing as mp
import os
from collections.abc import Callable
from typing import Any

from backtest.config import BacktestConfig, BacktestConfigError, to_setup, with_params
from backtest.engine import run_backtest
from backtest.report import build_report
from backtest.series import CandleSeries

SUMMARY_KEYS = (
    "net_profit",
    "return_pct",
    "cycles",
    "safety_fills",
    "win_rate",
    "max_drawdown",
    "max_committed",
    "fees",
    "time_in_market",
)

_JOB: tuple[BacktestConfig, CandleSeries] | None = None


def parse_sweep(specs: list[str]) -> list[dict[str, str]]:
    """['a=1,2', 'b=x,y'] -> the 4 combinations as dicts (values stay text; params parse them)."""
    axes: list[tuple[str, list[str]]] = []
    for spec in specs:
        name, sep, values = spec.partition("=")
        items = [v.strip() for v in values.split(",") if v.strip()]
        if not sep or not name.strip() or not items:
            raise BacktestConfigError(f"--sweep {spec!r}: expected NAME=V1,V2,...")
        axes.append((name.strip(), items))
    names = [a[0] for a in axes]
    return [dict(zip(names, combo, strict=True)) for combo in itertools.product(*(a[1] for a in axes))]


def _run_point(point: dict[str, str]) -> dict[str, Any]:
    assert _JOB is not None
    cfg, series = _JOB
    result = run_backtest(to_setup(with_params(cfg, point)), series)
    report = build_report(result, include_fills=False)
    return {"params": point, **{k: report[k] for k in SUMMARY_KEYS}}


def run_sweep(
    cfg: BacktestConfig,
    series: CandleSeries,
    points: list[dict[str, str]],
    *,
    jobs: int | None = None,
    on_done: Callable[[int, int], None] | None = None,
) -> list[dict[str, Any]]:
    """Summaries of every point, in the order given. jobs=1 runs in this process."""
    global _JOB
    for point in points:  # a bad value fails here, before any worker starts
        with_params(cfg, point)
    _JOB = (cfg, series)
    jobs = max(1, min(jobs or os.cpu_count() or 1, len(points)))
    results: list[dict[str, Any]] = []
    try:
        if jobs == 1 or "fork" not in mp.get_all_start_methods():
            for point in points:
                results.append(_run_point(point))
                if on_done:
                    on_done(len(results), len(points))
            return results
        with mp.get_context("fork").Pool(jobs) as pool:
            for summary in pool.imap(_run_point, points):
                results.append(summary)
                if on_done:
                    on_done(len(results), len(points))
        return results
    finally:
        _JOB = None
