"""What every venue adapter produces and raises.

Adapters only turn venue payloads into reports (shared/order_report.py's OrderReport, the
balances and trades below) and venue failures into the errors below, sorted by what the
caller can do about them: retry, reject, resolve by query, or stop. Everything else — the
write-ahead record and its forward-only updates (shared/order_record.py), reconciliation —
is venue-neutral code.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable
from decimal import Decimal
from typing import Any, Protocol, TypeVar

import msgspec

from shared.filters import SymbolFilters
from shared.messages import MAX_AMOUNT, Balance, ListKind, PlaceOrder, PlaceOrderList, Side, check_amounts
from shared.order_report import OrderFees, OrderReport

log = logging.getLogger("automata.venue")


class VenueTrade(msgspec.Struct, frozen=True, kw_only=True):
    """One trade of the account as the venue's trade list shows it (myTrades, execution/list):
    the fill the ledger keeps one row of. cid is "" when the list does not name it (Binance)."""

    trade_id: str
    symbol: str
    venue_order_id: str
    cid: str = ""
    side: Side
    price: Decimal
    qty: Decimal
    quote: Decimal
    fee: Decimal
    fee_asset: str
    is_maker: bool | None = None
    time: int  # ms, the venue's

    def __post_init__(self) -> None:
        for name in ("trade_id", "symbol", "venue_order_id", "cid", "fee_asset"):
            if not isinstance(getattr(self, name), str):
                raise TypeError(f"{name} must be a string, got {type(getattr(self, name)).__name__}")
        check_amounts(self, ("price", "qty", "quote"), signed=("fee",))


class BalanceReport(msgspec.Struct, frozen=True, kw_only=True):
    balances: tuple[Balance, ...]
    snapshot: bool = False
    venue_ts: int = 0


class StreamGap(msgspec.Struct, frozen=True):
    """The user-data stream was (re)connected: events may have been missed, poll now."""

    reason: str


UserEvent = OrderReport | BalanceReport | StreamGap


# --- errors, by what the caller can do -----------------------------------------------------


class VenueError(Exception):
    """Base of venue failures; `code` is the venue's own error code when it gave one."""

    def __init__(self, message: str, code: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.code = code


class Rejected(VenueError):
    """The venue refused the request for good (balance, filters, symbol): tell the bot."""


class DuplicateOrder(Rejected):
    """An order with this client order id already exists at the venue: look it up."""


class OrderNotFound(VenueError):
    """The venue does not know this order: the only case that allows a resend (same cid)."""


class OutcomeUnknown(VenueError):
    """Timeout, 5xx, 504, dropped connection: the request may or may not have taken effect."""


class MalformedReply(OutcomeUnknown):
    """The venue answered, but not with what it should have (an empty `{}` body, a missing
    field, a number that does not parse). To a request that changes something it says as
    little as a timeout: the outcome is unknown and is resolved by query. To a query it is a
    failure the caller retries, like any other unknown outcome."""


# What a parser of a venue payload raises on a malformed one: a missing key, a wrong type, a
# value that is not a number (MoneyError is a ValueError) or breaks decimal arithmetic.
PAYLOAD_ERRORS = (KeyError, IndexError, TypeError, ValueError, ArithmeticError, AttributeError)

T = TypeVar("T")


def venue_fee(value: Decimal) -> Decimal:
    """A fee summed from a venue's trades: a ValueError (MalformedReply) if absurd."""
    if not (value.is_finite() and -MAX_AMOUNT < value < MAX_AMOUNT):
        raise ValueError(f"fee {str(value)[:40]} is out of range")
    return value


def venue_str(value: Any) -> str:
    """A text field of a venue payload (an asset, a symbol): a TypeError, which parse_reply
    turns into MalformedReply, if it is not text."""
    if not isinstance(value, str):
        raise TypeError(f"expected a string, got {type(value).__name__}")
    return value


def parse_reply(what: str, parse: Callable[[Any], T], payload: Any) -> T:
    """`parse(payload)`, or MalformedReply naming `what` and the fault (never the payload: a
    reply may echo account details)."""
    try:
        return parse(payload)
    except PAYLOAD_ERRORS as exc:
        raise MalformedReply(f"malformed reply to {what}: {type(exc).__name__}: {str(exc)[:120]}") from None


def parse_list(what: str, parse: Callable[[Any], T], payload: Any) -> list[T]:
    """Each item of a list reply parsed; MalformedReply if the reply is not a list or an item
    does not parse."""
    if not isinstance(payload, list):
        raise MalformedReply(f"malformed reply to {what}: expected a list, got {type(payload).__name__}")
    return [parse_reply(what, parse, item) for item in payload]


def stream_events(what: str, parse: Callable[[Any], list[T]], msg: Any) -> list[T | StreamGap]:
    """A user-stream message's events; a malformed one is a StreamGap (poll the venue now),
    not an exception: that would drop the socket, and every message with it."""
    try:
        return list(parse(msg))
    except PAYLOAD_ERRORS as exc:
        log.warning("malformed %s (%s: %.120s): polling instead", what, type(exc).__name__, exc)
        return [StreamGap(f"malformed {what}")]


class RateLimited(VenueError):
    """Slow down: retry after `retry_after` seconds (HTTP 429, -1003, Bybit 10006)."""

    def __init__(self, message: str, retry_after: float, code: int | None = None) -> None:
        super().__init__(message, code)
        self.retry_after = retry_after


class Banned(RateLimited):
    """HTTP 418: the venue banned this IP; stop trading there until retry_after has passed."""


class ClockSkew(VenueError):
    """Timestamp outside the venue's recvWindow (-1021, Bybit 10002): resync and retry."""


class AuthError(VenueError):
    """Bad key or signature: nothing will work until the operator fixes the keys."""


class VenueAdapter(Protocol):
    """One venue account."""

    name: str
    recv_window_ms: int  # a signed request older than this is refused by the venue
    # Told of every ban the venue answers, whichever request met it (a place, a query, the
    # poller's listing): the order gateway halts at once (router.py), so a new order is refused
    # rather than left waiting behind the limiter's pause and sent minutes late.
    on_banned: Callable[[Banned], None]

    async def start(self) -> None: ...

    async def close(self) -> None: ...

    async def load_filters(self) -> dict[str, SymbolFilters]: ...

    async def sync_time(self) -> int:
        """Measure the venue clock; later signed requests use the offset. Returns offset ms."""
        ...

    async def last_price(self, symbol: str) -> Decimal: ...

    async def place(
        self, cmd: PlaceOrder, qty: Decimal | None, price: Decimal | None, stop: Decimal | None
    ) -> OrderReport: ...

    async def cancel(self, symbol: str, cid: str) -> OrderReport: ...

    # Order lists. `lists` names the kinds the venue takes natively (Binance: OCO, OTO, OTOCO;
    # Bybit: none): the order gateway emulates the others with single orders. Every report of a
    # leg carries the list's cid (OrderState.list_cid).
    lists: frozenset[ListKind]

    async def place_list(
        self, cmd: PlaceOrderList, legs: list[tuple[Decimal | None, Decimal | None, Decimal | None]]
    ) -> list[OrderReport]:
        """Send the list; `legs` are each leg's (qty, price, stop) rounded as for place(). One
        report per leg, in the command's order. Errors as for place()."""
        ...

    async def cancel_list(self, symbol: str, list_cid: str) -> list[OrderReport]:
        """Cancel the list's open legs; the reports of every leg."""
        ...

    async def query_list(self, symbol: str, list_cid: str) -> list[OrderReport]:
        """Every leg of the list by its client id; OrderNotFound when the venue has no such list."""
        ...

    async def query(self, symbol: str, cid: str) -> OrderReport:
        """The order by client order id; raises OrderNotFound when the venue has none."""
        ...

    async def open_orders(self, symbol: str | None = None) -> list[OrderReport]: ...

    async def recent_orders(self, symbol: str) -> list[OrderReport]:
        """The symbol's latest orders, closed ones included (for adoption), as far back as the
        venue answers without a time bound. Never bounded by the local clock: the venue's
        clock (the paper venue's market time) may be anywhere."""
        ...

    async def balances(self) -> list[Balance]: ...

    async def order_fees(self, symbol: str, venue_order_id: str) -> OrderFees:
        """The order's trades' quantities and fees (when reports missed some fills' fees)."""
        ...

    async def trades(self, symbol: str) -> list[VenueTrade]:
        """The account's trades on symbol, oldest first, as far back as the venue keeps them
        (`automata ledger sync`)."""
        ...

    def user_events(self) -> AsyncIterator[UserEvent]:
        """Order and balance events, forever; yields StreamGap after every (re)connect."""
        ...
