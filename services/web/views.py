"""The JSON shapes of the API (msgspec Structs: the OpenAPI document's schemas come from them).

Money is Decimal, sent as an exact decimal string; times are UTC milliseconds since the epoch."""

from __future__ import annotations

import dataclasses
import typing
from datetime import datetime
from decimal import Decimal
from typing import Any

import msgspec

from shared.ledger.rows import Trade
from shared.messages import Candle


class Service(msgspec.Struct):
    service: str
    instance: str
    pid: int
    beat_age_s: float
    stale: bool
    uptime_s: float
    info: dict[str, Any]  # what the service adds to its heartbeat (bots, url, channels...)


class Services(msgspec.Struct):
    services: list[Service]
    ts: int


class AssetBalance(msgspec.Struct):
    asset: str
    free: Decimal
    locked: Decimal
    total: Decimal
    price: Decimal | None  # in the quote asset (None: no price known)
    value: Decimal | None


class Account(msgspec.Struct):
    venue: str
    quote: str
    ts: int
    complete: bool  # False: only deltas seen since the last snapshot, the list may miss assets
    balances: list[AssetBalance]
    equity: Decimal  # the valued assets' total in `quote`
    unvalued: list[str]  # assets left out of the equity: no price in `quote`


class Balances(msgspec.Struct):
    accounts: list[Account]
    missing: list[str]  # configured venues with no balances in Redis yet


class DecisionView(msgspec.Struct):
    id: str
    bot: str
    text: str
    topic: str
    fields: dict[str, str]
    ts: int


class BotSummary(msgspec.Struct):
    bot: str
    mode: str
    venue: str | None
    symbol: str | None
    position: Decimal | None
    avg_price: Decimal | None
    realised: Decimal | None
    unrealised: Decimal | None  # the ledger's open cycles at the last price (None: not known)
    open_orders: int
    failed: str
    stalled: bool | None
    last_input_s: float | None
    last_decision: DecisionView | None


class Bots(msgspec.Struct):
    bots: list[BotSummary]


class OpenOrder(msgspec.Struct):
    """An order the bot placed and that is not finished yet, as the bot's state holds it."""

    cid: str
    side: str
    order_type: str
    tag: str  # the strategy's label: "base", "so3", "tp", a grid level...
    price: Decimal | None
    stop_price: Decimal | None
    quantity: Decimal | None
    quote_quantity: Decimal | None
    status: str
    cum_filled_qty: Decimal


class BotDetail(msgspec.Struct):
    summary: BotSummary
    strategy: str | None  # from the bots file
    params: dict[str, Any]
    state: dict[str, Any]  # the strategy's state as persisted (ladder, grid levels, stop...)
    orders: list[OpenOrder]
    version: int


class Decisions(msgspec.Struct):
    decisions: list[DecisionView]


class NotificationView(msgspec.Struct):
    id: str
    kind: str
    level: str
    title: str
    text: str
    bot: str
    venue: str
    ts: int


class Notifications(msgspec.Struct):
    notifications: list[NotificationView]


def _ms_times(cls: type, name: str) -> type[msgspec.Struct]:
    """A Struct of a ledger dataclass's fields, its datetimes as ms since the epoch (every time
    in this API is), so the shape stays the ledger's."""
    hints = typing.get_type_hints(cls)
    return msgspec.defstruct(name, [(f.name, int if hints[f.name] is datetime else hints[f.name])
                                    for f in dataclasses.fields(cls)])  # fmt: skip


Fill = _ms_times(Trade, "Fill")  # one fill (shared/ledger/queries.py Trade)


class Fills(msgspec.Struct):
    fills: list[Fill]


class OrderRow(msgspec.Struct):
    cid: str
    bot: str
    venue: str
    symbol: str
    side: str | None
    order_type: str | None
    status: str
    price: Decimal | None
    stop_price: Decimal | None
    orig_qty: Decimal
    cum_filled_qty: Decimal
    cum_quote_qty: Decimal
    fee: Decimal
    fee_asset: str
    reason: str
    created_at: int
    updated_at: int


class Orders(msgspec.Struct):
    orders: list[OrderRow]


class Cycle(msgspec.Struct):
    bot: str
    number: int
    venue: str
    symbol: str
    quote_asset: str
    opened_at: int
    closed_at: int | None
    buys: int
    sells: int
    bought_qty: Decimal
    sold_qty: Decimal
    spent: Decimal
    received: Decimal
    fees: Decimal
    profit: Decimal | None


class Cycles(msgspec.Struct):
    cycles: list[Cycle]


class ProfitRow(msgspec.Struct):
    bot: str  # "total": every bot in this quote asset
    quote_asset: str
    realised: Decimal
    unrealised: Decimal | None
    fees: Decimal
    closed: int
    wins: int
    win_rate: Decimal | None
    best: Decimal | None
    worst: Decimal | None
    fills: int
    open_cycles: int


class Period(msgspec.Struct):
    start: int
    end: int
    profit: dict[str, Decimal]  # per quote asset
    fees: dict[str, Decimal]
    closed: int
    wins: int
    fills: int


class Profit(msgspec.Struct):
    rows: list[ProfitRow]
    period: str
    periods: list[Period]  # newest first
    up_to: int | None  # the ledger's newest fill when older than the window (the paper venue's clock)


class EquityPoint(msgspec.Struct):
    at: int
    value: Decimal


class EquitySeries(msgspec.Struct):
    venue: str
    quote_asset: str
    first: EquityPoint
    last: EquityPoint
    high: EquityPoint
    low: EquityPoint
    drawdown: Decimal
    drawdown_pct: Decimal | None
    points: list[EquityPoint]  # the last value of each UTC day, oldest first


class Equity(msgspec.Struct):
    series: list[EquitySeries]


class Chart(msgspec.Struct):
    bot: str
    venue: str | None
    symbol: str | None
    interval: str
    candles: list[Candle]  # oldest first, as the market gateway published them
    fills: list[Fill]  # the bot's fills within the candles' span
    orders: list[OpenOrder]  # the bot's open orders (their prices as lines)


class PlanLevel(msgspec.Struct):
    level: int
    step: Decimal | None
    drop: Decimal
    price: Decimal
    quote: Decimal
    qty: Decimal
    cum_cost: Decimal
    avg_entry: Decimal
    target: Decimal
    tp_price: Decimal
    rise: Decimal
    profit: Decimal
    budget_cut: bool
    placed: bool
    filled: bool  # the current cycle has done this level


class DcaPlan(msgspec.Struct):
    bot: str
    symbol: str
    ref_price: Decimal
    levels: list[PlanLevel]
    total_cost: Decimal
    placed_cost: Decimal
    stop_level: int | None
    stop_reason: str
    cycle: int
    phase: str
