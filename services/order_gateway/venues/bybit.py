"""Bybit spot (V5) through pybit (main net, Demo Trading, or the paper venue speaking Bybit).

pybit's HTTP client is synchronous (requests): every call runs in a thread. Its own retries
are switched off (max_retries=1, no retry codes) because it resends the same body blindly;
the gateway decides what to retry. Its threaded WebSocket dies silently after a callback
exception or 10 failed reconnects, so callbacks only hand messages to asyncio and the
adapter recreates the socket when `is_connected()` turns false.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Callable
from decimal import Decimal
from typing import Any, TypeVar

import msgspec
from pybit import unified_trading

from services.order_gateway.venues.base import (
    BalanceReport,
    Banned,
    MalformedReply,
    OrderNotFound,
    Rejected,
    StreamGap,
    UserEvent,
    VenueTrade,
    parse_list,
    parse_reply,
    stream_events,
)
from services.order_gateway.venues.bybit_conditional import (
    CONDITIONAL,
    MARKET_TRIGGERED,
    STOP_ORDER,
    check_trigger,
    conditional_params,
)
from services.order_gateway.venues.bybit_payloads import (
    EXECUTIONS_PAGE,
    MAX_PAGES,
    NO_LISTS,
    NO_RETRY_CODES,
    PAGE,
    TIF,
    balances_from_wallet,
    classify,
    fees_of,
    filters_from_instrument,
    report_from_order,
    trade_from_execution,
)
from shared import metrics
from shared.filters import SymbolFilters
from shared.messages import (
    Balance,
    ListKind,
    OrderStatus,
    OrderType,
    PlaceOrder,
    PlaceOrderList,
    Side,
    TimeInForce,
)
from shared.money import ZERO, fmt, venue_dec
from shared.order_report import OrderFees, OrderReport

log = logging.getLogger("automata.venue.bybit")
T = TypeVar("T")


SUBSCRIBE_TIMEOUT_S = 15.0


class SocketGivenUp(ConnectionError):
    """The adapter gave the socket up (exit) while pybit waited to subscribe on it."""


class PrivateSocket(unified_trading.WebSocket):
    """pybit's private socket, with two fixes:

    - pybit sends a subscription before it files the topic's callback, so a message of that
      topic arriving in between raised KeyError in its thread, which closed the socket for good.
      Every private topic here has the one callback (`fallback`), so a topic not filed yet gets it.
    - pybit's subscribe waits for a connection in a sleep loop with no end: on a socket that died
      first, the thread running it (the adapter's, see user_events) slept for good once the
      adapter gave the socket up. A socket given up (`give_up`) ends that wait by raising
      SocketGivenUp. (pybit's own `exited` flag is no sign: it exits and resets the socket
      itself on every error before reconnecting.)"""

    fallback: Any = None
    given_up = False

    def _get_callback(self, topic: str) -> Any:
        return self.callback_directory.get(topic) or self.fallback

    def give_up(self) -> None:
        """Close the socket for good; a subscribe still waiting on it stops waiting."""
        self.given_up = True
        self.exit()

    def is_connected(self) -> bool:
        if self.given_up:
            raise SocketGivenUp("the private socket was given up before it could subscribe")
        return bool(super().is_connected())


class BybitAdapter:
    """A Bybit unified account's spot trading behind VenueAdapter."""

    def __init__(
        self,
        name: str,
        api_key: str,
        api_secret: str,
        *,
        base_url: str = "",
        demo: bool = False,
        timeout_s: float = 10.0,
        recv_window_ms: int = 5000,
    ) -> None:
        self.name, self._key, self._secret = name, api_key, api_secret
        self.base_url, self.demo, self.timeout_s, self.recv_window_ms = (
            base_url.rstrip("/"),
            demo,
            timeout_s,
            recv_window_ms,
        )
        self.session: unified_trading.HTTP | None = None
        self.on_banned: Callable[[Banned], None] = lambda _exc: None
        self._fee_assets: dict[tuple[str, Side], str] = {}
        # cid -> (the quantity its `execution` messages added up to, the last of them)
        self._executions: dict[str, tuple[Decimal, VenueTrade]] = {}
        self._m_requests = metrics.counter(
            "automata_venue_requests_total",
            "Venue requests by endpoint and outcome",
            ("venue", "endpoint", "outcome"),
        )

    def _new_session(self) -> unified_trading.HTTP:
        session = unified_trading.HTTP(
            testnet=False,
            demo=self.demo and not self.base_url,
            api_key=self._key,
            api_secret=self._secret,
            recv_window=self.recv_window_ms,
            timeout=self.timeout_s,
            max_retries=1,
            retry_codes=NO_RETRY_CODES,
        )
        if self.base_url:
            session.endpoint = self.base_url
        return session

    async def _call(self, endpoint: str, fn: Callable[[], T]) -> T:
        outcome = "ok"
        try:
            res = await asyncio.to_thread(fn)
            return res["result"] if isinstance(res, dict) and "result" in res else res
        except Exception as exc:
            err = classify(exc)
            outcome = type(err).__name__
            if isinstance(err, Banned):
                self.on_banned(err)
            if err is exc:
                raise
            raise err from None
        finally:
            self._m_requests.labels(self.name, endpoint, outcome).inc()

    async def start(self) -> None:
        if self.session is None:
            self.session = self._new_session()
        await self.load_filters()

    async def close(self) -> None:
        self.session = None

    async def sync_time(self) -> int:
        assert self.session is not None
        before = time.time() * 1000
        res = await self._call("time", self.session.get_server_time)
        server_ms = int(res.get("timeNano", 0)) // 1_000_000 or int(res["timeSecond"]) * 1000
        return int(server_ms - (before + time.time() * 1000) / 2)

    async def load_filters(self) -> dict[str, SymbolFilters]:
        assert self.session is not None
        res = await self._call("instruments", lambda: self.session.get_instruments_info(category="spot"))
        filters = {i["symbol"]: filters_from_instrument(i) for i in res.get("list", [])}
        for f in filters.values():  # spot fees: in the asset received
            self._fee_assets[(f.symbol, Side.BUY)] = f.base_asset
            self._fee_assets[(f.symbol, Side.SELL)] = f.quote_asset
        return filters

    def _fee_asset(self, o: dict[str, Any]) -> str:
        side = Side(o["side"].upper()) if o.get("side") else Side.BUY
        return self._fee_assets.get((o.get("symbol", ""), side), "")

    async def last_price(self, symbol: str) -> Decimal:
        assert self.session is not None
        res = await self._call("tickers", lambda: self.session.get_tickers(category="spot", symbol=symbol))
        return venue_dec(res["list"][0]["lastPrice"])

    async def place(
        self, cmd: PlaceOrder, qty: Decimal | None, price: Decimal | None, stop: Decimal | None
    ) -> OrderReport:
        assert self.session is not None
        market = cmd.order_type in MARKET_TRIGGERED
        params: dict[str, Any] = {
            "category": "spot",
            "symbol": cmd.symbol,
            "side": "Buy" if cmd.side is Side.BUY else "Sell",
            "orderType": "Market" if market else "Limit",
            "orderLinkId": cmd.cid,
        }
        if qty is not None:
            params["qty"] = fmt(qty)
            if market:
                params["marketUnit"] = "baseCoin"
        else:
            params["qty"] = fmt(cmd.quote_quantity)
            params["marketUnit"] = "quoteCoin"
        if price is not None:
            params["price"] = fmt(price)
        if cmd.order_type in CONDITIONAL:
            if stop is None:
                raise Rejected(f"{cmd.order_type.value} order needs a stop price")
            check_trigger(cmd, stop, await self.last_price(cmd.symbol))
            params.update(conditional_params(cmd, stop))
        if cmd.order_type is OrderType.LIMIT_MAKER:
            params["timeInForce"] = "PostOnly"
        elif not market:
            params["timeInForce"] = TIF.get(cmd.time_in_force or TimeInForce.GTC, "GTC")
        res = await self._call("order_create", lambda: self.session.place_order(**params))
        if not isinstance(res, dict) or not res.get("orderId"):  # `{}`: as unknown as a timeout
            raise MalformedReply(f"malformed reply to order {cmd.cid}: no orderId")
        # order/create only acknowledges; the order's state comes from a query (or the stream)
        try:
            return await self.query(cmd.symbol, cmd.cid)
        except OrderNotFound:
            return OrderReport(cid=cmd.cid, symbol=cmd.symbol, status=OrderStatus.NEW, venue_order_id=str(res.get("orderId", "")),
                               side=cmd.side, order_type=cmd.order_type, price=price, stop_price=stop, orig_qty=qty or Decimal(0),
                               orig_quote_qty=cmd.quote_quantity if qty is None else None)  # fmt: skip

    async def cancel(self, symbol: str, cid: str) -> OrderReport:
        """Spot cancels an order of one orderFilter (Order by default): an order Bybit does not
        find there may be a conditional one not triggered yet, cancelled as a StopOrder."""
        assert self.session is not None
        args = {"category": "spot", "symbol": symbol, "orderLinkId": cid}
        try:
            await self._call("order_cancel", lambda: self.session.cancel_order(**args))
        except OrderNotFound:
            stop_args = {**args, "orderFilter": STOP_ORDER}
            await self._call("order_cancel", lambda: self.session.cancel_order(**stop_args))
        return await self.query(symbol, cid)

    # Bybit spot has no order lists: the order gateway emulates OCO, OTO and OTOCO with single orders.
    lists: frozenset[ListKind] = frozenset()

    async def place_list(
        self, cmd: PlaceOrderList, legs: list[tuple[Decimal | None, Decimal | None, Decimal | None]]
    ) -> list[OrderReport]:
        raise Rejected(NO_LISTS)

    async def cancel_list(self, symbol: str, list_cid: str) -> list[OrderReport]:
        raise Rejected(NO_LISTS)

    async def query_list(self, symbol: str, list_cid: str) -> list[OrderReport]:
        raise Rejected(NO_LISTS)

    async def query(self, symbol: str, cid: str) -> OrderReport:
        assert self.session is not None
        for endpoint, fn in (
            (
                "order_realtime",
                lambda: self.session.get_open_orders(category="spot", symbol=symbol, orderLinkId=cid),
            ),
            (
                "order_history",
                lambda: self.session.get_order_history(category="spot", symbol=symbol, orderLinkId=cid),
            ),
        ):
            res = await self._call(endpoint, fn)
            for o in self._rows(f"query {cid}", res):
                if o.get("orderLinkId") == cid:
                    return self._report(f"query {cid}", o)
        raise OrderNotFound(f"order {cid} does not exist", 110001)

    async def open_orders(self, symbol: str | None = None) -> list[OrderReport]:
        assert self.session is not None
        kwargs: dict[str, Any] = {"category": "spot", "limit": PAGE}
        if symbol:
            kwargs["symbol"] = symbol
        return await self._pages("order_realtime", self.session.get_open_orders, kwargs, pages=MAX_PAGES)

    async def recent_orders(self, symbol: str) -> list[OrderReport]:
        """order/history without startTime: Bybit's default window, the last 7 days of the
        VENUE's time (never a bound from the local clock), newest first, MAX_PAGES pages."""
        assert self.session is not None
        kwargs: dict[str, Any] = {"category": "spot", "symbol": symbol, "limit": PAGE}
        return await self._pages("order_history", self.session.get_order_history, kwargs, pages=MAX_PAGES)

    async def _pages(
        self, endpoint: str, fn: Callable[..., Any], kwargs: dict[str, Any], *, pages: int
    ) -> list[OrderReport]:
        """Every row of a cursor-paged order list, up to `pages` pages."""
        out: list[OrderReport] = []
        cursor = ""
        for _ in range(pages):
            args = {**kwargs, **({"cursor": cursor} if cursor else {})}
            res = await self._call(endpoint, lambda args=args: fn(**args))
            out += [self._report(endpoint, o) for o in self._rows(endpoint, res)]
            cursor = res.get("nextPageCursor") or ""
            if not cursor:
                break
        return out

    @staticmethod
    def _rows(what: str, res: Any) -> list[dict[str, Any]]:
        rows = res.get("list") if isinstance(res, dict) else None
        if not isinstance(rows, list) or not all(isinstance(o, dict) for o in rows):
            raise MalformedReply(f"malformed reply to {what}: no list of orders")
        return rows

    def _report(self, what: str, o: dict[str, Any]) -> OrderReport:
        return self._with_trade(parse_reply(what, lambda o: report_from_order(o, self._fee_asset(o)), o))

    async def balances(self) -> list[Balance]:
        assert self.session is not None
        res = await self._call("wallet", lambda: self.session.get_wallet_balance(accountType="UNIFIED"))
        return parse_reply("wallet", balances_from_wallet, res)

    async def order_fees(self, symbol: str, venue_order_id: str) -> OrderFees:
        assert self.session is not None
        res = await self._call(
            "executions",
            lambda: self.session.get_executions(category="spot", symbol=symbol, orderId=venue_order_id),
        )
        return parse_reply(f"executions {venue_order_id}", fees_of, res)

    async def trades(self, symbol: str) -> list[VenueTrade]:
        """execution/list, every cursor page of Bybit's default window (the last 7 days of the
        venue's time), oldest first (the venue's own order: execIds are UUIDs)."""
        assert self.session is not None
        out: list[VenueTrade] = []
        cursor = ""
        while True:
            args = {
                "category": "spot",
                "symbol": symbol,
                "limit": EXECUTIONS_PAGE,
                **({"cursor": cursor} if cursor else {}),
            }
            res = await self._call("executions", lambda args=args: self.session.get_executions(**args))
            out += parse_list(f"execution/list {symbol}", trade_from_execution, self._rows("executions", res))
            cursor = res.get("nextPageCursor") or ""
            if not cursor:
                return out[::-1]  # pages come newest first

    async def user_events(self) -> AsyncIterator[UserEvent]:
        """Private order / wallet topics; the socket is recreated whenever pybit lets it die."""
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue[dict[str, Any]] = asyncio.Queue()

        def callback(msg: dict[str, Any]) -> None:  # websocket thread: never raise here
            with contextlib.suppress(Exception):
                loop.call_soon_threadsafe(queue.put_nowait, msg)

        while True:
            ws = None
            try:
                ws = await asyncio.to_thread(self._new_socket)
                ws.fallback = callback
                # pybit waits in a sleep loop for a connection before subscribing: in a thread, so
                # a socket that dies meanwhile never holds the event loop (and every order with it)
                await asyncio.wait_for(asyncio.to_thread(_subscribe, ws, callback), SUBSCRIBE_TIMEOUT_S)
                yield StreamGap("bybit private stream subscribed")
                while ws.is_connected():
                    try:
                        msg = await asyncio.wait_for(queue.get(), timeout=1.0)
                    except TimeoutError:
                        continue
                    for event in self._events(msg):
                        yield event
                log.warning("%s: private websocket disconnected; recreating it", self.name)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("%s: private websocket failed (%s: %s)", self.name, type(exc).__name__, exc)
            finally:
                if ws is not None:
                    with contextlib.suppress(Exception):
                        ws.give_up()
            await asyncio.sleep(1.0)

    def _with_trade(self, report: OrderReport) -> OrderReport:
        """The `order` message names no trade: when the executions heard for the order add up
        to its cumExecQty, the last of them is the trade that brought it there (its id, quantity
        and price are the report's last fill). Otherwise (an execution missed, or not yet
        arrived) the report names none: its growth is derived, `automata ledger sync` finds it."""
        seen = self._executions.get(report.cid)
        if report.terminal:
            self._executions.pop(report.cid, None)
        if seen is None or seen[0] != report.cum_filled_qty:
            return report
        trade = seen[1]
        return msgspec.structs.replace(report, last_fill_qty=trade.qty, last_fill_price=trade.price,
                                       trade_id=trade.trade_id, maker=trade.is_maker)  # fmt: skip

    def _new_socket(self) -> PrivateSocket:
        if self.base_url:
            ws_base = self.base_url.replace("http://", "ws://").replace("https://", "wss://")
            unified_trading.PRIVATE_WSS = f"{ws_base}/v5/private"
        return PrivateSocket(
            testnet=False, demo=self.demo and not self.base_url, channel_type="private",
            api_key=self._key, api_secret=self._secret, restart_on_error=True,
        )  # fmt: skip

    def _events(self, msg: Any) -> list[UserEvent]:
        """A private-topic message's events; a malformed one is a StreamGap (stream_events)."""
        return stream_events("private message", self._parse_events, msg)

    def _parse_events(self, msg: dict[str, Any]) -> list[UserEvent]:
        topic = msg.get("topic", "")
        data = msg.get("data") or []
        if topic == "execution":
            for e in data:
                if e.get("category", "spot") == "spot" and e.get("execType", "Trade") == "Trade":
                    trade = trade_from_execution(e)
                    seen = self._executions.get(trade.cid, (ZERO, trade))[0]
                    self._executions[trade.cid] = (seen + trade.qty, trade)
            return []
        if topic == "order":
            return [
                self._with_trade(report_from_order(o, self._fee_asset(o)))
                for o in data
                if o.get("category", "spot") == "spot"
            ]
        if topic == "wallet":
            balances = balances_from_wallet({"list": data})
            return [BalanceReport(balances=tuple(balances), venue_ts=int(msg.get("creationTime", 0)))]
        return []


def _subscribe(ws: PrivateSocket, callback: Any) -> None:
    ws.execution_stream(callback)  # before `order`: the venue sends a fill's execution first
    ws.order_stream(callback)
    ws.wallet_stream(callback)
