"""Engine objects in Bybit V5 words: orders, executions, wallet coins, instruments, klines, tickers.

Pure functions of the engine's snapshots, shared by the REST and the WebSocket faces so a
field reads the same in `order/realtime` and in the `order` topic. Prices and quantities are
decimal strings (shared.money.fmt), times are milliseconds of the venue's market clock.
"""

from __future__ import annotations

import uuid
import zlib
from decimal import Decimal
from typing import Any

from services.exchange_sim.bybit_errors import BybitError
from services.exchange_sim.feeds import Bar
from shared.matching.engine import Funds, Order, OrderStatus, OrderType, Side, Trade
from shared.matching.engine_rules import triggers_on_fall
from shared.matching.model import STOP_TYPES, Quote
from shared.matching.symbols import SymbolSpec
from shared.money import ZERO, fmt, round_down

CATEGORY = "spot"
ACCOUNT_TYPE = "UNIFIED"
QUANTUM = Decimal("1e-8")
STABLE_COINS = frozenset({"USDT", "USDC"})
_NAMESPACE = uuid.UUID("6f1c2b4e-1d1a-4c55-9a57-3b1e2f0b5e11")

SIDES = {Side.BUY: "Buy", Side.SELL: "Sell"}
SIDE_OF = {v: k for k, v in SIDES.items()}


def envelope(result: Any, now_ms: int, ext: dict[str, Any] | None = None) -> dict[str, Any]:
    """A success; `ext` is retExtInfo (the batch endpoints' per-item codes)."""
    return {"retCode": 0, "retMsg": "OK", "result": result, "retExtInfo": ext or {}, "time": now_ms}


def error_envelope(err: BybitError, now_ms: int) -> dict[str, Any]:
    return {"retCode": err.ret_code, "retMsg": err.ret_msg, "result": {}, "retExtInfo": {}, "time": now_ms}


def exec_id(trade: Trade) -> str:
    """A UUID like Bybit's, derived from (symbol, trade id) so runs are reproducible."""
    return str(uuid.uuid5(_NAMESPACE, f"{trade.symbol}:{trade.trade_id}"))


def message_id(topic: str, seq: int) -> str:
    return str(uuid.uuid5(_NAMESPACE, f"{topic}:{seq}"))


def order_status(order: Order) -> str:
    """Engine status in Bybit's enum; an order closed with fills is PartiallyFilledCanceled (spot),
    a conditional one closed before its trigger Deactivated. (Triggered, the instant between
    Untriggered and New, is only pushed: bybit_ws.py.)"""
    status = order.status
    untriggered = order.type in STOP_TYPES and not order.triggered
    if status is OrderStatus.NEW:
        return "Untriggered" if untriggered else "New"
    if status is OrderStatus.PARTIALLY_FILLED:
        return "PartiallyFilled"
    if status is OrderStatus.FILLED:
        return "Filled"
    if status is OrderStatus.REJECTED:
        return "Rejected"
    if untriggered:
        return "Deactivated"
    return "PartiallyFilledCanceled" if order.executed_qty > 0 else "Cancelled"


def trigger_direction(order: Order) -> int:
    """Bybit's triggerDirection of a conditional order: 1 rise, 2 fall (0: not conditional)."""
    if order.type not in STOP_TYPES:
        return 0
    return 2 if triggers_on_fall(order.type, order.side) else 1


def stop_order_type(order: Order, placed_as: str) -> str:
    """stopOrderType: as the order was placed (StopOrder -> Stop, tpslOrder), else "Stop" for a
    conditional order the venue no longer knows how (a venue resumed from its saved state)."""
    return placed_as or ("Stop" if order.type in STOP_TYPES else "")


def _cancel_type(order: Order) -> str:
    if order.status is OrderStatus.CANCELED:
        return "CancelByUser"
    return "UNKNOWN"


def _reject_reason(order: Order) -> str:
    if order.status is OrderStatus.EXPIRED and order.time_in_force.value == "FOK":
        return "EC_CancelForNoFullFill"
    if order.status is OrderStatus.EXPIRED and order.executed_qty == 0:
        return "EC_NoImmediateQtyToFill"
    return "EC_NoError"


def _tif(order: Order) -> str:
    if order.type is OrderType.LIMIT_MAKER:
        return "PostOnly"
    if order.type in (OrderType.MARKET, OrderType.STOP_LOSS, OrderType.TAKE_PROFIT):
        return "IOC"
    return order.time_in_force.value


def _avg_price(order: Order) -> str:
    if order.executed_qty <= 0:
        return ""
    return fmt(round_down(order.cum_quote / order.executed_qty, QUANTUM))


def is_quote_market(order: Order) -> bool:
    return order.quote_quantity > 0


def order_json(
    order: Order, *, fees: dict[str, Decimal], stop_order_type: str = "", status: str = ""
) -> dict[str, Any]:
    """One order as order/realtime, order/history and the `order` topic print it (`status`:
    another orderStatus than its own, the pushed Triggered)."""
    is_market = order.type in (OrderType.MARKET, OrderType.STOP_LOSS, OrderType.TAKE_PROFIT)
    quote_market = is_quote_market(order)
    remaining = ZERO if not order.is_open else order.remaining
    cum_fee = sum(fees.values(), ZERO)
    return {
        "orderId": str(order.order_id),
        "orderLinkId": order.client_order_id,
        "blockTradeId": "",
        "symbol": order.symbol,
        "price": fmt(order.price),
        "qty": fmt(order.quote_quantity if quote_market else order.quantity),
        "side": SIDES[order.side],
        "isLeverage": "0",
        "positionIdx": 0,
        "orderStatus": status or order_status(order),
        "cancelType": _cancel_type(order),
        "rejectReason": _reject_reason(order),
        "avgPrice": _avg_price(order),
        "leavesQty": fmt(remaining),
        "leavesValue": fmt(remaining * order.price),
        "cumExecQty": fmt(order.executed_qty),
        "cumExecValue": fmt(order.cum_quote),
        "cumExecFee": fmt(cum_fee),
        "cumFeeDetail": {asset: fmt(amount) for asset, amount in fees.items()},
        "feeCurrency": next(iter(fees), ""),
        "timeInForce": _tif(order),
        "orderType": "Market" if is_market else "Limit",
        "stopOrderType": stop_order_type,
        "orderIv": "",
        "marketUnit": ("quoteCoin" if quote_market else "baseCoin") if is_market else "",
        "triggerPrice": fmt(order.stop_price),
        "takeProfit": "0",
        "stopLoss": "0",
        "tpTriggerBy": "",
        "slTriggerBy": "",
        "tpLimitPrice": "0",
        "slLimitPrice": "0",
        "ocoTriggerBy": "OcoTriggerByUnknown",  # UTA spot's field (the venue makes no OCO orders)
        "triggerDirection": trigger_direction(order),
        "triggerBy": "LastPrice" if stop_order_type else "",
        "lastPriceOnCreated": "",
        "reduceOnly": False,
        "closeOnTrigger": False,
        "placeType": "",
        "smpType": "None",
        "smpGroup": 0,
        "smpOrderId": "",
        "createdTime": str(order.time),
        "updatedTime": str(order.update_time),
    }


def ws_order_json(
    order: Order, *, fees: dict[str, Decimal], stop_order_type: str = "", status: str = ""
) -> dict[str, Any]:
    """The `order` topic adds the category and closedPnl to the REST fields."""
    return {
        "category": CATEGORY,
        **order_json(order, fees=fees, stop_order_type=stop_order_type, status=status),
        "closedPnl": "0",
    }


def execution_json(
    trade: Trade, order: Order, *, leaves_qty: Decimal, fee_rate: Decimal, stop_order_type: str = ""
) -> dict[str, Any]:
    """One fill as execution/list and the `execution` topic print it (leavesQty after this fill)."""
    is_market = order.type in (OrderType.MARKET, OrderType.STOP_LOSS, OrderType.TAKE_PROFIT)
    return {
        "category": CATEGORY,
        "symbol": trade.symbol,
        "isLeverage": "0",
        "orderId": str(order.order_id),
        "orderLinkId": order.client_order_id,
        "side": SIDES[trade.side],
        "orderPrice": fmt(order.price),
        "orderQty": fmt(order.quote_quantity if is_quote_market(order) else order.quantity),
        "leavesQty": fmt(leaves_qty),
        "orderType": "Market" if is_market else "Limit",
        "stopOrderType": stop_order_type,
        "execFee": fmt(trade.commission),
        "feeCurrency": trade.commission_asset,
        "execId": exec_id(trade),
        "execPrice": fmt(trade.price),
        "execQty": fmt(trade.qty),
        "execType": "Trade",
        "execValue": fmt(trade.quote_qty),
        "execTime": str(trade.time),
        "isMaker": trade.maker,
        "feeRate": fmt(fee_rate),
        "tradeIv": "",
        "markIv": "",
        "markPrice": fmt(trade.price),
        "indexPrice": "",
        "underlyingPrice": "",
        "blockTradeId": "",
        "closedSize": "",
        "extraFees": "",
        "seq": trade.trade_id,
    }


def coin_json(asset: str, balance: Funds, usd_price: Decimal) -> dict[str, Any]:
    """One coin of a UNIFIED wallet: walletBalance = free + locked, locked = held by open orders."""
    total = balance.free + balance.locked
    return {
        "coin": asset,
        "equity": fmt(total),
        "usdValue": fmt(round_down(total * usd_price, QUANTUM)),
        "walletBalance": fmt(total),
        "free": fmt(balance.free),
        "locked": fmt(balance.locked),
        "spotHedgingQty": "0",
        "borrowAmount": "0",
        "availableToBorrow": "",
        "availableToWithdraw": fmt(balance.free),
        "accruedInterest": "0",
        "totalOrderIM": "0",
        "totalPositionIM": "0",
        "totalPositionMM": "0",
        "unrealisedPnl": "0",
        "cumRealisedPnl": "0",
        "bonus": "0",
        "marginCollateral": True,
        "collateralSwitch": True,
        "spotBorrow": "0",
    }


def wallet_json(coins: list[dict[str, Any]]) -> dict[str, Any]:
    """The UNIFIED account around its coins; USD totals sum the coins' usdValue."""
    total = fmt(sum((Decimal(c["usdValue"]) for c in coins), ZERO))
    return {
        "accountType": ACCOUNT_TYPE,
        "accountIMRate": "0",
        "accountIMRateByMp": "0",
        "accountMMRate": "0",
        "accountMMRateByMp": "0",
        "accountLTV": "0",
        "totalEquity": total,
        "totalWalletBalance": total,
        "totalMarginBalance": total,
        "totalAvailableBalance": total,
        "totalPerpUPL": "0",
        "totalInitialMargin": "0",
        "totalInitialMarginByMp": "0",
        "totalMaintenanceMargin": "0",
        "totalMaintenanceMarginByMp": "0",
        "coin": coins,
    }


def instrument_json(spec: SymbolSpec) -> dict[str, Any]:
    """A spot instrument: basePrecision is the step size, minOrderAmt the min notional."""
    f = spec.filters
    return {
        "symbolId": zlib.crc32(spec.symbol.encode()) % 100_000,  # an integer id, the same every run
        "symbol": spec.symbol,
        "baseCoin": spec.base,
        "quoteCoin": spec.quote,
        "innovation": "0",
        "status": "Trading",
        "marginTrading": "none",
        "stTag": "0",
        "lotSizeFilter": {
            "basePrecision": fmt(f.step_size),
            "quotePrecision": fmt(quote_precision(spec)),
            "minOrderQty": fmt(f.min_qty),
            "maxOrderQty": fmt(f.max_qty),
            "minOrderAmt": fmt(f.min_notional),
            "maxOrderAmt": fmt(f.max_notional),
            "maxLimitOrderQty": fmt(f.max_qty),
            "maxMarketOrderQty": fmt(f.max_qty),
            "postOnlyMaxLimitOrderSize": fmt(f.max_qty * 5),  # "5x maxLimitOrderQty" for post-only
        },
        "priceFilter": {"tickSize": fmt(f.tick_size)},
        "riskParameters": {
            "priceLimitRatioX": fmt(1 - f.multiplier_down),
            "priceLimitRatioY": fmt(f.multiplier_up - 1),
        },
        "symbolType": "",
    }


def quote_precision(spec: SymbolSpec) -> Decimal:
    return Decimal(1).scaleb(-spec.quote_precision)


def kline_row(candle: Bar) -> list[str]:
    """REST kline row: start, open, high, low, close, volume, turnover."""
    return [
        str(candle.open_time),
        fmt(candle.open),
        fmt(candle.high),
        fmt(candle.low),
        fmt(candle.close),
        fmt(candle.volume),
        fmt(candle.quote_volume),
    ]


def ws_kline(candle: Bar, interval: str, *, confirm: bool, timestamp: int) -> dict[str, Any]:
    return {
        "start": candle.open_time,
        "end": candle.close_time,
        "interval": interval,
        "open": fmt(candle.open),
        "close": fmt(candle.close),
        "high": fmt(candle.high),
        "low": fmt(candle.low),
        "volume": fmt(candle.volume),
        "turnover": fmt(candle.quote_volume),
        "confirm": confirm,
        "timestamp": timestamp,
    }


def ticker_stats(symbol: str, last: Decimal, window: Bar) -> dict[str, Any]:
    """The 24h fields both the REST and the WS tickers carry."""
    change = (last - window.open) / window.open if window.open else ZERO
    return {
        "symbol": symbol,
        "lastPrice": fmt(last),
        "prevPrice24h": fmt(window.open),
        "price24hPcnt": fmt(round_down(change, Decimal("0.0001"))),
        "highPrice24h": fmt(window.high),
        "lowPrice24h": fmt(window.low),
        "turnover24h": fmt(window.quote_volume),
        "volume24h": fmt(window.volume),
        "usdIndexPrice": fmt(last) if symbol.endswith(tuple(STABLE_COINS)) else "",
    }


def rest_ticker(symbol: str, quote: Quote, window: Bar) -> dict[str, Any]:
    return {
        "symbol": symbol,
        "bid1Price": fmt(quote.bid),
        "bid1Size": fmt(quote.bid_qty),
        "ask1Price": fmt(quote.ask),
        "ask1Size": fmt(quote.ask_qty),
        **{k: v for k, v in ticker_stats(symbol, quote.price, window).items() if k != "symbol"},
    }
