"""What one engine operation tells the world: events to listeners, the journal, the change feed.

An operation (a placed order, a price step, a cancel, a deposit) may change many orders and
balances. Listeners (the protocol layers' streams) must see them in order and whole, and the
store (store.py) must write them before the request is answered, so nothing is delivered
mid-operation: `_op` groups the events and `_flush` hands them over when the outermost
operation ends, balances last, as the real venues push an execution report before the
balance update it caused. Part of `Engine` (a mixin: it works on the engine's own data).
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable
from decimal import Decimal

import msgspec

from shared.matching.model import (
    BalanceEvent,
    CorruptState,
    Event,
    ExecType,
    Funds,
    JournalEntry,
    Listener,
    ListEvent,
    Order,
    OrderEvent,
    OrderList,
    Trade,
)
from shared.money import ZERO
from shared.order_lifecycle import TRANSITIONS, IllegalTransition, check_transition

FORGET_AFTER = 1024  # closed orders a backtest's engine keeps before it drops them (_forget_closed)

log = logging.getLogger("exchange_sim.engine")


class _Operation:
    """`with engine._op():` — a class rather than a generator context manager: it wraps every
    order, cancel and price step, on the paper venue's and the backtester's hot paths."""

    __slots__ = ("events",)

    def __init__(self, events: Events) -> None:
        self.events = events

    def __enter__(self) -> None:
        self.events._depth += 1

    def __exit__(self, *exc: object) -> None:
        events = self.events
        events._depth -= 1
        if events._depth == 0:
            events._flush()


class Events:
    """Listeners, the journal and the per-operation record of changed orders, trades and balances."""

    now: int
    on_change: Callable[[list[Order], list[Trade], list[OrderList]], None] | None
    _listeners: list[Listener]
    _orders: dict[int, Order]
    _cids: dict[tuple[str, str], int]
    _forget_at: int  # without keep_record: orders kept before the closed ones are dropped
    _journal: list[JournalEntry]
    _pending: list[Event]
    _touched: dict[str, dict[str, Decimal | None]]
    _changed: dict[int, None]
    _made: list[Trade]
    _lists: dict[int, OrderList]
    _lists_changed: dict[int, None]
    _list_events: list[ListEvent]
    _depth: int
    keep_record: bool  # the journal and balance events: the venue's; a backtest does without

    def add_listener(self, listener: Listener) -> None:
        """Called synchronously, after each operation, with its events in order."""
        self._listeners.append(listener)

    def remove_listener(self, listener: Listener) -> None:
        with contextlib.suppress(ValueError):
            self._listeners.remove(listener)

    def journal(self, since: int = 0, account: str | None = None) -> list[JournalEntry]:
        """Entries with seq > since, oldest first."""
        return [e for e in self._journal[since:] if account is None or e.account == account]

    def _op(self) -> _Operation:
        """Group the events of one operation; deliver them (balances last) when it ends."""
        return _Operation(self)

    def _flush(self) -> None:
        if self._list_events:  # after the order events, before the balances
            self._pending += self._list_events
            self._list_events = []
        if self._touched:  # empty without keep_record (engine_accounts.py `_touch`)
            for account, assets in self._touched.items() if self.keep_record else ():
                rows = self._account(account)  # engine_accounts.py
                deltas = {a: d for a, d in assets.items() if d is not None}
                self._pending.append(
                    BalanceEvent(
                        account=account,
                        time=self.now,
                        balances={a: Funds(*rows.get(a, [ZERO, ZERO])) for a in assets},
                        deltas=deltas or None,
                    )
                )
            self._touched = {}
        if self._changed or self._made or self._lists_changed:  # else nothing to tell or reset
            if self.on_change is not None:
                lists = [self._lists[lid] for lid in self._lists_changed]
                self.on_change([self._orders[oid] for oid in self._changed], self._made, lists)
            self._changed, self._made, self._lists_changed = {}, [], {}
            if not self.keep_record and len(self._orders) > self._forget_at:
                self._forget_closed()
        if not self._pending:
            return
        events, self._pending = self._pending, []
        for event in events:
            for listener in list(self._listeners):
                try:
                    listener(event)
                except Exception:  # a protocol layer's bug must not corrupt the book
                    log.exception("engine listener failed")

    def _forget_closed(self) -> None:
        """Without keep_record, closed orders are dropped once they pile up (a list's legs stay
        while their list may still be asked about): nothing asks for them again, and a year's
        backtest would hold every one. An operation's events carry its orders whole. Scanned
        only when the orders kept have doubled since the last time: short runs never pay."""
        orders, cids = self._orders, self._cids
        for oid, order in list(orders.items()):
            if order.list_id < 0 and not order.is_open:
                del orders[oid]
                key = (order.account, order.client_order_id or "")
                if cids.get(key) == oid:
                    del cids[key]
        self._forget_at = FORGET_AFTER + 2 * len(orders)

    def _log_entry(self, kind: str, account: str, symbol: str, **fields: object) -> None:
        if not self.keep_record:
            return
        self._journal.append(
            JournalEntry(
                seq=len(self._journal) + 1, time=self.now, kind=kind, account=account, symbol=symbol, **fields
            )  # type: ignore[arg-type]
        )

    def _log_order(self, kind: str, order: Order, trade: Trade | None = None) -> None:
        if not self.keep_record:
            return
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
        """The order's new state, checked against the transition table and noted as changed."""
        status = changes.get("status")
        if status is not None and status not in TRANSITIONS[order.status]:  # refused: say why
            try:
                check_transition(order.status, status)  # type: ignore[arg-type]
            except IllegalTransition as exc:
                raise CorruptState(f"order {order.order_id}: {exc}") from None
        new = msgspec.structs.replace(order, update_time=self.now, **changes)
        self._orders[new.order_id] = new
        self._changed[new.order_id] = None
        return new

    def _emit(self, exec_type: ExecType, order: Order, trade: Trade | None = None) -> None:
        self._pending.append(
            OrderEvent(account=order.account, exec_type=exec_type, order=order, trade=trade, time=self.now)
        )
