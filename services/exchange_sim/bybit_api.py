"""The Bybit V5 spot endpoints, independent of transport: each takes Params, returns `result`.

Lists come newest first, as Bybit returns them, in pages of `limit` with an opaque
`nextPageCursor` (the position of the last item returned, stable while new items arrive).
"""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal
from typing import Any, TypeVar

from services.exchange_sim import bybit_errors as E
from services.exchange_sim import bybit_format as bf
from services.exchange_sim.bybit_batch import Batch, run_batch
from services.exchange_sim.bybit_errors import BybitError, params_error
from services.exchange_sim.bybit_orders import QUERY_FILTERS, from_engine, parse_amend, parse_create
from services.exchange_sim.bybit_params import Params
from services.exchange_sim.bybit_state import ACCOUNT, BybitFace
from services.exchange_sim.bybit_tape import RECENT, rest_trade
from services.exchange_sim.bybit_topics import KLINE_INTERVALS
from services.exchange_sim.telemetry import sim_metrics
from services.exchange_sim.venue import Venue
from shared.candle_files import INTERVAL_MS
from shared.matching.engine import EngineError, Order, OrderRequest, Reject, Trade
from shared.money import ZERO, fmt

PROTOCOL = "bybit"
WEEK_MS = 7 * 24 * 3600 * 1000
STATUS_FILTERS = {  # Bybit's orderStatus values; Triggered is only pushed, so it finds nothing
    "New",
    "PartiallyFilled",
    "Untriggered",
    "Triggered",
    "Filled",
    "Cancelled",
    "PartiallyFilledCanceled",
    "Rejected",
    "Deactivated",
}
T = TypeVar("T")


def _order_filter(p: Params) -> str:
    """A cancel's orderFilter: spot cancels `Order` (active orders) unless told otherwise."""
    order_filter = p.text("orderFilter") or "Order"
    if order_filter not in QUERY_FILTERS:
        raise BybitError(E.INVALID_ORDER_FILTER)
    return order_filter


def _page(items: Sequence[T], p: Params, *, default: int, hi: int) -> tuple[list[T], str]:
    """Newest-first page of an oldest-first list; the cursor is the position of the last item."""
    limit = p.integer("limit", default=default, lo=1, hi=hi) or default
    end = len(items)
    cursor = p.text("cursor")
    if cursor is not None:
        if not cursor.isdigit():
            raise params_error("params error: cursor invalid")
        end = min(end, int(cursor))
    start = max(0, end - limit)
    page = list(reversed(items[start:end]))
    return page, str(start) if start > 0 else ""


class BybitApi:
    def __init__(self, venue: Venue, face: BybitFace) -> None:
        self.venue, self.face = venue, face
        self.engine, self.market = venue.engine, venue.market

    # ----------------------------------------------------------------- market
    def time(self, _p: Params) -> dict[str, Any]:
        now = self.venue.clock.now_ms()
        return {"timeSecond": str(now // 1000), "timeNano": str(now * 1_000_000)}

    def instruments(self, p: Params) -> dict[str, Any]:
        p.category()
        symbol = p.text("symbol")
        specs = [s for name, s in self.engine.specs.items() if symbol in (None, name)]
        return {"category": bf.CATEGORY, "list": [bf.instrument_json(s) for s in specs], "nextPageCursor": ""}

    def kline(self, p: Params) -> dict[str, Any]:
        p.category()
        symbol = self._market_symbol(p, required=True)
        interval = p.required("interval")
        if interval not in KLINE_INTERVALS:
            raise params_error("params error: interval invalid")
        interval_ms = INTERVAL_MS[KLINE_INTERVALS[interval]]
        start, end = p.integer("start"), p.integer("end")
        limit = p.integer("limit", default=200, lo=1, hi=1000) or 200
        fetch = limit if start is None else 10**9  # with start: the newest `limit` of the range
        bars = self.market.klines(symbol, interval_ms, start=start, end=end, limit=fetch)
        live = self.market.bar(symbol, interval_ms)
        in_range = (start is None or live.open_time >= start) and (end is None or live.open_time <= end)
        if in_range and (not bars or live.open_time > bars[-1].open_time):
            bars.append(live)  # Bybit lists the candle in progress too
        rows = [bf.kline_row(c) for c in reversed(bars[-limit:])]
        return {"category": bf.CATEGORY, "symbol": symbol, "list": rows}

    def tickers(self, p: Params) -> dict[str, Any]:
        p.category()
        symbol = self._market_symbol(p, required=False)
        symbols = [symbol] if symbol else self.market.symbols
        rows = [bf.rest_ticker(s, self._quote(s), self.market.window(s)) for s in symbols]
        return {"category": bf.CATEGORY, "list": rows}

    def orderbook(self, p: Params) -> dict[str, Any]:
        p.category()
        symbol = self._market_symbol(p, required=True)
        depth = self.engine.depth(symbol, p.integer("limit", default=1, lo=1, hi=200) or 1)
        now = self.market.time

        def side(levels: list[tuple[Decimal, Decimal]]) -> list[list[str]]:
            return [[fmt(price), fmt(qty)] for price, qty in levels]

        return {"s": symbol, "b": side(depth.bids), "a": side(depth.asks), "ts": now, "u": self.market.steps,
                "seq": self.market.steps, "cts": now}  # fmt: skip

    def recent_trades(self, p: Params) -> dict[str, Any]:
        p.category()
        symbol = self._market_symbol(p, required=True)
        assert symbol is not None
        limit = p.integer("limit", default=RECENT, lo=1, hi=RECENT) or RECENT
        return {
            "category": bf.CATEGORY,
            "list": [rest_trade(t) for t in self.face.tape.recent(symbol, limit)],
        }

    # ----------------------------------------------------------------- trade
    def create(self, p: Params) -> dict[str, Any]:
        new = parse_create(p, self.engine)
        try:
            with self.face.placing(new.stop_order_type):
                placed = self.engine.place(ACCOUNT, new.request, cid_scope="ever")
        except EngineError as exc:
            sim_metrics().orders.labels(PROTOCOL, "rejected").inc()
            raise from_engine(exc, new.request, self.engine) from None
        sim_metrics().orders.labels(PROTOCOL, "accepted").inc()
        return {"orderId": str(placed.order.order_id), "orderLinkId": placed.order.client_order_id}

    def amend(self, p: Params) -> dict[str, Any]:
        """Change an open order's qty, price or (before its trigger) triggerPrice in place."""
        p.category()
        symbol = self._order_symbol(p, required=True)
        assert symbol is not None
        change = parse_amend(p, self.engine.specs[symbol])
        order = self.face.find(change.order_id, change.link_id, symbol)
        if order is None:
            raise BybitError(E.ORDER_NOT_FOUND)
        try:
            amended = self.engine.amend(
                ACCOUNT,
                symbol,
                order_id=order.order_id,
                quantity=change.qty,
                price=change.price,
                stop_price=change.trigger,
            )
        except EngineError as exc:  # a new price outside the band gets Buy/Sell's own code
            if exc.reason is Reject.WOULD_TRIGGER and change.trigger is not None:  # as on create
                rising = bf.trigger_direction(order) == 1
                last = fmt(self.engine.quote(symbol).price)
                raise BybitError(
                    E.EXPECT_RISING if rising else E.EXPECT_FALLING, fmt_args=(fmt(change.trigger), last)
                ) from None
            priced = OrderRequest(symbol=symbol, side=order.side, type=order.type, price=change.price)
            raise from_engine(exc, priced, self.engine) from None
        return {"orderId": str(amended.order.order_id), "orderLinkId": amended.order.client_order_id}

    def cancel(self, p: Params) -> dict[str, Any]:
        p.category()
        symbol = self._order_symbol(p, required=True)
        order_id, link_id = p.text("orderId"), p.text("orderLinkId")
        if not order_id and not link_id:
            raise params_error("params error: orderId or orderLinkId is required")
        order = self.face.find(order_id, link_id, symbol)
        if order is None or not self.face.in_filter(order, _order_filter(p)):
            raise BybitError(E.ORDER_NOT_FOUND)
        try:
            order = self.engine.cancel(ACCOUNT, order.symbol, order_id=order.order_id)
        except EngineError as exc:
            raise from_engine(exc, None, self.engine) from None
        return {"orderId": str(order.order_id), "orderLinkId": order.client_order_id}

    def create_batch(self, p: Params) -> Batch:
        return run_batch(p, self.create, created_at=self.engine.now)

    def amend_batch(self, p: Params) -> Batch:
        return run_batch(p, self.amend)

    def cancel_batch(self, p: Params) -> Batch:
        return run_batch(p, self.cancel)

    def cancel_all(self, p: Params) -> dict[str, Any]:
        p.category()
        symbol = self._order_symbol(p, required=False)
        order_filter = _order_filter(p)
        cancelled: list[Order] = []
        for name in [symbol] if symbol else list(self.engine.specs):
            for order in self.engine.open_orders(ACCOUNT, name):
                if self.face.in_filter(order, order_filter):
                    cancelled.append(self.engine.cancel(ACCOUNT, name, order_id=order.order_id))
        rows = [{"orderId": str(o.order_id), "orderLinkId": o.client_order_id} for o in cancelled]
        return {"list": rows, "success": "1"}

    def realtime(self, p: Params) -> dict[str, Any]:
        """Open orders; openOnly=1 the recent closed ones; by orderId/orderLinkId any status."""
        p.category()
        symbol = self._order_symbol(p, required=False)
        order_id, link_id = p.text("orderId"), p.text("orderLinkId")
        if order_id or link_id:
            order = self.face.find(order_id, link_id, symbol)
            orders = [order] if order is not None else []
        elif (p.integer("openOnly", default=0, lo=0, hi=2) or 0) == 0:
            orders = self.engine.open_orders(ACCOUNT, symbol)
            orders.sort(key=lambda o: o.order_id)
        else:
            orders = [o for o in self.engine.orders(ACCOUNT, symbol) if not o.is_open][-500:]
        return self._order_page(orders, p)

    def history(self, p: Params) -> dict[str, Any]:
        p.category()
        symbol = self._order_symbol(p, required=False)
        order_id, link_id = p.text("orderId"), p.text("orderLinkId")
        if order_id or link_id:
            order = self.face.find(order_id, link_id, symbol)
            return self._order_page([order] if order is not None else [], p)
        start, end = self._window(p)
        orders = self.engine.orders(ACCOUNT, symbol, start_time=start, end_time=end)
        status = p.text("orderStatus")
        if status is not None:
            if status not in STATUS_FILTERS:
                raise params_error("params error: orderStatus invalid")
            orders = [o for o in orders if bf.order_status(o) == status]
        return self._order_page(orders, p)

    def executions(self, p: Params) -> dict[str, Any]:
        p.category()
        symbol = self._order_symbol(p, required=False)
        order_id, link_id = p.text("orderId"), p.text("orderLinkId")
        if order_id or link_id:
            order = self.face.find(order_id, link_id, symbol)
            trades = self.engine.trades(ACCOUNT, order_id=order.order_id) if order is not None else []
        else:
            start, end = self._window(p)
            trades = self.engine.trades(ACCOUNT, symbol, start_time=start, end_time=end)
        exec_type = p.text("execType")
        if exec_type not in (None, "Trade"):
            trades = []
        page, cursor = _page(trades, p, default=50, hi=100)
        rows = [self.face.execution_json(t, order, left) for t, order, left in self._with_leaves(page)]
        return {"category": bf.CATEGORY, "list": rows, "nextPageCursor": cursor}

    # ----------------------------------------------------------------- account
    def wallet(self, p: Params) -> dict[str, Any]:
        account_type = p.required("accountType")
        if account_type != bf.ACCOUNT_TYPE:
            raise params_error(f"params error: accountType {account_type} is not supported, use UNIFIED")
        balances = self.engine.balances(ACCOUNT)
        wanted = p.text("coin")
        if wanted:
            names = [c.strip().upper() for c in wanted.split(",") if c.strip()]
            balances = {c: self.engine.balance(ACCOUNT, c) for c in names}
        else:
            balances = {c: b for c, b in balances.items() if b.free + b.locked > 0}
        return {"list": [bf.wallet_json(self.face.coins(balances))]}

    def fee_rates(self, p: Params) -> dict[str, Any]:
        """The venue's one maker and taker rate (SIM_MAKER_FEE / SIM_TAKER_FEE) for each symbol."""
        p.category()
        symbol = self._order_symbol(p, required=False)
        rates = {"takerFeeRate": fmt(self.engine.taker_fee), "makerFeeRate": fmt(self.engine.maker_fee)}
        names = [symbol] if symbol else list(self.engine.specs)
        return {"category": bf.CATEGORY, "list": [{"symbol": name, **rates} for name in names]}

    # ----------------------------------------------------------------- helpers
    def _market_symbol(self, p: Params, *, required: bool) -> str | None:
        symbol = p.required("symbol") if required else p.text("symbol")
        if symbol is not None and symbol not in self.market.symbols:
            raise params_error("Not supported symbols")
        return symbol

    def _order_symbol(self, p: Params, *, required: bool) -> str | None:
        symbol = p.required("symbol") if required else p.text("symbol")
        if symbol is not None and symbol not in self.engine.specs:
            raise BybitError(E.INVALID_SYMBOL)
        return symbol

    def _quote(self, symbol: str) -> Any:
        try:
            return self.engine.quote(symbol)
        except EngineError as exc:
            raise from_engine(exc, None, self.engine) from None

    def _window(self, p: Params) -> tuple[int | None, int | None]:
        """startTime/endTime; neither given: the last 7 days of market time, as Bybit defaults."""
        start, end = p.integer("startTime"), p.integer("endTime")
        if start is None and end is None:
            return self.engine.now - WEEK_MS, None
        return start, end

    def _order_page(self, orders: list[Order], p: Params) -> dict[str, Any]:
        """A page of orders; with orderFilter only those placed with it (else all kinds)."""
        order_filter = p.text("orderFilter")
        if order_filter is not None:
            if order_filter not in QUERY_FILTERS:
                raise BybitError(E.INVALID_ORDER_FILTER)
            orders = [o for o in orders if self.face.placed_as(o) == order_filter]
        page, cursor = _page(orders, p, default=20, hi=50)
        return {
            "category": bf.CATEGORY,
            "list": [self.face.order_json(o) for o in page],
            "nextPageCursor": cursor,
        }

    def _with_leaves(self, trades: list[Trade]) -> list[tuple[Trade, Order, Decimal]]:
        """Each trade with its order and the quantity the order still had open after it."""
        after: dict[tuple[str, int], Decimal] = {}
        orders: dict[int, Order] = {}
        for order_id in {t.order_id for t in trades}:
            order = self.engine.find_order(order_id)
            assert order is not None
            orders[order_id] = order
            done = ZERO
            for t in self.engine.trades(ACCOUNT, order.symbol, order_id=order_id):
                done += t.qty
                after[(t.symbol, t.trade_id)] = order.quantity - done
        return [(t, orders[t.order_id], after[(t.symbol, t.trade_id)]) for t in trades]
