"""GET /api/live: server-sent events as things happen (fills, orders, balances, decisions,
notifications, bots' state).

One reader per process (Hub) reads every stream a page may show with a plain XREAD BLOCK: no
consumer group, so a viewer never takes an entry from the services that consume it, and ten
open pages cost one Redis connection. It fans each entry out to the open event streams
(bounded queues: a page that stops reading is dropped, and its browser's EventSource
reconnects). Stream names come from shared/streams.py; the set is rescanned every few seconds,
so a bot started later is followed too. A bot's state is a key, not a stream: its version is
polled and a `bot` event sent when it moves (pause applied, order placed, position changed).

Events (`event:` names): `fill` and `order` (an OrderUpdate; `fill` when it filled some),
`balance` (a BalanceUpdate), `decision`, `notification`, `bot` ({bot, mode, version}); each
`data:` is a JSON object with "bot", "venue" and "symbol" where they apply, and each `id:` is
the stream entry's id.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator
from typing import Annotated, Any

import msgspec
import orjson
import redis.asyncio as aioredis
from starlette.requests import Request
from starlette.responses import StreamingResponse

from services.web.openapi import Operation, Param
from shared.bot_view import bot_mode
from shared.codec import DecodeError, decode
from shared.messages import BalanceUpdate, Decision, Notification, OrderUpdate
from shared.redis_conn import REDIS_ERRORS
from shared.streams import ANY_ORDER_EVENTS, NOTIFY, account, any_bot

log = logging.getLogger("automata.web.live")

BLOCK_MS = 500  # longest XREAD wait: rescans and state polls happen at least this often
RESCAN_S = 5.0
STATE_POLL_S = 0.5  # how often bots' state versions are compared (`bot` events)
QUEUE_SIZE = 1000  # events held for one page before it is dropped as too slow
PING_S = 15.0  # a comment line keeps proxies from closing an idle stream
COUNT = 500
READY_S = 5.0  # longest a new page waits for the reader's cursors (Redis down: it says connected anyway)
LAST_SEQ = 2**64 - 1  # a stream id's highest sequence number


class Event(msgspec.Struct):
    name: str
    id: str
    data: bytes  # JSON

    def frame(self) -> bytes:
        return (
            b"id: " + self.id.encode() + b"\nevent: " + self.name.encode() + b"\ndata: " + self.data + b"\n\n"
        )


def to_events(stream: str, entry_id: str, fields: dict[bytes, bytes]) -> list[Event]:
    """The events one stream entry makes (none for what a page does not show or cannot decode)."""
    try:
        msg = decode(fields)
    except DecodeError:
        return []
    data = msgspec.json.encode(msg)
    if isinstance(msg, OrderUpdate):
        events = [Event("order", entry_id, data)]
        if msg.last_fill_qty > 0:
            events.append(Event("fill", entry_id, data))
        return events
    name = {BalanceUpdate: "balance", Decision: "decision", Notification: "notification"}.get(type(msg))
    return [Event(name, entry_id, data)] if name else []


class Hub:
    """The one reader of the streams, and the queues of the open event streams."""

    def __init__(self, redis: aioredis.Redis) -> None:
        self.redis = redis
        self.queues: set[asyncio.Queue[Event | None]] = set()
        self.cursors: dict[str, str] = {}  # stream -> last id read
        self.versions: dict[str, int] = {}  # bot -> state version seen
        self.task: asyncio.Task[None] | None = None
        self.closing = asyncio.Event()
        self.ready = asyncio.Event()  # the cursors are set: whatever is added from now on is read
        self._scanned = 0.0
        self._polled = 0.0

    @contextlib.asynccontextmanager
    async def subscribe(self) -> AsyncIterator[asyncio.Queue[Event | None]]:
        queue: asyncio.Queue[Event | None] = asyncio.Queue(QUEUE_SIZE)
        self.queues.add(queue)
        if self.task is None or self.task.done():
            # a reader started again after no page was open follows from now, not from where it stopped
            self.cursors.clear()
            self.ready.clear()
            self.task = asyncio.create_task(self.run(), name="web-live")
        try:
            yield queue
        finally:
            self.queues.discard(queue)

    def close(self) -> None:
        """End every open event stream (the service is stopping)."""
        self.closing.set()
        for queue in list(self.queues):
            with contextlib.suppress(asyncio.QueueFull):
                queue.put_nowait(None)
        if self.task is not None:
            self.task.cancel()

    def publish(self, event: Event) -> None:
        for queue in list(self.queues):
            try:
                queue.put_nowait(event)
            except asyncio.QueueFull:  # a page that stopped reading: end its stream
                self.queues.discard(queue)
                with contextlib.suppress(asyncio.QueueEmpty):
                    queue.get_nowait()
                queue.put_nowait(None)

    async def _scan(self, pattern: str) -> list[str]:
        return [key.decode() async for key in self.redis.scan_iter(match=pattern, count=1000)]

    async def rescan(self, first: bool) -> None:
        """Follow streams that appeared: at the first scan from the moment it began by Redis's
        clock (a page wants what happens from now on, and an entry added while the scan runs is
        part of it), from their start when they appeared later."""
        start = "0-0"
        if first:
            seconds, micros = await self.redis.time()
            start = f"{seconds * 1000 + micros // 1000 - 1}-{LAST_SEQ}"  # every id of that ms on
        found = [NOTIFY, *await self._scan(account("*")), *await self._scan(ANY_ORDER_EVENTS),
                 *await self._scan(any_bot("decisions"))]  # fmt: skip
        for stream in found:
            self.cursors.setdefault(stream, start)
        self._scanned = time.monotonic()

    async def poll_states(self, announce: bool) -> None:
        """A `bot` event for each bot whose state version moved."""
        self._polled = time.monotonic()
        keys = await self._scan(any_bot("state"))
        if not keys:
            return
        for key, raw in zip(keys, await self.redis.mget(keys), strict=True):
            try:
                doc = orjson.loads(raw) if raw else None
            except orjson.JSONDecodeError:
                continue
            if not isinstance(doc, dict):
                continue
            bot, version = key.split(":")[1], int(doc.get("version") or 0)
            if self.versions.get(bot) != version:
                self.versions[bot] = version
                if announce:
                    data = orjson.dumps(
                        {"bot": bot, "mode": bot_mode(doc.get("state") or {}), "version": version}
                    )
                    self.publish(Event("bot", str(version), data))

    async def step(self) -> None:
        if time.monotonic() - self._scanned > RESCAN_S:
            await self.rescan(first=False)
        reply = await self.redis.xread(self.cursors, count=COUNT, block=BLOCK_MS)
        for raw_stream, entries in reply or []:
            stream = raw_stream.decode()
            for raw_id, fields in entries:
                entry_id = raw_id.decode()
                self.cursors[stream] = entry_id
                for event in to_events(stream, entry_id, fields):
                    self.publish(event)
        if time.monotonic() - self._polled > STATE_POLL_S:
            await self.poll_states(announce=True)

    async def run(self) -> None:
        """Read until no page is open (a new page starts it again) or the service stops."""
        delay = 0.1
        while self.queues and not self.closing.is_set():
            try:
                if not self.ready.is_set():
                    await self.rescan(first=True)
                    await self.poll_states(announce=False)
                    self.ready.set()
                await self.step()
                delay = 0.1
            except REDIS_ERRORS + (OSError,) as exc:
                log.warning("live feed: redis: %s; retrying", type(exc).__name__)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 2.0)


async def event_stream(hub: Hub, timeout_s: float | None) -> AsyncIterator[bytes]:
    """The body of one GET /api/live: events as they come, a ping when idle."""
    deadline = None if timeout_s is None else time.monotonic() + timeout_s
    async with hub.subscribe() as queue:
        # "connected" once the reader has its cursors: every entry added after it reaches this page
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(hub.ready.wait(), READY_S)
        yield b"retry: 1000\n: connected\n\n"
        while not hub.closing.is_set():
            wait = PING_S if deadline is None else min(PING_S, deadline - time.monotonic())
            if wait <= 0:
                return
            try:
                event = await asyncio.wait_for(queue.get(), timeout=wait)
            except TimeoutError:
                yield b": ping\n\n"
                continue
            if event is None:
                return
            yield event.frame()


async def live(ctx: Any, request: Request, seconds: float | None) -> StreamingResponse:
    """Server-sent events: fill, order, balance, decision, notification, bot (see the module)."""
    return StreamingResponse(event_stream(ctx.hub, seconds), media_type="text/event-stream",
                             headers={"cache-control": "no-store", "x-accel-buffering": "no"})  # fmt: skip


OPERATIONS = [
    Operation("GET", "/api/live", "Live events (server-sent events)", live, None,
              (Param("seconds", Annotated[float, msgspec.Meta(gt=0, le=86400)],
                     description="end the stream after this many seconds (default: never)"),),
              media="text/event-stream", tags=("live",)),
]  # fmt: skip
