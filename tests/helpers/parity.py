"""Backtest-vs-live parity: the live stack on the paper venue, driven step by step, and a backtest
that records what the strategy sent.

The live loop is made deterministic by never moving the market while anything is in flight:
after each step, `LiveStack.settle` waits until the market gateway has published the closed
candle, the runner has applied it and every order event, the order gateway has handled every
command, and every order the venue holds has reached the bot in its current state. Only then
does the next price come, which is exactly the backtester's rule "commands act at once, new
orders match from the next tick".
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

import msgspec
import redis

from backtest.engine import Backtester, RunResult, Setup
from backtest.series import CandleSeries
from shared.candle_files import RawCandle
from shared.codec import decode
from shared.filters import SymbolFilters
from shared.messages import CancelOrder, OrderUpdate, PlaceOrder, SyncBot
from shared.streams import (
    GROUP_ORDER_GATEWAY,
    bot_group,
    bot_state,
    candle_entry_id,
    candles,
    order_commands,
    order_events,
    venue_symbols,
)
from tests.helpers.notifier_fakes import HOOK_SECRET, WebhookReceiver
from tests.helpers.procs import Proc, python, wait_until
from tests.helpers.sim import SimVenue, start_sim, wait_for_sockets

VENUE, SYMBOL, INTERVAL = "sim", "BTCUSDT", "1m"
TICK_OFFSETS_MS = (0, 15_000, 30_000, 59_999)  # the venue's four steps in a minute (market.py)
OPEN = ("NEW", "PARTIALLY_FILLED")


# --- candles ---------------------------------------------------------------------------------


def write_slice(src: Path, dst: Path, start: int, count: int) -> Path:
    """Rows [start, start + count) of a candle CSV (header kept), byte for byte."""
    with src.open() as fh:
        header = fh.readline()
        rows = [line for i, line in enumerate(fh) if start <= i < start + count]
    assert len(rows) == count, f"{src} has fewer than {start + count} rows"
    dst.write_text(header + "".join(rows))
    return dst


def tick_of(candle_open: int, ts: int) -> int:
    """Which of the venue's four steps a market time is (fills carry the step's time)."""
    return TICK_OFFSETS_MS.index(ts - candle_open)


# --- the backtest, recording commands --------------------------------------------------------


class RecordingBacktester(Backtester):
    """The backtester, unchanged, plus a log of every order command and the price at that moment."""

    def __init__(self, setup: Setup, series: CandleSeries) -> None:
        self.sent: list[tuple[Any, Decimal | None]] = []
        super().__init__(setup, series)

    def _apply(self, commands: list[Any], tick: int, ts: int) -> None:
        self.sent += [(c, self.last_price) for c in commands if isinstance(c, PlaceOrder | CancelOrder)]
        super()._apply(commands, tick, ts)


def run_recorded(setup: Setup, series: CandleSeries) -> tuple[RunResult, RecordingBacktester]:
    engine = RecordingBacktester(setup, series)
    return engine.run(fast=False), engine


def command_key(cmd: Any) -> tuple[Any, ...]:
    """What must be equal between a backtest command and a live one (not its wall-clock ts)."""
    if isinstance(cmd, CancelOrder):
        return ("CANCEL", cmd.cid)
    return (
        "PLACE", cmd.cid, str(cmd.side), str(cmd.order_type), cmd.price, cmd.quantity,
        cmd.quote_quantity, cmd.stop_price,
    )  # fmt: skip


def comparable_state(state: Any) -> Any:
    """The strategy state with its orders' `created` times zeroed: the live runner and the
    backtester take them from different clocks. Everything else compares by value (Decimal("23805.01") == Decimal("23805.01000000"): the venue
    reports amounts with 8 decimals, the backtester computes them)."""
    orders = {cid: msgspec.structs.replace(o, created=0) for cid, o in state.orders.items()}
    return msgspec.structs.replace(state, orders=orders)


# --- the live stack --------------------------------------------------------------------------


def stack_config(path: Path, sim: SimVenue, hook: WebhookReceiver) -> Path:
    """One AUTOMATA_CONFIG for the order gateway, the market gateway and the notifier."""
    path.write_text(
        f"""
[venues.{VENUE}]
kind = "sim"
base_url = "{sim.base_url}"

[order_gateway]
poll_every_s = 1.0
recv_window_ms = 5000
request_timeout_s = 5.0

[market_gateway]
warmup = 20
rest_poll_s = 0.3
stall_factor = 100

[[market_gateway.feeds]]
venue = "{VENUE}"
symbols = ["{SYMBOL}"]
intervals = ["{INTERVAL}"]
book_tickers = []

[notifier]
retry_initial_s = 0.1
retry_max_s = 0.3

[notifier.webhook]
url = "{hook.url}"
secret = "{HOOK_SECRET}"
"""
    )
    return path


@dataclass
class LiveStack:
    """Paper venue + order gateway + market gateway + notifier + one strategy runner."""

    env: dict[str, str]
    r: redis.Redis
    tmp: Path
    bot: str
    procs: dict[str, Proc] = field(default_factory=dict)
    sim: SimVenue | None = None
    hook: WebhookReceiver | None = None

    @property
    def candle_stream(self) -> str:
        return candles(VENUE, SYMBOL, INTERVAL)

    def start(self, data: Path, warmup: int, sim_env: dict[str, str], bots_file: Path) -> LiveStack:
        """Everything up, then one pre-roll candle, then the runner.

        The market gateway holds back the newest candle of its REST backfill (it cannot tell it
        closed) until the socket shows a newer one, i.e. after the next candle has begun; a bot
        seeing it then would act a step late. So the venue replays one candle after its
        `warmup` history before the runner starts (its candle group begins at "$"): the first
        candle the bot sees is the one after the pre-roll, closed by the socket like all the
        others. `data` therefore holds warmup + 1 candles before the live ones."""
        self.sim = start_sim(self.tmp / "sim", speed="0", symbols=SYMBOL, data=str(data), market_fill=None,
                             extra_env={"SIM_WARMUP": str(warmup), **sim_env})  # fmt: skip
        self.hook = WebhookReceiver(secret=HOOK_SECRET).start()
        config = stack_config(self.tmp / "automata.toml", self.sim, self.hook)
        env = {**self.env, "AUTOMATA_CONFIG": str(config), "INSTANCE": "p1"}
        for name in ("order_gateway", "market_gateway", "notifier"):
            self.procs[name] = python(f"services.{name}", env=env, log_path=self.tmp / f"{name}.log").start()
        self._until(lambda: self.r.hexists(venue_symbols(VENUE), SYMBOL), "the order gateway's filters")
        self._until(lambda: self.r.exists("svc:notifier:p1"), "the notifier's heartbeat")
        self._until(lambda: self.r.exists(self.candle_stream), "the market gateway's backfill")
        wait_for_sockets(self.sim, 1, "binance:market")
        pre_roll = self.sim.control.state()["market_time"]
        self.sim.control.advance(candles=1)
        self._until(lambda: self._top() == pre_roll, "the pre-roll candle on the stream")
        runner_env = {**env, "AUTOMATA_BOTS": str(bots_file), "CONSUMER_NAME": "p1"}
        self.procs["runner"] = python("services.strategy_runner", "--bot", self.bot, env=runner_env,
                                      log_path=self.tmp / "runner.log").start()  # fmt: skip
        group = bot_group(self.bot).encode()
        self._until(lambda: any(g["name"] == group for g in self.r.xinfo_groups(self.candle_stream)),
                    "the runner's candle group")  # fmt: skip
        return self

    def _top(self) -> int | None:
        top = self.r.xrevrange(self.candle_stream, count=1)
        return int(top[0][0].split(b"-")[0]) if top else None

    def stop(self) -> dict[str, int]:
        """SIGTERM every service; their exit codes (0 = clean)."""
        codes = {}
        for name, proc in reversed(list(self.procs.items())):
            try:
                codes[name] = proc.terminate(15)
            except Exception:
                proc.kill()
                codes[name] = -9
        if self.sim is not None:
            try:
                codes["sim"] = self.sim.stop()
            except Exception:
                self.sim.proc.kill()
                codes["sim"] = -9
        if self.hook is not None:
            self.hook.stop()
        return codes

    def filters(self) -> SymbolFilters:
        """The filters the runner trades with (the order gateway read them from the venue)."""
        return msgspec.json.decode(self.r.hget(venue_symbols(VENUE), SYMBOL), type=SymbolFilters)

    # --- reading the bus --------------------------------------------------------------------

    def doc(self) -> dict[str, Any]:
        raw = self.r.get(bot_state(self.bot))
        return json.loads(raw) if raw else {}

    def commands(self) -> list[Any]:
        found = [decode(f) for _, f in self.r.xrange(order_commands(VENUE, self.bot))]
        return [c for c in found if not isinstance(c, SyncBot)]  # a runner's start-up sync places nothing

    def updates(self) -> list[OrderUpdate]:
        found = [decode(f) for _, f in self.r.xrange(order_events(self.bot))]
        return [u for u in found if isinstance(u, OrderUpdate)]  # not the gateway's BotSynced answers

    # --- driving ------------------------------------------------------------------------------

    def settled(self, last_closed: int | None) -> bool:
        """Nothing in flight anywhere (see the module docstring); last_closed: the open time of
        the newest closed candle the runner must have applied."""
        assert self.sim is not None
        applied = self.doc().get("last_applied", {})
        if last_closed is not None and applied.get(self.candle_stream) != candle_entry_id(last_closed):
            return False
        events = self.r.xrevrange(order_events(self.bot), count=1)
        if events and applied.get(order_events(self.bot)) != events[0][0].decode():
            return False
        cmd_stream = order_commands(VENUE, self.bot)
        last_cmd = self.r.xrevrange(cmd_stream, count=1)
        if last_cmd:
            group = next(
                (g for g in self.r.xinfo_groups(cmd_stream) if g["name"] == GROUP_ORDER_GATEWAY.encode()),
                None,
            )
            if group is None or group["pending"] or group["last-delivered-id"] != last_cmd[0][0]:
                return False
        latest = {u.cid: u for u in self.updates()}
        for order in self.sim.control.orders():
            seen = latest.get(order["client_order_id"])
            if seen is None or (str(seen.status), seen.cum_filled_qty) != (
                order["status"],
                Decimal(order["executed_qty"]),
            ):
                return False
        return True

    def settle(self, last_closed: int | None, timeout: float = 20.0) -> None:
        """settled() twice in a row (a cheap guard against reading two services mid-hand-over)."""
        deadline = time.monotonic() + timeout
        streak = 0
        while streak < 2:
            streak = streak + 1 if self.settled(last_closed) else 0
            if time.monotonic() > deadline:
                raise AssertionError(f"the live stack did not settle within {timeout}s{self._logs()}")
            if streak < 2:
                time.sleep(0.005)

    def quiet(self, candle: RawCandle) -> bool:
        """No order open at the venue can fill during this candle (so no reaction can be due
        inside it and the whole candle may be one control call)."""
        assert self.sim is not None
        low, high = Decimal(candle.low), Decimal(candle.high)
        for o in self.sim.control.orders():
            if o["status"] not in OPEN:
                continue
            if o["type"] != "LIMIT":
                return False
            price = Decimal(o["price"])
            if (o["side"] == "BUY" and low <= price) or (o["side"] == "SELL" and high >= price):
                return False
        return True

    def drive(self, live: Sequence[RawCandle]) -> Iterator[int]:
        """Replay the live candles: a quiet candle in one call, any other one step by step,
        settling after each call. Yields the number of control calls made for each candle."""
        assert self.sim is not None
        previous: int | None = None
        for c in live:
            if self.quiet(c):
                self.sim.control.advance(candles=1)
                self.settle(c.open_time)
                yield 1
            else:
                for k in range(4):
                    self.sim.control.advance(steps=1)
                    self.settle(c.open_time if k == 3 else previous)
                yield 4
            previous = c.open_time

    # --- helpers ------------------------------------------------------------------------------

    def _until(self, predicate: Any, what: str) -> None:
        def check() -> Any:
            for name, proc in self.procs.items():
                assert proc.alive(), f"{name} exited:\n{proc.output()[-3000:]}"
            return predicate()

        wait_until(check, timeout=30, what=what)

    def _logs(self) -> str:
        return "".join(f"\n--- {n} ---\n{p.output()[-1500:]}" for n, p in self.procs.items())
