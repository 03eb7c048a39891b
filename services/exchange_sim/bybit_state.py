"""What the Bybit face keeps beside the engine, shared by its REST and WebSocket halves.

The engine is protocol-neutral, so a few Bybit facts live here: fees per order (cumExecFee,
cumFeeDetail), the orderFilter an order was placed with (stopOrderType), the conditional
orders whose trigger the `order` topic has not told yet (Triggered), and a message counter for
deterministic topic ids. All of it is rebuilt from events (the fees and the untriggered
orders, at a resumed start, from what the venue kept) and cleared on reset.
"""

from __future__ import annotations

import contextlib
from collections import defaultdict
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import msgspec
from aiohttp import web

from services.exchange_sim import bybit_format as bf
from services.exchange_sim.venue import Venue
from shared.matching.engine import EngineError, Event, ExecType, Funds, Order, OrderEvent, OrderStatus, Trade
from shared.matching.model import STOP_TYPES
from shared.money import ZERO, fmt

ACCOUNT = "bybit"  # the engine account the Bybit protocol trades (separate from Binance's)


class BybitFace:
    def __init__(self, venue: Venue) -> None:
        self.venue = venue
        self.engine = venue.engine
        self.fees: dict[int, dict[str, Decimal]] = defaultdict(dict)
        self.stop_kind: dict[int, str] = {}
        self.untriggered: dict[int, None] = {}  # conditional orders not told Triggered yet
        self.created_price: dict[int, Decimal] = {}  # lastPriceOnCreated (not kept over a restart)
        self.seq = 0
        self._placing = ""
        self.tape = venue.tape  # the public trades, for market/recent-trade
        self.engine.add_listener(self._on_event)
        venue.on_reset.append(self.clear)
        for trade in self.engine.trades(ACCOUNT):  # a venue resumed from its saved state
            self._add_fee(trade)
        for order in self.engine.open_orders(ACCOUNT):
            if order.type in STOP_TYPES and not order.triggered:
                self.untriggered[order.order_id] = None

    def clear(self) -> None:
        self.fees.clear()
        self.stop_kind.clear()
        self.untriggered.clear()
        self.created_price.clear()
        self.seq = 0

    def next_id(self, topic: str) -> str:
        self.seq += 1
        return bf.message_id(topic, self.seq)

    @contextlib.contextmanager
    def placing(self, stop_order_type: str) -> Iterator[None]:
        """Remember the stopOrderType of the order being placed before its NEW event is told."""
        self._placing = stop_order_type
        try:
            yield
        finally:
            self._placing = ""

    def _on_event(self, event: Event) -> None:
        if not isinstance(event, OrderEvent) or event.account != ACCOUNT:
            return
        order_id = event.order.order_id
        if event.exec_type is ExecType.NEW and order_id not in self.created_price:  # placed, not amended
            with contextlib.suppress(EngineError):
                self.created_price[order_id] = self.engine.quote(event.order.symbol).price
        if event.exec_type is ExecType.NEW and self._placing:
            self.stop_kind[order_id] = self._placing
        if event.exec_type is ExecType.NEW and event.order.type in STOP_TYPES and not event.order.triggered:
            self.untriggered[event.order.order_id] = None
        if event.trade is not None:
            self._add_fee(event.trade)

    def _add_fee(self, trade: Trade) -> None:
        fees = self.fees[trade.order_id]
        fees[trade.commission_asset] = fees.get(trade.commission_asset, ZERO) + trade.commission

    # ----------------------------------------------------------------- formatting
    def order_json(self, order: Order, *, ws: bool = False, status: str = "") -> dict[str, Any]:
        fmt_fn = bf.ws_order_json if ws else bf.order_json
        row = fmt_fn(
            order,
            fees=dict(self.fees.get(order.order_id, {})),
            stop_order_type=bf.stop_order_type(order, self.stop_kind.get(order.order_id, "")),
            status=status,
        )
        return self._with_created_price(row, order)

    def _with_created_price(self, row: dict[str, Any], order: Order) -> dict[str, Any]:
        """lastPriceOnCreated: the last price when the order was placed ("" if the venue was
        restarted since: it is not in the saved state)."""
        price = self.created_price.get(order.order_id)
        if price is not None:
            row["lastPriceOnCreated"] = fmt(price)
        return row

    def triggered_json(self, order: Order) -> dict[str, Any]:
        """The `order` topic's Triggered item: the order as it was the moment it triggered
        (nothing filled yet, even when the step that triggered it also filled it)."""
        at_trigger = msgspec.structs.replace(order, status=OrderStatus.NEW, executed_qty=ZERO, cum_quote=ZERO)
        kind = bf.stop_order_type(order, self.stop_kind.get(order.order_id, ""))
        row = bf.ws_order_json(at_trigger, fees={}, stop_order_type=kind, status="Triggered")
        return self._with_created_price(row, order)

    def triggered(self, order_id: int) -> Order | None:
        """The order, if it is a conditional one that has triggered since it was last looked at
        (once: the caller tells Triggered); forgets one that closed untriggered."""
        if order_id not in self.untriggered:
            return None
        order = self.engine.find_order(order_id)
        if order is None or not order.triggered:
            if order is None or not order.is_open:
                self.untriggered.pop(order_id, None)
            return None
        self.untriggered.pop(order_id, None)
        return order

    def placed_as(self, order: Order) -> str:
        """The orderFilter the order was placed with: Order, StopOrder or tpslOrder."""
        kind = bf.stop_order_type(order, self.stop_kind.get(order.order_id, ""))
        return {"Stop": "StopOrder", "tpslOrder": "tpslOrder"}.get(kind, "Order")

    def in_filter(self, order: Order, order_filter: str) -> bool:
        """Whether a cancel with this orderFilter reaches the order: its own (the one it was
        placed with), or Order once it is an active order (a conditional one, triggered)."""
        return order_filter == self.placed_as(order) or (order_filter == "Order" and order.triggered)

    def execution_json(self, trade: Trade, order: Order, leaves_qty: Decimal) -> dict[str, Any]:
        rate = self.engine.maker_fee if trade.maker else self.engine.taker_fee
        return bf.execution_json(
            trade,
            order,
            leaves_qty=leaves_qty,
            fee_rate=rate,
            stop_order_type=bf.stop_order_type(order, self.stop_kind.get(order.order_id, "")),
        )

    def usd_price(self, asset: str) -> Decimal:
        """USD value of one unit: 1 for a stablecoin, else the last price against one."""
        if asset in bf.STABLE_COINS:
            return Decimal(1)
        for stable in sorted(bf.STABLE_COINS, reverse=True):  # USDT first, then USDC
            symbol = asset + stable
            if symbol in self.engine.specs:
                try:
                    return self.engine.quote(symbol).price
                except EngineError:
                    return ZERO
        return ZERO

    def coins(self, balances: dict[str, Funds]) -> list[dict[str, Any]]:
        return [bf.coin_json(asset, bal, self.usd_price(asset)) for asset, bal in sorted(balances.items())]

    # ----------------------------------------------------------------- lookups
    def find(self, order_id: str | None, link_id: str | None, symbol: str | None = None) -> Order | None:
        """This account's order by orderId (priority, as Bybit does) or orderLinkId, or None."""
        if order_id:
            order = self.engine.find_order(int(order_id)) if order_id.isdigit() else None
            if order is None or order.account != ACCOUNT or (symbol and order.symbol != symbol):
                return None
            return order
        if link_id:
            for sym in [symbol] if symbol else list(self.engine.specs):
                try:
                    return self.engine.get_order(ACCOUNT, sym, client_order_id=link_id)
                except EngineError:
                    continue
        return None


FACE_KEY = web.AppKey("bybit_face", BybitFace)


def face_for(app: web.Application, venue: Venue) -> BybitFace:
    """One BybitFace per app, whichever of the REST and WS setups asks first."""
    if FACE_KEY not in app:
        app[FACE_KEY] = BybitFace(venue)
    return app[FACE_KEY]
