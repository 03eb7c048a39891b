"""The order write-ahead log in Redis: og:order:{cid} hashes and the og:open:{venue} set.

`create` is SET-NX-like (a Lua script): a cid seen before is never created — so never sent —
twice. `update` is read -> pure function -> MULTI/EXEC under WATCH, so the user stream, the
poller, the command handler and reconciliation can race on one order without losing or
duplicating a transition; the bot's order update and the command's XACK ride in the same EXEC.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from decimal import Decimal

import redis.asyncio as aioredis
from redis.exceptions import WatchError

from services.order_gateway.records import OrderRecord, Progress
from shared.bus import Entry
from shared.codec import encode
from shared.messages import Message, OrderStatus
from shared.streams import EVENTS_MAXLEN, og_open, og_order, og_symbols

_CREATE = """
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
redis.call('HSET', KEYS[1], unpack(ARGV))
redis.call('SADD', KEYS[2], ARGV[2])
redis.call('SADD', KEYS[3], redis.call('HGET', KEYS[1], 'symbol'))
return 1
"""

Mutation = Callable[[OrderRecord], Awaitable[tuple[OrderRecord, Sequence[tuple[str, Message]]] | None]]


class Wal:
    def __init__(self, redis: aioredis.Redis, venue: str) -> None:
        self.redis, self.venue = redis, venue
        self._create = redis.register_script(_CREATE)

    async def create(self, record: OrderRecord) -> bool:
        """Write the record unless the cid exists; True when this call created it."""
        fields = record.to_hash()
        argv: list[str] = ["cid", fields.pop("cid")]
        for key, value in fields.items():
            argv += [key, value]
        keys = [og_order(record.cid), og_open(self.venue), og_symbols(self.venue)]
        return bool(await self._create(keys=keys, args=argv))

    async def get(self, cid: str) -> OrderRecord | None:
        data = await self.redis.hgetall(og_order(cid))
        return OrderRecord.from_hash(data) if data else None

    async def progress(self, cid: str) -> Progress | None:
        """Status and filled quantity only: enough to tell a stale report, for a fraction of
        the parsing of the whole record (the user stream asks this for every event)."""
        status, filled = await self.redis.hmget(og_order(cid), ["status", "cum_filled_qty"])
        if status is None:
            return None
        return Progress(OrderStatus(status.decode()), Decimal(filled.decode() if filled else "0"))

    async def open_cids(self) -> list[str]:
        return sorted(x.decode() for x in await self.redis.smembers(og_open(self.venue)))

    async def save(
        self,
        record: OrderRecord,
        publish: Sequence[tuple[str, Message]] = (),
        ack: Entry | None = None,
    ) -> None:
        """Write the record (and keep og:open in step), publish, and ack, in one MULTI/EXEC."""
        async with self.redis.pipeline(transaction=True) as pipe:
            self._queue(pipe, record, publish, ack)
            await pipe.execute()
        if ack is not None:
            ack.acked = True

    async def update(self, cid: str, mutate: Mutation, ack: Entry | None = None) -> OrderRecord | None:
        """Apply mutate(record) atomically; returns the new record, or None if nothing changed.

        mutate returns (new_record, messages to publish) or None for no change; it may run
        more than once when another writer touched the record meanwhile."""
        key = og_order(cid)
        while True:
            async with self.redis.pipeline(transaction=True) as pipe:
                try:
                    await pipe.watch(key)
                    data = await pipe.hgetall(key)
                    if not data:
                        await pipe.reset()
                        return None
                    result = await mutate(OrderRecord.from_hash(data))
                    if result is None:
                        await pipe.reset()
                        if ack is not None:
                            await self.redis.xack(ack.stream, ack.group, ack.id)
                            ack.acked = True
                        return None
                    record, publish = result
                    pipe.multi()
                    self._queue(pipe, record, publish, ack)
                    await pipe.execute()
                except WatchError:
                    continue
            if ack is not None:
                ack.acked = True
            return record

    def _queue(
        self, pipe, record: OrderRecord, publish: Sequence[tuple[str, Message]], ack: Entry | None
    ) -> None:
        pipe.hset(og_order(record.cid), mapping=record.to_hash())
        if record.terminal:
            pipe.srem(og_open(self.venue), record.cid)
        else:
            pipe.sadd(og_open(self.venue), record.cid)
        for stream, msg in publish:
            pipe.xadd(stream, encode(msg), maxlen=EVENTS_MAXLEN, approximate=True)
        if ack is not None:
            pipe.xack(ack.stream, ack.group, ack.id)
