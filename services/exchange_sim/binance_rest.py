"""Binance spot REST under /api/v3/: routing, request weight, authentication, injected faults.

The pipeline of every request, in Binance's order: injected pre-faults (reject, 429, 418),
request weight and order count (429 / 418), API key (-2014 / -2015), signature (-1022) and
timestamp (-1021) for SIGNED endpoints, the endpoint itself, then injected post-faults
(drop the reply, answer 5xx) — post-faults act after the work is done, like a real outage.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple
from urllib.parse import parse_qsl

from aiohttp import web

from services.exchange_sim import binance_lists as lists
from services.exchange_sim import binance_tape as tape
from services.exchange_sim.binance_api import PROTOCOL, BinanceApi, api_for
from services.exchange_sim.binance_auth import check_key, check_rest_signature, check_timestamp
from services.exchange_sim.binance_errors import BinanceError, Params
from services.exchange_sim.ratelimit import RateLimited
from services.exchange_sim.replies import fault_reply, hold_and_drop, json_reply
from services.exchange_sim.telemetry import sim_metrics
from services.exchange_sim.venue import Venue

NONE, API_KEY, SIGNED = "NONE", "API_KEY", "SIGNED"
INTERNAL_ERROR = {"code": -1001, "msg": "Internal error; unable to process your request. Please try again."}
Weight = int | Callable[[Params], int]


def _by_symbol(one: int, every: int) -> Callable[[Params], int]:
    return lambda p: one if "symbol" in p else every


def _per_symbol(p: Params) -> int:
    """The rolling and trading-day tickers: 4 a symbol, at most 200."""
    return min(4 * len(p.symbols() or ()), 200)


def _depth_weight(p: Params) -> int:
    limit = p.integer("limit", default=100) or 100
    return 5 if limit <= 100 else 25 if limit <= 500 else 50 if limit <= 1000 else 250


class Route(NamedTuple):
    method: str
    path: str
    security: str
    weight: Weight
    call: Callable[[BinanceApi, Params], Any]
    orders: int = 0


ROUTES = [
    Route("GET", "/api/v3/ping", NONE, 1, BinanceApi.ping),
    Route("GET", "/api/v3/time", NONE, 1, BinanceApi.time),
    Route("GET", "/api/v3/exchangeInfo", NONE, 20, BinanceApi.exchange_info),
    Route("GET", "/api/v3/klines", NONE, 2, BinanceApi.klines),
    Route("GET", "/api/v3/uiKlines", NONE, 2, BinanceApi.klines),
    Route("GET", "/api/v3/ticker/price", NONE, _by_symbol(2, 4), BinanceApi.ticker_price),
    Route("GET", "/api/v3/ticker/bookTicker", NONE, _by_symbol(2, 4), BinanceApi.book_ticker),
    Route("GET", "/api/v3/ticker/24hr", NONE, _by_symbol(2, 80), BinanceApi.ticker_24h),
    Route("GET", "/api/v3/ticker", NONE, _per_symbol, BinanceApi.ticker_window),
    Route("GET", "/api/v3/ticker/tradingDay", NONE, _per_symbol, BinanceApi.ticker_trading_day),
    Route("GET", "/api/v3/avgPrice", NONE, 2, BinanceApi.avg_price),
    Route("GET", "/api/v3/trades", NONE, 25, tape.recent_trades),
    Route("GET", "/api/v3/historicalTrades", NONE, 25, tape.historical_trades),
    Route("GET", "/api/v3/aggTrades", NONE, 4, tape.agg_trades),
    Route("GET", "/api/v3/depth", NONE, _depth_weight, BinanceApi.depth),
    Route("GET", "/api/v3/account", SIGNED, 20, BinanceApi.account),
    Route("GET", "/api/v3/account/commission", SIGNED, 20, BinanceApi.account_commission),
    Route("POST", "/api/v3/order", SIGNED, 1, BinanceApi.new_order, orders=1),
    Route("POST", "/api/v3/order/test", SIGNED, 1, BinanceApi.test_order),
    Route("GET", "/api/v3/order", SIGNED, 4, BinanceApi.get_order),
    Route("DELETE", "/api/v3/order", SIGNED, 1, BinanceApi.cancel_order),
    Route("GET", "/api/v3/openOrders", SIGNED, _by_symbol(6, 80), BinanceApi.open_orders),
    Route("DELETE", "/api/v3/openOrders", SIGNED, 1, BinanceApi.cancel_open_orders),
    Route("GET", "/api/v3/allOrders", SIGNED, 20, BinanceApi.all_orders),
    Route("GET", "/api/v3/myTrades", SIGNED, 20, BinanceApi.my_trades),
    Route("GET", "/api/v3/rateLimit/order", SIGNED, 40, tape.order_count),
    Route("GET", "/api/v3/myPreventedMatches", SIGNED, 2, tape.no_prevented_matches),
    Route("GET", "/api/v3/myAllocations", SIGNED, 20, tape.no_allocations),
    Route("POST", "/api/v3/order/cancelReplace", SIGNED, 1, tape.cancel_replace),
    Route("POST", "/api/v3/orderList/oco", SIGNED, 1, lists.new_oco, orders=2),
    Route("POST", "/api/v3/order/oco", SIGNED, 1, lists.new_oco_legacy, orders=2),
    Route("POST", "/api/v3/orderList/oto", SIGNED, 1, lists.new_oto, orders=2),
    Route("POST", "/api/v3/orderList/otoco", SIGNED, 1, lists.new_otoco, orders=3),
    Route("GET", "/api/v3/orderList", SIGNED, 4, lists.get_list),
    Route("DELETE", "/api/v3/orderList", SIGNED, 1, lists.cancel_list),
    Route("GET", "/api/v3/openOrderList", SIGNED, 6, lists.open_lists),
    Route("GET", "/api/v3/allOrderList", SIGNED, 20, lists.all_lists),
    Route("POST", "/api/v3/userDataStream", API_KEY, 2, BinanceApi.new_listen_key),
    Route("PUT", "/api/v3/userDataStream", API_KEY, 2, BinanceApi.keepalive_listen_key),
    Route("DELETE", "/api/v3/userDataStream", API_KEY, 2, BinanceApi.close_listen_key),
]


def setup(app: web.Application, venue: Venue) -> None:
    api = api_for(app, venue)
    for route in ROUTES:
        app.router.add_route(route.method, route.path, _handler(route, api, venue))


def _handler(route: Route, api: BinanceApi, venue: Venue) -> Callable[[web.Request], Any]:
    async def handle(request: web.Request) -> web.StreamResponse:
        response = await _serve(request, route, api, venue)
        sim_metrics().requests.labels(PROTOCOL, route.path, str(response.status)).inc()
        return response

    return handle


async def _serve(request: web.Request, route: Route, api: BinanceApi, venue: Venue) -> web.StreamResponse:
    raw_query = request.raw_path.partition("?")[2]
    raw_body = await request.text() if request.body_exists else ""
    params = Params(
        dict(parse_qsl(raw_query, keep_blank_values=True)) | dict(parse_qsl(raw_body, keep_blank_values=True))
    )
    # the order's client id too, so a test can fault one bot's orders and not another's
    cid = (
        params.text("newClientOrderId")
        or params.text("origClientOrderId")
        or params.text("listClientOrderId")
    )
    ctx = {"protocol": PROTOCOL, "path": request.path, "method": request.method, "client_order_id": cid}
    faults, limiter = venue.faults, venue.limiter
    headers: dict[str, str] = {}
    processed = False
    try:
        if fault := faults.take("reject", **ctx):
            sim_metrics().faults.labels("reject").inc()
            return fault_reply(fault, INTERNAL_ERROR)
        if fault := faults.take("rate_limit", **ctx):
            raise RateLimited(429, -1003, "Too many requests queued.", fault.retry_after)
        if faults.take("ban", **ctx):
            raise RateLimited(
                418,
                -1003,
                "Way too much request weight used; IP banned. Please use WebSocket Streams for live updates to avoid bans.",
                120,
            )
        weight = route.weight(params) if callable(route.weight) else route.weight
        limiter.charge(weight, orders=route.orders)
        if route.security != NONE:
            check_key(request.headers.get("X-MBX-APIKEY"), venue.config.api_key)
        if route.security == SIGNED:
            check_rest_signature(raw_query, raw_body, venue.config.api_secret)
            check_timestamp(params.text("timestamp"), params.text("recvWindow"), venue.clock.now_ms())
        processed = True
        status, body = 200, route.call(api, params)
    except BinanceError as exc:
        status, body = exc.status, exc.body()
    except RateLimited as exc:
        status, body = exc.status, {"code": exc.code, "msg": exc.msg}
        headers["Retry-After"] = str(exc.retry_after)
    headers.update(limiter.headers(orders=route.orders > 0))
    if processed:
        if fault := faults.take("drop_reply", **ctx):
            sim_metrics().faults.labels("drop_reply").inc()
            return await hold_and_drop(request, fault.hold_s)
        if fault := faults.take("error", **ctx):
            sim_metrics().faults.labels("error").inc()
            return fault_reply(fault, INTERNAL_ERROR, headers)
        if faults.take("empty_body", **ctx):
            sim_metrics().faults.labels("empty_body").inc()
            return json_reply({}, 200, headers)
    return json_reply(body, status, headers)
