"""Bybit V5 spot payloads read into the gateway's types: order and execution rows, wallet
coins, instrument filters, and retCodes / HTTP statuses sorted into the venue error classes.

Pure functions of the JSON Bybit sends (the conformance suite feeds them Bybit's documented
examples); bybit.py does the I/O around them.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import requests
from pybit.exceptions import FailedRequestError, InvalidRequestError

from services.order_gateway.venues.base import (
    AuthError,
    Banned,
    ClockSkew,
    DuplicateOrder,
    OrderNotFound,
    OutcomeUnknown,
    RateLimited,
    Rejected,
    VenueTrade,
    venue_fee,
    venue_str,
)
from services.order_gateway.venues.bybit_conditional import order_type_of
from shared.filters import SymbolFilters
from shared.messages import Balance, OrderStatus, Side, TimeInForce
from shared.money import venue_dec
from shared.order_report import OrderFees, OrderReport

_STATUS = {
    "New": OrderStatus.NEW,
    "Created": OrderStatus.NEW,
    "Untriggered": OrderStatus.NEW,
    "Triggered": OrderStatus.NEW,
    "PartiallyFilled": OrderStatus.PARTIALLY_FILLED,
    "Filled": OrderStatus.FILLED,
    "Cancelled": OrderStatus.CANCELED,
    "PartiallyFilledCanceled": OrderStatus.CANCELED,
    "Deactivated": OrderStatus.CANCELED,
    "Rejected": OrderStatus.REJECTED,
}
_NOT_FOUND = {110001, 170213, 170142}
_AUTH = {10003, 10004, 10005, 10007, 33004}
_DUPLICATE = {110072, 170141}  # OrderLinkedID is duplicate (UTA), Duplicate clientOrderId (Spot)
_RATE = {10006, 10018, 170005, 170222}  # rate limit; spot: too many new orders / requests
# server errors and timeouts (error.mdx): the request may have taken effect
_UNKNOWN = {10000, 10016, 170001, 170007, 170146, 170147}
# pybit swaps an empty retry_codes for its defaults (10002, 10006, ...), then retries them
# itself and, out of retries, raises HTTP 400: a retCode no error has (0) keeps them ours.
NO_RETRY_CODES = {0}
TIF = {TimeInForce.GTC: "GTC", TimeInForce.IOC: "IOC", TimeInForce.FOK: "FOK"}
PAGE = 50  # order/realtime and order/history answer at most 50 a page
EXECUTIONS_PAGE = 100  # execution/list answers at most 100 a page
MAX_PAGES = 20  # recent orders: the latest 1,000, as Binance's allOrders gives
NO_LISTS = "Bybit spot has no order lists (the order gateway emulates them)"
BAN_S = 600.0  # an IP ban (HTTP 403) names no end: Bybit lifts it after about 10 minutes


def classify(exc: BaseException) -> Exception:
    if isinstance(exc, InvalidRequestError):
        code, msg = int(exc.status_code), exc.message
        if code == 10002:
            return ClockSkew(msg, code)
        if code in _RATE:
            return RateLimited(f"{code}: {msg}", 1.0, code)
        if code in _AUTH:
            return AuthError(f"{code}: {msg}", code)
        if code in _NOT_FOUND:
            return OrderNotFound(msg, code)
        if code in _DUPLICATE:
            return DuplicateOrder(msg, code)
        if code in _UNKNOWN:
            return OutcomeUnknown(f"{code}: {msg}", code)
        return Rejected(f"{code}: {msg}", code)
    if isinstance(exc, FailedRequestError):
        status = int(exc.status_code or 0)
        if status == 403:
            return Banned(f"HTTP 403: {exc.message}", BAN_S, status)
        if status == 429:
            return RateLimited(f"HTTP 429: {exc.message}", 1.0, status)
        return OutcomeUnknown(f"HTTP {status}: {exc.message}", status)
    if isinstance(exc, requests.exceptions.RequestException | TimeoutError | ConnectionError):
        return OutcomeUnknown(f"{type(exc).__name__}: {exc}")
    return exc if isinstance(exc, Exception) else RuntimeError(str(exc))


def _fee(o: dict[str, Any], cum: Decimal, fee_asset: str) -> tuple[Decimal | None, str]:
    """The order's cumulative fee and its coin. Spot tells it in cumFeeDetail ({coin: fee};
    cumExecFee and feeCurrency are deprecated there); in several coins it is no one amount
    (None: the executions tell it). Without cumFeeDetail, the older fields."""
    detail = o.get("cumFeeDetail")
    if isinstance(detail, dict) and detail:
        if len(detail) > 1:
            return None, ""
        [(coin, amount)] = detail.items()
        return venue_dec(amount), venue_str(coin)
    if o.get("cumExecFee") not in (None, ""):
        return venue_dec(o.get("cumExecFee")), o.get("feeCurrency") or fee_asset
    return (Decimal(0) if cum == 0 else None), o.get("feeCurrency") or fee_asset


def report_from_order(o: dict[str, Any], fee_asset: str = "") -> OrderReport:
    """An order as order/realtime, order/history or the private `order` topic show it.

    A Market order with marketUnit quoteCoin (a Buy's default) gives `qty` in the quote coin:
    that is the amount asked for (orig_quote_qty); its base quantity is what it filled."""
    cum = venue_dec(o.get("cumExecQty"))
    qty = venue_dec(o.get("qty"))
    by_quote = o.get("marketUnit") == "quoteCoin" and o.get("orderType") == "Market"
    fee, fee_coin = _fee(o, cum, fee_asset)
    return OrderReport(
        cid=o.get("orderLinkId", ""),
        symbol=o["symbol"],
        status=_STATUS.get(o.get("orderStatus", "New"), OrderStatus.NEW),
        venue_order_id=str(o.get("orderId", "")),
        side=Side(o["side"].upper()) if o.get("side") else None,
        order_type=order_type_of(o),
        price=venue_dec(o.get("price")) or None,
        stop_price=venue_dec(o.get("triggerPrice")) or None,
        orig_qty=cum if by_quote else qty,
        orig_quote_qty=qty if by_quote else None,
        cum_filled_qty=cum,
        cum_quote_qty=venue_dec(o.get("cumExecValue")),
        fee=fee,
        fee_asset=fee_coin,
        venue_ts=int(o.get("updatedTime") or o.get("createdTime") or 0),
        reason=o.get("rejectReason", "") if o.get("rejectReason") not in (None, "EC_NoError") else "",
    )


def trade_from_execution(e: dict[str, Any]) -> VenueTrade:
    """One row of GET /v5/execution/list (category spot)."""
    return VenueTrade(
        trade_id=str(e["execId"]),
        symbol=e["symbol"],
        venue_order_id=str(e.get("orderId", "")),
        cid=e.get("orderLinkId") or "",
        side=Side(e["side"].upper()),
        price=venue_dec(e["execPrice"]),
        qty=venue_dec(e["execQty"]),
        quote=venue_dec(e["execValue"]),
        fee=venue_dec(e.get("execFee")),
        fee_asset=venue_str(e.get("feeCurrency") or ""),
        is_maker=bool(e["isMaker"]) if e.get("isMaker") is not None else None,
        time=int(e["execTime"]),
    )


def fees_of(res: dict[str, Any]) -> OrderFees:
    """An order's executions (execution/list, newest first) in time order, with their fees."""
    ordered = sorted(reversed(res.get("list", [])), key=lambda f: int(f.get("execTime") or 0))
    fills = tuple((venue_dec(f.get("execQty")), venue_fee(venue_dec(f.get("execFee")))) for f in ordered)
    return OrderFees(venue_str(ordered[0].get("feeCurrency") or "") if ordered else "", fills)


def balances_from_wallet(res: dict[str, Any]) -> list[Balance]:
    """The coins of a wallet-balance reply or of the private `wallet` topic's data."""
    out = []
    for account in res.get("list", []):
        for c in account.get("coin", []):
            total, locked = venue_dec(c.get("walletBalance")), venue_dec(c.get("locked"))
            out.append(Balance(c["coin"], total - locked, locked))
    return out


def filters_from_instrument(i: dict[str, Any]) -> SymbolFilters:
    lot, price = i.get("lotSizeFilter", {}), i.get("priceFilter", {})
    return SymbolFilters(
        symbol=i["symbol"],
        base_asset=i["baseCoin"],
        quote_asset=i["quoteCoin"],
        tick_size=venue_dec(price.get("tickSize", "0.01")),
        step_size=venue_dec(lot.get("basePrecision", "0.000001")),
        min_qty=venue_dec(lot.get("minOrderQty", "0")),
        # maxOrderQty is deprecated for maxLimitOrderQty (market orders have their own, lower)
        max_qty=venue_dec(lot.get("maxLimitOrderQty") or lot.get("maxOrderQty")) or Decimal("1e12"),
        min_notional=venue_dec(lot.get("minOrderAmt", "0")),
        max_notional=venue_dec(lot.get("maxOrderAmt", "0")) or Decimal("1e15"),
    )
