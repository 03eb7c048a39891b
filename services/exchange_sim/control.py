"""The control API under /control/ — for tests and demos, not part of any exchange protocol.

Reset, move the market (steps, candles, a chosen price), change balances and liquidity,
read the journal, and inject faults (see faults.py). JSON in, JSON out. Who may call it is
control_auth.py's decision (loopback only, or anyone with the venue's control token).

Every body is checked before anything changes: an object of known fields, numbers finite and
within bounds, money as Decimal (JSON numbers are read as Decimal, never through a float); a
bad one is a 400 naming the field, never a 500 and never a venue stuck in a busy loop.
"""

from __future__ import annotations

import json
import re
from collections.abc import Awaitable, Callable, Iterable
from decimal import Decimal, InvalidOperation
from functools import partial
from typing import Any

import msgspec
from aiohttp import web

from services.exchange_sim import control_auth
from services.exchange_sim.binance_api import ACCOUNT as BINANCE_ACCOUNT
from services.exchange_sim.bybit_state import ACCOUNT as BYBIT_ACCOUNT
from services.exchange_sim.config import MAX_SPEED
from services.exchange_sim.faults import FaultError
from services.exchange_sim.venue import Venue
from shared.matching.engine import MARKET_FILLS, EngineError

Handler = Callable[[web.Request], Awaitable[web.Response]]
DEFAULT_ACCOUNT = BINANCE_ACCOUNT
ACCOUNTS = (BINANCE_ACCOUNT, BYBIT_ACCOUNT)  # the two faces; any other name would be a new account
MAX_BODY = 64 * 1024
MAX_AMOUNT = Decimal("1e15")  # prices, balances, fill sizes
MAX_PLACES = 18  # decimal places of an amount
MAX_STEPS = 10_000  # one /advance (~0.2 ms a step): the venue answers nothing else meanwhile
MAX_CANDLES = 2_500  # 4 steps each
MAX_SKEW_MS = 86_400_000
MAX_LIMIT = 10**9
MAX_FAULT_S = 7 * 86_400
ASSET = re.compile(r"[A-Z0-9]{1,20}")
_read_json = partial(json.loads, parse_float=Decimal, parse_constant=Decimal)


class BadRequest(ValueError):
    pass


def _json(data: Any, status: int = 200) -> web.Response:
    return web.Response(body=msgspec.json.encode(data), status=status, content_type="application/json")


def _only(body: dict[str, Any], allowed: Iterable[str]) -> None:
    unknown = sorted(set(body) - set(allowed))
    if unknown:
        raise BadRequest(f"unknown field(s) {unknown}; known: {sorted(allowed)}")


def _number(value: Any, key: str) -> Decimal:
    """A JSON number or a numeric string, as Decimal; true/false are not numbers."""
    if isinstance(value, bool) or not isinstance(value, int | str | Decimal):
        raise BadRequest(f"{key} is not a number: {_show(value)}")
    try:
        number = Decimal(value)
    except (InvalidOperation, ValueError):
        raise BadRequest(f"{key} is not a number: {_show(value)}") from None
    if not number.is_finite():
        raise BadRequest(f"{key} is not finite: {_show(value)}")
    return number


def _dec(body: dict[str, Any], key: str, *, lo: Decimal = Decimal(0), hi: Decimal = MAX_AMOUNT) -> Decimal:
    """An amount: finite, lo..hi, at most MAX_PLACES decimal places; missing is an error."""
    if key not in body:
        raise BadRequest(f"missing field {key!r}")
    value = _number(body[key], key)
    if not lo <= value <= hi:
        raise BadRequest(f"{key} must be from {lo:f} to {hi:f}, not {_show(body[key])}")
    if value.as_tuple().exponent < -MAX_PLACES:  # type: ignore[operator]  # finite: an int
        raise BadRequest(f"{key} has more than {MAX_PLACES} decimal places")
    return value


def _int(body: dict[str, Any], key: str, lo: int, hi: int, default: int | None = None) -> int:
    if key not in body and default is not None:
        return default
    value = _dec(body, key, lo=Decimal(lo), hi=Decimal(hi))
    if value != value.to_integral_value():
        raise BadRequest(f"{key} must be a whole number, not {_show(body[key])}")
    return int(value)


def _text(body: dict[str, Any], key: str, choices: Iterable[str], default: str | None = None) -> str | None:
    value = body.get(key, default)
    if value is not None and (not isinstance(value, str) or value not in choices):
        raise BadRequest(f"{key} must be one of {', '.join(choices)}, not {_show(value)}")
    return value


def _show(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


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
        "topics": venue.sockets.topics(),
        "knobs": market.knobs,
        "market_fill": venue.engine.market_fill,
    }


async def _body(request: web.Request) -> dict[str, Any]:
    """The JSON object of the request; {} without a body."""
    if not request.can_read_body:
        return {}
    if (request.content_length or 0) > MAX_BODY:
        raise BadRequest(f"body over {MAX_BODY} bytes")
    raw = await request.content.read(MAX_BODY + 1)
    if len(raw) > MAX_BODY:
        raise BadRequest(f"body over {MAX_BODY} bytes")
    try:
        body = _read_json(raw.decode("utf-8"))
    except (ValueError, RecursionError):  # UnicodeDecodeError and JSONDecodeError are ValueErrors
        raise BadRequest("body is not JSON") from None
    if not isinstance(body, dict):
        raise BadRequest(f"body must be a JSON object, not {type(body).__name__}")
    return body


def setup(app: web.Application, venue: Venue) -> None:
    token = venue.config.control_token

    def route(fn: Callable[[Venue, dict[str, Any], web.Request], Any]) -> Handler:
        async def handler(request: web.Request) -> web.Response:
            refused = control_auth.refusal(request, token)
            if refused is not None:
                return _json({"error": refused[1]}, refused[0])
            try:
                result = fn(venue, await _body(request), request)
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
    _only(body, ())
    venue.reset()
    return state(venue)


def _advance(venue: Venue, body: dict[str, Any], _r: web.Request) -> dict[str, Any]:
    _only(body, ("steps", "candles"))
    steps = _int(body, "steps", 0, MAX_STEPS, default=0)
    candles = _int(body, "candles", 0, MAX_CANDLES, default=0)
    venue.market.advance(steps=steps or (0 if candles else 1), candles=candles)
    return state(venue)


def _symbol(venue: Venue, body: dict[str, Any], default: str | None = None) -> str | None:
    return _text(body, "symbol", venue.market.symbols, default)


def _price(venue: Venue, body: dict[str, Any], _r: web.Request) -> dict[str, Any]:
    _only(body, ("symbol", "price"))
    symbol = _symbol(venue, body, "")
    venue.market.push_price(str(symbol), _dec(body, "price", lo=Decimal("1e-18")))
    return state(venue)


def _market(venue: Venue, body: dict[str, Any], _r: web.Request) -> dict[str, Any]:
    _only(body, ("symbol", "market_fill", "max_fill", "participation"))
    symbol = _symbol(venue, body) if body.get("symbol") else None
    market_fill = _text(body, "market_fill", MARKET_FILLS)  # venue-wide: when market orders fill
    max_fill = None if body.get("max_fill") is None else _dec(body, "max_fill")
    participation = _dec(body, "participation") if "participation" in body else None
    if market_fill is not None:
        venue.engine.market_fill = market_fill  # type: ignore[assignment]  # one of MARKET_FILLS
    for name in [symbol] if symbol else venue.market.symbols:
        knobs = venue.market.knobs[name]
        if "max_fill" in body:
            knobs.max_fill = max_fill
        if participation is not None:
            knobs.participation = participation
    return state(venue)


async def _speed(venue: Venue, body: dict[str, Any], _r: web.Request) -> dict[str, Any]:
    _only(body, ("speed",))
    await venue.set_speed(float(_dec(body, "speed", hi=Decimal(MAX_SPEED))))
    return state(venue)


def _account(value: Any) -> str:
    if not isinstance(value, str) or value not in ACCOUNTS:
        raise BadRequest(f"account must be one of {', '.join(ACCOUNTS)}, not {_show(value)}")
    return value


def _balance(venue: Venue, body: dict[str, Any], _r: web.Request) -> dict[str, Any]:
    _only(body, ("account", "balances", "asset", "free"))
    account = _account(body.get("account", DEFAULT_ACCOUNT))
    asset = body.get("asset", "")
    if not isinstance(asset, str):
        raise BadRequest(f"asset must be text, not {_show(asset)}")
    wanted = body.get("balances") or {asset: body.get("free")}
    if not isinstance(wanted, dict) or len(wanted) > 100:
        raise BadRequest("balances must be an object {asset: free} of at most 100 assets")
    amounts: dict[str, Decimal] = {}
    for asset, free in wanted.items():
        if not isinstance(asset, str) or not ASSET.fullmatch(asset.upper()):
            raise BadRequest(f"give asset and free, or balances: {{asset: free}}; bad asset {_show(asset)}")
        amounts[asset.upper()] = _dec({f"free of {asset}": free}, f"free of {asset}")
    for asset, free in amounts.items():
        venue.engine.set_balance(account, asset, free)
    return {"account": account, "balances": venue.engine.balances(account)}


def _balances(venue: Venue, _b: dict[str, Any], request: web.Request) -> dict[str, Any]:
    account = _account(request.query.get("account", DEFAULT_ACCOUNT))
    return {"account": account, "balances": venue.engine.balances(account)}


def _journal(venue: Venue, _b: dict[str, Any], request: web.Request) -> list[Any]:
    since = _int(dict(request.query), "since", 0, 2**62, default=0)
    account = request.query.get("account")
    return venue.engine.journal(since, None if account is None else _account(account))


def _orders(venue: Venue, _b: dict[str, Any], request: web.Request) -> list[Any]:
    return venue.engine.orders(_account(request.query.get("account", DEFAULT_ACCOUNT)))


def _add_fault(venue: Venue, body: dict[str, Any], _r: web.Request) -> Any:
    options = dict(body)
    kind, match = options.pop("kind", ""), options.pop("match", None)
    if not isinstance(kind, str):
        raise BadRequest(f"kind must be a string, not {_show(kind)}")
    if match is not None and not (
        isinstance(match, dict) and all(isinstance(v, str | int | Decimal) for v in match.values())
    ):
        raise BadRequest("match must be an object of field: text")
    count = _int(body, "count", 1, 10**6) if options.pop("count", None) is not None else None
    seconds = options.pop("seconds", None)
    if seconds is not None:
        seconds = float(_dec(body, "seconds", lo=Decimal("0.001"), hi=Decimal(MAX_FAULT_S)))
    options = {k: float(v) if isinstance(v, Decimal) else v for k, v in options.items()}
    return venue.faults.add(kind, count=count, seconds=seconds, match=match, **options)


def _clear_faults(venue: Venue, _b: dict[str, Any], request: web.Request) -> dict[str, Any]:
    if "id" in request.query:
        return {"removed": venue.faults.remove(_int(dict(request.query), "id", 0, 2**62))}
    venue.faults.clear()
    return {"removed": True}


def _clock(venue: Venue, body: dict[str, Any], _r: web.Request) -> dict[str, Any]:
    _only(body, ("skew_ms",))
    venue.clock.skew_ms = _int(body, "skew_ms", -MAX_SKEW_MS, MAX_SKEW_MS, default=0)
    return state(venue)


def _limits(venue: Venue, body: dict[str, Any], _r: web.Request) -> dict[str, Any]:
    names = ("weight_limit", "order_limit_10s", "ban_after", "ban_seconds")
    _only(body, (*names, "reset"))
    limits = {name: _int(body, name, 0, MAX_LIMIT) for name in names if name in body}
    if body.get("reset"):
        venue.limiter.reset()
    venue.limiter.configure(**limits)
    return state(venue)


async def _close_ws(venue: Venue, body: dict[str, Any], _r: web.Request) -> dict[str, Any]:
    _only(body, ("protocol", "kind"))
    for key in ("protocol", "kind"):
        if body.get(key) is not None and not (isinstance(body[key], str) and len(body[key]) <= 32):
            raise BadRequest(f"{key} must be a short string, not {_show(body[key])}")
    closed = await venue.sockets.close(body.get("protocol"), body.get("kind"))
    return {"closed": closed}
