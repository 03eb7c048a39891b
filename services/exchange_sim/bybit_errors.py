"""The Bybit V5 retCode catalogue the paper venue answers with, and the error that carries one.

Codes and messages follow Bybit's error-code page (UTA and Spot Trade tables). Where the real
venue's choice is not documented for spot on a unified account, the choice is written in
docs/PAPER_VENUE.md (Bybit section) so an adapter knows what to expect.
"""

from __future__ import annotations

from typing import NamedTuple


class Code(NamedTuple):
    code: int
    msg: str


# Authentication and request framing
PARAMS = Code(10001, "Request parameter error.")
RECV_WINDOW = Code(10002, "invalid request, please check your server timestamp or recv_window param.")
INVALID_KEY = Code(10003, "API key is invalid.")
BAD_SIGN = Code(10004, "Error sign, please check your signature generation algorithm.")
RATE_LIMIT = Code(10006, "Too many visits. Exceeded the API Rate Limit.")
SERVER_ERROR = Code(10016, "Server error.")
ROUTE_NOT_FOUND = Code(10017, "Route not found.")
# Orders and balances (UTA table)
ORDER_NOT_FOUND = Code(110001, "Order does not exist")
INSUFFICIENT_BALANCE = Code(110007, "Available balance is insufficient")
ORDER_FINISHED = Code(110008, "The order has been completed or cancelled.")
DUPLICATE_LINK_ID = Code(110072, "OrderLinkedID is duplicate")
EXPECT_RISING = Code(110092, "expect Rising, but trigger_price[{}] <= current[{}]")
EXPECT_FALLING = Code(110093, "expect Falling, but trigger_price[{}] >= current[{}]")
# Spot filters (Spot Trade table)
INVALID_SIDE = Code(170117, "Invalid side.")
INVALID_TIF = Code(170115, "Invalid timeInForce.")
INVALID_ORDER_TYPE = Code(170116, "Invalid orderType.")
INVALID_SYMBOL = Code(170121, "Invalid symbol.")
PRICE_TOO_HIGH = Code(170132, "Order price too high.")
PRICE_TOO_LOW = Code(170133, "Order price lower than the minimum.")
PRICE_DECIMALS = Code(170134, "Order price decimal too long.")
QTY_TOO_LARGE = Code(170135, "Order quantity too large.")
QTY_TOO_SMALL = Code(170136, "Order quantity lower than the minimum.")
QTY_DECIMALS = Code(170137, "Order volume decimal too long")
VALUE_TOO_SMALL = Code(170140, "Order value exceeded lower limit.")
MARKET_AMOUNT_DECIMALS = Code(170148, "Market order amount decimal too long")
BUY_PRICE_LIMIT = Code(170193, "Buy order price cannot be higher than {}.")
SELL_PRICE_LIMIT = Code(170194, "Sell order price cannot be lower than {}.")
AMOUNT_TOO_LARGE = Code(170124, "Order amount too large.")
PAIR_NOT_OPEN = Code(170151, "The trading pair is not open yet")
INVALID_ORDER_FILTER = Code(170201, "Invalid orderFilter parameter")
NEW_ORDER_REJECTED = Code(170210, "New order rejected.")
POST_ONLY_REJECTED = Code(170218, "The LIMIT-MAKER order is rejected due to invalid price.")
TOO_MANY_ORDERS = Code(170810, "Cannot exceed maximum of 500 conditional, TP/SL and active orders.")


class BybitError(Exception):
    """A request the venue refuses: answered with this retCode (HTTP 200, as Bybit does).

    `http_status` is only set for the cases answered outside the JSON envelope's meaning
    (faults, unknown routes); `headers` carries e.g. the rate-limit reset time."""

    def __init__(
        self,
        code: Code,
        detail: str = "",
        *,
        fmt_args: tuple[object, ...] = (),
        http_status: int = 200,
        headers: dict[str, str] | None = None,
    ) -> None:
        msg = code.msg.format(*fmt_args) if fmt_args else code.msg
        self.ret_code = code.code
        self.ret_msg = f"{msg} {detail}".strip() if detail else msg
        self.http_status = http_status
        self.headers = headers or {}
        super().__init__(f"{self.ret_code}: {self.ret_msg}")


def params_error(detail: str) -> BybitError:
    """10001 with the parameter named, as Bybit's `params error: ...` messages do."""
    return BybitError(PARAMS, detail)
