"""Order lists from a strategy: an OCO (two legs, the first to trade expires the other), and the
general PlaceOrderList, with the guarantees of the single-order helpers in actions.py.

Every id comes from the bot's sequence (the list's first, then each leg's), each leg is kept in
state.orders as a BotOrder carrying the list's id, and the position moves only from the legs'
own order updates. Nothing is sent (None) while the bot is not running (unless force), when a
leg breaks a filter once rounded, when a sell list would sell more than the position beside the
sells out (the two legs of an OCO count once: only one of them can sell; the pending sells of an
OTO / OTOCO whose working leg buys sell what that buy brings), or when the venue
keeps refusing one leg's terms (refusals.py). Cancelling any leg cancels the list
(actions.cancel_order), so pause, stop and close cancel lists as lists.
"""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal
from typing import NamedTuple

import msgspec

from shared.ids import ClientOrderId, format_cid, seq_of
from shared.messages import (
    CancelOrderList,
    ListKind,
    OrderType,
    PlaceOrderList,
    Side,
    TimeInForce,
    oco_start,
    pending_leg,
)
from shared.order_terms import OrderTerms, same_terms
from shared.strategy.actions import cancel_order, next_cid, record_order, sellable
from shared.strategy.context import StrategyContext
from shared.strategy.orders import BotOrder
from shared.strategy.refusals import held_back
from shared.strategy.sizing import limit_terms, market_qty
from shared.strategy.state import S

replace = msgspec.structs.replace
MARKET_STOPS = frozenset({OrderType.STOP_LOSS, OrderType.TAKE_PROFIT})
FIRED_AS = {
    OrderType.STOP_LOSS: OrderType.MARKET,
    OrderType.STOP_LOSS_LIMIT: OrderType.LIMIT,
}  # emulated stops


class Leg(NamedTuple):
    """One leg's terms, already rounded (place_oco rounds them)."""

    side: Side
    order_type: OrderType
    quantity: Decimal
    price: Decimal | None = None
    stop_price: Decimal | None = None
    time_in_force: TimeInForce | None = None


def _sold_at_most(kind: ListKind, legs: Sequence[Leg]) -> Decimal:
    """The most base the list's sell legs can sell together (of an OCO's pair, one leg) out of
    the position held now: an OTO / OTOCO's pending sells sell what its working buy brings."""
    first = oco_start(kind, len(legs))
    pair, alone = legs[first:], legs[:first]
    most = max((leg.quantity for leg in pair if leg.side == Side.SELL), default=Decimal(0))
    selling = most + sum((leg.quantity for leg in alone if leg.side == Side.SELL), Decimal(0))
    if kind is not ListKind.OCO and legs and legs[0].side == Side.BUY:
        selling = max(Decimal(0), selling - legs[0].quantity)
    return selling


def place_list(
    state: S, ctx: StrategyContext, kind: ListKind, legs: Sequence[Leg], *, tag: str = "", force: bool = False
) -> tuple[S, PlaceOrderList | None]:
    """Record and return a PlaceOrderList of `legs` (in PlaceOrderList's leg order) as given."""
    if not state.running and not force:
        return state, None
    state, claimed = _claim_list(state, ctx, legs)
    if claimed:  # the same list again (adoption.py): its own ids go out, the gateway answers with it
        return _record_list(state, ctx, kind, legs, *claimed, tag)
    selling = _sold_at_most(kind, legs)
    room = sellable(state)
    if selling and room is not None and selling > room:
        return state, None
    for leg in legs:
        terms = OrderTerms(
            ctx.symbol, leg.side, leg.order_type, leg.quantity, None, leg.price, leg.stop_price
        )
        state, skip = held_back(state, terms)
        if skip:
            return state, None
    state, list_cid = next_cid(state, ctx)
    cids = []
    for _ in legs:
        state, cid = next_cid(state, ctx)
        cids.append(cid)
    return _record_list(state, ctx, kind, legs, list_cid, cids, tag)


def _claim_list(
    state: S, ctx: StrategyContext, legs: Sequence[Leg]
) -> tuple[S, tuple[str, list[str]] | None]:
    """The list `legs` ask for again, held (orders of this bot found at the venue that its state,
    rolled back by a power cut, lacks: adoption.py): (its list cid, its legs' cids), its held
    legs taken out of the held ones; None when no held order is one of its legs. Without this
    the bot, its position's room taken by those held sells, could not place the list again and
    watched its stop itself, while the held legs traded and were then booked and cancelled.
    Every held leg of one list, each naming it; else a held single order with a leg's terms (an
    emulated list whose records the cut took: the venue kept its limit leg, its stop leg held by
    the gateway is gone; or, the stop fired first, also its stop leg as the order it was sent
    as: `_fired_stop`), the list's ids then those place_list gave it: the list's, then each
    leg's in order. Every held order among those ids must have its leg's terms, and the bot
    hold none of the others (a single order of its own with a leg's terms is not a list's leg)."""
    if not state.adopted:
        return state, None
    asked = [OrderTerms(ctx.symbol, leg.side, leg.order_type, leg.quantity, None, leg.price, leg.stop_price)
             for leg in legs]  # fmt: skip

    def terms(h: BotOrder) -> OrderTerms:
        return OrderTerms(
            ctx.symbol, h.side, h.order_type, h.quantity, h.quote_quantity, h.price, h.stop_price
        )

    def fits(want: OrderTerms, h: BotOrder) -> bool:
        return same_terms(want, terms(h)) or _fired_stop(want, h)

    candidates: list[tuple[str, list[str]]] = []
    lists: dict[str, list[str]] = {}
    for cid in sorted(state.adopted):
        if state.adopted[cid].list_cid:
            lists.setdefault(state.adopted[cid].list_cid, []).append(cid)
    candidates += [(lcid, cids) for lcid, cids in lists.items() if len(cids) == len(legs)]
    for cid, h in sorted(state.adopted.items()):
        seq = seq_of(cid, ctx.bot)
        for k, want in enumerate(asked):
            if not h.list_cid and seq is not None and seq - 1 - k > 0 and same_terms(want, terms(h)):
                first = seq - 1 - k
                ids = [format_cid(ctx.bot, first + 1 + i) for i in range(len(legs))]
                candidates.append((format_cid(ctx.bot, first), ids))
    for list_cid, cids in candidates:
        held = {c: state.adopted[c] for c in cids if c in state.adopted}
        same = all(fits(want, held[c]) for want, c in zip(asked, cids, strict=True) if c in held)
        # a fired stop leg only beside its held limit leg: alone, a market sale of the bot's own
        fired = any(not same_terms(w, terms(held[c])) for w, c in zip(asked, cids, strict=True) if c in held)
        same = same and (not fired or len(held) == len(cids))
        known = {list_cid, *cids} - set(held)  # ids the bot holds otherwise: not this list's
        named = all(h.list_cid in ("", list_cid) for h in held.values()) and not any(
            c in state.adopted or c in state.orders or c in state.recent for c in known
        )
        if held and same and named:
            adopted = {c: o for c, o in state.adopted.items() if c not in held}
            # its ids are the bot's from now on: an emulated stop leg's, never held, is past the
            # sequence the held limit leg moved it to, and the next order must not take it
            seq = max(state.seq, *(seq_of(c, ctx.bot) or 0 for c in (list_cid, *cids)))
            return replace(state, adopted=adopted, seq=seq), (list_cid, cids)
    return state, None


def _fired_stop(want: OrderTerms, h: BotOrder) -> bool:
    """Whether held order `h` is stop leg `want` as an emulating gateway sent it once the stop
    was reached (emulated_oco.py): MARKET for a STOP_LOSS, LIMIT at its price for a
    STOP_LOSS_LIMIT, same side, for what the limit leg left (at most the leg's quantity). The
    cut took the list's records after that: the venue kept it as a single order of its own."""
    sent = FIRED_AS.get(want.order_type)
    if sent is None or h.order_type is not sent or h.side != want.side or h.stop_price is not None:
        return False
    if sent is OrderType.LIMIT and h.price != want.price:
        return False
    return h.quantity is not None and want.quantity is not None and 0 < h.quantity <= want.quantity


def _record_list(state: S, ctx: StrategyContext, kind: ListKind, legs: Sequence[Leg], list_cid: str,
                 cids: Sequence[str], tag: str) -> tuple[S, PlaceOrderList]:  # fmt: skip
    """Keep every leg in state.orders under its cid and return the list's command."""
    placed = []
    for i, (leg, cid) in enumerate(zip(legs, cids, strict=True)):
        state, cmd = record_order(
            state, ctx, ClientOrderId(cid), side=leg.side, order_type=leg.order_type, quantity=leg.quantity, price=leg.price,
            stop_price=leg.stop_price, time_in_force=leg.time_in_force, tag=tag, list_cid=list_cid,
            pending=pending_leg(kind, i),
        )  # fmt: skip
        placed.append(cmd)
    cmd = PlaceOrderList(
        list_cid=ClientOrderId(list_cid),
        bot=ctx.bot,
        venue=ctx.venue,
        symbol=ctx.symbol,
        kind=kind,
        legs=tuple(placed),
        ts=ctx.now,
    )
    return state, cmd


def stop_leg(
    ctx: StrategyContext, side: Side, qty: Decimal, stop: Decimal, limit: Decimal | None
) -> Leg | None:
    """A STOP_LOSS leg (market once triggered) or, with `limit`, a STOP_LOSS_LIMIT one, rounded as
    stop_limit_order rounds; None when it breaks a filter (a market stop checked at its stop)."""
    if limit is None:
        rounded = market_qty(ctx.filters, qty, ctx.filters.round_price(stop, side))
        if rounded is None:
            return None
        return Leg(side, OrderType.STOP_LOSS, rounded, stop_price=ctx.filters.round_price(stop, side))
    terms = limit_terms(ctx.filters, side, qty, limit)
    if terms is None:
        return None
    stop = ctx.filters.round_price(stop, side)
    return Leg(side, OrderType.STOP_LOSS_LIMIT, terms[0], terms[1], stop, TimeInForce.GTC)


def maker_leg(ctx: StrategyContext, side: Side, qty: Decimal, price: Decimal) -> Leg | None:
    """A LIMIT_MAKER leg rounded as limit_order rounds; None when it breaks a filter."""
    terms = limit_terms(ctx.filters, side, qty, price)
    return None if terms is None else Leg(side, OrderType.LIMIT_MAKER, terms[0], terms[1])


def place_oco(
    state: S,
    ctx: StrategyContext,
    side: Side,
    qty: Decimal,
    *,
    above: Decimal,
    below: Decimal,
    stop_limit: Decimal | None = None,
    tag: str = "",
    force: bool = False,
) -> tuple[S, PlaceOrderList | None]:
    """An OCO of `qty`. A sell: LIMIT_MAKER at `above` (the take profit) and a stop at `below`;
    a buy: a stop at `above` (a break upwards) and LIMIT_MAKER at `below`. The stop is a
    STOP_LOSS (market once triggered), or a STOP_LOSS_LIMIT at `stop_limit`. None (nothing sent)
    when a leg breaks a filter once rounded, or as place_list says."""
    if below >= above:
        raise ValueError(f"an OCO's below ({below}) must be under its above ({above})")
    qty = ctx.filters.round_qty(qty)
    if side == Side.SELL:
        first, second = maker_leg(ctx, side, qty, above), stop_leg(ctx, side, qty, below, stop_limit)
    else:
        first, second = stop_leg(ctx, side, qty, above, stop_limit), maker_leg(ctx, side, qty, below)
    if first is None or second is None or first.quantity != second.quantity:
        return state, None
    return place_list(state, ctx, ListKind.OCO, (first, second), tag=tag, force=force)


def list_legs(state: S, list_cid: str) -> list[ClientOrderId]:
    """The open legs of a list, in cid order."""
    return [ClientOrderId(cid) for cid in sorted(state.orders) if state.orders[cid].list_cid == list_cid]


def cancel_list(state: S, ctx: StrategyContext, list_cid: str) -> tuple[S, CancelOrderList | None]:
    """Ask to cancel every open leg of a list (each marked cancel_requested); None when none is
    open or their cancel was asked already."""
    for cid in list_legs(state, list_cid):
        state, cmd = cancel_order(state, ctx, cid)
        if isinstance(cmd, CancelOrderList):
            return state, cmd
    return state, None
