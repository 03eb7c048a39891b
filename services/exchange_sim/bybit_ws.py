"""Bybit V5 WebSockets: /v5/public/spot (kline, tickers, orderbook.1/50/200/1000, publicTrade) and
/v5/private (order, execution, wallet).

Ops as Bybit answers them to pybit: `ping` -> pong (public: `ret_msg: pong`, private:
`op: pong`), `subscribe` / `unsubscribe` -> `{"success", "ret_msg", "op", "conn_id", "req_id"}`,
`auth` (private) -> `{"success", "ret_msg", "op": "auth", "conn_id"}`. Pushes follow the
market's steps (public) and the engine's events for the Bybit account (private): a fill is
an `execution` message, then the `order` message with cumulative cumExecQty/cumExecValue,
then a `wallet` message with the coins it changed. The `drop_event` fault can swallow any of
them (match on event = topic, exec_type, status, symbol, client_order_id). A conditional
order is pushed Untriggered when placed, Triggered the moment its trigger is reached, then
as the active order it became (New, PartiallyFilled, Filled...); cancelled before its trigger,
Deactivated.
"""

from __future__ import annotations

import asyncio
import itertools
from typing import Any

import orjson
from aiohttp import WSMsgType, web

from services.exchange_sim import bybit_format as bf
from services.exchange_sim.bybit_api import PROTOCOL
from services.exchange_sim.bybit_auth import WsAuthError, check_ws_auth
from services.exchange_sim.bybit_book import BookTopics
from services.exchange_sim.bybit_state import ACCOUNT, BybitFace, face_for
from services.exchange_sim.bybit_tape import ws_trade
from services.exchange_sim.bybit_topics import (
    BOOK_DEPTHS,
    KLINE_INTERVALS,
    TopicError,
    parse_private,
    parse_public,
)
from services.exchange_sim.market import Tick
from services.exchange_sim.outbox import Outbox
from services.exchange_sim.telemetry import sim_metrics
from services.exchange_sim.venue import Venue
from shared.candle_files import INTERVAL_MS
from shared.matching.engine import BalanceEvent, Event, Order, OrderEvent

# pybit records a subscription's req_id only after its send() returns and fails (KeyError,
# socket dead) on an answer that comes back sooner; the real venue is always a network round
# trip away, so the paper venue answers subscribe / unsubscribe no sooner than this.
ACK_DELAY_S = 0.05

Message = dict[str, Any]


class Conn:
    """One client connection: its topics, whether it authenticated, and its ordered outbox."""

    def __init__(self, ws: web.WebSocketResponse, conn_id: str, private: bool) -> None:
        self.ws, self.conn_id, self.private = ws, conn_id, private
        self.topics: set[str] = set()
        self.authed = False
        self.outbox = Outbox(ws)

    def send(self, message: Message) -> None:
        self.outbox.send(message)

    def reply(self, op: str, req_id: Any, success: bool, ret_msg: str) -> None:
        message: Message = {"success": success, "ret_msg": ret_msg, "conn_id": self.conn_id, "op": op}
        if req_id is not None:
            message["req_id"] = req_id
        self.send(message)


class BybitStreams:
    def __init__(self, venue: Venue, face: BybitFace) -> None:
        self.venue, self.face = venue, face
        self.conns: set[Conn] = set()
        self._ids = itertools.count(1)
        self.books = BookTopics(venue)

    # ----------------------------------------------------------------- connections
    async def public(self, request: web.Request) -> web.StreamResponse:
        return await self._serve(request, private=False)

    async def private(self, request: web.Request) -> web.StreamResponse:
        return await self._serve(request, private=True)

    async def _serve(self, request: web.Request, *, private: bool) -> web.StreamResponse:
        if self.venue.faults.take("refuse_ws", protocol=PROTOCOL, path=request.path):
            sim_metrics().faults.labels("refuse_ws").inc()
            return web.Response(status=503, text="Service Unavailable")
        ws = web.WebSocketResponse(autoping=True)
        await ws.prepare(request)
        conn = Conn(ws, f"sim-{next(self._ids):08d}", private)
        self.venue.sockets.add(ws, protocol=PROTOCOL, kind="private" if private else "public")
        self.conns.add(conn)
        try:
            async for msg in ws:
                if msg.type is WSMsgType.TEXT:
                    self._on_text(conn, msg.data)
                elif msg.type is WSMsgType.ERROR:
                    break
        finally:
            self.conns.discard(conn)
            self.venue.sockets.discard(ws)
            await conn.outbox.close()
        return ws

    def _on_text(self, conn: Conn, text: str) -> None:
        try:
            request = orjson.loads(text)
        except orjson.JSONDecodeError:
            conn.reply("", None, False, "error:request is not JSON")
            return
        if not isinstance(request, dict):
            conn.reply("", None, False, "error:request is not a JSON object")
            return
        op, req_id, args = request.get("op"), request.get("req_id"), request.get("args") or []
        if op == "ping":
            self._pong(conn, req_id)
        elif op == "auth" and conn.private:
            self._auth(conn, req_id, args)
        elif op in ("subscribe", "unsubscribe"):
            self._subscribe(conn, op, req_id, args)
        else:
            conn.reply(str(op or ""), req_id, False, f"error:unsupported op {op!r}")

    def _pong(self, conn: Conn, req_id: Any) -> None:
        if not conn.private:
            conn.reply("ping", req_id, True, "pong")
            return
        message: Message = {"op": "pong", "args": [str(self.venue.clock.now_ms())], "conn_id": conn.conn_id}
        if req_id is not None:
            message = {"req_id": req_id, **message}
        conn.send(message)

    def _auth(self, conn: Conn, req_id: Any, args: Any) -> None:
        config = self.venue.config
        try:
            check_ws_auth(
                args, api_key=config.api_key, secret=config.api_secret, now_ms=self.venue.clock.now_ms()
            )
        except WsAuthError as exc:
            conn.reply("auth", req_id, False, str(exc))
            return
        conn.authed = True
        conn.reply("auth", req_id, True, "")

    def _subscribe(self, conn: Conn, op: str, req_id: Any, args: Any) -> None:
        try:
            topics = self._topics(conn, args)
        except TopicError as exc:
            success, ret_msg = False, str(exc)
        else:
            if op == "subscribe":
                conn.topics |= topics
            else:
                conn.topics -= topics
            self.venue.sockets.subscribed(conn.ws, frozenset(conn.topics))
            success, ret_msg = True, "" if conn.private else op
        loop = asyncio.get_running_loop()
        loop.call_later(ACK_DELAY_S, conn.reply, op, req_id, success, ret_msg)
        if success and op == "subscribe" and not conn.private:
            loop.call_later(ACK_DELAY_S, self._book_snapshots, conn, topics)

    def _book_snapshots(self, conn: Conn, topics: set[str]) -> None:
        """An order book subscriber's first push: the book as it is now (after the ack)."""
        for topic in sorted(topics):
            kind, depth, symbol = (topic.split(".") + ["", ""])[:3]
            if kind == "orderbook" and topic in conn.topics:
                message = self.books.snapshot(symbol, int(depth), self.venue.engine.now, changed_only=False)
                if message is not None:
                    conn.send(message)

    def _topics(self, conn: Conn, args: Any) -> set[str]:
        if conn.private and not conn.authed:
            raise TopicError("Request not authorized")
        if not isinstance(args, list) or not args:
            raise TopicError("error:args must be a non-empty list of topics")
        if conn.private:
            return {parse_private(a) for a in args}
        return {parse_public(a, frozenset(self.venue.market.symbols)).name for a in args}

    # ----------------------------------------------------------------- public pushes
    def on_ticks(self, ticks: list[Tick]) -> None:
        listeners = [c for c in self.conns if not c.private and c.topics]
        if not listeners:
            return
        wanted = set().union(*(c.topics for c in listeners))
        for tick in ticks:
            messages = self._public_messages(tick, wanted)
            for conn in listeners:
                for topic, message in messages.items():
                    if topic in conn.topics:
                        conn.send(message)

    def _public_messages(self, tick: Tick, wanted: set[str]) -> dict[str, Message]:
        market, out = self.venue.market, {}
        for interval in KLINE_INTERVALS:
            topic = f"kline.{interval}.{tick.symbol}"
            if topic in wanted:
                bar = market.bar(tick.symbol, INTERVAL_MS[KLINE_INTERVALS[interval]])
                confirm = tick.closed and bar.close_time == tick.candle.close_time
                data = bf.ws_kline(bar, interval, confirm=confirm, timestamp=tick.time)
                out[topic] = {"topic": topic, "data": [data], "ts": tick.time, "type": "snapshot"}
        topic = f"tickers.{tick.symbol}"
        if topic in wanted:
            data = bf.ticker_stats(tick.symbol, tick.price, market.window(tick.symbol))
            out[topic] = {
                "topic": topic,
                "ts": tick.time,
                "type": "snapshot",
                "cs": tick.trade_id,
                "data": data,
            }
        for depth in BOOK_DEPTHS:
            topic = f"orderbook.{depth}.{tick.symbol}"
            book = (
                self.books.snapshot(tick.symbol, int(depth), tick.time, changed_only=True)
                if topic in wanted
                else None
            )
            if book is not None:
                out[topic] = book
        topic = f"publicTrade.{tick.symbol}"
        if topic in wanted and tick.qty > 0:
            out[topic] = {"topic": topic, "type": "snapshot", "ts": tick.time, "data": [ws_trade(tick)]}
        return out

    # ----------------------------------------------------------------- private pushes
    def on_event(self, event: Event) -> None:
        if event.account != ACCOUNT:
            return
        listeners = [c for c in self.conns if c.private and c.authed and c.topics]
        if not listeners:
            return
        if isinstance(event, OrderEvent):
            ctx = _context(event.order, event.exec_type.value)
            triggered = self.face.triggered(event.order.order_id)
            if triggered is not None:  # it triggered and traded (or closed) in one step
                self._push_triggered(listeners, triggered, event.time)
            if event.trade is not None:
                trade, order = event.trade, event.order
                execution = self.face.execution_json(trade, order, order.remaining)
                self._push(listeners, "execution", event.time, [execution], ctx)
            self._push(listeners, "order", event.time, [self.face.order_json(event.order, ws=True)], ctx)
        elif isinstance(event, BalanceEvent):
            wallet = bf.wallet_json(self.face.coins(event.balances))
            self._push(listeners, "wallet", event.time, [wallet], {})

    def on_steps(self, ticks: list[Tick]) -> None:
        """After a market step: Triggered, then New, for each conditional order the step
        triggered without a trade (a limit one now resting: the engine tells no event)."""
        if not self.face.untriggered:
            return
        listeners = [c for c in self.conns if c.private and c.authed and c.topics]
        for order_id in list(self.face.untriggered):
            order = self.face.triggered(order_id)
            if order is not None and listeners:
                self._push_triggered(listeners, order, self.venue.engine.now)
                message = [self.face.order_json(order, ws=True)]
                self._push(listeners, "order", self.venue.engine.now, message, _context(order, "NEW"))

    def _push_triggered(self, listeners: list[Conn], order: Order, time_ms: int) -> None:
        """The instant Bybit's `order` topic shows between Untriggered and New: Triggered."""
        message = [self.face.triggered_json(order)]
        self._push(listeners, "order", time_ms, message, _context(order, "TRIGGERED"))

    def _push(
        self, conns: list[Conn], topic: str, time_ms: int, data: list[Message], ctx: dict[str, str]
    ) -> None:
        targets = [(c, name) for c in conns for name in (topic, f"{topic}.spot") if name in c.topics]
        if not targets:
            return
        if self.venue.faults.take("drop_event", protocol=PROTOCOL, event=topic, **ctx):
            sim_metrics().faults.labels("drop_event").inc()
            sim_metrics().events_dropped.labels("fault").inc()
            return
        message_id = self.face.next_id(topic)
        for conn, name in targets:
            conn.send({"id": message_id, "topic": name, "creationTime": time_ms, "data": data})


def _context(order: Order, exec_type: str) -> dict[str, str]:
    """What a drop_event fault may match on (the engine's words; TRIGGERED for Triggered)."""
    return {
        "exec_type": exec_type,
        "status": order.status.value,
        "symbol": order.symbol,
        "client_order_id": order.client_order_id,
    }


def setup(app: web.Application, venue: Venue) -> None:
    streams = BybitStreams(venue, face_for(app, venue))
    app.router.add_get("/v5/public/spot", streams.public)
    app.router.add_get("/v5/private", streams.private)
    venue.engine.add_listener(streams.on_event)
    venue.market.add_listener(streams.on_ticks)
    venue.market.add_listener(streams.on_steps)
