"""A person asks a bot to cancel one of its orders (BotControl CANCEL, from `automata order cancel
CID --force` or the dashboard): the bot sends the cancel itself.

Only the bot's runner writes the bot's command stream (the order gateway's proof of the sender),
so the cancel goes out as any cancel of the bot's own: `cancel_order` marks the record, which
stays until the venue answers (the order may still fill), and the command leaves in the step's
commit, once. The strategy then hears the CANCELED update as for its own cancels. An order the
bot does not hold open (unknown, finished, or its cancel already asked) gets no command: the
decision and the notification say why, and who asked.
"""

from __future__ import annotations

from enum import StrEnum

from shared.messages import BotControl, CancelOrder, CancelOrderList, Level
from shared.strategy.actions import cancel_order, notification
from shared.strategy.adoption import book_held
from shared.strategy.commands import Command
from shared.strategy.context import StrategyContext
from shared.strategy.decisions import decide
from shared.strategy.state import S


class CancelOutcome(StrEnum):
    """What came of a person's cancel (the decision's `outcome` field: cli/order.py waits on it)."""

    SENT = "sent"
    ALREADY_ASKED = "already_asked"
    NOT_OPEN = "not_open"


def cancel_asked(state: S, ctx: StrategyContext, control: BotControl) -> tuple[S, list[Command]]:
    """The cancel of `control.cid` (a held adopted order is booked first: adoption.py), with a
    decision (fields cid, outcome, source) and a notification naming who asked."""
    cid = control.cid
    who = control.source + (f": {control.reason}" if control.reason else "")
    cmds: list[Command] = []
    if cid in state.adopted:  # placed before a restart, not booked yet: booked now, and cancelled
        state, cmds = book_held(state, ctx, only=cid)
    record = state.orders.get(cid)
    if record is None:
        outcome = CancelOutcome.NOT_OPEN
        why = "it is finished already" if cid in state.recent else "the bot holds no such open order"
        text = f"cancel of {cid} asked ({who}): {why}; nothing sent"
    elif record.cancel_requested and not any(isinstance(c, (CancelOrder, CancelOrderList)) for c in cmds):
        outcome = CancelOutcome.ALREADY_ASKED
        text = f"cancel of {cid} asked ({who}): its cancel is on its way already; nothing sent"
    else:
        outcome = CancelOutcome.SENT
        state, cancel = cancel_order(state, ctx, cid)
        cmds.extend([cancel] if cancel is not None else [])
        terms = (
            f"{record.side} {ctx.qty(record.quantity)}" if record.quantity is not None else str(record.side)
        )
        at = f" at {ctx.price(record.price)}" if record.price is not None else ""
        tag = f", {record.tag}" if record.tag else ""
        text = f"cancelling {cid} ({terms}{at}{tag}) as asked ({who})"
    decision = decide(ctx, text, cid=cid, outcome=outcome, source=control.source)
    note = notification(
        ctx, "bot_cancel", f"{control.ts}-{cid}-{outcome}", f"{ctx.bot}: {text}",
        level=Level.INFO if outcome == CancelOutcome.SENT else Level.WARNING, data={"cid": cid, "outcome": outcome},
    )  # fmt: skip
    return state, [*cmds, decision, note]
