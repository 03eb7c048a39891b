"""Bybit V5 REST under /v5/: routing, authentication, injected faults, the JSON envelope.

The pipeline of every request: injected pre-faults (reject -> HTTP error page, rate_limit ->
retCode 10006 with X-Bapi-Limit-Reset-Timestamp, ban -> HTTP 403 as Bybit's IP ban), the
X-BAPI-* signature and recv window for private endpoints (10003 / 10004 / 10002), the
endpoint, then injected post-faults (drop the reply, answer 5xx) which act after the work
is done. Refusals are HTTP 200 with a non-zero retCode, as Bybit answers them.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any, NamedTuple

from aiohttp import web

from services.exchange_sim.bybit_api import PROTOCOL, BybitApi
from services.exchange_sim.bybit_auth import check_rest, get_payloads
from services.exchange_sim.bybit_batch import Batch
from services.exchange_sim.bybit_errors import RATE_LIMIT, SERVER_ERROR, BybitError, params_error
from services.exchange_sim.bybit_format import envelope, error_envelope
from services.exchange_sim.bybit_params import Params
from services.exchange_sim.bybit_state import face_for
from services.exchange_sim.replies import fault_reply, hold_and_drop, json_reply
from services.exchange_sim.telemetry import sim_metrics
from services.exchange_sim.venue import Venue

BAN_PAGE = "403 Forbidden: access too frequent"


class Route(NamedTuple):
    method: str
    path: str
    signed: bool
    call: Callable[[BybitApi, Params], Any]


ROUTES = [
    Route("GET", "/v5/market/time", False, BybitApi.time),
    Route("GET", "/v5/market/instruments-info", False, BybitApi.instruments),
    Route("GET", "/v5/market/kline", False, BybitApi.kline),
    Route("GET", "/v5/market/tickers", False, BybitApi.tickers),
    Route("GET", "/v5/market/orderbook", False, BybitApi.orderbook),
    Route("GET", "/v5/market/recent-trade", False, BybitApi.recent_trades),
    Route("POST", "/v5/order/create", True, BybitApi.create),
    Route("POST", "/v5/order/amend", True, BybitApi.amend),
    Route("POST", "/v5/order/cancel", True, BybitApi.cancel),
    Route("POST", "/v5/order/cancel-all", True, BybitApi.cancel_all),
    Route("POST", "/v5/order/create-batch", True, BybitApi.create_batch),
    Route("POST", "/v5/order/amend-batch", True, BybitApi.amend_batch),
    Route("POST", "/v5/order/cancel-batch", True, BybitApi.cancel_batch),
    Route("GET", "/v5/order/realtime", True, BybitApi.realtime),
    Route("GET", "/v5/order/history", True, BybitApi.history),
    Route("GET", "/v5/execution/list", True, BybitApi.executions),
    Route("GET", "/v5/account/wallet-balance", True, BybitApi.wallet),
    Route("GET", "/v5/account/fee-rate", True, BybitApi.fee_rates),
]


def setup(app: web.Application, venue: Venue) -> None:
    api = BybitApi(venue, face_for(app, venue))
    for route in ROUTES:
        app.router.add_route(route.method, route.path, _handler(route, api, venue))


def _handler(route: Route, api: BybitApi, venue: Venue) -> Callable[[web.Request], Any]:
    async def handle(request: web.Request) -> web.StreamResponse:
        response = await _serve(request, route, api, venue)
        sim_metrics().requests.labels(PROTOCOL, route.path, str(response.status)).inc()
        return response

    return handle


def _params(request: web.Request, raw_body: str) -> Params:
    if request.method == "GET":
        return Params(request.query)
    try:
        body = json.loads(raw_body) if raw_body.strip() else {}
    except ValueError:
        raise params_error("params error: the body is not JSON") from None
    if not isinstance(body, dict):
        raise params_error("params error: the body must be a JSON object")
    return Params(body)


def _rate_limited(retry_after_s: int) -> BybitError:
    """10006 with the reset time pybit sleeps until (wall clock: it compares with its own)."""
    reset_ms = int(time.time() * 1000) + max(1, retry_after_s) * 1000
    headers = {
        "X-Bapi-Limit": "20",
        "X-Bapi-Limit-Status": "0",
        "X-Bapi-Limit-Reset-Timestamp": str(reset_ms),
    }
    return BybitError(RATE_LIMIT, headers=headers)


async def _serve(request: web.Request, route: Route, api: BybitApi, venue: Venue) -> web.StreamResponse:
    raw_query = request.raw_path.partition("?")[2]
    raw_body = await request.text() if request.body_exists else ""
    ctx: dict[str, Any] = {"protocol": PROTOCOL, "path": request.path, "method": request.method}
    faults = venue.faults
    processed = False
    try:
        if fault := faults.take("reject", **ctx):
            sim_metrics().faults.labels("reject").inc()
            return fault_reply(fault, error_envelope(BybitError(SERVER_ERROR), venue.clock.now_ms()))
        if fault := faults.take("rate_limit", **ctx):
            sim_metrics().faults.labels("rate_limit").inc()
            raise _rate_limited(fault.retry_after)
        if faults.take("ban", **ctx):
            sim_metrics().faults.labels("ban").inc()
            return web.Response(text=BAN_PAGE, status=403, content_type="text/plain")
        if route.signed:
            payloads = get_payloads(raw_query) if request.method == "GET" else [raw_body]
            check_rest(
                request.headers,
                payloads,
                api_key=venue.config.api_key,
                secret=venue.config.api_secret,
                now_ms=venue.clock.now_ms(),
            )
        params = _params(request, raw_body)
        ctx.update(symbol=params.text("symbol"), client_order_id=params.text("orderLinkId"))
        processed = True
        result = route.call(api, params)
        ext = result.ext if isinstance(result, Batch) else {}
        body = envelope(result.result if isinstance(result, Batch) else result, venue.clock.now_ms(), ext)
        status, headers = 200, {}
    except BybitError as exc:
        status, headers, body = exc.http_status, exc.headers, error_envelope(exc, venue.clock.now_ms())
    if processed:
        ctx = {k: v for k, v in ctx.items() if v is not None}
        if fault := faults.take("drop_reply", **ctx):
            sim_metrics().faults.labels("drop_reply").inc()
            return await hold_and_drop(request, fault.hold_s)
        if fault := faults.take("error", **ctx):
            sim_metrics().faults.labels("error").inc()
            return fault_reply(fault, error_envelope(BybitError(SERVER_ERROR), venue.clock.now_ms()))
        if faults.take("empty_body", **ctx):
            sim_metrics().faults.labels("empty_body").inc()
            return json_reply({}, 200, headers)
    return json_reply(body, status, headers)
