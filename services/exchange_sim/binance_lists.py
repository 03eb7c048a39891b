"""Binance order lists on the paper venue: OCO (and the deprecated /order/oco), OTO and OTOCO,
their cancel and queries, and the shapes of the list in REST answers and the listStatus event.

The engine runs the lists (shared/matching/engine_lists.py); this module reads Binance's
parameters (each leg's under its prefix: aboveType, abovePrice, workingQuantity, ...) with the
single-order rules of binance_api.py, and answers as rest-api.md documents it. Each endpoint is a
function of (BinanceApi, Params), so REST and the WebSocket API share them as they share the
single-order ones.
"""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal
from typing import Any

from services.exchange_sim import binance_format as fmt
from services.exchange_sim.binance_api import ACCOUNT, NEEDS, PROTOCOL, REFUSES, BinanceApi, enum_param
from services.exchange_sim.binance_errors import (
    BinanceError,
    Params,
    from_list_engine,
    mandatory,
    not_required,
)
from services.exchange_sim.telemetry import sim_metrics
from shared.matching.engine import EngineError, Order, OrderList, OrderRequest, OrderType, Side, TimeInForce
from shared.messages import ListKind

INVALID_SIDE = BinanceError(-1117, "Invalid side.")
INVALID_TYPE = BinanceError(-1116, "Invalid orderType.")
INVALID_TIF = BinanceError(-1115, "Invalid timeInForce.")
_LEG_PARAMS = {"price": "Price", "stopPrice": "StopPrice", "timeInForce": "TimeInForce"}


def _placed_json(
    order_list: OrderList, orders: Sequence[Order], trades: list, resp_type: str
) -> dict[str, Any]:
    reports: list[dict[str, Any]]
    if resp_type == "ACK":
        reports = [fmt.order_ack(o) for o in orders]
    elif resp_type == "RESULT":
        reports = [fmt.order_result(o) for o in orders]
    else:
        reports = [fmt.order_full(o, [t for t in trades if t.order_id == o.order_id]) for o in orders]
    return {**fmt.list_json(order_list), "orderReports": reports}


# ----------------------------------------------------------------- parameters
def _resp_type(p: Params) -> str:
    resp_type = p.text("newOrderRespType") or "RESULT"
    if resp_type not in ("ACK", "RESULT", "FULL"):
        raise BinanceError(-1100, "Illegal characters found in parameter 'newOrderRespType'.")
    return resp_type


def _leg(
    p: Params, symbol: str, prefix: str, side: Side, quantity: Decimal | None, kind: OrderType | None = None
) -> OrderRequest:
    """One leg from its prefixed parameters, with a single order's required and refused ones."""
    kind = kind or enum_param(OrderType, p.req(f"{prefix}Type"), INVALID_TYPE)
    if quantity is None:
        raise mandatory(f"{prefix}Quantity")
    for name in NEEDS[kind]:
        if name in _LEG_PARAMS and f"{prefix}{_LEG_PARAMS[name]}" not in p:
            raise mandatory(f"{prefix}{_LEG_PARAMS[name]}")
    for name in REFUSES[kind]:
        if name in _LEG_PARAMS and f"{prefix}{_LEG_PARAMS[name]}" in p:
            raise not_required(f"{prefix}{_LEG_PARAMS[name]}")
    tif_text = p.text(f"{prefix}TimeInForce")
    return OrderRequest(
        symbol=symbol,
        side=side,
        type=kind,
        quantity=quantity,
        price=p.decimal(f"{prefix}Price"),
        stop_price=p.decimal(f"{prefix}StopPrice"),
        time_in_force=enum_param(TimeInForce, tif_text, INVALID_TIF) if tif_text else None,
        client_order_id=p.client_id(f"{prefix}ClientOrderId"),
    )


def _place(
    api: BinanceApi, p: Params, kind: ListKind, legs: list[OrderRequest], side: Side
) -> dict[str, Any]:
    resp_type = _resp_type(p)
    try:
        placed = api.engine.place_list(ACCOUNT, kind, legs, p.client_id("listClientOrderId"))
    except EngineError as exc:
        sim_metrics().orders.labels(PROTOCOL, "rejected").inc()
        raise from_list_engine(exc, side) from None
    sim_metrics().orders.labels(PROTOCOL, "accepted").inc()
    return _placed_json(placed.order_list, placed.orders, placed.trades, resp_type)


# ----------------------------------------------------------------- endpoints
def new_oco(api: BinanceApi, p: Params) -> dict[str, Any]:
    """POST /api/v3/orderList/oco: [above, below], one side and quantity."""
    symbol = api._symbol(p)
    side = enum_param(Side, p.req("side"), INVALID_SIDE)
    qty = p.decimal("quantity", required=True)
    legs = [_leg(p, symbol, "above", side, qty), _leg(p, symbol, "below", side, qty)]
    return _place(api, p, ListKind.OCO, legs, side)


def new_oco_legacy(api: BinanceApi, p: Params) -> dict[str, Any]:
    """POST /api/v3/order/oco (deprecated): a LIMIT_MAKER at `price` and a stop at `stopPrice`
    (STOP_LOSS_LIMIT with `stopLimitPrice`), placed as the [above, below] of the new endpoint."""
    symbol = api._symbol(p)
    side = enum_param(Side, p.req("side"), INVALID_SIDE)
    qty = p.decimal("quantity", required=True)
    tif_text = p.text("stopLimitTimeInForce")
    limit_price = p.decimal("stopLimitPrice")
    if limit_price is not None and tif_text is None:
        raise mandatory("stopLimitTimeInForce")
    limit = OrderRequest(symbol=symbol, side=side, type=OrderType.LIMIT_MAKER, quantity=qty,
                         price=p.decimal("price", required=True), client_order_id=p.client_id("limitClientOrderId"))  # fmt: skip
    stop = OrderRequest(
        symbol=symbol,
        side=side,
        type=OrderType.STOP_LOSS if limit_price is None else OrderType.STOP_LOSS_LIMIT,
        quantity=qty,
        price=limit_price,
        stop_price=p.decimal("stopPrice", required=True),
        time_in_force=enum_param(TimeInForce, tif_text, INVALID_TIF) if tif_text else None,
        client_order_id=p.client_id("stopClientOrderId"),
    )
    legs = [limit, stop] if side is Side.SELL else [stop, limit]
    return _place(api, p, ListKind.OCO, legs, side)


def new_oto(api: BinanceApi, p: Params) -> dict[str, Any]:
    """POST /api/v3/orderList/oto: [working, pending]."""
    symbol = api._symbol(p)
    working = _working(api, p, symbol)
    pending_side = enum_param(Side, p.req("pendingSide"), INVALID_SIDE)
    pending = _leg(p, symbol, "pending", pending_side, p.decimal("pendingQuantity"))
    return _place(api, p, ListKind.OTO, [working, pending], pending_side)


def new_otoco(api: BinanceApi, p: Params) -> dict[str, Any]:
    """POST /api/v3/orderList/otoco: [working, pending above, pending below]."""
    symbol = api._symbol(p)
    working = _working(api, p, symbol)
    side = enum_param(Side, p.req("pendingSide"), INVALID_SIDE)
    qty = p.decimal("pendingQuantity", required=True)
    legs = [working, _leg(p, symbol, "pendingAbove", side, qty), _leg(p, symbol, "pendingBelow", side, qty)]
    return _place(api, p, ListKind.OTOCO, legs, side)


def _working(api: BinanceApi, p: Params, symbol: str) -> OrderRequest:
    side = enum_param(Side, p.req("workingSide"), INVALID_SIDE)
    return _leg(p, symbol, "working", side, p.decimal("workingQuantity"))


def get_list(api: BinanceApi, p: Params) -> dict[str, Any]:
    """GET /api/v3/orderList: by orderListId or origClientOrderId (the list's client id)."""
    try:
        found = api.engine.get_list(
            ACCOUNT, list_id=p.integer("orderListId"), list_client_order_id=p.text("origClientOrderId")
        )
    except EngineError as exc:
        raise from_list_engine(exc) from None
    return fmt.list_json(found)


def cancel_list(api: BinanceApi, p: Params) -> dict[str, Any]:
    """DELETE /api/v3/orderList: every open leg cancelled."""
    symbol = api._symbol(p)
    try:
        cancelled = api.engine.cancel_list(
            ACCOUNT,
            symbol,
            list_id=p.integer("orderListId"),
            list_client_order_id=p.client_id("listClientOrderId"),
            cancel_client_order_id=p.client_id("newClientOrderId"),
        )
    except EngineError as exc:
        raise from_list_engine(exc, cancel=True) from None
    return {
        **fmt.list_json(cancelled.order_list),
        "orderReports": [fmt.order_canceled(o) for o in cancelled.orders],
    }


def open_lists(api: BinanceApi, p: Params) -> list[dict[str, Any]]:
    """GET /api/v3/openOrderList."""
    return [fmt.list_json(x) for x in api.engine.open_lists(ACCOUNT)]


def all_lists(api: BinanceApi, p: Params) -> list[dict[str, Any]]:
    """GET /api/v3/allOrderList, newest first as Binance lists them."""
    found = api.engine.all_lists(
        ACCOUNT,
        from_id=p.integer("fromId"),
        start_time=p.integer("startTime"),
        end_time=p.integer("endTime"),
        limit=min(p.integer("limit", default=500) or 500, 1000),
    )
    return [fmt.list_json(x) for x in reversed(found)]
