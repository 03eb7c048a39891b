"""Binance's error answers and request parameters: codes, messages and HTTP statuses as the real API.

`BinanceError` is what every Binance endpoint raises; REST turns it into `{"code", "msg"}`
with its HTTP status, the WebSocket API into `{"status", "error": {"code", "msg"}}`.
`Params` reads the string parameters and refuses malformed ones the way Binance does.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from decimal import Decimal, InvalidOperation

from shared.matching.engine import EngineError, Reject, Side

CLIENT_ID_RE = re.compile(r"^[\.A-Z\:/a-z0-9_-]{1,36}$")
MAX_PRECISION = 8
LIMIT = 10**20  # numbers have at most 20 integer digits (and beyond 28 digits Decimal math raises)


class BinanceError(Exception):
    def __init__(self, code: int, msg: str, status: int = 400) -> None:
        super().__init__(f"{code}: {msg}")
        self.code, self.msg, self.status = code, msg, status

    def body(self) -> dict[str, object]:
        return {"code": self.code, "msg": self.msg}


def mandatory(name: str) -> BinanceError:
    return BinanceError(-1102, f"Mandatory parameter '{name}' was not sent, was empty/null, or malformed.")


def not_required(name: str) -> BinanceError:
    return BinanceError(-1106, f"Parameter '{name}' sent when not required.")


INVALID_SYMBOL = BinanceError(-1121, "Invalid symbol.")
UNKNOWN_ORDER_SENT = BinanceError(-2011, "Unknown order sent.")
ORDER_DOES_NOT_EXIST = BinanceError(-2013, "Order does not exist.")
BAD_SIGNATURE = BinanceError(-1022, "Signature for this request is not valid.")
BAD_KEY_FORMAT = BinanceError(-2014, "API-key format invalid.", 401)
REJECTED_KEY = BinanceError(-2015, "Invalid API-key, IP, or permissions for action.", 401)
OUTSIDE_RECV_WINDOW = BinanceError(-1021, "Timestamp for this request is outside of the recvWindow.")
AHEAD_OF_SERVER = BinanceError(-1021, "Timestamp for this request was 1000ms ahead of the server's time.")
BAD_LISTEN_KEY = BinanceError(-1125, "This listenKey does not exist.")
ONE_ID_NEEDED = BinanceError(
    -1102, "Param 'origClientOrderId' or 'orderId' must be sent, but both were empty/null!"
)

_ENGINE_PARAM = {
    "quantity": "quantity",
    "quote_quantity": "quoteOrderQty",
    "price": "price",
    "stop_price": "stopPrice",
    "time_in_force": "timeInForce",
    "symbol": "symbol",
}

_REJECTED = {
    Reject.MARKET_CLOSED: "Market is closed.",
    Reject.DUPLICATE_ORDER: "Duplicate order sent.",
    Reject.WOULD_MATCH: "Order would immediately match and take.",
    Reject.WOULD_TRIGGER: "Order would trigger immediately.",
    Reject.INSUFFICIENT_BALANCE: "Account has insufficient balance for requested action.",
    Reject.NO_LIQUIDITY: "Order book liquidity is less than LOT_SIZE filter minimum quantity.",
}

_FILTERS = {
    Reject.PRICE_FILTER: "PRICE_FILTER",
    Reject.LOT_SIZE: "LOT_SIZE",
    Reject.NOTIONAL: "NOTIONAL",
    Reject.PERCENT_PRICE: "PERCENT_PRICE_BY_SIDE",
    Reject.MAX_NUM_ORDERS: "MAX_NUM_ORDERS",
}


def from_engine(exc: EngineError, *, cancel: bool = False) -> BinanceError:
    """The Binance answer to an engine refusal; `cancel` picks -2011 over -2013 for a missing order."""
    reason = exc.reason
    if reason is Reject.UNKNOWN_SYMBOL:
        return INVALID_SYMBOL
    if reason in (Reject.UNKNOWN_ORDER, Reject.NOT_OPEN):
        return UNKNOWN_ORDER_SENT if cancel or reason is Reject.NOT_OPEN else ORDER_DOES_NOT_EXIST
    if reason in _REJECTED:
        return BinanceError(-2011 if cancel else -2010, _REJECTED[reason])
    if reason in _FILTERS:
        return BinanceError(-1013, f"Filter failure: {_FILTERS[reason]}")
    if reason is Reject.MISSING_PARAM:
        if exc.param == "order_id":
            return ONE_ID_NEEDED
        return mandatory(_ENGINE_PARAM.get(exc.param or "", exc.param or "?"))
    return BinanceError(-1102, f"Illegal parameter: {exc.detail}")


LIST_DOES_NOT_EXIST = BinanceError(-2013, "Order list does not exist.")
UNKNOWN_LIST_SENT = BinanceError(-2011, "Unknown order list sent.")
_OCO = {  # errors.md: -1158, -1168, and the leg placed on the wrong side
    Reject.OCO_TYPES: (-1158, "Order type not supported in OCO."),
    Reject.OCO_NOT_CONTINGENT: (-1168, "At least one OCO order must be contingent."),
    ("limit", Side.BUY): (-1165, "A limit order in a buy OCO must be below."),
    ("limit", Side.SELL): (-1166, "A limit order in a sell OCO must be above."),
    ("stop", Side.BUY): (-1196, "A stop loss order in a buy OCO must be above."),
    ("stop", Side.SELL): (-1197, "A stop loss order in a sell OCO must be below."),
}


def from_list_engine(exc: EngineError, side: Side | None = None, *, cancel: bool = False) -> BinanceError:
    """The Binance answer to an engine refusal of an order list (`side`: the OCO's)."""
    reason = exc.reason
    if reason is Reject.OCO_BAD_PRICES:
        return BinanceError(-2010, "The relationship of the prices for the orders is not correct.")
    if reason is Reject.OCO_LEG_PLACE and side is not None:
        return BinanceError(*_OCO[(exc.param or "", side)])
    if reason in _OCO:
        return BinanceError(*_OCO[reason])
    if reason is Reject.UNKNOWN_LIST or (cancel and reason is Reject.NOT_OPEN):
        return UNKNOWN_LIST_SENT if cancel else LIST_DOES_NOT_EXIST
    if reason is Reject.MISSING_PARAM and exc.param == "list_id":
        return BinanceError(
            -1102, "Param 'orderListId' or 'listClientOrderId' must be sent, but both were empty/null!"
        )
    return from_engine(exc, cancel=cancel)


class Params:
    """A request's parameters (all strings), read with Binance's validation rules."""

    def __init__(self, values: Mapping[str, str]) -> None:
        self.values = dict(values)

    def __contains__(self, name: str) -> bool:
        return self.values.get(name, "") != ""

    def text(self, name: str, *, required: bool = False) -> str | None:
        value = self.values.get(name)
        if value in (None, ""):
            if required:
                raise mandatory(name)
            return None
        return value

    def req(self, name: str) -> str:
        value = self.text(name, required=True)
        assert value is not None
        return value

    def decimal(self, name: str, *, required: bool = False) -> Decimal | None:
        text = self.text(name, required=required)
        if text is None:
            return None
        try:
            value = Decimal(text)
        except InvalidOperation:
            raise BinanceError(
                -1100,
                f"Illegal characters found in parameter '{name}'; legal range is '^([0-9]{{1,20}})(\\.[0-9]{{1,20}})?$'.",
            ) from None
        if not value.is_finite() or value < 0 or value >= LIMIT:  # Binance allows 20 digits
            raise BinanceError(-1100, f"Illegal characters found in parameter '{name}'.")
        exponent = value.as_tuple().exponent
        if (
            isinstance(exponent, int)
            and -exponent > MAX_PRECISION
            and value != value.quantize(Decimal(1).scaleb(-MAX_PRECISION))
        ):
            raise BinanceError(-1111, f"Parameter '{name}' has too much precision.")
        return value

    def integer(self, name: str, *, required: bool = False, default: int | None = None) -> int | None:
        text = self.text(name, required=required)
        if text is None:
            return default
        try:
            value = int(text)
            if not -LIMIT < value < LIMIT:
                raise ValueError(text)
        except ValueError:
            raise BinanceError(
                -1100, f"Illegal characters found in parameter '{name}'; legal range is '^-?[0-9]{{1,20}}$'."
            ) from None
        return value

    def client_id(self, name: str) -> str | None:
        value = self.text(name)
        if value is not None and not CLIENT_ID_RE.match(value):
            raise BinanceError(
                -1100,
                f"Illegal characters found in parameter '{name}'; legal range is '{CLIENT_ID_RE.pattern}'.",
            )
        return value

    def symbols(self) -> list[str] | None:
        """`symbol=X` or `symbols=["X","Y"]` (JSON list, as Binance takes it); None: all."""
        one = self.text("symbol")
        if one is not None:
            return [one]
        many = self.text("symbols")
        if many is None:
            return None
        names = [s.strip().strip('"') for s in many.strip("[] ").split(",") if s.strip()]
        if not names:
            raise mandatory("symbols")
        return names
