"""Per-key lanes: one key's entries strictly in stream order, different keys concurrently.

The order gateway handles every bot of a venue in one consumer. Handled inline, one bot's stuck
order (resolve retries, venue timeouts, a failing cancel) held up every other bot's orders.
Lanes keep what matters — a bot's commands in the order it sent them — and drop what does
not: the order between bots.

    lanes = Lanes(redis, handler, key=lambda e: e.message.bot, consumer=name)
    consumer = Consumer(redis, [stream], group, name, lanes.submit, holds=lanes.holds)
    await asyncio.gather(consumer.run(), lanes.run())

- `submit` is the consumer's handler: it marks the entry deferred (the consumer neither acks
  nor counts it) and queues it on its key's lane; it waits while `max_in_flight` entries are
  held, so the consumer stops reading. An entry already held (a replay) is not queued twice.
- A lane runs the handler and acks the entry when the handler did not (a handler committing
  through a MULTI/EXEC acks there and sets `entry.acked`). A failure is retried in place, with a
  growing delay, the lane's later entries waiting; each retry is a real redelivery (XCLAIM to
  itself, which counts it), so after a crash the count is honest. At `max_deliveries` the entry
  is dead-lettered with the last error; DeadLetter dead-letters it at once.
- Redis going away mid-handler is not the entry's fault: it is retried once Redis answers,
  uncounted. FencedError (this process lost its lease) stops every lane at once and makes
  `run()` raise it; the entries stay pending for the new owner.
- `stop()`: each lane finishes the entry in hand; the rest stay pending. A restarted consumer
  replays its pending list in stream order, so each key's order holds across a SIGKILL too.
"""

from __future__ import annotations

import asyncio
import collections
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import redis.asyncio as aioredis

from shared import metrics
from shared.bus.commit import FencedError
from shared.bus.consumer import Entry, Handler
from shared.bus.dlq import DeadLetter, dead_letter, dead_letter_reason, failed_reason
from shared.redis_conn import REDIS_ERRORS, unavailable
from shared.streams import DLQ_MAXLEN

log = logging.getLogger("automata.bus")

KeyOf = Callable[[Entry], str]


@dataclass
class Lanes:
    """Component (run/stop) running `handler` per key of `key(entry)`; see the module doc."""

    redis: aioredis.Redis
    handler: Handler
    key: KeyOf
    consumer: str  # the consumer name the entries are pending under
    max_deliveries: int = 5
    retry_delay_s: float = 1.0
    max_retry_delay_s: float = 30.0
    max_in_flight: int = 1000
    dlq_maxlen: int = DLQ_MAXLEN
    _queues: dict[str, collections.deque[Entry]] = field(default_factory=dict, init=False)
    _tasks: dict[str, asyncio.Task[None]] = field(default_factory=dict, init=False)
    _held: set[tuple[str, str]] = field(default_factory=set, init=False)
    _room: asyncio.Event = field(default_factory=asyncio.Event, init=False)
    _stopping: asyncio.Event = field(default_factory=asyncio.Event, init=False)
    _fatal: BaseException | None = field(default=None, init=False)

    def __post_init__(self) -> None:
        if self.max_in_flight < 1:
            raise ValueError("max_in_flight must be >= 1")
        m = metrics.bus_metrics()
        self._m_handled, self._m_failed = m.handled, m.failed

    # -- the consumer's side -------------------------------------------------------------

    async def submit(self, entry: Entry) -> None:
        """The consumer's handler: queue the entry on its lane (waits while lanes are full)."""
        entry.deferred = True
        ref = (entry.stream, entry.id)
        if ref in self._held:
            return  # a replay of an entry a lane has in hand
        while len(self._held) >= self.max_in_flight and not self.stopping:
            self._room.clear()
            await self._room.wait()  # a lane released an entry, or stop()
        if self.stopping:
            return  # left pending: replayed, in order, at the next start
        self._held.add(ref)
        key = self.key(entry)
        queue = self._queues.get(key)
        if queue is None:
            queue = self._queues[key] = collections.deque()
            self._tasks[key] = asyncio.create_task(self._lane(key, queue), name=f"lane:{key}")
        queue.append(entry)

    def holds(self, stream: str, entry_id: str) -> bool:
        """Whether a lane has this entry (queued or in hand): for Consumer(holds=...)."""
        return (stream, entry_id) in self._held

    @property
    def in_flight(self) -> int:
        return len(self._held)

    # -- lifecycle -----------------------------------------------------------------------

    @property
    def stopping(self) -> bool:
        return self._stopping.is_set()

    def stop(self) -> None:
        """Each lane finishes the entry in hand; the rest stay pending."""
        self._stopping.set()
        self._room.set()

    async def run(self) -> None:
        """Until stop() and every lane is done; raises FencedError if a handler was fenced."""
        try:
            await self._stopping.wait()
            while self._tasks:
                await asyncio.wait(list(self._tasks.values()))
        finally:
            for task in self._tasks.values():
                task.cancel()
        if self._fatal is not None:
            raise self._fatal

    # -- a lane --------------------------------------------------------------------------

    async def _lane(self, key: str, queue: collections.deque[Entry]) -> None:
        try:
            while queue and not self.stopping:
                await self._run(queue[0])
                self._release(queue.popleft())
        except FencedError as exc:
            log.error("lane %s: fenced (%s); stopping every lane", key, exc)
            self._fatal = self._fatal or exc
            self.stop()
            for other in self._tasks.values():
                if other is not asyncio.current_task():
                    other.cancel()  # their writes are fenced too: no point finishing them
        except asyncio.CancelledError:
            pass
        except Exception:  # a bug here must not silently stop the lane's key forever
            log.exception("lane %s crashed; stopping", key)
            self._fatal = self._fatal or RuntimeError(f"lane {key} crashed")
            self.stop()
        finally:
            for entry in queue:  # not handled: still pending in Redis
                self._release(entry)
            del self._queues[key], self._tasks[key]

    def _release(self, entry: Entry) -> None:
        self._held.discard((entry.stream, entry.id))
        self._room.set()

    async def _run(self, entry: Entry) -> None:
        """Handle one entry until it is acked or dead-lettered (or the lanes stop)."""
        delay = self.retry_delay_s
        redis_delay = 0.1
        while True:
            try:
                await self.handler(entry)
            except (asyncio.CancelledError, FencedError):
                raise
            except DeadLetter as exc:
                await self._settle(self._dead_letter, entry, dead_letter_reason(exc))
                return
            except REDIS_ERRORS as exc:  # Redis went away: not the entry's fault, not counted
                log.warning(
                    "redis unavailable in the handler of %s %s (%s)", entry.stream, entry.id, unavailable(exc)
                )
                if not await self._pause(redis_delay):
                    return
                redis_delay = min(redis_delay * 2, 5.0)
                continue
            except Exception as exc:
                self._m_failed.labels(entry.stream, entry.group).inc()
                log.error(
                    "handler failed on %s %s (delivery %d): %s",
                    entry.stream, entry.id, entry.deliveries, exc, exc_info=exc,
                )  # fmt: skip
                if entry.acked:
                    return  # it failed after its commit: what it committed stands
                if entry.deliveries >= self.max_deliveries:
                    await self._settle(self._dead_letter, entry, failed_reason(entry.deliveries, exc))
                    return
                if not await self._pause(delay):
                    return
                delay = min(delay * 2, self.max_retry_delay_s)
                if not await self._settle(self._redeliver, entry):
                    return  # no longer pending (acked or deleted meanwhile): nothing left to do
                continue
            if not entry.acked:
                await self._settle(self._ack, entry)
            self._m_handled.labels(entry.stream, entry.group).inc()
            return

    async def _redeliver(self, entry: Entry) -> bool:
        """XCLAIM the entry to ourselves again: Redis counts the delivery, as a replay would."""
        claimed = await self.redis.xclaim(
            entry.stream, entry.group, self.consumer, min_idle_time=0, message_ids=[entry.id]
        )
        if not claimed:
            return False
        entry.deliveries += 1
        return True

    async def _ack(self, entry: Entry) -> bool:
        await self.redis.xack(entry.stream, entry.group, entry.id)
        entry.acked = True
        return True

    async def _dead_letter(self, entry: Entry, reason: str) -> bool:
        await dead_letter(
            self.redis, entry.stream, entry.group, self.consumer, entry.id, entry.fields,
            reason, entry.deliveries, self.dlq_maxlen,
        )  # fmt: skip
        entry.acked = True
        return True

    async def _settle(self, op: Callable[..., Any], *args: Any) -> bool:
        """Run a Redis step of settling an entry, waiting out a Redis outage; False on stop."""
        delay = 0.1
        while True:
            try:
                return await op(*args)
            except REDIS_ERRORS as exc:
                log.warning("redis unavailable (%s); retrying in %.1fs", unavailable(exc), delay)
                if not await self._pause(delay):
                    return False
                delay = min(delay * 2, 5.0)

    async def _pause(self, seconds: float) -> bool:
        """Sleep unless stopping; False when the lanes stop (the entry stays pending)."""
        try:
            await asyncio.wait_for(self._stopping.wait(), timeout=seconds)
        except TimeoutError:
            pass
        return not self.stopping
