"""The engine's saved state: what a snapshot keeps of it, and how a restarted venue starts from it.

store.py writes the `EngineState` this returns (with its change log) and venue.py hands it
back to `restore` on start, so a restarted venue has the balances, open orders and id counters
it had. Closed orders and trades are capped (the store's KEEP_* limits): a snapshot stays a
few MB however long the venue ran. Part of `Engine` (a mixin: it works on the engine's own data).
"""

from __future__ import annotations

from decimal import Decimal

from shared.matching.model import EngineState, Funds, Order, OrderList, Trade
from shared.money import ZERO


class SavedState:
    """`state` to save, `restore` to start from what was saved."""

    start_balances: dict[str, Decimal]
    _accounts: dict[str, dict[str, list[Decimal]]]
    _orders: dict[int, Order]
    _open: dict[str, dict[int, None]]
    _cids: dict[tuple[str, str], int]
    _trades: list[Trade]
    _next_order_id: int
    _next_trade_id: dict[str, int]
    _lists: dict[int, OrderList]
    _list_cids: dict[tuple[str, str], int]
    _next_list_id: int

    def state(self, keep_closed: int, keep_trades: int) -> EngineState:
        """Accounts, open orders and the latest `keep_closed` closed ones, the latest trades."""
        closed = (
            [oid for oid, o in self._orders.items() if not o.is_open][-keep_closed:] if keep_closed else []
        )
        kept = {oid for oid, o in self._orders.items() if o.is_open} | set(closed)
        return EngineState(
            accounts={a: {k: Funds(*row) for k, row in rows.items()} for a, rows in self._accounts.items()},
            orders=[self._orders[oid] for oid in sorted(kept)],
            trades=self._trades[-keep_trades:] if keep_trades else [],
            next_order_id=self._next_order_id,
            next_trade_id=dict(self._next_trade_id),
            lists=[x for x in self._lists.values() if kept.intersection(x.order_ids)],
            next_list_id=self._next_list_id,
        )

    def restore(self, state: EngineState) -> None:
        """Start from a saved state (a restarted venue): the book and balances as they were."""
        self.reset()  # engine.py
        for account, rows in state.accounts.items():  # an asset never touched: its start balance
            self._accounts[account] = {a: [amount, ZERO] for a, amount in self.start_balances.items()}
            self._accounts[account].update({k: [b.free, b.locked] for k, b in rows.items()})
        for order in sorted(state.orders, key=lambda o: o.order_id):
            self._orders[order.order_id] = order
            self._cids[(order.account, order.client_order_id)] = order.order_id
            if order.is_open and order.symbol in self._open:
                self._open[order.symbol][order.order_id] = None
        for order_list in state.lists:
            self._lists[order_list.list_id] = order_list
            self._list_cids[(order_list.account, order_list.list_client_order_id)] = order_list.list_id
        self._next_list_id = state.next_list_id
        self._trades = list(state.trades)
        self._next_order_id = state.next_order_id
        for symbol, value in state.next_trade_id.items():
            if symbol in self._next_trade_id:
                self._next_trade_id[symbol] = value
