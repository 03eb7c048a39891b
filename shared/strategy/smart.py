"""Smart trades: a bot opens a trade and declares its exits; this module carries them out.

    state, cmds = open_trade(state, ctx, Exits(take_profits=(Target(gain=D("0.02")),),
                                               stop_loss=D("0.01")), quote=D("100"))

Strategy.step calls trade_update / trade_candle / trade_timer before the bot's own hooks, so
the runner and the backtester carry the exits out with this same code (docs/STRATEGY_GUIDE.md,
"Smart trades"). An entry filled in part by a candle's close is cancelled for the rest. The
rules, after the entry filled Q (net of a fee in base) at P:
- one sell OCO [LIMIT_MAKER at the target, STOP_LOSS at the stop] per target for its share
  (smart_plan.plan_slots); no target: one STOP_LOSS for Q; the trailing take profit's share is
  a STOP_LOSS alone, which trails peak x (1 - trailing_take_profit) once the target is reached;
- on each closed candle (peak = highest high since the entry) a stop moves up only (trailing
  stop, break-even once a target traded, trailing take profit) when the move is worth it
  (smart_plan.worth_moving), by cancel-then-replace: the list is cancelled, and once its legs
  are gone the slot's quantity left is placed again with the new stop;
- what no venue stop covers (an OCO whose limit leg traded in part: the venue expired its stop;
  a refused order) is watched here: a candle closing at or below its stop cancels what is left
  of it and sells the rest at market;
- the time limit is a timer: every exit cancelled, what is left sold at market;
- a sale the bot forgot across a power cut, booked from the venue, is its exit's fill
  (smart_booked.py);
- the trade ends when every slot is sold (what is left cannot be sold): `cycle_closed` says its
  profit, and state.trade is None again.
Each move and each exit is said in a decision.
"""

from __future__ import annotations

from decimal import Decimal

import msgspec

from shared.exits import Exits
from shared.ids import ClientOrderId
from shared.messages import Candle, Level, OrderType, Side
from shared.money import ZERO
from shared.strategy.actions import (
    OrderChange,
    cancel_order,
    cancel_timer,
    fill_notification,
    limit_order,
    market_order,
    notification,
    place_order,
    set_timer,
)
from shared.strategy.commands import Command
from shared.strategy.context import StrategyContext
from shared.strategy.decisions import decide, percent
from shared.strategy.events import TimerFired
from shared.strategy.lists import place_oco, stop_leg
from shared.strategy.sizing import market_qty
from shared.strategy.smart_plan import entry_refusal, plan_slots, sellable_qty, wanted_stop, worth_moving
from shared.strategy.smart_state import Slot, SmartTrade, TradePhase
from shared.strategy.state import Mode, S

replace = msgspec.structs.replace

STOPS = frozenset({OrderType.STOP_LOSS, OrderType.STOP_LOSS_LIMIT})
TIMER_PREFIX = "smart:"


def open_trade(
    state: S,
    ctx: StrategyContext,
    exits: Exits,
    *,
    quote: Decimal | None = None,
    qty: Decimal | None = None,
    price: Decimal | None = None,
    tag: str = "trade",
) -> tuple[S, list[Command]]:
    """Buy `quote` (or `qty` base) at market, or by a limit order at `price`, and carry out
    `exits` once it fills. Nothing is sent while a trade is on, or when the order is refused
    as the single-order helpers refuse (a filter, not running)."""
    if state.trade is not None:
        return state, [decide(ctx, f"no new trade ({tag}): {named(state.trade.tag)} is on", topic="trade_on")]
    if (qty is None) == (quote is None):
        raise ValueError("open_trade takes exactly one of quote and qty")
    if price is None:
        state, cmd = market_order(state, ctx, Side.BUY, qty=qty, quote=quote, tag=tag)
    else:
        base = qty if qty is not None else ctx.filters.round_qty((quote or ZERO) / price)
        state, cmd = limit_order(state, ctx, Side.BUY, base, price, tag=tag)
    if cmd is None:  # said once (a topic), not on every candle the bot tries again
        why = entry_refusal(state, ctx, quote, qty, price)
        return state, [decide(ctx, f"{named(tag)} not opened: {why}", topic="trade_not_opened", why=why)]
    state = watch_entry(state, exits, (cmd.cid,), tag)
    how = "at market" if price is None else f"limit at {ctx.price(cmd.price or ZERO)}"
    size = (
        f"{ctx.quote(cmd.quote_quantity)} {ctx.quote_asset}"
        if cmd.quote_quantity
        else ctx.qty(cmd.quantity or ZERO)
    )
    return state, [cmd, decide(ctx, f"{named(tag)} opened: buy {size} {how}; exits: {describe(ctx, exits)}")]


def named(tag: str) -> str:
    """How texts name a trade: "trade" alone, "trade 17..." for the manual bot's "trade:17...",
    "trade range3" for a tag of the strategy's own (never "trade trade:17...")."""
    if tag == "trade":
        return tag
    return f"trade {tag.removeprefix('trade:')}"


def watch_entry(state: S, exits: Exits, cids: tuple[str, ...], tag: str = "trade") -> S:
    """Make the bot's own buy order(s) `cids` a trade's entry (e.g. the legs of a buy OCO: the
    one that fills is the entry), its exits carried out once they are all finished."""
    return replace(state, trade=SmartTrade(tag=tag, exits=exits, entry_cids=cids))


def describe(ctx: StrategyContext, exits: Exits) -> str:
    """The exits in a few words: 'targets +2.00% (50%), +4.00%; stop -1.00%; trailing 0.50%'."""
    parts = []
    if exits.take_profits:
        texts = [
            (f"+{percent(t.gain)}" if t.gain is not None else ctx.price(t.price or ZERO))
            + (f" ({percent(t.share)})" if t.share is not None else "")
            for t in exits.take_profits
        ]
        parts.append("targets " + ", ".join(texts))
    if exits.stop_loss is not None:
        parts.append(f"stop -{percent(exits.stop_loss)}")
    if exits.stop_price is not None:
        parts.append(f"stop {ctx.price(exits.stop_price)}")
    for name, value in (
        ("trailing stop", exits.trailing_stop),
        ("trailing take profit", exits.trailing_take_profit),
    ):
        if value is not None:
            parts.append(f"{name} {percent(value)}")
    if exits.break_even:
        parts.append("break-even")
    if exits.time_limit_s:
        parts.append(f"time limit {exits.time_limit_s} s")
    return "; ".join(parts) or "none"


# --- the helper's handling, called by Strategy.step ------------------------------------------


def trade_update(state: S, change: OrderChange, ctx: StrategyContext) -> tuple[S, list[Command]]:
    """An order update already applied to state: the entry's, or an exit's. An order of the
    trade that ends having traded gets its `fill` notification, as every bot's fills do."""
    trade = state.trade
    if trade is None:
        return state, []
    if change.cid in trade.entry_cids:
        state, cmds = _entry_update(state, trade, change, ctx)
        return state, _with_fill_note(change, ctx, cmds)
    i = next((n for n, s in enumerate(trade.slots) if change.cid in s.cids), -1)
    if i < 0:
        return state, []
    state, cmds = exit_update(state, trade, i, change, ctx)
    return state, _with_fill_note(change, ctx, cmds)


def _with_fill_note(change: OrderChange, ctx: StrategyContext, cmds: list[Command]) -> list[Command]:
    if change.finished and change.after.cum_filled_qty > 0:
        return [fill_notification(ctx, change.after), *cmds]
    return cmds


def exit_update(
    state: S, trade: SmartTrade, i: int, change: OrderChange, ctx: StrategyContext
) -> tuple[S, list[Command]]:
    """Exit `i`'s order moved: its fill sold that much of the slot (a limit's: its target hit);
    once none of its orders is open, the slot is settled (smart_booked.py books a held sale here)."""
    slot = trade.slots[i]
    if change.fill is not None:
        is_limit = change.after.order_type not in STOPS and change.after.order_type != OrderType.MARKET
        slot = replace(slot, sold=slot.sold + change.fill.qty, hit=slot.hit or is_limit)
    if change.finished:
        slot = replace(slot, cids=tuple(c for c in slot.cids if c != change.cid))
    state = with_slot(state, trade, i, slot)
    return _settle(state, i, ctx)


def trade_candle(state: S, candle: Candle, ctx: StrategyContext) -> tuple[S, list[Command]]:
    """A closed candle: the peak, the stops' moves, the helper's own watch; an entry filled in
    part is cancelled for the rest (what it bought gets its exits, not left unprotected)."""
    trade = state.trade
    if trade is not None and trade.phase == TradePhase.ENTERING and trade.bought > 0:
        return _cut_entry(state, trade, ctx)
    if trade is None or trade.phase != TradePhase.OPEN:
        return state, []
    trade = replace(trade, peak=max(trade.peak, _high_since_entry(trade, candle)))
    state = replace(state, trade=trade)
    cmds: list[Command] = []
    for i in range(len(trade.slots)):
        state, more = _candle_slot(state, i, candle, ctx)
        cmds.extend(more)
    return state, cmds


def _high_since_entry(trade: SmartTrade, candle: Candle) -> Decimal:
    """The candle's highest price after the entry filled: its high, but only its close on the
    candle the entry filled in after its open (that high may have come before the fill: a stop
    trailed from it could sit above the entry and sell at once)."""
    return candle.high if candle.open_time >= trade.opened else candle.close


def trade_timer(state: S, timer: TimerFired, ctx: StrategyContext) -> tuple[S, list[Command]] | None:
    """The time limit (None: not the helper's timer): every exit cancelled, the rest sold."""
    trade = state.trade
    if not timer.name.startswith(TIMER_PREFIX):
        return None
    if trade is None or timer.name != trade.timer or trade.phase != TradePhase.OPEN:
        return state, []
    return _time_up(state, trade, ctx)


def trade_resumed(state: S, ctx: StrategyContext) -> tuple[S, list[Command]]:
    """Resumed: a time limit that fell due while the bot was paused is acted on now."""
    trade = state.trade
    if trade is None or not trade.timer or trade.timer in state.timers or trade.phase != TradePhase.OPEN:
        return state, []
    return _time_up(state, trade, ctx)


def trade_synced(state: S, ctx: StrategyContext) -> tuple[S, list[Command]]:
    """In step with the venue again (a restart's sync answered): each exit left without orders
    (its list could not go out while the bot was syncing) is placed again, which claims the
    held legs of the same list the venue kept (lists.py). Else, after a power cut, those held
    legs took the position's room, the exit stayed on the bot's own watch, and a held leg and
    that watch could each sell it. A slot whose target traded, being moved or sold is left as
    it is."""
    trade = state.trade
    if trade is None or trade.phase != TradePhase.OPEN:
        return state, []
    cmds: list[Command] = []
    for i, slot in enumerate(trade.slots):
        if slot.cids or slot.hit or slot.selling or slot.moving is not None:
            continue
        if sellable_qty(ctx.filters, slot.left, slot.stop or trade.price):
            state, more = _place_slot(state, i, ctx)
            cmds.extend(more)
    return state, cmds


def _time_up(state: S, trade: SmartTrade, ctx: StrategyContext) -> tuple[S, list[Command]]:
    state = replace(state, trade=replace(trade, phase=TradePhase.CLOSING))
    held = sum((s.left for s in trade.slots), ZERO)
    # what the market sales can sell: each exit's rest rounded to the step, none under the minimum
    sold = sum((market_qty(ctx.filters, s.left, s.stop or trade.peak) or ZERO for s in trade.slots), ZERO)
    text = (f"{named(trade.tag)}: time limit of {trade.exits.time_limit_s} s reached: exits cancelled, "
            f"{ctx.qty(sold)} {ctx.base_asset} sold at market")  # fmt: skip
    if held > sold:
        text += f" ({ctx.qty(held - sold)} {ctx.base_asset} under a step or the minimum order stays)"
    cmds: list[Command] = [decide(ctx, text)]
    for i in range(len(trade.slots)):
        state, more = _sell_slot(state, i, ctx)
        cmds.extend(more)
    return state, cmds


def trade_needs_candles(state: S) -> bool:
    """Whether the trade's exits are out: every closed candle may move or trigger one."""
    return state.trade is not None and state.trade.phase != TradePhase.ENTERING


def drop_trade(state: S) -> S:
    """The bot stopped or closed: its orders are cancelled by the generic stop, the trade ends
    without a word here (the stop's and close's own notifications say it)."""
    return replace(state, trade=None) if state.trade is not None else state


# --- the entry ---------------------------------------------------------------------------------


def _entry_update(
    state: S, trade: SmartTrade, change: OrderChange, ctx: StrategyContext
) -> tuple[S, list[Command]]:
    fill = change.fill
    if fill is not None:
        fee = fill.fee if fill.fee_asset == ctx.base_asset else ZERO
        trade = replace(
            trade, bought=trade.bought + fill.qty, paid=trade.paid + fill.quote, base_fee=trade.base_fee + fee
        )
        state = replace(state, trade=trade)
    if any(cid in state.orders for cid in trade.entry_cids):
        return state, []  # an entry order still open: wait until each is finished
    if trade.bought <= 0:
        why = f"{named(trade.tag)}: the entry ended without a fill ({change.after.status})"
        return replace(state, trade=None), [decide(ctx, why)]
    return _arm(state, trade, ctx)


def _cut_entry(state: S, trade: SmartTrade, ctx: StrategyContext) -> tuple[S, list[Command]]:
    cmds: list[Command] = []
    for cid in trade.entry_cids:
        state, cancel = cancel_order(state, ctx, ClientOrderId(cid))
        cmds.extend([cancel] if cancel is not None else [])
    if cmds:
        cmds.append(decide(ctx, f"{named(trade.tag)}: the entry bought {ctx.qty(trade.bought)} {ctx.base_asset} "
                                "by the close: the rest cancelled, the exits go out for what it bought"))  # fmt: skip
    return state, cmds


def _arm(state: S, trade: SmartTrade, ctx: StrategyContext) -> tuple[S, list[Command]]:
    """The entry filled: the exits go out, for what it bought and the bot's dust (what earlier
    trades left under the step or the minimum order, e.g. of fees in base), which would
    otherwise grow trade by trade until the position never looks flat again."""
    entry = trade.paid / trade.bought
    net = trade.bought - trade.base_fee
    dust = state.position.base - net
    if dust > 0 and not sellable_qty(ctx.filters, ctx.filters.round_qty(dust), entry):
        net = state.position.base
    qty = ctx.filters.round_qty(net)
    trade = replace(trade, phase=TradePhase.OPEN, qty=qty, price=entry, peak=entry,
                    realised=state.position.realised, opened=ctx.now)  # fmt: skip
    if not sellable_qty(ctx.filters, qty, entry):
        why = f"{named(trade.tag)}: bought {ctx.qty(qty)} {ctx.base_asset}, too little to sell: no exits"
        return replace(state, trade=None), [decide(ctx, why)]
    trade = replace(trade, slots=plan_slots(ctx.filters, trade.exits, qty, entry))
    state = replace(state, trade=trade)
    cmds: list[Command] = [
        decide(
            ctx,
            f"{named(trade.tag)}: bought {ctx.qty(qty)} {ctx.base_asset} at {ctx.price(entry)}; exits: "
            + ", ".join(_slot_text(ctx, s) for s in trade.slots),
        )  # fmt: skip
    ]
    for i in range(len(trade.slots)):
        state, more = _place_slot(state, i, ctx)
        cmds.extend(more)
    if trade.exits.time_limit_s:
        name = f"{TIMER_PREFIX}{trade.entry_cids[0]}"
        state, timer = set_timer(state, name, ctx.now + trade.exits.time_limit_s * 1000)
        assert state.trade is not None
        state = replace(state, trade=replace(state.trade, timer=name))
        cmds.append(timer)
    return state, cmds


def _slot_text(ctx: StrategyContext, slot: Slot) -> str:
    at = [f"limit {ctx.price(slot.target)}"] if slot.target is not None else []
    at += [f"trailing from {ctx.price(slot.activate)}"] if slot.activate is not None else []
    at += [f"stop {ctx.price(slot.stop)}"] if slot.stop is not None else []
    return f"{ctx.qty(slot.qty)} ({', '.join(at) or 'no order'})"


# --- the slots ---------------------------------------------------------------------------------


def _exit_tag(trade: SmartTrade) -> str:
    """The exits' tag: the trade's, marked (the entry's fills and the exits' read apart)."""
    return f"{trade.tag}:exit"


def with_slot(state: S, trade: SmartTrade, i: int, slot: Slot) -> S:
    """The state with slot `i` of `trade` replaced by `slot`."""
    slots = list(trade.slots)
    slots[i] = slot
    return replace(state, trade=replace(trade, slots=tuple(slots)))


def _slot(state: S, i: int) -> tuple[SmartTrade, Slot]:
    trade = state.trade
    assert trade is not None
    return trade, trade.slots[i]


def _force(state: S) -> bool:
    """Exits are put back while paused too (the position stays protected); never once stopped."""
    return state.mode == Mode.PAUSED


def _place_slot(state: S, i: int, ctx: StrategyContext) -> tuple[S, list[Command]]:
    """The slot's order(s) for what it has left: an OCO, a stop, a limit, or none."""
    trade, slot = _slot(state, i)
    force, left = _force(state), slot.left
    stop, target = slot.stop, slot.target
    if target is not None and stop is not None and stop < target:
        state, oco = place_oco(
            state, ctx, Side.SELL, left, above=target, below=stop, tag=_exit_tag(trade), force=force
        )
        if oco is None:
            return _uncovered(
                state, i, ctx, "its OCO is not sent (a filter, or the bot not in step with the venue)"
            )
        return with_slot(state, trade, i, replace(slot, cids=tuple(leg.cid for leg in oco.legs),
                                                  list_cid=oco.list_cid)), [oco]  # fmt: skip
    if stop is not None:
        leg = stop_leg(ctx, Side.SELL, left, stop, None)
        cmd = None
        if leg is not None:
            state, cmd = place_order(state, ctx, side=Side.SELL, order_type=leg.order_type, quantity=leg.quantity,
                                     stop_price=leg.stop_price, tag=_exit_tag(trade), force=force)  # fmt: skip
    elif target is not None:
        state, cmd = limit_order(state, ctx, Side.SELL, left, target, tag=_exit_tag(trade), force=force)
    else:
        return state, []  # the trailing take profit's share without a stop: placed once it trails
    if cmd is None:
        return _uncovered(
            state, i, ctx, "its order is not sent (a filter, or the bot not in step with the venue)"
        )
    trade, slot = _slot(state, i)
    return with_slot(state, trade, i, replace(slot, cids=(cmd.cid,), list_cid="")), [cmd]


def _uncovered(state: S, i: int, ctx: StrategyContext, why: str) -> tuple[S, list[Command]]:
    """An exit the venue does not hold: said as a decision, and as a warning a person hears (the
    position it covers has no venue stop; only the bot's own watch guards it now)."""
    trade, slot = _slot(state, i)
    watch = f"; the bot watches its stop {ctx.price(slot.stop)}" if slot.stop is not None else ""
    text = f"{named(trade.tag)}: exit {i + 1} ({ctx.qty(slot.left)}) not placed: {why}{watch}"
    key = f"{trade.entry_cids[0] if trade.entry_cids else trade.tag}-{i}-{state.seq}"
    warn = notification(ctx, "exit_not_placed", key, f"{ctx.bot}: {text}", level=Level.WARNING)
    return state, [decide(ctx, text), warn]


def _settle(state: S, i: int, ctx: StrategyContext) -> tuple[S, list[Command]]:
    """The slot's orders are all finished: it is done, sold at market, or placed again."""
    trade, slot = _slot(state, i)
    if slot.cids:
        return state, []
    cmds: list[Command] = []
    ref = slot.stop or trade.price
    if not sellable_qty(ctx.filters, slot.left, ref):
        state = with_slot(state, trade, i, replace(slot, moving=None, selling=False))
    elif slot.selling or trade.phase == TradePhase.CLOSING:
        state, more = _sell_slot(state, i, ctx)
        cmds.extend(more)
    elif slot.moving is not None:
        state = with_slot(state, trade, i, replace(slot, stop=slot.moving, moving=None))
        state, more = _place_slot(state, i, ctx)
        cmds.extend(more)
    else:
        state, more = _uncovered(state, i, ctx, "its orders ended unfilled")
        cmds.extend(more)
    state, end = _maybe_end(state, ctx)
    return state, cmds + end


def _sell_slot(state: S, i: int, ctx: StrategyContext) -> tuple[S, list[Command]]:
    """Sell what the slot has left at market: its orders cancelled first (the sale waits for
    their end: a cancelled order may still fill)."""
    trade, slot = _slot(state, i)
    slot = replace(slot, selling=True)
    state = with_slot(state, trade, i, slot)
    if slot.cids:
        for cid in slot.cids:
            state, cancel = cancel_order(state, ctx, ClientOrderId(cid))
            if cancel is not None:
                return state, [cancel]
        return state, []
    ref = slot.stop or trade.peak
    if not sellable_qty(ctx.filters, slot.left, ref):
        return state, []
    state, sell = market_order(
        state, ctx, Side.SELL, qty=slot.left, ref_price=ref, tag=_exit_tag(trade), force=True
    )
    if sell is None:
        return _uncovered(state, i, ctx, "its market sale is refused")
    trade, slot = _slot(state, i)
    return with_slot(state, trade, i, replace(slot, cids=(sell.cid,))), [sell]


def _covered(state: S, slot: Slot) -> bool:
    """Whether a stop at the venue covers the slot (an open stop order of it)."""
    return any(
        state.orders[c].order_type in STOPS and not state.orders[c].cancel_requested
        for c in slot.cids
        if c in state.orders
    )


def _candle_slot(state: S, i: int, candle: Candle, ctx: StrategyContext) -> tuple[S, list[Command]]:
    trade, slot = _slot(state, i)
    if slot.selling or not sellable_qty(ctx.filters, slot.left, candle.close):
        return state, []
    cmds: list[Command] = []
    high = _high_since_entry(trade, candle)
    if slot.activate is not None and not slot.trailing and high >= slot.activate:
        slot = replace(slot, trailing=True)
        state = with_slot(state, trade, i, slot)
        cmds.append(decide(ctx, f"{named(trade.tag)}: high {ctx.price(high)} reached the last target "
                                f"{ctx.price(slot.activate)}: its {ctx.qty(slot.left)} now trail "
                                f"{percent(trade.exits.trailing_take_profit or ZERO)} below the peak"))  # fmt: skip
    wanted = wanted_stop(trade, slot, ctx.filters)
    old = slot.moving if slot.moving is not None else slot.stop
    if wanted is not None and (old is None or wanted[0] > old):
        new, why, fraction = wanted
        if worth_moving(old, new, fraction, ctx.filters.tick_size) and new >= candle.close:
            # reached already: a venue stop there would trigger at once (venues refuse it)
            state = with_slot(state, trade, i, replace(slot, stop=new))
            cmds.append(decide(ctx, f"{named(trade.tag)}: exit {i + 1} stop {ctx.price(old) if old else 'none'} -> "
                                    f"{ctx.price(new)} ({why}) is reached by the close {ctx.price(candle.close)}: "
                                    f"{ctx.qty(slot.left)} sold at market"))  # fmt: skip
            state, more = _sell_slot(state, i, ctx)
            return state, cmds + more
        if worth_moving(old, new, fraction, ctx.filters.tick_size):
            if slot.target is not None and candle.close >= slot.target and _covered(state, slot):
                # its limit leg is under the price (a thin candle left it unfilled): it fills
                # from the next steps, and a replacement OCO would be refused (its limit would take)
                cmds.append(decide(ctx, f"{named(trade.tag)}: exit {i + 1} stop stays {ctx.price(old or new)}: "
                                        f"its limit {ctx.price(slot.target)} is under the close {ctx.price(candle.close)}",
                                   topic=f"{trade.tag}:limit_under_close:{i + 1}"))  # fmt: skip
            else:
                state, more = _move(state, i, new, why, ctx)
                cmds.extend(more)
    trade, slot = _slot(state, i)
    if (
        slot.stop is not None
        and slot.moving is None
        and candle.close <= slot.stop
        and not _covered(state, slot)
    ):
        cmds.append(decide(ctx, f"{named(trade.tag)}: close {ctx.price(candle.close)} at or below the stop "
                                f"{ctx.price(slot.stop)} of exit {i + 1}, which no venue stop covers: "
                                f"{ctx.qty(slot.left)} sold at market"))  # fmt: skip
        state, more = _sell_slot(state, i, ctx)
        cmds.extend(more)
    return state, cmds


def _move(state: S, i: int, new: Decimal, why: str, ctx: StrategyContext) -> tuple[S, list[Command]]:
    """Move the slot's stop up to `new`: cancel-then-replace when a venue stop covers it (the
    replacement goes out in _settle), else the order is placed or the watch moves."""
    trade, slot = _slot(state, i)
    old = slot.moving if slot.moving is not None else slot.stop
    text = (f"{named(trade.tag)}: exit {i + 1} stop {ctx.price(old) if old is not None else 'none'} -> "
            f"{ctx.price(new)} ({why}, peak {ctx.price(trade.peak)})")  # fmt: skip
    if slot.moving is not None:  # its cancel is on its way: the replacement takes the newer stop
        return with_slot(state, trade, i, replace(slot, moving=new)), [decide(ctx, text)]
    if _covered(state, slot):
        cmds: list[Command] = [decide(ctx, text)]
        state = with_slot(state, trade, i, replace(slot, moving=new))
        for cid in slot.cids:
            state, cancel = cancel_order(state, ctx, ClientOrderId(cid))
            if cancel is not None:
                cmds.append(cancel)
                break
        return state, cmds
    state = with_slot(state, trade, i, replace(slot, stop=new))
    if slot.cids or slot.hit:  # the limit leg traded in part: the bot's own watch moves
        return state, [decide(ctx, text + "; watched by the bot")]
    state, more = _place_slot(state, i, ctx)
    return state, [decide(ctx, text), *more]


def _maybe_end(state: S, ctx: StrategyContext) -> tuple[S, list[Command]]:
    """Every slot sold and no order of the trade open: `cycle_closed` with the trade's profit."""
    trade = state.trade
    if trade is None or any(s.cids for s in trade.slots):
        return state, []
    if any(sellable_qty(ctx.filters, s.left, trade.price) for s in trade.slots):
        return state, []
    profit = state.position.realised - trade.realised
    cmds: list[Command] = []
    if trade.timer:
        state, cancel = cancel_timer(state, trade.timer)
        cmds.extend([cancel] if cancel is not None else [])
    text = (f"{named(trade.tag)} closed: bought {ctx.qty(trade.qty)} {ctx.base_asset} at {ctx.price(trade.price)}, "
            f"profit {ctx.quote(profit)} {ctx.quote_asset}")  # fmt: skip
    note = notification(ctx, "cycle_closed", trade.entry_cids[0], f"{ctx.bot}: {text}",
                        data={"tag": trade.tag, "profit": str(profit), "qty": str(trade.qty),
                              "price": str(trade.price)})  # fmt: skip
    return replace(state, trade=None), [*cmds, decide(ctx, text, profit=profit), note]
