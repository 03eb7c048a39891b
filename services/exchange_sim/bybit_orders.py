"""Bybit spot `order/create` parameters -> an engine OrderRequest, with Bybit's spot refusals.

The spot filters are checked here first so each breach gets Bybit's own code (170134 price
decimals, 170137 quantity decimals, 170136 below minOrderQty, 170140 below minOrderAmt ...);
what only the engine can know (balance, duplicates, the price band around the market) comes
back as EngineError and is mapped by `from_engine`.

Bybit words -> engine words: Market -> MARKET (a Buy spends `qty` USDT unless
marketUnit=baseCoin), Limit + PostOnly -> LIMIT_MAKER, Limit -> LIMIT (GTC/IOC/FOK); with
orderFilter StopOrder/tpslOrder and a triggerPrice, a stop whose
direction (`triggerDirection` 1 rise / 2 fall, which Bybit documents for derivatives and the
venue honours on spot, refusing a trigger already reached with 110092 / 110093; without it,
the trigger against the last price) makes it a stop-loss (a Buy on a rise, a Sell on a fall)
or a take-profit.
"""

from __future__ import annotations

import re
from decimal import Decimal
from typing import NamedTuple

from services.exchange_sim import bybit_errors as E
from services.exchange_sim.bybit_errors import BybitError, params_error
from services.exchange_sim.bybit_format import SIDE_OF, quote_precision
from services.exchange_sim.bybit_params import Params
from shared.matching.engine import (
    Engine,
    EngineError,
    OrderRequest,
    OrderType,
    Reject,
    Side,
    TimeInForce,
)
from shared.matching.symbols import SymbolSpec
from shared.money import fmt

LINK_ID_RE = re.compile(r"^[A-Za-z0-9_-]{1,36}$")
ORDER_FILTERS = {"Order": "", "StopOrder": "Stop", "tpslOrder": "tpslOrder"}  # order/create's
# order/realtime, order/history and the cancels also take Bybit's spot OCO and bidirectional TP/SL
# filters: the venue makes no such orders, so they find none (an empty list, 110001), as Bybit would
QUERY_FILTERS = frozenset({*ORDER_FILTERS, "OcoOrder", "BidirectionalTpslOrder"})
LIMIT_TIFS = {"GTC", "IOC", "FOK", "PostOnly"}
MARKET_UNITS = {"baseCoin", "quoteCoin"}
RISE, FALL = 1, 2  # triggerDirection

_ENGINE_CODES: dict[Reject, E.Code] = {
    Reject.UNKNOWN_SYMBOL: E.INVALID_SYMBOL,
    Reject.MARKET_CLOSED: E.PAIR_NOT_OPEN,
    Reject.PRICE_FILTER: E.PRICE_DECIMALS,
    Reject.LOT_SIZE: E.QTY_DECIMALS,
    Reject.NOTIONAL: E.VALUE_TOO_SMALL,
    Reject.MAX_NUM_ORDERS: E.TOO_MANY_ORDERS,
    Reject.DUPLICATE_ORDER: E.DUPLICATE_LINK_ID,
    Reject.WOULD_MATCH: E.POST_ONLY_REJECTED,
    Reject.INSUFFICIENT_BALANCE: E.INSUFFICIENT_BALANCE,
    Reject.NO_LIQUIDITY: E.NEW_ORDER_REJECTED,
    Reject.UNKNOWN_ORDER: E.ORDER_NOT_FOUND,
    Reject.NOT_OPEN: E.ORDER_FINISHED,
}


# TP/SL attached to an order (Bybit runs them once it fills): not offered here, so refused
# rather than dropped; "0" or "" means none, as Bybit reads them
ATTACHED_TPSL = ("takeProfit", "stopLoss", "tpLimitPrice", "slLimitPrice")


class NewOrder(NamedTuple):
    request: OrderRequest
    stop_order_type: str  # Bybit's stopOrderType: "" for a plain order


class Amend(NamedTuple):
    order_id: str | None
    link_id: str | None
    qty: Decimal | None
    price: Decimal | None
    trigger: Decimal | None


def parse_create(p: Params, engine: Engine) -> NewOrder:
    """Read and check an order/create body; raise BybitError with the code Bybit gives."""
    p.category()
    spec = engine.specs.get(p.text("symbol") or "")
    if spec is None:
        raise BybitError(E.INVALID_SYMBOL)
    side = SIDE_OF.get(p.text("side") or "")
    if side is None:
        raise BybitError(E.INVALID_SIDE)
    kind = p.text("orderType")
    if kind not in ("Market", "Limit"):
        raise BybitError(E.INVALID_ORDER_TYPE)
    if p.text("isLeverage") not in (None, "0"):
        raise params_error("params error: isLeverage: margin trading is not offered by the paper venue")
    order_filter = p.text("orderFilter") or "Order"
    if order_filter not in ORDER_FILTERS:
        raise BybitError(E.INVALID_ORDER_FILTER)
    trigger = p.decimal("triggerPrice")
    if order_filter != "Order" and trigger is None:
        raise params_error("params error: triggerPrice is required for a conditional order")
    _refuse_attached_tpsl(p)
    link_id = p.text("orderLinkId")
    if link_id is not None and not LINK_ID_RE.match(link_id):
        raise params_error("params error: orderLinkId must be 1-36 letters, digits, - or _")
    qty = p.decimal("qty")
    if qty is None or qty < 0:  # zero goes on to the minimum checks (170136 / 170140)
        raise params_error("params error: qty invalid")

    price: Decimal | None = None
    quote_qty: Decimal | None = None
    tif: TimeInForce | None = None
    if kind == "Limit":
        price = p.decimal("price")
        if price is None or price <= 0:
            raise params_error("params error: price is required for a Limit order")
        tif_text = p.text("timeInForce") or "GTC"
        if tif_text not in LIMIT_TIFS:
            raise BybitError(E.INVALID_TIF)
        tif = None if tif_text == "PostOnly" else TimeInForce(tif_text)
        _check_price(spec, price)
        _check_qty(spec, qty)
        _check_value(spec, qty * price)
        order_type = OrderType.LIMIT_MAKER if tif is None else OrderType.LIMIT
    else:
        unit = p.text("marketUnit") or ("quoteCoin" if side is Side.BUY else "baseCoin")
        if unit not in MARKET_UNITS:
            raise params_error("params error: marketUnit must be baseCoin or quoteCoin")
        if unit == "quoteCoin":
            if qty % quote_precision(spec):
                raise BybitError(E.MARKET_AMOUNT_DECIMALS)
            _check_value(spec, qty)
            quote_qty, qty = qty, None
        else:
            _check_qty(spec, qty)
        order_type = OrderType.MARKET

    direction = p.integer("triggerDirection", default=0)
    if direction not in (0, RISE, FALL):
        raise params_error("params error: triggerDirection must be 1 (rise) or 2 (fall)")
    if trigger is not None and order_filter != "Order":
        _check_price(spec, trigger)
        order_type, tif = _stop_type(engine, spec, side, order_type, trigger, tif, direction)
        if quote_qty is not None:
            raise params_error("params error: a conditional Market Buy needs marketUnit=baseCoin here")
    request = OrderRequest(
        symbol=spec.symbol,
        side=side,
        type=order_type,
        quantity=qty,
        quote_quantity=quote_qty,
        price=price,
        stop_price=trigger if order_filter != "Order" else None,
        time_in_force=tif,
        client_order_id=link_id,
    )
    return NewOrder(request, ORDER_FILTERS[order_filter])


def parse_amend(p: Params, spec: SymbolSpec) -> Amend:
    """Read and check an order/amend body: which order, and its new qty / price / triggerPrice
    (each checked against the spot filters with Bybit's codes, as on create)."""
    _refuse_attached_tpsl(p)
    order_id, link_id = p.text("orderId"), p.text("orderLinkId")
    if not order_id and not link_id:
        raise params_error("params error: orderId or orderLinkId is required")
    qty, price, trigger = p.decimal("qty"), p.decimal("price"), p.decimal("triggerPrice")
    if qty is None and price is None and trigger is None:
        raise params_error("params error: nothing to amend: send qty, price or triggerPrice")
    if qty is not None:
        _check_qty(spec, qty)
    for value in (price, trigger):
        if value is not None:
            _check_price(spec, value)
    return Amend(order_id, link_id, qty, price, trigger)


def _refuse_attached_tpsl(p: Params) -> None:
    """TP/SL attached to an order is refused by name: dropping it would leave a position
    without the exits its owner asked for."""
    for name in ATTACHED_TPSL:
        if p.text(name) not in (None, "0"):
            raise params_error(
                f"params error: {name}: TP/SL attached to an order is not offered by the paper "
                "venue; place the exit as its own order (orderFilter=tpslOrder) once this one filled"
            )


def _stop_type(
    engine: Engine,
    spec: SymbolSpec,
    side: Side,
    kind: OrderType,
    trigger: Decimal,
    tif: TimeInForce | None,
    direction: int,
) -> tuple[OrderType, TimeInForce | None]:
    try:
        last = engine.quote(spec.symbol).price
    except EngineError as exc:
        raise from_engine(exc, None, engine) from None
    if direction == RISE and trigger <= last:
        raise BybitError(E.EXPECT_RISING, fmt_args=(fmt(trigger), fmt(last)))
    if direction == FALL and trigger >= last:
        raise BybitError(E.EXPECT_FALLING, fmt_args=(fmt(trigger), fmt(last)))
    rise = direction == RISE if direction else trigger > last
    stop_loss = (side is Side.BUY) == rise
    if kind is OrderType.MARKET:
        return (OrderType.STOP_LOSS if stop_loss else OrderType.TAKE_PROFIT), None
    limit = OrderType.STOP_LOSS_LIMIT if stop_loss else OrderType.TAKE_PROFIT_LIMIT
    return limit, tif or TimeInForce.GTC


def _check_price(spec: SymbolSpec, price: Decimal) -> None:
    f = spec.filters
    if price % f.tick_size:
        raise BybitError(E.PRICE_DECIMALS)
    if price < f.min_price:
        raise BybitError(E.PRICE_TOO_LOW)
    if price > f.max_price:
        raise BybitError(E.PRICE_TOO_HIGH)


def _check_qty(spec: SymbolSpec, qty: Decimal) -> None:
    f = spec.filters
    if qty % f.step_size:
        raise BybitError(E.QTY_DECIMALS)
    if qty < f.min_qty:
        raise BybitError(E.QTY_TOO_SMALL)
    if qty > f.max_qty:
        raise BybitError(E.QTY_TOO_LARGE)


def _check_value(spec: SymbolSpec, value: Decimal) -> None:
    if value < spec.filters.min_notional:
        raise BybitError(E.VALUE_TOO_SMALL)
    if value > spec.filters.max_notional:
        raise BybitError(E.AMOUNT_TOO_LARGE)


def from_engine(exc: EngineError, req: OrderRequest | None, engine: Engine) -> BybitError:
    """The engine's refusal in Bybit's words (the price band gets the bound it broke)."""
    if exc.reason is Reject.PERCENT_PRICE and req is not None and req.price is not None:
        f = engine.specs[req.symbol].filters
        ref = engine.quote(req.symbol).ref_price
        lo, hi = f.price_band(req.side, ref)
        if req.price > ref:
            if req.side is Side.BUY:
                return BybitError(E.BUY_PRICE_LIMIT, fmt_args=(fmt(hi),))
            return BybitError(E.PRICE_TOO_HIGH)
        if req.side is Side.SELL:
            return BybitError(E.SELL_PRICE_LIMIT, fmt_args=(fmt(lo),))
        return BybitError(E.PRICE_TOO_LOW)
    code = _ENGINE_CODES.get(exc.reason)
    if code is None:  # MISSING_PARAM, BAD_PARAM, WOULD_TRIGGER
        return params_error(f"params error: {exc.param or exc.reason.value.lower()} invalid")
    return BybitError(code)
