"""Backtest-vs-live parity, the backtest side: the candles, the settings that make the two fill
models agree today, a backtest that records what the strategy sent, and what is compared.

The live side (one paper venue per bot, every service a real process, driven one step at a
time) is tests/helpers/parity_stack.py.
"""

from __future__ import annotations

import dataclasses
import json
from decimal import Decimal
from pathlib import Path
from typing import Any

import msgspec
import numpy as np

from backtest.config import load_backtest_config, to_setup
from backtest.engine import TICKS, Backtester, RunResult, Setup
from backtest.series import CandleSeries
from services.notifier.webhook import body_of
from shared.matching.symbols import CATALOG
from shared.messages import CancelOrder, CancelOrderList, Notification, PlaceOrder, PlaceOrderList

SYMBOL = "BTCUSDT"
ORDER_MESSAGES = (PlaceOrder, CancelOrder, PlaceOrderList, CancelOrderList)  # what the venue acts on
TICK_OFFSETS_MS = (0, 15_000, 30_000, 59_999)  # the venue's four steps in a minute (market.py)
MINUTE = 60_000


# --- candles ---------------------------------------------------------------------------------


def write_slice(src: Path, dst: Path, start: int, count: int) -> Path:
    """Rows [start, start + count) of a candle CSV (header kept), byte for byte."""
    with src.open() as fh:
        header = fh.readline()
        rows = [line for i, line in enumerate(fh) if start <= i < start + count]
    assert len(rows) == count, f"{src} has fewer than {start + count} rows"
    dst.write_text(header + "".join(rows))
    return dst


def random_walk(dst: Path, *, seed: int, count: int, start_ms: int, price: float, drift: list[float],
                vol: float) -> Path:  # fmt: skip
    """`count` 1-minute candles of a seeded random walk (log returns with a drift per segment:
    `drift` is split evenly over the run), each with a high, a low and a volume, as a CSV the
    paper venue replays and the backtester reads. Prices on the 0.01 tick, volumes on 1e-5."""
    rng = np.random.default_rng(seed)
    mu = np.repeat(np.array(drift), -(-count // len(drift)))[:count]
    closes = price * np.exp(np.cumsum(mu + vol * rng.standard_normal(count)))
    opens = np.concatenate([[price], closes[:-1]])
    wick = np.abs(vol * rng.standard_normal((2, count))) * 0.6
    highs = np.maximum(opens, closes) * (1 + wick[0])
    lows = np.minimum(opens, closes) * (1 - wick[1])
    # thin volume (median 0.1 BTC a minute, a twentieth of the minutes without trades), so a
    # venue sharing out each step's volume fills some orders in parts or not at all
    volumes = rng.lognormal(np.log(0.1), 1.5, count) * (rng.random(count) >= 0.05)
    rows = ["open_time,open,high,low,close,volume"]
    for i in range(count):
        o, h, lo, c = (f"{x:.2f}" for x in (opens[i], highs[i], lows[i], closes[i]))
        rows.append(f"{start_ms + i * MINUTE},{o},{h},{lo},{c},{volumes[i]:.5f}")
    dst.write_text("\n".join(rows) + "\n")
    return dst


def write_candles(dst: Path, rows: list[tuple[str, ...]], *, start_ms: int, volume: str) -> Path:
    """Hand-written 1-minute candles (open, high, low, close[, volume]; `volume` where a row has
    none), as a CSV the paper venue replays and the backtester reads."""
    lines = ["open_time,open,high,low,close,volume"]
    lines += [
        f"{start_ms + i * MINUTE},{','.join(r[:4])},{r[4] if len(r) > 4 else volume}"
        for i, r in enumerate(rows)
    ]
    dst.write_text("\n".join(lines) + "\n")
    return dst


def tick_of(candle_open: int, ts: int) -> int:
    """Which of the venue's four steps a market time is (fills carry the step's time)."""
    return TICK_OFFSETS_MS.index(ts - candle_open)


# --- the backtest, recording commands --------------------------------------------------------


class RecordingBacktester(Backtester):
    """The backtester, unchanged, plus a log of every order command and the price at that moment."""

    def __init__(self, setup: Setup, series: CandleSeries) -> None:
        self.sent: list[tuple[Any, Decimal | None]] = []
        self.ticks: list[int] = []  # the tick (TICKS x candle index + step) each command was sent at
        super().__init__(setup, series)

    def _apply(self, commands: list[Any], tick: int, ts: int) -> None:
        orders = [c for c in commands if isinstance(c, ORDER_MESSAGES)]
        self.sent += [(c, self.last_price) for c in orders]
        self.ticks += [tick] * len(orders)
        super()._apply(commands, tick, ts)

    def busy(self, result: RunResult) -> tuple[set[int], set[int]]:
        """(candles with a fill or an order command before their close, candles with an order
        command at their close): where the live stack must not move on before the bot has acted."""
        inside = {f.index for f in result.fills} | {t // TICKS for t in self.ticks if t % TICKS != TICKS - 1}
        return inside, {t // TICKS for t in self.ticks if t % TICKS == TICKS - 1}


def backtest_bot(bots_file: Path, bot: str, csv: Path, *, capital: Decimal, base: Decimal) -> tuple[RunResult, RecordingBacktester]:  # fmt: skip
    """The backtester on one bot of the bots file the live runner reads, with the filters the
    venue publishes and the venue account's money; no other setting (the defaults are the venue's)."""
    cfg = load_backtest_config(bots_file, bot=bot)
    cfg = dataclasses.replace(cfg, filters=CATALOG[SYMBOL].filters, capital=capital, base=base)
    setup = to_setup(cfg)
    engine = RecordingBacktester(setup, CandleSeries.from_csv(csv))
    return engine.run(fast=False), engine


# --- what is compared ------------------------------------------------------------------------


def command_key(cmd: Any) -> tuple[Any, ...]:
    """What must be equal between a backtest command and a live one (not its wall-clock ts); a
    list with each leg's terms, in the list's leg order."""
    if isinstance(cmd, CancelOrder):
        return ("CANCEL", cmd.cid)
    if isinstance(cmd, CancelOrderList):
        return ("CANCEL_LIST", cmd.list_cid)
    if isinstance(cmd, PlaceOrderList):
        return ("PLACE_LIST", cmd.list_cid, str(cmd.kind), tuple(command_key(leg) for leg in cmd.legs))
    return (
        "PLACE", cmd.cid, str(cmd.side), str(cmd.order_type), cmd.price, cmd.quantity,
        cmd.quote_quantity, cmd.stop_price,
    )  # fmt: skip


def backtest_fills(result: RunResult) -> list[tuple]:
    """(candle open, tick, cid, side, price, qty, fee, fee asset) of every backtest fill."""
    return [
        (int(result.series.open_time[f.index]), f.tick, f.cid, f.side, f.price, f.qty, f.fee, f.fee_asset)
        for f in result.fills
    ]


def venue_fills(journal: list[dict]) -> list[tuple]:
    """The venue's trades in the same shape as backtest_fills."""
    out = []
    for e in journal:
        if e["kind"] == "trade":
            t = e["trade"]
            candle = t["time"] - t["time"] % MINUTE
            out.append((candle, tick_of(candle, t["time"]), e["client_order_id"], t["side"], Decimal(t["price"]),
                        Decimal(t["qty"]), Decimal(t["commission"]), t["commission_asset"]))  # fmt: skip
    return out


def comparable_state(state: Any) -> Any:
    """The strategy state with its orders' `created` times zeroed: event times differ (the
    backtester stamps ticks at 0/20/40/59.999 s, the venue at 0/15/30/59.999 s). Everything
    else compares by value (Decimal("23805.01") == Decimal("23805.01000000"): the venue
    reports amounts with 8 decimals, the backtester computes them)."""
    orders = {cid: msgspec.structs.replace(o, created=0) for cid, o in state.orders.items()}
    return msgspec.structs.replace(state, orders=orders)


def note_key(doc: dict[str, Any]) -> tuple[Any, ...]:
    """A notification as the webhook delivered it, without its time (the venue's clock); amounts
    in its data compare by value (the venue reports 0.01180000 where the backtest has 0.01180)."""
    return (doc["id"], doc["kind"], doc["level"], doc["text"], _value(doc["data"]))


def _value(v: Any) -> Any:
    if isinstance(v, dict):
        return {k: _value(x) for k, x in v.items()}
    if isinstance(v, list):
        return [_value(x) for x in v]
    try:
        return Decimal(v) if isinstance(v, str) else v
    except ArithmeticError:
        return v


def strategy_notes(bot: str, docs: list[dict[str, Any]]) -> list[tuple[Any, ...]]:
    """The strategy's notifications among those delivered for a bot: not the runner's own
    "in step with the venue" note at its start (the backtester has no runner)."""
    return [note_key(d) for d in docs if not d["id"].startswith(f"{bot}:info:synced-")]


def backtest_notes(notes: list[Notification]) -> list[tuple[Any, ...]]:
    """The backtest's notifications in the webhook's JSON shape."""
    return [note_key(json.loads(body_of(n))) for n in notes]
