"""The engine's accounts: free and locked balances per asset, and every move between them.

Each account starts at the venue's start balances the first time anything names it. Every
change goes through `_move`, which refuses to let a balance go negative (CorruptState: the
venue stops rather than trade on a broken book) and notes the asset as touched, so the
operation's balance event (engine_events.py) carries its new value. A resting order locks
what it may spend (`_reserve`) and gives back what it did not (`_release`). Part of
`Engine` (a mixin: it works on the engine's own data).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from decimal import Decimal

from shared.matching.model import (
    LIMIT_PRICED,
    CorruptState,
    EngineError,
    Funds,
    Order,
    OrderType,
    Reject,
    Side,
)
from shared.matching.symbols import SymbolSpec
from shared.messages import BUY
from shared.money import ZERO


class Accounts:
    """Balances, deposits (`set_balance`), and the locks resting orders hold."""

    specs: dict[str, SymbolSpec]
    start_balances: dict[str, Decimal]
    _accounts: dict[str, dict[str, list[Decimal]]]  # account -> asset -> [free, locked]
    _touched: dict[str, dict[str, Decimal | None]]  # account -> asset -> delta from outside
    keep_record: bool  # engine_events.py

    def balances(self, account: str) -> dict[str, Funds]:
        return {asset: Funds(free, locked) for asset, (free, locked) in self._account(account).items()}

    def live_funds(self, account: str) -> Mapping[str, Sequence[Decimal]]:
        """The account's own [free, locked] row per asset, read-only and live: every operation
        moves them in place. For a reader that follows the account without a copy per look (the
        backtester's balances view); `balances` gives a snapshot."""
        return self._account(account)

    def balance(self, account: str, asset: str) -> Funds:
        free, locked = self._account(account).get(asset, [ZERO, ZERO])
        return Funds(free, locked)

    def _free(self, account: str, asset: str) -> Decimal:
        """`balance(account, asset).free` without building the Funds (every order's check)."""
        row = self._account(account).get(asset)
        return ZERO if row is None else row[0]

    def accounts(self) -> list[str]:
        return list(self._accounts)

    def set_balance(self, account: str, asset: str, free: Decimal) -> Funds:
        """Set the free amount (a deposit or withdrawal from outside); locked funds stay."""
        if free < 0:
            raise EngineError(Reject.BAD_PARAM, f"free balance of {asset} cannot be negative", param="free")
        with self._op():  # engine_events.py
            row = self._account(account).setdefault(asset, [ZERO, ZERO])
            delta = free - row[0]
            row[0] = free
            self._touch(account, asset, delta)
            return Funds(row[0], row[1])

    def _account(self, account: str) -> dict[str, list[Decimal]]:
        rows = self._accounts.get(account)
        if rows is None:
            rows = self._accounts[account] = {a: [amount, ZERO] for a, amount in self.start_balances.items()}
        return rows

    def _touch(self, account: str, asset: str, delta: Decimal | None = None) -> None:
        """Put the asset in this operation's balance event; `delta` for money from outside.
        Without keep_record there is no balance event (engine_events.py _flush): nothing to note."""
        if not self.keep_record:
            return
        assets = self._touched.setdefault(account, {})
        if delta is not None:
            assets[asset] = (assets.get(asset) or ZERO) + delta
        else:
            assets.setdefault(asset, None)

    def _move(self, account: str, asset: str, free: Decimal = ZERO, locked: Decimal = ZERO) -> None:
        """Every fill, lock and unlock comes here: kept to a few lookups (the backtest's hot path)."""
        rows = self._accounts.get(account)
        if rows is None:
            rows = self._account(account)
        row = rows.get(asset)
        if row is None:
            row = rows[asset] = [ZERO, ZERO]
        row[0] += free  # even a zero: Decimal addition sets the exponent the balance shows
        row[1] += locked
        if row[0] < 0 or row[1] < 0:  # corrupt state: stop rather than trade on
            raise CorruptState(f"negative balance {account}/{asset}: {row}")
        if self.keep_record:
            self._touch(account, asset)

    def _reserve(self, order: Order, spec: SymbolSpec) -> Order:
        """Lock what a resting order may spend: quote at its (stop) price for a buy, base for a sell."""
        amount = self._lock(
            order.account, spec, order.side, order.type, order.quantity, order.price, order.stop_price
        )
        return self._update(order, reserved=amount)  # engine_events.py

    def _lock(
        self,
        account: str,
        spec: SymbolSpec,
        side: Side,
        kind: OrderType,
        qty: Decimal,
        price: Decimal,
        stop: Decimal,
    ) -> Decimal:
        """`_reserve`'s funds, moved from free to locked, for an order of these terms; the amount
        is the caller's to note (a new order is built with it: no second update)."""
        if side is BUY:
            amount = qty * (price if kind in LIMIT_PRICED else stop)
            self._move(account, spec.quote, free=-amount, locked=amount)
        else:
            amount = qty
            self._move(account, spec.base, free=-amount, locked=amount)
        return amount

    def _release(self, order: Order) -> Order:
        """Unlock what the order still holds (it closes, or a stop-market turns into a market order)."""
        if self._unlock(order):
            order = self._update(order, reserved=ZERO)
        return order

    def _unlock(self, order: Order) -> bool:
        """The funds of `_release`, moved; the order's `reserved` is the caller's to clear (a
        closing order does it in the same update as its status). False: it held nothing."""
        if not order.reserved:
            return False
        spec = self.specs[order.symbol]
        asset = spec.quote if order.side is BUY else spec.base
        self._move(order.account, asset, free=order.reserved, locked=-order.reserved)
        return True
