"""The control API under /control/ — for tests and demos, not part of any exchange protocol.

Reset, move the market (steps, candles, a chosen price), change balances and liquidity,
read the journal, and inject faults (see faults.py). JSON in, JSON out; loopback only, no
authentication (the venue never listens beyond SIM_HOST).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from decimal import Decimal, InvalidOperation
from typing import Any

import msgspec
from aiohttp import web

from services.exchange_sim.engine import MARKET_FILLS, EngineError
from services.exchange_sim.faults import FaultError
from services.exchange_sim.venue import Venue

Handler = Callable[[web.Request], Awaitable[web.Response]]
DEFAULT_ACCOUNT = "binance"


class BadRequest(ValueError):
    pass


def _json(data: Any, status: int = 200) -> web.Response:
    return web.Response(body=msgspec.json.encode(data), status=status, content_type="application/json")


def _dec(body: dict[str, Any], key: str) -> Decimal:
    try:
        value = Decimal(str(body[key]))
    except KeyError:
        raise BadRequest(f"missing field {key!r}") from None
    except InvalidOperation:
        raise BadRequest(f"{key} is not a number: {body[key]!r}") from None
    if not value.is_finite():
        raise BadRequest(f"{key} is not finite")
    return value


def state(venue: Venue) -> dict[str, Any]:
    market = venue.market
    return {
        "market_time": market.time,
        "steps": market.steps,
        "phase": market.phase,
        "speed": venue.speed,
        "prices": {s: market.price(s) for s in market.symbols},
        "skew_ms": venue.clock.skew_ms,
        "server_time": venue.clock.now_ms(),
        "faults": venue.faults.active(),
        "limits": {
            "weight_limit": venue.limiter.weight_limit,
            "used_weight": venue.limiter.used_weight,
            "order_limit_10s": venue.limiter.order_limit_10s,
            "banned_until_ms": int(venue.limiter.banned_until * 1000),
        },
        "websockets": venue.sockets.count(),
        "sockets": venue.sockets.by_kind(),
        "knobs": market.knobs,
        "market_fill": venue.engine.market_fill,
    }


def setup(app: web.Application, venue: Venue) -> None:
    def route(fn: Callable[[Venue, dict[str, Any], web.Request], Any]) -> Handler:
        async def handler(request: web.Request) -> web.Response:
            body: dict[str, Any] = {}
            if request.can_read_body:
                try:
                    body = await request.json()
                except ValueError:
                    return _json({"error": "body is not JSON"}, 400)
                if not isinstance(body, dict):
                    return _json({"error": "body must be a JSON object"}, 400)
            try:
                result = fn(venue, body, request)
                if isinstance(result, Awaitable):
                    result = await result
            except (BadRequest, FaultError, EngineError, KeyError, ValueError) as exc:
                return _json({"error": f"{type(exc).__name__}: {exc}"}, 400)
            return _json(result)

        return handler

    r = app.router
    r.add_get("/control/state", route(lambda v, b, q: state(v)))
    r.add_post("/control/reset", route(_reset))
    r.add_post("/control/advance", route(_advance))
    r.add_post("/control/price", route(_price))
    r.add_post("/control/market", route(_market))
    r.add_post("/control/speed", route(_speed))
    r.add_post("/control/balance", route(_balance))
    r.add_get("/control/balances", route(_balances))
    r.add_get("/control/journal", route(_journal))
    r.add_get("/control/orders", route(_orders))
    r.add_get("/control/faults", route(lambda v, b, q: v.faults.active()))
    r.add_post("/control/faults", route(_add_fault))
    r.add_delete("/control/faults", route(_clear_faults))
    r.add_post("/control/clock", route(_clock))
    r.add_post("/control/limits", route(_limits))
    r.add_post("/control/close_ws", route(_close_ws))


def _reset(venue: Venue, body: dict[str, Any], _r: web.Request) -> dict[str, Any]:
    venue.reset()
    return state(venue)


def _advance(venue: Venue, body: dict[str, Any], _r: web.Request) -> dict[str, Any]:
    steps, candles = int(body.get("steps", 0)), int(body.get("candles", 0))
    if steps <= 0 and candles <= 0:
        steps = 1
    venue.market.advance(steps=steps, candles=candles)
    return state(venue)


def _price(venue: Venue, body: dict[str, Any], _r: web.Request) -> dict[str, Any]:
    symbol = str(body.get("symbol", ""))
    if symbol not in venue.market.symbols:
        raise BadRequest(f"unknown symbol {symbol!r}")
    venue.market.push_price(symbol, _dec(body, "price"))
    return state(venue)


def _market(venue: Venue, body: dict[str, Any], _r: web.Request) -> dict[str, Any]:
    if "market_fill" in body:  # venue-wide: when market orders fill (see engine.py)
        if body["market_fill"] not in MARKET_FILLS:
            raise BadRequest(f"market_fill must be one of {', '.join(MARKET_FILLS)}")
        venue.engine.market_fill = body["market_fill"]
    symbols = [body["symbol"]] if body.get("symbol") else venue.market.symbols
    for symbol in symbols:
        knobs = venue.market.knobs[symbol]
        if "max_fill" in body:
            knobs.max_fill = None if body["max_fill"] is None else _dec(body, "max_fill")
        if "participation" in body:
            knobs.participation = _dec(body, "participation")
    return state(venue)


async def _speed(venue: Venue, body: dict[str, Any], _r: web.Request) -> dict[str, Any]:
    await venue.set_speed(float(body.get("speed", 0)))
    return state(venue)


def _balance(venue: Venue, body: dict[str, Any], _r: web.Request) -> dict[str, Any]:
    account = str(body.get("account", DEFAULT_ACCOUNT))
    wanted = body.get("balances") or {body.get("asset", ""): body.get("free")}
    for asset, free in wanted.items():
        if not asset:
            raise BadRequest("give asset and free, or balances: {asset: free}")
        venue.engine.set_balance(account, str(asset).upper(), _dec({"free": free}, "free"))
    return {"account": account, "balances": venue.engine.balances(account)}


def _balances(venue: Venue, _b: dict[str, Any], request: web.Request) -> dict[str, Any]:
    account = request.query.get("account", DEFAULT_ACCOUNT)
    return {"account": account, "balances": venue.engine.balances(account)}


def _journal(venue: Venue, _b: dict[str, Any], request: web.Request) -> list[Any]:
    since = int(request.query.get("since", 0))
    return venue.engine.journal(since, request.query.get("account"))


def _orders(venue: Venue, _b: dict[str, Any], request: web.Request) -> list[Any]:
    return venue.engine.orders(request.query.get("account", DEFAULT_ACCOUNT))


def _add_fault(venue: Venue, body: dict[str, Any], _r: web.Request) -> Any:
    options = dict(body)
    kind = str(options.pop("kind", ""))
    count = options.pop("count", None)
    seconds = options.pop("seconds", None)
    match = options.pop("match", None)
    return venue.faults.add(kind, count=count, seconds=seconds, match=match, **options)


def _clear_faults(venue: Venue, _b: dict[str, Any], request: web.Request) -> dict[str, Any]:
    if "id" in request.query:
        return {"removed": venue.faults.remove(int(request.query["id"]))}
    venue.faults.clear()
    return {"removed": True}


def _clock(venue: Venue, body: dict[str, Any], _r: web.Request) -> dict[str, Any]:
    venue.clock.skew_ms = int(body.get("skew_ms", 0))
    return state(venue)


def _limits(venue: Venue, body: dict[str, Any], _r: web.Request) -> dict[str, Any]:
    if body.get("reset"):
        venue.limiter.reset()
    venue.limiter.configure(**{k: v for k, v in body.items() if k != "reset"})
    return state(venue)


async def _close_ws(venue: Venue, body: dict[str, Any], _r: web.Request) -> dict[str, Any]:
    closed = await venue.sockets.close(body.get("protocol"), body.get("kind"))
    return {"closed": closed}
