"""Grid (docs/STRATEGIES.md §3) as a pure strategy.

`levels` prices from `lower` to `upper` (strategies/grid_levels.py) cut the range into
intervals; interval j runs from level j to level j+1 and trades a fixed base quantity,
`quote_per_level` ÷ price of level j. Every interval holds one order at a time: a buy at
level j, or a sell at level j+1 for the base that buy bought (a "lot", with what it cost).
A buy filled at level i therefore places a sell at level i+1, and a sell filled at level i
places a buy at level i−1; each sell closes a round trip whose profit (sell proceeds less
fees less the lot's cost) is added to `profit_total` and reported in a Notification.

Start (first candle whose close is at or above `lower`; below the range the grid waits and
says so, rather than buy a whole grid's base far under the prices it would sell at):
intervals below the level nearest the price get their buy; the ones
above need base to sell. With `initial_buy` (the default) the grid buys that base at market
(its quantities, plus `fee` so a fee taken in base still covers them) and places the sells
when the buy has filled, each lot costed at the buy's average price. With
`initial_buy = false` it only ever sells base it bought: the intervals above start empty and
each gets its buy once a candle closes above its lower level.

Partial fills: a level's counter-order is placed for what filled when the order finishes
(FILLED, or cancelled/expired after a partial fill), never piecemeal, so no order is sent
under the exchange's minimums; a sell that finishes partly filled books the round trip for
what it sold and puts the rest of its lot back on sale. Base the step size or a fee taken in
base leaves over ("spare", with its own cost) tops up later lots, up to what their buy
filled, so tiny grids do not bleed a step per trip. Order updates are matched by client
order id, so duplicates and updates of orders from a former grid change nothing.

`stop_loss` (below the range): when a candle's low reaches it, every order is cancelled and,
once the cancels are confirmed, the position is sold at market. `take_profit` (above the
range): when a candle's high reaches it, every order is cancelled and the base is kept.
Either ends the grid (the bot stops); a resume starts a fresh grid on the next candle once
no order of the old one is open any more (one being cancelled may still fill, and is booked
into the old grid's intervals); the spare base never exceeds the position at a start.

One order per interval: an interval's order leaves it only with the order's last update, so a
cancelled order that has not answered yet keeps its interval. A refused order leaves its
interval waiting for a candle (never re-placed in the same step); terms refused three times
in a row are given up until they change or a person resumes the bot (strategies/refused.py).
"""

from __future__ import annotations

from decimal import Decimal

import msgspec

from shared.messages import Candle, Level, OrderStatus, OrderUpdate, Side
from shared.money import ZERO
from shared.strategy import (
    EVERY_CANDLE,
    ORDERS_ONLY,
    BotOrder,
    Command,
    OrderChange,
    Step,
    Strategy,
    StrategyContext,
    Wake,
    decide,
    fill_notification,
    limit_order,
    limit_terms,
    market_order,
    notification,
    sellable,
    stop_commands,
)
from shared.strategy.decisions import price as px
from shared.strategy.decisions import qty as qty_
from shared.strategy.decisions import quote
from shared.strategy.state import Mode
from strategies.grid_levels import GridError, Spacing, interval_quantities, level_prices, starting_sides
from strategies.grid_state import GridEnd, GridPhase, GridState, Interval, IntervalSide
from strategies.refused import ForgetsRefusalsOnResume, given_up_note, unless_given_up

replace = msgspec.structs.replace


ALIASES: dict[str, str] = {
    "grids": "levels",
    "grid_levels": "levels",
    "mode": "spacing",
    "quote_amount": "quote_per_level",
    "amount_per_level": "quote_per_level",
    "sl": "stop_loss",
    "tp": "take_profit",
}


MAX_LEVELS = 1000  # more is a typo that would build a list of that many prices at start


class GridParams(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    lower: Decimal
    upper: Decimal
    levels: int = 10  # prices from lower to upper inclusive
    spacing: Spacing = Spacing.ARITHMETIC
    quote_per_level: Decimal = Decimal("100")  # quote each interval trades (at its buy level)
    initial_buy: bool = True  # buy the sell side's base at market when the grid starts
    stop_loss: Decimal | None = None  # below lower: cancel everything and sell the position
    take_profit: Decimal | None = None  # above upper: cancel everything
    fee: Decimal = Decimal("0.001")  # fee rate: sizes the opening buy (and the backtest's fees)

    def __post_init__(self) -> None:
        if not 0 < self.lower < self.upper:
            raise ValueError("need 0 < lower < upper")
        if not 2 <= self.levels <= MAX_LEVELS:
            raise ValueError(f"levels must be 2 to {MAX_LEVELS} (an order each; venues allow ~200 open)")
        if self.quote_per_level <= 0:
            raise ValueError("quote_per_level must be > 0")
        if self.stop_loss is not None and not 0 < self.stop_loss < self.lower:
            raise ValueError("stop_loss must be below lower")
        if self.take_profit is not None and not self.take_profit > self.upper:
            raise ValueError("take_profit must be above upper")
        if not 0 <= self.fee < 1:
            raise ValueError("fee must be a fraction between 0 and 1 (0.001 = 0.1 %)")


class GridStrategy(ForgetsRefusalsOnResume, Strategy[GridParams, GridState]):
    name = "grid"
    params_type = GridParams
    state_type = GridState
    param_aliases = ALIASES
    history_size = 1  # the last close: the market orders' minimum-notional check

    def wake(self, params: GridParams, state: GridState) -> Wake:
        """Once every interval has its order out, only the stop-loss / take-profit candles matter."""
        if not state.running or state.phase not in (GridPhase.NEW, GridPhase.ACTIVE):
            return ORDERS_ONLY
        if state.phase == GridPhase.NEW or any(not iv.cid for iv in state.intervals):
            return EVERY_CANDLE
        return Wake(every_candle=False, below=params.stop_loss, above=params.take_profit)

    # --- events --------------------------------------------------------------------------

    def on_candle(
        self, params: GridParams, state: GridState, candle: Candle, ctx: StrategyContext
    ) -> Step[GridState]:
        if state.phase == GridPhase.NEW:
            return self._start(params, state, candle, ctx)
        if state.phase != GridPhase.ACTIVE:
            return state, []
        if params.stop_loss is not None and candle.low <= params.stop_loss:
            return self._stop_loss(state, candle, params.stop_loss, ctx)
        if params.take_profit is not None and candle.high >= params.take_profit:
            return self._take_profit(state, candle, params.take_profit, ctx)
        idle = [
            j
            for j, iv in enumerate(state.intervals)
            if iv.side == IntervalSide.IDLE and state.prices[j] < candle.close
        ]
        if idle:
            intervals = list(state.intervals)
            for j in idle:
                intervals[j] = Interval(IntervalSide.BUY)
            state = replace(state, intervals=tuple(intervals))
        return self._ensure(state, ctx)

    def on_order_update(
        self,
        params: GridParams,
        state: GridState,
        change: OrderChange,
        update: OrderUpdate,
        ctx: StrategyContext,
    ) -> Step[GridState]:
        rec = change.after
        cmds: list[Command] = []
        if change.finished:
            if rec.cum_filled_qty > 0:
                cmds.append(fill_notification(ctx, rec))
            given_up = given_up_note(state, ctx, rec, "grid order")
            if given_up is not None:
                cmds.append(given_up)
            more: list[Command] = []
            if rec.cid == state.init_cid:
                state, more = self._funded(state, rec, ctx)
            elif rec.cid == state.exit_cid:
                state, more = self._exited(state, rec, ctx)
            else:
                j = next((j for j, iv in enumerate(state.intervals) if iv.cid == rec.cid), None)
                if j is not None:
                    handler = self._bought if rec.side == Side.BUY else self._sold
                    state, more = handler(state, j, rec, ctx)
            cmds.extend(more)
        if state.phase == GridPhase.STOPPING and not state.orders:
            state, more = self._exit(state, ctx)
            cmds.extend(more)
        state, more = self._ensure(state, ctx)
        return state, cmds + more

    def on_resume(self, params: GridParams, state: GridState, ctx: StrategyContext) -> Step[GridState]:
        """An ended grid starts afresh on a later candle (its intervals stay until then, so late
        answers of its cancelled orders are still booked); a running one puts back missing orders."""
        if state.phase == GridPhase.ENDED:
            return replace(state, phase=GridPhase.NEW, ended=GridEnd.NONE, warned=""), []
        return self._ensure(state, ctx)

    def on_close(self, params: GridParams, state: GridState, ctx: StrategyContext) -> Step[GridState]:
        """The generic close cancelled the orders and sold the position: this grid is over."""
        return replace(state, phase=GridPhase.ENDED, ended=GridEnd.CLOSED, init_cid=""), []

    # --- start and end -------------------------------------------------------------------

    def _start(
        self, params: GridParams, state: GridState, candle: Candle, ctx: StrategyContext
    ) -> Step[GridState]:
        if state.orders:
            return state, []  # an order of the last grid (or of a close) may still fill: not yet
        state = self._spare_within_position(state)
        price = candle.close
        outside = (params.stop_loss is not None and candle.low <= params.stop_loss) or (
            params.take_profit is not None and candle.high >= params.take_profit
        )
        if price < params.lower:
            why = f"no entry: price {px(ctx, price)} below the grid's range {self._range(params, ctx)}"
            return state, [decide(ctx, why, topic="below_range", price=price, lower=params.lower)]
        if outside:
            why = decide(
                ctx, f"no entry: price {px(ctx, price)} is at the stop-loss / take-profit", topic="outside"
            )
            if state.warned == "outside":
                return state, [why]
            note = notification(
                ctx,
                "error",
                f"outside-{candle.open_time}",
                f"{ctx.bot}: price {ctx.price(price)} is at the stop-loss / take-profit: waiting to start the grid",
                level=Level.WARNING,
            )
            return replace(state, warned="outside"), [note, why]
        try:
            prices = level_prices(params.lower, params.upper, params.levels, params.spacing, ctx.filters)
            qtys = interval_quantities(prices, params.quote_per_level, ctx.filters)
        except GridError as exc:
            note = notification(
                ctx,
                "error",
                f"invalid-{candle.open_time}",
                f"{ctx.bot}: grid refused: {exc}",
                level=Level.ERROR,
            )
            return replace(state, phase=GridPhase.ENDED, ended=GridEnd.INVALID, mode=Mode.STOPPED), [note]
        sides = starting_sides(prices, price)
        selling = IntervalSide.WAIT if params.initial_buy else IntervalSide.IDLE
        intervals = tuple(Interval(IntervalSide.BUY) if s is Side.BUY else Interval(selling) for s in sides)
        state = replace(
            state,
            phase=GridPhase.ACTIVE,
            prices=tuple(prices),
            qtys=tuple(qtys),
            intervals=intervals,
            warned="",
        )
        cmds: list[Command] = []
        need = sum((qtys[j] for j, iv in enumerate(intervals) if iv.side == IntervalSide.WAIT), ZERO)
        if need > 0:
            state, buy = market_order(
                state, ctx, Side.BUY, qty=need * (1 + params.fee), ref_price=price, tag="init"
            )
            if buy is None:
                state = self._unfunded(state)
            else:
                state = replace(state, init_cid=buy.cid)
                cmds.append(buy)
        buys = sum(1 for s in sides if s is Side.BUY)
        cmds.append(
            decide(
                ctx,
                f"grid started at {px(ctx, price)} {'above' if price > params.upper else 'in'} its range "
                f"{self._range(params, ctx)}: {buys} buys below, "
                f"{len(sides) - buys} sells above"
                + (f" (buying {qty_(ctx, need)} at market for them)" if need > 0 else ""),
                price=price, buys=buys, sells=len(sides) - buys,
            )
        )  # fmt: skip
        cmds.append(
            notification(
                ctx,
                "grid_started",
                f"start-{state.seq}",
                f"{ctx.bot}: grid of {len(prices)} levels {ctx.price(prices[0])}..{ctx.price(prices[-1])} started at "
                f"{ctx.price(price)}: {buys} buys below, {len(sides) - buys} sells above"
                + (f" (buying {ctx.qty(need)} {ctx.base_asset} at market for them)" if need > 0 else ""),
                data={"prices": [str(p) for p in prices], "quantities": [str(q) for q in qtys]},
            )
        )
        state, more = self._ensure(state, ctx)
        return state, cmds + more

    def _stop_loss(
        self, state: GridState, candle: Candle, stop_loss: Decimal, ctx: StrategyContext
    ) -> Step[GridState]:
        """Cancel everything; the position is sold once the cancels are confirmed (_exit)."""
        state, cancels = stop_commands(state, ctx)
        state = replace(state, phase=GridPhase.STOPPING, ended=GridEnd.STOP_LOSS)
        note = notification(
            ctx,
            "grid_stop_loss",
            f"sl-{candle.open_time}",
            f"{ctx.bot}: stop-loss: low {ctx.price(candle.low)}; cancelling the grid and selling "
            f"{ctx.qty(state.position.base)} {ctx.base_asset}",
            level=Level.WARNING,
        )
        said = decide(ctx, f"stop-loss: low {px(ctx, candle.low)} reached {px(ctx, stop_loss)}: cancelling the "
                      f"grid and selling {qty_(ctx, state.position.base)}", low=candle.low)  # fmt: skip
        cmds: list[Command] = [*cancels, note, said]
        if not state.orders:
            state, more = self._exit(state, ctx)
            cmds.extend(more)
        return state, cmds

    def _exit(self, state: GridState, ctx: StrategyContext) -> Step[GridState]:
        state, sell = market_order(state, ctx, Side.SELL, qty=state.position.base, tag="exit", force=True)
        state = replace(state, phase=GridPhase.ENDED)
        if sell is None:
            note = notification(
                ctx, "info", "exit-dust", f"{ctx.bot}: nothing left to sell above the exchange minimum"
            )
            return state, [note]
        return replace(state, exit_cid=sell.cid, spare=ZERO, spare_cost=ZERO), [sell]  # the spare too

    def _exited(self, state: GridState, rec: BotOrder, ctx: StrategyContext) -> Step[GridState]:
        note = notification(
            ctx,
            "grid_ended",
            rec.cid,
            f"{ctx.bot}: stop-loss sale {rec.status}: {ctx.qty(rec.cum_filled_qty)} {ctx.base_asset} at "
            f"{ctx.price(rec.avg_fill_price or ZERO)}; {state.round_trips} round trips made "
            f"{ctx.quote(state.profit_total)} {ctx.quote_asset}",
            data={"round_trips": state.round_trips, "profit_total": str(state.profit_total)},
        )
        return replace(state, exit_cid=""), [note]

    def _take_profit(
        self, state: GridState, candle: Candle, take_profit: Decimal, ctx: StrategyContext
    ) -> Step[GridState]:
        state, cancels = stop_commands(state, ctx)
        state = replace(state, phase=GridPhase.ENDED, ended=GridEnd.TAKE_PROFIT)
        note = notification(
            ctx,
            "grid_ended",
            f"tp-{candle.open_time}",
            f"{ctx.bot}: take-profit: high {ctx.price(candle.high)}; grid cancelled, {state.round_trips} round "
            f"trips made {ctx.quote(state.profit_total)} {ctx.quote_asset}; "
            f"{ctx.qty(state.position.base)} {ctx.base_asset} kept",
            data={"round_trips": state.round_trips, "profit_total": str(state.profit_total)},
        )
        said = decide(ctx, f"take-profit: high {px(ctx, candle.high)} reached {px(ctx, take_profit)}: grid "
                      f"cancelled, {qty_(ctx, state.position.base)} kept", high=candle.high)  # fmt: skip
        return state, [*cancels, note, said]

    @staticmethod
    def _range(params: GridParams, ctx: StrategyContext) -> str:
        return f"{px(ctx, params.lower)}–{px(ctx, params.upper)}"

    # --- fills ---------------------------------------------------------------------------

    def _funded(self, state: GridState, rec: BotOrder, ctx: StrategyContext) -> Step[GridState]:
        """The opening buy finished: hand its base out to the waiting sells, lowest level first."""
        state = replace(state, init_cid="")
        base, paid = self._bought_amounts(rec, ctx)
        if base <= 0:
            note = notification(
                ctx,
                "error",
                f"init-{rec.cid}",
                f"{ctx.bot}: opening buy {rec.status}: the intervals above the price start empty",
                level=Level.WARNING,
            )
            return self._unfunded(state), [note]
        left, left_cost = base + state.spare, paid + state.spare_cost
        unit = left_cost / left
        intervals = list(state.intervals)
        for j, iv in enumerate(intervals):
            if iv.side != IntervalSide.WAIT:
                continue
            lot = min(state.qtys[j], ctx.filters.round_qty(left))
            if limit_terms(ctx.filters, Side.SELL, lot, state.prices[j + 1]) is None:
                intervals[j] = Interval(IntervalSide.IDLE)
                continue
            intervals[j] = Interval(IntervalSide.SELL, qty=lot, cost=lot * unit)
            left, left_cost = left - lot, left_cost - lot * unit
        return replace(state, intervals=tuple(intervals), spare=left, spare_cost=left_cost), []

    @staticmethod
    def _spare_within_position(state: GridState) -> GridState:
        """At a start no lot exists: the spare is at most what the position holds (a close or a
        stop-loss sale may have sold it)."""
        base = max(state.position.base, ZERO)
        if state.spare <= base:
            return state
        cost = state.spare_cost * base / state.spare if state.spare > 0 else ZERO
        return replace(state, spare=base, spare_cost=cost)

    @staticmethod
    def _unfunded(state: GridState) -> GridState:
        """No base for the sell side: those intervals wait, empty, for the price to rise above them."""
        intervals = tuple(
            Interval(IntervalSide.IDLE) if iv.side == IntervalSide.WAIT else iv for iv in state.intervals
        )
        return replace(state, intervals=intervals, init_cid="")

    def _bought(self, state: GridState, j: int, rec: BotOrder, ctx: StrategyContext) -> Step[GridState]:
        """Buy at level j finished: its lot goes on sale at level j+1."""
        base, paid = self._bought_amounts(rec, ctx)
        cmds: list[Command] = []
        if rec.cum_filled_qty <= 0:
            if rec.status == OrderStatus.REJECTED:
                new, cmds = Interval(IntervalSide.IDLE), [self._rejected_note(rec, ctx)]
            else:
                new = Interval(IntervalSide.BUY)  # cancelled untouched: placed again when running
            return self._set(state, j, new), cmds
        state, lot = self._lot(state, base, paid, rec.cum_filled_qty, state.prices[j + 1], ctx)
        if lot is not None:
            cmds.append(
                decide(
                    ctx,
                    f"grid: buy level {j} at {px(ctx, state.prices[j])} filled, sell placed at "
                    f"{px(ctx, state.prices[j + 1])}",
                    grid_level=j,
                    qty=lot.qty,
                )  # fmt: skip
            )
        return self._set(
            state, j, lot or Interval(IntervalSide.BUY)
        ), cmds  # a sliver under the minimums: buy again

    def _lot(
        self,
        state: GridState,
        base: Decimal,
        paid: Decimal,
        cap: Decimal,
        price: Decimal,
        ctx: StrategyContext,
    ) -> tuple[GridState, Interval | None]:
        """The lot a buy of `base` (net, for `paid`) puts on sale: topped up from the spare base up
        to `cap` (what the buy filled), so a fee taken in base or the step size leaves no dust
        behind for good. The spare keeps its own cost, so every lot's cost stays what it paid."""
        lot = min(cap, ctx.filters.round_qty(base + state.spare))
        if limit_terms(ctx.filters, Side.SELL, lot, price) is None:
            return self._to_spare(state, base, paid), None
        if lot >= base:
            take = lot - base
            taken = state.spare_cost * take / state.spare if take > 0 else ZERO
            state = replace(state, spare=state.spare - take, spare_cost=state.spare_cost - taken)
            return state, Interval(IntervalSide.SELL, qty=lot, cost=paid + taken)
        cost = paid * lot / base
        return self._to_spare(state, base - lot, paid - cost), Interval(IntervalSide.SELL, qty=lot, cost=cost)

    @staticmethod
    def _to_spare(state: GridState, base: Decimal, cost: Decimal) -> GridState:
        return replace(state, spare=state.spare + base, spare_cost=state.spare_cost + cost)

    def _sold(self, state: GridState, j: int, rec: BotOrder, ctx: StrategyContext) -> Step[GridState]:
        """Sell at level j+1 finished: the round trip is booked and interval j buys again at level j."""
        iv = state.intervals[j]
        if rec.cum_filled_qty <= 0:
            if rec.status == OrderStatus.REJECTED:
                state = self._to_spare(state, iv.qty, iv.cost)
                return self._set(state, j, Interval(IntervalSide.IDLE)), [self._rejected_note(rec, ctx)]
            return self._set(state, j, replace(iv, cid="")), []
        base_fee = rec.fee if rec.fee_asset == ctx.base_asset else ZERO
        quote_fee = rec.fee if rec.fee_asset in (ctx.quote_asset, "") else ZERO
        out = rec.cum_filled_qty + base_fee
        proceeds = rec.cum_quote_qty - quote_fee
        cost = iv.cost if out >= iv.qty else iv.cost * out / iv.qty
        profit = proceeds - cost
        state = replace(state, round_trips=state.round_trips + 1, profit_total=state.profit_total + profit)
        note = notification(
            ctx,
            "round_trip",
            rec.cid,
            f"{ctx.bot}: round trip {state.round_trips}: {ctx.qty(rec.cum_filled_qty)} {ctx.base_asset} bought "
            f"under {ctx.price(state.prices[j])}, sold at {ctx.price(state.prices[j + 1])}: profit "
            f"{ctx.quote(profit)} {ctx.quote_asset} (total {ctx.quote(state.profit_total)})",
            data={
                "interval": j,
                "buy_level": str(state.prices[j]),
                "sell_level": str(state.prices[j + 1]),
                "qty": str(rec.cum_filled_qty),
                "cost": str(cost),
                "proceeds": str(proceeds),
                "profit": str(profit),
            },
        )
        left = iv.qty - out
        if left > 0 and limit_terms(ctx.filters, Side.SELL, left, state.prices[j + 1]) is not None:
            new = Interval(IntervalSide.SELL, qty=left, cost=iv.cost - cost)
        else:
            new = Interval(IntervalSide.BUY)
            if left > 0:
                state = self._to_spare(state, left, iv.cost - cost)
        then = (
            f"buy placed at {px(ctx, state.prices[j])}"
            if new.side == IntervalSide.BUY
            else "the rest stays on sale"
        )
        said = decide(
            ctx,
            f"grid: sell level {j + 1} at {px(ctx, state.prices[j + 1])} filled (round trip {state.round_trips}, "
            f"profit {quote(ctx, profit)}), {then}",
            grid_level=j + 1, profit=profit,
        )  # fmt: skip
        return self._set(state, j, new), [note, said]

    @staticmethod
    def _bought_amounts(rec: BotOrder, ctx: StrategyContext) -> tuple[Decimal, Decimal]:
        """Base a buy brought in (net of a base fee) and the quote it cost (a quote fee included)."""
        base_fee = rec.fee if rec.fee_asset == ctx.base_asset else ZERO
        quote_fee = rec.fee if rec.fee_asset in (ctx.quote_asset, "") else ZERO
        return rec.cum_filled_qty - base_fee, rec.cum_quote_qty + quote_fee

    # --- keeping the orders in line with the intervals -----------------------------------

    def _ensure(self, state: GridState, ctx: StrategyContext) -> Step[GridState]:
        """Place the order of every interval that has a side but no order out."""
        if not state.running or state.phase != GridPhase.ACTIVE:
            return state, []
        intervals = list(state.intervals)
        cmds: list[Command] = []
        for j, iv in enumerate(intervals):
            if iv.cid or iv.side not in (IntervalSide.BUY, IntervalSide.SELL):
                continue
            if iv.side == IntervalSide.BUY:
                placed = limit_order(state, ctx, Side.BUY, state.qtys[j], state.prices[j], tag=f"b{j}")
            else:
                iv = intervals[j] = self._fit(state, iv, ctx)
                placed = limit_order(state, ctx, Side.SELL, iv.qty, state.prices[j + 1], tag=f"s{j + 1}")
            state, place = unless_given_up(state, placed)
            if place is not None:
                intervals[j] = replace(iv, cid=place.cid)
                cmds.append(place)
        if not cmds:
            return state, []
        return replace(state, intervals=tuple(intervals)), cmds

    @staticmethod
    def _fit(state: GridState, iv: Interval, ctx: StrategyContext) -> Interval:
        """A lot no bigger than the base left beside the sells out: after a power cut the books
        can hold a fee's dust more than the venue does (an adopted order booked as a whole),
        and a lot the base cannot cover would be refused for good. The lot shrinks to the step
        below; the dust it loses was never there, so its cost goes with it."""
        room = sellable(state)
        if room is None or iv.qty <= room:
            return iv
        qty = ctx.filters.round_qty(max(room, ZERO))
        return replace(iv, qty=qty, cost=iv.cost * qty / iv.qty) if qty > 0 else iv

    @staticmethod
    def _set(state: GridState, j: int, iv: Interval) -> GridState:
        intervals = list(state.intervals)
        intervals[j] = iv
        return replace(state, intervals=tuple(intervals))

    @staticmethod
    def _rejected_note(rec: BotOrder, ctx: StrategyContext) -> Command:
        return notification(
            ctx,
            "error",
            f"rejected-{rec.cid}",
            f"{ctx.bot}: grid order {rec.cid} ({rec.tag}) rejected; that interval waits for the price "
            "to be above its buy level",
            level=Level.WARNING,
        )


STRATEGY = GridStrategy()
