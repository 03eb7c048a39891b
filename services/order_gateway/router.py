"""Handling `orders:cmd:{venue}:{bot}`: place, cancel, cancel-all — write first, then send.

Place: the record is written PENDING_SUBMIT before the request leaves (a cid seen before is
never sent again); the reply moves it to NEW/FILLED/REJECTED; a timeout, 5xx, dropped
connection or malformed reply makes it UNKNOWN, which is resolved by querying the order by its
cid. Only "order does not exist" leads to a resend, with the same cid, and only once the first
request can no longer be accepted (its recvWindow has passed), so the venue can never take it
twice. A command whose cid already names an order with other terms is a conflict: refused,
never answered with the other order's state (terms.py). SyncBot: sync.py.

Sender: each bot writes its commands to its own stream, which only its runner's Redis user
may write (shared/redis_acl.py), so the stream names the sender. A command whose `bot` differs
from its stream's bot is dead-lettered, with the reason and a log line, before anything else.
Entries on the legacy shared `orders:cmd:{venue}` (left by an upgrade) have no known sender
and get the ownership checks only.

Ownership, the second layer: a place, cancel or replay naming an order that is not the named
bot's (the cid's prefix, or its record's owner) is refused without touching that order: a
REJECTED update goes to the sender's own events stream (never the owner's), with a
notification. CancelAll only ever cancels the bot's own orders; a sync only looks at the bot's
own prefix (sync.py).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

import msgspec

from services.order_gateway.halt import VenueHalt
from services.order_gateway.reconcile import find_out, settle
from services.order_gateway.reconcile_rules import Action
from services.order_gateway.retry import SEND, Retry
from services.order_gateway.symbols import SymbolCache
from services.order_gateway.sync import BotSyncer
from services.order_gateway.terms import describe, matches, record_terms, rounded_terms
from services.order_gateway.tracker import OrderTracker, now_ms
from services.order_gateway.validate import prepare
from services.order_gateway.venues.base import (
    AuthError,
    Banned,
    ClockSkew,
    DuplicateOrder,
    OrderNotFound,
    OutcomeUnknown,
    RateLimited,
    Rejected,
    VenueAdapter,
)
from services.order_gateway.wal import Wal
from shared import metrics
from shared.bus import Commit, DeadLetter, Entry
from shared.failpoints import failpoint
from shared.filters import FilterError
from shared.ids import IdError, bot_of, check_bot_id, parse_cid
from shared.messages import (
    CancelAll,
    CancelOrder,
    CancelOrderList,
    Level,
    Notification,
    OrderStatus,
    OrderUpdate,
    PlaceOrder,
    PlaceOrderList,
    SyncBot,
)
from shared.money import MoneyError
from shared.order_lifecycle import HALTED, UNCONFIRMED
from shared.order_record import CorruptRecord, OrderRecord, new_record, to_update, without_bad_amounts
from shared.order_report import OrderReport
from shared.order_terms import terms_of
from shared.streams import EVENTS_MAXLEN, NOTIFY, command_stream_bot, order_events

if TYPE_CHECKING:
    from services.order_gateway.lists import ListRouter

log = logging.getLogger("automata.order_gateway")

Notify = Callable[[Notification], Awaitable[None]]
Step = Callable[[str], Awaitable[object]]
# what a send may fail with after its retries, each handled by CommandRouter.send_failed
SEND_ERRORS = (
    FilterError,
    ArithmeticError,
    MoneyError,
    RateLimited,
    ClockSkew,
    Rejected,
    AuthError,
    OutcomeUnknown,
)


class CommandRouter:
    def __init__(
        self,
        venue: str,
        wal: Wal,
        tracker: OrderTracker,
        adapter: VenueAdapter,
        symbols: SymbolCache,
        notify: Notify,
        stopping: asyncio.Event,
    ) -> None:
        self.venue, self.wal, self.tracker, self.adapter = venue, wal, tracker, adapter
        self.symbols, self.notify, self.stopping = symbols, notify, stopping
        self.halt = VenueHalt(venue, notify, self._note, stopping.is_set, self._sleep)
        adapter.on_banned = self.halt.banned
        self.retry = Retry(adapter.sync_time, sleep=self._sleep, stopped=stopping.is_set)
        self.syncer = BotSyncer(wal, tracker, adapter, self.retry)
        self.lists: ListRouter | None = None  # order lists (lists.py), which wires itself in
        self._m_commands = metrics.counter(
            "automata_order_commands_total", "Commands handled", ("venue", "type", "outcome")
        )

    async def handle(self, entry: Entry) -> None:
        msg = entry.message
        self._check_sender(entry)
        if isinstance(msg, PlaceOrder):
            await self.place(msg, entry)
        elif isinstance(msg, CancelOrder):
            await self.cancel_command(msg, entry)
        elif isinstance(msg, CancelAll):
            await self.cancel_all(msg, entry)
        elif isinstance(msg, SyncBot):
            await self.syncer.sync(msg, entry)
        elif isinstance(msg, PlaceOrderList | CancelOrderList) and self.lists is not None:
            await self.lists.handle(msg, entry)
        else:
            raise TypeError(f"not an order command: {type(msg).__name__}")

    def _check_sender(self, entry: Entry) -> None:
        """Dead-letter a command naming another bot than the one whose stream it came on: only
        that bot's runner can write the stream, so the stream is the sender's identity."""
        sender = command_stream_bot(self.venue, entry.stream)
        if sender is None:  # the legacy shared stream: the writer is unknown, ownership decides
            return
        named = getattr(entry.message, "bot", None)
        if named != sender:
            self._count(entry.fields.get(b"type", b"?").decode(errors="replace"), "foreign_sender")
            log.error(
                "%s: %s %s names bot %r on the command stream of bot %r: refused (dead-lettered)",
                self.venue, type(entry.message).__name__, entry.id, named, sender,
            )  # fmt: skip
            raise DeadLetter(f"command names bot {named!r} on the command stream of bot {sender!r}")

    # -- place ---------------------------------------------------------------------------

    async def place(self, cmd: PlaceOrder, entry: Entry | None) -> None:
        # The create is atomic and refuses a cid it has seen, so it is also the replay check:
        # a new order costs one Redis round trip before it is sent, not a read and a create.
        foreign = self._not_owner(cmd.bot, cmd.cid)
        if foreign:  # refused before anything is written: the cid stays free for its owner
            await self._refuse(cmd, foreign, entry)
            return
        reason = await self._refusal(cmd)
        if not reason:
            record = msgspec.structs.replace(new_record(cmd, now_ms()), sent_ts=now_ms(), send_attempts=1)
            failpoint("og.before_wal")
            if await self.wal.create(record):
                failpoint("og.after_wal")
                await self._send(record, entry, cmd)
                return
        try:
            existing = await self.wal.get(cmd.cid)
        except CorruptRecord as exc:
            await self._conflict(cmd, f"its record cannot be read: {exc}", entry)
            return
        if existing is None:
            if reason:
                await self._reject(new_record(cmd, now_ms()), reason, entry)
            else:  # the record the create saw is gone again: start over
                await self.place(cmd, entry)
            return
        foreign = self._not_owner(cmd.bot, cmd.cid, existing)
        if foreign:  # a record another bot owns (only older versions could write one)
            await self._refuse(cmd, foreign, entry)
            return
        if not await self._same_order(cmd, existing):
            await self._conflict(cmd, describe(record_terms(existing)), entry)
            return
        # a replayed command (crash after the write-ahead record, or a bot claiming an order
        # the gateway adopted): the same order, so never sent again, answered with its state
        self._count("place", "replayed")
        if existing.status in UNCONFIRMED:
            await self.resolve(existing, entry)
        else:
            await self.tracker.emit_current(existing, ack=entry)

    async def _same_order(self, cmd: PlaceOrder, record: OrderRecord) -> bool:
        """Whether the command names the record's order: as it came, or rounded as it would
        have been sent (the record keeps the venue's rounded terms once the venue answered)."""
        asked = [terms_of(cmd)]
        if matches(asked, record):
            return True
        filters = await self.symbols.filters(cmd.symbol)
        rounded = rounded_terms(cmd, filters) if filters is not None else None
        return rounded is not None and matches([rounded], record)

    async def _conflict(self, cmd: PlaceOrder, held: str, entry: Entry | None) -> None:
        """The cid already names another order: refused with its own terms, never the other
        order's state. The record stays as it is and nothing is sent."""
        reason = f"conflict: client order id {cmd.cid} already names another order ({held})"
        await self._refuse(cmd, reason, entry, kind="conflict", held=held)

    def _not_owner(self, bot: str, cid: str, record: OrderRecord | None = None) -> str:
        """Why `bot` may not act on order `cid` ("" when it may): the cid must carry the bot's
        prefix (shared/ids.py) and its record, when there is one, the bot as owner."""
        try:
            check_bot_id(bot)
        except IdError as exc:  # no events stream to answer on
            raise DeadLetter(f"order command with an invalid bot id: {exc}") from None
        try:
            owner = parse_cid(cid).bot
        except IdError as exc:
            return str(exc)
        if record is not None:
            owner = record.bot
        if owner != bot:
            return f"client order id {cid!r} does not belong to bot {bot!r}"
        return ""

    async def _refuse(
        self, cmd: PlaceOrder | CancelOrder, reason: str, entry: Entry | None, *, kind: str = "refused",
        **data: str,
    ) -> None:  # fmt: skip
        """Refuse a command without touching the order it names: a REJECTED update on the
        sender's events stream (the command's own terms), a notification and the ack, in one
        MULTI/EXEC. Nothing is written to the order's record and nothing is sent."""
        now = now_ms()
        if isinstance(cmd, PlaceOrder):
            record = msgspec.structs.replace(
                new_record(cmd, now), status=OrderStatus.REJECTED, reason=reason, updated_ts=now
            )
            update = to_update(record, None, reconciled=False, now_ms=now)
            what = f"asked {describe(terms_of(cmd))}"
            data["asked"] = describe(terms_of(cmd))
        else:
            update = OrderUpdate(cid=cmd.cid, bot=cmd.bot, venue=self.venue, symbol=cmd.symbol,
                                 status=OrderStatus.REJECTED, reason=reason, ts=now)  # fmt: skip
            what = "cancel"
        update = msgspec.structs.replace(update, event_id=f"{cmd.cid}:{kind}")
        note = Notification(
            id=f"og:{self.venue}:{kind}:{cmd.cid}:{entry.id if entry is not None else now}",
            kind=kind,
            text=f"{self.venue}: {cmd.bot}: {reason}; {what}: refused, nothing sent",
            level=Level.ERROR,
            bot=cmd.bot,
            venue=self.venue,
            data={"cid": cmd.cid, **data},
            ts=now,
        )
        commit = Commit().publish(order_events(cmd.bot), update, maxlen=EVENTS_MAXLEN)
        commit.publish(NOTIFY, note, maxlen=100_000)
        if entry is not None and not entry.acked:
            commit.ack(entry.stream, entry.group, entry.id, entry)
        await self.wal.execute(commit)  # fenced like the log's own writes
        self._count("place" if isinstance(cmd, PlaceOrder) else "cancel", kind)
        log.error("%s: %s", self.venue, note.text)

    async def _refusal(self, cmd: PlaceOrder) -> str:
        """Why this command of the bot's own order must not be sent (empty when it may)."""
        if cmd.venue != self.venue:
            return f"command for venue {cmd.venue!r} on the stream of {self.venue!r}"
        if self.halt.active:
            return f"{HALTED}{self.venue}: {self.halt.reason}"
        return ""

    async def _send(self, record: OrderRecord, entry: Entry | None, cmd: PlaceOrder | None = None) -> None:
        """Send the recorded request (`cmd`, when the caller has it decoded already); on an
        unknown outcome, resolve by query."""
        if cmd is None:
            try:
                cmd = record.place_request()
            except msgspec.ValidationError as exc:  # an older version's record: never sendable
                await self._reject(record, f"invalid request: {exc}", entry)
                return
        try:
            report = await self.retry.run(
                lambda: self._place_once(cmd),
                SEND,
                what=f"{self.venue}: place {record.cid}",
                repeatable=False,
            )
        except SEND_ERRORS as exc:

            async def lost(message: str) -> None:
                marked = await self._mark_unknown(record, message, None, tell_bot=True)
                if marked is not None and marked.status is OrderStatus.UNKNOWN:
                    await self.resolve(marked, entry)
                elif entry is not None:  # the stream or the poller already settled it meanwhile
                    await self.tracker.emit_current(marked or record, ack=entry)

            await self.send_failed(
                exc,
                record.cid,
                reject=lambda reason: self._reject(record, reason, entry),
                unknown=lambda reason: self._mark_unknown(record, reason, entry),
                resolve=lambda: self.resolve(record, entry),
                lost=lost,
            )
            return
        if report is None:  # an invalid symbol
            await self._reject(record, f"-1121: invalid symbol {cmd.symbol}", entry)
            return
        failpoint("og.after_reply")
        await self.tracker.apply(report, reconciled=False, ack=entry)
        failpoint("og.after_commit")
        self._count("place", report.status.value)

    async def send_failed(
        self, exc: Exception, what: str, *, reject: Step, unknown: Step, resolve: Callable[[], Awaitable[object]],
        lost: Step,
    ) -> None:  # fmt: skip
        """What a send that failed for good comes to, by the error's class (one rule for an order
        and an order list): refused -> `reject(reason)`; still rate limited or skewed after every
        attempt -> `unknown(reason)`, left for reconciliation; the id exists at the venue ->
        `resolve()`; the outcome unknown -> `lost(message)`, which resolves by query."""
        if isinstance(exc, FilterError):
            await reject(str(exc))
        elif isinstance(exc, ArithmeticError | MoneyError):  # amounts no arithmetic can take
            await reject(f"invalid amounts: {type(exc).__name__}: {exc}")
        elif isinstance(exc, Banned):
            await self.halt.halted(exc)
            await reject(f"{HALTED}{self.venue}: {self.halt.reason}")
        elif isinstance(exc, RateLimited | ClockSkew):
            await unknown("send attempts exhausted")
            log.error("%s: %s left UNKNOWN after %d attempts", self.venue, what, SEND.attempts)
        elif isinstance(exc, DuplicateOrder):
            await resolve()
        elif isinstance(exc, AuthError):
            await self.notify(
                self._note("error", f"{self.venue}: API key refused: {exc.message}", Level.ERROR)
            )
            await reject(exc.message)
        elif isinstance(exc, Rejected):
            await reject(exc.message)
        else:
            message = exc.message if isinstance(exc, OutcomeUnknown) else str(exc)
            log.warning("%s: outcome of %s unknown (%s); resolving by query", self.venue, what, message)
            await lost(message)

    async def _place_once(self, cmd: PlaceOrder) -> OrderReport | None:
        """One try of sending the order, rounded to the symbol's filters; None when the venue
        does not list the symbol."""
        filters = await self.symbols.filters(cmd.symbol)
        if filters is None:
            return None
        ref = await self.symbols.last_price(cmd.symbol)
        return await self.adapter.place(cmd, *prepare(cmd, filters, ref))

    async def resolve(self, record: OrderRecord, entry: Entry | None) -> OrderRecord | None:
        """Find out what happened to a PENDING_SUBMIT/UNKNOWN order by its cid; resend only if
        the venue does not know it and can no longer accept the first request (reconcile.settle)."""
        verdict, result = await settle(record, self.tracker, self.retry, resend=self.resend, ack=entry)
        if verdict.action is Action.APPLY and verdict.report is not None:
            self._count("resolve", verdict.report.status.value)
            return result
        if verdict.action is Action.RESEND:
            return result
        log.error(
            "%s: could not resolve %s now (%s); reconciliation will retry",
            self.venue, record.cid, verdict.reason or "its first request may still arrive",
        )  # fmt: skip
        if entry is not None:
            await self._mark_unknown(record, "could not resolve yet", entry)
        return None

    async def _mark_unknown(
        self, record: OrderRecord, reason: str, entry: Entry | None, *, tell_bot: bool = False
    ) -> OrderRecord | None:
        """PENDING_SUBMIT -> UNKNOWN, unless another path (stream, poller) moved the record
        meanwhile: a write here must never undo what the venue already told us. Returns the
        record as it now is."""

        async def mutate(current: OrderRecord):
            if current.status not in UNCONFIRMED:
                return None
            new = msgspec.structs.replace(
                current, status=OrderStatus.UNKNOWN, reason=reason, updated_ts=now_ms()
            )
            publish = (
                [(order_events(new.bot), to_update(new, None, reconciled=False, now_ms=now_ms()))]
                if tell_bot
                else []
            )
            return new, publish

        await self.wal.update(record.cid, mutate, ack=entry)
        return await self.wal.get(record.cid)

    async def resend(self, record: OrderRecord, entry: Entry | None) -> OrderRecord | None:
        """Send the recorded order again with the same cid (the venue never got it, and can no
        longer get the first request); reconciliation's `resend` in this process."""
        self._count("place", "resent")
        log.warning("%s: %s never reached the venue; resending with the same cid", self.venue, record.cid)
        record = msgspec.structs.replace(record, sent_ts=now_ms(), send_attempts=record.send_attempts + 1)
        await self.wal.save(record)
        await self._send(record, entry)
        return await self.wal.get(record.cid)

    async def _reject(self, record: OrderRecord, reason: str, entry: Entry | None) -> None:
        record = msgspec.structs.replace(
            without_bad_amounts(record), status=OrderStatus.REJECTED, reason=reason, updated_ts=now_ms()
        )
        update = to_update(record, None, reconciled=False, now_ms=now_ms())
        await self.wal.save(record, [(order_events(record.bot), update)], ack=entry)
        self._count("place", "rejected")
        log.info("%s: %s rejected: %s", self.venue, record.cid, reason)

    # -- cancel --------------------------------------------------------------------------

    async def cancel_command(self, cmd: CancelOrder, entry: Entry) -> None:
        """A bot's cancel: carried out only for an order of its own."""
        foreign = self._not_owner(cmd.bot, cmd.cid)
        if not foreign:
            with contextlib.suppress(CorruptRecord):  # cancel() meets it and reports it as ever
                foreign = self._not_owner(cmd.bot, cmd.cid, await self.wal.get(cmd.cid))
        if foreign:
            await self._refuse(cmd, foreign, entry)
            return
        await self.unbanned(lambda: self.cancel(cmd.cid, cmd.symbol, entry), f"cancel {cmd.cid}")

    async def unbanned(self, op: Callable[[], Awaitable[None]], what: str) -> None:
        """op(), done again once a ban has passed. A banned request (HTTP 418, Bybit 403) was
        refused unseen, and every request until the ban ends would be too: the command waits it
        out in its lane (the venue halted, the user told) rather than failing delivery after
        delivery into the dead letters, which would lose a bot's cancel. A stop ends the wait;
        the entry stays pending for the next run."""
        while True:
            try:
                await op()
                return
            except Banned as exc:
                await self.halt.halted(exc)
                if self.stopping.is_set():
                    raise
                wait = max(self.halt.until - time.time(), 0.0)
                log.warning("%s: %s waits %.0fs for the ban to end", self.venue, what, wait)
                await self._sleep(wait)
                if self.stopping.is_set():
                    raise

    async def cancel(self, cid: str, symbol: str, entry: Entry | None, *, whole_list: bool = True) -> None:
        """Cancel one order; a leg of a list cancels its whole list (as Binance does), unless
        the list's own path cancels that one leg (`whole_list=False`)."""
        record = await self.wal.get(cid)
        if record is not None and record.list_cid and whole_list and self.lists is not None:
            await self.lists.cancel(record.list_cid, entry)
            return
        if record is not None:
            symbol = record.symbol
            if record.terminal:
                await self.tracker.emit_current(record, ack=entry)
                return
            if record.status in (
                OrderStatus.PENDING_SUBMIT,
                OrderStatus.UNKNOWN,
            ) and not await self._reached_venue(record):
                # never reached the venue and now never can: cancelled without sending anything
                record = msgspec.structs.replace(
                    record,
                    status=OrderStatus.CANCELED,
                    reason="cancelled before it reached the venue",
                    updated_ts=now_ms(),
                )
                await self.tracker.emit_current(record, ack=entry)
                return
        try:
            report = await self.retry.run(
                lambda: self._cancel_once(symbol, cid), SEND, what=f"{self.venue}: cancel {cid}"
            )
        except OrderNotFound:
            log.warning("%s: cancel of %s: the venue does not know it", self.venue, cid)
            self._count("cancel", "not_found")
            if entry is not None and not entry.acked:
                await self.wal.redis.xack(entry.stream, entry.group, entry.id)
                entry.acked = True
            return
        # anything else still failing after the retries fails the command: its entry stays
        # pending and the lane tries it again later
        if await self.wal.get(cid) is None:
            await self.tracker.adopt(report)
        await self.tracker.apply(report, reconciled=False, ack=entry)
        self._count("cancel", report.status.value)

    async def _cancel_once(self, symbol: str, cid: str) -> OrderReport:
        """One try of the cancel; an order the venue will not cancel (already filled, cancelled
        or unknown) is settled by the venue's own view of it."""
        try:
            return await self.adapter.cancel(symbol, cid)
        except (OrderNotFound, Rejected):
            return await self.adapter.query(symbol, cid)  # OrderNotFound: it does not know it

    async def _reached_venue(self, record: OrderRecord) -> bool:
        """Whether the venue has (or may still get) this order; waits out the recvWindow if
        needed. OutcomeUnknown when the venue cannot tell now (the cancel is tried again later)."""
        verdict = await find_out(record, self.adapter, self.retry)
        if verdict.action is Action.RESEND:
            return False
        if verdict.action is Action.APPLY:
            return True
        raise OutcomeUnknown(
            f"cannot tell whether {record.cid} reached the venue: {verdict.reason or 'stopping'}"
        )

    async def cancel_all(self, cmd: CancelAll, entry: Entry) -> None:
        for cid in await self.wal.open_cids():
            if bot_of(cid) != cmd.bot:
                continue
            record = await self.wal.get(cid)
            if record is None or record.bot != cmd.bot or (cmd.symbol and record.symbol != cmd.symbol):
                continue
            await self.cancel(cid, record.symbol, None)
        await self.wal.redis.xack(entry.stream, entry.group, entry.id)
        entry.acked = True
        self._count("cancel_all", "ok")

    # -- helpers -------------------------------------------------------------------------

    def _note(self, kind: str, text: str, level: Level = Level.INFO) -> Notification:
        return Notification(
            id=f"og:{self.venue}:{kind}:{now_ms()}",
            kind=kind,
            text=text,
            level=level,
            venue=self.venue,
            ts=now_ms(),
        )

    def _count(self, kind: str, outcome: str) -> None:
        self._m_commands.labels(self.venue, kind, outcome).inc()

    async def _sleep(self, seconds: float) -> None:
        try:
            await asyncio.wait_for(self.stopping.wait(), timeout=max(seconds, 0.0))
        except TimeoutError:
            pass
