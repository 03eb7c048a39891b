"""The rules a new order must pass before the engine takes it, and its entry into the book.

Like a real venue's filter checks, in the order Binance applies them: required fields, the
symbol's filters (tick, step, min/max quantity, percent price, notional), then the account's
state (client order id in use, too many open orders, a stop already reached, a limit-maker
that would take, too little free balance). A refused order changes nothing; an accepted one
gets its id, locks what it may spend and is journaled. `test_order` runs the same checks.
Part of `Engine` (a mixin: it works on the engine's own data).
"""

from __future__ import annotations

from decimal import Decimal

from shared.matching.model import (
    EXEC_NEW,
    LIMIT_PRICED,
    NEEDS_TIF,
    STOP_TYPES,
    EngineError,
    Order,
    OrderRequest,
    OrderType,
    Quote,
    Reject,
    Side,
)
from shared.matching.symbols import SymbolSpec
from shared.messages import BUY, GTC, LIMIT_MAKER, MARKET, SELL
from shared.money import ZERO


class OrderRules:
    """`_validate` (every check) and `_accept` (the checked order, on the book and journaled).

    Uses the lookups of engine_queries.py, the balances of engine_accounts.py and the
    records of engine_events.py.
    """

    now: int
    _orders: dict[int, Order]
    _open: dict[str, dict[int, None]]
    _cids: dict[tuple[str, str], int]
    _changed: dict[int, None]
    _next_order_id: int
    keep_record: bool  # engine_events.py

    def test_order(self, account: str, req: OrderRequest) -> None:
        """Validate as place() would (filters, balance) without changing anything."""
        self._validate(account, req, "open")

    def _validate(
        self, account: str, req: OrderRequest, cid_scope: str, *, active: bool = True
    ) -> tuple[SymbolSpec, Decimal, list[tuple[Decimal, Decimal]]]:
        """Check everything; return the spec, the quantity and (for market orders) the book walk.
        `active=False`: a pending leg of an order list (engine_lists.py), not working yet: the
        checks of the market and the balance wait until it starts."""
        spec = self._spec(req.symbol)
        quote = self.quote(req.symbol)
        f = spec.filters
        kind = req.type
        qty = req.quantity
        limit_priced, is_stop = kind in LIMIT_PRICED, kind in STOP_TYPES  # read once: every order
        if kind is MARKET:
            if qty is None and req.quote_quantity is None:
                raise EngineError(Reject.MISSING_PARAM, "quantity or quote_quantity", param="quantity")
            if qty is not None and req.quote_quantity is not None:
                raise EngineError(
                    Reject.BAD_PARAM, "quantity and quote_quantity both sent", param="quote_quantity"
                )
        elif qty is None:
            raise EngineError(Reject.MISSING_PARAM, "quantity", param="quantity")
        if limit_priced and req.price is None:
            raise EngineError(Reject.MISSING_PARAM, "price", param="price")
        if is_stop and req.stop_price is None:
            raise EngineError(Reject.MISSING_PARAM, "stop_price", param="stop_price")
        if kind in NEEDS_TIF and req.time_in_force is None:
            raise EngineError(Reject.MISSING_PARAM, "time_in_force", param="time_in_force")

        price = req.price if limit_priced else None
        for name, value in (("price", price), ("stop_price", req.stop_price if is_stop else None)):
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

        if price is not None:
            lo, hi = f.price_band(req.side, quote.ref_price)
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
        symbol = spec.symbol
        if (  # the account's open orders are counted only when all of the symbol's could be too many
            len(self._open[symbol]) >= spec.max_num_orders
            and len(self.open_orders(account, symbol)) >= spec.max_num_orders
        ):
            raise EngineError(Reject.MAX_NUM_ORDERS, f"{spec.max_num_orders} open orders on {symbol}")
        if not active:
            assert qty is not None
            return spec, qty, []
        if is_stop and stop_reached(kind, req.side, req.stop_price or ZERO, quote.price):
            raise EngineError(Reject.WOULD_TRIGGER, f"stop {req.stop_price} vs last {quote.price}")
        if kind is LIMIT_MAKER and crosses(req.side, price or ZERO, quote):
            raise EngineError(Reject.WOULD_MATCH, f"{req.side} {price} vs bid {quote.bid} ask {quote.ask}")

        plan: list[tuple[Decimal, Decimal]] = []
        if kind is MARKET:
            plan = self._plan(symbol, req.side, qty=qty, quote_qty=req.quote_quantity)
            if not plan:
                raise EngineError(Reject.NO_LIQUIDITY, "the book cannot fill one step")
            qty = sum((q for _, q in plan), ZERO)
            need = sum((p * q for p, q in plan), ZERO) if req.side is BUY else qty
        else:
            assert qty is not None
            need = qty * (price or req.stop_price or ZERO) if req.side is BUY else qty
        asset = spec.quote if req.side is BUY else spec.base
        if self._free(account, asset) < need:
            raise EngineError(Reject.INSUFFICIENT_BALANCE, f"{asset}: need {need}")
        assert qty is not None
        return spec, qty, plan

    def _accept(
        self, account: str, req: OrderRequest, cid_scope: str, *, list_id: int = -1, pending: bool = False
    ) -> tuple[Order, list[tuple[Decimal, Decimal]]]:
        """A valid order, given its id and (unless market) put on the book with its funds locked.
        `list_id`: a leg of that order list; `pending`: a leg waiting for its working leg."""
        spec, qty, plan = self._validate(account, req, cid_scope, active=not pending)
        order_id = self._next_order_id
        self._next_order_id += 1
        cid = req.client_order_id or f"sim-{order_id:010d}"
        is_stop = req.type in STOP_TYPES
        symbol = spec.symbol
        price = req.price if req.type in LIMIT_PRICED and req.price is not None else ZERO
        stop = req.stop_price if is_stop and req.stop_price is not None else ZERO
        resting = req.type is not MARKET
        # a resting order locks its funds (engine_accounts.py) and is built holding them
        reserved = self._lock(account, spec, req.side, req.type, qty, price, stop) if resting else ZERO
        order = Order(
            order_id=order_id,
            account=account,
            symbol=symbol,
            side=req.side,
            type=req.type,
            time_in_force=req.time_in_force or GTC,
            client_order_id=cid,
            quantity=qty,
            price=price,
            stop_price=stop,
            quote_quantity=req.quote_quantity or ZERO,
            time=self.now,
            update_time=self.now,
            working_time=None if is_stop or pending else self.now,
            list_id=list_id,
            pending=pending,
            reserved=reserved,
        )
        self._orders[order_id] = order
        self._changed[order_id] = None
        self._cids[(account, cid)] = order_id
        if resting:
            self._open[symbol][order_id] = None
        if self.keep_record:  # else no balance event to note them in (engine_accounts.py `_touch`)
            self._touch(account, spec.base)
            self._touch(account, spec.quote)
        self._log_order("accepted", order)
        self._emit(EXEC_NEW, order)
        return order, plan


def triggers_on_fall(kind: OrderType, side: Side) -> bool:
    """Stop-loss: a sell triggers at or below its stop, a buy at or above; take-profit the reverse."""
    return (kind in (OrderType.STOP_LOSS, OrderType.STOP_LOSS_LIMIT)) == (side is SELL)


def stop_reached(kind: OrderType, side: Side, stop: Decimal, price: Decimal) -> bool:
    return price <= stop if triggers_on_fall(kind, side) else price >= stop


def _multiple_of(value: Decimal, increment: Decimal) -> bool:
    return increment <= 0 or value % increment == 0


def crosses(side: Side, price: Decimal, quote: Quote) -> bool:
    """A limit order at this price would take from the book (a buy at or over the ask)."""
    return price >= quote.ask if side is BUY else price <= quote.bid
