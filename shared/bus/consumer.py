"""A consumer-group reader with the guarantees FastStream does not give on its own.

- On start, and after a failure, it re-reads its OWN pending entries (history, id 0) before
  new ones (`>`), one entry at a time so each delivery count is an honest count of attempts.
- Entries idle longer than `claim_idle_ms` in another consumer's pending list are taken over
  with XAUTOCLAIM JUSTID (which does not bump their delivery count), then replayed as its own
  before any new entry is read: they are older than anything `>` would return.
- An entry that does not decode, or was delivered `max_deliveries` times already, is copied
  to `dlq:{stream}` with the reason and acked, in one MULTI/EXEC: it never blocks the stream.
  A handler raising DeadLetter(reason) has its entry dead-lettered at once, the same way.
- An entry is acked only after its handler returned (batched XACK per read), unless the
  handler acked it itself through a Commit (then `entry.acked` is True).
- `ordered=True`: after a failure nothing newer is handled until the failed entry succeeds
  or is dead-lettered (a strategy must see its inputs in order).
- SIGTERM: `stop()` lets the entry in hand finish, acks it, and returns; a read blocked waiting
  for new entries is cancelled, so a stop never waits out `block_ms`.
- A handler raising FencedError (its commit lost the fencing check) ends run() with that error:
  the entry stays pending for the new owner and is never counted as a failed delivery.
- A handler may defer an entry (`entry.deferred = True`, as shared/bus/lanes.py does): the
  consumer then neither acks nor counts it; whoever took it settles it later. Entries it still
  holds (`holds(stream, id)`) are skipped when the own pending list is replayed, so a replay
  neither hands them over twice nor bumps their delivery counts.
- `gate()`, when given, is called before each claim and read of new entries; raising
  FencedError there ends run() (a gateway whose lease may have lapsed reads nothing more).
- `flush()`, when given, is awaited after each batch's handlers and before its XACK: a handler
  that only collects entries (the ledger writes a whole batch in one database transaction) has
  them written there. It returns False when they were not written (the service stops while its
  database is away): nothing of the batch is acked, all of it stays pending for the next start.
- `sole=True`: the consumer is the group's only rightful reader (it holds a lease). Each read
  of new entries is pipelined with XPENDING of the streams read: entries another consumer
  holds pending (a predecessor frozen past its lease that read once more on waking, its commit
  then fenced) are older than the ones just read, so they are all taken over and replayed in
  order before anything newer is handled (a handler skipping what is older than its last
  applied entry would otherwise lose them).
- Streams can be added while it runs (`add_streams`, or `discover()` polled every
  `discover_every_s`): each gets its group and is then read like the first ones, own pending
  list replayed first (the order gateway reads one command stream per bot, and bots come later).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import redis.asyncio as aioredis
from redis.exceptions import ResponseError

from shared import metrics
from shared.bus.commit import FencedError
from shared.bus.dlq import DeadLetter, dead_letter, dead_letter_reason, failed_reason
from shared.bus.groups import delete_idle_consumers, ensure_group, next_id, take_over_pending
from shared.codec import DecodeError, decode
from shared.messages import Message
from shared.redis_conn import REDIS_ERRORS, TRANSIENT_ERRORS, unavailable
from shared.streams import DLQ_MAXLEN

log = logging.getLogger("automata.bus")


@dataclass(slots=True)
class Entry:
    """One stream entry handed to a handler."""

    stream: str
    id: str
    fields: dict[bytes, bytes]
    message: Message | None
    deliveries: int
    group: str
    acked: bool = False
    deferred: bool = False  # taken by the handler to settle later: the consumer neither acks nor counts it


Handler = Callable[[Entry], Awaitable[None]]


class _ReadStopped(Exception):
    """stop() ended a blocking read: nothing was read, leave the loop."""


@dataclass(slots=True)
class _StreamState:
    name: str
    m_handled: Any = None  # the (stream, group) child of the handled counter, looked up once
    failed: bool = False  # a handler failed; replay own pending after retry_at
    retry_at: float = 0.0
    pending_due: bool = True  # own pending list must be replayed before `>`


@dataclass
class Consumer:
    """Reads `streams` in `group` as consumer `name` and calls `handler` for each entry."""

    redis: aioredis.Redis
    streams: Sequence[str]
    group: str
    name: str
    handler: Handler
    count: int = 100
    block_ms: int = 1000
    claim_idle_ms: int = 60_000
    claim_every_s: float = 5.0
    max_deliveries: int = 5
    retry_delay_s: float = 1.0
    ordered: bool = False
    decode: bool = True
    dlq_maxlen: int = DLQ_MAXLEN
    forget_consumers_after_ms: int = 24 * 3600 * 1000
    holds: Callable[[str, str], bool] | None = None  # (stream, id) a deferring handler still has in hand
    gate: Callable[[], None] | None = None  # raises (FencedError) when this consumer may not read on
    discover: Callable[[], Awaitable[Iterable[str]]] | None = None  # more streams to read, polled
    discover_every_s: float = 5.0
    flush: Callable[[], Awaitable[bool]] | None = None  # write what the handlers collected; before XACK
    sole: bool = False  # the group's only rightful reader: take over what others hold before going on
    _states: dict[str, _StreamState] = field(default_factory=dict, init=False)
    _stopping: asyncio.Event = field(default_factory=asyncio.Event, init=False)
    _next_claim: float = field(default=0.0, init=False)
    _next_discover: float = field(default=0.0, init=False)
    _ready: asyncio.Event = field(default_factory=asyncio.Event, init=False)
    _reading: asyncio.Future[Any] | None = field(default=None, init=False)  # the blocking read, if any

    def __post_init__(self) -> None:
        if self.claim_idle_ms <= 0:
            raise ValueError(
                "claim_idle_ms must be > 0 (use bus.groups.take_over_pending to take all at once)"
            )
        m = metrics.bus_metrics()
        self._m_handled = m.handled
        self._m_failed = m.failed
        self._m_claimed = m.claimed
        for stream in self.streams:
            self._add_state(stream)

    def _add_state(self, stream: str) -> None:
        state = self._states[stream] = _StreamState(stream)  # pending_due: its own pending first
        state.m_handled = self._m_handled.labels(stream, self.group)

    @property
    def stream_names(self) -> list[str]:
        """Every stream read now (the ones given and the ones added since)."""
        return list(self._states)

    async def add_streams(self, streams: Iterable[str]) -> list[str]:
        """Read these streams too, from the next read on: the group is created on each new one
        (at id 0, so what was written before is read), its own pending list replayed first.
        Returns the streams that were new."""
        added = []
        for stream in dict.fromkeys(streams):
            if stream in self._states:
                continue
            await ensure_group(self.redis, stream, self.group)
            self._add_state(stream)
            added.append(stream)
        if added:
            log.info("%s: reading %s too", self.group, ", ".join(added))
        return added

    # -- lifecycle ---------------------------------------------------------------------------

    def stop(self) -> None:
        """Finish the entry in hand, ack it, and leave run(); a blocking read ends at once."""
        self._stopping.set()
        if self._reading is not None:
            self._reading.cancel()

    @property
    def stopping(self) -> bool:
        return self._stopping.is_set()

    async def wait_ready(self) -> None:
        """Returns once the groups exist and the own pending list was replayed the first time."""
        await self._ready.wait()

    async def run(self) -> None:
        backoff = 0.1
        while not self.stopping:
            try:
                await self._setup()
                await self._loop()
                return
            except TRANSIENT_ERRORS as exc:
                log.warning("redis unavailable (%s); retrying in %.1fs", unavailable(exc), backoff)
                await self._sleep(backoff)
                backoff = min(backoff * 2, 5.0)
                for state in self._states.values():
                    state.pending_due = True

    async def _setup(self) -> None:
        for stream in list(self._states):
            await ensure_group(self.redis, stream, self.group)

    async def _loop(self) -> None:
        while not self.stopping:
            now = time.monotonic()
            for state in list(self._states.values()):
                if state.pending_due or (state.failed and now >= state.retry_at):
                    await self._replay_own_pending(state)
                    if self.stopping:
                        return
            self._ready.set()
            if self.gate is not None:
                self.gate()
            if now >= self._next_claim:
                self._next_claim = now + self.claim_every_s
                if await self._claim_idle():
                    continue  # replay what was claimed (older) before reading anything newer
            if self.discover is not None and now >= self._next_discover:
                self._next_discover = now + self.discover_every_s
                if await self.add_streams(await self.discover()):
                    continue  # replay the new streams' own pending lists before reading them
            readable = [s.name for s in self._states.values() if not (self.ordered and s.failed)]
            if not readable:
                await self._sleep(self._time_to_retry())
                continue
            try:
                reply, others = await self._read_new(readable)
            except ResponseError as exc:
                if "NOGROUP" not in str(exc):
                    raise
                log.warning("consumer group %s vanished (%s): recreating it", self.group, exc)
                await self._setup()
                continue
            except _ReadStopped:
                return
            if others:
                await self._take_over(others)
                continue  # what was just read is replayed after what was taken over, in order
            for stream_b, entries in reply or ():
                stream = stream_b.decode() if isinstance(stream_b, bytes) else stream_b
                await self._handle_batch(self._states[stream], entries, deliveries=1)
                if self.stopping:
                    return

    async def _read_new(self, readable: list[str]) -> tuple[Any, list[str]]:
        """XREADGROUP `>`, blocking up to block_ms; raises _ReadStopped when stop() ended the wait.
        Returns the reply and (sole) the streams where other consumers hold entries pending.

        The read runs as a task of its own that stop() cancels: a SIGTERM need not wait out the
        block. redis-py drops a connection whose reply was cancelled, so no other command reads
        it; entries Redis handed that read in the same instant stay pending for this consumer and
        are replayed first at its next start (a stop costs them what a crash would, no more)."""
        self._reading = reading = asyncio.ensure_future(self._read_and_check(readable))
        try:
            return await reading
        except asyncio.CancelledError:
            task = asyncio.current_task()
            if reading.cancelled() and self.stopping and not (task is not None and task.cancelling()):
                raise _ReadStopped from None  # stop() cancelled the read; run() itself was not
            raise
        finally:
            self._reading = None

    async def _read_and_check(self, readable: list[str]) -> tuple[Any, list[str]]:
        """The read; when sole, XPENDING of each stream in the same round trip, run by Redis
        right after the read: an entry older than the ones read that another consumer took is
        still pending for it then (its commit was fenced), so none is handled out of order."""
        streams = dict.fromkeys(readable, ">")
        if not self.sole:
            return await self.redis.xreadgroup(
                self.group, self.name, streams, count=self.count, block=self.block_ms
            ), []
        pipe = self.redis.pipeline(transaction=False)
        pipe.xreadgroup(self.group, self.name, streams, count=self.count, block=self.block_ms)
        for stream in readable:
            pipe.xpending(stream, self.group)
        reply, *pending = await pipe.execute()
        mine = (self.name, self.name.encode())
        return reply, [
            stream
            for stream, summary in zip(readable, pending, strict=True)
            if any(c["name"] not in mine for c in summary["consumers"])
        ]

    async def _take_over(self, streams: list[str]) -> None:
        """Move what other consumers hold pending on `streams` to this one, to be replayed first."""
        for stream in streams:
            moved = await take_over_pending(self.redis, stream, self.group, self.name)
            log.warning("%s: took over %d entries another consumer of %s read", self.group, moved, stream)
            self._states[stream].pending_due = True

    # -- handling ----------------------------------------------------------------------------

    async def _handle_batch(self, state: _StreamState, entries: list[Any], deliveries: int) -> None:
        """Handle entries in order; XACK the successful ones in one call afterwards.

        This is the hot path (one pass per read of up to `count` entries): the handler is
        awaited inline and the handled counter is bumped once per batch."""
        to_ack: list[bytes] = []
        handled = 0
        stopping = self._stopping.is_set
        handler, group, stream, want_decode = self.handler, self.group, state.name, self.decode
        try:
            for raw_id, fields in entries:
                if stopping():
                    # stop between entries: the rest stays pending for this consumer's next start
                    break
                entry_id = raw_id.decode() if isinstance(raw_id, bytes) else raw_id
                if not fields:
                    # trimmed or deleted before it was handled: nothing left to handle
                    log.warning("%s %s was deleted while pending; acking it", stream, entry_id)
                    to_ack.append(raw_id)
                    continue
                message = None
                if want_decode:
                    try:
                        message = decode(fields)
                    except DecodeError as exc:
                        await self._dead_letter(stream, entry_id, fields, f"decode error: {exc}", deliveries)
                        continue
                entry = Entry(stream, entry_id, fields, message, deliveries, group)
                try:
                    await handler(entry)
                except asyncio.CancelledError:
                    raise
                except REDIS_ERRORS:
                    raise  # Redis went away mid-handler: run() reconnects and replays this entry
                except FencedError:
                    raise  # this process no longer owns the work: stop, never a failed delivery
                except DeadLetter as exc:  # the handler knows retrying cannot help
                    await self._dead_letter(stream, entry_id, fields, dead_letter_reason(exc), deliveries)
                    continue
                except Exception as exc:
                    self._failed(state, entry_id, deliveries, exc)
                    if self.ordered:
                        break  # nothing newer until this one succeeds or is dead-lettered
                    continue
                if entry.deferred:
                    continue
                handled += 1
                if not entry.acked:
                    to_ack.append(raw_id)
        finally:
            if handled:
                state.m_handled.inc(handled)
            if to_ack and (self.flush is None or await self.flush()):
                await self.redis.xack(stream, group, *to_ack)

    def _failed(self, state: _StreamState, entry_id: str, deliveries: int, exc: Exception) -> None:
        """A handler raised: the entry stays pending and is retried after retry_delay_s."""
        self._m_failed.labels(state.name, self.group).inc()
        log.error(
            "handler failed on %s %s (delivery %d): %s", state.name, entry_id, deliveries, exc, exc_info=exc
        )
        state.failed = True
        state.retry_at = time.monotonic() + self.retry_delay_s

    async def _replay_own_pending(self, state: _StreamState) -> None:
        """Replay this consumer's own pending entries, one at a time, oldest first.

        XPENDING (for the delivery count) and XREADGROUP from the previous id (for the entry)
        are pipelined, so each replayed entry costs one round trip."""
        state.pending_due = False
        state.failed = False
        after = "0"
        while not self.stopping:
            pipe = self.redis.pipeline(transaction=False)
            pipe.xpending_range(
                state.name, self.group, min=next_id(after), max="+", count=1, consumername=self.name
            )
            if self.holds is None:
                pipe.xreadgroup(self.group, self.name, {state.name: after}, count=1)
            pending, *read = await pipe.execute()
            if not pending:
                return
            info = pending[0]
            entry_id = info["message_id"].decode()
            delivered_before = int(info["times_delivered"])
            if self.holds is not None:
                if self.holds(state.name, entry_id):
                    after = entry_id  # in hand already: not a new delivery
                    continue
                read = [await self.redis.xreadgroup(self.group, self.name, {state.name: after}, count=1)]
            reply = read[0]
            entries = reply[0][1] if reply else []
            if not entries:
                return
            raw_id, fields = entries[0]
            after = raw_id.decode()
            if after != entry_id:
                # the PEL changed between the two reads (another consumer claimed it); rescan
                after = "0"
                continue
            if fields and delivered_before >= self.max_deliveries:
                await self._dead_letter(
                    state.name, entry_id, fields, failed_reason(delivered_before), delivered_before
                )
                continue
            await self._handle_batch(state, [(raw_id, fields)], deliveries=delivered_before + 1)
            if state.failed and self.ordered:
                return  # retry this one first, later
                # unordered: leave it pending and go on with the next pending one

    async def _claim_idle(self) -> int:
        """Take over entries another consumer left pending longer than claim_idle_ms; returns
        how many. Each stream that got some is marked for a replay of its own pending list."""
        total = 0
        for state in list(self._states.values()):
            claimed = 0
            while True:
                # JUSTID keeps delivery counts honest; redis-py then drops the cursor, so scan from
                # the start again: what was just claimed is no longer idle and is not returned.
                ids = await self.redis.xautoclaim(
                    state.name,
                    self.group,
                    self.name,
                    self.claim_idle_ms,
                    start_id="0-0",
                    count=100,
                    justid=True,
                )
                claimed += self._new(state.name, ids)
                if len(ids) < 100:
                    break
            if claimed:
                log.info("claimed %d idle entries of %s from dead consumers", claimed, state.name)
                self._m_claimed.labels(state.name, self.group).inc(claimed)
                state.pending_due = True
                total += claimed
            try:
                await delete_idle_consumers(
                    self.redis, state.name, self.group, self.forget_consumers_after_ms, keep=self.name
                )
            except ResponseError:
                pass
        return total

    async def _dead_letter(
        self, stream: str, entry_id: str, fields: dict, reason: str, deliveries: int
    ) -> None:
        await dead_letter(
            self.redis, stream, self.group, self.name, entry_id, fields, reason, deliveries, self.dlq_maxlen
        )

    # -- helpers -----------------------------------------------------------------------------

    def _new(self, stream: str, ids: list[Any]) -> int:
        """How many claimed ids are news (not entries a deferring handler has in hand, whose
        idle time XAUTOCLAIM just reset)."""
        if self.holds is None:
            return len(ids)
        return sum(1 for i in ids if not self.holds(stream, i.decode() if isinstance(i, bytes) else i))

    def _time_to_retry(self) -> float:
        due = [s.retry_at for s in self._states.values() if s.failed]
        if not due:
            return 0.05
        return max(0.01, min(due) - time.monotonic())

    async def _sleep(self, seconds: float) -> None:
        try:
            await asyncio.wait_for(self._stopping.wait(), timeout=seconds)
        except TimeoutError:
            pass
