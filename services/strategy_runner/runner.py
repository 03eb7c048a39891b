"""Runs one bot: lease, warm-up, sync with the venue, then each input entry handled exactly once.

For every entry of `md:candles:...`, `orders:events:{bot}` and `bot:{bot}:control`:
load state -> pure strategy step -> one MULTI/EXEC writing the new state (with the entry's id
as last applied), the order commands, the notifications, the decisions, the timers, and the XACK
(ARCHITECTURE.md, exactly-once rule 2). An entry at or below the last applied id is acked and
skipped; an entry that does not belong on its stream is dead-lettered (inputs.py). A strategy
that raises pauses the bot, keeps its state and keeps the entry, which is retried when the bot
is resumed; one whose initial_state raises, or whose saved state does not load, does not start:
it says so and waits, the other bots of its process going on.

Sync: Redis may have lost its last second (a power cut) while the venue kept the orders sent
in it, so the state just loaded may be behind the venue. Before anything else the runner
commits a SyncBot (the state remembers its token) and reads only its order events until the
gateway's BotSynced answer with that token has been applied: every order of the bot the venue
holds has then reached the state (held, shared/strategy/adoption.py) and its sequence is past
all of them, so no client order id is ever reused. Candles and controls wait in their streams.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
import os
import time
from typing import Any

import msgspec

from services.strategy_runner.balances import BalanceCache
from services.strategy_runner.bots import BotConfig
from services.strategy_runner.filters import fetch_filters
from services.strategy_runner.inputs import InputCheck
from services.strategy_runner.lease import Lease
from services.strategy_runner.stall import InputWatch, input_notification, stall_after_s
from services.strategy_runner.state_store import (
    FailedEntry,
    RunnerDoc,
    already_applied,
    decode_doc,
    encode_doc,
    with_applied,
)
from services.strategy_runner.timers import TimerPump, VenueClock
from shared import metrics
from shared.bus import Commit, Consumer, Entry, FencedError, ensure_group
from shared.bus.groups import take_over_pending
from shared.codec import decode, encode
from shared.filters import SymbolFilters
from shared.history import candle_history
from shared.messages import (
    BotControl,
    Candle,
    ControlAction,
    Decision,
    Level,
    Notification,
    OrderUpdate,
    PlaceOrder,
    SyncBot,
)
from shared.redis_conn import REDIS_ERRORS, unavailable
from shared.service import ServiceContext
from shared.strategy.base import Strategy
from shared.strategy.commands import ORDER_COMMANDS, CancelTimer, SetTimer
from shared.strategy.context import StrategyContext
from shared.strategy.events import event_time
from shared.strategy.failure import failure_text
from shared.strategy.state import Mode
from shared.streams import (
    DECISIONS_MAXLEN,
    NOTIFY,
    bot_control,
    bot_decisions,
    bot_group,
    bot_state,
    bot_timers,
    candles,
    order_commands,
    order_events,
)

log = logging.getLogger("automata.strategy_runner")


class StartFailed(Exception):
    """The strategy gives the bot no state to start from: its initial_state raised, or the state
    saved in Redis does not load (a bug, or a version that reads it no longer)."""


class BotRunner:
    """Component (run/stop) for one bot."""

    def __init__(
        self, ctx: ServiceContext, bot: BotConfig, strategy: Strategy, filters: SymbolFilters | None = None
    ) -> None:
        self.ctx, self.bot, self.strategy, self.filters = ctx, bot, strategy, filters
        self.redis = ctx.redis
        self.params = strategy.parse_params(bot.params, source=f"bot {bot.id}: params")
        self.candle_stream = candles(bot.venue, bot.symbol, bot.interval)
        self.streams = [self.candle_stream, order_events(bot.id), bot_control(bot.id)]
        self.inputs = InputCheck(bot.id, bot.venue, bot.symbol, bot.interval)
        self.group = bot_group(bot.id)
        self.state_key = bot_state(bot.id)
        self.lease = Lease(self.redis, bot.id, f"{ctx.instance}:{ctx.consumer_name}:{id(self)}", bot.lease_ms)
        self._start_error = ""  # why the bot cannot start, found before run() (it says so there)
        try:
            self.history_size = max(int(strategy.history_needed(self.params, bot.interval)), 1)
        except Exception as exc:  # the strategy's bug: this bot waits, its process mates go on
            self.history_size, self._start_error = 1, f"its history_needed raised: {failure_text(exc)}"
        self.history: collections.deque[Candle] = collections.deque(maxlen=self.history_size)
        self.doc = RunnerDoc()
        self.state: Any = None
        self.consumer: Consumer | None = None
        self.clock = VenueClock()  # the venue's time, which the strategy's timers are set in
        self.timers = TimerPump(self.redis, bot.id, clock=self.clock.now_ms)
        self.watch = InputWatch(
            stall_after_s(bot.interval, bot.stall_after_s), time.monotonic(), int(time.time() * 1000)
        )
        self.balances = BalanceCache(self.redis, bot.venue)
        self._stopping = asyncio.Event()
        self._syncing = False  # consuming only the order events, until the sync is answered
        # A lease renewal (PEXPIRE) touches a key every commit WATCHes: run concurrently, it made
        # the commit fail as fenced and the entry wait a retry (1 s). One at a time, a failed
        # WATCH means another runner again.
        self._lease_writes = asyncio.Lock()
        self.active = False
        labels = ("bot",)
        self._m_events = metrics.counter(
            "automata_bot_events_total", "Events a bot handled", ("bot", "kind")
        ).labels
        self._m_orders = metrics.counter(
            "automata_bot_orders_total", "Order commands a bot sent", labels
        ).labels(bot.id)
        self._m_errors = metrics.counter("automata_bot_errors_total", "Strategy exceptions", labels).labels(
            bot.id
        )
        self._m_mode = metrics.gauge("automata_bot_running", "1 running, 0 paused/stopped", labels).labels(
            bot.id
        )
        self._m_profit = metrics.gauge(
            "automata_bot_realised_profit", "Realised profit (quote)", labels
        ).labels(bot.id)
        self._m_step = metrics.histogram(
            "automata_bot_step_seconds", "Event handling time, commit included", labels
        ).labels(bot.id)

    # -- lifecycle -----------------------------------------------------------------------

    def stop(self) -> None:
        self._stopping.set()
        if self.consumer is not None:
            self.consumer.stop()

    async def run(self) -> None:
        if self._start_error:
            await self._cannot_start(self._start_error)
            return
        if self.filters is None:
            self.filters = await fetch_filters(self.ctx, self.bot.venue, self.bot.symbol)
        while not self._stopping.is_set():
            if not await self._acquire():
                return
            try:
                await self._serve()
            except StartFailed as exc:
                await self._cannot_start(str(exc))
                return
            except FencedError as exc:
                log.error("bot %s: the lease is no longer surely ours (%s); standing by", self.bot.id, exc)
            except REDIS_ERRORS as exc:  # away, or refusing writes (a full disk): serve again after
                log.warning("bot %s: redis unavailable (%s); standing by", self.bot.id, unavailable(exc))
                await self._sleep(1.0)
            finally:
                self.active = False
                if self._stopping.is_set():
                    with contextlib.suppress(*REDIS_ERRORS):  # else it expires on its own
                        await self.lease.release()

    async def _cannot_start(self, why: str) -> None:
        """Say it once (log and notification), give the lease back, and wait for the stop: the
        other bots of the process go on, and a restart of the runner once the strategy is fixed
        tries again (crashing instead took them all down, again at every restart)."""
        text = f"{self.bot.id}: cannot start: {why}. Fix the strategy, then restart its runner."
        log.error("bot %s", text)
        now = int(time.time() * 1000)
        note = Notification(id=f"{self.bot.id}:error:start:{now}", kind="error", level=Level.ERROR,
                            bot=self.bot.id, text=text, ts=now)  # fmt: skip
        with contextlib.suppress(*REDIS_ERRORS):
            await self.redis.xadd(NOTIFY, encode(note), maxlen=100_000, approximate=True)
        with contextlib.suppress(*REDIS_ERRORS):
            await self.lease.release()
        await self._stopping.wait()

    async def _acquire(self) -> bool:
        waiting_logged = False
        while not self._stopping.is_set():
            try:
                if await self.lease.try_acquire():
                    log.info("bot %s: lease acquired (%s)", self.bot.id, self.lease.owner)
                    return True
                if not waiting_logged:
                    log.info("bot %s: lease held by %s; waiting", self.bot.id, await self.lease.holder())
                    waiting_logged = True
            except REDIS_ERRORS as exc:
                log.warning(
                    "bot %s: redis unavailable while taking the lease (%s)", self.bot.id, unavailable(exc)
                )
            await self._sleep(self.bot.lease_ms / 4000)
        return False

    async def _serve(self) -> None:
        await self._load()
        self.active = True
        renew = asyncio.create_task(self._keep_lease())
        watch = asyncio.create_task(self._watch_inputs())
        pump: asyncio.Task[None] | None = None
        try:
            while not (renew.done() or self._stopping.is_set()):
                await self._start_sync()
                await self._consume([order_events(self.bot.id)], renew, syncing=True)
                if not self.state.sync:
                    break  # answered; else unanswered for sync_retry_s: ask again
            if self.state.sync or renew.done() or self._stopping.is_set():
                return
            log.info("bot %s: in step with %s (sequence %d, %d orders held)",
                     self.bot.id, self.bot.venue, self.state.seq, len(self.state.adopted))  # fmt: skip
            pump = asyncio.create_task(self.timers.run(self._stopping))
            await self._consume(self.streams, renew)
        finally:
            for task in (renew, pump, watch):
                if task is not None and not task.done():
                    task.cancel()
            await asyncio.gather(*(t for t in (renew, pump, watch) if t is not None), return_exceptions=True)
            self.ctx.info.get("inputs", {}).pop(self.bot.id, None)  # a standby says nothing of the bot
            if renew.done() and not renew.cancelled() and renew.exception() is not None:
                raise renew.exception()  # the lease was lost: FencedError

    async def _consume(self, streams: list[str], renew: asyncio.Task[None], *, syncing: bool = False) -> None:
        """Consume `streams` until stopped, the lease is lost, or (syncing) the sync is answered."""
        self._syncing = syncing
        self.consumer = Consumer(
            self.redis, streams, self.group, self.ctx.consumer_name, self.handle,
            ordered=True, sole=True, claim_idle_ms=max(self.bot.lease_ms, 1000),
            max_deliveries=self.ctx.config.bus.max_deliveries, block_ms=500,
        )  # fmt: skip
        consume = asyncio.create_task(self.consumer.run())
        waiting = asyncio.create_task(self._report_waiting()) if syncing else None
        try:
            await asyncio.wait([renew, consume], return_when=asyncio.FIRST_COMPLETED)
        finally:
            self.consumer.stop()
            if waiting is not None:
                waiting.cancel()
            if not consume.done():
                try:
                    await asyncio.wait_for(asyncio.shield(consume), timeout=5.0)
                except TimeoutError:
                    consume.cancel()
            await asyncio.gather(consume, *([waiting] if waiting else []), return_exceptions=True)
        if not consume.cancelled() and consume.exception() is not None:
            raise consume.exception()

    async def _start_sync(self) -> None:
        """Commit a fresh sync token with the SyncBot that asks the gateway for the answer."""
        token = f"{self.ctx.instance}-{os.getpid()}-{time.time_ns()}"
        state = msgspec.structs.replace(self.state, sync=token)
        request = SyncBot(bot=self.bot.id, venue=self.bot.venue, symbol=self.bot.symbol, token=token,
                          seq=state.seq, ts=int(time.time() * 1000))  # fmt: skip
        await self._commit(None, state, [request], self.doc.failed)
        log.info("bot %s: asking the order gateway of %s where the bot stands (sync %s)",
                 self.bot.id, self.bot.venue, token)  # fmt: skip

    async def _report_waiting(self) -> None:
        """A gateway that does not answer leaves the bot idle: say so, and after sync_retry_s
        end this wait so the sync is asked again (the request may have been lost or refused)."""
        await asyncio.sleep(self.bot.sync_retry_s)
        log.warning("bot %s: the order gateway of %s has not answered its sync in %.0fs; asking again "
                    "(nothing is placed until it answers: is the order gateway running?)",
                    self.bot.id, self.bot.venue, self.bot.sync_retry_s)  # fmt: skip
        if self.consumer is not None:
            self.consumer.stop()

    async def _keep_lease(self) -> None:
        while not self._stopping.is_set():
            await self._sleep(self.bot.lease_ms / 3000)
            if self._stopping.is_set():
                return
            try:
                async with self._lease_writes:
                    renewed = await self.lease.renew()
            except REDIS_ERRORS:
                self.lease.check()  # Redis away or refusing writes: serve on while the lease surely holds
                continue
            if not renewed:
                raise FencedError("lease lost")

    async def _watch_inputs(self) -> None:
        """Publish when the last candle came (heartbeat `inputs`) and notify when the bot stalls
        or recovers: a bot without market data otherwise looks healthy everywhere."""
        self.watch.seen(time.monotonic(), int(time.time() * 1000))  # serving starts: no silence yet
        every = min(5.0, max(0.2, self.watch.limit_s / 4))
        while not self._stopping.is_set():
            change = self.watch.check(time.monotonic())
            self.ctx.info.setdefault("inputs", {})[self.bot.id] = self.watch.info()
            if change is not None:
                now_ms = int(time.time() * 1000)
                since = self.watch.last_ms
                note = input_notification(self.bot.id, self.candle_stream, change, since, now_ms)
                (log.warning if change == "stalled" else log.info)("%s", note.text)
                try:
                    await self.redis.xadd(NOTIFY, encode(note), maxlen=100_000, approximate=True)
                except Exception as exc:  # Redis down: the heartbeat and the log still say it
                    log.warning("bot %s: cannot publish the %s notification: %s", self.bot.id, change, exc)
            await self._sleep(every)

    async def _load(self) -> None:
        """State, groups, history; then take over entries a dead runner left pending."""
        await ensure_group(self.redis, self.candle_stream, self.group, start_id="$")
        for stream in self.streams[1:]:
            await ensure_group(self.redis, stream, self.group)
        self.doc = decode_doc(await self.redis.get(self.state_key))
        ctx = self._ctx(int(time.time() * 1000), await self.balances.get())
        raw = bytes(self.doc.state)
        try:
            self.state = (
                self.strategy.initial_state(self.params, ctx)
                if raw == b"null"
                else self.strategy.decode_state(raw)
            )
        except Exception as exc:  # the strategy's bug, or a saved state this version cannot read
            what = "its initial_state raised" if raw == b"null" else "its saved state does not load"
            raise StartFailed(f"{what}: {failure_text(exc)}") from exc
        last_candle = self.doc.last_applied.get(self.candle_stream)
        before = int(last_candle.split("-")[0]) + 1 if last_candle else None
        self.history.clear()
        self.history.extend(
            await candle_history(self.redis, self.bot.venue, self.bot.symbol, self.bot.interval,
                                 self.history_size, before_ms=before)
        )  # fmt: skip
        if self.history:
            self.clock.saw(self.history[-1].close_time)
        await self.timers.rearm(self.state.timers)
        for stream in self.streams:  # we hold the lease: whatever another runner left pending is ours
            await take_over_pending(self.redis, stream, self.group, self.ctx.consumer_name)
        self._m_mode.set(1 if self.state.mode == Mode.RUNNING else 0)
        log.info("bot %s: state version %d loaded, mode %s, %d candles of history",
                 self.bot.id, self.doc.version, self.state.mode, len(self.history))  # fmt: skip

    # -- one entry -----------------------------------------------------------------------

    async def handle(self, entry: Entry) -> None:
        started = time.perf_counter()
        if already_applied(self.doc, entry.stream, entry.id):
            await self.redis.xack(entry.stream, entry.group, entry.id)
            entry.acked = True
            return
        self.inputs.check(entry.stream, entry.message)  # DeadLetter: the entry does not belong here
        event = entry.message
        replay: list[Any] = []
        kept = self.doc.failed  # an entry the strategy failed on stays kept until a resume replays it
        if isinstance(event, BotControl) and event.action == ControlAction.RESUME and kept is not None:
            replay, kept = await self._failed_event(), None  # after the resume, before anything newer
        if isinstance(event, Candle):
            self.history.append(event)
            self.watch.seen(time.monotonic(), int(time.time() * 1000))
            self.clock.saw(event.close_time)
        elif isinstance(event, OrderUpdate) and event.venue_ts:
            self.clock.saw(event.venue_ts)
        # the balances this step sees were committed with the previous one (a replay sees them too)
        balances = self.doc.balances if self.doc.balances is not None else await self.balances.get()
        state, commands = self.state, []
        for ev in [event, *replay]:
            try:
                state, more = self.strategy.step(self.params, state, ev, self._ctx(event_time(ev), balances))
                commands.extend(more)
            except Exception as exc:
                self._m_errors.inc()
                where = self.doc.failed if ev is not event else FailedEntry(entry.stream, entry.id, "")
                log.exception(
                    "bot %s: strategy failed on %s %s; pausing the bot", self.bot.id, where.stream, where.id
                )
                state = msgspec.structs.replace(self.state, mode=Mode.PAUSED)
                kept = FailedEntry(where.stream, where.id, failure_text(exc))
                commands = [self._error_note(kept)]
                break
        await self._commit(entry, state, commands, kept)
        if self._syncing and not self.state.sync and self.consumer is not None:
            self.consumer.stop()  # the sync is answered: serve every input from now on
        self._m_events(self.bot.id, type(event).__name__).inc()
        self._m_step.observe(time.perf_counter() - started)

    async def _failed_event(self) -> list[Any]:
        failed = self.doc.failed
        assert failed is not None
        entries = await self.redis.xrange(failed.stream, min=failed.id, max=failed.id)
        return [decode(entries[0][1])] if entries else []

    async def _commit(
        self, entry: Entry | None, state: Any, commands: list[Any], failed: FailedEntry | None
    ) -> None:
        """State, commands, timers and the entry's ack in one MULTI/EXEC, fenced by the lease
        and the state's version; with the balances the next step will see."""
        doc = with_applied(
            self.doc, entry.stream if entry else None, entry.id if entry else "", self.strategy.encode_state(state),
            failed=failed, balances=await self.balances.get(),
        )  # fmt: skip
        commit = Commit().set(self.state_key, encode_doc(doc))
        orders = 0
        for cmd in commands:
            if isinstance(cmd, (*ORDER_COMMANDS, SyncBot)):
                commit.publish(order_commands(self.bot.venue, self.bot.id), cmd)
                orders += isinstance(cmd, PlaceOrder)
            elif isinstance(cmd, Notification):
                commit.publish(NOTIFY, cmd, maxlen=100_000)
            elif isinstance(cmd, Decision):
                commit.publish(bot_decisions(self.bot.id), cmd, maxlen=DECISIONS_MAXLEN)
            elif isinstance(cmd, SetTimer):
                commit.zadd(bot_timers(self.bot.id), {cmd.name: cmd.due})
            elif isinstance(cmd, CancelTimer):
                commit.zrem(bot_timers(self.bot.id), cmd.name)
        if entry is not None:
            commit.ack(entry.stream, entry.group, entry.id, entry)
        expected_version = self.doc.version

        async def still_ours(pipe) -> bool:
            # both keys in one round trip (read after the WATCH, like two GETs, for one less wait)
            holder, stored = await pipe.mget(self.lease.key, self.state_key)
            return holder == self.lease.owner.encode() and decode_doc(stored).version == expected_version

        async with self._lease_writes:
            await commit.execute(self.redis, watch=[self.lease.key, self.state_key], check=still_ours)
        self.doc, self.state = doc, state
        for cmd in commands:  # committed: the bot's log keeps its decisions, once each
            if isinstance(cmd, Decision):
                log.info(
                    "bot %s: %s", self.bot.id, cmd.text, extra={"fields": {"bot": self.bot.id, **cmd.fields}}
                )
        self._m_orders.inc(orders)
        self._m_mode.set(1 if state.mode == Mode.RUNNING else 0)
        self._m_profit.set(float(state.position.realised))

    # -- helpers -------------------------------------------------------------------------

    def _ctx(self, now: int, balances: dict | None = None) -> StrategyContext:
        return StrategyContext(
            bot=self.bot.id, venue=self.bot.venue, symbol=self.bot.symbol, interval=self.bot.interval,
            filters=self.filters, now=now, history=tuple(self.history), balances=balances,
        )  # fmt: skip

    def _error_note(self, failed: FailedEntry) -> Notification:
        return Notification(
            id=f"{self.bot.id}:error:{failed.stream}:{failed.id}", kind="error", level=Level.ERROR, bot=self.bot.id,
            text=f"{self.bot.id}: strategy failed ({failed.error}); bot paused, state kept. Resume to retry the entry.",
            data={"stream": failed.stream, "id": failed.id}, ts=int(time.time() * 1000),
        )  # fmt: skip

    async def _sleep(self, seconds: float) -> None:
        try:
            await asyncio.wait_for(self._stopping.wait(), timeout=seconds)
        except TimeoutError:
            pass
