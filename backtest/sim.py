"""The backtester's venue: one account on the paper venue's own matching engine (shared/matching).

No fill model of its own: orders are placed, cancelled and matched by the very engine the
paper venue runs, so partial fills, the synthetic book, rounding, every filter (percent price
included), fees (in the asset received, rounded up to 1e-8) and the market-order timing are the
venue's. The backtester (engine.py) hands it each candle's four waypoints with the liquidity of
each step (shared/matching/candles.py), as the venue's market clock does.

What the bot hears is built as the order gateway builds it: a command is first rounded and
checked by the gateway's `prepare` (a FilterError is REJECTED before anything reaches the
venue), the reply to a place or cancel and every later engine event become an OrderReport (as
the Binance adapter reads the venue's REST reply and executionReport), and the report moves the
gateway's OrderRecord forward (shared/order_record.py: advance_record, to_update, as the tracker),
so the OrderUpdates carry the same cumulative quantities, last fill and fee as live.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from decimal import Decimal
from typing import Any

import msgspec

from services.order_gateway.validate import prepare
from shared.filters import FilterError
from shared.matching.engine import (
    DEFAULT_MARKET_FILL,
    FORGET_AFTER,
    Engine,
    EngineError,
    Event,
    MarketFill,
    Order,
    OrderEvent,
    OrderRequest,
    Trade,
)
from shared.matching.engine_rules import triggers_on_fall
from shared.matching.model import LIMIT_PRICED, NEEDS_TIF, STOP_TYPES
from shared.matching.symbols import SymbolSpec
from shared.messages import BUY, GTC, OrderStatus, OrderUpdate, PlaceOrder, PlaceOrderList, Side
from shared.money import ZERO
from shared.order_lifecycle import moves_forward
from shared.order_record import (
    OrderRecord,
    advance_record,
    new_record,
    to_update,
    without_bad_amounts,
)
from shared.order_report import OrderReport

ACCOUNT = "backtest"
NEVER = -1  # a trigger level no positive price reaches from above
ALWAYS_ABOVE = 2**62  # one no price reaches from below


class SimFill(msgspec.Struct, frozen=True, gc=False):
    """One trade of the account, with what the backtest's fill log keeps of its order (a Struct:
    built positionally in a tenth of a frozen dataclass's time)."""

    cid: str
    tag: str
    side: Side
    order_type: str
    price: Decimal
    qty: Decimal
    quote: Decimal
    fee: Decimal
    fee_asset: str


class FreeBalances(Mapping[str, Decimal]):
    """The account's free amount per asset, read from the engine's own rows at each look (the
    engine's order of assets): what `balances()` gave as a fresh dict after every operation,
    without the dict."""

    __slots__ = ("_rows",)

    def __init__(self, rows: Mapping[str, Sequence[Decimal]]) -> None:
        self._rows = rows

    def __getitem__(self, asset: str) -> Decimal:
        return self._rows[asset][0]

    def get(self, asset: str, default: Any = None) -> Any:
        row = self._rows.get(asset)
        return default if row is None else row[0]

    def __iter__(self) -> Iterator[str]:
        return iter(self._rows)

    def __len__(self) -> int:
        return len(self._rows)

    def __repr__(self) -> str:
        return repr(dict(self))


class SimVenue:
    """One bot's orders and balances on one symbol, matched by the shared engine."""

    def __init__(
        self,
        spec: SymbolSpec,
        *,
        bot: str,
        venue: str,
        symbol: str,
        quote: Decimal,
        base: Decimal = ZERO,
        fee_rate: Decimal = Decimal("0.001"),
        market_fill: MarketFill = DEFAULT_MARKET_FILL,
    ) -> None:
        self.spec, self.filters = spec, spec.filters
        self._market = spec.symbol  # the engine's name of it (a property of the spec: read once)
        self.bot, self.venue, self.symbol = bot, venue, symbol
        self.engine = Engine(
            [spec],
            balances={spec.base: base, spec.quote: quote},
            maker_fee=fee_rate,
            taker_fee=fee_rate,
            market_fill=market_fill,
            keep_record=False,
        )
        self._events: list[Event] = []
        self.engine.add_listener(self._events.append)
        self.records: dict[str, OrderRecord] = {}  # by cid; ended ones dropped once they pile up
        self.tags: dict[str, str] = {}
        self._used: set[str] = set()  # the cids of the records dropped: an id is used once
        self._forget_at = FORGET_AFTER
        self.lists: set[str] = set()  # the cids of the order lists placed
        self.fills: list[SimFill] = []  # trades since the caller last took them
        self.placed = 0
        self.last_price: Decimal | None = None
        self._priced: Decimal | None = None  # the price the engine's quote was last set to
        self._ref: Callable[[], Decimal | None] = lambda: None
        self._levels: tuple[int, int] | None = (NEVER, ALWAYS_ABOVE)
        self._levels_known = True  # False after any operation that may have changed the open orders
        self._rows = self.engine.live_funds(ACCOUNT)  # [free, locked] per asset, moved in place
        self._balances = FreeBalances(self._rows)

    # --- the market ----------------------------------------------------------------------

    def mark(self, price: Decimal, ts: int, ref_price: Callable[[], Decimal | None]) -> None:
        """The market is at `price`, which no open order reaches (`trigger_levels`): the engine
        would only move its quote, so that is done when an order needs it (a quiet step costs no
        Decimal work)."""
        self.last_price = price
        self._ref = ref_price
        self.engine.set_time(ts)

    def step(
        self, price: Decimal, ts: int, liquidity: Decimal, ref_price: Decimal | None
    ) -> list[OrderUpdate]:
        """A waypoint: the engine triggers, fills and executes what this price reaches."""
        self.last_price = self._priced = price
        self.engine.set_time(ts)
        self._changed()
        self.engine.on_price(self._market, price, liquidity=liquidity, ref_price=ref_price)
        return self._drain(ts)

    def _changed(self) -> None:
        """An operation may have changed the open orders: read them again (and drop the records
        that ended, once they pile up: a year's backtest would keep them all)."""
        if len(self.records) > self._forget_at:
            self._forget()
        self._levels_known = False

    def _forget(self) -> None:
        """Drop the ended records (their last updates were told, their fills logged); their ids
        stay used. Scanned only once the records kept have doubled since the last time."""
        ended = [cid for cid, record in self.records.items() if record.terminal]
        for cid in ended:
            del self.records[cid]
            self.tags.pop(cid, None)
        self._used.update(ended)
        self._forget_at = FORGET_AFTER + 2 * len(self.records)

    def _price_engine(self) -> None:
        if self.last_price is not None and self._priced != self.last_price:
            self._priced = self.last_price
            self.engine.move_quote(self._market, self.last_price, ref_price=self._ref())

    # --- placing and cancelling ----------------------------------------------------------

    def place(self, cmd: PlaceOrder, ts: int, tag: str = "") -> list[OrderUpdate]:
        """What the bot hears of this command: REJECTED with the reason, or the venue's reply
        (NEW, or filled at once for an order that crosses the book) and what followed."""
        self.placed += 1
        self._changed()
        record = new_record(cmd, ts, keep_request=False)
        if cmd.cid in self.records or cmd.cid in self._used:
            # answered without touching the record of the order that holds the id
            return [self._rejected(record, f"DUPLICATE_ORDER: client order id {cmd.cid} was used", ts)]
        self.records[cmd.cid] = record
        self.tags[cmd.cid] = tag
        self._price_engine()
        try:
            if cmd.symbol != self.symbol:
                raise FilterError(f"invalid symbol {cmd.symbol}")
            qty, price, stop = prepare(cmd, self.filters, self.last_price)
            placed = self.engine.place(ACCOUNT, _request(cmd, self._market, qty, price, stop))
        except (FilterError, EngineError) as exc:
            self._events.clear()
            return [self._reject(record, str(exc), ts)]
        updates = self._apply(_report(placed.order, placed.trades, reply=True), ts)
        return updates + self._drain(ts)

    def cancel(self, cid: str, ts: int) -> list[OrderUpdate]:
        """The cancel's reply and events; nothing when the order is not open (any more)."""
        record = self.records.get(cid)
        if record is None or record.terminal:
            return []
        self._changed()
        try:
            order = self.engine.cancel(ACCOUNT, self._market, client_order_id=cid)
        except EngineError:
            self._events.clear()
            return []
        return self._replies([order], [], ts)

    def _replies(self, orders: list[Order], trades: list[Trade], ts: int) -> list[OrderUpdate]:
        """The venue's reply for each order (with its trades), then the operation's events."""
        updates: list[OrderUpdate] = []
        for order in orders:
            mine = [t for t in trades if t.order_id == order.order_id]
            updates += self._apply(_report(order, mine, reply=True), ts)
        return updates + self._drain(ts)

    def place_list(self, cmd: PlaceOrderList, ts: int, tags: Sequence[str] = ()) -> list[OrderUpdate]:
        """As `place`, for an order list (the engine's own lists, shared/matching/engine_lists.py):
        every leg REJECTED with the reason, or the legs' replies and what followed. Each leg's
        record carries the list's cid, so its OrderUpdates do."""
        self.placed += len(cmd.legs)
        self._changed()
        records = [
            msgspec.structs.replace(new_record(leg, ts, keep_request=False), list_cid=cmd.list_cid)
            for leg in cmd.legs
        ]
        used = [
            c
            for c in (cmd.list_cid, *(leg.cid for leg in cmd.legs))
            if c in self.records or c in self.lists or c in self._used
        ]
        if used:  # answered without touching the records that hold these ids
            reason = f"DUPLICATE_ORDER: client order id {used[0]} was used"
            return [self._rejected(r, reason, ts) for r in records]
        self.lists.add(cmd.list_cid)
        for record, tag in zip(records, (*tags, *[""] * len(records)), strict=False):
            self.records[record.cid] = record
            self.tags[record.cid] = tag
        self._price_engine()
        try:
            if cmd.symbol != self.symbol:
                raise FilterError(f"invalid symbol {cmd.symbol}")
            requests = [
                _request(leg, self._market, *prepare(leg, self.filters, self.last_price)) for leg in cmd.legs
            ]
            placed = self.engine.place_list(ACCOUNT, cmd.kind, requests, cmd.list_cid)
        except (FilterError, EngineError) as exc:
            self._events.clear()
            return [self._reject(r, str(exc), ts) for r in records]
        return self._replies(placed.orders, placed.trades, ts)

    def cancel_list(self, list_cid: str, ts: int) -> list[OrderUpdate]:
        """The cancel's reply for every leg, and its events. A list the venue holds done while a
        leg still works (an OCO's leg traded in part: the other expired) has that leg cancelled
        alone, as the order gateway does; nothing when no leg is open."""
        if list_cid not in self.lists:
            return []
        self._changed()
        try:
            cancelled = self.engine.cancel_list(ACCOUNT, self._market, list_client_order_id=list_cid)
        except EngineError:
            self._events.clear()
            working = [r.cid for r in self.records.values() if r.list_cid == list_cid and not r.terminal]
            return [u for cid in working for u in self.cancel(cid, ts)]
        return self._replies(cancelled.orders, [], ts)

    def open_cids(self) -> list[str]:
        return [o.client_order_id for o in self.engine.open_orders(ACCOUNT, self._market)]

    # --- reports to updates, as the order gateway does --------------------------------------

    def _reject(self, record: OrderRecord, reason: str, ts: int) -> OrderUpdate:
        update = self._rejected(record, reason, ts)
        if record.cid in self.records:
            self.records[record.cid] = msgspec.structs.replace(
                without_bad_amounts(record), status=OrderStatus.REJECTED, reason=reason, updated_ts=ts
            )
        return update

    @staticmethod
    def _rejected(record: OrderRecord, reason: str, ts: int) -> OrderUpdate:
        """The REJECTED update of a record, which stays as it is."""
        record = msgspec.structs.replace(
            without_bad_amounts(record), status=OrderStatus.REJECTED, reason=reason, updated_ts=ts
        )
        return to_update(record, None, reconciled=False, now_ms=ts)

    def _apply(self, report: OrderReport, ts: int) -> list[OrderUpdate]:
        record = self.records.get(report.cid)
        if record is None:
            return []
        update = self._advance(record, report, ts)
        return [] if update is None else [update]

    def _advance(self, record: OrderRecord, report: OrderReport, ts: int) -> OrderUpdate | None:
        """The report applied to the order's record, as the gateway's tracker applies it."""
        new = advance_record(record, report, None, ts)  # every engine report names its fees
        if new is None:
            return None
        self.records[record.cid] = new
        return to_update(new, record, reconciled=False, now_ms=ts, report=report)

    def _drain(self, ts: int) -> list[OrderUpdate]:
        """The engine's events of the last operation, as the user stream would bring them."""
        if not self._events:
            return []
        events = self._events[:]
        self._events.clear()  # the engine's listener appends to this very list
        updates: list[OrderUpdate] = []
        records, tags, fills = self.records, self.tags, self.fills
        for event in events:
            if not isinstance(event, OrderEvent) or event.account != ACCOUNT:
                continue
            order, trade = event.order, event.trade
            cid = order.client_order_id
            if trade is not None:
                fills.append(
                    SimFill(cid, tags.get(cid, ""), order.side, str(order.type), trade.price, trade.qty,
                            trade.quote_qty, trade.commission, trade.commission_asset)
                )  # fmt: skip
            record = records.get(cid)
            if record is None or not moves_forward(record, order):
                continue  # stale, as the order gateway would find it (the reply told it already)
            update = self._advance(record, _report(order, [trade] if trade is not None else []), ts)
            if update is not None:
                updates.append(update)
        return updates

    # --- what the backtester needs -------------------------------------------------------

    def balances(self) -> Mapping[str, Decimal]:
        """Free amounts, as the runner's context shows them: one live read-only view, so a
        context need not be rebuilt because an operation moved the balances (a strategy reads
        them within its step, while no operation runs)."""
        return self._balances

    def total(self, asset: str) -> Decimal:
        free, locked = self._rows[asset]
        return free + locked

    def locked(self, asset: str) -> Decimal:
        return self._rows[asset][1]

    def trigger_levels(
        self, floor_int: Callable[[Decimal], int], ceil_int: Callable[[Decimal], int]
    ) -> tuple[int, int] | None:
        """(below, above) in the series' scaled integers: a price can fill or trigger an open
        order only if it is <= below or >= above. None when a market order waits for the next
        price (it must be handed over)."""
        if not self._levels_known:
            self._levels = self._trigger_levels(floor_int, ceil_int)
            self._levels_known = True
        return self._levels

    def _trigger_levels(
        self, floor_int: Callable[[Decimal], int], ceil_int: Callable[[Decimal], int]
    ) -> tuple[int, int] | None:
        below, above = NEVER, ALWAYS_ABOVE
        for o in self.engine.open_orders(ACCOUNT):
            if o.pending:
                continue  # a list's leg that starts when its working leg fills (a level of its own)
            if o.on_book:
                price = o.price
            elif o.type in STOP_TYPES and not o.triggered:
                if triggers_on_fall(o.type, o.side):
                    below = max(below, floor_int(o.stop_price))
                else:
                    above = min(above, ceil_int(o.stop_price))
                continue
            else:
                return None
            if o.side is BUY:
                below = max(below, floor_int(price))
            else:
                above = min(above, ceil_int(price))
        return below, above


def _request(
    cmd: PlaceOrder, symbol: str, qty: Decimal | None, price: Decimal | None, stop: Decimal | None
) -> OrderRequest:
    """The prepared command as the engine takes it (what the Binance adapter sends the venue)."""
    return OrderRequest(
        symbol=symbol,
        side=cmd.side,
        type=cmd.order_type,
        quantity=qty,
        quote_quantity=cmd.quote_quantity if qty is None else None,
        price=price,
        stop_price=stop,
        time_in_force=(cmd.time_in_force or GTC) if cmd.order_type in NEEDS_TIF else None,
        client_order_id=cmd.cid,
    )


class EngineReport(OrderReport, frozen=True, kw_only=True, gc=False):
    """An OrderReport the backtester builds from the engine's own Order: the same report, read
    by the same record rules, without the check of a venue's payload (OrderReport.__post_init__:
    types and amounts); the engine's orders and trades passed its filters and arithmetic."""

    def __post_init__(self) -> None:
        pass


def _report(order: Order, trades: list[Trade], *, reply: bool = False) -> OrderReport:
    """The engine's order as the Binance adapter reads the venue's reply (`reply`: its fills are
    all the order's trades, their commissions its whole fee) or an executionReport (one trade)."""
    last = trades[-1] if trades else None
    fee = ZERO if order.executed_qty == 0 else None
    if reply and trades:
        fee = sum((t.commission for t in trades), ZERO)
    return EngineReport(
        cid=order.client_order_id,
        symbol=order.symbol,
        status=order.status,
        venue_order_id=str(order.order_id),
        side=order.side,
        order_type=order.type,
        price=order.price if order.type in LIMIT_PRICED else None,
        stop_price=order.stop_price or None,
        orig_qty=order.quantity,
        orig_quote_qty=order.quote_quantity or None,
        cum_filled_qty=order.executed_qty,
        cum_quote_qty=order.cum_quote,
        last_fill_price=last.price if last else ZERO,
        last_fill_qty=last.qty if last else ZERO,
        trade_id=str(last.trade_id) if last else "",
        last_fee=last.commission if last else ZERO,
        fee=fee,
        fee_asset=last.commission_asset if last else "",
        venue_ts=order.update_time,
        reason=order.expire_reason or "",
    )
