"""Order lists (PlaceOrderList, CancelOrderList): write first, send once, resolve by the list's id.

The list and its legs are written ahead in one script (list_wal.py); a list cid or a leg cid
seen before is never sent again, and a replayed command is answered with the legs' current
states. Ownership and the sender are checked as for one order (the router's rules): the list
cid and every leg cid must carry the bot's prefix.

Natively (the venue has the kind, adapter.lists): one request with every leg rounded as for one
order; the reply's reports go through the tracker. An unknown outcome is resolved by querying
the list by its cid: what the venue knows is applied; the list is resent (same ids) only when
the venue knows none of it and the first request's recvWindow has passed — the rule of
reconcile_rules.judge. A refusal: every leg REJECTED with the reason. Elsewhere (or when the
venue's config says `emulate_lists`) the list is emulated: an OCO (emulated_oco.py), an OTO or
OTOCO (emulated_oto.py, its pair an emulated OCO).
"""

from __future__ import annotations

import logging

import msgspec

from services.order_gateway.emulated_oco import Emulator, split
from services.order_gateway.list_wal import Created, ListRecord, ListWal, Mode, Phase
from services.order_gateway.reconcile import UNHANDLED, Summary, ask
from services.order_gateway.reconcile_rules import Action, NoAnswer, NotFound, Verdict, judge
from services.order_gateway.retry import RESOLVE, SEND, Retry
from services.order_gateway.router import SEND_ERRORS, CommandRouter
from services.order_gateway.tracker import OrderTracker, now_ms
from services.order_gateway.validate import prepare
from services.order_gateway.venues.base import OrderNotFound, OutcomeUnknown, Rejected, VenueError
from shared.bus import Entry
from shared.failpoints import failpoint
from shared.messages import CancelOrderList, ListKind, OrderStatus, PlaceOrder, PlaceOrderList
from shared.order_lifecycle import OPEN_STATUSES, UNCONFIRMED
from shared.order_record import OrderRecord, new_record
from shared.order_report import OrderReport
from shared.order_terms import same_terms, terms_of

log = logging.getLogger("automata.order_gateway.lists")

ListAnswer = list[OrderReport] | NotFound | NoAnswer


async def look_up_list(record: ListRecord, tracker: OrderTracker, retry: Retry) -> ListAnswer:
    """The venue's reports of the list's legs, NOT_FOUND, or NoAnswer (failures retried)."""
    adapter = tracker.adapter
    return await ask(lambda: adapter.query_list(record.symbol, record.list_cid), retry, RESOLVE,
                     what=f"{adapter.name}: query of list {record.list_cid}")  # fmt: skip


async def find_out_list(
    record: ListRecord, legs: list[OrderRecord | None], tracker: OrderTracker, retry: Retry
) -> tuple[Verdict, list[OrderReport]]:
    """The verdict on a native list with an unconfirmed leg, as reconcile.find_out gives it for
    one order: the list's reports are applied; not found means waiting out the first request's
    recvWindow, asking again, and only then resending."""
    first = next((leg for leg in legs if leg is not None), None)
    if first is None:
        return Verdict(Action.UNRESOLVED, reason="the list's legs have no records"), []
    pending = msgspec.structs.replace(first, sent_ts=record.sent_ts)  # the list's send counts
    recv = tracker.adapter.recv_window_ms
    for attempt in range(2):
        answer = await look_up_list(record, tracker, retry)
        if isinstance(answer, list):
            return Verdict(Action.APPLY), answer
        verdict = judge(pending, answer, now_ms(), recv)
        if verdict.action is not Action.WAIT or attempt:
            return verdict, []
        await retry.sleep(verdict.wait_ms / 1000)
    raise AssertionError("unreachable")


async def apply_reports(tracker: OrderTracker, reports: list[OrderReport], *, reconciled: bool,
                        ack: Entry | None) -> None:  # fmt: skip
    """Each leg's report through the tracker (forward only); the command's XACK rides in the
    last leg's MULTI/EXEC (each leg is its own record, so its own transaction)."""
    for i, report in enumerate(reports):
        await tracker.apply(report, reconciled=reconciled, ack=ack if i == len(reports) - 1 else None)
    if ack is not None and not ack.acked:
        await tracker.wal.redis.xack(ack.stream, ack.group, ack.id)
        ack.acked = True


async def reconcile_lists(lists: ListWal, tracker: OrderTracker, retry: Retry, summary: Summary) -> None:
    """`automata reconcile`'s part for lists (no resend: only the gateway sends): a native list
    with an unconfirmed leg is resolved by its query; a list whose legs are all final closed.
    An emulated list's legs at the venue are single orders, checked with the others."""
    for list_cid in await lists.open_list_cids():
        try:
            await _reconcile_list(lists, list_cid, tracker, retry, summary)
        except UNHANDLED as exc:  # a record that does not read: reported, the others go on
            summary.skipped += 1
            log.error(
                "%s: reconciliation skipped list %s: %s: %s", lists.venue, list_cid, type(exc).__name__, exc
            )


async def _reconcile_list(
    lists: ListWal, list_cid: str, tracker: OrderTracker, retry: Retry, summary: Summary
) -> None:
    record = await lists.get(list_cid)
    if record is None:
        return
    legs = await lists.legs(record)
    if record.mode is Mode.NATIVE and any(leg is not None and leg.status in UNCONFIRMED for leg in legs):
        summary.checked += 1
        verdict, reports = await find_out_list(record, legs, tracker, retry)
        if verdict.action is Action.APPLY:
            await apply_reports(tracker, reports, reconciled=True, ack=None)
        else:
            summary.unresolved += 1
            log.error("%s: list %s unresolved: %s", lists.venue, list_cid,
                      verdict.reason or "the venue never got it; only the order gateway resends")  # fmt: skip
    await close_if_done(lists, record)


async def close_if_done(lists: ListWal, record: ListRecord) -> bool:
    """Mark the list DONE once every leg is final; True when it is."""
    if record.done:
        return True
    legs = await lists.legs(record)
    if all(leg is None or leg.terminal for leg in legs):
        await lists.save(msgspec.structs.replace(record, phase=Phase.DONE, updated_ts=now_ms()))
        return True
    return False


def written_ahead(
    cmd: PlaceOrderList, mode: Mode, now: int, *, held: frozenset[str] = frozenset()
) -> tuple[ListRecord, list[OrderRecord]]:
    """The list's record and its legs' records as they are written before anything is sent
    (sent_ts now: the first request's recvWindow counts from here); `held` names the legs the
    gateway holds back (an emulated stop, an emulated OTO / OTOCO's pending legs)."""
    record = ListRecord(
        list_cid=cmd.list_cid, bot=cmd.bot, venue=cmd.venue, symbol=cmd.symbol, kind=cmd.kind, mode=mode,
        legs=tuple(leg.cid for leg in cmd.legs), request=msgspec.json.encode(cmd).decode(),
        sent_ts=now, send_attempts=1, created_ts=now, updated_ts=now,
    )  # fmt: skip
    legs = [
        msgspec.structs.replace(
            new_record(leg, now), list_cid=cmd.list_cid, sent_ts=now, send_attempts=1, held=leg.cid in held
        )  # fmt: skip
        for leg in cmd.legs
    ]
    return record, legs


class ListRouter:
    """The order gateway's list path, beside (and through) the router's single-order one."""

    def __init__(self, router: CommandRouter, *, emulate: bool, review_every_s: float = 10.0) -> None:
        self.router, self.wal, self.tracker = router, router.wal, router.tracker
        self.adapter, self.retry, self.venue = router.adapter, router.retry, router.venue
        self.lists = ListWal(router.wal)
        self.emulate = emulate
        self.emulator = Emulator(self, review_every_s)
        self.busy: set[str] = set()  # lists a command is handling now: not reviewed meanwhile
        router.lists = self
        self.tracker.on_leg = self.emulator.moved

    def mode(self, kind: ListKind) -> Mode:
        native = kind in getattr(self.adapter, "lists", frozenset()) and not self.emulate
        return Mode.NATIVE if native else Mode.EMULATED

    async def handle(self, msg: PlaceOrderList | CancelOrderList, entry: Entry) -> None:
        self.busy.add(msg.list_cid)
        try:
            if isinstance(msg, PlaceOrderList):
                await self.place(msg, entry)
            else:
                await self.cancel_command(msg, entry)
        finally:
            self.busy.discard(msg.list_cid)

    # -- place ---------------------------------------------------------------------------

    async def place(self, cmd: PlaceOrderList, entry: Entry | None) -> None:
        router = self.router
        foreign = next(filter(None, (router._not_owner(cmd.bot, c) for c in self._cids(cmd))), "")
        if foreign:  # nothing written: the ids stay free for their owner
            await self._refuse(cmd, foreign, entry)
            return
        mode = self.mode(cmd.kind)
        reason = await router._refusal(cmd.legs[0])
        if not reason and mode is Mode.EMULATED:
            reason = self.emulator.refusal(cmd)
        held = self.emulator.held_legs(cmd) if mode is Mode.EMULATED and not reason else frozenset()
        record, legs = written_ahead(cmd, mode, now_ms(), held=held)
        created = await self.lists.create(record, legs)
        if created is Created.CREATED:
            failpoint("og.list.after_wal")
            if reason:
                await self.reject(record, reason, entry)
            elif mode is Mode.NATIVE:
                await self.send(record, cmd, entry)
            else:
                await self.emulator.start(record, entry)
            return
        existing = await self.lists.get(cmd.list_cid)
        if existing is None and created is Created.LEG_EXISTS:
            existing = await self._adopted_list(cmd, mode)
        elif created is Created.LEG_EXISTS:
            existing = None
        if existing is None:
            await self._refuse(cmd, "conflict: a leg's client order id already names another order", entry)
            return
        if existing.bot != cmd.bot:
            await self._refuse(cmd, f"list {cmd.list_cid!r} does not belong to bot {cmd.bot!r}", entry)
            return
        if not _same_list(existing.place_request(), cmd):
            await self._refuse(cmd, f"conflict: list {cmd.list_cid} already names another list", entry)
            return
        await self.replay(existing, entry)

    async def _adopted_list(self, cmd: PlaceOrderList, mode: Mode) -> ListRecord | None:
        """A list whose record a power cut took from Redis while the venue kept its orders: the
        gateway adopted them from the venue, and the bot asks for the list again (its command
        replayed, or its older state sending it anew). Those are the orders it asks for: the
        list is written again and the command answered with its legs' states, as any replay.
        Refusing it as a conflict told the bot its live legs were refused: it sold by its own
        watch what a venue leg sold too (sold twice). None when a leg is missing or another order.
        Native: both legs adopted, each naming the list. Emulated OCO: its limit leg adopted (a
        single order at the venue), its held stop leg lost with the list: held again, watched;
        or the stop had fired: the limit leg final and the stop leg adopted as the order it was
        sent as (MARKET, or LIMIT at its price, for what the limit leg left): the list is past
        SENDING, finished from those records, never sent again (the position sold once)."""
        legs = [await self.wal.get(leg.cid) for leg in cmd.legs]
        pair = split(cmd) if mode is Mode.EMULATED and cmd.kind is ListKind.OCO else None
        if pair is None:
            if mode is Mode.EMULATED:
                return None
            held, fired = set(), None
        else:
            limit, stop = (legs[cmd.legs.index(leg)] for leg in pair)
            held = {pair[1].cid} if stop is None else set()
            fired = await self._fired_stop(pair[1], limit) if stop is not None else None
            if stop is not None and fired is None:
                return None
        for asked, leg in zip(cmd.legs, legs, strict=True):
            if asked.cid in held:
                continue
            if leg is None or leg.held or leg.bot != cmd.bot or leg.list_cid not in (cmd.list_cid, ""):
                return None
            if (mode is Mode.NATIVE and leg.list_cid != cmd.list_cid) or not await self.router._same_order(
                fired if fired is not None and asked.cid == fired.cid else asked, leg
            ):
                return None
        record, fresh = written_ahead(cmd, mode, now_ms(), held=frozenset(held))
        if fired is not None:
            record = msgspec.structs.replace(record, phase=Phase.SENDING)
        for leg, new in zip(legs, fresh, strict=True):
            if leg is None:
                await self.wal.create(new)
            elif leg.list_cid != cmd.list_cid:
                await self.wal.save(msgspec.structs.replace(leg, list_cid=cmd.list_cid, updated_ts=now_ms()))
        await self.lists.save(record)
        log.warning("%s: list %s: its record lost, its legs adopted from the venue: written again",
                    self.venue, cmd.list_cid)  # fmt: skip
        return record

    async def _fired_stop(self, stop: PlaceOrder, limit: OrderRecord | None) -> PlaceOrder | None:
        """The order an emulated OCO's stop leg was sent as, once its limit leg was final (None
        while the limit leg is not final or left nothing: the stop leg was never sent)."""
        return await self.emulator.release_of(stop, limit) if limit is not None and limit.terminal else None

    @staticmethod
    def _cids(cmd: PlaceOrderList) -> list[str]:
        return [cmd.list_cid, *(leg.cid for leg in cmd.legs)]

    async def _refuse(self, cmd: PlaceOrderList, reason: str, entry: Entry | None) -> None:
        """Every leg refused on the sender's own stream, no record touched, nothing sent."""
        for leg in cmd.legs:
            await self.router._refuse(
                leg, reason, entry, kind="refused" if "conflict" not in reason else "conflict"
            )

    async def replay(self, record: ListRecord, entry: Entry | None) -> None:
        """A list seen before: never sent again; answered with its legs' current states, once
        the ones whose outcome is unknown are resolved."""
        self.router._count("place_list", "replayed")
        legs = await self.lists.legs(record)
        if record.mode is Mode.NATIVE and any(leg is not None and leg.status in UNCONFIRMED for leg in legs):
            await self.resolve(record, entry)
        elif record.mode is Mode.EMULATED:
            await self.emulator.review(record.list_cid)
        for leg in await self.lists.legs(record):
            if leg is not None:
                await self.tracker.emit_current(leg)
        await self._ack(entry)

    async def send(self, record: ListRecord, cmd: PlaceOrderList, entry: Entry | None) -> None:
        """Send the native list; on an unknown outcome resolve it by query."""
        try:
            reports = await self.retry.run(
                lambda: self._place_once(cmd), SEND, what=f"{self.venue}: place list {record.list_cid}",
                repeatable=False,
            )  # fmt: skip
        except SEND_ERRORS as exc:

            async def lost(message: str) -> None:
                await self._mark_unknown(record, message, None, tell_bot=True)
                await self.resolve(record, entry)

            await self.router.send_failed(
                exc,
                f"list {record.list_cid}",
                reject=lambda reason: self.reject(record, reason, entry),
                unknown=lambda reason: self._mark_unknown(record, reason, entry),
                resolve=lambda: self.resolve(record, entry),
                lost=lost,
            )
            return
        if reports is None:
            await self.reject(record, f"-1121: invalid symbol {cmd.symbol}", entry)
            return
        failpoint("og.list.after_reply")
        await apply_reports(self.tracker, reports, reconciled=False, ack=entry)
        failpoint("og.list.after_commit")
        await close_if_done(self.lists, record)
        self.router._count("place_list", "sent")

    async def _place_once(self, cmd: PlaceOrderList) -> list[OrderReport] | None:
        filters = await self.router.symbols.filters(cmd.symbol)
        if filters is None:
            return None
        ref = await self.router.symbols.last_price(cmd.symbol)
        return await self.adapter.place_list(cmd, [tuple(prepare(leg, filters, ref)) for leg in cmd.legs])

    async def resolve(self, record: ListRecord, entry: Entry | None, summary: Summary | None = None) -> None:
        """Find out what the venue did with a native list; resend only when it knows none of it
        and can no longer take the first request."""
        verdict, reports = await find_out_list(
            record, await self.lists.legs(record), self.tracker, self.retry
        )
        if verdict.action is Action.APPLY:
            await apply_reports(self.tracker, reports, reconciled=True, ack=entry)
            await close_if_done(self.lists, record)
        elif verdict.action is Action.RESEND:
            log.warning("%s: list %s never reached the venue; resending with the same ids",
                        self.venue, record.list_cid)  # fmt: skip
            self.router._count("place_list", "resent")
            record = msgspec.structs.replace(record, sent_ts=now_ms(), send_attempts=record.send_attempts + 1)
            await self.lists.save(record)
            if summary is not None:
                summary.resent += 1
            await self.send(record, record.place_request(), entry)
        else:
            log.error("%s: could not resolve list %s now (%s); reconciliation will retry",
                      self.venue, record.list_cid, verdict.reason or "its first request may still arrive")  # fmt: skip
            await self._mark_unknown(record, "could not resolve yet", entry)
            if summary is not None:
                summary.unresolved += 1

    async def _mark_unknown(self, record: ListRecord, reason: str, entry: Entry | None, *,
                            tell_bot: bool = False) -> None:  # fmt: skip
        for leg in await self.lists.legs(record):
            if leg is not None:
                await self.router._mark_unknown(leg, reason, None, tell_bot=tell_bot)
        await self._ack(entry)

    async def reject(self, record: ListRecord, reason: str, entry: Entry | None) -> None:
        """The list refused: every leg REJECTED with the reason, the list done."""
        for leg in await self.lists.legs(record):
            if leg is not None and not leg.terminal:
                await self.router._reject(leg, reason, None)
        await self.lists.save(
            msgspec.structs.replace(record, phase=Phase.DONE, reason=reason, updated_ts=now_ms())
        )
        await self._ack(entry)
        self.router._count("place_list", "rejected")

    # -- cancel --------------------------------------------------------------------------

    async def cancel_command(self, cmd: CancelOrderList, entry: Entry) -> None:
        record = await self.lists.get(cmd.list_cid)
        foreign = self.router._not_owner(cmd.bot, cmd.list_cid)
        if not foreign and record is not None and record.bot != cmd.bot:
            foreign = f"list {cmd.list_cid!r} does not belong to bot {cmd.bot!r}"
        if foreign:
            log.error("%s: cancel of list %s by %s refused: %s", self.venue, cmd.list_cid, cmd.bot, foreign)
            self.router._count("cancel_list", "refused")
            await self._ack(entry)
            return
        await self.router.unbanned(lambda: self.cancel(cmd.list_cid, entry), f"cancel of list {cmd.list_cid}")

    async def cancel(self, list_cid: str, entry: Entry | None) -> None:
        """Cancel every open leg of the list (natively, or the gateway's own legs)."""
        record = await self.lists.get(list_cid)
        if record is None:
            await self._cancel_adopted_legs(list_cid)
        elif record.done:
            for leg in await self.lists.legs(record):
                if leg is not None:
                    await self.tracker.emit_current(leg)
        elif record.mode is Mode.EMULATED:
            await self.emulator.cancel(list_cid)
        else:
            await self._cancel_native(record)
        await self._ack(entry)
        self.router._count("cancel_list", "ok")

    async def _cancel_adopted_legs(self, list_cid: str) -> None:
        """A list without a record: a power cut took it from Redis while the venue kept the list,
        whose legs the gateway then adopted, each naming its list. Each leg still open is
        cancelled alone (the venue ends a native list with its first leg). Dropping the cancel
        instead left the legs open at the venue for good, the bot waiting for their end."""
        legs = []
        for cid in await self.wal.open_cids():
            leg = await self.wal.get(cid) if cid.startswith(list_cid.rsplit("-", 1)[0] + "-") else None
            if leg is not None and leg.list_cid == list_cid:
                legs.append(leg)
        if not legs:
            log.warning("%s: cancel of list %s: no such list", self.venue, list_cid)
        for leg in legs:
            log.warning("%s: cancel of list %s: no record of it, its adopted leg %s cancelled alone",
                        self.venue, list_cid, leg.cid)  # fmt: skip
            await self.router.cancel(leg.cid, leg.symbol, None, whole_list=False)

    async def _cancel_native(self, record: ListRecord) -> None:
        legs = await self.lists.legs(record)
        if any(leg is not None and leg.status in UNCONFIRMED for leg in legs):
            verdict, reports = await find_out_list(record, legs, self.tracker, self.retry)
            if verdict.action is Action.RESEND:  # never reached the venue, now never can
                for leg in legs:
                    if leg is not None and not leg.terminal:
                        await self.tracker.emit_current(msgspec.structs.replace(
                            leg, status=OrderStatus.CANCELED, reason="cancelled before it reached the venue",
                            updated_ts=now_ms()))  # fmt: skip
                await close_if_done(self.lists, record)
                return
            if verdict.action is not Action.APPLY:
                raise OutcomeUnknown(f"cannot tell whether list {record.list_cid} reached the venue")
            await apply_reports(self.tracker, reports, reconciled=True, ack=None)
        try:
            reports = await self.retry.run(
                lambda: self._cancel_once(record), SEND, what=f"{self.venue}: cancel list {record.list_cid}"
            )
        except OrderNotFound:
            log.warning("%s: cancel of list %s: the venue does not know it", self.venue, record.list_cid)
            return
        await apply_reports(self.tracker, reports, reconciled=False, ack=None)
        await close_if_done(self.lists, record)

    async def _cancel_once(self, record: ListRecord) -> list[OrderReport]:
        """One try; a list the venue will not cancel (final already) is settled by its query,
        and a leg still working in it (an OCO's leg traded in part: the venue holds the list
        done once the other leg expired) is cancelled alone, so every open leg ends."""
        try:
            return await self.adapter.cancel_list(record.symbol, record.list_cid)
        except (OrderNotFound, Rejected):
            reports = await self.adapter.query_list(record.symbol, record.list_cid)
        return [await self._cancel_leg(r) if r.status in OPEN_STATUSES else r for r in reports]

    async def _cancel_leg(self, report: OrderReport) -> OrderReport:
        try:
            return await self.adapter.cancel(report.symbol, report.cid)
        except (OrderNotFound, Rejected):
            return report  # it ended meanwhile: its own report says how

    # -- reconciliation ------------------------------------------------------------------

    async def reconcile(self, summary: Summary | None = None) -> None:
        """Finish every open list from what its record and its legs say (at start, before any
        command, and periodically): a native list with an unconfirmed leg is resolved by query
        (and resent when the venue never got it), an emulation taken on from its phase."""
        for list_cid in await self.lists.open_list_cids():
            if list_cid in self.busy:
                continue
            try:
                await self.review(list_cid, summary)
            except (VenueError, ValueError) as exc:
                log.error(
                    "%s: list %s not finished now: %s: %s", self.venue, list_cid, type(exc).__name__, exc
                )
                if summary is not None:
                    summary.unresolved += 1

    async def review(self, list_cid: str, summary: Summary | None = None) -> None:
        record = await self.lists.get(list_cid)
        if record is None or record.done:
            return
        if summary is not None:
            summary.checked += 1
        if record.mode is Mode.EMULATED:
            await self.emulator.review(list_cid)
            return
        legs = await self.lists.legs(record)
        if any(leg is not None and leg.status in UNCONFIRMED for leg in legs):
            await self.resolve(record, None, summary)
        else:
            await close_if_done(self.lists, record)

    async def _ack(self, entry: Entry | None) -> None:
        if entry is not None and not entry.acked:
            await self.wal.redis.xack(entry.stream, entry.group, entry.id)
            entry.acked = True


def _same_list(held: PlaceOrderList, cmd: PlaceOrderList) -> bool:
    """Whether a replayed command names the recorded list: same kind and the same legs' terms."""
    return held.kind == cmd.kind and all(
        a.cid == b.cid and same_terms(terms_of(a), terms_of(b))
        for a, b in zip(held.legs, cmd.legs, strict=True)
    )
