"""A power cut, for real: Redis loses writes it had acknowledged, every service dies at once, the
paper venue (which did not lose power) keeps every order it accepted.

Redis runs with `appendfsync everysec`, so a power cut loses up to ~2 s of acknowledged writes.
The harness records moments: the INCR file Redis 7's multi-part AOF appends to (named by the
manifest) and its size. Redis writes its AOF buffer before it replies to a client, so that size
holds every write acknowledged by then. A cut SIGKILLs every service process and redis-server
at once, truncates the INCR file back to the size of a moment recorded earlier (Redis discards
an incomplete trailing MULTI when it loads), restarts Redis on that data and every service, and
lets the system settle; tests/helpers/powercut_rules.py then checks the six rules of issue 12.
A plain cut is the same without the truncation.

The market (powercut_market.py) moves only when the harness advances a candle, so each lost
window can be made to hold orders of every bot: mark a moment a few candles before a swing's
trough confirms as a fractal, advance until the venue's journal shows orders or fills of every
bot, then cut.
"""

from __future__ import annotations

import json
import os
import random
import signal
import threading
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import redis

from cli.demo import DEMO_BOTS
from services.strategy_runner.bots import load_bots
from shared.redis_server import RedisServer
from shared.streams import (
    bot_control,
    bot_lease,
    bot_state,
    candles,
    health,
    order_events,
    weight_budget,
)
from tests.helpers.bots import write_bots
from tests.helpers.cmdstreams import command_streams
from tests.helpers.full_disk import fill_the_disk
from tests.helpers.powercut_control import control_violations, send_controls
from tests.helpers.powercut_market import MINUTE, ORIGIN_MS, WARMUP
from tests.helpers.powercut_report import ACTIVE, BOTS, MANUAL, Cycle
from tests.helpers.powercut_rules import (
    Snapshot,
    Violation,
    check,
    collect,
    rule2,
    rule3,
    rule4,
    running,
    venue_position,
)
from tests.helpers.powercut_trade import open_trade, trade_violations
from tests.helpers.procs import Proc, base_env, python, wait_until
from tests.helpers.sim import SimControl, SimVenue, open_sockets, subscribed

VENUE, SYMBOL, INTERVAL = "sim", "BTCUSDT", "1m"
CANDLES = candles(VENUE, SYMBOL, INTERVAL)
MARKET_SOCKET = {"binance": "binance:market", "bybit": "bybit:public"}  # the market gateway's socket


def entry_id(raw: bytes) -> tuple[int, int]:
    ms, _, seq = raw.decode().partition("-")
    return int(ms), int(seq or 0)


def violations_of_convergence(snap: Snapshot) -> list[Violation]:
    """Where the venue, the log and the bots still disagree (rules 2-4)."""
    return rule2(snap) + rule3(snap) + rule4(snap)


# -- the AOF ------------------------------------------------------------------------------------


class AofRewritten(RuntimeError):
    """The manifest no longer names the INCR file of the moment: an AOF rewrite happened since."""


@dataclass(frozen=True)
class Moment:
    file: str  # the INCR file Redis appended to
    size: int  # its size then: every write acknowledged before is within it
    at: float  # time.monotonic()
    journal: int  # the venue journal's last seq then
    live: int = 0  # live candles played then


class Sampler(threading.Thread):
    """Records a moment every ~20 ms while a window is driven, so a cut can go back to any instant
    of it, also in mid-flight (after a bot's commit and before the gateway's record of its order,
    between a fill and the bot's booking...), not only to the calm moment before it."""

    def __init__(self, server: RedisServer, sim: SimVenue, journal: int, live: Any) -> None:
        super().__init__(daemon=True)
        self.server, self.control, self.seen, self.live = server, SimControl(sim.base_url), journal, live
        self.moments: list[Moment] = []
        self.done = threading.Event()

    def run(self) -> None:
        while not self.done.wait(0.02):
            at, live = time.monotonic(), self.live()
            file = incr_file(self.server)  # the AOF first, then the journal (see Stack.mark)
            size = (self.server.aof_dir / file).stat().st_size
            self.seen += len(self.control.journal(since=self.seen))
            self.moments.append(Moment(file, size, at, self.seen, live))

    def stop(self) -> list[Moment]:
        self.done.set()
        self.join(10)
        return self.moments


def incr_file(server: RedisServer) -> str:
    """The INCR file the manifest names last: where Redis appends."""
    names = []
    for line in (server.aof_dir / "appendonly.aof.manifest").read_text().splitlines():
        words = line.split()
        fields = dict(zip(words[::2], words[1::2], strict=False))
        if fields.get("type") == "i":
            names.append(fields["file"])
    assert names, f"no INCR file in {server.aof_dir}/appendonly.aof.manifest"
    return names[-1]


def truncate(server: RedisServer, moment: Moment) -> int:
    """Cut the INCR file (Redis must be dead) back to the moment's size; the bytes dropped."""
    if incr_file(server) != moment.file:
        raise AofRewritten(f"the manifest names {incr_file(server)} now, not {moment.file}")
    path = server.aof_dir / moment.file
    size = path.stat().st_size
    assert size >= moment.size, f"{path} shrank from {moment.size} to {size} bytes"
    os.truncate(path, moment.size)
    return size - moment.size


# -- the system under test --------------------------------------------------------------------


def write_config(path: Path, sim: SimVenue, weight_limit: int, lists: str = "native") -> Path:
    """deploy/demo.toml aimed at the test's venue; stall alerts off (step mode idles between drives);
    the venue's request-weight limit (the venue must be started with the same SIM_WEIGHT_LIMIT);
    `lists`: native (Binance's OCO), emulated (the order gateway's, on the Binance face) or bybit
    (the venue's Bybit face, which has no lists: emulated)."""
    path.write_text(f"""
[venues.{VENUE}]
kind = "sim"
protocol = "{"bybit" if lists == "bybit" else "binance"}"
base_url = "{sim.base_url}"
quote_asset = "USDT"
emulate_lists = {str(lists == "emulated").lower()}

[[market_gateway.feeds]]
venue = "{VENUE}"
symbols = ["{SYMBOL}"]
intervals = ["{INTERVAL}"]
book_tickers = ["{SYMBOL}"]

[market_gateway]
warmup = {WARMUP}
candles_maxlen = 5000
book_maxlen = 2000
stall_factor = 1000

[order_gateway]
weight_limit = {weight_limit}
poll_every_s = 2.0
balance_every_s = 5.0

[notifier.console]
enabled = true
""")
    return path


def bot_tables(layout: str, lease_ms: int, bots: dict[str, str]) -> list[dict[str, Any]]:
    """deploy/bots.demo.toml's `bots` (the three trading ones, demo_manual too for smart trades), except that the fractal bot finds its fractals on 1-minute
    bars (the test's swings) and the leases are short, so a restarted runner takes over at once;
    "separate" gives each bot a process of its own."""
    tables = []
    for bot in load_bots(DEMO_BOTS, check_params=False):
        if bot.id not in bots:
            continue
        params = {**bot.params, "interval": "1m"} if bot.strategy == "fractal_trailing" else bot.params
        table = {"id": bot.id, "strategy": bot.strategy, "venue": bot.venue, "symbol": bot.symbol,
                 "interval": bot.interval, "lease_ms": lease_ms, "params": params}  # fmt: skip
        if layout == "demo" and bot.process:
            table["process"] = bot.process
        tables.append(table)
    return tables


class Stack:
    """Redis, the paper venue and every service as real processes, with cuts and checks."""

    def __init__(self, tmp: Path, server: RedisServer, sim: SimVenue, confirms: list[int], *,
                 layout: str = "demo", lease_ms: int = 1500, settle_candles: int = 3,
                 weight_limit: int = 6000, manual: bool = False, lists: str = "native") -> None:  # fmt: skip
        self.tmp, self.server, self.sim, self.confirms = tmp, server, sim, confirms
        self.layout, self.settle_candles = layout, settle_candles
        self.bots = {**BOTS, MANUAL: "manual"} if manual else dict(BOTS)  # manual: smart-trade cycles
        self.config = write_config(tmp / "automata.toml", sim, weight_limit, lists)
        self.protocol = "bybit" if lists == "bybit" else "binance"  # the venue's face: its account
        self.bots_file = write_bots(tmp / "bots.toml", *bot_tables(layout, lease_ms, self.bots))
        self.trade_from = 0  # the journal's length when the last smart trade was sent
        self.trade_story = ""  # what it did at the venue (powercut_trade.py `story`)
        self.procs: dict[str, Proc] = {}
        self.incarnation = 0
        self.live = 0  # live candles played
        self.journal: list[dict[str, Any]] = []
        self.notify_seen = b"0-0"
        self.slow: list[str] = []  # candles the bots took over 3 s to apply, and what was busy
        self.up_s = 0.0  # how long the last restart took until every bot was back in step
        self.events_top: dict[str, bytes] = {}  # orders:events:{bot} tops when Redis came back
        self.r = redis.Redis.from_url(server.url)

    # -- processes ------------------------------------------------------------------------------
    def programs(self) -> dict[str, tuple[str, list[str], str]]:
        """name -> (service, module and args, INSTANCE): the supervisord programs of the demo."""
        progs = {n: (n, [f"services.{n}"], "pc") for n in ("order_gateway", "market_gateway", "notifier")}
        if self.layout == "demo":
            args = [a for bot in self.bots for a in ("--bot", bot)]
            progs["bots_demo"] = ("strategy_runner", ["services.strategy_runner", *args], "demo")
        else:
            for bot in self.bots:
                progs[f"bot_{bot}"] = ("strategy_runner", ["services.strategy_runner", "--bot", bot], bot)
        return progs

    def spawn(self, name: str) -> Proc:
        _, argv, instance = self.programs()[name]
        env = base_env(self.server.url, AUTOMATA_CONFIG=str(self.config), AUTOMATA_BOTS=str(self.bots_file),
                       INSTANCE=instance, LOG_LEVEL="INFO")  # fmt: skip
        log = self.tmp / "logs" / f"{name}.{self.incarnation}.log"
        self.procs[name] = python(argv[0], *argv[1:], env=env, log_path=log).start()
        return self.procs[name]

    def start(self) -> None:
        """First start: gateways and notifier, the history backfilled, one pre-roll candle (the market
        gateway holds back the newest backfilled candle until a newer one shows), then the bots."""
        for name in ("order_gateway", "market_gateway", "notifier"):
            self.spawn(name)
        self.until(lambda: self.r.exists("venue:sim:symbols") and self.r.exists(CANDLES), "gateways up", 60)
        self.until(lambda: open_sockets(self.sim, MARKET_SOCKET[self.protocol]) >= 1, "the market socket", 30)
        if self.protocol == "bybit":  # its socket opens before it subscribes: a kline pushed between is lost
            self.until(lambda: subscribed(self.sim, "bybit:public", "kline."), "the kline subscription", 30)
        self.advance(pace=False)
        self.until(lambda: self.top() == ORIGIN_MS + WARMUP * MINUTE, "the pre-roll candle", 30)
        for name in self.programs():
            if name not in self.procs:
                self.spawn(name)
        self.wait_up()

    def kill_all(self) -> None:
        """SIGKILL every service process and redis-server at once (the venue keeps running)."""
        victims = [p.popen for p in self.procs.values() if p.popen is not None] + [self.server.proc]
        random.shuffle(victims)
        for proc in victims:
            if proc is not None and proc.poll() is None:
                os.kill(proc.pid, signal.SIGKILL)
        for proc in victims:
            if proc is not None:
                proc.wait(10)

    def restart_all(self) -> None:
        self.r.close()
        self.server.start(timeout=60)
        self.r = redis.Redis.from_url(self.server.url)
        self.incarnation += 1
        self.events_top = {bot: self.last_id(order_events(bot)) for bot in self.bots}
        for name in self.programs():
            self.spawn(name)
        self.wait_up()

    def dead(self) -> dict[str, str]:
        return {n: p.output()[-2500:] for n, p in self.procs.items() if not p.alive()}

    def until(self, predicate: Any, what: str, timeout: float = 30.0) -> Any:
        def check() -> Any:
            if dead := self.dead():
                raise AssertionError(f"while waiting for {what}: exited: " + "\n".join(
                    f"--- {n} ---\n{tail}" for n, tail in dead.items()))  # fmt: skip
            return predicate()

        return wait_until(check, timeout=timeout, interval=0.05, what=what)

    def wait_up(self, timeout: float = 90.0) -> None:
        """Every program's heartbeat carries its new pid; every bot's runner took its lease in this
        incarnation and finished its sync (state.sync empty)."""

        def beating() -> bool:
            for name, (service, _, instance) in self.programs().items():
                raw = self.r.get(health(service, instance))
                if raw is None or json.loads(raw).get("pid") != self.procs[name].pid:
                    return False
            return True

        def synced(bot: str) -> bool:
            """A BotSynced answer after the restart, applied by the bot (its state no longer syncing)."""
            after = self.r.xrange(order_events(bot), min=f"({self.events_top.get(bot, b'0-0').decode()}")
            answered = any(fields.get(b"type") == b"synced" for _, fields in after)
            return answered and not self.state(bot).get("sync")

        def bots_in() -> bool:
            logs = "".join(p.output() for n, p in self.procs.items() if n.startswith("bot"))
            return all(f"bot {bot}: lease acquired" in logs and synced(bot) for bot in self.bots)

        started = time.monotonic()
        self.until(beating, "every service's heartbeat", timeout)
        self.until(bots_in, "every bot's runner serving it (lease taken, sync answered)", timeout)
        self.up_s = time.monotonic() - started
        if self.up_s > 10:
            self.slow.append(f"up after {self.up_s:.0f}s; {self.budget()}")

    # -- reading ---------------------------------------------------------------------------------
    def doc(self, bot: str) -> dict[str, Any]:
        raw = self.r.get(bot_state(bot))
        return json.loads(raw) if raw else {}

    def state(self, bot: str) -> dict[str, Any]:
        return self.doc(bot).get("state") or {}

    def budget(self) -> str:
        """The venue's request weight used this minute, and the system's shared budget (ratelimit:sim)."""
        shared = {k.decode(): v.decode() for k, v in self.r.hgetall(weight_budget(VENUE)).items()}
        return f"venue weight {self.sim.control.state()['limits']['used_weight']}, shared budget {shared}"

    def last_id(self, stream: str) -> bytes:
        last = self.r.xrevrange(stream, count=1)
        return last[0][0] if last else b"0-0"

    def top(self) -> int | None:
        last = self.r.xrevrange(CANDLES, count=1)
        return int(last[0][0].split(b"-")[0]) if last else None

    def refresh(self) -> list[dict[str, Any]]:
        self.journal += self.sim.control.journal(since=len(self.journal))
        return self.journal

    def activity(self, since: int) -> dict[str, Counter[str]]:
        out: dict[str, Counter[str]] = {bot: Counter() for bot in BOTS}
        for e in self.refresh()[since:]:
            bot = (e.get("client_order_id") or "").rsplit("-", 1)[0]
            if bot in out:
                out[bot][e["kind"]] += 1
        return out

    def snapshot(self) -> Snapshot:
        return collect(self.r, self.sim.control.orders(self.protocol), self.refresh(), self.bots)

    # -- driving ---------------------------------------------------------------------------------
    def advance(self, pace: bool = True) -> None:
        """One candle; paced: until every bot applied it (at most 3 s: a runner may be catching up)."""
        self.sim.control.advance(candles=1)
        opened = ORIGIN_MS + (WARMUP + self.live) * MINUTE
        self.live += 1
        if pace:
            deadline = time.monotonic() + 3
            while not all(self.applied(b) >= opened for b in self.bots):
                if time.monotonic() > deadline:
                    late = [b for b in self.bots if self.applied(b) < opened]
                    behind = "" if (self.top() or 0) >= opened else "not on the candle stream yet"
                    why = "; ".join(x for x in (behind, self.busy(), self.budget()) if x)
                    self.slow.append(f"candle {self.live - 1}: {','.join(late)} 3s late ({why})")
                    break
                time.sleep(0.01)

    def applied(self, bot: str) -> int:
        last = self.doc(bot).get("last_applied", {}).get(CANDLES)
        return int(last.split("-")[0]) if last else -1

    def mark(self) -> Moment:
        """The AOF first, then the journal: an order between the two counts as outside the window."""
        file = incr_file(self.server)
        size = (self.server.aof_dir / file).stat().st_size
        return Moment(file, size, time.monotonic(), len(self.refresh()), self.live)

    def window(self, rng: random.Random) -> tuple[Moment, int]:
        """Play up to a few candles before the next fractal confirmation, mark the moment, then play
        until the journal shows orders or fills of every bot since it (a few more candles if one
        is missing), and a random bit more. Returns a moment to cut back to, drawn from those
        recorded meanwhile after which every bot still has orders or fills (the first one if a bot
        had none), and the candles played after it."""
        confirm = next(c for c in self.confirms if c >= self.live)
        ahead = rng.randint(1, 8)
        while confirm + 1 - self.live > ahead:
            self.advance()
        moment = self.mark()
        sampler = Sampler(self.server, self.sim, moment.journal, lambda: self.live)
        sampler.start()
        try:
            self.drive_window(moment, confirm, rng)
        finally:
            moments = sampler.stop()
        full = [m for m in [moment, *moments] if all(self.acts(m.journal).values())]
        chosen = rng.choice(full) if full else moment
        return chosen, self.live - chosen.live

    def acts(self, since: int) -> dict[str, int]:
        """Orders and fills of each bot at the venue since a journal seq."""
        return {b: sum(a[k] for k in ACTIVE) for b, a in self.activity(since).items()}

    def drive_window(self, moment: Moment, confirm: int, rng: random.Random) -> None:
        start, extra, waited = self.live, 0, time.monotonic()
        while True:
            missing = [b for b, n in self.acts(moment.journal).items() if not n]
            if not missing:
                break
            if self.live <= confirm:
                self.advance()
                waited = time.monotonic()
            elif time.monotonic() - waited < 0.5:
                time.sleep(0.05)
            elif extra < 10:  # the swing has not reached this bot's orders yet: on
                self.advance()
                extra, waited = extra + 1, time.monotonic()
            else:  # an idle window for `missing`: the cycle is not full
                self.slow.append(f"window: no order or fill of {','.join(missing)} in {self.live - start} "
                                 f"candles (the fractal confirmation was candle {confirm})")  # fmt: skip
                break
        for _ in range(rng.choice([0, 0, 1, 2])):
            self.advance(pace=rng.random() < 0.5)
        time.sleep(rng.uniform(0.0, 0.3))  # the kill lands at any instruction of whatever is in flight

    def cut(self, cycle: Cycle, moment: Moment) -> None:
        """The power cut: everything killed at once, Redis's data back to `moment` (a plain cycle
        keeps it whole), all restarted. A full-disk cycle fills Redis's disk first (full_disk.py):
        "full" gives it room again and cuts nothing, "full+cut" cuts while it is full."""
        if cycle.kind.startswith("full"):
            fill_the_disk(self)
            if cycle.kind == "full":
                self.server.make_room(self.r)
                cycle.window_s = time.monotonic() - moment.at
                return
        if cycle.kind.startswith("control"):  # a person's stop and close in flight (powercut_control.py)
            moment = send_controls(self)
        elif cycle.kind.startswith("trade"):  # a smart trade opened right before (powercut_trade.py)
            moment = open_trade(self, cycle.kind)
        self.kill_all()
        cycle.window_s = time.monotonic() - moment.at
        if cycle.kind.endswith("truncate"):
            try:
                cycle.dropped = truncate(self.server, moment)
            except AofRewritten:
                cycle.kind = "plain (AOF rewritten)"
        self.restart_all()

    def settle(self, timeout: float = 90.0, quiet_s: float = 6.0) -> str:
        """A few candles (held orders are booked once a later candle is handled), then until nothing
        is in flight and the venue, the log and the bots agree, twice in a row; or until nothing
        changed for quiet_s (they disagree for good: the rules will say how), or timeout. A slow
        settle says what it waited for last."""
        for _ in range(self.settle_candles):
            self.advance()
        started = last_change = time.monotonic()
        fingerprint: Any = None
        streak, why = 0, ""
        while True:
            snap = self.snapshot()
            busy = self.busy()
            disagree = [] if busy else violations_of_convergence(snap)
            why = busy or (str(disagree[0]).splitlines()[0] if disagree else why)
            streak = streak + 1 if not busy and not disagree else 0
            now = time.monotonic()
            late = f" (waited for: {why[:300]})" if now - started > 5 else ""
            if streak >= 2:
                return f"settled {now - started:.1f}s{late}"
            seen = (len(snap.journal), len(snap.wal), tuple(d.get("version") for d in snap.docs.values()))
            if seen != fingerprint:
                fingerprint, last_change = seen, now
            elif not busy and now - last_change > quiet_s:
                return f"QUIET BUT NOT CONVERGED after {now - started:.1f}s"
            if now - started > timeout:
                return f"NOT SETTLED after {timeout:.0f}s{late}"
            if self.dead():
                return "A PROCESS EXITED"
            time.sleep(0.2)

    def busy(self) -> str:
        """What is still in flight ("" when nothing): a consumer group behind or with entries pending,
        a bot syncing or without its runner."""
        streams = [*command_streams(self.r, VENUE), CANDLES, "notify"]
        streams += [s for bot in self.bots for s in (order_events(bot), bot_control(bot))]
        for stream in streams:
            last = self.r.xrevrange(stream, count=1)
            if not last:
                continue
            groups = self.r.xinfo_groups(stream)
            if stream.startswith("orders:cmd:") and not groups:
                return f"{stream}: not read by the order gateway yet"
            for group in groups:
                if group["pending"] or entry_id(group["last-delivered-id"]) < entry_id(last[0][0]):
                    return (
                        f"{stream} group {group['name'].decode()}: {group['pending']} pending, "
                        f"read to {group['last-delivered-id'].decode()} of {last[0][0].decode()}"
                    )
        for bot in self.bots:
            if self.state(bot).get("sync"):
                return f"{bot} syncing"
            if not self.r.exists(bot_lease(bot)):
                return f"{bot} has no runner (no lease)"
        return ""

    def conflicts(self) -> list[str]:
        """Conflict notifications since the last call: a bot reused a client order id for other terms
        and the order gateway refused it (not one of the six rules, but a bot that lost track)."""
        out = []
        for entry_id_, fields in self.r.xrange("notify", min=f"({self.notify_seen.decode()}"):
            self.notify_seen = entry_id_
            try:
                data = json.loads(fields.get(b"data", b"{}"))
            except ValueError:
                continue
            if data.get("kind") == "conflict":
                out.append(str(data.get("text", ""))[:240])
        return out

    def positions(self) -> list[str]:
        """Each bot's position beside the net of its venue fills (the report's last lines)."""
        snap = self.snapshot()
        out = []
        for bot in self.bots:
            pos, net = snap.state(bot).get("position") or {}, venue_position(snap, bot)
            out.append(f"{bot}: " + ", ".join(f"{k} {pos.get(k, '0')} (venue {v})" for k, v in net.items()))
        return out

    def check(self) -> tuple[list[Violation], set[str]]:
        """The rules' violations now, and the cids the order gateway adopted (records it lost)."""
        snap = self.snapshot()
        adopted = {cid for cid, rec in snap.wal.items() if rec.get("adopted") == "1"}
        return check(snap) + running(self.r, snap, self.dead()), adopted

    def stop(self) -> None:
        for proc in self.procs.values():
            proc.kill()
        self.r.close()


def run_cycles(stack: Stack, kinds: list[str], rng: random.Random, cycles: list[Cycle], *,
               stop_after: int = 0, log: Any = print) -> None:  # fmt: skip
    """A warm-up swing without a cut (every bot gets orders out), a cut after each lost window, and
    a last window without a cut (the bots trade on after the last cut), each settled and checked;
    appended to `cycles` as they end, so a run that stops half-way still reports what it saw.
    `stop_after`: stop once that many cycles broke a rule anew (0: never)."""
    seen: set[Any] = set()  # a violation is reported by the cycle after which it first showed
    recovered: set[str] = set()  # orders the gateway adopted so far

    def close(cycle: Cycle, slow: int, extra: list[Violation] = ()) -> None:
        cycle.settle = stack.settle()
        controls = control_violations(stack) if cycle.kind.startswith("control") else []
        controls += trade_violations(stack) if cycle.kind.startswith("trade") else []
        if cycle.kind.startswith(("control", "trade")):  # bots resumed, a trade closed: settled again
            cycle.settle += f"; resumed, {stack.settle()}{stack.trade_story}"
        found, adopted = stack.check()
        found += controls
        cycle.adopted = Counter(cid.rsplit("-", 1)[0] for cid in adopted - recovered)
        recovered.update(adopted)
        cycle.violations = [v for v in [*extra, *found] if v.key() not in seen]
        seen.update(v.key() for v in cycle.violations)
        cycle.slow = stack.slow[slow:]
        cycle.conflicts = stack.conflicts()
        cycles.append(cycle)
        log(cycle.line())

    while stack.live <= stack.confirms[0] + 2:
        stack.advance()
    close(Cycle(0, "warm-up"), 0)
    for n, kind in enumerate(kinds, 1):
        cycle, slow = Cycle(n, kind), len(stack.slow)
        moment, cycle.candles = stack.window(rng)
        cycle.activity = stack.activity(moment.journal)
        stack.cut(cycle, moment)
        cycle.up_s = stack.up_s
        close(cycle, slow)
        if stop_after and sum(1 for c in cycles if c.violations) >= stop_after:
            break
    last, slow = Cycle(len(cycles), "no cut"), len(stack.slow)
    moment, last.candles = stack.window(rng)
    last.activity = stack.activity(moment.journal)
    idle = [b for b, acts in last.activity.items() if not sum(acts[k] for k in ACTIVE)]
    close(last, slow, [Violation(5, bot, "-", "no order or fill after the last cut") for bot in idle])
