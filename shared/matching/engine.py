"""A deterministic, protocol-neutral spot exchange: accounts, orders, fills, fees, journal.

No I/O, no clock, no randomness: time is whatever the market last set (`set_time`), prices
arrive through `on_price`, and every call returns or raises synchronously. The protocol
layers (Binance, Bybit) translate requests into these calls and the events this engine
emits into their own wire formats, so both speak for the same book and the same balances.

Rules that follow the real venues:
- free/locked balances: a resting order locks what it may spend (quote for a buy at its
  limit price, base for a sell); balances never go negative.
- fees are charged in the asset received (base on a buy, quote on a sell), rounded up to
  1e-8, as Binance does when BNB is not used for fees.
- a client order id is unique among the account's open orders (Binance); `cid_scope="ever"`
  makes it unique among all orders (stricter venues).
- market and crossing orders take from a synthetic book around the last price; resting
  orders fill at their own limit price when the market price touches it, limited by the
  liquidity the market hands to each step, so PARTIALLY_FILLED really happens.
- `market_fill="next_step"`: a market order is accepted (NEW) and waits for the next price
  the market hands over, then walks the book around *that* price. In step mode the last
  price is the previous step's (often a closed candle's close), which no real order sent now
  could still get; a real one fills at about the next trade — the next step here, which is
  also where the backtester fills it (backtest/sim.py).
- every accepted order, trade and state change is journaled.

`Engine` is assembled from parts with one job each, all working on the data `reset` sets up:
engine_rules.py (the checks an order must pass, its entry into the book), engine_accounts.py
(balances and locks), engine_queries.py (lookups, the quote and the book walk), engine_events.py
(what an operation delivers: events, journal, change feed) and engine_state.py (saved state).
This module keeps the matching: executing, filling, triggering, amending and closing orders. The parts
are mixins rather than collaborator objects so that a fill makes the same method calls it made
when this was one class (the paper venue is on the benches' hot path). The paper venue
imports every engine name (`__all__`) from this module, wherever it is defined.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from decimal import Decimal
from typing import Literal, get_args

from shared.matching import book
from shared.matching.engine_accounts import Accounts
from shared.matching.engine_events import FORGET_AFTER, Events
from shared.matching.engine_lists import Lists
from shared.matching.engine_queries import Queries
from shared.matching.engine_rules import OrderRules, crosses, stop_reached
from shared.matching.engine_state import SavedState
from shared.matching.model import (
    DEFAULT_FEE,
    EXEC_CANCELED,
    EXEC_EXPIRED,
    EXEC_NEW,
    EXEC_TRADE,
    FEE_QUANTUM,
    LIMIT_PRICED,
    STOP_TYPES,
    BalanceEvent,
    CorruptState,
    Depth,
    EngineError,
    EngineState,
    Event,
    ExecType,
    Funds,
    JournalEntry,
    Listener,
    ListEvent,
    Order,
    OrderEvent,
    OrderList,
    OrderRequest,
    OrderStatus,
    OrderType,
    Placed,
    PlacedList,
    Quote,
    Reject,
    Side,
    TimeInForce,
    Trade,
)
from shared.matching.symbols import DEFAULT_BALANCES, SymbolSpec
from shared.messages import (
    BUY,
    CANCELED,
    EXPIRED,
    FILLED,
    FOK,
    GTC,
    LIMIT_MAKER,
    MARKET,
    PARTIALLY_FILLED,
)
from shared.money import ZERO, round_down, round_up

__all__ = [
    "DEFAULT_MARKET_FILL",
    "MARKET_FILLS",
    "Funds",
    "BalanceEvent",
    "CorruptState",
    "Depth",
    "Engine",
    "EngineError",
    "EngineState",
    "Event",
    "ExecType",
    "JournalEntry",
    "ListEvent",
    "Listener",
    "MarketFill",
    "Order",
    "OrderEvent",
    "OrderList",
    "OrderRequest",
    "OrderType",
    "Placed",
    "PlacedList",
    "Quote",
    "Reject",
    "Side",
    "OrderStatus",
    "TimeInForce",
    "Trade",
]

MarketFill = Literal["now", "next_step"]
MARKET_FILLS: tuple[str, ...] = get_args(MarketFill)
DEFAULT_MARKET_FILL: MarketFill = "next_step"  # the paper venue's and the backtester's


_TAKE_ALL = frozenset({MARKET, OrderType.STOP_LOSS, OrderType.TAKE_PROFIT})  # walk the book, expire the rest


def _fee(amount: Decimal, rate: Decimal) -> Decimal:
    return round_up(amount * rate, FEE_QUANTUM)


class Engine(OrderRules, Accounts, Queries, Events, Lists, SavedState):
    """The exchange. Single-threaded by design: the server calls it from one event loop."""

    def __init__(
        self,
        specs: Iterable[SymbolSpec],
        *,
        balances: Mapping[str, Decimal] | None = None,
        maker_fee: Decimal = DEFAULT_FEE,
        taker_fee: Decimal = DEFAULT_FEE,
        market_fill: MarketFill = DEFAULT_MARKET_FILL,
        keep_record: bool = True,
    ) -> None:
        """`keep_record=False`: no journal, no balance events and no history of closed orders or
        trades (the backtester reads none of them: a long backtest would keep them all)."""
        self.specs: dict[str, SymbolSpec] = {s.symbol: s for s in specs}
        self.start_balances = dict(DEFAULT_BALANCES if balances is None else balances)
        self.maker_fee, self.taker_fee = maker_fee, taker_fee
        self.market_fill = market_fill  # "now": at the last price; "next_step": at the next one
        self.keep_record = keep_record
        self._listeners: list[Listener] = []
        # told, after each operation, every order and list it changed and every trade it made (store.py)
        self.on_change: Callable[[list[Order], list[Trade], list[OrderList]], None] | None = None
        self.reset()

    # ----------------------------------------------------------------- lifecycle
    def reset(self) -> None:
        """Forget every account, order, trade and price (listeners stay registered)."""
        self.now = 0
        self._accounts: dict[str, dict[str, list[Decimal]]] = {}
        self._orders: dict[int, Order] = {}
        self._open: dict[str, dict[int, None]] = {s: {} for s in self.specs}
        self._cids: dict[tuple[str, str], int] = {}
        self._forget_at = FORGET_AFTER  # engine_events.py _forget_closed
        self._trades: list[Trade] = []
        self._journal: list[JournalEntry] = []
        self._quotes: dict[str, Quote] = {}
        self._next_order_id = 1
        self._next_trade_id = dict.fromkeys(self.specs, 1)
        self._pending: list[Event] = []
        self._touched: dict[str, dict[str, Decimal | None]] = {}
        self._changed: dict[int, None] = {}  # order ids changed by the operation under way
        self._made: list[Trade] = []  # trades it made
        self._depth = 0
        self._lists: dict[int, OrderList] = {}  # engine_lists.py
        self._list_cids: dict[tuple[str, str], int] = {}
        self._lists_changed: dict[int, None] = {}
        self._list_events: list[ListEvent] = []
        self._next_list_id = 1

    def set_time(self, ms: int) -> None:
        self.now = int(ms)

    # ----------------------------------------------------------------- market side
    def on_price(
        self,
        symbol: str,
        price: Decimal,
        *,
        liquidity: Decimal | None = None,
        ref_price: Decimal | None = None,
    ) -> None:
        """The market traded at `price`: trigger stops, fill touched resting orders.

        `liquidity` is the base quantity the market offers each side of the book at this
        step (None: unlimited); resting orders share it in price-time priority.
        """
        spec = self._spec(symbol)
        with self._op():
            self._quotes[symbol] = book.make_quote(spec, price, ref_price)  # symbol: the spec's key
            if self._open[symbol]:  # else nothing to trigger, fill or execute
                self._trigger_stops(spec, price)
                self._fill_resting(spec, price, liquidity)
                self._execute_waiting(spec)

    def move_quote(self, symbol: str, price: Decimal, *, ref_price: Decimal | None = None) -> None:
        """The market is at `price`, which the caller knows reaches no open order (the
        backtester's trigger levels): only the quote moves, nothing is triggered or filled."""
        spec = self._spec(symbol)
        self._quotes[symbol] = book.make_quote(spec, price, ref_price)

    def next_trade_id(self, symbol: str) -> int:
        """Trade ids are per symbol and shared with the market's public tape."""
        value = self._next_trade_id[symbol]
        self._next_trade_id[symbol] = value + 1
        return value

    def trade_ids(self) -> dict[str, int]:
        """The next trade id of each symbol."""
        return dict(self._next_trade_id)

    # ----------------------------------------------------------------- orders
    def place(
        self, account: str, req: OrderRequest, *, cid_scope: Literal["open", "ever"] = "open"
    ) -> Placed:
        """Accept and execute an order, or raise EngineError with nothing changed (but the journal)."""
        with self._op():
            try:
                order, plan = self._accept(account, req, cid_scope)
            except EngineError as exc:
                self._log_entry(
                    "rejected",
                    account,
                    req.symbol,
                    client_order_id=req.client_order_id,
                    reason=str(exc),
                )
                raise
            if order.type is MARKET and self.market_fill == "next_step":
                self._open[order.symbol][order.order_id] = None  # open until the next price
                return Placed(order, [])
            trades = self._execute(order, plan)
            return Placed(self._orders[order.order_id], trades)

    def _open_order(
        self, account: str, symbol: str, *, order_id: int | None, client_order_id: str | None = None
    ) -> Order:
        """The order (get_order), refused NOT_OPEN once it has ended: what cancel and amend act on."""
        order = self.get_order(account, symbol, order_id=order_id, client_order_id=client_order_id)
        if not order.is_open:
            raise EngineError(Reject.NOT_OPEN, f"order {order.order_id} is {order.status}")
        return order

    def cancel(
        self,
        account: str,
        symbol: str,
        *,
        order_id: int | None = None,
        client_order_id: str | None = None,
        cancel_client_order_id: str | None = None,
    ) -> Order:
        with self._op():
            order = self._open_order(account, symbol, order_id=order_id, client_order_id=client_order_id)
            if order.list_id >= 0:  # a leg: the whole list goes, as on Binance
                self._cancel_legs(self._lists[order.list_id], cancel_client_order_id)
                return self._orders[order.order_id]
            if cancel_client_order_id != order.cancel_client_order_id:  # else _close's update says it all
                order = self._update(order, cancel_client_order_id=cancel_client_order_id)
            self._close(order, CANCELED, EXEC_CANCELED)
            return self._orders[order.order_id]

    def cancel_all(self, account: str, symbol: str) -> list[Order]:
        self._spec(symbol)
        with self._op():
            return [  # a list's leg cancels its other legs: those are skipped (no longer open)
                self.cancel(account, symbol, order_id=o.order_id)
                for o in self.open_orders(account, symbol)
                if self._orders[o.order_id].is_open
            ]

    def amend(
        self,
        account: str,
        symbol: str,
        *,
        order_id: int,
        quantity: Decimal | None = None,
        price: Decimal | None = None,
        stop_price: Decimal | None = None,
    ) -> Placed:
        """Change a resting order's quantity, price or stop in place (Bybit's order/amend): it
        keeps its id, fills and place in the account; its lock follows the new terms, and a
        limit price that now crosses the book trades at once. Refused, with nothing changed,
        as a new order with these terms would be (filters, price band, balance, a stop already
        reached, a maker order that would take); a list's leg or a market order is not amended."""
        with self._op():
            order = self._open_order(account, symbol, order_id=order_id)
            if order.list_id >= 0 or (order.type in _TAKE_ALL and order.triggered):
                raise EngineError(Reject.BAD_PARAM, "this order cannot be amended", param="orderId")
            if price is not None and order.type not in LIMIT_PRICED:
                raise EngineError(Reject.BAD_PARAM, "a market order has no price", param="price")
            if stop_price is not None and (order.type not in STOP_TYPES or order.triggered):
                raise EngineError(Reject.BAD_PARAM, "no trigger to change", param="triggerPrice")
            qty = order.quantity if quantity is None else quantity
            if qty <= order.executed_qty:
                raise EngineError(Reject.BAD_PARAM, f"quantity {qty} not above the filled part", param="qty")
            req = OrderRequest(
                symbol=order.symbol,
                side=order.side,
                type=order.type,
                quantity=qty,
                price=order.price if price is None else price,
                stop_price=order.stop_price if stop_price is None else stop_price,
                time_in_force=order.time_in_force,
            )
            spec, _, _ = self._validate(account, req, "open", active=False)  # filters, band, notional
            quote = self.quote(symbol)
            stop = req.stop_price or ZERO
            if stop_price is not None and stop_reached(order.type, order.side, stop, quote.price):
                raise EngineError(Reject.WOULD_TRIGGER, f"stop {stop} vs last {quote.price}")
            maker = order.type is LIMIT_MAKER
            if maker and crosses(order.side, req.price or ZERO, quote):
                raise EngineError(Reject.WOULD_MATCH, f"{order.side} {req.price} vs the book")
            left = qty - order.executed_qty
            buy = order.side is BUY
            level = req.price if order.type in LIMIT_PRICED else stop
            need = left * (level or ZERO) if buy else left
            asset = spec.quote if buy else spec.base
            if self._free(account, asset) + order.reserved < need:
                raise EngineError(Reject.INSUFFICIENT_BALANCE, f"{asset}: need {need}")
            order = self._release(order)
            self._move(account, asset, free=-need, locked=need)
            changes = {"quantity": qty, "price": req.price or ZERO, "stop_price": req.stop_price or ZERO}
            order = self._update(order, reserved=need, **changes)
            self._log_order("amended", order)
            self._emit(EXEC_NEW, order)
            resting = order.type in LIMIT_PRICED and order.triggered and not maker
            trades = self._execute(order, []) if resting else []
            return Placed(self._orders[order.order_id], trades)

    # ----------------------------------------------------------------- matching
    def _execute(self, order: Order, plan: list[tuple[Decimal, Decimal]]) -> list[Trade]:
        """The immediate part of a new (or just triggered) order."""
        if order.type in STOP_TYPES and not order.triggered:
            return []
        if order.type in _TAKE_ALL:
            trades = [self._fill(order.order_id, price, qty, maker=False) for price, qty in plan]
            current = self._orders[order.order_id]
            if current.is_open:
                self._close(current, EXPIRED, EXEC_EXPIRED, reason="book exhausted")
            return trades
        if order.type is LIMIT_MAKER:
            self._update(order, on_book=True)
            return []
        plan = []  # a limit that does not cross the book rests without walking it
        if crosses(order.side, order.price, self.quote(order.symbol)):
            plan = self._plan(order.symbol, order.side, qty=order.remaining, limit_price=order.price)
        if order.time_in_force is FOK and sum((q for _, q in plan), ZERO) < order.remaining:
            self._close(order, EXPIRED, EXEC_EXPIRED, reason="FOK not fully fillable")
            return []
        trades = [self._fill(order.order_id, price, qty, maker=False) for price, qty in plan]
        current = self._orders[order.order_id]
        if current.is_open:
            if current.time_in_force is GTC:
                self._update(current, on_book=True)
            else:
                self._close(current, EXPIRED, EXEC_EXPIRED, reason="IOC remainder")
        return trades

    def _fill(self, order_id: int, price: Decimal, qty: Decimal, *, maker: bool) -> Trade:
        order = self._orders[order_id]
        if order.list_id >= 0 and not order.executed_qty:  # an OCO leg's first trade: the other goes
            self._leg_fires(order)
            order = self._orders[order_id]
        spec = self.specs[order.symbol]
        base, quote = spec.base, spec.quote
        account = order.account
        quote_amount = price * qty
        rate = self.maker_fee if maker else self.taker_fee
        reserved = order.reserved
        if order.side is BUY:
            if reserved:
                held = qty * order.price
                reserved -= held
                self._move(account, quote, free=held - quote_amount, locked=-held)
            else:
                self._move(account, quote, free=-quote_amount)
            fee, fee_asset = _fee(qty, rate), base
            self._move(account, base, free=qty - fee)
        else:
            if reserved:
                reserved -= qty
                self._move(account, base, locked=-qty)
            else:
                self._move(account, base, free=-qty)
            fee, fee_asset = _fee(quote_amount, rate), quote
            self._move(account, quote, free=quote_amount - fee)
        trade = Trade(
            trade_id=self.next_trade_id(order.symbol),
            order_id=order.order_id,
            account=account,
            symbol=order.symbol,
            side=order.side,
            price=price,
            qty=qty,
            quote_qty=quote_amount,
            commission=fee,
            commission_asset=fee_asset,
            maker=maker,
            time=self.now,
        )
        if self.keep_record:  # the trade list the venue's queries read; a backtest keeps its own
            self._trades.append(trade)
        self._made.append(trade)
        executed = order.executed_qty + qty
        status = FILLED if executed >= order.quantity else PARTIALLY_FILLED
        order = self._update(
            order,
            executed_qty=executed,
            cum_quote=order.cum_quote + quote_amount,
            status=status,
            reserved=reserved,
            on_book=order.on_book and status is not FILLED,
        )
        if status is FILLED:
            self._open[order.symbol].pop(order.order_id, None)
        if self.keep_record:
            self._log_order("trade", order, trade)
        self._emit(EXEC_TRADE, order, trade)
        if order.list_id >= 0 and status is FILLED:
            self._leg_closed(order)
        return trade

    def _close(
        self, order: Order, status: OrderStatus, exec_type: ExecType, reason: str | None = None
    ) -> None:
        reserved = ZERO if self._unlock(order) else order.reserved  # one update for both
        order = self._update(order, status=status, on_book=False, expire_reason=reason, reserved=reserved)
        self._open[order.symbol].pop(order.order_id, None)
        if self.keep_record:  # the balance event and the journal (engine_events.py)
            spec = self.specs[order.symbol]
            self._touch(order.account, spec.base)
            self._touch(order.account, spec.quote)
            self._log_order(status.value.lower(), order)
        self._emit(exec_type, order)
        if order.list_id >= 0:
            self._leg_closed(order)

    def _trigger_stops(self, spec: SymbolSpec, price: Decimal) -> None:
        symbol = spec.symbol
        open_ = self._open[symbol]
        for oid in list(open_):
            order = self._orders[oid]
            if order.type not in STOP_TYPES or order.triggered or not order.is_open or order.pending:
                continue
            if not stop_reached(order.type, order.side, order.stop_price, price):
                continue
            if order.list_id >= 0:  # an OCO's stop leg: the other leg goes
                self._leg_fires(order)
                order = self._orders[oid]
            order = self._update(order, working_time=self.now)
            self._log_order("triggered", order)
            if order.type in LIMIT_PRICED:
                self._execute(order, [])
                continue
            # stop-market: release the estimate it held, then execute against free funds
            order = self._release(order)
            plan = self._plan(symbol, order.side, qty=order.remaining)
            need = sum((p * q for p, q in plan), ZERO) if order.side is BUY else order.remaining
            asset = spec.quote if order.side is BUY else spec.base
            open_.pop(oid, None)
            if self._free(order.account, asset) < need:
                self._close(order, EXPIRED, EXEC_EXPIRED, reason="insufficient balance at trigger")
                continue
            self._execute(order, plan)

    def _execute_waiting(self, spec: SymbolSpec) -> None:
        """Market orders waiting for this price (market_fill="next_step"), oldest first.

        They walk the book around the new price; a quote-quantity order's quantity is what
        that walk buys (as Binance reports origQty for quoteOrderQty). Funds are checked
        again, as for a triggered stop-market order: too little now expires it unfilled.
        """
        symbol = spec.symbol
        open_ = self._open[symbol]
        for oid in list(open_):
            order = self._orders[oid]
            if order.type is not MARKET or not order.is_open:
                continue
            open_.pop(oid, None)
            by_quote = order.quote_quantity > 0
            plan = self._plan(
                symbol,
                order.side,
                qty=None if by_quote else order.remaining,
                quote_qty=order.quote_quantity if by_quote else None,
            )
            need = sum((p * q for p, q in plan), ZERO) if order.side is BUY else order.remaining
            asset = spec.quote if order.side is BUY else spec.base
            if not plan or self._free(order.account, asset) < need:
                self._close(order, EXPIRED, EXEC_EXPIRED, reason="insufficient balance or book")
                continue
            if by_quote:
                order = self._update(order, quantity=sum((q for _, q in plan), ZERO))
            self._execute(order, plan)

    def _fill_resting(self, spec: SymbolSpec, price: Decimal, liquidity: Decimal | None) -> None:
        orders = self._orders
        touched = [
            o for o in map(orders.__getitem__, self._open[spec.symbol]) if o.on_book and _touches(o, price)
        ]
        if not touched:
            return
        step = spec.filters.step_size
        # one queue: the buys (best price first, then the oldest), then the sells; each side
        # shares the step's liquidity, and a side whose share is used up takes no more
        side, left, used_up = None, liquidity, False
        for order in sorted(touched, key=_queue_key):
            if order.side is not side:
                side, left, used_up = order.side, liquidity, False
            if used_up:
                continue
            order = self._orders[order.order_id]  # an OCO's fill may have expired its other leg
            if not order.on_book:
                continue
            qty = order.remaining if left is None else min(order.remaining, round_down(left, step))
            if qty <= 0:
                used_up = True
                continue
            self._fill(order.order_id, order.price, qty, maker=True)
            if left is not None:
                left -= qty


def _queue_key(o: Order) -> tuple[bool, Decimal, int]:
    """Price-time priority, buys before sells: the highest buy first, the lowest sell first."""
    buy = o.side is BUY
    return (not buy, -o.price if buy else o.price, o.order_id)


def _touches(order: Order, price: Decimal) -> bool:
    return price <= order.price if order.side is BUY else price >= order.price
