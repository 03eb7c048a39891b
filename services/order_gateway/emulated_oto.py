"""An OTO or OTOCO the venue does not offer, carried out by the gateway with single orders,
crash-safe, with the emulated OCO's machinery (emulated_oco.Emulator: held legs, phases written
before they are acted on, the review loop).

The working leg (the first: any single order the venue takes) is sent; the pending legs are
held by the gateway (`held` records, NEW to the bot: Binance's PENDING_NEW reads as NEW). Its
phases (list_wal.Phase), each decided from the phase and the legs' records alone:

- PENDING -> WAITING once the working leg is known at the venue.
- The working leg FILLED -> RELEASING, written, then acted on: an OTO's pending leg is sent as
  a single order, its quantity as the bot asked (from then an ordinary order: the list is done
  when it is final); an OTOCO's pair becomes an emulated OCO: its limit leg is sent, its stop
  stays held, and the list goes on as an OCO from WORKING (emulated_oco.py, the book watched).
- The working leg final without filling completely (CANCELED, EXPIRED, REJECTED): the pending
  legs EXPIRED (as Binance expires them), the list DONE.

A restart, or the periodic review, finishes from wherever a crash left it: the fill in the log
but RELEASING not written -> written; RELEASING written but a leg still held -> sent (a leg
released in the log whose send's outcome is unknown is the router's to resolve, as any order).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import msgspec

from services.order_gateway.list_wal import ListRecord, Phase
from services.order_gateway.tracker import now_ms
from shared.failpoints import failpoint
from shared.messages import ListKind, OrderStatus
from shared.order_lifecycle import UNCONFIRMED
from shared.order_record import OrderRecord

if TYPE_CHECKING:
    from services.order_gateway.emulated_oco import Emulator

PHASES = frozenset({Phase.PENDING, Phase.WAITING, Phase.RELEASING})


async def step(emu: Emulator, record: ListRecord) -> ListRecord | None:
    """One step of an OTO / OTOCO until its pending legs are out: the list with its next phase
    saved, or None to wait. Safe to repeat after a crash."""
    working, *pending = await emu.owner.lists.legs(record)
    if working is None or None in pending:  # a record gone (retention; Redis lost it)
        await _expire(emu, pending, "a leg's record is missing")
        return await emu.save(record, Phase.DONE, reason="a leg's record is missing")
    if record.phase is Phase.RELEASING:
        return await _release(emu, record)
    for leg in pending:
        if leg is not None and leg.held and leg.status is OrderStatus.PENDING_SUBMIT:
            await emu.hold(leg.cid)
    if working.status in UNCONFIRMED:
        return None  # the router's path resolves it; its update brings us back
    if working.status is OrderStatus.FILLED:
        failpoint("og.oto.after_fill")  # the fill in the log, RELEASING not written
        return await emu.save(record, Phase.RELEASING)
    if working.terminal:
        why = f"the working leg is {working.status.value}" + (f": {working.reason}" if working.reason else "")
        await _expire(emu, pending, why)
        return await emu.save(record, Phase.DONE)
    return await emu.save(record, Phase.WAITING) if record.phase is Phase.PENDING else None


async def _release(emu: Emulator, record: ListRecord) -> ListRecord | None:
    """RELEASING: each leg to release still held is sent (once: sent means no longer held);
    then an OTOCO goes on as an OCO, an OTO is done once every leg is final."""
    cmd = record.place_request()
    for order in emu.released(cmd):
        leg = await emu.owner.wal.get(order.cid)
        if leg is not None and leg.held and not leg.terminal:
            failpoint("og.oto.before_send")  # RELEASING written, the leg still held
            await emu.send_held(record, msgspec.structs.replace(order, ts=now_ms()))
    if cmd.kind is ListKind.OTOCO:
        return await emu.save(record, Phase.WORKING)
    legs = await emu.owner.lists.legs(record)
    return await emu.save(record, Phase.DONE) if all(x is None or x.terminal for x in legs) else None


async def _expire(emu: Emulator, pending: Sequence[OrderRecord | None], reason: str) -> None:
    """The held pending legs EXPIRED: they never start."""
    for leg in pending:
        if leg is not None and leg.held:
            await emu.settle_held(leg.cid, OrderStatus.EXPIRED, reason)
