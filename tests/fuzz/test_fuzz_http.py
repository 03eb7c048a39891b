"""Fuzz of the HTTP surfaces: the paper venue's control API and its Binance- and Bybit-shaped REST
endpoints, and the /metrics + /health server every service runs.

Whatever comes in, the answer is a 2xx or a 4xx (never a 5xx, never a dropped connection), a
refusal has the surface's error shape ({"error"} / Binance {"code", "msg"} / Bybit {"retCode",
"retMsg"}), and the server answers a good request afterwards. One venue and one metrics server
per module: starting a process per example would cost the whole budget.

Exchange requests are signed with the venue's key pair, so hostile parameters reach the
endpoints instead of stopping at the signature check.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
import urllib.parse
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from services.exchange_sim import binance_rest, bybit_rest
from services.exchange_sim.app import build_app
from services.exchange_sim.config import SimConfig
from services.exchange_sim.venue import Venue
from shared.metrics import MetricsServer
from tests.fuzz.budget import FUZZ
from tests.fuzz.shapes import json_values as json_values_of
from tests.helpers.raw_http import exchange, get, request, served_in_thread, status_of
from tests.helpers.sim import SimVenue, running_sim

TOKEN = "fuzz-control-token-0123456789"


def _control_routes() -> list[tuple[str, str]]:
    """(method, path) of every /control/ route, read from the app itself so none is missed."""
    app = build_app(Venue.build(SimConfig(warmup=1, symbols=("BTCUSDT",))))
    routes = {
        (route.method, route.resource.canonical)
        for route in app.router.routes()
        if route.resource is not None
        and route.resource.canonical.startswith("/control/")
        and route.method != "HEAD"  # aiohttp's own twin of each GET: no body to read an error from
    }
    return sorted(routes)


CONTROL_ROUTES = _control_routes()
CONTROL_FIELDS = [
    *("speed", "steps", "candles", "symbol", "price", "market_fill", "max_fill", "participation"),
    *("account", "asset", "free", "balances", "kind", "count", "seconds", "match", "http_status"),
    *("body", "hold_s", "retry_after", "skew_ms", "weight_limit", "reset", "protocol", "since", "id"),
]
BINANCE_PARAMS = [
    *("symbol", "symbols", "side", "type", "quantity", "quoteOrderQty", "price", "stopPrice"),
    *("timeInForce", "newClientOrderId", "origClientOrderId", "orderId", "fromId", "limit"),
    *("interval", "startTime", "endTime", "listenKey", "newOrderRespType", "omitZeroBalances"),
]
BYBIT_PARAMS = [
    *("category", "symbol", "side", "orderType", "qty", "price", "triggerPrice", "timeInForce"),
    *("orderLinkId", "orderId", "orderFilter", "marketUnit", "isLeverage", "openOnly", "limit"),
    *("cursor", "interval", "start", "end", "startTime", "endTime", "accountType", "coin", "execType"),
]

scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(10**30), max_value=10**30)
    | st.floats()  # NaN and ±Infinity included: json.dumps writes them as the JS literals
    | st.text(max_size=20)
    | st.sampled_from(["BTCUSDT", "1", "0", "-1", "1e400", "NaN", "inf", "0.00000001", "binance", "bybit"])
)
json_values = json_values_of(scalars, key_size=8)
param_text = st.one_of(
    st.text(st.characters(codec="utf-8", exclude_categories=["Cs"]), max_size=24),
    st.sampled_from(["BTCUSDT", "ETHUSDT", "BUY", "SELL", "LIMIT", "MARKET", "GTC", "IOC", "FOK"]),
    st.sampled_from(["Buy", "Sell", "Limit", "Market", "spot", "UNIFIED", "1m", "1", "D", "PostOnly"]),
    st.sampled_from(["0", "-1", "1e400", "NaN", "Infinity", "0.1", "99999999999999999999999999999.1"]),
    st.sampled_from(["123456789012345678901234567.123456789", "1e-30", "00000001", "٣", "[]", "{}"]),
    st.integers(min_value=-(10**25), max_value=10**25).map(str),
)


BINANCE_BASE = {
    **{"symbol": "BTCUSDT", "side": "BUY", "type": "LIMIT", "timeInForce": "GTC", "quantity": "0.001"},
    **{"price": "30000", "interval": "1m", "limit": "5"},
}
BYBIT_BASE = {
    **{"category": "spot", "symbol": "BTCUSDT", "side": "Buy", "orderType": "Limit", "qty": "0.001"},
    **{"price": "30000", "interval": "1", "limit": "5", "accountType": "UNIFIED"},
}
HUGE = "123456789012345678901234567.123456789"  # more digits than Decimal's 28: its math raised


def mutated(
    base: dict[str, Any], names: list[str], values: st.SearchStrategy[Any]
) -> st.SearchStrategy[dict]:
    """A good request's parameters with some dropped and some replaced: hostile values get past
    the first checks (a random dict is mostly refused for its missing symbol)."""

    def apply(dropped: set[str], overrides: dict[str, Any]) -> dict[str, Any]:
        return {**{k: v for k, v in base.items() if k not in dropped}, **overrides}

    if not base:
        return st.dictionaries(st.sampled_from(names) | st.text(max_size=8), values, max_size=4)
    own = st.sampled_from(sorted(base))  # its own fields most often: they get furthest
    keys = own | st.sampled_from(names) | st.text(min_size=1, max_size=8)
    return st.builds(apply, st.sets(own), st.dictionaries(keys, values, max_size=3))


CONTROL_GOOD: dict[str, dict[str, Any]] = {  # a good body of each POST/DELETE, to start from
    "/control/advance": {"steps": 1, "candles": 1},
    "/control/price": {"symbol": "BTCUSDT", "price": "30000"},
    "/control/market": {
        "symbol": "BTCUSDT",
        "max_fill": "0.001",
        "participation": "0.5",
        "market_fill": "now",
    },
    "/control/speed": {"speed": 0},
    "/control/balance": {"account": "binance", "asset": "USDT", "free": "100", "balances": {"BTC": "1"}},
    "/control/faults": {
        **{"kind": "error", "count": 1, "seconds": 5, "match": {"path": "/api/v3/order"}},
        **{"http_status": 503, "body": "json", "hold_s": 1, "retry_after": 1},
    },
    "/control/clock": {"skew_ms": 0},
    "/control/limits": {
        "weight_limit": 0,
        "order_limit_10s": 0,
        "ban_after": 3,
        "ban_seconds": 1,
        "reset": True,
    },
    "/control/close_ws": {"protocol": "bybit", "kind": "private"},
}
CONTROL_QUERY = {"account": "binance", "since": "0", "id": "1"}


def control_requests(route: tuple[str, str]) -> st.SearchStrategy[tuple[tuple[str, str], bytes | None]]:
    """The route with a body: its good one mutated, or any JSON, or bytes, or none."""
    good = mutated(CONTROL_GOOD.get(route[1], {}), CONTROL_FIELDS, json_values)
    body = st.one_of(
        good.map(lambda d: json.dumps(d).encode()),
        json_values.map(lambda v: json.dumps(v).encode()),
        st.binary(max_size=64),
        st.none(),
    )
    return st.tuples(st.just(route), body)


@pytest.fixture(scope="module")
def venue(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SimVenue]:
    # rate limits off: a fuzzer over them would soon be banned, and learn nothing past the 418
    env = {"SIM_WEIGHT_LIMIT": "0", "SIM_ORDER_LIMIT_10S": "0", "SIM_WARMUP": "50"}
    with running_sim(tmp_path_factory.mktemp("fuzz-sim"), extra_env=env) as sim:
        yield sim


@pytest.fixture(scope="module")
def token_venue(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SimVenue]:
    env = {"SIM_CONTROL_TOKEN": TOKEN, "SIM_WARMUP": "50"}
    with running_sim(tmp_path_factory.mktemp("fuzz-sim-token"), extra_env=env) as sim:
        yield sim


def assert_venue_serves(sim: SimVenue) -> None:
    """Alive and answering, then back to its start (the fuzz may have set a speed or a fault)."""
    assert sim.proc.alive(), sim.proc.output()[-3000:]
    sim.control.reset()
    assert sim.control.state()["speed"] == 0


@FUZZ
@given(
    call=st.sampled_from(CONTROL_ROUTES).flatmap(control_requests),
    query=mutated(CONTROL_QUERY, CONTROL_FIELDS, param_text),
)
@example(call=(("POST", "/control/balance"), b'{"asset": [1], "free": "1"}'), query={})
def test_control_api_answers_any_body_with_2xx_or_a_400(
    venue: SimVenue, call: tuple[tuple[str, str], bytes | None], query: dict[str, str]
) -> None:
    (method, path), body = call
    url = f"{venue.base_url}{path}?{urllib.parse.urlencode(query)}"
    headers = {"Content-Type": "application/json"} if body is not None else {}
    status, reply = request(url, method, body, headers)
    assert status < 300 or (status == 400 and isinstance(reply, dict) and reply.get("error")), (
        status,
        reply,
    )
    assert_venue_serves(venue)


header_text = st.text(
    st.characters(min_codepoint=0x20, max_codepoint=0xFF, exclude_characters="\x7f"), max_size=64
)


@FUZZ
@given(
    route=st.sampled_from(CONTROL_ROUTES),
    given_headers=st.dictionaries(
        st.sampled_from(["X-Automata-Control", "Authorization", "Origin", "Host", "X-Forwarded-For"]),
        header_text | st.just(f"Bearer {TOKEN[:-1]}") | st.just(TOKEN[:-1]),
        max_size=3,
    ),
)
def test_control_api_with_a_token_refuses_anything_but_the_token(
    token_venue: SimVenue, route: tuple[str, str], given_headers: dict[str, str]
) -> None:
    method, path = route
    status, reply = request(f"{token_venue.base_url}{path}", method, None, given_headers)
    assert status == 401 and "token" in reply["error"], (status, reply)
    assert TOKEN not in json.dumps(reply)
    assert request(f"{token_venue.base_url}/control/state", headers={"X-Automata-Control": TOKEN})[0] == 200


def _binance_call(sim: SimVenue, route: binance_rest.Route, values: dict[str, str]) -> tuple[int, Any]:
    values = dict(values)
    if route.security == binance_rest.SIGNED:
        values["timestamp"] = str(int(time.time() * 1000))
    text = urllib.parse.urlencode(values)
    if route.security == binance_rest.SIGNED:
        signature = hmac.new(sim.api_secret.encode(), text.encode(), hashlib.sha256).hexdigest()
        text += f"&signature={signature}"
    headers = {"X-MBX-APIKEY": sim.api_key}
    if route.method in ("GET", "DELETE"):
        return request(f"{sim.base_url}{route.path}?{text}", route.method, None, headers)
    headers["Content-Type"] = "application/x-www-form-urlencoded"
    return request(f"{sim.base_url}{route.path}", route.method, text.encode(), headers)


BINANCE_ORDER = next(r for r in binance_rest.ROUTES if (r.method, r.path) == ("POST", "/api/v3/order"))
BYBIT_ORDER = next(r for r in bybit_rest.ROUTES if r.path == "/v5/order/create")


@FUZZ
@given(route=st.sampled_from(binance_rest.ROUTES), values=mutated(BINANCE_BASE, BINANCE_PARAMS, param_text))
@example(route=BINANCE_ORDER, values={**BINANCE_BASE, "price": HUGE})
@example(route=BINANCE_ORDER, values={**BINANCE_BASE, "quantity": HUGE})
def test_binance_rest_answers_hostile_params_with_its_error_shape(
    venue: SimVenue, route: binance_rest.Route, values: dict[str, str]
) -> None:
    status, reply = _binance_call(venue, route, values)
    assert status < 500, (route.path, values, status, reply)
    if status >= 400:
        assert isinstance(reply, dict) and isinstance(reply.get("code"), int) and reply.get("msg"), reply
    assert_venue_serves(venue)


def _bybit_call(sim: SimVenue, route: bybit_rest.Route, values: dict[str, Any]) -> tuple[int, Any]:
    if route.method == "GET":
        payload = urllib.parse.urlencode(values)
        url, body = f"{sim.base_url}{route.path}?{payload}", None
    else:
        payload = json.dumps(values)
        url, body = f"{sim.base_url}{route.path}", payload.encode()
    timestamp, window = str(int(time.time() * 1000)), "5000"
    sign = hmac.new(
        sim.api_secret.encode(), (timestamp + sim.api_key + window + payload).encode(), hashlib.sha256
    ).hexdigest()
    headers = {
        "X-BAPI-API-KEY": sim.api_key,
        "X-BAPI-TIMESTAMP": timestamp,
        "X-BAPI-RECV-WINDOW": window,
        "X-BAPI-SIGN": sign,
        "Content-Type": "application/json",
    }
    return request(url, route.method, body, headers)


@FUZZ
@given(
    route=st.sampled_from(bybit_rest.ROUTES),
    values=mutated(BYBIT_BASE, BYBIT_PARAMS, param_text | json_values),
)
@example(route=BYBIT_ORDER, values={**BYBIT_BASE, "price": HUGE})
@example(route=BYBIT_ORDER, values={**BYBIT_BASE, "qty": HUGE})
def test_bybit_rest_answers_hostile_params_with_its_error_shape(
    venue: SimVenue, route: bybit_rest.Route, values: dict[str, Any]
) -> None:
    if route.method == "GET":  # a query string has only text
        values = {k: v if isinstance(v, str) else json.dumps(v) for k, v in values.items()}
    status, reply = _bybit_call(venue, route, values)
    assert status < 500, (route.path, values, status, reply)
    assert isinstance(reply, dict) and isinstance(reply.get("retCode"), int), reply
    assert reply["retCode"] == 0 or reply.get("retMsg"), reply
    assert_venue_serves(venue)


async def _healthy() -> dict[str, Any]:
    return {"ok": True}


@pytest.fixture(scope="module")
def metrics_server() -> Iterator[tuple[MetricsServer, list[dict[str, Any]]]]:
    with served_in_thread(lambda: MetricsServer("127.0.0.1", 0, _healthy)) as (server, errors):
        yield server, errors


line_bytes = st.binary(max_size=40) | st.sampled_from([b"GET", b"HEAD", b"POST", b"/metrics", b"/health"])
request_lines = st.one_of(
    st.tuples(
        line_bytes, line_bytes, st.sampled_from([b"HTTP/1.1", b"HTTP/1.0", b"HTTP/2", b""]) | line_bytes
    ).map(b" ".join),
    st.binary(max_size=120),
    st.integers(min_value=8_000, max_value=80_000).map(lambda n: b"GET /" + b"a" * n + b" HTTP/1.1"),
)
header_blocks = st.lists(
    st.tuples(st.binary(max_size=20), st.binary(max_size=60)).map(lambda kv: kv[0] + b": " + kv[1]),
    max_size=8,
)


@FUZZ
@given(line=request_lines, headers=header_blocks, tail=st.binary(max_size=200))
@example(line=b"GET /" + b"a" * 70_000 + b" HTTP/1.1", headers=[], tail=b"")
def test_metrics_server_answers_any_request_head_with_2xx_or_4xx(
    metrics_server: tuple[MetricsServer, list[dict[str, Any]]],
    line: bytes,
    headers: list[bytes],
    tail: bytes,
) -> None:
    server, errors = metrics_server
    data = b"\r\n".join([line, *headers]) + b"\r\n\r\n" + tail
    reply = exchange(server.port, data)
    status = status_of(reply)
    if status is None:  # nothing but blank lines: the client said nothing, so nothing is answered
        assert reply == b"" and not data.replace(b"\r\n", b"\n").split(b"\n\n")[0].strip(), (
            data[:200],
            reply,
        )
    else:
        assert 200 <= status < 300 or 400 <= status < 500, (data[:200], reply[:200])
    assert not errors, errors
    assert get(server.port, "/health")[0] == 200


def test_the_fuzz_covers_every_control_route() -> None:
    """A new control route is fuzzed without editing this file: the list comes from the app."""
    paths = {path for _, path in CONTROL_ROUTES}
    assert {"/control/speed", "/control/balance", "/control/faults", "/control/limits"} <= paths
    assert len(CONTROL_ROUTES) >= 16
    assert Path(binance_rest.__file__).exists() and binance_rest.ROUTES and bybit_rest.ROUTES
