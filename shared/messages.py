"""Message schemas: one msgspec Struct per message that travels on a stream.

Every Struct is tagged (`type` inside its JSON) so the tagged unions below decode any entry
of a stream to the right class. Prices and quantities are Decimal and travel as strings.
The envelope around them (type, v, data) lives in shared/codec.py.
"""

from __future__ import annotations

from decimal import Decimal, InvalidOperation
from enum import StrEnum
from typing import Any, ClassVar

import msgspec

from shared.exits import Exits
from shared.ids import ClientOrderId, OrderCid
from shared.money import ZERO


class Message(msgspec.Struct, frozen=True, tag_field="type", forbid_unknown_fields=False, omit_defaults=True):
    """Base of every stream message. VERSION is the schema version written as `v`."""

    VERSION: ClassVar[int] = 1


# Above this a price or quantity is a typo or an attack (1e999999999 overflows every context).
MAX_AMOUNT = Decimal("1e20")
_MIN_AMOUNT = -MAX_AMOUNT
_ZERO = ZERO  # the one zero most amounts are: check_amounts passes it without comparing


def check_amounts(msg: msgspec.Struct, names: tuple[str, ...], signed: tuple[str, ...] = ()) -> None:
    """Refuse NaN, infinities, negatives and absurd magnitudes in a message's amounts
    (`signed` ones, such as a fee that may be a rebate, may be negative).

    Called from __post_init__, so a bad value fails where the message is built (a strategy's
    step: the bot pauses with the reason; a venue reply: the adapter's MalformedReply) or
    decoded (the entry is dead-lettered with it), never deep in a consumer's arithmetic."""
    zero, top, bottom = _ZERO, MAX_AMOUNT, _MIN_AMOUNT  # locals: every message built passes here
    for name in names:
        value = getattr(msg, name)
        try:  # on every message decoded: one chained comparison, no is_finite() call
            if value is None or value is zero or zero <= value < top:
                continue
        except InvalidOperation:  # NaN: comparing it traps
            pass
        raise ValueError(f"{name} must be a finite number in [0, 1e20), got {str(value)[:40]}")
    for name in signed:
        value = getattr(msg, name)
        try:
            if value is None or value is zero or bottom < value < top:
                continue
        except InvalidOperation:
            pass
        raise ValueError(f"{name} must be a finite number in (-1e20, 1e20), got {str(value)[:40]}")


class Side(StrEnum):
    BUY = "BUY"
    SELL = "SELL"


class OrderType(StrEnum):
    """Binance spot's order types. STOP_LOSS / TAKE_PROFIT are stop-market orders: the Binance
    adapter and the paper venue take them; the Bybit adapter refuses them (REJECTED) for now."""

    MARKET = "MARKET"
    LIMIT = "LIMIT"
    LIMIT_MAKER = "LIMIT_MAKER"
    STOP_LOSS = "STOP_LOSS"
    STOP_LOSS_LIMIT = "STOP_LOSS_LIMIT"
    TAKE_PROFIT = "TAKE_PROFIT"
    TAKE_PROFIT_LIMIT = "TAKE_PROFIT_LIMIT"


class ListKind(StrEnum):
    """Order lists (Binance's names). OCO: two legs on one side, one above the price and one
    below; the first leg to trade (even in part) or to trigger expires the other. OTO: a working
    leg, and a pending one placed once the working leg has filled completely. OTOCO: a working
    leg, then an OCO of the two pending legs."""

    OCO = "OCO"
    OTO = "OTO"
    OTOCO = "OTOCO"


# How many legs each kind of list has, in the order PlaceOrderList.legs gives them.
LIST_LEGS = {ListKind.OCO: 2, ListKind.OTO: 2, ListKind.OTOCO: 3}


def pending_leg(kind: ListKind, index: int) -> bool:
    """Whether leg `index` of a list waits for its working leg (the first) to fill."""
    return kind is not ListKind.OCO and index > 0


def oco_start(kind: ListKind, legs: int) -> int:
    """Where a list's OCO pair starts among its `legs` legs: an OCO's two (0), an OTOCO's
    pending pair (1); an OTO has none (`legs`: the pair is empty)."""
    return 0 if kind is ListKind.OCO else 1 if kind is ListKind.OTOCO else legs


class TimeInForce(StrEnum):
    GTC = "GTC"
    IOC = "IOC"
    FOK = "FOK"


class OrderStatus(StrEnum):
    PENDING_SUBMIT = "PENDING_SUBMIT"
    NEW = "NEW"
    PARTIALLY_FILLED = "PARTIALLY_FILLED"
    FILLED = "FILLED"
    CANCELED = "CANCELED"
    REJECTED = "REJECTED"
    EXPIRED = "EXPIRED"
    UNKNOWN = "UNKNOWN"


TERMINAL_STATUSES = frozenset(
    {OrderStatus.FILLED, OrderStatus.CANCELED, OrderStatus.REJECTED, OrderStatus.EXPIRED}
)

# The members compared on every order, for hot paths to import as module globals: an enum
# member looked up on its class costs about four times a global's read.
BUY, SELL = Side.BUY, Side.SELL
REJECTED = OrderStatus.REJECTED
MARKET, LIMIT, LIMIT_MAKER = OrderType.MARKET, OrderType.LIMIT, OrderType.LIMIT_MAKER
GTC, FOK = TimeInForce.GTC, TimeInForce.FOK
PENDING_SUBMIT, FILLED, PARTIALLY_FILLED = (
    OrderStatus.PENDING_SUBMIT,
    OrderStatus.FILLED,
    OrderStatus.PARTIALLY_FILLED,
)
CANCELED, EXPIRED = OrderStatus.CANCELED, OrderStatus.EXPIRED


class ControlAction(StrEnum):
    PAUSE = "pause"
    RESUME = "resume"
    STOP = "stop"
    CLOSE = "close"
    CANCEL = "cancel"  # one open order of the bot, named by `cid` (the bot sends the cancel itself)


class Level(StrEnum):
    INFO = "info"
    WARNING = "warning"
    ERROR = "error"


# --- market data -------------------------------------------------------------------------


class Candle(Message, frozen=True, tag="candle"):
    """One closed candle (the market gateway only publishes closed ones)."""

    venue: str
    symbol: str
    interval: str
    open_time: int  # ms, UTC
    close_time: int  # ms, UTC (open_time + interval - 1)
    open: Decimal
    high: Decimal
    low: Decimal
    close: Decimal
    volume: Decimal
    quote_volume: Decimal = Decimal(0)
    trades: int = 0
    closed: bool = True

    def __post_init__(self) -> None:
        check_amounts(self, ("open", "high", "low", "close", "volume", "quote_volume"))


class BookTicker(Message, frozen=True, tag="book"):
    venue: str
    symbol: str
    bid: Decimal
    bid_qty: Decimal
    ask: Decimal
    ask_qty: Decimal
    ts: int  # ms: venue event time when known, else receive time
    update_id: int = 0

    def __post_init__(self) -> None:
        check_amounts(self, ("bid", "bid_qty", "ask", "ask_qty"))


# --- order commands ----------------------------------------------------------------------


class PlaceOrder(Message, frozen=True, tag="place", gc=False):
    """Place one order. Market buys may give quote_quantity (spend this much quote) instead of quantity.
    `cid` must be one of ours (shared/ids.py): any other is refused when the command is decoded."""

    cid: ClientOrderId
    bot: str
    venue: str
    symbol: str
    side: Side
    order_type: OrderType
    quantity: Decimal | None = None
    quote_quantity: Decimal | None = None
    price: Decimal | None = None
    stop_price: Decimal | None = None
    time_in_force: TimeInForce | None = None
    ts: int = 0

    def __post_init__(self) -> None:
        check_amounts(self, ("quantity", "quote_quantity", "price", "stop_price"))


class PlaceOrderList(Message, frozen=True, tag="place_list"):
    """Place an order list (ListKind) as one unit, with the same guarantees as one order: the
    gateway writes the list and every leg ahead, sends once, and finds out by `list_cid` what
    happened to a request whose reply was lost. Every id comes from the bot's sequence.

    Legs, in order — OCO: [above, below] (the leg with the higher price first: for a sell the
    take profit above and the stop below, for a buy the stop above and the limit below);
    OTO: [working, pending]; OTOCO: [working, pending above, pending below]. Each leg is a whole
    PlaceOrder of the same bot, venue and symbol, with its own cid. Where the venue lacks the kind
    the order gateway emulates it (an OCO's stop and an OTO's pending legs held by the gateway,
    the book watched, the other leg cancelled by the gateway)."""

    list_cid: ClientOrderId
    bot: str
    venue: str
    symbol: str
    kind: ListKind
    legs: tuple[PlaceOrder, ...]
    ts: int = 0

    def __post_init__(self) -> None:
        want = LIST_LEGS[self.kind]
        if len(self.legs) != want:
            raise ValueError(f"an {self.kind} list has {want} legs, got {len(self.legs)}")
        cids = {self.list_cid}
        for leg in self.legs:
            if (leg.bot, leg.venue, leg.symbol) != (self.bot, self.venue, self.symbol):
                raise ValueError(f"leg {leg.cid}: its bot, venue and symbol must be the list's")
            if leg.cid in cids:
                raise ValueError(f"leg {leg.cid}: each leg needs its own client order id")
            cids.add(leg.cid)
        oco = self.oco_legs
        if oco and (oco[0].side != oco[1].side or oco[0].quantity != oco[1].quantity):
            raise ValueError("the two legs of an OCO must have the same side and quantity")

    @property
    def oco_legs(self) -> tuple[PlaceOrder, ...]:
        """The legs that form an OCO: an OCO's two, an OTOCO's pending pair; none for an OTO."""
        return self.legs[oco_start(self.kind, len(self.legs)) :]


class CancelOrderList(Message, frozen=True, tag="cancel_list"):
    """Cancel every open leg of one of the bot's lists."""

    list_cid: ClientOrderId
    bot: str
    venue: str
    symbol: str
    ts: int = 0


class CancelOrder(Message, frozen=True, tag="cancel", gc=False):
    cid: ClientOrderId  # a bot cancels only its own orders, so only one of our cids
    bot: str
    venue: str
    symbol: str
    ts: int = 0


class CancelAll(Message, frozen=True, tag="cancel_all"):
    """Cancel every open order of a bot (on one symbol, or all its symbols when symbol is None)."""

    bot: str
    venue: str
    symbol: str | None = None
    ts: int = 0


class SyncBot(Message, frozen=True, tag="sync"):
    """A strategy runner (re)starting asks the order gateway where its bot stands at the venue.

    Redis may have lost its last second (a power cut) while the venue kept every order sent in
    it, so the bot's sequence and orders may be behind the venue's. The gateway looks up every
    order of the bot's prefix at the venue (open ones, recent ones on `symbol`, and by client
    order id from `seq` + 1 on), adopts the ones its log lacks (their updates reach the bot with
    `adopted`), and answers with BotSynced on `orders:events:{bot}`, after those updates. The
    bot places nothing new until the answer carrying its `token` arrives."""

    bot: str
    venue: str
    symbol: str
    token: str  # unique per request; the answer carries it back
    seq: int = 0  # the last sequence the bot's state has used
    ts: int = 0


# --- order / account events --------------------------------------------------------------


# gc=False here and on the order path's other Structs (PlaceOrder, CancelOrder, OrderUpdate,
# OrderReport, OrderRecord, BotOrder, the engine's Order, Trade, OrderEvent...): every field is
# an immutable scalar or such a Struct, so no instance can be in a reference cycle; untracked,
# the many built per order (some 1,500 a March backtest) cost the collector nothing.
class OrderState(msgspec.Struct, frozen=True, kw_only=True, gc=False):
    """What is known of one order at one moment: the fields its three views share — the order
    gateway's write-ahead record (shared/order_record.py), the OrderUpdate a bot hears and a
    venue adapter's OrderReport (shared/order_report.py). Quantities, quote and fee are
    cumulative; shared/order_lifecycle.py moves an order from one state to the next."""

    cid: OrderCid
    symbol: str
    status: OrderStatus
    side: Side | None = None
    order_type: OrderType | None = None
    venue_order_id: str = ""
    price: Decimal | None = None
    stop_price: Decimal | None = None
    orig_qty: Decimal = _ZERO
    orig_quote_qty: Decimal | None = None  # a market order sized by quote: the amount asked for
    cum_filled_qty: Decimal = _ZERO
    cum_quote_qty: Decimal = _ZERO
    fee: Decimal = _ZERO  # cumulative fee of this order; a maker rebate is negative
    fee_asset: str = ""
    reason: str = ""  # rejection / cancel reason, human readable
    venue_ts: int = 0  # ms, time the venue reported
    list_cid: str = ""  # the order list (PlaceOrderList) this order is a leg of, "" for none

    @property
    def terminal(self) -> bool:
        return self.status in TERMINAL_STATUSES


# The amounts of an order's state (fee apart: it is signed), and of a state with a last fill.
ORDER_AMOUNTS = ("price", "stop_price", "orig_qty", "orig_quote_qty", "cum_filled_qty", "cum_quote_qty")
UPDATE_AMOUNTS = (*ORDER_AMOUNTS, "last_fill_price", "last_fill_qty")


class OrderUpdate(Message, OrderState, frozen=True, kw_only=True, tag="order_update", gc=False):
    """State of one order, as the order gateway tells its bot. Quantities and fee are cumulative,
    so a replay or a duplicate is harmless: a consumer applies an update only if it moves the
    order forward (shared/order_lifecycle.py)."""

    bot: str
    venue: str
    last_fill_price: Decimal = _ZERO
    last_fill_qty: Decimal = _ZERO
    ts: int = 0  # ms, local time the gateway produced this update
    reconciled: bool = False  # True when it came from reconciliation or polling, not the live stream
    event_id: str = ""
    adopted: bool = False  # the gateway found this order at the venue without a record of its own
    # the venue's id of the one trade that made last_fill_qty / last_fill_price ("" when the
    # growth is not one known trade: a coalesced, polled or reconciled update)
    trade_id: str = ""
    maker: bool | None = None  # whether the order was the maker in that trade; None: not told

    def __post_init__(self) -> None:
        check_amounts(self, UPDATE_AMOUNTS, signed=("fee",))


class BotSynced(Message, frozen=True, tag="synced"):
    """The order gateway's answer to SyncBot, on `orders:events:{bot}` after the updates of every
    order it adopted for the bot: the bot may place orders again, with sequences above max_seq."""

    bot: str
    venue: str
    token: str
    max_seq: int = 0  # the highest sequence of the bot's prefix the venue or the log has seen
    adopted: tuple[OrderCid, ...] = ()  # cids adopted for the bot while syncing
    ts: int = 0


class Balance(msgspec.Struct, frozen=True):
    asset: str
    free: Decimal
    locked: Decimal

    def __post_init__(self) -> None:
        if not isinstance(self.asset, str):  # built from a venue reply: a constructor checks no types
            raise TypeError(f"asset must be a string, got {type(self.asset).__name__}")
        check_amounts(self, ("free", "locked"))

    @property
    def total(self) -> Decimal:
        return self.free + self.locked


class BalanceUpdate(Message, frozen=True, tag="balance"):
    venue: str
    balances: tuple[Balance, ...]
    snapshot: bool = False  # True: the full account; False: only the assets that changed
    venue_ts: int = 0
    ts: int = 0


# --- bots and people ---------------------------------------------------------------------


class BotControl(Message, frozen=True, tag="control"):
    """A person's (or a channel's) order to a bot, applied by its runner exactly once. `cid` only
    for CANCEL: an order of this bot (its prefix), which the bot cancels through its own commands."""

    bot: str
    action: ControlAction
    source: str = "cli"
    reason: str = ""
    cid: str = ""
    ts: int = 0


class TradeRequest(Message, frozen=True, tag="trade"):
    """A person's smart trade (`automata trade`, Telegram, the dashboard) for a bot that takes
    them (the `manual` bot), written to the bot's control stream and handled exactly once.

    BUY: buy `quote` (or `quantity`) at market, or at limit `price`, then close the position by
    `exits`. SELL (no amounts): close the trade, its exits cancelled and what it holds sold at
    market. `id` is unique per request (a resend of the same request is not a second trade)."""

    id: str
    bot: str
    symbol: str
    side: Side = Side.BUY
    quote: Decimal | None = None
    quantity: Decimal | None = None
    price: Decimal | None = None
    exits: Exits = Exits()
    source: str = "cli"
    ts: int = 0

    def __post_init__(self) -> None:
        check_amounts(self, ("quote", "quantity", "price"))
        if self.side == Side.SELL:
            if self.quote is not None or self.quantity is not None or self.price is not None:
                raise ValueError("a sell closes the trade at market: no quote, quantity or price")
        elif (self.quote is None) == (self.quantity is None):
            raise ValueError("a trade takes exactly one of quote and quantity")


class TimerFired(Message, frozen=True, tag="timer"):
    """A timer a strategy set (SetTimer) is due; the runner writes it to the bot's control
    stream so it is handled exactly once like any other entry. `due` is in ms."""

    name: str
    due: int


class Notification(Message, frozen=True, tag="notification"):
    """Something a person should hear about. `id` is stable so channels can drop duplicates."""

    id: str
    # fill, cycle_closed, exit_not_placed, error, bot_paused, bot_cancel, feed_stalled, feed_recovered,
    # bot_stalled, bot_recovered, venue_halted, venue_resumed, order_lost, reconciliation, daily_summary, info;
    # straight to the channels, never in `notify`: redis_refusing_writes, redis_unreachable, redis_recovered
    kind: str
    text: str
    level: Level = Level.INFO
    title: str = ""
    bot: str = ""
    venue: str = ""
    data: dict[str, Any] = {}
    ts: int = 0


class Decision(Message, frozen=True, tag="decision"):
    """What a bot decided, or decided not to do, and why, in one line a trader reads ("safety
    order 3 at 41,200.00: price fell 1.10 % below the last buy"). The runner publishes it to
    `bot:{bot}:decisions` and logs it; the backtester collects it (shared/strategy/decisions.py).

    `topic` marks a decision not to act ("below_range"): the strategy interface drops a repeat of
    the topic last reported, so a bot waiting for a price says so once, not once a candle."""

    bot: str
    text: str
    topic: str = ""
    fields: dict[str, str] = {}
    ts: int = 0


OrderCommand = PlaceOrder | PlaceOrderList | CancelOrder | CancelOrderList | CancelAll | SyncBot
AnyMessage = (
    Candle
    | BookTicker
    | PlaceOrder
    | PlaceOrderList
    | CancelOrder
    | CancelOrderList
    | CancelAll
    | SyncBot
    | OrderUpdate
    | BotSynced
    | BalanceUpdate
    | BotControl
    | TradeRequest
    | TimerFired
    | Notification
    | Decision
)

MESSAGE_TYPES: dict[str, type[Message]] = {
    cls.__struct_config__.tag: cls  # type: ignore[misc]
    for cls in (
        Candle,
        BookTicker,
        PlaceOrder,
        PlaceOrderList,
        CancelOrder,
        CancelOrderList,
        CancelAll,
        SyncBot,
        OrderUpdate,
        BotSynced,
        BalanceUpdate,
        BotControl,
        TradeRequest,
        TimerFired,
        Notification,
        Decision,
    )
}
