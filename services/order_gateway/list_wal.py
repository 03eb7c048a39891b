"""The write-ahead record of an order list: og:list:{list_cid}, og:lists:{venue}, and the legs.

A list and every leg's og:order record (list_cid set) are created by ONE Lua script before
anything is sent; a list cid, or a leg cid, seen before is never created — so never sent —
again (`create` says which). The list record keeps what the legs' records cannot: how the list
is carried out (natively by the venue, or emulated by the gateway) and, for an emulation, the
phase it reached: each phase is written before it is acted on, so a restart finishes from it.
Writes are fenced by the venue's lease like the order log's own (wal.py).
"""

from __future__ import annotations

import enum
import json
from collections.abc import Sequence

import msgspec

from services.order_gateway.wal import Wal
from shared.bus import Commit, FencedError
from shared.messages import ListKind, PlaceOrderList
from shared.order_lifecycle import UNCONFIRMED
from shared.order_record import OrderRecord
from shared.streams import og_lease, og_list, og_open, og_open_lists, og_order, og_symbols

# KEYS: list, open lists, open orders, symbols, lease, then each leg's record.
# ARGV[1]: the lease owner ("" = unfenced); ARGV[2]: the list's fields (a JSON array k, v, ...);
# ARGV[3..]: each leg's fields. Returns 1 created, 0 the list exists, -1 fenced, -2 a leg exists.
_CREATE = """
if ARGV[1] ~= '' and redis.call('GET', KEYS[5]) ~= ARGV[1] then return -1 end
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
for i = 6, #KEYS do
  if redis.call('EXISTS', KEYS[i]) == 1 then return -2 end
end
local fields = cjson.decode(ARGV[2])
redis.call('HSET', KEYS[1], unpack(fields))
redis.call('SADD', KEYS[2], redis.call('HGET', KEYS[1], 'list_cid'))
redis.call('SADD', KEYS[4], redis.call('HGET', KEYS[1], 'symbol'))
for i = 6, #KEYS do
  redis.call('HSET', KEYS[i], unpack(cjson.decode(ARGV[i - 3])))
  redis.call('SADD', KEYS[3], redis.call('HGET', KEYS[i], 'cid'))
end
return 1
"""


class Mode(enum.StrEnum):
    NATIVE = "native"  # the venue's own order list
    EMULATED = "emulated"  # single orders, the other legs held, sent or ended by the gateway


class Phase(enum.StrEnum):
    """How far a list got. Native lists: PENDING until every leg is final, then DONE."""

    PENDING = "pending"  # written, maybe sent; an emulation: its first leg not known placed yet
    WAITING = "waiting"  # emulated OTO/OTOCO: the working leg at the venue, the pending legs held
    RELEASING = "releasing"  # emulated OTO/OTOCO: the working leg filled: the pending legs go out
    WORKING = "working"  # emulated OCO: the limit leg at the venue, the stop leg held, the book watched
    LIMIT_TRADED = "limit_traded"  # emulated: the limit leg traded: the held leg is expired
    TRIGGERED = "triggered"  # emulated: the stop was reached: the limit leg is cancelled
    SENDING = "sending"  # emulated: the limit leg is final: the stop leg goes to the venue
    CANCELLING = "cancelling"  # the bot cancelled the list
    DONE = "done"  # every leg final


class Created(enum.Enum):
    CREATED = 1
    LIST_EXISTS = 0
    LEG_EXISTS = -2


class ListRecord(msgspec.Struct, frozen=True, kw_only=True):
    """og:list:{list_cid} — a Redis hash of strings (readable with HGETALL)."""

    list_cid: str
    bot: str
    venue: str
    symbol: str
    kind: ListKind
    mode: Mode
    legs: tuple[str, ...]  # the legs' cids, in the command's order
    request: str  # the PlaceOrderList as JSON, exactly as received
    phase: Phase = Phase.PENDING
    trigger: str = ""  # emulated: the book entry (md:book id) that reached the stop
    sent_ts: int = 0  # local ms of the last send of a native list (its recvWindow)
    send_attempts: int = 0
    reason: str = ""
    created_ts: int = 0
    updated_ts: int = 0

    def to_hash(self) -> dict[str, str]:
        raw = msgspec.to_builtins(self)
        raw["legs"] = ",".join(self.legs)
        return {k: str(v) for k, v in raw.items()}

    @classmethod
    def from_hash(cls, data: dict[bytes, bytes]) -> ListRecord:
        doc: dict[str, object] = {k.decode(): v.decode() for k, v in data.items()}
        doc["legs"] = tuple(str(doc.get("legs", "")).split(","))
        return msgspec.convert(doc, cls, strict=False)

    def place_request(self) -> PlaceOrderList:
        return msgspec.json.decode(self.request, type=PlaceOrderList)

    @property
    def done(self) -> bool:
        return self.phase is Phase.DONE


class ListWal:
    """The lists' part of the write-ahead log, next to (and fenced like) the orders' Wal."""

    def __init__(self, wal: Wal) -> None:
        self.wal, self.redis, self.venue = wal, wal.redis, wal.venue
        self._create = wal.redis.register_script(_CREATE)

    async def create(self, record: ListRecord, legs: Sequence[OrderRecord]) -> Created:
        """Write the list and its legs unless the list cid or a leg cid exists."""
        lease = self.wal.lease
        keys = [og_list(record.list_cid), og_open_lists(self.venue), og_open(self.venue),
                og_symbols(self.venue), og_lease(self.venue), *(og_order(leg.cid) for leg in legs)]  # fmt: skip
        args = [
            lease.owner if lease else "",
            _flat(record.to_hash()),
            *(_flat(leg.to_hash()) for leg in legs),
        ]
        created = await self._create(keys=keys, args=args)
        if created == -1:
            raise FencedError(
                f"{self.venue}: another order gateway holds the lease; {record.list_cid} not written"
            )
        return Created(created)

    async def get(self, list_cid: str) -> ListRecord | None:
        data = await self.redis.hgetall(og_list(list_cid))
        return ListRecord.from_hash(data) if data else None

    async def open_list_cids(self) -> list[str]:
        return sorted(x.decode() for x in await self.redis.smembers(og_open_lists(self.venue)))

    async def legs(self, record: ListRecord) -> list[OrderRecord | None]:
        return [await self.wal.get(cid) for cid in record.legs]

    async def save(self, record: ListRecord) -> None:
        """Write the list's record (its phase first: acted on only once written), fenced; a
        DONE list leaves the open set."""
        commit = Commit().hset(og_list(record.list_cid), record.to_hash())
        if record.done:
            commit.srem(og_open_lists(self.venue), record.list_cid)
        else:
            commit.sadd(og_open_lists(self.venue), record.list_cid)
        await self.wal.execute(commit)


async def list_path_owns(redis, leg: OrderRecord) -> bool:
    """Whether only its list's path may resolve this order: a leg the gateway holds back (not at
    the venue), or an unconfirmed leg of a native list (its unknown outcome is resolved by the
    list's query: a leg of it must never be resent alone)."""
    if leg.held:
        return True
    if not leg.list_cid or leg.status not in UNCONFIRMED:
        return False
    mode = await redis.hget(og_list(leg.list_cid), "mode")
    return mode is not None and mode.decode() == Mode.NATIVE.value


def _flat(fields: dict[str, str]) -> str:
    return json.dumps([x for kv in fields.items() for x in kv])
