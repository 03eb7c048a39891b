"""Order lists: OCO, OTO and OTOCO placed as one unit, as Binance runs them.

OCO: two legs on one side and one quantity, one above the last price and one below (a sell:
a LIMIT_MAKER or TAKE_PROFIT(_LIMIT) above, a STOP_LOSS(_LIMIT) below; a buy the reverse).
The list locks what it may spend once, not once a leg: the leg that needs the most holds the
lock (engine_accounts.py `_reserve`), the other none. When a leg trades (even in part) or its
stop triggers, the list "fires": the other leg is EXPIRED (giving its lock back) and the
firing leg locks what it may still spend.

OTO: a working leg (LIMIT or LIMIT_MAKER) and a pending one; OTOCO: a working leg and a pending
OCO pair. Pending legs are orders with `pending=True`: accepted (they have ids and show in the
queries) but not working and locking nothing, until the working leg has filled completely;
then they are checked and placed as new orders would be (a refusal expires them, reason
REJECTED). The working leg closing unfilled expires them (OTO_PHASE_ONE_EXPIRED) or, cancelled,
cancels them. Binance reports a pending leg's status as PENDING_NEW; the engine keeps the
OrderStatus NEW with `pending` set, and the protocol layers show it as their venue does.

A list is `done` (ALL_DONE) once its contingency has played out. Cancelling any leg cancels the
whole list, as on Binance. Part of `Engine` (a mixin: it works on the engine's own data).
"""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal

import msgspec

from shared.matching.model import (
    LIMIT_PRICED,
    STOP_TYPES,
    EngineError,
    ExecType,
    ListEvent,
    Order,
    OrderList,
    OrderRequest,
    OrderStatus,
    OrderType,
    PlacedList,
    Reject,
    Side,
    Trade,
)
from shared.matching.symbols import SymbolSpec
from shared.messages import LIST_LEGS, ListKind, oco_start, pending_leg

OCO_TRIGGER = "OCO_TRIGGER"  # Binance's expiry reasons (executionReport eR)
PHASE_ONE_EXPIRED = "OTO_PHASE_ONE_EXPIRED"
LEG_REJECTED = "REJECTED"

_LIMIT_LEGS = frozenset({OrderType.LIMIT_MAKER, OrderType.TAKE_PROFIT, OrderType.TAKE_PROFIT_LIMIT})
_STOP_LEGS = frozenset({OrderType.STOP_LOSS, OrderType.STOP_LOSS_LIMIT})
_WORKING_TYPES = frozenset({OrderType.LIMIT, OrderType.LIMIT_MAKER})


class Lists:
    """`place_list`, `cancel_list`, the list queries, and the hooks matching calls on a leg."""

    now: int
    specs: dict[str, SymbolSpec]
    _orders: dict[int, Order]
    _open: dict[str, dict[int, None]]
    _lists: dict[int, OrderList]
    _list_cids: dict[tuple[str, str], int]  # (account, list client order id) -> latest list
    _lists_changed: dict[int, None]
    _list_events: list[ListEvent]
    _next_list_id: int

    # ----------------------------------------------------------------- placing
    def place_list(
        self,
        account: str,
        kind: ListKind,
        requests: Sequence[OrderRequest],
        list_client_order_id: str | None = None,
        *,
        cid_scope: str = "open",
    ) -> PlacedList:
        """Accept every leg of the list or none (EngineError, nothing changed but the journal).
        Legs: OCO [above, below]; OTO [working, pending]; OTOCO [working, above, below]."""
        with self._op():
            symbol = requests[0].symbol if requests else ""
            try:
                self._check_list(account, kind, requests, list_client_order_id, cid_scope)
            except EngineError as exc:
                self._log_entry(
                    "rejected", account, symbol, client_order_id=list_client_order_id, reason=str(exc)
                )
                raise
            spec = self._spec(symbol)
            list_id = self._next_list_id
            self._next_list_id += 1
            lcid = list_client_order_id or f"sim-list-{list_id:010d}"
            legs: list[Order] = []
            plans = []
            for i, req in enumerate(requests):
                order, plan = self._accept(
                    account, req, cid_scope, list_id=list_id, pending=pending_leg(kind, i)
                )
                legs.append(self._release(order))
                plans.append(plan)
            order_list = OrderList(
                list_id=list_id,
                account=account,
                symbol=spec.symbol,
                kind=kind,
                list_client_order_id=lcid,
                order_ids=tuple(o.order_id for o in legs),
                leg_cids=tuple(o.client_order_id for o in legs),
                time=self.now,
                update_time=self.now,
            )
            self._lists[list_id] = order_list
            self._list_cids[(account, lcid)] = list_id
            self._list_changed(order_list)
            active = [o for o in legs if not o.pending]
            holder = max(active, key=lambda o: _need(o))  # lock once: what the neediest leg needs
            self._reserve(self._orders[holder.order_id], spec)
            self._log_list("list_placed", order_list)
            self._emit_list(order_list)
            trades: list[Trade] = []
            for order, plan in zip(legs, plans, strict=True):
                if not order.pending:
                    trades += self._execute(self._orders[order.order_id], plan)
            return PlacedList(self._lists[list_id], self._legs(order_list), trades)

    def _check_list(
        self,
        account: str,
        kind: ListKind,
        requests: Sequence[OrderRequest],
        lcid: str | None,
        cid_scope: str,
    ) -> None:
        """Binance's refusals of a list, then every leg's own checks, before anything changes."""
        if len(requests) != LIST_LEGS[kind]:
            raise EngineError(Reject.BAD_PARAM, f"an {kind} list has {LIST_LEGS[kind]} legs")
        spec = self._spec(requests[0].symbol)
        if any(r.symbol != spec.symbol for r in requests):
            raise EngineError(Reject.BAD_PARAM, "every leg must be on the list's symbol", param="symbol")
        cids = [r.client_order_id for r in requests if r.client_order_id]
        if len(set(cids)) != len(cids):
            raise EngineError(Reject.DUPLICATE_ORDER, "two legs with one client order id")
        if lcid:
            previous = self._list_cids.get((account, lcid))
            if previous is not None and (cid_scope == "ever" or not self._lists[previous].done):
                raise EngineError(Reject.DUPLICATE_ORDER, f"list client order id {lcid} is in use")
        if kind is not ListKind.OCO and requests[0].type not in _WORKING_TYPES:
            raise EngineError(
                Reject.OCO_TYPES, f"a working leg is LIMIT or LIMIT_MAKER, not {requests[0].type}"
            )
        if kind is not ListKind.OCO and any(r.type is OrderType.MARKET for r in requests[1:]):
            raise EngineError(Reject.OCO_TYPES, "a pending leg cannot be MARKET")
        pair = requests[oco_start(kind, len(requests)) :]
        if pair:
            self._check_oco(pair[0], pair[1], check_prices=kind is ListKind.OCO)
        if len(self.open_orders(account, spec.symbol)) + len(requests) > spec.max_num_orders:
            raise EngineError(Reject.MAX_NUM_ORDERS, f"{spec.max_num_orders} open orders on {spec.symbol}")
        for i, req in enumerate(requests):  # each alone against the free balance: the list locks the most
            self._validate(account, req, cid_scope, active=not pending_leg(kind, i))

    def _check_oco(self, above: OrderRequest, below: OrderRequest, *, check_prices: bool) -> None:
        if above.side is not below.side or above.quantity != below.quantity:
            raise EngineError(Reject.BAD_PARAM, "the two legs of an OCO have one side and one quantity")
        types = {above.type, below.type}
        if not types <= _LIMIT_LEGS | _STOP_LEGS:
            raise EngineError(Reject.OCO_TYPES, f"{above.type}/{below.type} in an OCO")
        if not types & _STOP_LEGS:
            raise EngineError(Reject.OCO_NOT_CONTINGENT, "one leg must be a STOP_LOSS(_LIMIT)")
        if not types & _LIMIT_LEGS:
            raise EngineError(Reject.OCO_TYPES, "one leg must be a LIMIT_MAKER or TAKE_PROFIT(_LIMIT)")
        sell = above.side is Side.SELL
        stop_leg = below if sell else above
        limit_leg = above if sell else below
        if stop_leg.type not in _STOP_LEGS:
            raise EngineError(Reject.OCO_LEG_PLACE, "stop loss leg", param="stop")
        if limit_leg.type is not OrderType.LIMIT_MAKER and limit_leg.type not in _LIMIT_LEGS:
            raise EngineError(Reject.OCO_LEG_PLACE, "limit leg", param="limit")
        if not check_prices:
            return
        last = self.quote(above.symbol).price
        hi, lo = _level(above), _level(below)
        if hi is None or lo is None:
            return  # a missing price or stop: the leg's own check names it
        if not hi > last > lo:
            raise EngineError(Reject.OCO_BAD_PRICES, f"above {hi} > last {last} > below {lo} does not hold")

    # ----------------------------------------------------------------- cancelling
    def cancel_list(
        self,
        account: str,
        symbol: str,
        *,
        list_id: int | None = None,
        list_client_order_id: str | None = None,
        cancel_client_order_id: str | None = None,
    ) -> PlacedList:
        """Cancel every open leg; the list is done. A done list cannot be cancelled (NOT_OPEN)."""
        with self._op():
            order_list = self.get_list(account, list_id=list_id, list_client_order_id=list_client_order_id)
            if order_list.symbol != self._spec(symbol).symbol:
                raise EngineError(Reject.UNKNOWN_LIST, f"order list {order_list.list_id} is not on {symbol}")
            if order_list.done:
                raise EngineError(Reject.NOT_OPEN, f"order list {order_list.list_id} is done")
            self._cancel_legs(order_list, cancel_client_order_id)
            return PlacedList(self._lists[order_list.list_id], self._legs(order_list), [])

    def _cancel_legs(self, order_list: OrderList, cancel_client_order_id: str | None) -> None:
        for oid in order_list.order_ids:
            order = self._orders[oid]
            if order.is_open:
                order = self._update(order, cancel_client_order_id=cancel_client_order_id)
                self._close(order, OrderStatus.CANCELED, ExecType.CANCELED)
        self._finish_list(self._lists[order_list.list_id])

    # ----------------------------------------------------------------- queries
    def get_list(
        self, account: str, *, list_id: int | None = None, list_client_order_id: str | None = None
    ) -> OrderList:
        """By list id, else by list client order id (the latest list that carried it)."""
        if list_id is None and not list_client_order_id:
            raise EngineError(Reject.MISSING_PARAM, "order list id or list client order id", param="list_id")
        if list_id is None:
            list_id = self._list_cids.get((account, list_client_order_id or ""))
        found = self._lists.get(list_id) if list_id is not None else None
        if found is None or found.account != account:
            raise EngineError(Reject.UNKNOWN_LIST, f"no order list {list_id or list_client_order_id}")
        if list_client_order_id and found.list_client_order_id != list_client_order_id:
            raise EngineError(Reject.UNKNOWN_LIST, f"order list {list_id} is not {list_client_order_id}")
        return found

    def open_lists(self, account: str) -> list[OrderList]:
        return [x for x in self._lists.values() if x.account == account and not x.done]

    def all_lists(
        self,
        account: str,
        *,
        from_id: int | None = None,
        start_time: int | None = None,
        end_time: int | None = None,
        limit: int | None = None,
    ) -> list[OrderList]:
        """Every list of the account, oldest first (the latest `limit`, or the first from `from_id`)."""
        found = [
            x
            for x in self._lists.values()
            if x.account == account
            and (from_id is None or x.list_id >= from_id)
            and (start_time is None or x.time >= start_time)
            and (end_time is None or x.time <= end_time)
        ]
        if limit is None:
            return found
        return found[:limit] if from_id is not None else found[-limit:] if limit > 0 else []

    def list_orders(self, order_list: OrderList) -> list[Order]:
        """The legs' current states, in the list's order."""
        return self._legs(order_list)

    def _legs(self, order_list: OrderList) -> list[Order]:
        return [self._orders[oid] for oid in order_list.order_ids]

    # ----------------------------------------------------------------- hooks from matching
    def _leg_fires(self, order: Order) -> None:
        """A leg is about to trade or its stop triggered: an OCO's other leg expires, and this
        leg locks what it may spend if the other held the list's lock."""
        order_list = self._lists[order.list_id]
        if order_list.done or order_list.kind is ListKind.OTO or order.pending:
            return
        if order_list.kind is ListKind.OTOCO and order.order_id == order_list.order_ids[0]:
            return  # the working leg: its pending legs wait for it to fill (_leg_filled)
        for oid in order_list.order_ids:
            other = self._orders[oid]
            if oid != order.order_id and other.is_open and not other.pending:
                self._close(other, OrderStatus.EXPIRED, ExecType.EXPIRED, reason=OCO_TRIGGER)
        self._finish_list(order_list)
        order = self._orders[order.order_id]
        if not order.reserved and order.type in LIMIT_PRICED:
            self._reserve(order, self.specs[order.symbol])

    def _leg_closed(self, order: Order) -> None:
        """A leg filled, or closed unfilled: the pending legs start, expire or are cancelled."""
        order_list = self._lists[order.list_id]
        if order_list.done:
            return
        working = order_list.kind is not ListKind.OCO and order.order_id == order_list.order_ids[0]
        if working and order.status is OrderStatus.FILLED:
            self._start_pending(order_list)
        elif working:
            cancelled = order.status is OrderStatus.CANCELED
            status = OrderStatus.CANCELED if cancelled else OrderStatus.EXPIRED
            reason = None if cancelled else PHASE_ONE_EXPIRED
            for oid in order_list.order_ids[1:]:
                if self._orders[oid].is_open:
                    self._close(self._orders[oid], status, ExecType(status.value), reason=reason)
        if not any(self._orders[oid].is_open for oid in order_list.order_ids):
            self._finish_list(order_list)

    def _start_pending(self, order_list: OrderList) -> None:
        """The working leg filled: the pending legs start working, locking (once) what they may
        spend; too little free now expires them (reason REJECTED, as Binance's eR)."""
        spec = self.specs[order_list.symbol]
        started = [
            self._update(self._orders[oid], pending=False, working_time=self._working_time(oid))
            for oid in order_list.order_ids[1:]
        ]
        holder = max(started, key=_need)
        asset = spec.quote if holder.side is Side.BUY else spec.base
        if self.balance(holder.account, asset).free < _need(holder):
            for leg in started:
                self._close(leg, OrderStatus.EXPIRED, ExecType.EXPIRED, reason=LEG_REJECTED)
            return
        self._reserve(holder, spec)
        for leg in started:
            self._log_order("activated", self._orders[leg.order_id])
            self._emit(ExecType.NEW, self._orders[leg.order_id])
        self._emit_list(order_list)  # Binance: EXEC_STARTED again, "an update to the order list status"
        for leg in started:
            self._execute(self._orders[leg.order_id], [])

    def _working_time(self, order_id: int) -> int | None:
        return None if self._orders[order_id].type in STOP_TYPES else self.now

    def _finish_list(self, order_list: OrderList) -> None:
        if order_list.done:
            return
        done = msgspec.structs.replace(order_list, done=True, update_time=self.now)
        self._lists[done.list_id] = done
        self._list_changed(done)
        self._log_list("list_done", done)
        self._emit_list(done)

    # ----------------------------------------------------------------- records
    def _list_changed(self, order_list: OrderList) -> None:
        self._lists_changed[order_list.list_id] = None

    def _log_list(self, kind: str, order_list: OrderList) -> None:
        self._log_entry(
            kind,
            order_list.account,
            order_list.symbol,
            client_order_id=order_list.list_client_order_id,
            status="ALL_DONE" if order_list.done else "EXECUTING",
            order_list=order_list,
        )

    def _emit_list(self, order_list: OrderList) -> None:
        """Delivered after the operation's order events (engine_events.py), as Binance sends
        listStatus after the executionReports of the legs."""
        self._list_events.append(ListEvent(account=order_list.account, order_list=order_list, time=self.now))


def _need(order: Order) -> Decimal:
    """What a leg would lock: quote at its (stop) price for a buy, base for a sell."""
    if order.side is Side.SELL:
        return order.quantity
    return order.quantity * (order.price if order.type in LIMIT_PRICED else order.stop_price)


def _level(req: OrderRequest) -> Decimal | None:
    """The price an OCO leg sits at: a limit's price, a stop's (or take profit's) stop price."""
    if req.type in (OrderType.LIMIT_MAKER, OrderType.TAKE_PROFIT_LIMIT):
        return req.price
    return req.stop_price


def _request_of(order: Order) -> OrderRequest:
    """A pending leg as the request it was (it is checked again when it starts)."""
    return OrderRequest(
        symbol=order.symbol,
        side=order.side,
        type=order.type,
        quantity=order.quantity,
        price=order.price if order.type in LIMIT_PRICED else None,
        stop_price=order.stop_price if order.type in STOP_TYPES else None,
        time_in_force=order.time_in_force,
        client_order_id=order.client_order_id,
    )
