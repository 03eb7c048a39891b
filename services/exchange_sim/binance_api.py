"""The Binance spot endpoints, independent of transport: REST and the WebSocket API both call these.

Each method takes the request's Params and returns the JSON Binance returns, or raises
BinanceError. It also fans the engine's events for the Binance account out to user-stream
subscribers as executionReport / outboundAccountPosition / balanceUpdate payloads, after
the `drop_event` fault has had its say.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable
from decimal import Decimal
from typing import Any

from aiohttp import web

from services.exchange_sim import binance_format as fmt
from services.exchange_sim.binance_errors import (
    BAD_LISTEN_KEY,
    INVALID_SYMBOL,
    ONE_ID_NEEDED,
    UNKNOWN_ORDER_SENT,
    BinanceError,
    Params,
    from_engine,
    mandatory,
    not_required,
)
from services.exchange_sim.binance_tape import ORDERS_PER_DAY
from services.exchange_sim.telemetry import sim_metrics
from services.exchange_sim.venue import Venue
from shared.candle_files import INTERVAL_MS
from shared.matching.engine import (
    EngineError,
    Event,
    ListEvent,
    Order,
    OrderEvent,
    OrderRequest,
    OrderType,
    Side,
    TimeInForce,
)

ACCOUNT = "binance"
PROTOCOL = "binance"
KLINE_INTERVALS = {k: v for k, v in INTERVAL_MS.items() if v >= 60_000}
FULL_BY_DEFAULT = frozenset({OrderType.MARKET, OrderType.LIMIT})
UserListener = Callable[[dict[str, Any]], None]

# Which order parameters each type needs and refuses (Binance answers -1102 / -1106).
NEEDS: dict[OrderType, tuple[str, ...]] = {
    OrderType.MARKET: (),
    OrderType.LIMIT: ("timeInForce", "quantity", "price"),
    OrderType.LIMIT_MAKER: ("quantity", "price"),
    OrderType.STOP_LOSS: ("quantity", "stopPrice"),
    OrderType.TAKE_PROFIT: ("quantity", "stopPrice"),
    OrderType.STOP_LOSS_LIMIT: ("timeInForce", "quantity", "price", "stopPrice"),
    OrderType.TAKE_PROFIT_LIMIT: ("timeInForce", "quantity", "price", "stopPrice"),
}
REFUSES: dict[OrderType, tuple[str, ...]] = {
    OrderType.MARKET: ("timeInForce", "price", "stopPrice"),
    OrderType.LIMIT: ("stopPrice", "quoteOrderQty"),
    OrderType.LIMIT_MAKER: ("timeInForce", "stopPrice", "quoteOrderQty"),
    OrderType.STOP_LOSS: ("timeInForce", "price", "quoteOrderQty"),
    OrderType.TAKE_PROFIT: ("timeInForce", "price", "quoteOrderQty"),
    OrderType.STOP_LOSS_LIMIT: ("quoteOrderQty",),
    OrderType.TAKE_PROFIT_LIMIT: ("quoteOrderQty",),
}


CANCEL_RESTRICTIONS = {"ONLY_NEW": "NEW", "ONLY_PARTIALLY_FILLED": "PARTIALLY_FILLED"}
DAY_MINUTES = 1440
_WINDOW_UNITS = {"m": (1, 59), "h": (60, 23), "d": (DAY_MINUTES, 7)}  # minutes per unit, largest count


def window_minutes(text: str) -> int:
    """A rolling ticker's windowSize ('15m', '4h', '7d') in minutes; -1100 for anything else."""
    count, unit = text[:-1], text[-1:]
    if unit in _WINDOW_UNITS and count.isdigit() and 1 <= int(count) <= _WINDOW_UNITS[unit][1]:
        return int(count) * _WINDOW_UNITS[unit][0]
    raise BinanceError(
        -1100, "Illegal characters found in parameter 'windowSize'; legal range is '1m-59m, 1h-23h, 1d-7d'."
    )


def enum_param(kind: type, value: str, error: BinanceError) -> Any:
    try:
        return kind(value)
    except ValueError:
        raise error from None


class ListenKeys:
    """Listen keys of the legacy user stream: one active per account, 60 minutes unless kept alive."""

    TTL_S = 3600.0

    def __init__(self, seed: int) -> None:
        self.seed = seed
        self.on_close: list[Callable[[str], None]] = []
        self.reset()

    def reset(self) -> None:
        self._expiry: dict[str, float] = {}
        self._made = 0

    def create(self) -> str:
        now = time.time()
        for key, expiry in self._expiry.items():
            if expiry > now:
                self._expiry[key] = now + self.TTL_S
                return key
        self._made += 1
        key = hashlib.sha256(f"listen:{self.seed}:{self._made}".encode()).hexdigest()[:60]
        self._expiry[key] = now + self.TTL_S
        return key

    def valid(self, key: str) -> bool:
        return self._expiry.get(key, 0.0) > time.time()

    def keepalive(self, key: str) -> None:
        if not self.valid(key):
            raise BAD_LISTEN_KEY
        self._expiry[key] = time.time() + self.TTL_S

    def close(self, key: str) -> None:
        if self._expiry.pop(key, None) is None:
            raise BAD_LISTEN_KEY
        for hook in list(self.on_close):
            hook(key)


class BinanceApi:
    def __init__(self, venue: Venue) -> None:
        self.venue = venue
        self.engine, self.market = venue.engine, venue.market
        self.listen_keys = ListenKeys(venue.config.seed)
        self.tape = venue.tape
        self._subscribers: list[UserListener] = []
        self._seq = 0
        self.engine.add_listener(self._on_engine_event)
        venue.on_reset.append(self.reset)

    def reset(self) -> None:
        self.listen_keys.reset()
        self._seq = 0

    # ----------------------------------------------------------------- user stream fan-out
    def subscribe(self, listener: UserListener) -> None:
        self._subscribers.append(listener)

    def unsubscribe(self, listener: UserListener) -> None:
        if listener in self._subscribers:
            self._subscribers.remove(listener)

    def _on_engine_event(self, event: Event) -> None:
        if event.account != ACCOUNT:
            return
        if isinstance(event, OrderEvent):
            self._seq += 1
            payloads = [fmt.execution_report(event, self._seq)]
        elif isinstance(event, ListEvent):
            payloads = [fmt.list_status_event(event)]
        else:
            payloads = fmt.account_events(event)
        for payload in payloads:
            if self.venue.faults.take(
                "drop_event",
                protocol=PROTOCOL,
                event=payload["e"],
                exec_type=payload.get("x"),
                status=payload.get("X"),
                symbol=payload.get("s"),
                client_order_id=payload.get("c"),
            ):
                sim_metrics().events_dropped.labels("fault").inc()
                sim_metrics().faults.labels("drop_event").inc()
                continue
            for listener in list(self._subscribers):
                listener(payload)

    # ----------------------------------------------------------------- helpers
    def _symbol(self, p: Params) -> str:
        symbol = p.req("symbol")
        if symbol not in self.engine.specs:
            raise INVALID_SYMBOL
        return symbol

    def _symbols(self, p: Params) -> list[str]:
        names = p.symbols()
        if names is None:
            return list(self.engine.specs)
        for name in names:
            if name not in self.engine.specs:
                raise INVALID_SYMBOL
        return names

    @staticmethod
    def _one_or_list(p: Params, items: list[dict[str, Any]]) -> Any:
        return items[0] if "symbol" in p else items

    def _find(self, p: Params, *, cancel: bool = False) -> Order:
        symbol = self._symbol(p)
        order_id = p.integer("orderId")
        cid = p.text("origClientOrderId")
        if order_id is None and cid is None:
            raise ONE_ID_NEEDED
        try:
            if cancel:
                self._check_cancel_restrictions(p, symbol, order_id, cid)
                return self.engine.cancel(
                    ACCOUNT,
                    symbol,
                    order_id=order_id,
                    client_order_id=cid,
                    cancel_client_order_id=p.client_id("newClientOrderId"),
                )
            return self.engine.get_order(ACCOUNT, symbol, order_id=order_id, client_order_id=cid)
        except EngineError as exc:
            raise from_engine(exc, cancel=cancel) from None

    def _check_cancel_restrictions(
        self, p: Params, symbol: str, order_id: int | None, cid: str | None
    ) -> None:
        """`cancelRestrictions` ONLY_NEW / ONLY_PARTIALLY_FILLED: cancel only an order in that status."""
        wanted = p.text("cancelRestrictions")
        if wanted is None:
            return
        if wanted not in CANCEL_RESTRICTIONS:
            raise BinanceError(-1145, "Invalid cancelRestrictions")
        order = self.engine.get_order(ACCOUNT, symbol, order_id=order_id, client_order_id=cid)
        if order.is_open and fmt.status(order) != CANCEL_RESTRICTIONS[wanted]:
            raise BinanceError(-2011, "Order was not canceled due to cancel restrictions.")

    # ----------------------------------------------------------------- general & market data
    def ping(self, p: Params) -> dict[str, Any]:
        return {}

    def time(self, p: Params) -> dict[str, Any]:
        return {"serverTime": self.venue.clock.now_ms()}

    def exchange_info(self, p: Params) -> dict[str, Any]:
        limiter = self.venue.limiter
        return {
            "timezone": "UTC",
            "serverTime": self.venue.clock.now_ms(),
            "rateLimits": [
                {
                    "rateLimitType": "REQUEST_WEIGHT",
                    "interval": "MINUTE",
                    "intervalNum": 1,
                    "limit": limiter.weight_limit,
                },
                {
                    "rateLimitType": "ORDERS",
                    "interval": "SECOND",
                    "intervalNum": 10,
                    "limit": limiter.order_limit_10s,
                },
                {"rateLimitType": "ORDERS", "interval": "DAY", "intervalNum": 1, "limit": ORDERS_PER_DAY},
                {"rateLimitType": "RAW_REQUESTS", "interval": "MINUTE", "intervalNum": 5, "limit": 61000},
            ],
            "exchangeFilters": [],
            "symbols": [fmt.symbol_info(self.engine.specs[s]) for s in self._symbols(p)],
        }

    def klines(self, p: Params) -> list[list[Any]]:
        symbol = self._symbol(p)
        interval = p.req("interval")
        if interval not in KLINE_INTERVALS:
            raise BinanceError(-1120, "Invalid interval.")
        limit = min(max(p.integer("limit", default=500) or 500, 1), 1000)
        bars = self.market.klines(
            symbol,
            KLINE_INTERVALS[interval],
            start=p.integer("startTime"),
            end=p.integer("endTime"),
            limit=limit,
        )
        return [fmt.kline_row(c) for c in bars]

    def ticker_price(self, p: Params) -> Any:
        items = [{"symbol": s, "price": fmt.f8(self.engine.quote(s).price)} for s in self._symbols(p)]
        return self._one_or_list(p, items)

    def _book(self, symbol: str) -> dict[str, str]:
        q = self.engine.quote(symbol)
        return {
            "bidPrice": fmt.f8(q.bid),
            "bidQty": fmt.f8(q.bid_qty),
            "askPrice": fmt.f8(q.ask),
            "askQty": fmt.f8(q.ask_qty),
        }

    def book_ticker(self, p: Params) -> Any:
        return self._one_or_list(p, [{"symbol": s, **self._book(s)} for s in self._symbols(p)])

    def ticker_24h(self, p: Params) -> Any:
        """GET /api/v3/ticker/24hr: the last 1440 minutes, with the book and the last print."""
        return self._tickers(p, DAY_MINUTES, rolling=False)

    def ticker_window(self, p: Params) -> Any:
        """GET /api/v3/ticker: the same statistics over `windowSize` (1m-59m, 1h-23h, 1d-7d;
        default 1d), as far back as the kept history reaches."""
        if p.symbols() is None:
            raise mandatory("symbol")
        return self._tickers(p, window_minutes(p.text("windowSize") or "1d"), rolling=True)

    def ticker_trading_day(self, p: Params) -> Any:
        """GET /api/v3/ticker/tradingDay: since 00:00 UTC of the market's day (timeZone not taken)."""
        if p.symbols() is None:
            raise mandatory("symbol")
        if p.text("timeZone") not in (None, "0", "+0", "0:00"):
            raise BinanceError(
                -1100, "Illegal characters found in parameter 'timeZone'; only UTC (0) is served."
            )
        minutes = (self.market.time % (DAY_MINUTES * 60_000)) // 60_000 + 1
        return self._tickers(p, minutes, rolling=True)

    def _tickers(self, p: Params, minutes: int, *, rolling: bool) -> Any:
        kind = p.text("type") or "FULL"
        if kind not in ("FULL", "MINI"):
            raise BinanceError(
                -1100, "Illegal characters found in parameter 'type'; legal range is 'FULL, MINI'."
            )
        items = []
        for s in self._symbols(p):
            w = self.market.window(s, minutes)
            last = self.engine.quote(s).price
            prints = self.tape.prints[s]
            stats: dict[str, Any] = {"symbol": s}
            if kind == "FULL":
                change = last - w.open
                stats |= {
                    "priceChange": fmt.f8(change),
                    "priceChangePercent": f"{(change / w.open * 100) if w.open else Decimal(0):.3f}",
                    "weightedAvgPrice": fmt.f8(w.quote_volume / w.volume if w.volume else last),
                }
                if not rolling:
                    last_qty = prints[-1].qty if prints else Decimal(0)
                    stats |= {"prevClosePrice": fmt.f8(w.open), "lastPrice": fmt.f8(last),
                              "lastQty": fmt.f8(last_qty), **self._book(s)}  # fmt: skip
            stats |= {
                "openPrice": fmt.f8(w.open),
                "highPrice": fmt.f8(w.high),
                "lowPrice": fmt.f8(w.low),
                "lastPrice": fmt.f8(last),
                "volume": fmt.f8(w.volume),
                "quoteVolume": fmt.f8(w.quote_volume),
                "openTime": w.open_time,
                "closeTime": w.close_time,
                "firstId": -1,
                "lastId": -1,
                "count": w.trades,
            }
            items.append(stats)
        return self._one_or_list(p, items)

    def avg_price(self, p: Params) -> dict[str, Any]:
        symbol = self._symbol(p)
        return {"mins": 5, "price": fmt.f8(self.market.avg_price(symbol)), "closeTime": self.market.time}

    def depth(self, p: Params) -> dict[str, Any]:
        symbol = self._symbol(p)
        book = self.engine.depth(symbol, min(max(p.integer("limit", default=100) or 100, 1), 5000))
        return {
            "lastUpdateId": self.market.steps,
            "bids": [[fmt.f8(px), fmt.f8(q)] for px, q in book.bids],
            "asks": [[fmt.f8(px), fmt.f8(q)] for px, q in book.asks],
        }

    # ----------------------------------------------------------------- account & orders
    def account(self, p: Params) -> dict[str, Any]:
        omit_zero = (p.text("omitZeroBalances") or "").lower() == "true"
        rate_m = fmt.f8(self.engine.maker_fee)
        rate_t = fmt.f8(self.engine.taker_fee)
        balances = [
            {"asset": a, "free": fmt.f8(b.free), "locked": fmt.f8(b.locked)}
            for a, b in self.engine.balances(ACCOUNT).items()
            if not (omit_zero and b.free == 0 and b.locked == 0)
        ]
        return {
            "makerCommission": int(self.engine.maker_fee * 10000),
            "takerCommission": int(self.engine.taker_fee * 10000),
            "buyerCommission": 0,
            "sellerCommission": 0,
            "commissionRates": {"maker": rate_m, "taker": rate_t, "buyer": fmt.ZERO8, "seller": fmt.ZERO8},
            "canTrade": True,
            "canWithdraw": True,
            "canDeposit": True,
            "brokered": False,
            "requireSelfTradePrevention": False,
            "preventSor": False,
            "updateTime": self.market.time,
            "accountType": "SPOT",
            "balances": balances,
            "permissions": ["SPOT"],
            "uid": 1,
        }

    def _order_request(self, p: Params) -> tuple[OrderRequest, str]:
        symbol = self._symbol(p)
        side = enum_param(Side, p.req("side"), BinanceError(-1117, "Invalid side."))
        kind = enum_param(OrderType, p.req("type"), BinanceError(-1116, "Invalid orderType."))
        for name in NEEDS[kind]:
            if name not in p:
                raise mandatory(name)
        for name in REFUSES[kind]:
            if name in p:
                raise not_required(name)
        quantity, quote_qty = p.decimal("quantity"), p.decimal("quoteOrderQty")
        if kind is OrderType.MARKET:
            if quantity is None and quote_qty is None:
                raise BinanceError(
                    -1102, "Param 'quantity' or 'quoteOrderQty' must be sent, but both were empty/null!"
                )
            if quantity is not None and quote_qty is not None:
                raise not_required("quoteOrderQty")
        tif_text = p.text("timeInForce")
        tif = (
            enum_param(TimeInForce, tif_text, BinanceError(-1115, "Invalid timeInForce."))
            if tif_text
            else None
        )
        resp_type = p.text("newOrderRespType") or ("FULL" if kind in FULL_BY_DEFAULT else "ACK")
        if resp_type not in ("ACK", "RESULT", "FULL"):
            raise BinanceError(-1100, "Illegal characters found in parameter 'newOrderRespType'.")
        req = OrderRequest(
            symbol=symbol,
            side=side,
            type=kind,
            quantity=quantity,
            quote_quantity=quote_qty,
            price=p.decimal("price"),
            stop_price=p.decimal("stopPrice"),
            time_in_force=tif,
            client_order_id=p.client_id("newClientOrderId"),
        )
        return req, resp_type

    def new_order(self, p: Params) -> dict[str, Any]:
        req, resp_type = self._order_request(p)
        try:
            placed = self.engine.place(ACCOUNT, req)
        except EngineError as exc:
            sim_metrics().orders.labels(PROTOCOL, "rejected").inc()
            raise from_engine(exc) from None
        sim_metrics().orders.labels(PROTOCOL, "accepted").inc()
        if resp_type == "ACK":
            return fmt.order_ack(placed.order)
        if resp_type == "RESULT":
            return fmt.order_result(placed.order)
        return fmt.order_full(placed.order, placed.trades)

    def test_order(self, p: Params) -> dict[str, Any]:
        req, _ = self._order_request(p)
        try:
            self.engine.test_order(ACCOUNT, req)
        except EngineError as exc:
            raise from_engine(exc) from None
        if (p.text("computeCommissionRates") or "").lower() == "true":
            return self._commissions("ForOrder", {})
        return {}

    def account_commission(self, p: Params) -> dict[str, Any]:
        """GET /api/v3/account/commission: the symbol's rates (no buyer/seller, special or tax part)."""
        zero = {"buyer": fmt.ZERO8, "seller": fmt.ZERO8}
        return {"symbol": self._symbol(p), **self._commissions("", zero)}

    def _commissions(self, suffix: str, extra: dict[str, str]) -> dict[str, Any]:
        """The commission rates (commission_faq.md): standard = the venue's fees, the rest 0,
        no BNB discount (fees are charged in the asset received)."""
        zero = {"maker": fmt.ZERO8, "taker": fmt.ZERO8, **extra}
        standard = {"maker": fmt.f8(self.engine.maker_fee), "taker": fmt.f8(self.engine.taker_fee), **extra}
        return {
            f"standardCommission{suffix}": standard,
            f"specialCommission{suffix}": zero,
            f"taxCommission{suffix}": zero,
            "discount": {
                "enabledForAccount": False,
                "enabledForSymbol": False,
                "discountAsset": "BNB",
                "discount": "0.25000000",
            },
        }

    def get_order(self, p: Params) -> dict[str, Any]:
        return fmt.order_query(self._find(p))

    def cancel_order(self, p: Params) -> dict[str, Any]:
        return fmt.order_canceled(self._find(p, cancel=True))

    def open_orders(self, p: Params) -> list[dict[str, Any]]:
        symbol = self._symbol(p) if "symbol" in p else None
        return [fmt.order_query(o) for o in self.engine.open_orders(ACCOUNT, symbol)]

    def cancel_open_orders(self, p: Params) -> list[dict[str, Any]]:
        symbol = self._symbol(p)
        canceled = self.engine.cancel_all(ACCOUNT, symbol)
        if not canceled:
            raise UNKNOWN_ORDER_SENT
        return [fmt.order_canceled(o) if o.list_id < 0 else self._canceled_list(o.list_id) for o in canceled]

    def _canceled_list(self, list_id: int) -> dict[str, Any]:
        """A list among the cancelled orders: the list, with its legs' reports (rest-api.md)."""
        order_list = self.engine.get_list(ACCOUNT, list_id=list_id)
        legs = self.engine.list_orders(order_list)
        return {**fmt.list_json(order_list), "orderReports": [fmt.order_canceled(o) for o in legs]}

    def all_orders(self, p: Params) -> list[dict[str, Any]]:
        symbol = self._symbol(p)
        orders = self.engine.orders(
            ACCOUNT,
            symbol,
            from_id=p.integer("orderId"),
            start_time=p.integer("startTime"),
            end_time=p.integer("endTime"),
            limit=min(p.integer("limit", default=500) or 500, 1000),
        )
        return [fmt.order_query(o) for o in orders]

    def my_trades(self, p: Params) -> list[dict[str, Any]]:
        symbol = self._symbol(p)
        trades = self.engine.trades(
            ACCOUNT,
            symbol,
            order_id=p.integer("orderId"),
            from_id=p.integer("fromId"),
            start_time=p.integer("startTime"),
            end_time=p.integer("endTime"),
            limit=min(p.integer("limit", default=500) or 500, 1000),
        )
        return [fmt.my_trade(t, self._list_id(t.order_id)) for t in trades]

    def _list_id(self, order_id: int) -> int:
        order = self.engine.find_order(order_id)
        return order.list_id if order is not None else -1

    # ----------------------------------------------------------------- listen keys (legacy user stream)
    def new_listen_key(self, p: Params) -> dict[str, Any]:
        return {"listenKey": self.listen_keys.create()}

    def keepalive_listen_key(self, p: Params) -> dict[str, Any]:
        self.listen_keys.keepalive(p.req("listenKey"))
        return {}

    def close_listen_key(self, p: Params) -> dict[str, Any]:
        self.listen_keys.close(p.req("listenKey"))
        return {}


_API_KEY = web.AppKey("binance_api", BinanceApi)


def api_for(app: web.Application, venue: Venue) -> BinanceApi:
    """The one BinanceApi of this app, shared by the REST and websocket faces."""
    if _API_KEY not in app:
        app[_API_KEY] = BinanceApi(venue)
    return app[_API_KEY]
