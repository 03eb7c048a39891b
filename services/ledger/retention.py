"""Retention: the ledger keeps the history, so Redis keeps only what recovery needs.

The rule (docs/ARCHITECTURE.md, "Retention"), applied every `[ledger] retention_every_s`:

- A stream the ledger reads (its bots' order updates, the accounts, `notify`; never the candle
  streams, from which the bots load their history: shared/history.py) is trimmed with XTRIM
  MINID below the oldest of: each consumer group's oldest pending entry, or the entry after its
  last-delivered-id when nothing is pending (the `ledger` group is one of them: it acks only
  after its commit, so what it acked is in the database); for `account:{venue}` the newest full
  snapshot (an account is read as that snapshot and the deltas after it: shared/account_view.py);
  and the entries younger than `stream_keep_s` (for `notify` at least the notifier's
  `backfill_s`: a new channel starts that far back). The groups' bound is found and the stream
  trimmed in one Lua script, atomically: a group created or moved back cannot slip in between.
  A stream the ledger has no group on yet is left alone.
- A write-ahead record `og:order:{cid}` is deleted when its status is final, it is not in
  `og:open:{venue}` (reconciliation no longer looks at it), its last update is older than
  `wal_keep_s`, no command of its bot is pending in the order gateway's group (a command
  handled later would find its cid unknown and send it again), and the ledger's `orders` row
  holds the same final status and `cum_filled_qty`; a leg of an order list also waits while its
  list is in `og:lists:{venue}` (an emulation decides from its legs' records). Checked again
  under WATCH before DEL.
- A list's record `og:list:{list_cid}` is deleted once the list is done and out of
  `og:lists:{venue}`, its last update is older than `wal_keep_s`, no command of its bot is
  pending, and none of its legs' records is left (each went by the rule above, so the ledger
  holds every leg's final state). Checked again under WATCH before DEL.
- The ledger's own `ingested` keys of a trimmable stream's entries below its first entry (or up
  to its last id, the stream empty) are deleted: no such entry can be delivered again, so the key
  that refuses its replay has nothing left to refuse. Pending entries are never below it.

What was removed is counted (`automata_ledger_trimmed_entries_total`,
`automata_ledger_wal_deleted_total`, `automata_ledger_ingested_pruned_total`) and logged, one
line per round that removed anything.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation

import redis.asyncio as aioredis
import sqlalchemy as sa
from redis.asyncio.client import Pipeline
from redis.commands.core import AsyncScript
from redis.exceptions import RedisError, ResponseError, WatchError

from shared import metrics
from shared import streams as s
from shared.bus.groups import as_text, id_key, next_id
from shared.codec import DecodeError, decode
from shared.ledger import schema as t
from shared.ledger.db import describe
from shared.messages import TERMINAL_STATUSES, BalanceUpdate
from shared.service import every

log = logging.getLogger("automata.ledger")

SNAPSHOT_SCAN = 200  # account entries read back per XREVRANGE looking for the newest snapshot
SCAN_COUNT = 1000
IN_CHUNK = 500  # values per IN (...) list
RECORD_FIELDS = ("status", "cum_filled_qty", "updated_ts", "venue", "bot", "list_cid")


@dataclass(frozen=True)
class Rule:
    """What retention keeps, from `[ledger]`."""

    stream_keep_ms: int  # entries younger than this stay
    notify_keep_ms: int  # the same for `notify` (at least the notifier's backfill)
    wal_keep_ms: int  # closed write-ahead records updated more recently stay


async def newest_snapshot(redis: aioredis.Redis, stream: str) -> str | None:
    """The id of the newest full snapshot in an account stream (None: none there)."""
    top = "+"
    while True:
        rows = await redis.xrevrange(stream, max=top, min="-", count=SNAPSHOT_SCAN)
        for entry_id, fields in rows:
            try:
                msg = decode(fields)
            except DecodeError:
                continue
            if isinstance(msg, BalanceUpdate) and msg.snapshot:
                return as_text(entry_id)
        if len(rows) < SNAPSHOT_SCAN:
            return None
        top = "(" + as_text(rows[-1][0])


# Bound and trim in one step (Redis runs a script atomically: a group created or moved back
# between the two would otherwise lose what it has to read; WATCH does not see XGROUP).
# KEYS[1]: the stream; ARGV[1]: the ledger's group; ARGV[2]: the floor, nothing from it on goes.
TRIM = """
local ok, groups = pcall(redis.call, 'XINFO', 'GROUPS', KEYS[1])
if not ok then return 0 end
local function parse(id)
  local ms, seq = string.match(id, '^(%d+)-(%d+)$')
  return ms, tonumber(seq)
end
local function less(a, b)
  local am, as = parse(a)
  local bm, bs = parse(b)
  if #am ~= #bm then return #am < #bm end
  return am < bm or (am == bm and as < bs)
end
local bound, ledger = ARGV[2], false
for _, g in ipairs(groups) do
  local f = {}
  for i = 1, #g, 2 do f[g[i]] = g[i + 1] end
  if f['name'] == ARGV[1] then ledger = true end
  local b
  if f['pending'] > 0 then
    b = redis.call('XPENDING', KEYS[1], f['name'])[2]
  else
    local ms, seq = parse(f['last-delivered-id'])
    b = ms .. '-' .. string.format('%d', seq + 1)
  end
  if less(b, bound) then bound = b end
end
if not ledger then return 0 end
return redis.call('XTRIM', KEYS[1], 'MINID', bound)
"""


async def trim_stream(script: AsyncScript, redis: aioredis.Redis, stream: str, floor: str) -> int:
    """XTRIM MINID `stream` below what every group (the ledger's among them) still needs, and
    below `floor` at most; the entries removed. An account keeps its newest snapshot on (a
    newer one found meanwhile only keeps more)."""
    if stream.startswith(s.account("")):
        snapshot = await newest_snapshot(redis, stream)
        if snapshot is None:
            return 0
        floor = min(floor, snapshot, key=id_key)
    return int(await script(keys=[stream], args=[s.GROUP_LEDGER, floor]))


async def replayable_from(redis: aioredis.Redis, stream: str) -> str | None:
    """The oldest id `stream` could still deliver: its first entry, else (empty) the id after its
    last; None when there is no such stream."""
    try:
        info = await redis.xinfo_stream(stream)
    except ResponseError:
        return None
    first = info.get("first-entry")
    return as_text(first[0]) if first else next_id(as_text(info["last-generated-id"]))


def prune_ingested(engine: sa.Engine, stream: str, below: str) -> int:
    """Delete the `ingested` keys of `stream` below the id `below`; how many."""
    c = t.ingested.c
    with engine.begin() as conn:
        gone = [
            i
            for (i,) in conn.execute(sa.select(c.entry_id).where(c.stream == stream))
            if id_key(i) < id_key(below)
        ]
        for start in range(0, len(gone), IN_CHUNK):
            conn.execute(
                t.ingested.delete().where(c.stream == stream, c.entry_id.in_(gone[start : start + IN_CHUNK]))
            )
    return len(gone)


def _amount(raw: object) -> Decimal | None:
    try:
        return Decimal(as_text(raw)) if raw not in (None, b"", "") else Decimal(0)
    except InvalidOperation:
        return None


@dataclass(frozen=True)
class Closed:
    """What a final write-ahead record says, as far as retention looks."""

    status: str
    cum_filled_qty: Decimal
    venue: str
    bot: str
    list_cid: str = ""  # the order list it is a leg of


def _closed(fields: list[object], older_than_ms: int) -> Closed | None:
    """A record that is final and was last updated before `older_than_ms`, else None."""
    status, cum, updated, venue, bot, list_cid = fields
    if status is None or as_text(status) not in TERMINAL_STATUSES:
        return None
    amount = _amount(cum)
    try:
        stale = int(as_text(updated or b"0")) <= older_than_ms
    except ValueError:
        return None
    if not stale or amount is None:
        return None
    return Closed(
        as_text(status), amount, as_text(venue or b""), as_text(bot or b""), as_text(list_cid or b"")
    )


async def _commands_waiting(redis: aioredis.Redis, venue: str, bot: str) -> bool:
    """A command of the bot is still pending in the order gateway's group: when handled, it
    would find its cid's record gone and send the order again, so no record of it goes."""
    for stream in (s.order_commands(venue, bot), s.legacy_order_commands(venue)):
        try:
            if (await redis.xpending(stream, s.GROUP_ORDER_GATEWAY))["pending"]:
                return True
        except ResponseError:  # no such stream or group: no command of it waits
            continue
    return False


def _in_ledger(engine: sa.Engine, records: dict[str, Closed]) -> set[str]:
    """The cids whose final state (status, cum_filled_qty) the ledger's `orders` holds."""
    o = t.orders.c
    held: set[str] = set()
    cids = list(records)
    with engine.connect() as conn:
        for start in range(0, len(cids), IN_CHUNK):
            chunk = cids[start : start + IN_CHUNK]
            rows = conn.execute(sa.select(o.cid, o.status, o.cum_filled_qty).where(o.cid.in_(chunk)))
            held.update(
                cid
                for cid, status, cum in rows
                if (status, cum) == (records[cid].status, records[cid].cum_filled_qty)
            )
    return held


async def _delete_unless(
    redis: aioredis.Redis, key: str, watched: list[str], keep: Callable[[Pipeline], Awaitable[bool]]
) -> bool:
    """DEL `key` under WATCH of `watched` unless `keep` (reading through the watching pipe) says
    it stays; False when it stays or a watched key changed meanwhile."""
    async with redis.pipeline(transaction=True) as pipe:
        try:
            await pipe.watch(*watched)
            if await keep(pipe):
                return False
            pipe.multi()
            pipe.delete(key)
            [deleted] = await pipe.execute()
            return bool(deleted)
        except WatchError:
            return False


async def _delete_if_unchanged(redis: aioredis.Redis, cid: str, expected: Closed) -> bool:
    key = s.og_order(cid)

    async def keep(pipe: Pipeline) -> bool:
        status, cum = await pipe.hmget(key, ["status", "cum_filled_qty"])
        now = None if status is None else (as_text(status), _amount(cum))
        if now != (expected.status, expected.cum_filled_qty):
            return True
        if await pipe.sismember(s.og_open(expected.venue), cid):
            return True
        # a leg of a list that is not done: the list's path still reads this record
        return bool(expected.list_cid) and bool(
            await pipe.sismember(s.og_open_lists(expected.venue), expected.list_cid)
        )

    return await _delete_unless(redis, key, [key], keep)


async def delete_closed_records(redis: aioredis.Redis, engine: sa.Engine, older_than_ms: int) -> int:
    """Delete the write-ahead records the rule lets go; how many."""
    deleted = 0
    keys: list[str] = []

    async def sweep(batch: list[str]) -> int:
        pipe = redis.pipeline(transaction=False)
        for key in batch:
            pipe.hmget(key, list(RECORD_FIELDS))
        found = {
            key[len(s.og_order("")) :]: closed
            for key, fields in zip(batch, await pipe.execute(), strict=True)
            if (closed := _closed(fields, older_than_ms)) is not None
        }
        if not found:
            return 0
        held = await asyncio.to_thread(_in_ledger, engine, found)
        waiting = {
            (c.venue, c.bot): await _commands_waiting(redis, c.venue, c.bot)
            for c in {found[cid] for cid in held}
        }
        return sum(
            [await _delete_if_unchanged(redis, cid, found[cid]) for cid in sorted(held)
             if not waiting[(found[cid].venue, found[cid].bot)]]
        )  # fmt: skip

    async for key in redis.scan_iter(match=s.og_order(s.ANY), count=SCAN_COUNT):
        keys.append(as_text(key))
        if len(keys) >= SCAN_COUNT:
            deleted += await sweep(keys)
            keys = []
    if keys:
        deleted += await sweep(keys)
    return deleted


LIST_FIELDS = ("phase", "updated_ts", "venue", "bot", "legs")
DONE = "done"  # services/order_gateway/list_wal.Phase.DONE: every leg final


@dataclass(frozen=True)
class DoneList:
    """What a done list's record says, as far as retention looks."""

    updated_ts: str
    venue: str
    bot: str
    legs: tuple[str, ...]


def _done_list(fields: list[object], older_than_ms: int) -> DoneList | None:
    """A list record that is done and was last updated before `older_than_ms`, else None."""
    phase, updated, venue, bot, legs = fields
    if phase is None or as_text(phase) != DONE:
        return None
    try:
        stale = int(as_text(updated or b"0")) <= older_than_ms
    except ValueError:
        return None
    if not stale:
        return None
    leg_cids = tuple(c for c in as_text(legs or b"").split(",") if c)
    return DoneList(as_text(updated or b""), as_text(venue or b""), as_text(bot or b""), leg_cids)


async def _delete_list_if_unchanged(redis: aioredis.Redis, list_cid: str, expected: DoneList) -> bool:
    """DEL the list's record if it still reads as found, is out of the open lists and no leg's
    record is left (a leg's record goes first, by the orders' rule)."""
    key = s.og_list(list_cid)
    legs = [s.og_order(cid) for cid in expected.legs]
    found = [DONE, expected.updated_ts, expected.venue, expected.bot, ",".join(expected.legs)]

    async def keep(pipe: Pipeline) -> bool:
        if await pipe.hmget(key, list(LIST_FIELDS)) != [x.encode() for x in found]:
            return True
        if await pipe.sismember(s.og_open_lists(expected.venue), list_cid):
            return True
        return any([(await pipe.hmget(leg, ["status"]))[0] is not None for leg in legs])

    return await _delete_unless(redis, key, [key, *legs], keep)


async def delete_done_lists(redis: aioredis.Redis, older_than_ms: int) -> int:
    """Delete the list records the rule lets go; how many."""
    deleted = 0
    async for key in redis.scan_iter(match=s.og_list(s.ANY), count=SCAN_COUNT):
        list_cid = as_text(key)[len(s.og_list("")) :]
        found = _done_list(await redis.hmget(key, list(LIST_FIELDS)), older_than_ms)
        if found is None or await _commands_waiting(redis, found.venue, found.bot):
            continue
        deleted += await _delete_list_if_unchanged(redis, list_cid, found)
    return deleted


class Retention:
    """The ledger's retention task: one round every `every_s` until stopped."""

    def __init__(
        self,
        redis: aioredis.Redis,
        engine: sa.Engine,
        streams: Callable[[], Awaitable[list[str]]],  # the streams it may trim (no candles)
        rule: Rule,
        every_s: float,
        info: dict[str, object],
    ) -> None:
        self.redis, self.engine, self.streams, self.rule, self.every_s = redis, engine, streams, rule, every_s
        self.info = info
        self._trim = redis.register_script(TRIM)
        self._stop = asyncio.Event()
        self.trimmed = metrics.counter(
            "automata_ledger_trimmed_entries_total",
            "Stream entries trimmed once the ledger and every group had them",
        )
        self.pruned = metrics.counter(
            "automata_ledger_ingested_pruned_total", "Keys of entries no stream can deliver again, deleted"
        )
        self.wal_deleted = metrics.counter(
            "automata_ledger_wal_deleted_total",
            "Closed write-ahead records deleted once the ledger held their final state",
        )

    async def round(self, now_ms: int | None = None) -> tuple[int, int, int]:
        """(entries trimmed, streams trimmed, write-ahead records deleted) by one round."""
        now_ms = int(time.time() * 1000) if now_ms is None else now_ms
        entries = streams = pruned = 0
        for stream in await self.streams():
            keep = self.rule.notify_keep_ms if stream == s.NOTIFY else self.rule.stream_keep_ms
            removed = await trim_stream(self._trim, self.redis, stream, f"{max(now_ms - keep, 0)}-0")
            entries += removed
            streams += bool(removed)
            if (start := await replayable_from(self.redis, stream)) is not None:
                pruned += await asyncio.to_thread(prune_ingested, self.engine, stream, start)
        records = await delete_closed_records(self.redis, self.engine, now_ms - self.rule.wal_keep_ms)
        records += await delete_done_lists(self.redis, now_ms - self.rule.wal_keep_ms)
        for counter, value, key in (
            (self.trimmed, entries, "trimmed"), (self.wal_deleted, records, "wal_deleted"), (self.pruned, pruned, "pruned"),
        ):  # fmt: skip
            counter.inc(value)
            self.info[key] = int(self.info.get(key, 0)) + value  # type: ignore[call-overload]
        if entries or records or pruned:
            log.info(
                "retention: trimmed %d entries from %d stream(s), deleted %d closed write-ahead record(s) "
                "and %d ingested key(s) no stream can deliver again",
                entries,
                streams,
                records,
                pruned,
            )
        return entries, streams, records

    async def run(self) -> None:
        await every(self.every_s, self._stop, self._round_or_skip)

    async def _round_or_skip(self) -> None:
        try:
            await self.round()
        except (sa.exc.OperationalError, sa.exc.InterfaceError, OSError, RedisError) as exc:
            log.warning("retention round skipped (%s): the next one tries again", describe(exc))

    def stop(self) -> None:
        self._stop.set()
