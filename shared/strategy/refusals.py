"""Terms the venue refused are not sent again unchanged, forever.

A strategy that re-derives the same order from the same state (a stop the venue says would
trigger at once, a sell the balance cannot cover) would otherwise send it on every candle,
burning a client order id and a request each time. After REFUSALS_BEFORE_BACKOFF refusals in a
row, the same terms are held back: the next attempt goes out after 1 skipped attempt, then 2,
4, ... (doubling, capped), counted in attempts rather than time because a bot's event times
and the venue's clock need not agree. Terms that the venue accepts once are forgotten.
"""

from __future__ import annotations

import msgspec

from shared.messages import REJECTED
from shared.order_lifecycle import UNCONFIRMED
from shared.order_terms import OrderTerms, terms_key
from shared.strategy.orders import BotOrder
from shared.strategy.state import REFUSALS_KEPT, Refusal, S

REFUSALS_BEFORE_BACKOFF = 3
MAX_SKIPPED = 1024

replace = msgspec.structs.replace


def record_terms(record: BotOrder, symbol: str) -> OrderTerms:
    return OrderTerms(
        symbol, record.side, record.order_type, record.quantity, record.quote_quantity, record.price,
        record.stop_price,
    )  # fmt: skip


def note_outcome(state: S, after: BotOrder, symbol: str) -> S:
    """Count a refusal of these terms, or forget them once the venue took them."""
    if after.status in UNCONFIRMED:  # the venue has not answered yet
        return state
    refused = after.status == REJECTED and after.cum_filled_qty == 0
    if not refused and not state.refusals:
        return state  # nothing to count, nothing to forget (no terms text needed)
    key = terms_key(record_terms(after, symbol))
    refusals = dict(state.refusals)
    if refused:
        before = refusals.pop(key, None)
        refusals[key] = Refusal(count=(before.count if before else 0) + 1)
        while len(refusals) > REFUSALS_KEPT:
            del refusals[next(iter(refusals))]
    elif key in refusals:
        del refusals[key]
    else:
        return state
    return replace(state, refusals=refusals)


def held_back(state: S, terms: OrderTerms) -> tuple[S, bool]:
    """Whether to skip sending these terms now; every skip is counted toward the next retry."""
    if not state.refusals:
        return state, False
    key = terms_key(terms)
    refusal = state.refusals.get(key)
    if refusal is None or refusal.count < REFUSALS_BEFORE_BACKOFF:
        return state, False
    wait = min(2 ** (refusal.count - REFUSALS_BEFORE_BACKOFF), MAX_SKIPPED)
    if refusal.skipped >= wait:
        return state, False  # this attempt goes out; a new refusal starts the next wait
    refusals = dict(state.refusals)
    refusals[key] = Refusal(count=refusal.count, skipped=refusal.skipped + 1)
    return replace(state, refusals=refusals), True
