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
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable, Iterable, Iterator, Mapping
from decimal import Decimal
from typing import Literal, get_args

import msgspec

from services.exchange_sim import book
from services.exchange_sim.model import (
    DEFAULT_FEE,
    FEE_QUANTUM,
    LIMIT_PRICED,
    MAX_BOOK_LEVELS,
    NEEDS_TIF,
    STOP_TYPES,
    TRANSITIONS,
    Balance,
    BalanceEvent,
    Depth,
    EngineError,
    EngineState,
    Event,
    ExecType,
    JournalEntry,
    Listener,
    Order,
    OrderEvent,
    OrderRequest,
    OrderType,
    Placed,
    Quote,
    Reject,
    Side,
    Status,
    TimeInForce,
    Trade,
)
from services.exchange_sim.symbols import DEFAULT_BALANCES, SymbolSpec
from shared.money import ZERO, round_down, round_up

__all__ = [
    "Balance",
    "Depth",
    "BalanceEvent",
    "Engine",
    "EngineError",
    "Event",
    "ExecType",
    "JournalEntry",
    "Order",
    "OrderEvent",
    "OrderRequest",
    "OrderType",
    "Placed",
    "Quote",
    "Listener",
    "Reject",
    "Side",
    "Status",
    "TimeInForce",
    "Trade",
]

log = logging.getLogger("exchange_sim.engine")

MarketFill = Literal["now", "next_step"]
MARKET_FILLS: tuple[str, ...] = get_args(MarketFill)


def _fee(amount: Decimal, rate: Decimal) -> Decimal:
    return round_up(amount * rate, FEE_QUANTUM)


def _multiple_of(value: Decimal, increment: Decimal) -> bool:
    return increment <= 0 or value % increment == 0


class CorruptState(AssertionError):
    """An invariant broke (a negative balance, an illegal status move): the venue's state can no
    longer be trusted, so the process stops at once instead of trading on."""


class Engine:
    """The exchange. Single-threaded by design: the server calls it from one event loop."""

    def __init__(
        self,
        specs: Iterable[SymbolSpec],
        *,
        balances: Mapping[str, Decimal] | None = None,
        maker_fee: Decimal = DEFAULT_FEE,
        taker_fee: Decimal = DEFAULT_FEE,
        market_fill: MarketFill = "now",
    ) -> None:
        self.specs: dict[str, SymbolSpec] = {s.symbol: s for s in specs}
        self.start_balances = dict(DEFAULT_BALANCES if balances is None else balances)
        self.maker_fee, self.taker_fee = maker_fee, taker_fee
        self.market_fill = market_fill  # "now": at the last price; "next_step": at the next one
        self._listeners: list[Listener] = []
        # told, after each operation, every order it changed and every trade it made (store.py)
        self.on_change: Callable[[list[Order], list[Trade]], None] | None = None
        self.reset()

    # ----------------------------------------------------------------- lifecycle
    def reset(self) -> None:
        """Forget every account, order, trade and price (listeners stay registered)."""
        self.now = 0
        self._accounts: dict[str, dict[str, list[Decimal]]] = {}
        self._orders: dict[int, Order] = {}
        self._open: dict[str, dict[int, None]] = {s: {} for s in self.specs}
        self._cids: dict[tuple[str, str], int] = {}
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

    def state(self, keep_closed: int, keep_trades: int) -> EngineState:
        """Accounts, open orders and the latest `keep_closed` closed ones, the latest trades."""
        closed = (
            [oid for oid, o in self._orders.items() if not o.is_open][-keep_closed:] if keep_closed else []
        )
        kept = {oid for oid, o in self._orders.items() if o.is_open} | set(closed)
        return EngineState(
            accounts={a: {k: Balance(*row) for k, row in rows.items()} for a, rows in self._accounts.items()},
            orders=[self._orders[oid] for oid in sorted(kept)],
            trades=self._trades[-keep_trades:] if keep_trades else [],
            next_order_id=self._next_order_id,
            next_trade_id=dict(self._next_trade_id),
        )

    def restore(self, state: EngineState) -> None:
        """Start from a saved state (a restarted venue): the book and balances as they were."""
        self.reset()
        for account, rows in state.accounts.items():  # an asset never touched: its start balance
            self._accounts[account] = {a: [amount, ZERO] for a, amount in self.start_balances.items()}
            self._accounts[account].update({k: [b.free, b.locked] for k, b in rows.items()})
        for order in sorted(state.orders, key=lambda o: o.order_id):
            self._orders[order.order_id] = order
            self._cids[(order.account, order.client_order_id)] = order.order_id
            if order.is_open and order.symbol in self._open:
                self._open[order.symbol][order.order_id] = None
        self._trades = list(state.trades)
        self._next_order_id = state.next_order_id
        for symbol, value in state.next_trade_id.items():
            if symbol in self._next_trade_id:
                self._next_trade_id[symbol] = value

    def set_time(self, ms: int) -> None:
        self.now = int(ms)

    def add_listener(self, listener: Listener) -> None:
        """Called synchronously, after each operation, with its events in order."""
        self._listeners.append(listener)

    def remove_listener(self, listener: Listener) -> None:
        with contextlib.suppress(ValueError):
            self._listeners.remove(listener)

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
            self._set_quote(spec, price, ref_price)
            self._trigger_stops(spec, price)
            self._fill_resting(spec, price, liquidity)
            self._execute_waiting(spec)

    def next_trade_id(self, symbol: str) -> int:
        """Trade ids are per symbol and shared with the market's public tape."""
        value = self._next_trade_id[symbol]
        self._next_trade_id[symbol] = value + 1
        return value

    def trade_ids(self) -> dict[str, int]:
        """The next trade id of each symbol."""
        return dict(self._next_trade_id)

    def quote(self, symbol: str) -> Quote:
        spec = self._spec(symbol)
        quote = self._quotes.get(spec.symbol)
        if quote is None:
            raise EngineError(Reject.MARKET_CLOSED, f"{symbol} has no price yet")
        return quote

    def depth(self, symbol: str, limit: int = 100) -> Depth:
        """The synthetic book: `limit` levels each side around the last price."""
        limit = max(1, min(limit, MAX_BOOK_LEVELS))
        return Depth(
            bids=list(self._levels(symbol, Side.SELL, limit)),
            asks=list(self._levels(symbol, Side.BUY, limit)),
        )

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
            if order.type is OrderType.MARKET and self.market_fill == "next_step":
                self._open[order.symbol][order.order_id] = None  # open until the next price
                return Placed(order, [])
            trades = self._execute(order, plan)
            return Placed(self._orders[order.order_id], trades)

    def test_order(self, account: str, req: OrderRequest) -> None:
        """Validate as place() would (filters, balance) without changing anything."""
        self._validate(account, req, "open")

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
            order = self.get_order(account, symbol, order_id=order_id, client_order_id=client_order_id)
            if not order.is_open:
                raise EngineError(Reject.NOT_OPEN, f"order {order.order_id} is {order.status}")
            order = self._update(order, cancel_client_order_id=cancel_client_order_id)
            self._close(order, Status.CANCELED, ExecType.CANCELED)
            return self._orders[order.order_id]

    def cancel_all(self, account: str, symbol: str) -> list[Order]:
        self._spec(symbol)
        with self._op():
            return [
                self.cancel(account, symbol, order_id=o.order_id) for o in self.open_orders(account, symbol)
            ]

    def get_order(
        self,
        account: str,
        symbol: str,
        *,
        order_id: int | None = None,
        client_order_id: str | None = None,
    ) -> Order:
        """By order id, else by client order id (the latest order that carried it)."""
        self._spec(symbol)
        if order_id is None and not client_order_id:
            raise EngineError(Reject.MISSING_PARAM, "order id or client order id", param="order_id")
        if order_id is None:
            order_id = self._cids.get((account, client_order_id or ""))
        order = self._orders.get(order_id) if order_id is not None else None
        if order is None or order.account != account or order.symbol != symbol:
            raise EngineError(Reject.UNKNOWN_ORDER, f"no order {order_id or client_order_id} on {symbol}")
        if client_order_id and order.client_order_id != client_order_id:
            raise EngineError(Reject.UNKNOWN_ORDER, f"order {order_id} is not {client_order_id}")
        return order

    def find_order(self, order_id: int) -> Order | None:
        """Any account's order by id (the control API and the journal use it)."""
        return self._orders.get(order_id)

    def open_orders(self, account: str, symbol: str | None = None) -> list[Order]:
        symbols = [self._spec(symbol).symbol] if symbol else list(self.specs)
        return [
            self._orders[oid]
            for s in symbols
            for oid in self._open[s]
            if self._orders[oid].account == account
        ]

    def orders(
        self,
        account: str,
        symbol: str | None = None,
        *,
        from_id: int | None = None,
        start_time: int | None = None,
        end_time: int | None = None,
        limit: int | None = None,
    ) -> list[Order]:
        """Every order of the account (open and closed), oldest first."""
        if symbol:
            self._spec(symbol)
        found = [
            o
            for o in self._orders.values()
            if o.account == account
            and (symbol is None or o.symbol == symbol)
            and (from_id is None or o.order_id >= from_id)
            and (start_time is None or o.time >= start_time)
            and (end_time is None or o.time <= end_time)
        ]
        return _limited(found, limit, from_start=from_id is not None)

    def trades(
        self,
        account: str,
        symbol: str | None = None,
        *,
        order_id: int | None = None,
        from_id: int | None = None,
        start_time: int | None = None,
        end_time: int | None = None,
        limit: int | None = None,
    ) -> list[Trade]:
        if symbol:
            self._spec(symbol)
        found = [
            t
            for t in self._trades
            if t.account == account
            and (symbol is None or t.symbol == symbol)
            and (order_id is None or t.order_id == order_id)
            and (from_id is None or t.trade_id >= from_id)
            and (start_time is None or t.time >= start_time)
            and (end_time is None or t.time <= end_time)
        ]
        return _limited(found, limit, from_start=from_id is not None)

    # ----------------------------------------------------------------- accounts
    def balances(self, account: str) -> dict[str, Balance]:
        return {asset: Balance(free, locked) for asset, (free, locked) in self._account(account).items()}

    def balance(self, account: str, asset: str) -> Balance:
        free, locked = self._account(account).get(asset, [ZERO, ZERO])
        return Balance(free, locked)

    def accounts(self) -> list[str]:
        return list(self._accounts)

    def set_balance(self, account: str, asset: str, free: Decimal) -> Balance:
        """Set the free amount (a deposit or withdrawal from outside); locked funds stay."""
        if free < 0:
            raise EngineError(Reject.BAD_PARAM, f"free balance of {asset} cannot be negative", param="free")
        with self._op():
            row = self._account(account).setdefault(asset, [ZERO, ZERO])
            delta = free - row[0]
            row[0] = free
            self._touch(account, asset, delta)
            return Balance(row[0], row[1])

    def journal(self, since: int = 0, account: str | None = None) -> list[JournalEntry]:
        """Entries with seq > since, oldest first."""
        return [e for e in self._journal[since:] if account is None or e.account == account]

    # ================================================================= internals
    def _spec(self, symbol: str | None) -> SymbolSpec:
        spec = self.specs.get(symbol or "")
        if spec is None:
            raise EngineError(Reject.UNKNOWN_SYMBOL, f"unknown symbol {symbol!r}", param="symbol")
        return spec

    def _account(self, account: str) -> dict[str, list[Decimal]]:
        if account not in self._accounts:
            self._accounts[account] = {a: [amount, ZERO] for a, amount in self.start_balances.items()}
        return self._accounts[account]

    @contextlib.contextmanager
    def _op(self) -> Iterator[None]:
        """Group the events of one operation; deliver them (balances last) when it ends."""
        self._depth += 1
        try:
            yield
        finally:
            self._depth -= 1
            if self._depth == 0:
                self._flush()

    def _flush(self) -> None:
        for account, assets in self._touched.items():
            rows = self._account(account)
            deltas = {a: d for a, d in assets.items() if d is not None}
            self._pending.append(
                BalanceEvent(
                    account=account,
                    time=self.now,
                    balances={a: Balance(*rows.get(a, [ZERO, ZERO])) for a in assets},
                    deltas=deltas or None,
                )
            )
        self._touched = {}
        if self.on_change is not None and (self._changed or self._made):
            self.on_change([self._orders[oid] for oid in self._changed], self._made)
        self._changed, self._made = {}, []
        events, self._pending = self._pending, []
        for event in events:
            for listener in list(self._listeners):
                try:
                    listener(event)
                except Exception:  # a protocol layer's bug must not corrupt the book
                    log.exception("engine listener failed")

    def _touch(self, account: str, asset: str, delta: Decimal | None = None) -> None:
        assets = self._touched.setdefault(account, {})
        if delta is not None:
            assets[asset] = (assets.get(asset) or ZERO) + delta
        else:
            assets.setdefault(asset, None)

    def _move(self, account: str, asset: str, free: Decimal = ZERO, locked: Decimal = ZERO) -> None:
        row = self._account(account).setdefault(asset, [ZERO, ZERO])
        row[0] += free
        row[1] += locked
        if row[0] < 0 or row[1] < 0:  # corrupt state: stop rather than trade on
            raise CorruptState(f"negative balance {account}/{asset}: {row}")
        self._touch(account, asset)

    def _log_entry(self, kind: str, account: str, symbol: str, **fields: object) -> None:
        self._journal.append(
            JournalEntry(
                seq=len(self._journal) + 1, time=self.now, kind=kind, account=account, symbol=symbol, **fields
            )  # type: ignore[arg-type]
        )

    def _log_order(self, kind: str, order: Order, trade: Trade | None = None) -> None:
        self._log_entry(
            kind,
            order.account,
            order.symbol,
            client_order_id=order.client_order_id,
            order_id=order.order_id,
            status=order.status.value,
            order=order,
            trade=trade,
        )

    def _update(self, order: Order, **changes: object) -> Order:
        status = changes.get("status")
        if status is not None and status not in TRANSITIONS.get(order.status, frozenset()):
            raise CorruptState(f"illegal transition {order.status} -> {status} for order {order.order_id}")
        new = msgspec.structs.replace(order, update_time=self.now, **changes)
        self._orders[new.order_id] = new
        self._changed[new.order_id] = None
        return new

    def _emit(self, exec_type: ExecType, order: Order, trade: Trade | None = None) -> None:
        self._pending.append(
            OrderEvent(account=order.account, exec_type=exec_type, order=order, trade=trade, time=self.now)
        )

    # ----------------------------------------------------------------- quotes & book
    def _set_quote(self, spec: SymbolSpec, price: Decimal, ref_price: Decimal | None) -> None:
        self._quotes[spec.symbol] = book.make_quote(spec, price, ref_price)

    def _levels(
        self, symbol: str, taker_side: Side, count: int = MAX_BOOK_LEVELS
    ) -> Iterator[tuple[Decimal, Decimal]]:
        return book.levels(self._spec(symbol), self.quote(symbol), taker_side, count)

    def _plan(
        self,
        symbol: str,
        side: Side,
        *,
        qty: Decimal | None = None,
        quote_qty: Decimal | None = None,
        limit_price: Decimal | None = None,
    ) -> list[tuple[Decimal, Decimal]]:
        return book.plan(
            self._spec(symbol),
            self.quote(symbol),
            side,
            qty=qty,
            quote_qty=quote_qty,
            limit_price=limit_price,
        )

    # ----------------------------------------------------------------- validation
    def _validate(
        self, account: str, req: OrderRequest, cid_scope: str
    ) -> tuple[SymbolSpec, Decimal, list[tuple[Decimal, Decimal]]]:
        """Check everything; return the spec, the quantity and (for market orders) the book walk."""
        spec = self._spec(req.symbol)
        quote = self.quote(req.symbol)
        f = spec.filters
        kind = req.type
        qty = req.quantity
        if kind is OrderType.MARKET:
            if qty is None and req.quote_quantity is None:
                raise EngineError(Reject.MISSING_PARAM, "quantity or quote_quantity", param="quantity")
            if qty is not None and req.quote_quantity is not None:
                raise EngineError(
                    Reject.BAD_PARAM, "quantity and quote_quantity both sent", param="quote_quantity"
                )
        elif qty is None:
            raise EngineError(Reject.MISSING_PARAM, "quantity", param="quantity")
        if kind in LIMIT_PRICED and req.price is None:
            raise EngineError(Reject.MISSING_PARAM, "price", param="price")
        if kind in STOP_TYPES and req.stop_price is None:
            raise EngineError(Reject.MISSING_PARAM, "stop_price", param="stop_price")
        if kind in NEEDS_TIF and req.time_in_force is None:
            raise EngineError(Reject.MISSING_PARAM, "time_in_force", param="time_in_force")

        for name, value in (
            ("price", req.price if kind in LIMIT_PRICED else None),
            ("stop_price", req.stop_price if kind in STOP_TYPES else None),
        ):
            if value is not None and (
                value < f.min_price or value > f.max_price or not _multiple_of(value, f.tick_size)
            ):
                raise EngineError(Reject.PRICE_FILTER, f"{name} {value} (tick {f.tick_size})", param=name)
        if qty is not None and (qty < f.min_qty or qty > f.max_qty or not _multiple_of(qty, f.step_size)):
            raise EngineError(
                Reject.LOT_SIZE, f"quantity {qty} (step {f.step_size}, min {f.min_qty})", param="quantity"
            )
        if req.quote_quantity is not None and req.quote_quantity <= 0:
            raise EngineError(Reject.BAD_PARAM, "quote_quantity must be positive", param="quote_quantity")

        price = req.price if kind in LIMIT_PRICED else None
        if price is not None:
            lo, hi = quote.ref_price * f.multiplier_down, quote.ref_price * f.multiplier_up
            if price < lo or price > hi:
                raise EngineError(Reject.PERCENT_PRICE, f"price {price} outside [{lo}, {hi}]", param="price")
        if qty is None:
            notional = req.quote_quantity or ZERO
        else:
            notional = qty * (price or req.stop_price or quote.ref_price)
        if notional < f.min_notional or notional > f.max_notional:
            raise EngineError(Reject.NOTIONAL, f"notional {notional} (min {f.min_notional})")

        cid = req.client_order_id
        if cid:
            previous = self._cids.get((account, cid))
            if previous is not None and (cid_scope == "ever" or self._orders[previous].is_open):
                raise EngineError(Reject.DUPLICATE_ORDER, f"client order id {cid} is in use")
        if len(self.open_orders(account, spec.symbol)) >= spec.max_num_orders:
            raise EngineError(Reject.MAX_NUM_ORDERS, f"{spec.max_num_orders} open orders on {spec.symbol}")
        if kind in STOP_TYPES and _stop_reached(kind, req.side, req.stop_price or ZERO, quote.price):
            raise EngineError(Reject.WOULD_TRIGGER, f"stop {req.stop_price} vs last {quote.price}")
        if kind is OrderType.LIMIT_MAKER and _crosses(req.side, price or ZERO, quote):
            raise EngineError(Reject.WOULD_MATCH, f"{req.side} {price} vs bid {quote.bid} ask {quote.ask}")

        plan: list[tuple[Decimal, Decimal]] = []
        if kind is OrderType.MARKET:
            plan = self._plan(spec.symbol, req.side, qty=qty, quote_qty=req.quote_quantity)
            if not plan:
                raise EngineError(Reject.NO_LIQUIDITY, "the book cannot fill one step")
            qty = sum((q for _, q in plan), ZERO)
            need = sum((p * q for p, q in plan), ZERO) if req.side is Side.BUY else qty
        else:
            assert qty is not None
            need = qty * (price or req.stop_price or ZERO) if req.side is Side.BUY else qty
        asset = spec.quote if req.side is Side.BUY else spec.base
        if self.balance(account, asset).free < need:
            raise EngineError(Reject.INSUFFICIENT_BALANCE, f"{asset}: need {need}")
        assert qty is not None
        return spec, qty, plan

    # ----------------------------------------------------------------- execution
    def _accept(
        self, account: str, req: OrderRequest, cid_scope: str
    ) -> tuple[Order, list[tuple[Decimal, Decimal]]]:
        spec, qty, plan = self._validate(account, req, cid_scope)
        order_id = self._next_order_id
        self._next_order_id += 1
        cid = req.client_order_id or f"sim-{order_id:010d}"
        is_stop = req.type in STOP_TYPES
        order = Order(
            order_id=order_id,
            account=account,
            symbol=spec.symbol,
            side=req.side,
            type=req.type,
            time_in_force=req.time_in_force or TimeInForce.GTC,
            client_order_id=cid,
            quantity=qty,
            price=req.price if req.type in LIMIT_PRICED and req.price is not None else ZERO,
            stop_price=req.stop_price if is_stop and req.stop_price is not None else ZERO,
            quote_quantity=req.quote_quantity or ZERO,
            time=self.now,
            update_time=self.now,
            working_time=None if is_stop else self.now,
        )
        self._orders[order_id] = order
        self._changed[order_id] = None
        self._cids[(account, cid)] = order_id
        if req.type is not OrderType.MARKET:
            self._open[spec.symbol][order_id] = None
            order = self._reserve(order, spec)
        self._touch(account, spec.base)
        self._touch(account, spec.quote)
        self._log_order("accepted", order)
        self._emit(ExecType.NEW, order)
        return order, plan

    def _reserve(self, order: Order, spec: SymbolSpec) -> Order:
        if order.side is Side.BUY:
            amount = order.quantity * (order.price if order.type in LIMIT_PRICED else order.stop_price)
            self._move(order.account, spec.quote, free=-amount, locked=amount)
        else:
            amount = order.quantity
            self._move(order.account, spec.base, free=-amount, locked=amount)
        return self._update(order, reserved=amount)

    def _release(self, order: Order) -> Order:
        if order.reserved:
            spec = self.specs[order.symbol]
            asset = spec.quote if order.side is Side.BUY else spec.base
            self._move(order.account, asset, free=order.reserved, locked=-order.reserved)
            order = self._update(order, reserved=ZERO)
        return order

    def _execute(self, order: Order, plan: list[tuple[Decimal, Decimal]]) -> list[Trade]:
        """The immediate part of a new (or just triggered) order."""
        if order.type in STOP_TYPES and not order.triggered:
            return []
        if order.type in (OrderType.MARKET, OrderType.STOP_LOSS, OrderType.TAKE_PROFIT):
            trades = [self._fill(order.order_id, price, qty, maker=False) for price, qty in plan]
            current = self._orders[order.order_id]
            if current.is_open:
                self._close(current, Status.EXPIRED, ExecType.EXPIRED, reason="book exhausted")
            return trades
        if order.type is OrderType.LIMIT_MAKER:
            self._update(order, on_book=True)
            return []
        plan = self._plan(order.symbol, order.side, qty=order.remaining, limit_price=order.price)
        filled = sum((q for _, q in plan), ZERO)
        if order.time_in_force is TimeInForce.FOK and filled < order.remaining:
            self._close(order, Status.EXPIRED, ExecType.EXPIRED, reason="FOK not fully fillable")
            return []
        trades = [self._fill(order.order_id, price, qty, maker=False) for price, qty in plan]
        current = self._orders[order.order_id]
        if current.is_open:
            if current.time_in_force is TimeInForce.GTC:
                self._update(current, on_book=True)
            else:
                self._close(current, Status.EXPIRED, ExecType.EXPIRED, reason="IOC remainder")
        return trades

    def _fill(self, order_id: int, price: Decimal, qty: Decimal, *, maker: bool) -> Trade:
        order = self._orders[order_id]
        spec = self.specs[order.symbol]
        quote_amount = price * qty
        rate = self.maker_fee if maker else self.taker_fee
        reserved = order.reserved
        if order.side is Side.BUY:
            if reserved:
                held = qty * order.price
                reserved -= held
                self._move(order.account, spec.quote, free=held - quote_amount, locked=-held)
            else:
                self._move(order.account, spec.quote, free=-quote_amount)
            fee, fee_asset = _fee(qty, rate), spec.base
            self._move(order.account, spec.base, free=qty - fee)
        else:
            if reserved:
                reserved -= qty
                self._move(order.account, spec.base, locked=-qty)
            else:
                self._move(order.account, spec.base, free=-qty)
            fee, fee_asset = _fee(quote_amount, rate), spec.quote
            self._move(order.account, spec.quote, free=quote_amount - fee)
        trade = Trade(
            trade_id=self.next_trade_id(order.symbol),
            order_id=order.order_id,
            account=order.account,
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
        self._trades.append(trade)
        self._made.append(trade)
        executed = order.executed_qty + qty
        status = Status.FILLED if executed >= order.quantity else Status.PARTIALLY_FILLED
        order = self._update(
            order,
            executed_qty=executed,
            cum_quote=order.cum_quote + quote_amount,
            status=status,
            reserved=reserved,
            on_book=order.on_book and status is not Status.FILLED,
        )
        if status is Status.FILLED:
            self._open[order.symbol].pop(order.order_id, None)
        self._log_order("trade", order, trade)
        self._emit(ExecType.TRADE, order, trade)
        return trade

    def _close(self, order: Order, status: Status, exec_type: ExecType, reason: str | None = None) -> None:
        order = self._release(order)
        order = self._update(order, status=status, on_book=False, expire_reason=reason)
        self._open[order.symbol].pop(order.order_id, None)
        self._touch(order.account, self.specs[order.symbol].base)
        self._touch(order.account, self.specs[order.symbol].quote)
        self._log_order(status.value.lower(), order)
        self._emit(exec_type, order)

    def _trigger_stops(self, spec: SymbolSpec, price: Decimal) -> None:
        for oid in list(self._open[spec.symbol]):
            order = self._orders[oid]
            if order.type not in STOP_TYPES or order.triggered or not order.is_open:
                continue
            if not _stop_reached(order.type, order.side, order.stop_price, price):
                continue
            order = self._update(order, working_time=self.now)
            self._log_order("triggered", order)
            if order.type in LIMIT_PRICED:
                self._execute(order, [])
                continue
            # stop-market: release the estimate it held, then execute against free funds
            order = self._release(order)
            plan = self._plan(spec.symbol, order.side, qty=order.remaining)
            need = sum((p * q for p, q in plan), ZERO) if order.side is Side.BUY else order.remaining
            asset = spec.quote if order.side is Side.BUY else spec.base
            self._open[spec.symbol].pop(oid, None)
            if self.balance(order.account, asset).free < need:
                self._close(order, Status.EXPIRED, ExecType.EXPIRED, reason="insufficient balance at trigger")
                continue
            self._execute(order, plan)

    def _execute_waiting(self, spec: SymbolSpec) -> None:
        """Market orders waiting for this price (market_fill="next_step"), oldest first.

        They walk the book around the new price; a quote-quantity order's quantity is what
        that walk buys (as Binance reports origQty for quoteOrderQty). Funds are checked
        again, as for a triggered stop-market order: too little now expires it unfilled.
        """
        for oid in list(self._open[spec.symbol]):
            order = self._orders[oid]
            if order.type is not OrderType.MARKET or not order.is_open:
                continue
            self._open[spec.symbol].pop(oid, None)
            by_quote = order.quote_quantity > 0
            plan = self._plan(
                spec.symbol,
                order.side,
                qty=None if by_quote else order.remaining,
                quote_qty=order.quote_quantity if by_quote else None,
            )
            need = sum((p * q for p, q in plan), ZERO) if order.side is Side.BUY else order.remaining
            asset = spec.quote if order.side is Side.BUY else spec.base
            if not plan or self.balance(order.account, asset).free < need:
                self._close(order, Status.EXPIRED, ExecType.EXPIRED, reason="insufficient balance or book")
                continue
            if by_quote:
                order = self._update(order, quantity=sum((q for _, q in plan), ZERO))
            self._execute(order, plan)

    def _fill_resting(self, spec: SymbolSpec, price: Decimal, liquidity: Decimal | None) -> None:
        step = spec.filters.step_size
        touched = [
            self._orders[oid]
            for oid in self._open[spec.symbol]
            if self._orders[oid].on_book and _touches(self._orders[oid], price)
        ]
        for side in (Side.BUY, Side.SELL):
            left = liquidity
            queue = sorted(
                (o for o in touched if o.side is side),
                key=lambda o: (-o.price if side is Side.BUY else o.price, o.order_id),
            )
            for order in queue:
                qty = order.remaining if left is None else min(order.remaining, round_down(left, step))
                if qty <= 0:
                    break
                self._fill(order.order_id, order.price, qty, maker=True)
                if left is not None:
                    left -= qty


def _limited(items: list, limit: int | None, *, from_start: bool) -> list:
    """The first `limit` items when paging forward from an id, else the latest `limit`."""
    if limit is None:
        return items
    return items[:limit] if from_start else items[-limit:] if limit > 0 else []


def _stop_reached(kind: OrderType, side: Side, stop: Decimal, price: Decimal) -> bool:
    """Stop-loss: a sell triggers at or below its stop, a buy at or above; take-profit the reverse."""
    falling = (kind in (OrderType.STOP_LOSS, OrderType.STOP_LOSS_LIMIT)) == (side is Side.SELL)
    return price <= stop if falling else price >= stop


def _crosses(side: Side, price: Decimal, quote: Quote) -> bool:
    return price >= quote.ask if side is Side.BUY else price <= quote.bid


def _touches(order: Order, price: Decimal) -> bool:
    return price <= order.price if order.side is Side.BUY else price >= order.price
