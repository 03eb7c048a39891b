"""A fingerprint of every output of DCA, grid and fractal_trailing backtests, to prove a speed-up
changes no behaviour: the March 2023 candles (as bench/backtest.py finds them) and a seeded
synthetic series, each by the fast and the plain path. Each run's hash covers its fills, final
state, balances, notifications, decisions, rejections, report and, at every step of the
strategy, the event, the state and commands it gave and the balances it was shown (reprs:
Decimals by their digits, so 1.0 and 1 differ).

Run before and after a change: `.venv/bin/python bench/backtest_fingerprint.py before.json`,
then `... after.json before.json` compares (exit status 1 on any difference). Without a file
(as `make bench` runs it) it prints the hashes, then one line with a JSON object of them.
"""

from __future__ import annotations

import hashlib
import json
import sys
from decimal import Decimal as D
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if sys.path[0] != str(ROOT):  # `python bench/x.py` puts bench/ first, where backtest.py hides the package
    sys.path.insert(0, str(ROOT))

from backtest.engine import Setup, run_backtest  # noqa: E402
from backtest.report import build_report  # noqa: E402
from backtest.series import CandleSeries, parse_time, synthetic  # noqa: E402
from bench.backtest import MARCH  # noqa: E402
from shared.strategy import Strategy, encode_state  # noqa: E402
from shared.strategy.testing import BTC_FILTERS  # noqa: E402
from strategies.dca import DcaStrategy  # noqa: E402
from strategies.fractal_trailing import FractalTrailingStrategy  # noqa: E402
from strategies.grid import GridStrategy  # noqa: E402


def fingerprint(
    strategy: Strategy[Any, Any], raw: dict[str, Any], series: CandleSeries, fast: bool, **money: D
) -> str:
    log: list[str] = []
    inner = strategy.step

    def step(params: Any, state: Any, event: Any, ctx: Any) -> Any:
        new, cmds = inner(params, state, event, ctx)
        log.extend((repr(event), repr(new), repr(cmds), repr(ctx.balances)))
        return new, cmds

    strategy.step = step  # type: ignore[method-assign]
    p = strategy.parse_params(raw)
    setup = Setup(
        strategy=strategy, params=p, filters=BTC_FILTERS, fee_rate=getattr(p, "fee", D("0.001")), **money
    )
    r = run_backtest(setup, series, fast=fast)
    report = {k: v for k, v in build_report(r).items() if k != "elapsed_s"}
    parts = [
        repr(r.fills), encode_state(r.state).decode(), repr(r.state),
        repr((r.final_base, r.final_quote, r.max_committed)), repr(r.notifications), repr(r.decisions),
        repr((r.orders_placed, r.rejected, r.processed)), json.dumps(report, sort_keys=True, default=repr),
    ]  # fmt: skip
    return hashlib.sha256("\n".join(parts + log).encode()).hexdigest()


def main() -> int:
    march = CandleSeries.from_csv(MARCH) if MARCH.exists() else synthetic(30_240, seed=3)
    syn = synthetic(20_000, seed=7, vol=0.003)
    lo, hi = float(syn.price(syn.low.min())) * 0.98, float(syn.price(syn.high.max())) * 1.01
    cases: list[tuple[str, type[Strategy[Any, Any]], dict[str, Any], CandleSeries, dict[str, D]]] = [
        ("dca-march", DcaStrategy, {}, march, {}),
        ("dca-march-2", DcaStrategy, {"step": "0.004", "take_profit": "0.006", "take_profit_min": "0.003",
                                      "order_size_multiplier": "1.3"}, march, {}),
        ("dca-syn", DcaStrategy, {}, syn, {}),
        ("grid-march-stop", GridStrategy, {"lower": 21000, "upper": 25000, "levels": 11, "quote_per_level": 200,
                                           "stop_loss": 20500, "fee": "0"}, march, {"capital": D(20000)}),
        ("grid-march", GridStrategy, {"lower": 19500, "upper": 28500, "levels": 30, "quote_per_level": 300},
         march, {"capital": D(20000)}),
        ("grid-syn", GridStrategy, {"lower": lo, "upper": hi, "levels": 25, "quote_per_level": 300}, syn,
         {"capital": D(20000)}),
        ("fractal-march", FractalTrailingStrategy, {}, march.between(parse_time("2023-03-10"), None),
         {"capital": D(0), "base": D("0.5")}),
    ]  # fmt: skip
    out = {}
    for name, kind, raw, series, money in cases:
        for fast in (True, False):
            key = f"{name}/{'fast' if fast else 'plain'}"
            out[key] = fingerprint(kind(), raw, series, fast, **money)
            print(key, out[key][:16], flush=True)
    print(json.dumps(out))
    if len(sys.argv) > 1:
        Path(sys.argv[1]).write_text(json.dumps(out, indent=1))
    if len(sys.argv) > 2:
        before = json.loads(Path(sys.argv[2]).read_text())
        differ = sorted(k for k in out.keys() | before.keys() if out.get(k) != before.get(k))
        print("identical" if not differ else f"DIFFERENT: {', '.join(differ)}")
        return 1 if differ else 0
    return 0


if __name__ == "__main__":
    sys.exit(main())
