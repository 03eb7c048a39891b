"""Binance websockets: market streams, the WebSocket API, and the legacy listen-key user stream.

- /ws/<stream>, /stream?streams=a/b (and SUBSCRIBE messages): kline_<interval> (with the
  `x` closed flag), trade, aggTrade, bookTicker, ticker, miniTicker, depth5/10/20 — pushed at
  every market step.
- /ws-api/v3: request/response methods (order.place, order.status, order.cancel,
  openOrders.status, ...) and `userDataStream.subscribe.signature`, after which the user's
  events arrive as {"subscriptionId": n, "event": {...}} — what python-binance 1.0.37 uses.
- /ws/<listenKey> (or a listen key inside /stream?streams=): the same events, raw.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable
from typing import Any, NamedTuple

import orjson
from aiohttp import WSMsgType, web

from services.exchange_sim import binance_format as fmt
from services.exchange_sim import binance_lists as lists
from services.exchange_sim import binance_tape as tape
from services.exchange_sim.binance_api import KLINE_INTERVALS, PROTOCOL, BinanceApi, api_for
from services.exchange_sim.binance_auth import check_key, check_timestamp, check_ws_signature
from services.exchange_sim.binance_errors import BinanceError, Params
from services.exchange_sim.binance_rest import INTERNAL_ERROR
from services.exchange_sim.market import Tick
from services.exchange_sim.outbox import Outbox
from services.exchange_sim.ratelimit import RateLimited
from services.exchange_sim.tape import Tape, buyer_maker
from services.exchange_sim.telemetry import sim_metrics
from services.exchange_sim.venue import Venue

log = logging.getLogger("exchange_sim.binance_ws")

NONE, API_KEY, SIGNED = "NONE", "API_KEY", "SIGNED"
DEPTH_LEVELS = {"5": 5, "10": 10, "20": 20}


class BadStream(ValueError):
    pass


def parse_stream(name: str, symbols: list[str]) -> tuple[str, str, str]:
    """'btcusdt@kline_1m' -> ('BTCUSDT', 'kline', '1m'); raise BadStream for anything else."""
    sym, sep, kind = name.partition("@")
    symbol = sym.upper()
    if not sep or symbol not in symbols:
        raise BadStream(name)
    if kind.startswith("kline_") and kind[6:] in KLINE_INTERVALS:
        return symbol, "kline", kind[6:]
    if kind in ("trade", "aggTrade", "bookTicker", "ticker", "miniTicker"):
        return symbol, kind, ""
    levels = kind.removeprefix("depth").split("@")[0]
    if kind.startswith("depth") and levels in DEPTH_LEVELS:
        return symbol, "depth", levels
    raise BadStream(name)


# --------------------------------------------------------------------------- market streams
class MarketConn:
    def __init__(self, outbox: Outbox, combined: bool) -> None:
        self.outbox, self.combined = outbox, combined
        self.streams: dict[str, tuple[str, str, str]] = {}


class MarketHub:
    """Builds each subscribed stream's payload once per step and sends it to its subscribers."""

    def __init__(self, venue: Venue, trade_tape: Tape) -> None:
        self.venue, self.venue_tape = venue, trade_tape
        self.conns: list[MarketConn] = []
        venue.market.add_listener(self.on_ticks)

    def on_ticks(self, ticks: list[Tick]) -> None:
        if not self.conns:
            return
        by_symbol = {t.symbol: t for t in ticks}
        cache: dict[str, dict[str, Any] | None] = {}
        faults = self.venue.faults
        for conn in self.conns:
            for name, parsed in conn.streams.items():
                if name not in cache:
                    tick = by_symbol.get(parsed[0])
                    cache[name] = self._payload(parsed, tick) if tick else None
                    # `drop_event` with event=kline|bookTicker|trade...: this step's message is lost
                    if cache[name] is not None and faults.take(
                        "drop_event", protocol=PROTOCOL, event=parsed[1], symbol=parsed[0]
                    ):
                        cache[name] = None
                payload = cache[name]
                if payload is not None:
                    conn.outbox.send({"stream": name, "data": payload} if conn.combined else payload)

    def _payload(self, parsed: tuple[str, str, str], tick: Tick) -> dict[str, Any] | None:
        symbol, kind, arg = parsed
        market, engine = self.venue.market, self.venue.engine
        if kind == "kline":
            interval_ms = KLINE_INTERVALS[arg]
            bar = market.bar(symbol, interval_ms)
            closed = tick.closed and bar.close_time == tick.candle.close_time
            return fmt.kline_event(symbol, arg, bar, closed, tick.time)
        if kind in ("trade", "aggTrade"):
            if tick.qty <= 0:
                return None
            maker = buyer_maker(tick.trade_id)
            ids = {"t": tick.trade_id} if kind == "trade" else {"a": tick.trade_id}
            extra = {} if kind == "trade" else {"f": tick.trade_id, "l": tick.trade_id}
            return {
                "e": kind,
                "E": tick.time,
                "s": symbol,
                **ids,
                "p": fmt.f8(tick.price),
                "q": fmt.f8(tick.qty),
                **extra,
                "T": tick.time,
                "m": maker,
                "M": True,
            }
        if kind in ("ticker", "miniTicker"):
            prints = self.venue_tape.prints[symbol]
            last_qty = prints[-1].qty if prints else tick.qty
            window = market.window(symbol)
            return fmt.ticker_event(
                symbol, window, engine.quote(symbol), last_qty, tick.time, mini=kind == "miniTicker"
            )
        if kind == "bookTicker":
            q = engine.quote(symbol)
            return {
                "u": market.steps,
                "s": symbol,
                "b": fmt.f8(q.bid),
                "B": fmt.f8(q.bid_qty),
                "a": fmt.f8(q.ask),
                "A": fmt.f8(q.ask_qty),
            }
        book = engine.depth(symbol, DEPTH_LEVELS[arg])
        return {
            "lastUpdateId": market.steps,
            "bids": [[fmt.f8(p), fmt.f8(q)] for p, q in book.bids],
            "asks": [[fmt.f8(p), fmt.f8(q)] for p, q in book.asks],
        }


# --------------------------------------------------------------------------- the websocket endpoints
class BinanceSockets:
    def __init__(self, venue: Venue, api: BinanceApi) -> None:
        self.venue, self.api = venue, api
        self.hub = MarketHub(venue, api.tape)
        self._listen_conns: dict[str, list[Outbox]] = {}
        api.listen_keys.on_close.append(self._listen_key_closed)

    async def _open(self, request: web.Request, kind: str) -> web.WebSocketResponse | web.Response:
        """Prepared websocket, or a 503 when a refuse_ws fault says so (callers register it)."""
        if self.venue.faults.take("refuse_ws", protocol=PROTOCOL, path=request.path):
            sim_metrics().faults.labels("refuse_ws").inc()
            return web.Response(status=503, text="Service Unavailable")
        ws = web.WebSocketResponse(autoping=True)
        await ws.prepare(request)
        return ws

    # ----------------------------------------------------------------- market + listen key
    async def streams(self, request: web.Request) -> web.StreamResponse:
        combined = request.path.startswith("/stream")
        if combined:
            names = [n for n in request.query.get("streams", "").split("/") if n]
        else:
            tail = request.match_info.get("tail", "")
            names = [tail] if tail else []
        market_names, keys = [], []
        for name in names:
            if "@" not in name and self.api.listen_keys.valid(name):
                keys.append(name)
            else:
                market_names.append(name)
        try:
            parsed = {n: parse_stream(n, self.venue.market.symbols) for n in market_names}
        except BadStream as exc:
            return web.json_response({"code": -1121, "msg": f"Invalid stream name: {exc}"}, status=400)
        if names and not parsed and not keys:
            return web.json_response({"code": -1125, "msg": "This listenKey does not exist."}, status=400)
        kind = "user" if keys else "market"
        ws = await self._open(request, kind)
        if not isinstance(ws, web.WebSocketResponse):
            return ws
        outbox = Outbox(ws)
        conn = MarketConn(outbox, combined)
        conn.streams.update(parsed)
        self.hub.conns.append(conn)
        listeners = [self._listen_key_listener(key, outbox, combined) for key in keys]
        self.venue.sockets.add(ws, protocol=PROTOCOL, kind=kind)  # last: once counted, it is subscribed
        try:
            async for msg in ws:
                if msg.type == WSMsgType.TEXT:
                    self._market_control(conn, msg.data)
        finally:
            for listener in listeners:
                self.api.unsubscribe(listener)
            for key in keys:
                with contextlib.suppress(ValueError):
                    self._listen_conns.get(key, []).remove(outbox)
            self.hub.conns.remove(conn)
            self.venue.sockets.discard(ws)
            await outbox.close()
        return ws

    def _listen_key_listener(
        self, key: str, outbox: Outbox, combined: bool
    ) -> Callable[[dict[str, Any]], None]:
        def listener(payload: dict[str, Any]) -> None:
            outbox.send({"stream": key, "data": payload} if combined else payload)

        self.api.subscribe(listener)
        self._listen_conns.setdefault(key, []).append(outbox)
        return listener

    def _listen_key_closed(self, key: str) -> None:
        for outbox in self._listen_conns.pop(key, []):
            outbox.send({"e": "listenKeyExpired", "E": self.venue.market.time, "listenKey": key})
            outbox.finish()

    def _market_control(self, conn: MarketConn, text: str) -> None:
        """SUBSCRIBE / UNSUBSCRIBE / LIST_SUBSCRIPTIONS on a market connection."""
        try:
            msg = orjson.loads(text)
            method, params, req_id = msg.get("method"), msg.get("params") or [], msg.get("id")
        except (orjson.JSONDecodeError, AttributeError):
            conn.outbox.send({"error": {"code": 3, "msg": "Invalid JSON"}})
            return
        try:
            if method == "SUBSCRIBE":
                conn.streams.update({n: parse_stream(n, self.venue.market.symbols) for n in params})
                result: Any = None
            elif method == "UNSUBSCRIBE":
                for name in params:
                    conn.streams.pop(name, None)
                result = None
            elif method == "LIST_SUBSCRIPTIONS":
                result = list(conn.streams)
            else:
                conn.outbox.send(
                    {"error": {"code": 1, "msg": f"Invalid request: unknown method {method!r}"}, "id": req_id}
                )
                return
        except BadStream as exc:
            conn.outbox.send(
                {"error": {"code": 2, "msg": f"Invalid request: unknown stream {exc}"}, "id": req_id}
            )
            return
        conn.outbox.send({"result": result, "id": req_id})

    # ----------------------------------------------------------------- WebSocket API
    async def ws_api(self, request: web.Request) -> web.StreamResponse:
        ws = await self._open(request, "ws_api")
        if not isinstance(ws, web.WebSocketResponse):
            return ws
        session = WsApiSession(self.venue, self.api, Outbox(ws))
        self.venue.sockets.add(ws, protocol=PROTOCOL, kind="ws_api")
        try:
            async for msg in ws:
                if msg.type == WSMsgType.TEXT:
                    session.handle(msg.data)
        finally:
            session.close()
            self.venue.sockets.discard(ws)
            await session.outbox.close()
        return ws


class Method(NamedTuple):
    security: str
    weight: int
    call: Callable[[WsApiSession, Params, dict[str, Any]], Any]
    orders: int = 0


def _api(fn: Callable[[BinanceApi, Params], Any]) -> Callable[[WsApiSession, Params, dict[str, Any]], Any]:
    return lambda session, p, _raw: fn(session.api, p)


class WsApiSession:
    """One /ws-api/v3 connection: its requests and its user-data subscriptions."""

    METHODS: dict[str, Method] = {}

    def __init__(self, venue: Venue, api: BinanceApi, outbox: Outbox) -> None:
        self.venue, self.api, self.outbox = venue, api, outbox
        self._subs: dict[int, Callable[[dict[str, Any]], None]] = {}
        self._next_sub = 0

    def close(self) -> None:
        for listener in self._subs.values():
            self.api.unsubscribe(listener)
        self._subs.clear()

    def handle(self, text: str) -> None:
        try:
            msg = orjson.loads(text)
            req_id, method, raw = msg.get("id"), msg.get("method"), msg.get("params") or {}
            if not isinstance(raw, dict):
                raise TypeError
        except (orjson.JSONDecodeError, AttributeError, TypeError):
            self._reply(None, 400, error={"code": -1102, "msg": "Malformed request."})
            return
        spec = self.METHODS.get(method or "")
        if spec is None:
            self._reply(req_id, 400, error={"code": -1020, "msg": f"Unknown method '{method}'."})
            return
        ctx = {"protocol": PROTOCOL, "path": "/ws-api/v3", "method": method}
        faults, limiter = self.venue.faults, self.venue.limiter
        params = Params({k: _text(v) for k, v in raw.items()})
        processed = False
        try:
            if fault := faults.take("reject", **ctx):
                self._reply(req_id, fault.http_status, error=INTERNAL_ERROR)
                return
            if faults.take("rate_limit", **ctx):
                raise RateLimited(429, -1003, "Too many requests queued.", 10)
            if faults.take("ban", **ctx):
                raise RateLimited(418, -1003, "Way too much request weight used; IP banned.", 120)
            limiter.charge(spec.weight, orders=spec.orders)
            if spec.security != NONE:
                check_key(_text(raw.get("apiKey")) or None, self.venue.config.api_key)
            if spec.security == SIGNED:
                check_ws_signature(raw, self.venue.config.api_secret)
                check_timestamp(
                    params.text("timestamp"), params.text("recvWindow"), self.venue.clock.now_ms()
                )
            processed = True
            status, result, error = 200, spec.call(self, params, raw), None
        except BinanceError as exc:
            status, result, error = exc.status, None, exc.body()
        except RateLimited as exc:
            status, result, error = (
                exc.status,
                None,
                {"code": exc.code, "msg": exc.msg, "data": {"retryAfter": exc.retry_after * 1000}},
            )
        sim_metrics().requests.labels(PROTOCOL, f"ws:{method}", str(status)).inc()
        if processed:
            if faults.take("drop_reply", **ctx):
                sim_metrics().faults.labels("drop_reply").inc()
                return
            if fault := faults.take("error", **ctx):
                sim_metrics().faults.labels("error").inc()
                self._reply(req_id, fault.http_status, error=INTERNAL_ERROR)
                return
        self._reply(req_id, status, result=result, error=error)

    def _reply(self, req_id: Any, status: int, *, result: Any = None, error: Any = None) -> None:
        limiter = self.venue.limiter
        message: dict[str, Any] = {"id": req_id, "status": status}
        if error is not None:
            message["error"] = error
        else:
            message["result"] = result
        message["rateLimits"] = [
            {
                "rateLimitType": "REQUEST_WEIGHT",
                "interval": "MINUTE",
                "intervalNum": 1,
                "limit": limiter.weight_limit,
                "count": limiter.used_weight,
            }
        ]
        self.outbox.send(message)

    # ----------------------------------------------------------------- user data stream
    def subscribe(self, _p: Params, _raw: dict[str, Any]) -> dict[str, Any]:
        sub_id = self._next_sub
        self._next_sub += 1

        def listener(payload: dict[str, Any]) -> None:
            self.outbox.send({"subscriptionId": sub_id, "event": payload})

        self._subs[sub_id] = listener
        self.api.subscribe(listener)
        return {"subscriptionId": sub_id}

    def unsubscribe(self, p: Params, _raw: dict[str, Any]) -> dict[str, Any]:
        wanted = p.integer("subscriptionId")
        for sub_id in [s for s in self._subs if wanted is None or s == wanted]:
            self.api.unsubscribe(self._subs.pop(sub_id))
        return {}

    def list_subscriptions(self, _p: Params, _raw: dict[str, Any]) -> list[dict[str, Any]]:
        return [{"subscriptionId": s} for s in self._subs]


WsApiSession.METHODS = {
    "ping": Method(NONE, 1, _api(BinanceApi.ping)),
    "time": Method(NONE, 1, _api(BinanceApi.time)),
    "exchangeInfo": Method(NONE, 20, _api(BinanceApi.exchange_info)),
    "depth": Method(NONE, 5, _api(BinanceApi.depth)),
    "klines": Method(NONE, 2, _api(BinanceApi.klines)),
    "avgPrice": Method(NONE, 2, _api(BinanceApi.avg_price)),
    "ticker.price": Method(NONE, 2, _api(BinanceApi.ticker_price)),
    "ticker.book": Method(NONE, 2, _api(BinanceApi.book_ticker)),
    "ticker.24hr": Method(NONE, 2, _api(BinanceApi.ticker_24h)),
    "ticker": Method(NONE, 4, _api(BinanceApi.ticker_window)),
    "ticker.tradingDay": Method(NONE, 4, _api(BinanceApi.ticker_trading_day)),
    "account.status": Method(SIGNED, 20, _api(BinanceApi.account)),
    "account.commission": Method(SIGNED, 20, _api(BinanceApi.account_commission)),
    "order.place": Method(SIGNED, 1, _api(BinanceApi.new_order), orders=1),
    "order.test": Method(SIGNED, 1, _api(BinanceApi.test_order)),
    "order.status": Method(SIGNED, 4, _api(BinanceApi.get_order)),
    "order.cancel": Method(SIGNED, 1, _api(BinanceApi.cancel_order)),
    "openOrders.status": Method(SIGNED, 6, _api(BinanceApi.open_orders)),
    "openOrders.cancelAll": Method(SIGNED, 1, _api(BinanceApi.cancel_open_orders)),
    "allOrders": Method(SIGNED, 20, _api(BinanceApi.all_orders)),
    "myTrades": Method(SIGNED, 20, _api(BinanceApi.my_trades)),
    "trades.recent": Method(NONE, 25, _api(tape.recent_trades)),
    "trades.historical": Method(NONE, 25, _api(tape.historical_trades)),
    "trades.aggregate": Method(NONE, 4, _api(tape.agg_trades)),
    "account.rateLimits.orders": Method(SIGNED, 40, _api(tape.order_count)),
    "myPreventedMatches": Method(SIGNED, 2, _api(tape.no_prevented_matches)),
    "myAllocations": Method(SIGNED, 20, _api(tape.no_allocations)),
    "order.cancelReplace": Method(SIGNED, 1, _api(tape.cancel_replace)),
    "orderList.place.oco": Method(SIGNED, 1, _api(lists.new_oco), orders=2),
    "orderList.place.oto": Method(SIGNED, 1, _api(lists.new_oto), orders=2),
    "orderList.place.otoco": Method(SIGNED, 1, _api(lists.new_otoco), orders=3),
    "orderList.status": Method(SIGNED, 4, _api(lists.get_list)),
    "orderList.cancel": Method(SIGNED, 1, _api(lists.cancel_list)),
    "openOrderLists.status": Method(SIGNED, 6, _api(lists.open_lists)),
    "allOrderLists": Method(SIGNED, 20, _api(lists.all_lists)),
    "userDataStream.subscribe.signature": Method(SIGNED, 2, WsApiSession.subscribe),
    "userDataStream.unsubscribe": Method(NONE, 2, WsApiSession.unsubscribe),
    "session.subscriptions": Method(NONE, 2, WsApiSession.list_subscriptions),
    "userDataStream.start": Method(API_KEY, 2, _api(BinanceApi.new_listen_key)),
    "userDataStream.ping": Method(API_KEY, 2, _api(BinanceApi.keepalive_listen_key)),
    "userDataStream.stop": Method(API_KEY, 2, _api(BinanceApi.close_listen_key)),
}


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def setup(app: web.Application, venue: Venue) -> None:
    sockets = BinanceSockets(venue, api_for(app, venue))
    app.router.add_get("/ws", sockets.streams)
    app.router.add_get("/ws/{tail:.*}", sockets.streams)
    app.router.add_get("/stream", sockets.streams)
    app.router.add_get("/ws-api/v3", sockets.ws_api)
