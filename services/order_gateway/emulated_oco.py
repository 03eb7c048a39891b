"""The order lists the venue does not offer (Bybit spot; any venue whose config says
`emulate_lists`), carried out by the gateway with single orders, crash-safe: here the OCO and
what every emulated list shares (the held legs, the phases, the book, the review loop); an OTO
or OTOCO's working leg and pending legs in emulated_oto.py (an OTOCO's pair, once its working
leg filled, is an OCO carried out here).

The limit leg (LIMIT_MAKER or LIMIT) goes to the venue as a single order; the stop leg
(STOP_LOSS or STOP_LOSS_LIMIT) is held by the gateway: its og:order record says `held`, the bot
hears it NEW. The gateway reads the venue's book tickers (md:book, the market gateway's) and,
when the stop is reached (sell: bid <= stop; buy: ask >= stop) by a tick published since the
list was last sent (never by the book's backlog: `_on_book`), cancels the limit leg, then
sends the stop leg — MARKET for STOP_LOSS, LIMIT at its price for STOP_LOSS_LIMIT — for what
the limit leg left. A trade of the limit leg (even in part) before that expires the held leg.

Each phase (list_wal.Phase) is written to og:list before it is acted on, and every step is
decided from the phase and the legs' records alone (`_step`), so a restart — or the periodic
review — finishes a list wherever a crash left it: the limit leg traded but the held leg not
yet expired -> expired; triggered but the limit leg not yet cancelled -> cancelled, then sent.
A power cut may also take back writes the venue acted on: a held stop leg is looked for at the
venue before it is ended with a limit leg that ended unfilled, or sent by a process that did not
see its stop reached (it may have fired and sold, its records lost); a list asked again whose
legs the gateway adopted is written again from them (lists.py `_adopted_list`).
The legs at the venue are ordinary orders: sent, resolved and reconciled by the router's path.
The bot cancelling the list (CANCELLING) cancels every leg at the venue and ends every held leg.
"""

from __future__ import annotations

import asyncio
import logging
from decimal import Decimal
from typing import TYPE_CHECKING

import msgspec

from services.order_gateway import emulated_oto
from services.order_gateway.list_wal import ListRecord, Phase
from services.order_gateway.reconcile import ask
from services.order_gateway.reconcile_rules import NoAnswer, NotFound
from services.order_gateway.retry import RESOLVE
from services.order_gateway.tracker import now_ms
from shared.bus import FencedError
from shared.codec import decode
from shared.failpoints import failpoint
from shared.messages import (
    BookTicker,
    Level,
    ListKind,
    Notification,
    OrderStatus,
    OrderType,
    PlaceOrder,
    PlaceOrderList,
    Side,
    TimeInForce,
)
from shared.order_lifecycle import UNCONFIRMED
from shared.order_record import OrderRecord, new_record, to_update
from shared.streams import book, order_events

if TYPE_CHECKING:
    import redis.asyncio as aioredis

    from services.order_gateway.lists import ListRouter

log = logging.getLogger("automata.order_gateway.emulated_oco")

LIMIT_LEGS = frozenset({OrderType.LIMIT, OrderType.LIMIT_MAKER})
STOP_LEGS = frozenset({OrderType.STOP_LOSS, OrderType.STOP_LOSS_LIMIT})
WATCHED = frozenset({Phase.WORKING})


def split(cmd: PlaceOrderList) -> tuple[PlaceOrder, PlaceOrder] | None:
    """(the limit leg, the stop leg) of the OCO the gateway can emulate — an OCO's two legs, an
    OTOCO's pending pair — else None."""
    limits = [leg for leg in cmd.oco_legs if leg.order_type in LIMIT_LEGS]
    stops = [leg for leg in cmd.oco_legs if leg.order_type in STOP_LEGS]
    return (limits[0], stops[0]) if len(limits) == 1 and len(stops) == 1 else None


def reached(side: Side, stop: Decimal, tick: BookTicker) -> bool:
    """Whether the book reached the stop: a sell stop at or above the bid, a buy stop at or
    below the ask (an empty side of the book reaches nothing)."""
    if side is Side.SELL:
        return tick.bid > 0 and tick.bid <= stop
    return tick.ask > 0 and tick.ask >= stop


async def redis_skew_ms(redis: aioredis.Redis) -> int:
    """How far Redis's clock is ahead of this process's (ms, within a round trip)."""
    before = now_ms()
    seconds, micros = await redis.time()
    return int(seconds) * 1000 + int(micros) // 1000 - (before + now_ms()) // 2


def released_order(leg: PlaceOrder, qty: Decimal, ts: int) -> PlaceOrder:
    """The order the held stop leg becomes once triggered: MARKET, or LIMIT at its price."""
    limit = leg.order_type is OrderType.STOP_LOSS_LIMIT
    return PlaceOrder(
        cid=leg.cid, bot=leg.bot, venue=leg.venue, symbol=leg.symbol, side=leg.side,
        order_type=OrderType.LIMIT if limit else OrderType.MARKET, quantity=qty,
        price=leg.price if limit else None, time_in_force=TimeInForce.GTC if limit else None, ts=ts,
    )  # fmt: skip


class Emulator:
    """The emulated lists of one venue: their phases, the book watchers, the periodic review."""

    def __init__(self, owner: ListRouter, review_every_s: float) -> None:
        self.owner, self.review_every_s = owner, review_every_s
        self._locks: dict[str, asyncio.Lock] = {}
        self._dirty: set[str] = set()
        self._wake = asyncio.Event()
        # symbol -> list -> (side, stop, since): `since` the local ms of the list's last send
        self._watching: dict[str, dict[str, tuple[Side, Decimal, int]]] = {}
        self._watchers: dict[str, asyncio.Task[None]] = {}
        # the lists whose stop this process saw reached: their held leg was never sent before
        # (any other held leg past the trigger may have been, its records lost: asked first)
        self._fired: set[str] = set()

    # -- what the list path asks -----------------------------------------------------------

    @staticmethod
    def refusal(cmd: PlaceOrderList) -> str:
        """Why the gateway cannot emulate this list (empty when it can): an OCO, or an OTOCO's
        pending pair, must be one limit leg and one stop leg (the stop is what it watches)."""
        if cmd.kind is not ListKind.OTO and split(cmd) is None:
            legs = "an emulated OCO" if cmd.kind is ListKind.OCO else "the pending legs of an emulated OTOCO"
            return f"{legs} must be one limit leg (LIMIT_MAKER or LIMIT) and one stop leg (STOP_LOSS or STOP_LOSS_LIMIT)"
        return ""

    @staticmethod
    def held_legs(cmd: PlaceOrderList) -> frozenset[str]:
        """The legs the gateway holds back from the start: an OCO's stop, an OTO / OTOCO's
        pending legs (the working leg alone goes to the venue first)."""
        if cmd.kind is not ListKind.OCO:
            return frozenset(leg.cid for leg in cmd.legs[1:])
        legs = split(cmd)
        return frozenset({legs[1].cid}) if legs is not None else frozenset()

    @staticmethod
    def first_sent(cmd: PlaceOrderList) -> PlaceOrder:
        """The leg sent when the list starts: an OCO's limit leg, an OTO / OTOCO's working leg."""
        legs = split(cmd) if cmd.kind is ListKind.OCO else None
        return legs[0] if legs is not None else cmd.legs[0]

    @staticmethod
    def released(cmd: PlaceOrderList) -> tuple[PlaceOrder, ...]:
        """The legs sent once an OTO / OTOCO's working leg filled: an OTO's pending leg as the
        bot asked; an OTOCO's pair is an emulated OCO: its limit leg (its stop stays held)."""
        legs = split(cmd)
        return cmd.legs[1:] if legs is None else legs[:1]

    def wake(self) -> None:
        """Make the run loop look now (a stop, a list to watch)."""
        self._wake.set()

    def moved(self, leg: OrderRecord) -> None:
        """A leg of some list moved (the tracker's hook): review that list soon, off this path."""
        self._dirty.add(leg.list_cid)
        self._wake.set()

    async def start(self, record: ListRecord, entry) -> None:
        """A new emulated list: its held legs NEW to the bot, its first leg sent."""
        cmd = record.place_request()
        if cmd.oco_legs and not await self.owner.wal.redis.exists(book(self.owner.venue, record.symbol)):
            text = (f"{self.owner.venue}: {record.bot}: list {record.list_cid}: no book tickers of {record.symbol} "
                    "yet: the emulated stop triggers only once the market gateway publishes them (book_tickers)")  # fmt: skip
            log.warning(text)
            await self.owner.router.notify(
                Notification(
                    id=f"og:{self.owner.venue}:no_book:{record.list_cid}",
                    kind="no_book",
                    text=text,
                    level=Level.WARNING,
                    bot=record.bot,
                    venue=self.owner.venue,
                    ts=now_ms(),
                )  # fmt: skip
            )
        for cid in sorted(self.held_legs(cmd)):
            await self.hold(cid)
        first = self.first_sent(cmd)
        leg = await self.owner.wal.get(first.cid)
        if leg is not None:
            await self.owner.router._send(leg, entry, first)
        await self.review(record.list_cid)

    async def review(self, list_cid: str) -> None:
        """Take the list as far as its phase and legs allow now."""
        async with self._lock(list_cid):
            record = await self.owner.lists.get(list_cid)
            if record is not None and not record.done:
                await self._advance(record)

    async def cancel(self, list_cid: str) -> None:
        async with self._lock(list_cid):
            record = await self.owner.lists.get(list_cid)
            if record is None or record.done:
                return
            await self._advance(await self.save(record, Phase.CANCELLING))

    async def trigger(self, list_cid: str, entry_id: str) -> None:
        """The book reached the stop (book entry `entry_id`): written, then acted on."""
        async with self._lock(list_cid):
            record = await self.owner.lists.get(list_cid)
            if record is None or record.phase not in WATCHED:
                return
            log.info("%s: list %s: stop reached (book %s)", self.owner.venue, list_cid, entry_id)
            self._fired.add(list_cid)
            record = await self.save(record, Phase.TRIGGERED, trigger=entry_id)
            failpoint("og.emu.after_trigger")
            await self._advance(record)

    # -- the steps -------------------------------------------------------------------------

    async def _advance(self, record: ListRecord) -> None:
        """Step until the list waits for something (the venue, the book) or is done."""
        while not record.done:
            nxt = await self._step(record)
            if nxt is None:
                return
            record = nxt

    async def _step(self, record: ListRecord) -> ListRecord | None:
        """One step from the phase and the legs' records: the list with its next phase saved,
        or None to wait. Every action here is safe to repeat after a crash."""
        if record.phase is not Phase.WORKING:
            self._unwatch(record)
        if record.phase is Phase.CANCELLING:
            return await self._cancelling(record)
        if record.kind is not ListKind.OCO and record.phase in emulated_oto.PHASES:
            return await emulated_oto.step(self, record)
        return await self._oco_step(record)

    async def _oco_step(self, record: ListRecord) -> ListRecord | None:
        """A step of an OCO (or of an OTOCO's pair, from WORKING on)."""
        wal, router = self.owner.wal, self.owner.router
        limit_cmd, stop_cmd = split(record.place_request())  # type: ignore[misc]
        limit, stop = await wal.get(limit_cmd.cid), await wal.get(stop_cmd.cid)
        if limit is None or stop is None:  # a record gone (retention deletes final ones; Redis lost it)
            if stop is not None and stop.held:  # the limit leg was final: the held leg ends with it
                await self.settle_held(stop.cid, OrderStatus.EXPIRED, "the other leg of the OCO is final")
            return await self.save(record, Phase.DONE, reason="a leg's record is missing")
        phase = record.phase
        if stop.held and stop.status is OrderStatus.PENDING_SUBMIT:
            await self.hold(stop.cid)
        if phase in (Phase.PENDING, Phase.WORKING):
            if limit.status in UNCONFIRMED:
                return None  # the router's path resolves it; its update brings us back
            if limit.cum_filled_qty > 0:
                failpoint("og.emu.after_fill")  # the fill in the log, the emulation not yet told
                return await self.save(record, Phase.LIMIT_TRADED)
            if limit.terminal and limit.status is not OrderStatus.REJECTED:
                found = await self._sent_unrecorded(record, stop_cmd)
                if found is not False:  # at the venue after all, or the venue not answering
                    return await self.save(record, Phase.SENDING) if found else None
            if limit.terminal:  # refused or cancelled at the venue: the list with it
                status = (
                    OrderStatus.REJECTED if limit.status is OrderStatus.REJECTED else OrderStatus.CANCELED
                )
                await self.settle_held(
                    stop.cid, status, limit.reason or f"the other leg is {limit.status.value}"
                )
                return await self.save(record, Phase.DONE)
            if phase is Phase.PENDING:
                return await self.save(record, Phase.WORKING)
            self._watch(record, stop, await self._last_send(record, limit))
            return None
        if phase is Phase.LIMIT_TRADED:
            await self.settle_held(stop.cid, OrderStatus.EXPIRED, "the other leg of the OCO traded")
            return await self.save(record, Phase.DONE) if limit.terminal else None
        if phase is Phase.TRIGGERED:
            if not limit.terminal:
                await router.cancel(limit.cid, record.symbol, None, whole_list=False)
                failpoint("og.emu.after_cancel")
                limit = await wal.get(limit.cid)
                if limit is None or not limit.terminal:
                    return None  # the cancel did not take yet: the next review tries again
            return await self.save(record, Phase.SENDING)
        if phase is Phase.SENDING:
            if stop.held and not stop.terminal:
                found = record.list_cid not in self._fired and await self._sent_unrecorded(record, stop_cmd)
                if found is None:
                    return None  # the venue not answering: asked again at the next review
                if not found:
                    await self._release(record, stop_cmd, limit)
                stop = await wal.get(stop.cid)
            done = stop is None or stop.terminal
            return await self.save(record, Phase.DONE) if done and limit.terminal else None
        raise ValueError(f"list {record.list_cid}: phase {phase.value} is not an OCO's")

    async def _cancelling(self, record: ListRecord) -> ListRecord | None:
        """The bot cancelled the list: each leg at the venue cancelled, each held leg CANCELED
        (a pending one too, as the venue's and the backtest's engine end it), and the list DONE
        once every leg is final."""
        legs = await self.owner.lists.legs(record)
        for leg in legs:
            if leg is None or leg.terminal:
                continue
            if leg.held:
                await self.settle_held(leg.cid, OrderStatus.CANCELED, "the list was cancelled")
            else:
                await self.owner.router.cancel(leg.cid, record.symbol, None, whole_list=False)
        legs = await self.owner.lists.legs(record)
        return await self.save(record, Phase.DONE) if all(x is None or x.terminal for x in legs) else None

    async def _release(self, record: ListRecord, leg: PlaceOrder, limit: OrderRecord) -> None:
        """Send the held stop leg for what the limit leg left (expired when nothing is left)."""
        order = await self.release_of(leg, limit)
        if order is None:
            await self.settle_held(leg.cid, OrderStatus.EXPIRED, "the other leg of the OCO filled")
            return
        await self.send_held(record, order)

    async def release_of(self, leg: PlaceOrder, limit: OrderRecord) -> PlaceOrder | None:
        """The order the stop leg is sent as once the limit leg is final: for what the limit
        leg left, rounded to the symbol's step; None when nothing is left."""
        filters = await self.owner.router.symbols.filters(leg.symbol)
        left = (leg.quantity or Decimal(0)) - limit.cum_filled_qty
        qty = filters.round_qty(left) if filters is not None else left
        return released_order(leg, qty, now_ms()) if qty > 0 else None

    async def _sent_unrecorded(self, record: ListRecord, leg: PlaceOrder) -> bool | None:
        """Whether the venue has the held stop leg although its limit leg ended unfilled: the
        stop fired and the leg was sent, then a power cut took those writes (the list back to
        WORKING, the leg held again; the limit leg's cancel was the gateway's own). Ending the
        leg then told the bot its stop never sold while the venue had sold it (sold again).
        Found: its record becomes the order it was sent as and takes the venue's report. None
        while the venue cannot be asked (the next review asks again)."""
        owner = self.owner
        answer = await ask(lambda: owner.adapter.query(record.symbol, leg.cid), owner.retry, RESOLVE,
                           what=f"{owner.venue}: query of held leg {leg.cid}")  # fmt: skip
        if isinstance(answer, NoAnswer):
            return None
        if isinstance(answer, NotFound):
            return False
        log.warning("%s: list %s: held leg %s found at the venue (%s): its send's record was lost",
                    owner.venue, record.list_cid, leg.cid, answer.status.value)  # fmt: skip
        await self._released(record, released_order(leg, answer.orig_qty or leg.quantity, now_ms()))
        await owner.tracker.apply(answer, reconciled=True)
        return True

    async def _released(self, record: ListRecord, order: PlaceOrder) -> OrderRecord:
        """A held leg's record rewritten as `order`, an ordinary order not yet sent (no longer
        held: from here the router's path resolves it)."""
        now = now_ms()
        held = await self.owner.wal.get(order.cid)
        released = msgspec.structs.replace(
            new_record(order, now), list_cid=record.list_cid, sent_ts=now, send_attempts=1,
            created_ts=held.created_ts if held is not None else now,
        )  # fmt: skip
        await self.owner.wal.save(released)
        return released

    async def send_held(self, record: ListRecord, order: PlaceOrder) -> None:
        """Send a held leg as `order` (its cid): its record first rewritten, then sent."""
        released = await self._released(record, order)
        failpoint("og.emu.after_release")  # released in the log, not sent: the router resolves it
        log.info("%s: list %s: held leg %s sent as %s %s", self.owner.venue, record.list_cid, order.cid,
                 order.order_type.value, order.quantity)  # fmt: skip
        await self.owner.router._send(released, None, order)

    async def hold(self, cid: str) -> None:
        """The held leg's record PENDING_SUBMIT -> NEW, the bot told (it is working, held here)."""

        async def mutate(current: OrderRecord):
            if not current.held or current.status is not OrderStatus.PENDING_SUBMIT:
                return None
            new = msgspec.structs.replace(current, status=OrderStatus.NEW, updated_ts=now_ms())
            return new, [(order_events(new.bot), to_update(new, current, reconciled=False, now_ms=now_ms()))]

        await self.owner.wal.update(cid, mutate)

    async def settle_held(self, cid: str, status: OrderStatus, reason: str) -> None:
        """End a held leg (never at the venue) with this status, the bot told."""

        async def mutate(current: OrderRecord):
            if not current.held or current.terminal:
                return None
            new = msgspec.structs.replace(current, status=status, reason=reason, updated_ts=now_ms())
            return new, [(order_events(new.bot), to_update(new, current, reconciled=False, now_ms=now_ms()))]

        await self.owner.wal.update(cid, mutate)

    async def save(self, record: ListRecord, phase: Phase, **fields: str) -> ListRecord:
        """The list's next phase, written (before anything it calls for is done)."""
        record = msgspec.structs.replace(record, phase=phase, updated_ts=now_ms(), **fields)
        await self.owner.lists.save(record)
        if record.done:
            self._fired.discard(record.list_cid)
        return record

    def _lock(self, list_cid: str) -> asyncio.Lock:
        return self._locks.setdefault(list_cid, asyncio.Lock())

    # -- the book --------------------------------------------------------------------------

    async def _last_send(self, record: ListRecord, limit: OrderRecord) -> int:
        """The local ms the list was last sent: its first leg's (an OCO's limit leg, an OTOCO's
        working leg) sent_ts, which the router moves on a resend. 0 when unknown (an adopted
        leg): every tick counts, as before."""
        first = self.first_sent(record.place_request())
        leg = limit if first.cid == limit.cid else await self.owner.wal.get(first.cid)
        return leg.sent_ts if leg is not None else 0

    def _watch(self, record: ListRecord, stop: OrderRecord, since: int) -> None:
        if stop.side is None or stop.stop_price is None:
            return
        self._watching.setdefault(record.symbol, {})[record.list_cid] = (stop.side, stop.stop_price, since)
        self._wake.set()  # the run loop starts the symbol's watcher

    def _unwatch(self, record: ListRecord) -> None:
        self._watching.get(record.symbol, {}).pop(record.list_cid, None)

    async def _watch_book(self, symbol: str) -> None:
        """Read the symbol's book tickers while a list on it is watched: the latest first (what
        happened while nobody watched: it counts for a list sent before it), then each new one."""
        redis, key = self.owner.wal.redis, book(self.owner.venue, symbol)
        skew = await redis_skew_ms(redis)
        latest = await redis.xrevrange(key, count=1)
        last = latest[0][0] if latest else b"0-0"
        if latest:
            await self._on_book(symbol, latest[0][0], latest[0][1], skew)
        while self._watching.get(symbol):
            reply = await redis.xread({key: last}, count=100, block=500)
            for _stream, entries in reply or []:
                for entry_id, fields in entries:
                    last = entry_id
                    await self._on_book(symbol, entry_id, fields, skew)

    async def _on_book(self, symbol: str, entry_id: bytes, fields: dict, skew: int) -> None:
        try:
            tick = decode(fields)
        except (msgspec.DecodeError, msgspec.ValidationError, ValueError, KeyError) as exc:
            log.warning("%s: book entry %s unreadable: %s", self.owner.venue, entry_id, exc)
            return
        if not isinstance(tick, BookTicker):
            return
        # A stop triggers only on a price published once its list was (last) sent, as a venue's
        # stop sees only prices after its order exists: a resent list never fires on the book's
        # backlog (sold twice when the bot's cancel came after). The time a tick carries is its
        # entry id's ms (Redis's clock when the market gateway published it; BookTicker.ts is the
        # venue's clock, or the market gateway's at receipt), the send's is sent_ts (this
        # process's clock): compared after moving it by the skew between the two clocks.
        published = int(entry_id.split(b"-", 1)[0])
        for list_cid, (side, stop, since) in list(self._watching.get(symbol, {}).items()):
            if published >= since + skew and reached(side, stop, tick):
                await self._safely(self.trigger(list_cid, entry_id.decode()))

    # -- the loop --------------------------------------------------------------------------

    async def run(self, stopping: asyncio.Event) -> None:
        """Review the lists whose legs moved, watch the books, and every review_every_s finish
        every open list (the periodic reconciliation of lists), until `stopping`."""
        loop = asyncio.get_running_loop()
        next_full = loop.time() + self.review_every_s
        try:
            while not stopping.is_set():
                self._start_watchers()
                try:
                    await asyncio.wait_for(self._wake.wait(), timeout=max(0.05, next_full - loop.time()))
                except TimeoutError:
                    pass
                self._wake.clear()
                dirty, self._dirty = self._dirty - self.owner.busy, self._dirty & self.owner.busy
                for list_cid in sorted(dirty):
                    await self._safely(self.owner.review(list_cid))
                if loop.time() >= next_full:
                    if not self.owner.router.halt.active:  # a banned venue is not asked (a ban grows)
                        await self._safely(self.owner.reconcile())
                    next_full = loop.time() + self.review_every_s
        finally:
            for task in self._watchers.values():
                task.cancel()
            await asyncio.gather(*self._watchers.values(), return_exceptions=True)
            self._watchers.clear()

    def _start_watchers(self) -> None:
        for symbol, lists in self._watching.items():
            task = self._watchers.get(symbol)
            if task is not None and task.done():
                if not task.cancelled() and task.exception() is not None:
                    log.error("%s: book watcher of %s failed: %r", self.owner.venue, symbol, task.exception())
                    if isinstance(task.exception(), FencedError):
                        raise task.exception()  # type: ignore[misc]
                task = None
            if lists and task is None:
                self._watchers[symbol] = asyncio.create_task(self._watch_book(symbol), name=f"book:{symbol}")

    async def _safely(self, work) -> None:
        """One list's trouble (a venue failing, a bad record) never stops the others."""
        try:
            await work
        except FencedError:
            raise
        except Exception:
            log.exception("%s: list review failed; tried again later", self.owner.venue)
