"""The life of an order, once for every party: the statuses, the one transition table, and the
forward-only rule that applies a report of an order to what is known of it.

Every party that keeps an order — the order gateway's write-ahead record, a strategy's view of
its orders, the paper venue and the backtester's matching engine — moves it with these rules,
so a new order type or status is taught here once. Reports carry cumulative quantities: one
may arrive twice, late or out of order (user stream, polling, reconciliation, a replay after a
crash); it is applied only when it moves the order forward — more filled, or a later status —
so replays are harmless (ARCHITECTURE.md, exactly-once rule 6).

PENDING_SUBMIT is the gateway's own state (written before anything is sent) and UNKNOWN the
gateway's "sent, outcome not known yet"; a venue never reports either.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Protocol

from shared.messages import TERMINAL_STATUSES, OrderStatus

S = OrderStatus

OPEN_STATUSES = frozenset({S.NEW, S.PARTIALLY_FILLED})
UNCONFIRMED = frozenset({S.PENDING_SUBMIT, S.UNKNOWN})  # the gateway's: not yet heard from the venue

# The reason the order gateway gives a place it refuses because the venue banned it (HTTP 418,
# Bybit 403): nothing about the order's terms, so a bot does not count it against them.
HALTED = "trading halted on "


def halted_refusal(reason: str) -> bool:
    """Whether a REJECTED update's reason is a venue halt's, not a refusal of the order's terms."""
    return reason.startswith(HALTED)


_AFTER_ACCEPT = frozenset({S.PARTIALLY_FILLED, S.FILLED, S.CANCELED, S.EXPIRED})

# Every legal move. A status moves to itself only with more filled (PARTIALLY_FILLED again);
# a terminal status never moves. Anything else is refused.
TRANSITIONS: dict[OrderStatus, frozenset[OrderStatus]] = {
    S.PENDING_SUBMIT: frozenset({S.UNKNOWN, S.NEW, S.REJECTED}) | _AFTER_ACCEPT,
    S.UNKNOWN: frozenset({S.PENDING_SUBMIT, S.NEW, S.REJECTED}) | _AFTER_ACCEPT,
    S.NEW: _AFTER_ACCEPT | {S.REJECTED},  # Bybit may reject an order it acknowledged
    S.PARTIALLY_FILLED: _AFTER_ACCEPT,
    S.FILLED: frozenset(),
    S.CANCELED: frozenset(),
    S.EXPIRED: frozenset(),
    S.REJECTED: frozenset(),
}
assert set(TRANSITIONS) == set(OrderStatus) and all(not TRANSITIONS[t] for t in TERMINAL_STATUSES)


class IllegalTransition(ValueError):
    """A move the table does not allow: a bug in whoever made it (the venue stops on it)."""


class HasProgress(Protocol):
    """What the rules read of an order or of a report of one (records, reports, updates)."""

    @property
    def status(self) -> OrderStatus: ...

    @property
    def cum_filled_qty(self) -> Decimal: ...


def is_terminal(status: OrderStatus) -> bool:
    return status in TERMINAL_STATUSES


def can_move(old: OrderStatus, new: OrderStatus) -> bool:
    return new in TRANSITIONS[old]


def check_transition(old: OrderStatus, new: OrderStatus) -> None:
    """Refuse an illegal move (IllegalTransition), for a party that makes moves itself."""
    if new not in TRANSITIONS[old]:
        raise IllegalTransition(f"order status {old.value} cannot become {new.value}")


def moves_forward(known: HasProgress, report: HasProgress) -> bool:
    """True when `report` says more than `known`: more filled, or, at the same quantity, a
    status the table allows after the known one. A terminal order never moves again."""
    if known.status in TERMINAL_STATUSES:
        return False
    if report.cum_filled_qty != known.cum_filled_qty:
        return report.cum_filled_qty > known.cum_filled_qty
    return report.status != known.status and report.status in TRANSITIONS[known.status]


def status_after(old: OrderStatus, reported: OrderStatus) -> OrderStatus:
    """The status once a report that moves forward is applied: the reported one when the table
    allows it, else the old one (a report that grew the fills but names an earlier status, as
    NEW after PARTIALLY_FILLED, keeps the later status)."""
    return reported if reported in TRANSITIONS[old] else old
