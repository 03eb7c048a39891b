"""Orders of this bot that its state does not know: held, claimed, or booked.

A power cut can take Redis back a second or two while the venue keeps every order it accepted
in that time. The bot's state then lacks orders that exist (its sequence rolled back with it),
and the order gateway adopts them from the venue (SyncBot / BotSynced, reconciliation). They
must reach the bot's position, yet the bot, replaying the same candles from its older state,
will usually ask for the very same orders again. So an adopted order is first HELD (tracked,
not booked):
- when the strategy asks to place an order with the same terms, it CLAIMS the held one: the
  request goes out again under the held order's cid, the gateway answers it with that order's
  state (same terms, same order), and the fills are booked once, through the ordinary path the
  strategy expects (its on_order_update sees them);
- once the bot handles a candle that opened after the held order reached the venue, no replay
  will ask for it any more: it is BOOKED into the position (and cancelled if still open, since
  the strategy no longer wants it); not while a claimed order's answer is awaited, since the
  replay goes on from it (claim_awaited). A finished sale while a smart trade's exits are out is
  booked at once, into the exit it sold for (smart_booked.py): its exit is not placed again.
An update is held only for an order of this bot's prefix with a sequence above the state's, or
that the gateway marks adopted; older sequences are this bot's finished orders (late copies).
"""

from __future__ import annotations

from decimal import Decimal

import msgspec

from shared.ids import ClientOrderId, seq_of
from shared.messages import BotSynced, Level, OrderStatus, OrderType, OrderUpdate
from shared.money import ZERO
from shared.order_terms import OrderTerms, same_terms
from shared.strategy.commands import Command
from shared.strategy.context import StrategyContext
from shared.strategy.orders import BotOrder, FillDelta, advance
from shared.strategy.position import apply_fill
from shared.strategy.state import RECENT_CIDS, S

replace = msgspec.structs.replace


def hold_update(state: S, update: OrderUpdate, ctx: StrategyContext) -> tuple[S, bool]:
    """Track an update of an order `state.orders` lacks; False when it is not one to hold
    (a foreign or finished order, or one without the terms a hold needs)."""
    held = state.adopted.get(update.cid)
    if held is not None:
        moved = advance(held, update)
        if moved is None:
            return state, True
        adopted = dict(state.adopted)
        adopted[update.cid] = moved[0]
        return replace(state, adopted=adopted), True
    seq = seq_of(update.cid, ctx.bot)
    if seq is None or update.side is None or update.order_type is None or update.symbol != ctx.symbol:
        return state, False
    if update.cid in state.recent or not (seq > state.seq or update.adopted):
        return state, False
    by_quote = update.order_type == OrderType.MARKET and bool(update.orig_quote_qty)
    record = BotOrder(
        cid=update.cid,
        side=update.side,
        order_type=update.order_type,
        tag="adopted",
        quantity=None if by_quote else update.orig_qty,
        quote_quantity=update.orig_quote_qty if by_quote else None,
        price=update.price,
        stop_price=update.stop_price,
        created=update.venue_ts or update.ts,
        list_cid=update.list_cid,  # a leg of a list: counted once with its other leg, cancelled as the list
    )
    moved = advance(record, update)
    adopted = dict(state.adopted)
    adopted[update.cid] = moved[0] if moved is not None else record
    return replace(state, adopted=adopted, seq=max(state.seq, seq)), True


def claim(state: S, terms: OrderTerms, slack: Decimal = ZERO) -> tuple[S, BotOrder | None]:
    """The held order these terms ask for again, taken out of the held ones (oldest first).

    The same terms first; failing that, the same side, type, price and stop with a base
    quantity within `slack` of the one asked: a replay that sized its order from a state a
    little different (the dust a grid tops its lots up with) still means that order, and the
    caller sends the held order's own terms so the gateway answers with it."""
    if not state.adopted:
        return state, None
    for near in (False, True):
        for cid in sorted(state.adopted):
            held = state.adopted[cid]
            have = OrderTerms(
                terms.symbol, held.side, held.order_type, held.quantity, held.quote_quantity, held.price,
                held.stop_price,
            )  # fmt: skip
            if _near(terms, have, slack) if near else same_terms(terms, have):
                adopted = dict(state.adopted)
                del adopted[cid]
                return replace(state, adopted=adopted), held
    return state, None


def _near(asked: OrderTerms, held: OrderTerms, slack: Decimal) -> bool:
    if asked.quantity is None or held.quantity is None or slack <= 0:
        return False
    if abs(asked.quantity - held.quantity) > slack:
        return False
    return same_terms(asked._replace(quantity=held.quantity), held)


def book_held(
    state: S, ctx: StrategyContext, before_ms: int | None = None, *, only: ClientOrderId | None = None
) -> tuple[S, list[Command]]:
    """Book held orders that reached the venue before `before_ms` (all when None; `only`: that
    one): their fills go into the position, a smart trade's sale into its exits; an open one
    joins the bot's orders and is cancelled. A candle (`before_ms`) books none while a claim
    waits for its answer (claim_awaited)."""
    due = [
        c for c in sorted(state.adopted)
        if (only is None or c == only) and (before_ms is None or state.adopted[c].created < before_ms)
    ]  # fmt: skip
    if not due or (before_ms is not None and claim_awaited(state, ctx)):
        return state, []
    from shared.strategy.actions import cancel_order, notification  # actions imports this module
    from shared.strategy.smart_booked import trade_booked  # as does smart_booked, through actions

    adopted, orders = dict(state.adopted), dict(state.orders)
    booked = {cid: adopted[cid] for cid in due}
    position, recent = state.position, state.recent
    cmds: list[Command] = []
    for cid in due:
        rec = adopted.pop(cid)
        if rec.cum_filled_qty > 0 or rec.fee > 0:
            fill = FillDelta(rec.side, rec.cum_filled_qty, rec.cum_quote_qty, rec.fee, rec.fee_asset)
            position = apply_fill(position, fill, ctx.base_asset, ctx.quote_asset)
        if rec.terminal:
            recent = (*recent, cid)[-RECENT_CIDS:]
        else:
            orders[cid] = rec
        cmds.append(
            notification(
                ctx,
                "reconciliation",
                f"adopted-{cid}",
                f"{ctx.bot}: order {cid} ({rec.side} {ctx.qty(rec.quantity) if rec.quantity else ctx.quote(rec.quote_quantity or 0)} "
                f"{rec.order_type}) was placed before a restart and not asked for again: "
                f"{ctx.qty(rec.cum_filled_qty)} filled, booked" + ("" if rec.terminal else "; cancelling it"),
                level=Level.WARNING,
            )
        )
    state = replace(state, adopted=adopted, orders=orders, position=position, recent=recent)
    for cid in due:  # a smart trade's sale: its exit hears it as it hears a fill (smart_booked.py)
        state, exits = trade_booked(state, booked[cid], ctx)
        cmds.extend(exits)
    for cid in due:
        if cid in state.orders:
            state, cancel = cancel_order(state, ctx, cid)
            if cancel is not None:
                cmds.append(cancel)
    return state, cmds


def claim_awaited(state: S, ctx: StrategyContext) -> bool:
    """A claimed order the gateway has not answered yet, below a held one: a replay goes on from
    that answer (a grid's filled buy puts its sale out again, that sale's fill the next buy), so
    held orders after it may still be claimed, one answer at a time, however many candles passed.
    A pending order below a held one's sequence is a claim: new orders take sequences above them."""
    if not state.adopted:
        return False
    top = max((seq_of(cid, ctx.bot) or 0) for cid in state.adopted)
    return any(
        rec.status == OrderStatus.PENDING_SUBMIT and (seq_of(cid, ctx.bot) or top) < top
        for cid, rec in state.orders.items()
    )


def synced(state: S, event: BotSynced) -> S | None:
    """The state once the gateway answered this bot's sync; None for an answer to another one."""
    if not state.sync or event.token != state.sync:
        return None
    return replace(state, sync="", seq=max(state.seq, event.max_seq))
