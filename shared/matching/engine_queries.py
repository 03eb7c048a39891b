"""What the engine answers without changing anything: symbols, the quote, the book, orders, trades.

The protocol layers' read endpoints (exchangeInfo aside) come here, and so do the engine's own
checks and fills: `_plan` is the walk of the synthetic book (book.py) that prices a market
order when it is validated, when it executes and when a stop triggers, so all three see the
same levels. Part of `Engine` (a mixin: it works on the engine's own data).
"""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal

from shared.matching import book
from shared.matching.model import MAX_BOOK_LEVELS, Depth, EngineError, Order, Quote, Reject, Side, Trade
from shared.matching.symbols import SymbolSpec
from shared.messages import BUY, SELL


class Queries:
    """Lookups by symbol, account and id; the quote and the book around it."""

    specs: dict[str, SymbolSpec]
    _orders: dict[int, Order]
    _open: dict[str, dict[int, None]]  # symbol -> ids of its open orders, oldest first
    _cids: dict[tuple[str, str], int]  # (account, client order id) -> the latest order with it
    _trades: list[Trade]
    _quotes: dict[str, Quote]

    def quote(self, symbol: str) -> Quote:
        # only a listed symbol has a quote (keyed by its spec's name): a hit needs no spec lookup
        quote = self._quotes.get(symbol)
        if quote is None:
            self._spec(symbol)
            raise EngineError(Reject.MARKET_CLOSED, f"{symbol} has no price yet")
        return quote

    def depth(self, symbol: str, limit: int = 100) -> Depth:
        """The synthetic book: `limit` levels each side around the last price."""
        limit = max(1, min(limit, MAX_BOOK_LEVELS))
        return Depth(
            bids=list(self._levels(symbol, SELL, limit)),
            asks=list(self._levels(symbol, BUY, limit)),
        )

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

    def _spec(self, symbol: str | None) -> SymbolSpec:
        spec = self.specs.get(symbol or "")
        if spec is None:
            raise EngineError(Reject.UNKNOWN_SYMBOL, f"unknown symbol {symbol!r}", param="symbol")
        return spec

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
        """The fills a taker gets walking the book: up to `qty` (or `quote_qty` worth), no worse than `limit_price`."""
        return book.plan(
            self._spec(symbol),
            self.quote(symbol),
            side,
            qty=qty,
            quote_qty=quote_qty,
            limit_price=limit_price,
        )


def _limited(items: list, limit: int | None, *, from_start: bool) -> list:
    """The first `limit` items when paging forward from an id, else the latest `limit`."""
    if limit is None:
        return items
    return items[:limit] if from_start else items[-limit:] if limit > 0 else []
