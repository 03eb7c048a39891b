"""The order write-ahead log in Redis: og:order:{cid} hashes and the og:open:{venue} set.

`create` is SET-NX-like (a Lua script): a cid seen before is never created — so never sent —
twice. `update` is read -> pure function -> MULTI/EXEC under WATCH, so the user stream, the
poller, the command handler and reconciliation can race on one order without losing or
duplicating a transition; the bot's order update and the command's XACK ride in the same EXEC.

Fencing (one active gateway per venue, shared/lease.py): given the gateway's lease, `create`
checks in its script that the lease is still this gateway's, and every MULTI/EXEC WATCHes the
lease key and checks the same first. A gateway that lost its lease raises FencedError and
writes nothing. A renewal of our own lease also trips the WATCH: the write is then tried
again (the check says whether the lease is still ours), so renewals never fail a commit.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from decimal import Decimal

import redis.asyncio as aioredis
from redis.exceptions import WatchError

from shared.bus import Commit, Entry, FencedError
from shared.codec import encode
from shared.lease import Lease
from shared.messages import Message, OrderStatus
from shared.order_record import OrderRecord, Progress
from shared.streams import EVENTS_MAXLEN, og_open, og_order, og_symbols

# ARGV[1]: the lease owner (checked when KEYS[4], the lease key, is given); ARGV[2..]: fields.
_CREATE = """
if KEYS[4] and redis.call('GET', KEYS[4]) ~= ARGV[1] then return -1 end
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
redis.call('HSET', KEYS[1], unpack(ARGV, 2))
redis.call('SADD', KEYS[2], ARGV[3])
redis.call('SADD', KEYS[3], redis.call('HGET', KEYS[1], 'symbol'))
return 1
"""

Mutation = Callable[[OrderRecord], Awaitable[tuple[OrderRecord, Sequence[tuple[str, Message]]] | None]]


class Wal:
    def __init__(self, redis: aioredis.Redis, venue: str, lease: Lease | None = None) -> None:
        """Without a lease (`automata reconcile`), writes are not fenced."""
        self.redis, self.venue, self.lease = redis, venue, lease
        self._create = redis.register_script(_CREATE)
        self._fence = [lease.key] if lease is not None else []

    async def create(self, record: OrderRecord) -> bool:
        """Write the record unless the cid exists; True when this call created it."""
        fields = record.to_hash()
        argv: list[str] = [self.lease.owner if self.lease else "", "cid", fields.pop("cid")]
        for key, value in fields.items():
            argv += [key, value]
        keys = [og_order(record.cid), og_open(self.venue), og_symbols(self.venue), *self._fence]
        created = await self._create(keys=keys, args=argv)
        if created == -1:
            raise FencedError(
                f"{self.venue}: another order gateway holds the lease; {record.cid} not written"
            )
        return bool(created)

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
        while True:
            async with self.redis.pipeline(transaction=True) as pipe:
                try:
                    if self._fence:
                        await pipe.watch(*self._fence)
                        await self._check_fence(pipe, record.cid)
                        pipe.multi()
                    self._queue(pipe, record, publish, ack)
                    await pipe.execute()
                    break
                except WatchError:
                    continue  # our lease renewed (or lost: the check says) between WATCH and EXEC
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
                    await pipe.watch(key, *self._fence)
                    await self._check_fence(pipe, cid)
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

    async def execute(self, commit: Commit) -> None:
        """Run a Commit (answers to a bot, acks) fenced like the log's own writes."""
        while True:
            try:
                await commit.execute(self.redis, watch=self._fence, check=self._still_ours)
                return
            except FencedError:
                if self.lease is None or await self.lease.holder() != self.lease.owner:
                    raise
                # our own renewal touched the lease between WATCH and EXEC: again

    async def _still_ours(self, pipe) -> bool:
        return self.lease is None or await self.lease.still_ours(pipe)

    async def _check_fence(self, pipe, cid: str) -> None:
        """Under WATCH of the lease key: the lease must still be this gateway's."""
        if self.lease is not None and not await self.lease.still_ours(pipe):
            await pipe.reset()
            raise FencedError(f"{self.venue}: another order gateway holds the lease; {cid} not written")

    def _queue(
        self, pipe, record: OrderRecord, publish: Sequence[tuple[str, Message]], ack: Entry | None
    ) -> None:
        pipe.hset(og_order(record.cid), mapping=record.to_hash())
        if not record.held and record.list_cid:  # a held leg released (its hash omits held=0)
            pipe.hdel(og_order(record.cid), "held")
        if record.terminal:
            pipe.srem(og_open(self.venue), record.cid)
        else:
            pipe.sadd(og_open(self.venue), record.cid)
        for stream, msg in publish:
            pipe.xadd(stream, encode(msg), maxlen=EVENTS_MAXLEN, approximate=True)
        if ack is not None:
            pipe.xack(ack.stream, ack.group, ack.id)
