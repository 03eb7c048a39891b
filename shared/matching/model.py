"""The matching engine's vocabulary: order types, statuses, requests, orders, trades, events.

Immutable msgspec Structs, so an event keeps the state it saw and tests can compare
snapshots. Protocol-neutral: the Binance and Bybit layers map these to their own words.
"""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal
from enum import StrEnum
from typing import NamedTuple

import msgspec

from shared.messages import ListKind, OrderStatus, OrderType, Side, TimeInForce
from shared.money import ZERO
from shared.order_lifecycle import OPEN_STATUSES

FEE_QUANTUM = Decimal("0.00000001")
DEFAULT_FEE = Decimal("0.001")
MAX_BOOK_LEVELS = 5000


STOP_TYPES = frozenset(
    {OrderType.STOP_LOSS, OrderType.STOP_LOSS_LIMIT, OrderType.TAKE_PROFIT, OrderType.TAKE_PROFIT_LIMIT}
)
LIMIT_PRICED = frozenset(
    {OrderType.LIMIT, OrderType.LIMIT_MAKER, OrderType.STOP_LOSS_LIMIT, OrderType.TAKE_PROFIT_LIMIT}
)
NEEDS_TIF = frozenset({OrderType.LIMIT, OrderType.STOP_LOSS_LIMIT, OrderType.TAKE_PROFIT_LIMIT})


class ExecType(StrEnum):
    NEW = "NEW"
    TRADE = "TRADE"
    CANCELED = "CANCELED"
    EXPIRED = "EXPIRED"


# As shared/messages.py's BUY, MARKET, FILLED...: the engine's own members as module globals
# (on Python 3.11 `ExecType.NEW` is looked up through the enum metaclass's __getattr__ hook).
EXEC_NEW, EXEC_TRADE = ExecType.NEW, ExecType.TRADE
EXEC_CANCELED, EXEC_EXPIRED = ExecType.CANCELED, ExecType.EXPIRED


class Reject(StrEnum):
    """Why a request was refused; each protocol maps these to its own codes."""

    UNKNOWN_SYMBOL = "UNKNOWN_SYMBOL"
    MARKET_CLOSED = "MARKET_CLOSED"  # no price yet
    MISSING_PARAM = "MISSING_PARAM"  # EngineError.param names it
    BAD_PARAM = "BAD_PARAM"
    PRICE_FILTER = "PRICE_FILTER"
    LOT_SIZE = "LOT_SIZE"
    NOTIONAL = "NOTIONAL"
    PERCENT_PRICE = "PERCENT_PRICE"
    MAX_NUM_ORDERS = "MAX_NUM_ORDERS"
    DUPLICATE_ORDER = "DUPLICATE_ORDER"
    WOULD_MATCH = "WOULD_MATCH"  # LIMIT_MAKER that would take
    WOULD_TRIGGER = "WOULD_TRIGGER"  # stop order whose stop price is already reached
    INSUFFICIENT_BALANCE = "INSUFFICIENT_BALANCE"
    NO_LIQUIDITY = "NO_LIQUIDITY"
    UNKNOWN_ORDER = "UNKNOWN_ORDER"  # no such order for this account and symbol
    NOT_OPEN = "NOT_OPEN"  # the order exists but is already filled/canceled/expired
    # order lists (engine_lists.py), as Binance refuses an OCO
    OCO_TYPES = "OCO_TYPES"  # a leg type an OCO does not take, or two stop legs
    OCO_NOT_CONTINGENT = "OCO_NOT_CONTINGENT"  # no stop leg: both legs are limits
    OCO_LEG_PLACE = "OCO_LEG_PLACE"  # a leg on the wrong side (param: "limit", "stop", "take_profit")
    OCO_BAD_PRICES = "OCO_BAD_PRICES"  # the legs' prices do not bracket the last price
    UNKNOWN_LIST = "UNKNOWN_LIST"  # no such order list for this account (and symbol)


class EngineError(Exception):
    """A refused request; nothing changed. `param` names the offending field when there is one."""

    def __init__(self, reason: Reject, detail: str = "", *, param: str | None = None) -> None:
        super().__init__(f"{reason.value}: {detail}" if detail else reason.value)
        self.reason, self.detail, self.param = reason, detail, param


class CorruptState(AssertionError):
    """An invariant broke (a negative balance, an illegal status move): the venue's state can no
    longer be trusted, so the process stops at once instead of trading on."""


# gc=False: scalar fields only (or Structs of them), never in a cycle (shared/messages.py OrderState)
class OrderRequest(msgspec.Struct, frozen=True, kw_only=True, gc=False):
    """A new order in neutral terms. MARKET takes quantity or quote_quantity (spend/receive quote)."""

    symbol: str
    side: Side
    type: OrderType
    quantity: Decimal | None = None
    quote_quantity: Decimal | None = None
    price: Decimal | None = None
    stop_price: Decimal | None = None
    time_in_force: TimeInForce | None = None
    client_order_id: str | None = None


class Order(msgspec.Struct, frozen=True, kw_only=True, gc=False):
    """An immutable snapshot: every change makes a new Order, so events keep the state they saw."""

    order_id: int
    account: str
    symbol: str
    side: Side
    type: OrderType
    time_in_force: TimeInForce
    client_order_id: str
    quantity: Decimal  # for a quote-quantity market order: the quantity its book walk gave
    price: Decimal = ZERO  # ZERO for market types
    stop_price: Decimal = ZERO
    quote_quantity: Decimal = ZERO
    status: OrderStatus = OrderStatus.NEW
    executed_qty: Decimal = ZERO
    cum_quote: Decimal = ZERO
    time: int
    update_time: int
    working_time: int | None = None  # None: a stop order not triggered yet
    on_book: bool = False  # resting in the book (Binance isWorking)
    reserved: Decimal = ZERO  # locked for this order: quote for a buy, base for a sell
    cancel_client_order_id: str | None = None
    expire_reason: str | None = None
    list_id: int = -1  # the order list it is a leg of (Binance orderListId), -1 for none
    pending: bool = False  # a leg of an OTO/OTOCO waiting for its working leg (Binance PENDING_NEW)

    @property
    def cum_filled_qty(self) -> Decimal:
        """executed_qty by the order model's name: an Order is a HasProgress
        (shared/order_lifecycle.py), so moves_forward reads it as it is."""
        return self.executed_qty

    @property
    def remaining(self) -> Decimal:
        return self.quantity - self.executed_qty

    @property
    def is_open(self) -> bool:
        return self.status in OPEN_STATUSES

    @property
    def triggered(self) -> bool:
        return self.working_time is not None


class Trade(msgspec.Struct, frozen=True, kw_only=True, gc=False):
    trade_id: int  # per symbol, shared with the public tape
    order_id: int
    account: str
    symbol: str
    side: Side
    price: Decimal
    qty: Decimal
    quote_qty: Decimal
    commission: Decimal
    commission_asset: str
    maker: bool
    time: int


class OrderList(msgspec.Struct, frozen=True, kw_only=True):
    """An order list (engine_lists.py): its legs by order id, in the order they were given.
    `done` is Binance's ALL_DONE: the contingency has played out (an OCO leg traded or triggered,
    every leg closed, or the list was cancelled); until then it is EXECUTING."""

    list_id: int
    account: str
    symbol: str
    kind: ListKind
    list_client_order_id: str
    order_ids: tuple[int, ...]
    leg_cids: tuple[str, ...] = ()  # the legs' client order ids, in the same order
    done: bool = False
    time: int
    update_time: int


class Funds(msgspec.Struct, frozen=True, gc=False):
    """What an account holds of one asset: free, and locked by its open orders."""

    free: Decimal
    locked: Decimal


class Quote(msgspec.Struct, frozen=True, kw_only=True, gc=False):
    price: Decimal  # last trade price
    bid: Decimal
    ask: Decimal
    bid_qty: Decimal
    ask_qty: Decimal
    ref_price: Decimal  # average price the percent-price and market-notional filters use


class OrderEvent(msgspec.Struct, frozen=True, kw_only=True, gc=False):
    account: str
    exec_type: ExecType
    order: Order  # state after this event
    trade: Trade | None = None
    time: int


class BalanceEvent(msgspec.Struct, frozen=True, kw_only=True):
    """The balances of the assets an operation touched, after it (Binance outboundAccountPosition)."""

    account: str
    time: int
    balances: dict[str, Funds]
    deltas: dict[str, Decimal] | None = None  # set only for deposits/withdrawals from outside


class EngineState(msgspec.Struct, kw_only=True):
    """What a restarted venue needs of its engine (store.py): accounts, orders, trades, counters."""

    accounts: dict[str, dict[str, Funds]]
    orders: list[Order]  # open ones and the latest closed ones
    trades: list[Trade]  # the latest, oldest first
    next_order_id: int
    next_trade_id: dict[str, int]
    lists: list[OrderList] = []  # those any kept order belongs to
    next_list_id: int = 1


class ListEvent(msgspec.Struct, frozen=True, kw_only=True):
    """An order list was placed or is done (Binance listStatus); after its legs' order events."""

    account: str
    order_list: OrderList
    time: int


Event = OrderEvent | BalanceEvent | ListEvent
Listener = Callable[[Event], None]


class JournalEntry(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True):
    """One line of the venue's journal: accepted, trade, triggered, canceled, expired or rejected."""

    seq: int
    time: int
    kind: str
    account: str
    symbol: str
    client_order_id: str | None = None
    order_id: int | None = None
    status: str | None = None
    order: Order | None = None
    trade: Trade | None = None
    reason: str | None = None
    order_list: OrderList | None = None


class Placed(NamedTuple):
    order: Order  # state after the immediate part of the execution
    trades: list[Trade]  # fills made while placing (FULL responses list them)


class PlacedList(NamedTuple):
    order_list: OrderList
    orders: list[Order]  # the legs' states after placing, in the list's order
    trades: list[Trade]


class Depth(NamedTuple):
    bids: list[tuple[Decimal, Decimal]]
    asks: list[tuple[Decimal, Decimal]]
