"""A smart trade's sale the bot forgot, booked from the venue: its exit takes it as a fill.

A power cut can take the bot's state back to before an exit sold (an emulated stop fired, the
bot's own watch sold at market, a limit leg traded, often under ids of a list sent after the
saved state), while the venue kept the sale. The gateway adopts it, the bot holds it, and once
no replay claims it, adoption.book_held books it into the position. The trade must hear it too:
else its exit, still counting what was sold, sells it again (its orders of before the cut, or
of after it, are still out) or waits for ever on a sale the position no longer allows.

So the held sale is told to one exit as the fill of one of its orders (smart.exit_update, the
path of a live fill): the exit named by the order's id or list, else one without a market sale
out (that sale may be this one's twin, claimed), the one whose target it sells at, else the one
whose size it has. The exit's other orders sell what is sold now: they are cancelled, and what
is left is placed again once they are gone, or the trade ends when every exit is sold. An open
held order (book_held cancels it) stays the exit's until it ends. A finished sale is booked as
soon as it is held (sold_for_trade), not on the next candle: the exits are not placed again for
what it sold, and a list of its exit still out is cancelled before its stop sells it again.
"""

from __future__ import annotations

from decimal import Decimal

import msgspec

from shared.ids import ClientOrderId
from shared.messages import OrderStatus, OrderType, Side
from shared.money import ZERO
from shared.strategy.actions import OrderChange, cancel_order
from shared.strategy.commands import Command
from shared.strategy.context import StrategyContext
from shared.strategy.decisions import decide
from shared.strategy.orders import BotOrder, FillDelta
from shared.strategy.smart import exit_update, named, with_slot
from shared.strategy.smart_state import Slot, SmartTrade, TradePhase
from shared.strategy.state import S

replace = msgspec.structs.replace
LIMITS = frozenset({OrderType.LIMIT, OrderType.LIMIT_MAKER})


def sold_for_trade(state: S, cid: str) -> bool:
    """Whether held order `cid` is a finished sale while the trade's exits are out: booked at
    once, not on the next candle (meanwhile an exit it sold could be placed again, or its list
    still out stop, and sell it twice). No replay asks for it: its exit is sold."""
    held, trade = state.adopted.get(cid), state.trade
    if held is None or trade is None or trade.phase == TradePhase.ENTERING:
        return False
    return held.side == Side.SELL and held.terminal and held.cum_filled_qty > 0


def trade_booked(state: S, held: BotOrder, ctx: StrategyContext) -> tuple[S, list[Command]]:
    """A held order of the bot just booked (its fills in the position already): a sale goes to
    the open trade's exits, to the next ones only for what it sold beyond the first one's rest.
    Nothing for a buy, an order that ended unfilled, or without a trade whose exits are out."""
    trade = state.trade
    if trade is None or trade.phase == TradePhase.ENTERING or held.side != Side.SELL:
        return state, []
    if held.terminal and held.cum_filled_qty <= 0:
        return state, []
    cmds: list[Command] = []
    rest, first = held.cum_filled_qty, True
    while first or rest > 0:
        trade = state.trade
        i = None if trade is None else _exit_of(state, trade, held, rest)
        if trade is None or i is None:
            break
        part = min(rest, trade.slots[i].left)
        state, more = _book_part(state, trade, i, held, part, ctx, own=first)
        cmds.extend(more)
        rest, first = rest - part, False
    return state, cmds


def _exit_of(state: S, trade: SmartTrade, held: BotOrder, qty: Decimal) -> int | None:
    """The exit the held sale (`qty` of it still to tell) sold for; None when every one is sold.
    An exit whose market sale is out (it may have claimed a held sale just like this one) is
    sold already: it comes last."""
    open_ = [n for n, s in enumerate(trade.slots) if s.left > 0]

    def rank(n: int) -> tuple[bool, ...]:
        s = trade.slots[n]
        own = held.cid in s.cids or (bool(held.list_cid) and held.list_cid == s.list_cid)
        selling = sum((o.remaining or ZERO for c in s.cids if (o := state.orders.get(c)) is not None
                       and o.order_type == OrderType.MARKET and c != held.cid), ZERO)  # fmt: skip
        free = s.left - selling
        at_target = held.order_type in LIMITS and s.target is not None and held.price == s.target
        return (not own, free <= 0, not at_target, held.quantity != free, qty > free)

    return min(open_, key=lambda n: (rank(n), n), default=None)


def _book_part(
    state: S, trade: SmartTrade, i: int, held: BotOrder, part: Decimal, ctx: StrategyContext, *, own: bool
) -> tuple[S, list[Command]]:
    """`part` of the held sale told to exit `i` as a fill; `own`: the exit the order is one of."""
    slot = trade.slots[i]
    others = [c for c in slot.cids if c != held.cid]
    cmds: list[Command] = []
    if part > 0:
        for cid in others:  # they sell what is sold now (a list's legs: one cancel for the list)
            state, cancel = cancel_order(state, ctx, ClientOrderId(cid))
            cmds.extend([cancel] if cancel is not None else [])
        cmds.insert(0, decide(ctx, _said(trade, i, slot, held, part, ctx, bool(cmds))))
    if not slot.selling and slot.moving is None and (part > 0 or not others):
        slot = replace(slot, moving=slot.stop)  # what is left goes out again once they all ended
    if own and not held.terminal and held.cid not in slot.cids:
        slot = replace(slot, cids=(*slot.cids, held.cid))  # its later fills are this exit's
    state = with_slot(state, trade, i, slot)
    assert state.trade is not None
    state, more = exit_update(state, state.trade, i, _as_change(held, part), ctx)
    return state, cmds + more


def _as_change(held: BotOrder, part: Decimal) -> OrderChange:
    """The booked order as one update that brought `part` of its fills (none: no fill)."""
    before = replace(held, status=OrderStatus.NEW, cum_filled_qty=ZERO, cum_quote_qty=ZERO, fee=ZERO)
    if part <= 0:
        return OrderChange(before, held, None)
    quote = held.cum_quote_qty * part / held.cum_filled_qty
    return OrderChange(before, held, FillDelta(held.side, part, quote, ZERO, held.fee_asset))


def _said(trade: SmartTrade, i: int, slot: Slot, held: BotOrder, part: Decimal, ctx: StrategyContext,
          cancelled: bool) -> str:  # fmt: skip
    text = (f"{named(trade.tag)}: exit {i + 1} sold {ctx.qty(part)} {ctx.base_asset} by {held.cid} "
            f"({held.order_type}), placed before a restart and booked now")  # fmt: skip
    if cancelled:
        text += "; its other orders cancelled"
    left = slot.left - part
    return text + (f"; {ctx.qty(left)} left" if left > 0 else "; sold")
