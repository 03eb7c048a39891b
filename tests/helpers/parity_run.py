"""One parity run: every case through the backtester, then all of them at once through the live
stack (tests/helpers/parity_stack.py), and the comparison a parity test asserts for each case.

A case is one bot of one bots file on its own paper venue: the venue replays `venue_csv`
(`warmup` + 1 candles of history, then the live ones), the backtester runs `live_csv` (the
live candles alone) with the venue account's money.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import redis

from backtest.engine import RunResult
from shared.candle_files import read_candles
from shared.matching.symbols import CATALOG
from shared.redis_server import RedisServer
from tests.helpers.bots import write_bots
from tests.helpers.parity import (
    RecordingBacktester,
    backtest_bot,
    backtest_fills,
    backtest_notes,
    command_key,
    comparable_state,
    strategy_notes,
    venue_fills,
)
from tests.helpers.parity_stack import LiveBot, LiveStack, Recorded
from tests.helpers.procs import base_env


@dataclass(frozen=True)
class Case:
    name: str
    entry: dict[str, Any]  # the bot's table in the bots file (its venue its own)
    venue_csv: Path
    live_csv: Path
    quote: Decimal  # the venue account's money, and the backtest's capital and base
    base: Decimal


@dataclass
class Outcome:
    result: RunResult
    engine: RecordingBacktester
    live: Recorded
    codes: dict[str, int]
    calls: int
    live_s: float


def run_cases(cases: list[Case], tmp: Path, warmup: int, label: str = "") -> dict[str, Outcome]:
    """Backtest each case, then drive one live stack holding them all; the outcome per case."""
    bots_file = write_bots(tmp / "bots.toml", *(c.entry for c in cases))
    backtests = {c.name: backtest_bot(bots_file, c.entry["id"], c.live_csv, capital=c.quote, base=c.base)
                 for c in cases}  # fmt: skip
    bots = []
    for c in cases:
        result, engine = backtests[c.name]
        inside, closing = engine.busy(result)
        bots.append(LiveBot(id=c.entry["id"], venue=c.entry["venue"], data=c.venue_csv,
                            live=list(read_candles(c.live_csv)), balances=f"USDT={c.quote},BTC={c.base}",
                            busy=inside, closing=closing))  # fmt: skip
    server = RedisServer(tmp / "redis").start()
    r = redis.Redis.from_url(server.url)
    started = time.monotonic()
    stack = LiveStack(base_env(server.url), r, tmp, bots)
    try:
        stack.start(warmup, bots_file)
        calls = stack.drive()
        recorded = {c.name: stack.record(b) for c, b in zip(cases, bots, strict=True)}
    finally:
        codes = stack.stop()
        r.close()
        server.kill()
    live_s = time.monotonic() - started
    print(f"\nparity {label}: {calls} venue calls per venue, live {live_s:.1f}s")
    return {c.name: Outcome(*backtests[c.name], recorded[c.name], codes, calls, live_s) for c in cases}


def assert_same(run: Outcome) -> None:
    """The backtest and the live stack did exactly the same (see test_parity_live's docstring)."""
    result, engine, live = run.result, run.engine, run.live
    assert run.codes == dict.fromkeys(run.codes, 0), run.codes
    assert live.filters == CATALOG["BTCUSDT"].filters  # what the runner traded with is what the backtest used

    # same order commands (lists with their legs), in order
    assert [command_key(c) for c in live.commands] == [command_key(c) for c, _ in engine.sent]

    # same fills, in order, at the same tick of the same candle, with the same commission
    assert venue_fills(live.journal) == backtest_fills(result)

    # same final state: position, realised profit, counters, open orders, the smart trade
    live_state = result.setup.strategy.decode_state(json.dumps(live.doc["state"]).encode())
    assert live_state.position == result.state.position
    assert comparable_state(live_state) == comparable_state(result.state)

    # the same money at the venue as in the backtest
    total = {a: Decimal(b["free"]) + Decimal(b["locked"]) for a, b in live.balances.items()}
    assert (total["BTC"], total["USDT"]) == (result.final_base, result.final_quote)

    # the notifier delivered what the backtest notified
    assert strategy_notes(result.setup.bot, live.notes) == backtest_notes(result.notifications)
