"""Binance's public trade endpoints on the paper venue: /api/v3/trades, historicalTrades, aggTrades
(and the WebSocket API's trades.recent / trades.historical / trades.aggregate); and the account
queries that have little to show here: its order count, rateLimit/order (account.rateLimits.orders),
myPreventedMatches and myAllocations (always empty), and order/cancelReplace (refused, as
exchangeInfo's cancelReplaceAllowed false says).

The tape is the venue's (tape.py): the market's own prints, the ones the `@trade` / `@aggTrade`
streams push. python-binance's
get_recent_trades, get_historical_trades, get_aggregate_trades and aggregate_trade_iter read it;
without it they got a 404. Each endpoint is a function of (BinanceApi, Params), as in
binance_lists.py, so REST and the WebSocket API share them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from services.exchange_sim import binance_format as fmt
from services.exchange_sim.binance_errors import BinanceError, Params
from services.exchange_sim.market import Tick
from services.exchange_sim.tape import TAPE_LENGTH, buyer_maker

if TYPE_CHECKING:  # binance_api.py makes the tape
    from services.exchange_sim.binance_api import BinanceApi

ORDERS_PER_DAY = 200_000  # the ORDERS/DAY limit exchangeInfo shows (not enforced)


def _limit(p: Params) -> int:
    """Default 500, at most 1000 (as klines and allOrders here)."""
    return min(max(p.integer("limit", default=500) or 500, 1), TAPE_LENGTH)


def _trade_row(tick: Tick) -> dict[str, Any]:
    return {
        "id": tick.trade_id,
        "price": fmt.f8(tick.price),
        "qty": fmt.f8(tick.qty),
        "quoteQty": fmt.f8(tick.price * tick.qty),
        "time": tick.time,
        "isBuyerMaker": buyer_maker(tick.trade_id),
        "isBestMatch": True,
    }


def _agg_row(tick: Tick) -> dict[str, Any]:
    """One print is one aggregate trade: `a`, `f` and `l` are its trade id."""
    return {
        "a": tick.trade_id,
        "p": fmt.f8(tick.price),
        "q": fmt.f8(tick.qty),
        "f": tick.trade_id,
        "l": tick.trade_id,
        "T": tick.time,
        "m": buyer_maker(tick.trade_id),
        "M": True,
    }


def recent_trades(api: BinanceApi, p: Params) -> list[dict[str, Any]]:
    """GET /api/v3/trades: the latest `limit` prints, oldest first."""
    prints = api.tape.prints[api._symbol(p)]
    return [_trade_row(t) for t in list(prints)[-_limit(p) :]]


def historical_trades(api: BinanceApi, p: Params) -> list[dict[str, Any]]:
    """GET /api/v3/historicalTrades: from trade id `fromId` on, else the latest."""
    prints = list(api.tape.prints[api._symbol(p)])
    limit, from_id = _limit(p), p.integer("fromId")
    if from_id is None:
        return [_trade_row(t) for t in prints[-limit:]]
    return [_trade_row(t) for t in prints if t.trade_id >= from_id][:limit]


def agg_trades(api: BinanceApi, p: Params) -> list[dict[str, Any]]:
    """GET /api/v3/aggTrades: by `fromId`, or by `startTime`/`endTime` (at most an hour apart)."""
    prints = list(api.tape.prints[api._symbol(p)])
    limit, from_id = _limit(p), p.integer("fromId")
    start, end = p.integer("startTime"), p.integer("endTime")
    if start is not None and end is not None and not 0 <= end - start <= 3_600_000:
        raise BinanceError(-1127, "More than 1 hours between startTime and endTime.")
    if from_id is None and start is None and end is None:
        return [_agg_row(t) for t in prints[-limit:]]
    found = [
        t
        for t in prints
        if (from_id is None or t.trade_id >= from_id)
        and (start is None or t.time >= start)
        and (end is None or t.time <= end)
    ]
    return [_agg_row(t) for t in found[:limit]]


def order_count(api: BinanceApi, p: Params) -> list[dict[str, Any]]:
    """GET /api/v3/rateLimit/order: the unfilled order counts of the ORDERS limits."""
    limiter = api.venue.limiter
    return [
        {"rateLimitType": "ORDERS", "interval": "SECOND", "intervalNum": 10,
         "limit": limiter.order_limit_10s, "count": limiter.orders_10s},
        {"rateLimitType": "ORDERS", "interval": "DAY", "intervalNum": 1,
         "limit": ORDERS_PER_DAY, "count": limiter.orders_1d},
    ]  # fmt: skip


def no_prevented_matches(api: BinanceApi, p: Params) -> list[dict[str, Any]]:
    """GET /api/v3/myPreventedMatches: [] — the account's orders never meet each other (no STP)."""
    api._symbol(p)
    return []


def no_allocations(api: BinanceApi, p: Params) -> list[dict[str, Any]]:
    """GET /api/v3/myAllocations: [] — there is no smart order routing here."""
    api._symbol(p)
    return []


def cancel_replace(api: BinanceApi, p: Params) -> dict[str, Any]:
    """POST /api/v3/order/cancelReplace: refused as Binance refuses it on a symbol without it."""
    api._symbol(p)
    raise BinanceError(-2010, "Order cancel-replace is not supported for this symbol.")
