"""The in-process venue of the backtester: resting orders, balances, and the fill model.

The fill model follows the paper venue's path through a candle as four ticks: open, low,
high, close — or open, high, low, close when close < open. At each tick, in placement order:
- a market order fills at the tick price (so an order placed after a candle closes fills at
  the next candle's open, the "next price point");
- a limit buy fills at its limit when the tick is at or below it (a sell: at or above);
- a STOP_LOSS_LIMIT sell triggers when the tick is at or below its stop (a buy: at or above)
  and from then on is a limit order at its price, which may fill on the same tick;
  TAKE_PROFIT_LIMIT triggers the other way round;
- an order placed while a tick is being handled is matched from the next tick on.
Orders fill whole. Fees are `fee_rate` of the traded quote, charged in quote (fee_asset
"quote") or, for buys, in base as Binance does without BNB (fee_asset "base"). Orders that
break the symbol's filters or exceed the free balance are REJECTED with a reason.
All prices are compared as exact scaled integers, so no float ever decides a fill.

Two options make it the paper venue's twin (tests/test_parity_live.py proves it, with the
venue's SIM_MARKET_FILL=next_step): `spread_ticks` — a market buy pays the best ask, that
many ticks above the tick price (the venue's book: bid = last price, ask one tick above;
sells get the bid, the tick price) — and `fee_quantum` — fees rounded up to it, as Binance
and the venue round commissions up to 1e-8. Both default to the plain model (no spread,
exact fees).

Where this model and the venue still differ: an order that is already marketable when it
is placed (a limit buy at or above the price of the moment) fills here at its limit on the
next tick that reaches it, while the venue takes it at once against its book, as a real
exchange would; market orders walk the venue's book level by level (0.5 BTC on the first
BTCUSDT level), here they fill whole at one price.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal

from shared.filters import FilterError, SymbolFilters
from shared.messages import OrderStatus, OrderType, OrderUpdate, PlaceOrder, Side
from shared.money import ZERO, round_up

NEVER = -1  # a trigger level no positive price reaches from above/below


@dataclass(slots=True)
class SimOrder:
    cid: str
    side: Side
    order_type: OrderType
    qty: Decimal | None
    quote_qty: Decimal | None
    price: Decimal | None
    stop: Decimal | None
    eligible: int  # first tick number at which it may match
    limit_int: int  # limit price as a scaled int: floor for a buy, ceil for a sell
    stop_int: int  # stop as a scaled int (rounded so the test is exact)
    triggered: bool
    locked: Decimal  # quote (buy) or base (sell) held for it
    tag: str = ""


@dataclass(slots=True)
class SimFill:
    order: SimOrder
    price: Decimal
    qty: Decimal
    quote: Decimal
    fee: Decimal
    fee_asset: str


class SimVenue:
    """Orders and balances of one bot on one symbol."""

    def __init__(
        self,
        filters: SymbolFilters,
        *,
        quote: Decimal,
        base: Decimal = ZERO,
        fee_rate: Decimal = Decimal("0.001"),
        fee_asset: str = "quote",
        floor_int: Callable[[Decimal], int],
        ceil_int: Callable[[Decimal], int],
        spread_ticks: int = 0,
        fee_quantum: Decimal | None = None,
    ) -> None:
        """floor_int / ceil_int turn a price into the series' scaled integers (CandleSeries)."""
        if fee_asset not in ("quote", "base"):
            raise ValueError("fee_asset must be 'quote' or 'base'")
        if spread_ticks < 0 or (fee_quantum is not None and fee_quantum <= 0):
            raise ValueError("spread_ticks must be >= 0 and fee_quantum > 0")
        self.spread = filters.tick_size * spread_ticks  # a market buy pays tick price + spread
        self.fee_quantum = fee_quantum
        self.filters = filters
        self.free = {filters.base_asset: base, filters.quote_asset: quote}
        self.locked = {filters.base_asset: ZERO, filters.quote_asset: ZERO}
        self.fee_rate = fee_rate
        self.fee_in_base = fee_asset == "base"
        self.orders: dict[str, SimOrder] = {}
        self._floor = floor_int
        self._ceil = ceil_int
        self.placed = 0
        self.rejected = 0

    # --- placing and cancelling ----------------------------------------------------------

    def place(self, cmd: PlaceOrder, tick: int, last_price: Decimal | None, tag: str = "") -> str:
        """Accept cmd (matched from tick + 1) and return "", or return the rejection reason."""
        self.placed += 1
        reason = self._check(cmd, last_price)
        if reason:
            self.rejected += 1
            return reason
        f = self.filters
        buy = cmd.side == Side.BUY
        price, stop = cmd.price, cmd.stop_price
        limit_int = NEVER
        if price is not None:
            limit_int = self._floor(price) if buy else self._ceil(price)
        stop_int = NEVER
        if stop is not None:
            falls = (cmd.order_type == OrderType.STOP_LOSS_LIMIT) != buy  # sell stop-loss / buy take-profit
            stop_int = self._floor(stop) if falls else self._ceil(stop)
        if buy:
            ref = price or ((last_price + self.spread) if last_price is not None else ZERO)
            need = cmd.quote_quantity if cmd.quantity is None else cmd.quantity * ref
            need = need + (ZERO if self.fee_in_base else need * self.fee_rate)
            asset = f.quote_asset
        else:
            need, asset = cmd.quantity or ZERO, f.base_asset
        if need > self.free[asset]:
            self.rejected += 1
            return f"insufficient balance: {need} {asset} needed, {self.free[asset]} free"
        self.free[asset] -= need
        self.locked[asset] += need
        self.orders[cmd.cid] = SimOrder(
            cmd.cid,
            cmd.side,
            cmd.order_type,
            cmd.quantity,
            cmd.quote_quantity,
            price,
            stop,
            tick + 1,
            limit_int,
            stop_int,
            stop is None,
            need,
            tag,
        )
        return ""

    def _check(self, cmd: PlaceOrder, last_price: Decimal | None) -> str:
        f = self.filters
        if cmd.symbol != f.symbol:
            return f"unknown symbol {cmd.symbol}"
        if cmd.cid in self.orders:
            return f"duplicate client order id {cmd.cid}"
        if cmd.order_type == OrderType.MARKET:
            if cmd.quantity is None:
                if cmd.side != Side.BUY or cmd.quote_quantity is None or cmd.quote_quantity <= 0:
                    return "market order needs a quantity (or a quote quantity for a buy)"
                if cmd.quote_quantity < f.min_notional:
                    return f"NOTIONAL: {cmd.quote_quantity} below minimum {f.min_notional}"
                return ""
            return self._check_qty(cmd.quantity, None, last_price)
        if cmd.price is None or cmd.quantity is None:
            return f"{cmd.order_type} order needs a price and a quantity"
        if (
            cmd.order_type in (OrderType.STOP_LOSS_LIMIT, OrderType.TAKE_PROFIT_LIMIT)
            and cmd.stop_price is None
        ):
            return f"{cmd.order_type} order needs a stop price"
        if f.round_price(cmd.price, Side.BUY) != cmd.price:
            return f"PRICE_FILTER: {cmd.price} is not a multiple of the tick size {f.tick_size}"
        if cmd.order_type == OrderType.LIMIT_MAKER and last_price is not None:
            crosses = cmd.price >= last_price if cmd.side == Side.BUY else cmd.price <= last_price
            if crosses:
                return "LIMIT_MAKER order would immediately match"
        return self._check_qty(cmd.quantity, cmd.price, None)

    def _check_qty(self, qty: Decimal, price: Decimal | None, ref: Decimal | None) -> str:
        f = self.filters
        if f.round_qty(qty) != qty:
            return f"LOT_SIZE: {qty} is not a multiple of the step size {f.step_size}"
        try:
            f.check(qty, price) if price is not None else f.check(qty, ref)
        except FilterError as exc:
            return str(exc)
        return ""

    def cancel(self, cid: str) -> SimOrder | None:
        """Remove an open order and release what it held; None if it is not open (any more)."""
        order = self.orders.pop(cid, None)
        if order is not None:
            self._release(order)
        return order

    def _release(self, order: SimOrder) -> None:
        asset = self.filters.quote_asset if order.side == Side.BUY else self.filters.base_asset
        self.locked[asset] -= order.locked
        self.free[asset] += order.locked
        order.locked = ZERO

    # --- matching ------------------------------------------------------------------------

    def match(self, tick: int, price_int: int, price: Decimal) -> list[SimFill]:
        """Fill every eligible order the tick reaches (placement order); returns the fills."""
        fills: list[SimFill] = []
        for order in list(self.orders.values()):
            if order.eligible > tick:
                continue
            fill_price = self._reaches(order, price_int, price)
            if fill_price is None:
                continue
            fill = self._fill(order, fill_price)
            if fill is not None:
                fills.append(fill)
        return fills

    def _reaches(self, order: SimOrder, price_int: int, price: Decimal) -> Decimal | None:
        buy = order.side == Side.BUY
        if order.order_type == OrderType.MARKET:
            return price + self.spread if buy else price
        if not order.triggered:
            falls = (order.order_type == OrderType.STOP_LOSS_LIMIT) != buy
            hit = price_int <= order.stop_int if falls else price_int >= order.stop_int
            if not hit:
                return None
            order.triggered = True
        if buy:
            return order.price if price_int <= order.limit_int else None
        return order.price if price_int >= order.limit_int else None

    def _fill(self, order: SimOrder, price: Decimal) -> SimFill | None:
        f = self.filters
        if order.qty is None:  # market buy by quote: as much base as the quote buys, rounded down
            assert order.quote_qty is not None
            qty = f.round_qty(order.quote_qty / price)
            if qty <= 0:
                self.cancel(order.cid)
                return None
        else:
            qty = order.qty
        quote = qty * price
        fee = self._fee(quote)
        del self.orders[order.cid]
        self._release(order)
        if order.side == Side.BUY:
            fee_asset = f.base_asset if self.fee_in_base else f.quote_asset
            fee_amt = self._fee(qty) if self.fee_in_base else fee
            self.free[f.quote_asset] -= quote + (ZERO if self.fee_in_base else fee)
            self.free[f.base_asset] += qty - (fee_amt if self.fee_in_base else ZERO)
        else:
            fee_asset, fee_amt = f.quote_asset, fee
            self.free[f.base_asset] -= qty
            self.free[f.quote_asset] += quote - fee
        return SimFill(order, price, qty, quote, fee_amt, fee_asset)

    def _fee(self, amount: Decimal) -> Decimal:
        fee = amount * self.fee_rate
        return fee if self.fee_quantum is None else round_up(fee, self.fee_quantum)

    # --- what the engine needs -----------------------------------------------------------

    def balances(self) -> dict[str, Decimal]:
        return dict(self.free)

    def total(self, asset: str) -> Decimal:
        return self.free[asset] + self.locked[asset]

    def has_market(self) -> bool:
        return any(o.order_type == OrderType.MARKET for o in self.orders.values())

    def trigger_levels(self) -> tuple[int, int]:
        """(below, above): a candle can fill or trigger an order only if low <= below or
        high >= above (scaled ints; NEVER / a huge value when no order looks that way)."""
        below, above = NEVER, _BIG
        for o in self.orders.values():
            buy = o.side == Side.BUY
            if not o.triggered:
                falls = (o.order_type == OrderType.STOP_LOSS_LIMIT) != buy
                if falls:
                    below = max(below, o.stop_int)
                else:
                    above = min(above, o.stop_int)
            elif buy:
                below = max(below, o.limit_int)
            else:
                above = min(above, o.limit_int)
        return below, above


_BIG = 2**62


def order_update(
    fill_or_order: SimFill | SimOrder,
    status: OrderStatus,
    *,
    bot: str,
    venue: str,
    symbol: str,
    ts: int,
    event_id: str,
    reason: str = "",
) -> OrderUpdate:
    """The OrderUpdate the order gateway would emit (cumulative fields; orders fill whole here)."""
    if isinstance(fill_or_order, SimFill):
        fill = fill_or_order
        o = fill.order
        return OrderUpdate(
            cid=o.cid,
            bot=bot,
            venue=venue,
            symbol=symbol,
            status=status,
            side=o.side,
            order_type=o.order_type,
            price=o.price,
            stop_price=o.stop,
            orig_qty=o.qty if o.qty is not None else fill.qty,
            cum_filled_qty=fill.qty,
            cum_quote_qty=fill.quote,
            last_fill_price=fill.price,
            last_fill_qty=fill.qty,
            fee=fill.fee,
            fee_asset=fill.fee_asset,
            venue_ts=ts,
            ts=ts,
            event_id=event_id,
        )
    o = fill_or_order
    return OrderUpdate(
        cid=o.cid,
        bot=bot,
        venue=venue,
        symbol=symbol,
        status=status,
        side=o.side,
        order_type=o.order_type,
        price=o.price,
        stop_price=o.stop,
        orig_qty=o.qty or ZERO,
        reason=reason,
        venue_ts=ts,
        ts=ts,
        event_id=event_id,
    )
