"""Binance spot through python-binance's AsyncClient (main net, Spot Testnet, or the paper venue).

python-binance retries nothing and reports every failure its own way;
`_call` turns them into the errors of venues/base.py. The user-data stream subscribes over the
WebSocket API and is not resubscribed by the library after a drop, so `user_events` rebuilds
the client and socket on any error and yields StreamGap so the gateway polls what it missed.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from decimal import Decimal
from typing import Any, TypeVar

import aiohttp

from services.order_gateway.venues.base import (
    AuthError,
    BalanceReport,
    Banned,
    ClockSkew,
    DuplicateOrder,
    OrderNotFound,
    OutcomeUnknown,
    RateLimited,
    Rejected,
    StreamGap,
    UserEvent,
    VenueTrade,
    parse_list,
    parse_reply,
    stream_events,
    venue_fee,
    venue_str,
)
from services.order_gateway.venues.binance_lists import BinanceLists, ListIds
from shared import metrics
from shared.binance_close import close_client
from shared.binance_lean import (
    AsyncClient,
    BinanceAPIException,
    BinanceRequestException,
    BinanceSocketManager,
)
from shared.filters import SymbolFilters
from shared.messages import Balance, OrderStatus, OrderType, PlaceOrder, Side, TimeInForce
from shared.money import fmt, venue_dec
from shared.order_report import OrderFees, OrderReport
from shared.ratelimit import Limiter, VenuePaused, WeightLimiter, priority_of

log = logging.getLogger("automata.venue.binance")
T = TypeVar("T")

# Our share of Binance's 6,000 weight a minute, leaving room for other processes on the IP.
DEFAULT_WEIGHT_BUDGET = 4800
# Request weights of the endpoints used (Binance spot, 2025).
TRADES_PAGE = 1000  # myTrades answers at most 1000 a page
WEIGHT = {"order": 1, "get_order": 4, "cancel": 1, "open_orders": 6, "open_orders_all": 80, "exchange_info": 20,
          "account": 20, "my_trades": 20, "all_orders": 20, "time": 1, "ticker": 2}  # fmt: skip

_STATUS = {
    "NEW": OrderStatus.NEW,
    "PENDING_NEW": OrderStatus.NEW,  # a list's leg waiting for its working leg: accepted, not working yet
    "PARTIALLY_FILLED": OrderStatus.PARTIALLY_FILLED,
    "FILLED": OrderStatus.FILLED,
    "CANCELED": OrderStatus.CANCELED,
    "PENDING_CANCEL": OrderStatus.NEW,
    "REJECTED": OrderStatus.REJECTED,
    "EXPIRED": OrderStatus.EXPIRED,
    "EXPIRED_IN_MATCH": OrderStatus.EXPIRED,
}
_REJECT_CODES = {-1013, -1121, -2010, -2011, -1100, -1101, -1102, -1103, -1104, -1105, -1106, -1111, -1112,
                 -1114, -1115, -1116, -1117, -1118, -1119, -1120, -1125, -1127, -1128, -1130, -2026}  # fmt: skip
# errors.md: codes whose request may or may not have reached the matching engine (UNKNOWN,
# DISCONNECTED, UNEXPECTED_RESP and TIMEOUT say "execution status unknown"; SERVER_BUSY), under
# whatever HTTP status they come with: never a refusal.
_UNKNOWN_CODES = {-1000, -1001, -1006, -1007, -1008}
_RATE_CODES = {-1003, -1015}  # TOO_MANY_REQUESTS (request weight), TOO_MANY_ORDERS (order rate)


def _retry_after(exc: BinanceAPIException, default: float) -> float:
    headers = getattr(exc.response, "headers", None) or {}
    try:
        return float(headers.get("Retry-After", default))
    except (TypeError, ValueError):
        return default


def classify(exc: BaseException) -> Exception:
    """Map a python-binance / aiohttp failure to the venue error the gateway acts on."""
    if isinstance(exc, BinanceAPIException):
        code, status, msg = exc.code, exc.status_code, exc.message or ""
        if status == 418:
            return Banned(f"HTTP 418 IP banned: {msg}", _retry_after(exc, 120.0), code)
        if status == 429 or code in _RATE_CODES:
            return RateLimited(f"rate limited: {msg}", _retry_after(exc, 10.0), code)
        if status >= 500 or code == 0 or code in _UNKNOWN_CODES:
            return OutcomeUnknown(f"HTTP {status}: {msg[:200]}", code)
        if code == -1021:
            return ClockSkew(msg, code)
        if code in (-1022, -2014, -2015):
            return AuthError(f"{code}: {msg}", code)
        if code == -2013:
            return OrderNotFound(msg, code)
        if code == -2010 and "duplicate" in msg.lower():
            return DuplicateOrder(msg, code)
        if code in _REJECT_CODES or 400 <= status < 500:
            return Rejected(f"{code}: {msg}", code)
        return OutcomeUnknown(f"HTTP {status} {code}: {msg}", code)
    if isinstance(exc, TimeoutError | asyncio.TimeoutError):
        return OutcomeUnknown("request timed out")
    if isinstance(exc, aiohttp.ClientError | BinanceRequestException | ConnectionError):
        return OutcomeUnknown(f"{type(exc).__name__}: {exc}")
    return exc if isinstance(exc, Exception) else RuntimeError(str(exc))


def report_from_order(o: dict[str, Any]) -> OrderReport:
    """An order as REST returns it (GET/POST/DELETE order, openOrders)."""
    cid = o.get("origClientOrderId") or o.get("clientOrderId", "")
    fills = o.get("fills") or []
    fee = sum((venue_dec(f["commission"]) for f in fills), Decimal(0)) if fills else None
    last = fills[-1] if fills else None
    stop = venue_dec(o.get("stopPrice"))
    return OrderReport(
        cid=cid,
        symbol=o["symbol"],
        status=_STATUS.get(o.get("status", "NEW"), OrderStatus.NEW),
        venue_order_id=str(o.get("orderId", "")),
        side=Side(o["side"]) if o.get("side") else None,
        order_type=OrderType(o["type"]) if o.get("type") in OrderType.__members__ else None,
        price=venue_dec(o.get("price")) or None,
        stop_price=stop or None,
        orig_qty=venue_dec(o.get("origQty")),
        orig_quote_qty=venue_dec(o.get("origQuoteOrderQty")) or None,
        cum_filled_qty=venue_dec(o.get("executedQty")),
        cum_quote_qty=venue_dec(o.get("cummulativeQuoteQty")),
        last_fill_price=venue_dec(last["price"]) if last else Decimal(0),
        last_fill_qty=venue_dec(last["qty"]) if last else Decimal(0),
        trade_id=str(last.get("tradeId", "")) if last else "",
        maker=False if last else None,  # a reply's fills: what the order took as it arrived
        fee=fee
        if fills and venue_dec(o.get("executedQty")) > 0
        else (Decimal(0) if venue_dec(o.get("executedQty")) == 0 else None),
        fee_asset=fills[0]["commissionAsset"] if fills else "",
        venue_ts=int(o.get("updateTime") or o.get("transactTime") or o.get("time") or 0),
    )


def report_from_execution(e: dict[str, Any]) -> OrderReport:
    """An executionReport event of the user-data stream."""
    status = e["X"]
    cid = e.get("C") if status == "CANCELED" and e.get("C") else e["c"]
    return OrderReport(
        cid=cid,
        symbol=e["s"],
        status=_STATUS.get(status, OrderStatus.NEW),
        venue_order_id=str(e["i"]),
        side=Side(e["S"]),
        order_type=OrderType(e["o"]) if e["o"] in OrderType.__members__ else None,
        price=venue_dec(e.get("p")) or None,
        stop_price=venue_dec(e.get("P")) or None,
        orig_qty=venue_dec(e.get("q")),
        orig_quote_qty=venue_dec(e.get("Q")) or None,
        cum_filled_qty=venue_dec(e.get("z")),
        cum_quote_qty=venue_dec(e.get("Z")),
        last_fill_price=venue_dec(e.get("L")),
        last_fill_qty=venue_dec(e.get("l")),
        trade_id=str(e["t"]) if e.get("t") not in (None, -1, "-1") else "",
        maker=e["m"] if e.get("t") not in (None, -1, "-1") and isinstance(e.get("m"), bool) else None,
        last_fee=venue_dec(e.get("n")),
        fee=Decimal(0) if venue_dec(e.get("z")) == 0 else None,
        fee_asset=e.get("N") or "",
        venue_ts=int(e.get("E") or e.get("T") or 0),
        reason=e.get("r", "") if e.get("r") not in (None, "NONE") else e.get("eR") or "",
    )


def balances_from_account(res: dict[str, Any]) -> list[Balance]:
    """GET /api/v3/account's balances."""
    return [
        Balance(b["asset"], venue_dec(b["free"]), venue_dec(b["locked"])) for b in res.get("balances", [])
    ]


def _account_position(msg: dict[str, Any]) -> list[UserEvent]:
    balances = (Balance(b["a"], venue_dec(b["f"]), venue_dec(b["l"])) for b in msg.get("B", []))
    return [BalanceReport(balances=tuple(balances), venue_ts=int(msg.get("E", 0)))]


def event_from_message(msg: Any, list_ids: ListIds | None = None) -> list[UserEvent]:
    """A user-data stream message's events: none for the kinds not used, a StreamGap for a
    malformed one (stream_events). A listStatus teaches `list_ids` its list's client id, which
    the executionReports of its legs then carry (binance_lists.py)."""
    kind = msg.get("e") if isinstance(msg, dict) else None
    ids = list_ids or ListIds()
    if kind == "executionReport":
        return stream_events(kind, lambda m: [ids.fill(report_from_execution(m), m.get("g"))], msg)
    if kind == "listStatus":
        ids.learn(msg.get("g"), msg.get("C"))
        return []
    if kind == "outboundAccountPosition":
        return stream_events(kind, _account_position, msg)
    return []


def trade_from_my_trades(t: dict[str, Any]) -> VenueTrade:
    """One row of GET /api/v3/myTrades."""
    return VenueTrade(
        trade_id=str(t["id"]),
        symbol=t["symbol"],
        venue_order_id=str(t["orderId"]),
        side=Side.BUY if t["isBuyer"] else Side.SELL,
        price=venue_dec(t["price"]),
        qty=venue_dec(t["qty"]),
        quote=venue_dec(t["quoteQty"]),
        fee=venue_dec(t["commission"]),
        fee_asset=venue_str(t["commissionAsset"]),
        is_maker=bool(t["isMaker"]),
        time=int(t["time"]),
    )


def _fees_of(trades: list[dict[str, Any]]) -> OrderFees:
    """An order's trades (myTrades), in trade id order, with their fees and its asset."""
    ordered = sorted(trades, key=lambda t: int(t["id"]))
    fills = tuple((venue_dec(t["qty"]), venue_fee(venue_dec(t["commission"]))) for t in ordered)
    return OrderFees(venue_str(ordered[0]["commissionAsset"]) if ordered else "", fills)


def filters_from_symbol(s: dict[str, Any]) -> SymbolFilters:
    f = {x["filterType"]: x for x in s.get("filters", [])}
    price, lot = f.get("PRICE_FILTER", {}), f.get("LOT_SIZE", {})
    notional = f.get("NOTIONAL") or f.get("MIN_NOTIONAL") or {}
    pct = f.get("PERCENT_PRICE_BY_SIDE") or f.get("PERCENT_PRICE") or {}
    kwargs: dict[str, Any] = {}
    for field, by_side, both in (
        ("multiplier_up", "bidMultiplierUp", "multiplierUp"),  # a buy's band, or PERCENT_PRICE's
        ("multiplier_down", "bidMultiplierDown", "multiplierDown"),
        ("sell_multiplier_up", "askMultiplierUp", ""),  # a sell's (PERCENT_PRICE_BY_SIDE only)
        ("sell_multiplier_down", "askMultiplierDown", ""),
    ):
        value = pct.get(by_side) or pct.get(both)
        if value:
            kwargs[field] = venue_dec(value)
    for sell, buy in (("sell_multiplier_up", "multiplier_up"), ("sell_multiplier_down", "multiplier_down")):
        if sell in kwargs and kwargs[sell] == kwargs.get(buy):
            del kwargs[sell]  # the same band both ways: None says so (SymbolFilters)
    return SymbolFilters(
        symbol=s["symbol"],
        base_asset=s["baseAsset"],
        quote_asset=s["quoteAsset"],
        tick_size=venue_dec(price.get("tickSize", "0.01")),
        step_size=venue_dec(lot.get("stepSize", "0.00001")),
        min_qty=venue_dec(lot.get("minQty", "0")),
        max_qty=venue_dec(lot.get("maxQty", "9000000")),
        min_price=venue_dec(price.get("minPrice", "0")),
        max_price=venue_dec(price.get("maxPrice", "0")) or Decimal("1e12"),
        min_notional=venue_dec(notional.get("minNotional", "0")),
        max_notional=venue_dec(notional.get("maxNotional", "0")) or Decimal("1e15"),
        **kwargs,
    )


class BinanceAdapter(BinanceLists):
    """A Binance spot account (or the paper venue speaking Binance) behind VenueAdapter; its
    order lists in binance_lists.py."""

    _report = staticmethod(report_from_order)

    def __init__(
        self,
        name: str,
        api_key: str,
        api_secret: str,
        *,
        base_url: str = "",
        testnet: bool = False,
        timeout_s: float = 10.0,
        recv_window_ms: int = 5000,
        limiter: Limiter | None = None,
    ) -> None:
        self.name = name
        self._key, self._secret = api_key, api_secret
        self.base_url, self.testnet, self.timeout_s = base_url.rstrip("/"), testnet, timeout_s
        self.recv_window_ms = recv_window_ms
        self.limiter = limiter or WeightLimiter(DEFAULT_WEIGHT_BUDGET)
        self.on_banned: Callable[[Banned], None] = lambda _exc: None
        self._m_weight = metrics.gauge(
            "automata_venue_used_weight", "Request weight the venue reports used this minute", ("venue",)
        ).labels(name)
        self.client: AsyncClient | None = None
        self.list_ids = ListIds()
        self._offset_ms = 0
        labels = ("venue", "endpoint", "outcome")
        self._m_requests = metrics.counter(
            "automata_venue_requests_total", "Venue requests by endpoint and outcome", labels
        )
        self._m_latency = metrics.histogram(
            "automata_venue_request_seconds", "Venue request latency", ("venue", "endpoint"),
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
        )  # fmt: skip

    def _client_class(self) -> type[AsyncClient]:
        if not self.base_url:
            return AsyncClient
        ws = self.base_url.replace("http://", "ws://").replace("https://", "wss://")
        attrs = {
            "API_URL": f"{self.base_url}/api",
            "WS_API_URL": f"{ws}/ws-api/v3",
            "REQUEST_TIMEOUT": self.timeout_s,
        }
        return type("RedirectedAsyncClient", (AsyncClient,), attrs)

    def _new_client(self) -> AsyncClient:
        client = self._client_class()(self._key, self._secret, testnet=self.testnet and not self.base_url)
        client.REQUEST_TIMEOUT = self.timeout_s
        client.REQUEST_RECVWINDOW = self.recv_window_ms
        client.timestamp_offset = self._offset_ms
        return client

    async def start(self) -> None:
        if self.client is None:
            self.client = self._new_client()
        await self.sync_time()

    async def close(self) -> None:
        if self.client is not None:
            await close_client(self.client)
            self.client = None

    async def _call(self, endpoint: str, weight: int, fn: Callable[[], Awaitable[T]]) -> T:
        """One REST call: the venue's weight budget at the endpoint's priority (orders first,
        then recovery, backfill, polling: shared/ratelimit.py), metrics, error classification."""
        try:
            await self.limiter.acquire(weight, priority_of(endpoint))
        except VenuePaused as exc:  # another process met the ban: as if this order had
            banned = Banned(str(exc), exc.seconds)
            self.on_banned(banned)
            raise banned from None
        started = time.perf_counter()
        outcome = "ok"
        try:
            return await fn()
        except Exception as exc:
            err = classify(exc)
            outcome = type(err).__name__
            if isinstance(err, Banned) or (isinstance(err, RateLimited) and err.code == -1003):
                self.limiter.block(err.retry_after, f"{self.name} {endpoint}: {err}")  # the IP's weight
            if isinstance(err, Banned):
                self.on_banned(err)
            if err is exc:
                raise
            raise err from None
        finally:
            self._m_requests.labels(self.name, endpoint, outcome).inc()
            self._m_latency.labels(self.name, endpoint).observe(time.perf_counter() - started)
            response = getattr(self.client, "response", None)
            if response is not None:
                self._observe_weight(response.headers.get("X-MBX-USED-WEIGHT-1M"))

    def _observe_weight(self, header: str | None) -> None:
        """The venue's own count this minute (other processes on the IP spend it too)."""
        if header and header.isdigit():
            self._m_weight.set(int(header))
            self.limiter.observe_used(int(header))

    async def sync_time(self) -> int:
        assert self.client is not None
        before = time.time() * 1000
        res = await self._call("time", WEIGHT["time"], self.client.get_server_time)
        after = time.time() * 1000
        self._offset_ms = int(res["serverTime"] - (before + after) / 2)
        self.client.timestamp_offset = self._offset_ms
        return self._offset_ms

    async def load_filters(self) -> dict[str, SymbolFilters]:
        assert self.client is not None
        info = await self._call("exchange_info", WEIGHT["exchange_info"], self.client.get_exchange_info)
        return {s["symbol"]: filters_from_symbol(s) for s in info.get("symbols", [])}

    async def last_price(self, symbol: str) -> Decimal:
        assert self.client is not None
        res = await self._call(
            "ticker", WEIGHT["ticker"], lambda: self.client.get_symbol_ticker(symbol=symbol)
        )
        return venue_dec(res["price"])

    async def place(
        self, cmd: PlaceOrder, qty: Decimal | None, price: Decimal | None, stop: Decimal | None
    ) -> OrderReport:
        assert self.client is not None
        params: dict[str, Any] = {
            "symbol": cmd.symbol,
            "side": cmd.side.value,
            "type": cmd.order_type.value,
            "newClientOrderId": cmd.cid,
            "newOrderRespType": "FULL",
        }
        if qty is not None:
            params["quantity"] = fmt(qty)
        elif cmd.quote_quantity is not None:
            params["quoteOrderQty"] = fmt(cmd.quote_quantity)
        if price is not None:
            params["price"] = fmt(price)
        if stop is not None:
            params["stopPrice"] = fmt(stop)
        if cmd.order_type in (OrderType.LIMIT, OrderType.STOP_LOSS_LIMIT, OrderType.TAKE_PROFIT_LIMIT):
            params["timeInForce"] = str(cmd.time_in_force or TimeInForce.GTC)
        res = await self._call("order", WEIGHT["order"], lambda: self.client.create_order(**params))
        # a malformed answer (`{}`) says no more than a timeout: OutcomeUnknown, resolved by query
        return parse_reply(f"order {cmd.cid}", report_from_order, res)

    async def cancel(self, symbol: str, cid: str) -> OrderReport:
        assert self.client is not None
        res = await self._call(
            "cancel", WEIGHT["cancel"], lambda: self.client.cancel_order(symbol=symbol, origClientOrderId=cid)
        )
        return parse_reply(f"cancel {cid}", report_from_order, res)

    async def query(self, symbol: str, cid: str) -> OrderReport:
        assert self.client is not None
        res = await self._call(
            "get_order",
            WEIGHT["get_order"],
            lambda: self.client.get_order(symbol=symbol, origClientOrderId=cid),
        )
        return (await self.with_lists(res, [parse_reply(f"query {cid}", report_from_order, res)]))[0]

    async def open_orders(self, symbol: str | None = None) -> list[OrderReport]:
        assert self.client is not None
        kwargs = {"symbol": symbol} if symbol else {}
        weight = WEIGHT["open_orders"] if symbol else WEIGHT["open_orders_all"]
        res = await self._call("open_orders", weight, lambda: self.client.get_open_orders(**kwargs))
        return await self.with_lists(res, parse_list("openOrders", report_from_order, res))

    async def recent_orders(self, symbol: str) -> list[OrderReport]:
        """allOrders without startTime: the latest 1000 of the symbol, whatever the venue's clock."""
        assert self.client is not None
        res = await self._call(
            "all_orders", WEIGHT["all_orders"], lambda: self.client.get_all_orders(symbol=symbol, limit=1000)
        )
        return await self.with_lists(res, parse_list(f"allOrders {symbol}", report_from_order, res))

    async def balances(self) -> list[Balance]:
        assert self.client is not None
        res = await self._call("account", WEIGHT["account"], self.client.get_account)
        return parse_reply("account", balances_from_account, res)

    async def order_fees(self, symbol: str, venue_order_id: str) -> OrderFees:
        assert self.client is not None
        trades = await self._call(
            "my_trades", WEIGHT["my_trades"],
            lambda: self.client.get_my_trades(symbol=symbol, orderId=int(venue_order_id)),
        )  # fmt: skip
        return parse_reply(f"myTrades {venue_order_id}", _fees_of, trades)

    async def trades(self, symbol: str) -> list[VenueTrade]:
        """myTrades from the first trade on (fromId pages of 1000)."""
        assert self.client is not None
        out: list[VenueTrade] = []
        while True:
            start = int(out[-1].trade_id) + 1 if out else 0
            page = await self._call(
                "my_trades", WEIGHT["my_trades"],
                lambda start=start: self.client.get_my_trades(symbol=symbol, fromId=start, limit=TRADES_PAGE),
            )  # fmt: skip
            out += parse_list(f"myTrades {symbol}", trade_from_my_trades, page)
            if len(page) < TRADES_PAGE:
                return out

    async def user_events(self) -> AsyncIterator[UserEvent]:
        """executionReport / outboundAccountPosition as reports; StreamGap after each (re)subscribe."""
        backoff = 0.5
        while True:
            client = self._new_client()
            try:
                bm = BinanceSocketManager(client)
                async with bm.user_socket() as socket:
                    try:
                        yield StreamGap("user stream subscribed")
                        backoff = 0.5
                        while True:
                            msg = await socket.recv()
                            if isinstance(msg, dict) and msg.get("e") == "error":
                                log.warning(
                                    "%s user stream error %s: rebuilding it", self.name, msg.get("type")
                                )
                                break
                            for event in event_from_message(msg, self.list_ids):
                                yield event
                    finally:
                        # No unsubscribe request on the way out: closing the client's ws_api below
                        # ends the subscription, and the request waited up to 10 s for a reply a
                        # venue that had dropped the connection never sent (a stop held that long).
                        socket._subscription_id = None
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning(
                    "%s user stream failed (%s: %s); retrying in %.1fs",
                    self.name,
                    type(exc).__name__,
                    exc,
                    backoff,
                )
            finally:
                try:
                    await close_client(client)
                except Exception:
                    pass
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, 30.0)
