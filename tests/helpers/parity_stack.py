"""Backtest-vs-live parity, the live side: every service a real process, one paper venue per
bot (its own account, book and liquidity, so bots cannot interfere), one market gateway, one
order gateway, one notifier and one strategy runner holding every bot.

The loop is made deterministic by never moving a market while anything is in flight: after
each step, `LiveStack.settle` waits until, for every bot, the market gateway has published the
closed candle, the runner has applied it and every order event, the order gateway has handled
every command, and every order the venue holds has reached the bot in its current state. Only
then does the next price come, which is exactly the backtester's rule "commands act at once,
new orders match from the next tick".

One more race is taken out: the step that closes a candle may also fill an order, and the
fill (venue → order gateway → `orders:events`) and the closed candle (venue → market gateway
→ `md:candles`) would reach the runner in either order. The backtester hands the fill first.
So the market gateway is paused (SIGSTOP) over a closing step of a candle on which an order
may fill, the fills are settled, and only then is it resumed (SIGCONT) to publish the candle
(the venue's kline message waits in its socket meanwhile).
"""

from __future__ import annotations

import json
import os
import signal
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

import msgspec
import redis

from shared.candle_files import RawCandle
from shared.codec import decode
from shared.filters import SymbolFilters
from shared.matching.engine_rules import stop_reached
from shared.matching.model import LIMIT_PRICED, STOP_TYPES
from shared.messages import OrderType, OrderUpdate, Side, SyncBot
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
from tests.helpers.parity import SYMBOL
from tests.helpers.procs import Proc, python, wait_until
from tests.helpers.sim import SimVenue, start_sim, wait_for_sockets

INTERVAL = "1m"


def waypoints(c: RawCandle) -> tuple[Decimal, Decimal, Decimal, Decimal]:
    """The venue's four steps through a candle (market.py): open, low, high, close, or open,
    high, low, close when it falls."""
    o, h, lo, cl = (Decimal(x) for x in (c.open, c.high, c.low, c.close))
    return (o, h, lo, cl) if cl < o else (o, lo, h, cl)


OPEN = ("NEW", "PARTIALLY_FILLED")


@dataclass
class LiveBot:
    """One bot of the bots file and its own paper venue (`venue` names it in both files)."""

    id: str
    venue: str
    data: Path  # what the venue replays: `warmup` + 1 candles of history, then `live`
    live: list[RawCandle]
    balances: str  # SIM_BALANCES of its account
    # candles (indices into `live`) where the backtest fills or sends an order before the close,
    # and where it sends one at the close (RecordingBacktester.busy)
    busy: set[int] = field(default_factory=set)
    closing: set[int] = field(default_factory=set)
    sim: SimVenue | None = None
    read_upto: str = "0-0"  # the last entry of its order events read, and what they said:
    seen: dict[str, tuple[str, Decimal]] = field(default_factory=dict)  # cid -> (status, filled)

    @property
    def candle_stream(self) -> str:
        return candles(self.venue, SYMBOL, INTERVAL)


@dataclass
class Recorded:
    """What one bot did live, read once the run has settled."""

    commands: list[Any]
    journal: list[dict[str, Any]]
    doc: dict[str, Any]
    balances: dict[str, dict[str, str]]
    filters: SymbolFilters
    notes: list[dict[str, Any]]


def stack_config(path: Path, bots: Sequence[LiveBot], hook: WebhookReceiver) -> Path:
    """One AUTOMATA_CONFIG for the order gateway, the market gateway and the notifier."""
    venues = "".join(
        f'[venues.{b.venue}]\nkind = "sim"\nbase_url = "{b.sim.base_url}"\n\n' for b in bots if b.sim
    )
    feeds = "".join(
        f'[[market_gateway.feeds]]\nvenue = "{b.venue}"\nsymbols = ["{SYMBOL}"]\nintervals = ["{INTERVAL}"]\n'
        "book_tickers = []\n\n"
        for b in bots
    )
    path.write_text(
        f"""{venues}
[order_gateway]
poll_every_s = 1.0
rescan_every_s = 0.2  # a bot's new command stream (its start-up sync) is read at once
recv_window_ms = 5000
request_timeout_s = 5.0

[market_gateway]
warmup = 0
rest_poll_s = 0.3
stall_factor = 100

{feeds}
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
    env: dict[str, str]
    r: redis.Redis
    tmp: Path
    bots: list[LiveBot]
    procs: dict[str, Proc] = field(default_factory=dict)
    hook: WebhookReceiver | None = None

    def start(self, warmup: int, bots_file: Path) -> LiveStack:
        """Everything up, then one pre-roll candle per venue, then the runner.

        The market gateway backfills nothing (warmup = 0) and the venue replays one candle
        after its `warmup` history before the runner starts (its candle groups begin at "$"):
        the first candle a bot sees is the one after the pre-roll, closed by the socket like
        all the others. The pre-roll is then trimmed off the candle stream, so a bot starts
        with no history, as the backtester's first candle does (the breakout and the fractal
        read it)."""

        def venue(b: LiveBot) -> SimVenue:
            return start_sim(self.tmp / b.venue, speed="0", symbols=SYMBOL, data=str(b.data),
                             extra_env={"SIM_WARMUP": str(warmup), "SIM_BALANCES": b.balances}, market_fill=None)  # fmt: skip

        with ThreadPoolExecutor(len(self.bots)) as pool:  # they start in parallel
            for b, sim in zip(self.bots, pool.map(venue, self.bots), strict=True):
                b.sim = sim
        self.hook = WebhookReceiver(secret=HOOK_SECRET).start()
        config = stack_config(self.tmp / "automata.toml", self.bots, self.hook)
        env = {**self.env, "AUTOMATA_CONFIG": str(config), "INSTANCE": "p1"}
        for name in ("order_gateway", "market_gateway", "notifier"):
            self.procs[name] = python(f"services.{name}", env=env, log_path=self.tmp / f"{name}.log").start()
        self._until(lambda: self.r.exists("svc:notifier:p1"), "the notifier's heartbeat")
        pre_rolls = []
        for b in self.bots:
            assert b.sim is not None
            self._until(
                lambda b=b: self.r.hexists(venue_symbols(b.venue), SYMBOL), "the order gateway's filters"
            )
            wait_for_sockets(b.sim, 1, "binance:market")
            pre_rolls.append((b, b.sim.control.state()["market_time"]))
            b.sim.control.advance(candles=1)
        for b, pre_roll in pre_rolls:
            self._until(lambda b=b, t=pre_roll: self._top(b) == t, "the pre-roll candle on the stream")
            self.r.xtrim(b.candle_stream, maxlen=0)
        runner_env = {**env, "AUTOMATA_BOTS": str(bots_file), "CONSUMER_NAME": "p1"}
        args = [a for b in self.bots for a in ("--bot", b.id)]
        self.procs["runner"] = python("services.strategy_runner", *args, env=runner_env,
                                      log_path=self.tmp / "runner.log").start()  # fmt: skip
        for b in self.bots:
            group = bot_group(b.id).encode()
            self._until(lambda b=b, g=group: any(x["name"] == g for x in self.r.xinfo_groups(b.candle_stream)),
                        "the runner's candle groups")  # fmt: skip
        return self

    def _top(self, b: LiveBot) -> int | None:
        top = self.r.xrevrange(b.candle_stream, count=1)
        return int(top[0][0].split(b"-")[0]) if top else None

    def stop(self) -> dict[str, int]:
        """SIGTERM every service; their exit codes (0 = clean)."""
        codes = {}
        market = self.procs.get("market_gateway")
        if market is not None and market.alive():
            os.kill(market.pid, signal.SIGCONT)
        for name, proc in reversed(list(self.procs.items())):
            try:
                codes[name] = proc.terminate(15)
            except Exception:
                proc.kill()
                codes[name] = -9
        for b in self.bots:
            if b.sim is None:
                continue
            try:
                codes[b.venue] = b.sim.stop()
            except Exception:
                b.sim.proc.kill()
                codes[b.venue] = -9
        if self.hook is not None:
            self.hook.stop()
        return codes

    # --- reading the bus --------------------------------------------------------------------

    def doc(self, b: LiveBot) -> dict[str, Any]:
        raw = self.r.get(bot_state(b.id))
        return json.loads(raw) if raw else {}

    def commands(self, b: LiveBot) -> list[Any]:
        found = [decode(f) for _, f in self.r.xrange(order_commands(b.venue, b.id))]
        return [c for c in found if not isinstance(c, SyncBot)]  # a runner's start-up sync places nothing

    def notes(self, b: LiveBot) -> list[dict[str, Any]]:
        assert self.hook is not None
        return [d for d in self.hook.docs() if d.get("bot") == b.id]

    def record(self, b: LiveBot) -> Recorded:
        assert b.sim is not None
        filters = msgspec.json.decode(self.r.hget(venue_symbols(b.venue), SYMBOL), type=SymbolFilters)
        return Recorded(commands=self.commands(b), journal=b.sim.control.journal(), doc=self.doc(b),
                        balances=b.sim.control.balances(), filters=filters, notes=self.notes(b))  # fmt: skip

    # --- driving ------------------------------------------------------------------------------

    def settled(self, b: LiveBot, last_closed: int | None) -> bool:
        """Nothing of this bot in flight (see the module docstring); last_closed: the open time
        of the newest closed candle the runner must have applied."""
        assert b.sim is not None
        cmd_stream, events = order_commands(b.venue, b.id), order_events(b.id)
        pipe = self.r.pipeline(transaction=False)  # one round trip for what Redis knows
        pipe.get(bot_state(b.id))
        pipe.xrange(events, min=f"({b.read_upto}", max="+")
        pipe.xrevrange(cmd_stream, count=1)
        pipe.xinfo_groups(cmd_stream)
        raw_doc, new_events, last_cmd, groups = pipe.execute(raise_on_error=False)
        for entry_id, fields in new_events:
            msg = decode(fields)
            if isinstance(msg, OrderUpdate):  # not the gateway's BotSynced answers
                b.seen[msg.cid] = (str(msg.status), msg.cum_filled_qty)
            b.read_upto = entry_id.decode()
        applied = json.loads(raw_doc).get("last_applied", {}) if raw_doc else {}
        if last_closed is not None and applied.get(b.candle_stream) != candle_entry_id(last_closed):
            return False
        if b.read_upto != "0-0" and applied.get(events) != b.read_upto:
            return False
        if last_cmd:
            group = next((g for g in groups if g["name"] == GROUP_ORDER_GATEWAY.encode()), None)
            if group is None or group["pending"] or group["last-delivered-id"] != last_cmd[0][0]:
                return False
        for order in b.sim.control.orders():
            if b.seen.get(order["client_order_id"]) != (order["status"], Decimal(order["executed_qty"])):
                return False
        return True

    def settle(self, closed: dict[str, int | None], timeout: float = 20.0) -> None:
        """Every bot settled twice in a row (a cheap guard against reading two services mid-hand-over)."""
        deadline = time.monotonic() + timeout
        streak = 0
        while streak < 2:
            streak = streak + 1 if all(self.settled(b, closed[b.id]) for b in self.bots) else 0
            if time.monotonic() > deadline:
                raise AssertionError(f"the live stack did not settle within {timeout}s{self._logs()}")
            if streak < 2:
                time.sleep(0.005)

    def open_orders(self, b: LiveBot) -> list[dict[str, Any]]:
        assert b.sim is not None
        return [o for o in b.sim.control.orders() if o["status"] in OPEN]

    @staticmethod
    def may_fill(orders: list[dict[str, Any]], price: Decimal) -> bool:
        """A market step at `price` could fill or trigger one of these open orders: a stop not
        triggered yet by its stop (the engine's own rule), a limit (a maker, a triggered
        stop-limit) by its price; a market order, or a triggered stop-market, fills at any step.
        An OTO's pending leg waits for its working leg."""
        for o in orders:
            kind, side = OrderType(o["type"]), Side(o["side"])
            if o.get("pending"):
                continue
            if kind in STOP_TYPES and o.get("working_time") is None:
                if stop_reached(kind, side, Decimal(o["stop_price"]), price):
                    return True
                continue
            if kind not in LIMIT_PRICED:
                return True
            limit = Decimal(o["price"])
            if (side is Side.SELL and price >= limit) or (side is Side.BUY and price <= limit):
                return True
        return False

    def quiet(self, orders: list[dict[str, Any]], candle: RawCandle) -> bool:
        """No step of this candle can fill or trigger one of these orders (so no reaction can be
        due inside it and the whole candle may be one control call)."""
        return not any(self.may_fill(orders, p) for p in waypoints(candle))

    def drive(self) -> int:
        """Replay the live candles of every venue in step; returns the control calls per venue.

        A run of candles on which, at every venue, no open order can fill and the backtest
        sends nothing before the close goes in one call (the bots still see every candle; the
        last may end with an order): nothing can be due inside it. Any other candle goes
        alone, in one call when no order can fill in it, else step by step. The stack is
        settled after each call. Should the live bot act where the backtest did not, its
        order simply goes out later, and the comparison shows the extra command."""
        count = len(self.bots[0].live)
        assert all(len(b.live) == count for b in self.bots), "every bot replays as many candles"
        previous: dict[str, int | None] = dict.fromkeys((b.id for b in self.bots), None)
        calls = i = 0
        while i < count:
            orders = {b.id: self.open_orders(b) for b in self.bots}
            end = i
            while end < count and all(
                end not in b.busy and self.quiet(orders[b.id], b.live[end]) for b in self.bots
            ):
                end += 1
                if any(end - 1 in b.closing for b in self.bots):
                    break
            if end == i and all(self.quiet(orders[b.id], b.live[i]) for b in self.bots):
                end = i + 1
            now = {b.id: b.live[max(end, i + 1) - 1].open_time for b in self.bots}
            calls += 1 if end > i else 4
            if end > i:
                self._advance(candles=end - i)
                self.settle(now)
            else:
                self._step_candle(i, orders, previous, now)
            previous, i = now, max(end, i + 1)
        return calls

    def _step_candle(self, i: int, orders: dict[str, list[dict[str, Any]]], previous: dict[str, int | None],
                     now: dict[str, int | None]) -> None:  # fmt: skip
        """Candle i in its four steps, settling after each step at which an order may fill;
        the market gateway paused over the closing step."""
        for k in range(4):
            fills = any(self.may_fill(orders[b.id], waypoints(b.live[i])[k]) for b in self.bots)
            if k == 3:
                self._pause_market(True)
            try:
                self._advance(steps=1)
                if fills:
                    self.settle(previous)
                    orders = {b.id: self.open_orders(b) for b in self.bots}
            finally:
                if k == 3:
                    self._pause_market(False)
        self.settle(now)

    def _advance(self, **how: int) -> None:
        for b in self.bots:
            assert b.sim is not None
            b.sim.control.advance(**how)

    def _pause_market(self, pause: bool) -> None:
        os.kill(self.procs["market_gateway"].pid, signal.SIGSTOP if pause else signal.SIGCONT)

    # --- helpers ------------------------------------------------------------------------------

    def _until(self, predicate: Any, what: str) -> None:
        def check() -> Any:
            for name, proc in self.procs.items():
                assert proc.alive(), f"{name} exited:\n{proc.output()[-3000:]}"
            return predicate()

        wait_until(check, timeout=30, what=what)

    def _logs(self) -> str:
        return "".join(f"\n--- {n} ---\n{p.output()[-1500:]}" for n, p in self.procs.items())
