"""Terms the venue refused three times in a row: a built-in strategy gives them up.

The strategy interface counts refusals per terms (shared/strategy/refusals.py) and, after
three in a row, backs off: the same terms go out again after 1, 2, 4 ... skipped attempts. The
built-in strategies derive their orders from their state and the candles, so terms refused
three times in a row would be refused again (a stop already through, a short balance, a
filter): they give such terms up until they change (the strategy wants another order) or a
person resumes the bot, and say so once. Nothing here sends anything; every function is pure.
"""

from __future__ import annotations

from typing import Any

import msgspec

from shared.messages import ControlAction, Level, Notification, OrderStatus, PlaceOrder
from shared.order_terms import terms_key, terms_of
from shared.strategy import BotOrder, StrategyContext, notification
from shared.strategy.refusals import REFUSALS_BEFORE_BACKOFF, record_terms
from shared.strategy.state import S

MAX_REFUSALS = REFUSALS_BEFORE_BACKOFF  # refusals in a row after which terms are given up


def refused_in_a_row(state: S, cmd: PlaceOrder) -> int:
    """How many times in a row the venue refused the terms of cmd."""
    if not state.refusals:
        return 0
    refusal = state.refusals.get(terms_key(terms_of(cmd)))
    return refusal.count if refusal is not None else 0


def unless_given_up(before: S, placed: tuple[S, PlaceOrder | None]) -> tuple[S, PlaceOrder | None]:
    """The result of a place_* helper, or (before, None) when its terms were given up."""
    state, cmd = placed
    if cmd is not None and refused_in_a_row(before, cmd) >= MAX_REFUSALS:
        return before, None
    return state, cmd


def given_up_note(state: S, ctx: StrategyContext, rec: BotOrder, what: str) -> Notification | None:
    """The notification for the refusal that makes these terms given up (once per such run)."""
    if rec.status != OrderStatus.REJECTED or rec.cum_filled_qty > 0 or not state.refusals:
        return None
    refusal = state.refusals.get(terms_key(record_terms(rec, ctx.symbol)))
    if refusal is None or refusal.count != MAX_REFUSALS:
        return None
    return notification(
        ctx,
        "error",
        f"given-up-{rec.cid}",
        f"{ctx.bot}: {what} ({rec.tag}) refused {MAX_REFUSALS} times in a row with the same terms; "
        "not sent again until they change or the bot is resumed",
        level=Level.ERROR,
    )


class ForgetsRefusalsOnResume:
    """Mixin for a Strategy: a person's resume clears the refused terms, so they are tried
    again (the sync after a restart also calls on_resume, and must not)."""

    def on_control(self, params: Any, state: Any, control: Any, ctx: StrategyContext) -> Any:
        if control.action == ControlAction.RESUME and state.refusals:
            state = msgspec.structs.replace(state, refusals={})
        return super().on_control(params, state, control, ctx)  # type: ignore[misc]
