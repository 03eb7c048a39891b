"""Engine objects in Binance spot's JSON shapes (REST responses and user-stream events).

Field names, order and string formatting follow the real API (amounts as 8-decimal strings,
times in ms); the events copy real executionReport / outboundAccountPosition payloads
recorded from Binance.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from services.exchange_sim.feeds import Bar
from shared.matching.engine import (
    BalanceEvent,
    ExecType,
    Order,
    OrderEvent,
    OrderType,
    Trade,
)
from shared.matching.model import STOP_TYPES
from shared.matching.symbols import SymbolSpec

STP_MODE = "EXPIRE_MAKER"
ORDER_TYPES = [
    "LIMIT",
    "LIMIT_MAKER",
    "MARKET",
    "STOP_LOSS",
    "STOP_LOSS_LIMIT",
    "TAKE_PROFIT",
    "TAKE_PROFIT_LIMIT",
]
ZERO8 = "0.00000000"


def f8(value: Decimal) -> str:
    """Binance's fixed 8-decimal text ('0.10000000')."""
    return f"{value:.8f}"


def is_working(order: Order) -> bool:
    """On the book: an open GTC limit-priced order that is not waiting for its stop (Binance isWorking)."""
    return (
        order.is_open
        and order.type not in (OrderType.MARKET, OrderType.STOP_LOSS, OrderType.TAKE_PROFIT)
        and order.triggered
        and order.time_in_force == "GTC"
    )


def _stop(order: Order) -> dict[str, str]:
    return {"stopPrice": f8(order.stop_price)} if order.type in STOP_TYPES else {}


def order_ack(order: Order) -> dict[str, Any]:
    return {
        "symbol": order.symbol,
        "orderId": order.order_id,
        "orderListId": -1,
        "clientOrderId": order.client_order_id,
        "transactTime": order.time,
    }


def order_result(order: Order) -> dict[str, Any]:
    return {
        **order_ack(order),
        "price": f8(order.price),
        "origQty": f8(order.quantity),
        "executedQty": f8(order.executed_qty),
        "origQuoteOrderQty": f8(order.quote_quantity),
        "cummulativeQuoteQty": f8(order.cum_quote),
        "status": order.status.value,
        "timeInForce": order.time_in_force.value,
        "type": order.type.value,
        "side": order.side.value,
        **_stop(order),
        "workingTime": order.working_time if order.working_time is not None else -1,
        "selfTradePreventionMode": STP_MODE,
    }


def fill(trade: Trade) -> dict[str, Any]:
    return {
        "price": f8(trade.price),
        "qty": f8(trade.qty),
        "commission": f8(trade.commission),
        "commissionAsset": trade.commission_asset,
        "tradeId": trade.trade_id,
    }


def order_full(order: Order, trades: list[Trade]) -> dict[str, Any]:
    return {**order_result(order), "fills": [fill(t) for t in trades]}


def order_query(order: Order) -> dict[str, Any]:
    """GET /api/v3/order, openOrders, allOrders."""
    return {
        "symbol": order.symbol,
        "orderId": order.order_id,
        "orderListId": -1,
        "clientOrderId": order.client_order_id,
        "price": f8(order.price),
        "origQty": f8(order.quantity),
        "executedQty": f8(order.executed_qty),
        "cummulativeQuoteQty": f8(order.cum_quote),
        "status": order.status.value,
        "timeInForce": order.time_in_force.value,
        "type": order.type.value,
        "side": order.side.value,
        "stopPrice": f8(order.stop_price),
        "icebergQty": ZERO8,
        "time": order.time,
        "updateTime": order.update_time,
        "isWorking": is_working(order),
        "workingTime": order.working_time if order.working_time is not None else -1,
        "origQuoteOrderQty": f8(order.quote_quantity),
        "selfTradePreventionMode": STP_MODE,
    }


def order_canceled(order: Order) -> dict[str, Any]:
    """DELETE /api/v3/order: clientOrderId is the cancel request's id, origClientOrderId the order's."""
    return {
        "symbol": order.symbol,
        "origClientOrderId": order.client_order_id,
        "orderId": order.order_id,
        "orderListId": -1,
        "clientOrderId": order.cancel_client_order_id or order.client_order_id,
        "transactTime": order.update_time,
        "price": f8(order.price),
        "origQty": f8(order.quantity),
        "executedQty": f8(order.executed_qty),
        "origQuoteOrderQty": f8(order.quote_quantity),
        "cummulativeQuoteQty": f8(order.cum_quote),
        "status": order.status.value,
        "timeInForce": order.time_in_force.value,
        "type": order.type.value,
        "side": order.side.value,
        **_stop(order),
        "selfTradePreventionMode": STP_MODE,
    }


def my_trade(trade: Trade) -> dict[str, Any]:
    return {
        "symbol": trade.symbol,
        "id": trade.trade_id,
        "orderId": trade.order_id,
        "orderListId": -1,
        "price": f8(trade.price),
        "qty": f8(trade.qty),
        "quoteQty": f8(trade.quote_qty),
        "commission": f8(trade.commission),
        "commissionAsset": trade.commission_asset,
        "time": trade.time,
        "isBuyer": trade.side == "BUY",
        "isMaker": trade.maker,
        "isBestMatch": True,
    }


def execution_report(event: OrderEvent, seq: int) -> dict[str, Any]:
    """The executionReport event; `seq` fills the ignored `I` field."""
    order, trade = event.order, event.trade
    canceled = event.exec_type is ExecType.CANCELED
    report: dict[str, Any] = {
        "e": "executionReport",
        "E": event.time,
        "s": order.symbol,
        "c": (order.cancel_client_order_id or order.client_order_id) if canceled else order.client_order_id,
        "S": order.side.value,
        "o": order.type.value,
        "f": order.time_in_force.value,
        "q": f8(order.quantity),
        "p": f8(order.price),
        "P": f8(order.stop_price),
        "F": ZERO8,
        "g": -1,
        "C": order.client_order_id if canceled else "",
        "x": event.exec_type.value,
        "X": order.status.value,
        "r": "NONE",
        "i": order.order_id,
        "l": f8(trade.qty) if trade else ZERO8,
        "z": f8(order.executed_qty),
        "L": f8(trade.price) if trade else ZERO8,
        "n": f8(trade.commission) if trade else "0",
        "N": trade.commission_asset if trade else None,
        "T": trade.time if trade else event.time,
        "t": trade.trade_id if trade else -1,
        "I": seq,
        "w": is_working(order),
        "m": trade.maker if trade else False,
        "M": trade is not None,
        "O": order.time,
        "Z": f8(order.cum_quote),
        "Y": f8(trade.quote_qty) if trade else ZERO8,
        "Q": f8(order.quote_quantity),
    }
    if order.working_time is not None:
        report["W"] = order.working_time
    report["V"] = STP_MODE
    return report


def account_events(event: BalanceEvent) -> list[dict[str, Any]]:
    """balanceUpdate for each outside deposit/withdrawal, then outboundAccountPosition."""
    out: list[dict[str, Any]] = [
        {"e": "balanceUpdate", "E": event.time, "a": asset, "d": f8(delta), "T": event.time}
        for asset, delta in (event.deltas or {}).items()
    ]
    out.append(
        {
            "e": "outboundAccountPosition",
            "E": event.time,
            "u": event.time,
            "B": [{"a": a, "f": f8(b.free), "l": f8(b.locked)} for a, b in event.balances.items()],
        }
    )
    return out


def symbol_info(spec: SymbolSpec) -> dict[str, Any]:
    f = spec.filters
    return {
        "symbol": spec.symbol,
        "status": "TRADING",
        "baseAsset": spec.base,
        "baseAssetPrecision": spec.base_precision,
        "quoteAsset": spec.quote,
        "quotePrecision": spec.quote_precision,
        "quoteAssetPrecision": spec.quote_precision,
        "baseCommissionPrecision": spec.base_precision,
        "quoteCommissionPrecision": spec.quote_precision,
        "orderTypes": ORDER_TYPES,
        "icebergAllowed": False,
        "ocoAllowed": False,
        "otoAllowed": False,
        "quoteOrderQtyMarketAllowed": True,
        "allowTrailingStop": False,
        "cancelReplaceAllowed": False,
        "isSpotTradingAllowed": True,
        "isMarginTradingAllowed": False,
        "filters": [
            {
                "filterType": "PRICE_FILTER",
                "minPrice": f8(f.min_price),
                "maxPrice": f8(f.max_price),
                "tickSize": f8(f.tick_size),
            },
            {
                "filterType": "LOT_SIZE",
                "minQty": f8(f.min_qty),
                "maxQty": f8(f.max_qty),
                "stepSize": f8(f.step_size),
            },
            {
                "filterType": "MARKET_LOT_SIZE",
                "minQty": ZERO8,
                "maxQty": f8(f.max_qty),
                "stepSize": ZERO8,
            },
            {
                "filterType": "PERCENT_PRICE_BY_SIDE",
                "bidMultiplierUp": str(f.multiplier_up),
                "bidMultiplierDown": str(f.multiplier_down),
                "askMultiplierUp": str(f.multiplier_up),
                "askMultiplierDown": str(f.multiplier_down),
                "avgPriceMins": 5,
            },
            {
                "filterType": "NOTIONAL",
                "minNotional": f8(f.min_notional),
                "applyMinToMarket": True,
                "maxNotional": f8(f.max_notional),
                "applyMaxToMarket": False,
                "avgPriceMins": 5,
            },
            {"filterType": "MAX_NUM_ORDERS", "maxNumOrders": spec.max_num_orders},
        ],
        "permissions": [],
        "permissionSets": [["SPOT"]],
        "defaultSelfTradePreventionMode": STP_MODE,
        "allowedSelfTradePreventionModes": ["EXPIRE_TAKER", "EXPIRE_MAKER", "EXPIRE_BOTH"],
    }


def kline_row(c: Bar) -> list[Any]:
    """One REST klines row."""
    return [
        c.open_time,
        f8(c.open),
        f8(c.high),
        f8(c.low),
        f8(c.close),
        f8(c.volume),
        c.close_time,
        f8(c.quote_volume),
        c.trades,
        f8(c.volume / 2),
        f8(c.quote_volume / 2),
        "0",
    ]


def kline_event(symbol: str, interval: str, c: Bar, closed: bool, event_time: int) -> dict[str, Any]:
    return {
        "e": "kline",
        "E": event_time,
        "s": symbol,
        "k": {
            "t": c.open_time,
            "T": c.close_time,
            "s": symbol,
            "i": interval,
            "f": -1,
            "L": -1,
            "o": f8(c.open),
            "c": f8(c.close),
            "h": f8(c.high),
            "l": f8(c.low),
            "v": f8(c.volume),
            "n": c.trades,
            "x": closed,
            "q": f8(c.quote_volume),
            "V": f8(c.volume / 2),
            "Q": f8(c.quote_volume / 2),
            "B": "0",
        },
    }
