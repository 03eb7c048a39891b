"""Figures of a backtest run: profit, cycles, drawdown, fees, exposure, buy-and-hold.

Money (profit, fees, balances, committed quote) is exact Decimal computed from the fills;
the equity curve and the ratios derived from it (drawdown, time in market) are floats, as
they only describe the run. A cycle (round trip) runs from the first buy out of a flat
position until the position is flat again (what is left cannot be sold: under the step size
or the min notional).
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import msgspec
import numpy as np

from backtest.advice import warnings
from backtest.engine import Fill, RunResult
from backtest.series import iso
from shared.messages import Decision, Side
from shared.money import ZERO
from shared.strategy import FillDelta, Position, apply_fill
from shared.strategy.params import dump_params
from shared.strategy.position import is_flat

DECISIONS_IN_REPORT = 1000  # the last decisions the JSON report keeps


class Cycle(msgspec.Struct):
    number: int
    start: int  # ms
    end: int | None  # ms, None while still open
    start_index: int
    end_index: int | None
    buys: int = 0
    sells: int = 0
    safety_fills: int = 0
    spent: Decimal = ZERO  # quote paid for buys (fees excluded)
    received: Decimal = ZERO  # quote from sells (fees excluded)
    fees: Decimal = ZERO  # in quote (base fees valued at their fill price)
    profit: Decimal = ZERO  # realised, net of fees
    max_cost: Decimal = ZERO  # most quote in the position during the cycle


def fee_in_quote(fill: Fill, quote_asset: str) -> Decimal:
    return fill.fee if fill.fee_asset == quote_asset else fill.fee * fill.price


def cycles_of(result: RunResult) -> list[Cycle]:
    """Round trips, replaying the fills through the same position bookkeeping as the bots."""
    f = result.setup.filters
    pos = Position(base=result.setup.base)
    cycles: list[Cycle] = []
    current: Cycle | None = None
    realised_start = ZERO
    for fill in result.fills:
        if current is None:
            current = Cycle(len(cycles) + 1, fill.ts, None, fill.index, None)
            realised_start = pos.realised
        pos = apply_fill(
            pos,
            FillDelta(fill.side, fill.qty, fill.quote, fill.fee, fill.fee_asset),
            f.base_asset,
            f.quote_asset,
        )
        current.fees += fee_in_quote(fill, f.quote_asset)
        current.max_cost = max(current.max_cost, pos.cost)
        if fill.side == Side.BUY:
            current.buys += 1
            current.spent += fill.quote
            current.safety_fills += fill.tag.startswith("so")
        else:
            current.sells += 1
            current.received += fill.quote
            if is_flat(f, pos, fill.price):
                current.end, current.end_index = fill.ts, fill.index
                current.profit = pos.realised - realised_start
                cycles.append(current)
                current = None
    if current is not None:
        current.profit = pos.realised - realised_start
        cycles.append(current)
    return cycles


def holdings(result: RunResult) -> tuple[np.ndarray, np.ndarray]:
    """Base and quote held at each candle's close (floats, from the exact balances after fills)."""
    n = len(result.series)
    if not result.fills:
        return np.full(n, float(result.setup.base)), np.full(n, float(result.setup.capital))
    idx = np.array([f.index for f in result.fills], dtype=np.int64)
    base_after = np.array([float(f.base_after) for f in result.fills])
    quote_after = np.array([float(f.quote_after) for f in result.fills])
    last = np.searchsorted(idx, np.arange(n), side="right") - 1
    has = last >= 0
    pick = np.where(has, last, 0)
    base = np.where(has, base_after[pick], float(result.setup.base))
    quote = np.where(has, quote_after[pick], float(result.setup.capital))
    return base, quote


def equity_curve(result: RunResult) -> np.ndarray:
    base, quote = holdings(result)
    return quote + base * result.series.floats(result.series.close)


def max_drawdown(equity: np.ndarray) -> tuple[float, float]:
    """(largest fall from a peak as a fraction of the peak, that fall in quote)."""
    if len(equity) == 0:
        return 0.0, 0.0
    peak = np.maximum.accumulate(equity)
    fall = peak - equity
    with np.errstate(divide="ignore", invalid="ignore"):
        frac = np.where(peak > 0, fall / peak, 0.0)
    return float(frac.max()), float(fall.max())


def build_report(result: RunResult, *, data: str = "", include_fills: bool = True) -> dict[str, Any]:
    s, sr = result.setup, result.series
    f = s.filters
    first_open, last_close = sr.price(sr.open[0]), sr.price(sr.close[-1])
    initial = s.capital + s.base * first_open
    final = result.final_quote + result.final_base * last_close
    net = final - initial
    cycles = cycles_of(result)
    closed = [c for c in cycles if c.end is not None]
    wins = sum(1 for c in closed if c.profit > 0)
    fees = sum((fee_in_quote(x, f.quote_asset) for x in result.fills), ZERO)
    realised = sum((c.profit for c in closed), ZERO)
    equity = equity_curve(result)
    dd, dd_quote = max_drawdown(equity)
    base_held, _ = holdings(result)
    held = base_held * sr.floats(sr.close) >= max(float(f.min_notional), 1e-12)
    hold_qty = s.capital * (1 - s.fee_rate) / first_open + s.base
    hold_final = hold_qty * last_close * (1 - s.fee_rate)
    state = result.state
    report: dict[str, Any] = {
        "strategy": s.strategy.name,
        "params": _params(s.params),
        "symbol": f.symbol,
        "interval": s.interval,
        "data": data,
        "from": iso(int(sr.open_time[0])),
        "to": iso(int(sr.open_time[-1]) + sr.interval_ms),
        "candles": len(sr),
        "candles_processed": result.processed,
        "path": "fast" if result.fast else "plain",
        "elapsed_s": round(result.elapsed_s, 4),
        "fee_rate": str(s.fee_rate),
        "market_fill": s.market_fill,
        "participation": str(s.participation),
        "max_fill": None if s.max_fill is None else str(s.max_fill),
        "initial_quote": str(s.capital),
        "initial_base": str(s.base),
        "final_quote": str(result.final_quote),
        "final_base": str(result.final_base),
        "final_price": str(last_close),
        "final_equity": str(final),
        "net_profit": str(net),
        "return_pct": float(net / initial * 100) if initial else 0.0,
        "realised_profit": str(realised),
        "unrealised_profit": str(net - realised),
        "cycles": len(closed),
        "open_cycle": len(cycles) > len(closed),
        "win_rate": wins / len(closed) if closed else 0.0,
        "safety_fills": sum(c.safety_fills for c in cycles),
        "buys": sum(1 for x in result.fills if x.side == Side.BUY),
        "sells": sum(1 for x in result.fills if x.side == Side.SELL),
        "max_drawdown": dd,
        "max_drawdown_quote": dd_quote,
        "fees": str(fees),
        "max_committed": str(result.max_committed),
        "time_in_market": float(held.mean()) if len(held) else 0.0,
        "buy_and_hold_profit": str(hold_final - initial),
        "buy_and_hold_return_pct": float((hold_final - initial) / initial * 100) if initial else 0.0,
        "orders_placed": result.orders_placed,
        "orders_rejected": len(result.rejected),
        "rejections": [f"{u.cid}: {u.reason}" for u in result.rejected[:20]],
        "notifications": len(result.notifications),
        "warnings": warnings(result),
        "decisions": [_decision_json(d) for d in result.decisions[-DECISIONS_IN_REPORT:]],
        "cycles_table": [_cycle_json(c) for c in cycles],
        "state_mode": str(getattr(state, "mode", "")),
    }
    if include_fills:
        report["fills"] = [_fill_json(x) for x in result.fills]
    return report


def _decision_json(d: Decision) -> dict[str, Any]:
    return {"time": iso(d.ts), "text": d.text, **({"topic": d.topic} if d.topic else {}), **d.fields}


def _params(params: Any) -> Any:
    if isinstance(params, msgspec.Struct):
        return msgspec.to_builtins(dump_params(params))
    return params


def _cycle_json(c: Cycle) -> dict[str, Any]:
    out = msgspec.to_builtins(c)
    out["start"] = iso(c.start)
    out["end"] = iso(c.end) if c.end is not None else None
    return out


def _fill_json(x: Fill) -> dict[str, Any]:
    out = msgspec.to_builtins(x)
    out["time"] = iso(x.ts)
    return out
