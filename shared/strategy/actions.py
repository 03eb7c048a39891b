"""Pure helpers every strategy uses on its StrategyState: client order ids, placing and
cancelling orders (recorded in the state), applying order updates (forward-only, position and
fees kept), timers, notifications, and the generic stop / close the runner relies on.

Each returns the new state and the command(s) to emit; nothing here has side effects.
While the bot is not running (paused, stopped, or waiting for its sync answer after a
restart), the place_* helpers send nothing (return None) unless force=True, so a strategy
written without thinking of pause still respects it. They also send nothing for a sell that,
beside the sells already out, would sell more than the position (a bot never sells what it
does not hold), nor
for terms the venue keeps refusing (refusals.py); and they reuse the cid of a held adopted
order with the same terms (adoption.py) instead of sending a second order.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import msgspec

from shared.ids import ClientOrderId, format_cid
from shared.messages import (
    BUY,
    GTC,
    LIMIT,
    MARKET,
    REJECTED,
    SELL,
    TERMINAL_STATUSES,
    CancelOrder,
    CancelOrderList,
    Level,
    Notification,
    OrderType,
    OrderUpdate,
    PlaceOrder,
    Side,
    TimeInForce,
)
from shared.money import ZERO
from shared.order_lifecycle import halted_refusal
from shared.order_terms import OrderTerms
from shared.strategy.adoption import book_held, claim
from shared.strategy.commands import CancelTimer, Command, SetTimer
from shared.strategy.context import StrategyContext
from shared.strategy.orders import BotOrder, FillDelta, advance
from shared.strategy.position import apply_fill
from shared.strategy.refusals import held_back, note_outcome
from shared.strategy.sizing import limit_terms, market_qty, market_quote
from shared.strategy.state import RECENT_CIDS, Mode, S

replace = msgspec.structs.replace

# A held order is claimed by a request whose base quantity is this many steps off its own.
CLAIM_STEPS = 2


class OrderChange(msgspec.Struct, frozen=True):
    """An order update that was applied: the record before and after, and the fill it added."""

    before: BotOrder
    after: BotOrder
    fill: FillDelta | None

    @property
    def cid(self) -> str:
        return self.after.cid

    @property
    def finished(self) -> bool:
        return self.after.terminal


# --- ids and orders ----------------------------------------------------------------------


def next_cid(state: S, ctx: StrategyContext) -> tuple[S, ClientOrderId]:
    """The next client order id from the counter kept in state (first one is seq 1)."""
    seq, cid = _following(state, ctx)
    return replace(state, seq=seq), cid


def _following(state: S, ctx: StrategyContext) -> tuple[int, ClientOrderId]:
    """The next sequence and its cid, for a caller that stores the sequence itself."""
    seq = state.seq + 1
    return seq, format_cid(ctx.bot, seq)


def place_order(
    state: S,
    ctx: StrategyContext,
    *,
    side: Side,
    order_type: OrderType,
    quantity: Decimal | None = None,
    quote_quantity: Decimal | None = None,
    price: Decimal | None = None,
    stop_price: Decimal | None = None,
    time_in_force: TimeInForce | None = None,
    tag: str = "",
    force: bool = False,
) -> tuple[S, PlaceOrder | None]:
    """Record and return a PlaceOrder exactly as given (no rounding: see limit_order & co)."""
    if not state.running and not force:
        return state, None
    held: BotOrder | None = None
    terms: OrderTerms | None = None
    seq: int | None = None
    if state.adopted or state.refusals:  # the terms matter only to these two (most orders skip them)
        terms = OrderTerms(ctx.symbol, side, order_type, quantity, quote_quantity, price, stop_price)
        # the same order again (a held one, adoption.py): its own terms go out, no new order
        state, held = claim(state, terms, slack=CLAIM_STEPS * ctx.filters.step_size)
    if held is not None:
        # a held order has this bot's prefix (adoption.py holds no other)
        cid, quantity = ClientOrderId(held.cid), held.quantity if quantity is not None else None
    else:
        if side == SELL and quantity is not None and _oversells(state, quantity):
            return state, None
        if terms is not None:
            state, skip = held_back(state, terms)
            if skip:
                return state, None
        seq, cid = _following(state, ctx)  # the sequence kept by record_order's one replace
    return record_order(
        state, ctx, cid, side=side, order_type=order_type, quantity=quantity, quote_quantity=quote_quantity,
        price=price, stop_price=stop_price, time_in_force=time_in_force, tag=tag, seq=seq,
    )  # fmt: skip


def record_order(
    state: S,
    ctx: StrategyContext,
    cid: ClientOrderId,
    *,
    side: Side,
    order_type: OrderType,
    quantity: Decimal | None = None,
    quote_quantity: Decimal | None = None,
    price: Decimal | None = None,
    stop_price: Decimal | None = None,
    time_in_force: TimeInForce | None = None,
    tag: str = "",
    list_cid: str = "",
    pending: bool = False,
    seq: int | None = None,
) -> tuple[S, PlaceOrder]:
    """Keep the order under cid in state.orders (checks done by the caller) and its PlaceOrder;
    seq, when given, is the state's new order sequence (cid's, taken in the same replace)."""
    record = BotOrder(
        cid=cid,
        side=side,
        order_type=order_type,
        tag=tag,
        quantity=quantity,
        quote_quantity=quote_quantity,
        price=price,
        stop_price=stop_price,
        created=ctx.now,
        list_cid=list_cid,
        pending=pending,
    )
    orders = dict(state.orders)
    orders[cid] = record
    cmd = PlaceOrder(
        cid=cid,
        bot=ctx.bot,
        venue=ctx.venue,
        symbol=ctx.symbol,
        side=side,
        order_type=order_type,
        quantity=quantity,
        quote_quantity=quote_quantity,
        price=price,
        stop_price=stop_price,
        time_in_force=time_in_force,
        ts=ctx.now,
    )
    return (replace(state, orders=orders) if seq is None else replace(state, orders=orders, seq=seq)), cmd


def limit_order(
    state: S,
    ctx: StrategyContext,
    side: Side,
    qty: Decimal,
    price: Decimal,
    *,
    tag: str = "",
    force: bool = False,
) -> tuple[S, PlaceOrder | None]:
    """A GTC limit order rounded to the filters; None (nothing sent) if it breaks one."""
    terms = limit_terms(ctx.filters, side, qty, price)
    if terms is None:
        return state, None
    return place_order(
        state,
        ctx,
        side=side,
        order_type=LIMIT,
        quantity=terms[0],
        price=terms[1],
        time_in_force=GTC,
        tag=tag,
        force=force,
    )


def market_order(
    state: S,
    ctx: StrategyContext,
    side: Side,
    *,
    qty: Decimal | None = None,
    quote: Decimal | None = None,
    ref_price: Decimal | None = None,
    tag: str = "",
    force: bool = False,
) -> tuple[S, PlaceOrder | None]:
    """A market order by base qty (rounded down, checked at ref_price or the last close) or, for a
    buy, by quote amount; None (nothing sent) if it breaks a filter."""
    if (qty is None) == (quote is None):
        raise ValueError("market_order takes exactly one of qty and quote")
    if quote is not None:
        if side != BUY:
            raise ValueError("a market order by quote amount must be a buy")
        amount = market_quote(ctx.filters, quote)
        if amount is None:
            return state, None
        return place_order(
            state, ctx, side=side, order_type=MARKET, quote_quantity=amount, tag=tag, force=force
        )
    assert qty is not None
    rounded = market_qty(ctx.filters, qty, ref_price if ref_price is not None else ctx.last_price)
    if rounded is None:
        return state, None
    return place_order(state, ctx, side=side, order_type=MARKET, quantity=rounded, tag=tag, force=force)


def stop_limit_order(
    state: S,
    ctx: StrategyContext,
    side: Side,
    qty: Decimal,
    stop: Decimal,
    limit: Decimal,
    *,
    tag: str = "",
    force: bool = False,
) -> tuple[S, PlaceOrder | None]:
    """A STOP_LOSS_LIMIT order: stop and limit rounded like the side's prices (a sell's stop and
    limit up, a buy's down); None if it breaks a filter."""
    terms = limit_terms(ctx.filters, side, qty, limit)
    if terms is None:
        return state, None
    return place_order(
        state,
        ctx,
        side=side,
        order_type=OrderType.STOP_LOSS_LIMIT,
        quantity=terms[0],
        price=terms[1],
        stop_price=ctx.filters.round_price(stop, side),
        time_in_force=GTC,
        tag=tag,
        force=force,
    )


def sellable(state: S) -> Decimal | None:
    """Base a new sell may take beside the sells already out, or None when nothing limits it
    (a bot's first sell may sell base it holds outside its position: a balance it protects).
    Held adopted orders count as what they are at the venue: open sells are out, and their
    fills have moved the base already, though they are not booked yet. The open legs of one
    order list count once (the largest): only one leg of an OCO can sell. The pending sells of
    an OTO / OTOCO sell what its working buy brings: they count only beyond what that buy has
    still to fill (what it filled is in the position already)."""
    adopted = state.adopted  # mostly none: their sums are then ZERO, as sum() of nothing gives
    held = adopted.values()
    orders = (*state.orders.values(), *held) if adopted else state.orders.values()
    out = [r for r in orders if r.side == SELL and not r.terminal]
    sold_held = sum((r.cum_filled_qty for r in held if r.side == SELL), ZERO) if adopted else ZERO
    if not out and not sold_held:
        return None
    bought_held = sum((r.cum_filled_qty for r in held if r.side == BUY), ZERO) if adopted else ZERO
    per_list: dict[str, Decimal] = {}
    waiting: dict[str, Decimal] = {}  # pending sells, by list (an OTOCO's pair counts once too)
    still = ZERO
    for r in out:
        left = r.remaining if r.remaining is not None else ZERO
        if r.list_cid:
            by_list = waiting if r.pending else per_list
            by_list[r.list_cid] = max(by_list.get(r.list_cid, ZERO), left)
        else:
            still += left
    for list_cid, left in waiting.items():
        still += max(ZERO, left - _working_buys(state, list_cid))
    return state.position.base + bought_held - sold_held - still - sum(per_list.values(), ZERO)


def _working_buys(state: S, list_cid: str) -> Decimal:
    """What the working buy legs of an OTO / OTOCO list still bring: its pending sells sell that."""
    return sum(
        (
            r.remaining or ZERO
            for r in state.orders.values()
            if r.list_cid == list_cid and r.side == BUY and not r.pending and not r.terminal
        ),
        ZERO,
    )


def _oversells(state: S, quantity: Decimal) -> bool:
    """Whether a sell of `quantity` would sell more than the position beside the sells out (a
    replacement sent before the old one's cancel is confirmed: both could fill)."""
    room = sellable(state)
    return room is not None and quantity > room


def cancel_order(
    state: S, ctx: StrategyContext, cid: ClientOrderId
) -> tuple[S, CancelOrder | CancelOrderList | None]:
    """Ask to cancel cid. The record stays until the venue confirms (it may still fill);
    None when cid is not open or a cancel was already asked for. A leg of an order list cancels
    the whole list (a CancelOrderList: the venue cancels a list as one), every leg marked."""
    record = state.orders.get(cid)
    if record is None or record.cancel_requested:
        return state, None
    legs = (
        [r for r in state.orders.values() if r.list_cid == record.list_cid] if record.list_cid else [record]
    )
    orders = dict(state.orders)
    for leg in legs:
        orders[leg.cid] = replace(leg, cancel_requested=True)
    state = replace(state, orders=orders)
    if record.list_cid:
        return state, CancelOrderList(
            list_cid=ClientOrderId(record.list_cid),
            bot=ctx.bot,
            venue=ctx.venue,
            symbol=ctx.symbol,
            ts=ctx.now,
        )
    return state, CancelOrder(cid=cid, bot=ctx.bot, venue=ctx.venue, symbol=ctx.symbol, ts=ctx.now)


def cancel_orders(
    state: S, ctx: StrategyContext, cids: list[ClientOrderId] | None = None
) -> tuple[S, list[CancelOrder | CancelOrderList]]:
    """Cancel the given open orders (all open orders when cids is None), oldest first; the
    legs of one list with one CancelOrderList."""
    cmds: list[CancelOrder | CancelOrderList] = []
    for cid in sorted(state.orders) if cids is None else cids:
        state, cmd = cancel_order(state, ctx, cid)
        if cmd is not None:
            cmds.append(cmd)
    return state, cmds


def find_open(state: S, tag: str) -> BotOrder | None:
    """The open order carrying tag (the newest if several), or None."""
    found = None
    for cid in sorted(state.orders):
        if state.orders[cid].tag == tag:
            found = state.orders[cid]
    return found


# --- order updates -----------------------------------------------------------------------


def is_replay(state: S, update: OrderUpdate) -> bool:
    """True for an update of an order this state finished recently (a late duplicate)."""
    return update.cid in state.recent


def contradicts(record: BotOrder, update: OrderUpdate, ctx: StrategyContext) -> str:
    """Why update cannot be about this order ("" when it can): another side or symbol means
    the cid names another order, and booking its fill would turn a buy into a sell."""
    if update.side is not None and update.side != record.side:
        return f"its side is {update.side}, the bot's order is a {record.side}"
    if update.symbol != ctx.symbol:
        return f"its symbol is {update.symbol}, the bot trades {ctx.symbol}"
    return ""


def apply_order_update(state: S, update: OrderUpdate, ctx: StrategyContext) -> tuple[S, OrderChange | None]:
    """Apply update if it moves its order forward: the record, the position and the fees.

    None (state unchanged) for a duplicate, a stale update, an update that contradicts the
    order (contradicts), or an order this state does not hold. A finished order leaves
    `orders` and is remembered in `recent`."""
    record = state.orders.get(update.cid)
    if record is None or contradicts(record, update, ctx):
        return state, None
    return apply_to_record(state, record, update, ctx)


def apply_to_record(
    state: S, record: BotOrder, update: OrderUpdate, ctx: StrategyContext
) -> tuple[S, OrderChange | None]:
    """apply_order_update for a caller that found update's record and saw that update does
    not contradict it (Strategy.step does both before it applies an update)."""
    result = advance(record, update)
    if result is None:
        return state, None
    after, fill = result
    orders = dict(state.orders)
    recent, position = state.recent, state.position
    if after.status in TERMINAL_STATUSES:
        del orders[update.cid]
        recent = (*recent, update.cid)[-RECENT_CIDS:]
    else:
        orders[update.cid] = after
    if fill is not None:
        filters = ctx.filters
        position = apply_fill(position, fill, filters.base_asset, filters.quote_asset)
    refusals = state.refusals
    state = replace(state, orders=orders, recent=recent, position=position)
    # a venue halted by a ban refused the order unseen: its terms are not to blame, so the bot
    # sends them again once the ban is over instead of giving them up
    if (refusals or after.status == REJECTED) and not halted_refusal(update.reason):
        state = note_outcome(state, after, ctx.symbol)
    return state, OrderChange(record, after, fill)


# --- timers and notifications ------------------------------------------------------------


def set_timer(state: S, name: str, due: int) -> tuple[S, SetTimer]:
    timers = dict(state.timers)
    timers[name] = due
    return replace(state, timers=timers), SetTimer(name=name, due=due)


def cancel_timer(state: S, name: str) -> tuple[S, CancelTimer | None]:
    if name not in state.timers:
        return state, None
    timers = dict(state.timers)
    del timers[name]
    return replace(state, timers=timers), CancelTimer(name=name)


def notification(
    ctx: StrategyContext,
    kind: str,
    key: str,
    text: str,
    *,
    level: Level = Level.INFO,
    title: str = "",
    data: dict[str, Any] | None = None,
) -> Notification:
    """A notification whose id `{bot}:{kind}:{key}` is the same when the step is replayed,
    so channels drop the duplicate. key must come from the state or the event, e.g. a cid."""
    return Notification(
        id=f"{ctx.bot}:{kind}:{key}",
        kind=kind,
        text=text,
        level=level,
        title=title,
        bot=ctx.bot,
        venue=ctx.venue,
        data=data or {},
        ts=ctx.now,
    )


# --- generic stop / close ----------------------------------------------------------------


def stop_commands(state: S, ctx: StrategyContext) -> tuple[S, list[Command]]:
    """Stop: cancel every open order, keep the position, send nothing new until resumed."""
    return _cancel_all(replace(state, mode=Mode.STOPPED), ctx)


def close_commands(
    state: S, ctx: StrategyContext, ref_price: Decimal | None = None
) -> tuple[S, list[Command]]:
    """Close: stop, then sell out (sell_out_commands)."""
    return sell_out_commands(replace(state, mode=Mode.STOPPED), ctx, ref_price)


def _cancel_all(state: S, ctx: StrategyContext) -> tuple[S, list[Command]]:
    """Every open order cancelled (held adopted ones booked first: adoption.py); the mode as it is."""
    state, cmds = book_held(state, ctx)
    state, cancels = cancel_orders(state, ctx)
    return state, [*cmds, *cancels]


def sell_out_commands(
    state: S, ctx: StrategyContext, ref_price: Decimal | None = None
) -> tuple[S, list[Command]]:
    """Cancel every open order, then sell the position at market once no order is open any
    more — an order being cancelled may still fill, and the sale must not sell what that one
    sold. `finish_close` makes the sale when the last one ends. The mode stays: a manual trade's
    close leaves its bot ready for the next one; `close_commands` stops the bot first."""
    state, cmds = _cancel_all(state, ctx)
    if state.orders:
        return replace(state, closing=True), cmds
    state, more = finish_close(state, ctx, ref_price)
    return state, cmds + more


def finish_close(state: S, ctx: StrategyContext, ref_price: Decimal | None = None) -> tuple[S, list[Command]]:
    """The sale of a close: the position at market (rounded down to the step size; nothing is
    sold when that is under the filters at ref_price or the last close)."""
    state = replace(state, closing=False)
    cmds: list[Command] = []
    if state.position.base > 0:
        state, sell = market_order(
            state, ctx, SELL, qty=state.position.base, ref_price=ref_price, tag="close", force=True
        )
        if sell is not None:
            cmds.append(sell)
        else:
            cmds.append(
                notification(
                    ctx,
                    "info",
                    f"close-dust-{state.seq}",
                    f"{ctx.bot}: position {ctx.qty(state.position.base)} {ctx.base_asset} is below the "
                    "exchange minimum, nothing to sell",
                )
            )
    return state, cmds


def fill_notification(ctx: StrategyContext, rec: BotOrder) -> Notification:
    """The `fill` notification of a finished order (its id is stable: `{bot}:fill:{cid}`)."""
    avg = rec.avg_fill_price or Decimal(0)
    return notification(
        ctx,
        "fill",
        rec.cid,
        f"{ctx.bot}: {rec.side} {ctx.qty(rec.cum_filled_qty)} {ctx.base_asset} at {ctx.price(avg)} ({rec.tag})",
        data={
            "cid": rec.cid,
            "tag": rec.tag,
            "qty": str(rec.cum_filled_qty),
            "quote": str(rec.cum_quote_qty),
        },
    )
