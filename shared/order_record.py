"""The order gateway's write-ahead record of one order, and the pure rules that move it.

A record is created (PENDING_SUBMIT) before anything is sent and only ever moves forward
(shared/order_lifecycle.py): a venue's report is applied when it raises the cumulative filled
quantity or reaches a later status, so events from the user stream, from polling and from
reconciliation can arrive in any order and any number of times without harm (ARCHITECTURE.md,
exactly-once rule 6). Pure, and outside the gateway service, so that whatever replays a
venue's reports (reconciliation from the CLI, the backtester) applies the same rules.
"""

from __future__ import annotations

from decimal import Decimal
from typing import NamedTuple

import msgspec

from shared.messages import (
    MAX_AMOUNT,
    ORDER_AMOUNTS,
    PENDING_SUBMIT,
    TERMINAL_STATUSES,
    OrderState,
    OrderStatus,
    OrderUpdate,
    PlaceOrder,
    check_amounts,
)
from shared.money import ZERO
from shared.order_lifecycle import moves_forward, status_after
from shared.order_report import OrderFees, OrderReport

SIGNED = ("fee",)  # a maker rebate is a negative fee, as OrderUpdate allows


class CorruptRecord(ValueError):
    """An og:order hash that does not read as a record (a bad status, a number that does not
    parse): reported and skipped by whoever meets it, never a reason to stop the gateway."""


class OrderRecord(OrderState, frozen=True, kw_only=True, gc=False):
    """og:order:{cid} — stored as a Redis hash of strings (readable with HGETALL)."""

    bot: str
    venue: str
    request: str = ""  # the PlaceOrder as JSON, exactly as received ("" when adopted)
    adopted: bool = False
    # a leg of an emulated order list the gateway holds back (emulated_oco.py: an OCO's stop;
    # emulated_oto.py: an OTO / OTOCO's pending legs): not at the venue, so reconciliation and
    # polling leave it to the list's own path
    held: bool = False
    send_attempts: int = 0
    sent_ts: int = 0  # local ms of the last send: the venue refuses it after recv_window
    created_ts: int = 0
    updated_ts: int = 0

    def to_hash(self) -> dict[str, str]:
        raw = msgspec.to_builtins(self)
        if not raw["list_cid"]:  # a single order's hash keeps the fields it had before lists
            del raw["list_cid"]
        if not raw["held"]:
            del raw["held"]
        return {
            k: ("" if v is None else ("1" if v is True else "0" if v is False else str(v)))
            for k, v in raw.items()
        }

    @classmethod
    def from_hash(cls, data: dict[bytes, bytes]) -> OrderRecord:
        """The record, or CorruptRecord saying why the hash is not one."""
        try:
            doc = {k.decode(): v.decode() for k, v in data.items()}
            for key in ("price", "stop_price", "orig_quote_qty", "side", "order_type"):
                if doc.get(key) == "":
                    doc[key] = None
            doc["adopted"] = doc.get("adopted") == "1"
            doc["held"] = doc.get("held") == "1"
            record = msgspec.convert(doc, cls, strict=False)
            # NaN, Infinity, 1e999999999: arithmetic would fail later
            check_amounts(record, ORDER_AMOUNTS, SIGNED)
            return record
        except (UnicodeDecodeError, ValueError) as exc:  # msgspec.ValidationError is a ValueError
            cid = data.get(b"cid", b"?").decode(errors="replace")
            raise CorruptRecord(f"og:order:{cid} is not a valid record: {exc}") from None

    def place_request(self) -> PlaceOrder:
        return msgspec.json.decode(self.request, type=PlaceOrder)


def new_record(cmd: PlaceOrder, now_ms: int, *, keep_request: bool = True) -> OrderRecord:
    """The record of a command before it is sent. `keep_request=False` leaves the command's
    JSON out: the backtester's records are never resent or shown, and encoding it is waste."""
    return OrderRecord(
        cid=cmd.cid,
        bot=cmd.bot,
        venue=cmd.venue,
        symbol=cmd.symbol,
        status=PENDING_SUBMIT,
        side=cmd.side,
        order_type=cmd.order_type,
        request=msgspec.json.encode(cmd).decode() if keep_request else "",
        price=cmd.price,
        stop_price=cmd.stop_price,
        orig_qty=cmd.quantity or ZERO,
        orig_quote_qty=cmd.quote_quantity,
        created_ts=now_ms,
        updated_ts=now_ms,
    )


class Progress(NamedTuple):
    """How far a record has moved: all moves_forward needs, read with one small HMGET."""

    status: OrderStatus
    cum_filled_qty: Decimal

    @property
    def terminal(self) -> bool:
        return self.status in TERMINAL_STATUSES


def apply_report(
    record: OrderRecord, report: OrderReport, fee: Decimal, fee_asset: str, now_ms: int
) -> OrderRecord:
    """The record after the report (call only when moves_forward); fee is the new cumulative fee.
    Its list: the record's (written ahead with the list), else the report's (an adopted leg)."""
    # the larger of each, the report's when equal (as max() picks), without max()'s calls
    filled, was_filled = report.cum_filled_qty, record.cum_filled_qty
    quote, was_quote = report.cum_quote_qty, record.cum_quote_qty
    return msgspec.structs.replace(
        record,
        status=status_after(record.status, report.status),
        list_cid=record.list_cid or report.list_cid,
        venue_order_id=report.venue_order_id or record.venue_order_id,
        side=report.side or record.side,
        order_type=report.order_type or record.order_type,
        price=report.price if report.price is not None else record.price,
        stop_price=report.stop_price if report.stop_price is not None else record.stop_price,
        orig_qty=report.orig_qty or record.orig_qty,
        orig_quote_qty=report.orig_quote_qty or record.orig_quote_qty,
        cum_filled_qty=was_filled if was_filled > filled else filled,
        cum_quote_qty=was_quote if was_quote > quote else quote,
        fee=fee,
        fee_asset=fee_asset or record.fee_asset,
        reason=report.reason or record.reason,
        updated_ts=now_ms,
        venue_ts=report.venue_ts or record.venue_ts,
    )


def without_bad_amounts(record: OrderRecord) -> OrderRecord:
    """The record with each amount check_amounts refuses cleared (None, or 0 where required).

    Only for a record being rejected because of its amounts (one that got past PlaceOrder's
    own check): its OrderUpdate, which refuses such amounts, must still be buildable, and its
    WAL record readable, so the bot hears REJECTED instead of the command failing N times."""
    fixes = {}
    for name in ORDER_AMOUNTS + SIGNED:
        value = getattr(record, name)
        low = -MAX_AMOUNT if name in SIGNED else 0
        if value is not None and not (value.is_finite() and low <= value < MAX_AMOUNT):
            fixes[name] = ZERO if name in ("orig_qty", "cum_filled_qty", "cum_quote_qty", "fee") else None
    return msgspec.structs.replace(record, **fixes) if fixes else record


def fee_after(record: OrderRecord, report: OrderReport) -> Decimal | None:
    """The new cumulative fee if it can be known without asking the venue, else None."""
    if report.fee is not None:
        return report.fee
    delta = report.cum_filled_qty - record.cum_filled_qty
    if delta <= 0:
        return record.fee
    if report.last_fill_qty == delta:
        return record.fee + report.last_fee
    return None  # fills were missed in between: their fees must come from the venue's trades


def to_update(
    record: OrderRecord,
    before: OrderRecord | None,
    *,
    reconciled: bool,
    now_ms: int,
    report: OrderReport | None = None,
) -> OrderUpdate:
    """The order update a bot receives; last fill = what changed since `before`.

    It carries the venue's trade id (from `report`, the venue's word that moved the record)
    only when that growth is exactly the one trade the report names: after missed or
    coalesced fills the growth is several trades, and no single id may be claimed for it.

    Every update of an adopted record says so (`adopted`): the bot may not hold the order
    (its state lost it with Redis), and a crash between the adoption and its first update
    must not make a later update look like one of the bot's own orders."""
    prev_qty = before.cum_filled_qty if before else ZERO
    prev_quote = before.cum_quote_qty if before else ZERO
    last_qty = record.cum_filled_qty - prev_qty
    last_price = (record.cum_quote_qty - prev_quote) / last_qty if last_qty > 0 else ZERO
    one_trade = report is not None and 0 < last_qty == report.last_fill_qty
    r = record
    # Every OrderState field by name, not a dict of them: a plain keyword call builds
    # no dict, and an update is built for every report (tests/test_order_records.py checks
    # that none is left out).
    return OrderUpdate(
        cid=r.cid,
        symbol=r.symbol,
        status=r.status,
        side=r.side,
        order_type=r.order_type,
        venue_order_id=r.venue_order_id,
        price=r.price,
        stop_price=r.stop_price,
        orig_qty=r.orig_qty,
        orig_quote_qty=r.orig_quote_qty,
        cum_filled_qty=r.cum_filled_qty,
        cum_quote_qty=r.cum_quote_qty,
        fee=r.fee,
        fee_asset=r.fee_asset,
        reason=r.reason,
        venue_ts=r.venue_ts,
        list_cid=r.list_cid,
        bot=record.bot,
        venue=record.venue,
        last_fill_price=last_price,
        last_fill_qty=last_qty,
        ts=now_ms,
        reconciled=reconciled,
        event_id=f"{r.cid}:{r.status!s}:{r.cum_filled_qty!s}",  # !s: str() (a StrEnum's is its value), not format() or .value
        adopted=record.adopted,
        trade_id=report.trade_id if one_trade and report is not None else "",  # "" when it gave none
        maker=report.maker if one_trade and report is not None else None,
    )


class FeesNeeded(Exception):
    """Raised by a transaction body that needs the order's fees from the venue: fetched only
    once the WATCH is given up, never across it (network I/O would hold the watch)."""

    def __init__(self, venue_order_id: str) -> None:
        super().__init__(venue_order_id)
        self.venue_order_id = venue_order_id


def advance_record(
    record: OrderRecord, report: OrderReport, fees: OrderFees | None, now_ms: int, *, last_try: bool = True
) -> OrderRecord | None:
    """The record after the report (None when it does not move the record forward), pure.

    `fees` are the order's trades, asked for when the report leaves the fee unknown (fills
    were missed in between); without them FeesNeeded is raised. The fee taken is that of the
    trades the report's filled quantity covers, never a later trade's, whose own report adds
    it. A list that does not reach the report's quantity yet raises FeesNeeded again, unless
    this is the last try: its whole total is then the best the venue says."""
    if not moves_forward(record, report):
        return None
    fee, fee_asset = fee_after(record, report), report.fee_asset
    if fee is None:
        wanted = report.venue_order_id or record.venue_order_id
        if fees is None:
            raise FeesNeeded(wanted)
        fee, fee_asset = fees.through(report.cum_filled_qty), fees.asset
        if fee is None:
            if not last_try:
                raise FeesNeeded(wanted)
            fee = fees.total
    return apply_report(record, report, fee, fee_asset, now_ms)
