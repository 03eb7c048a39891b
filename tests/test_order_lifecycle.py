"""The one transition table and the forward-only rule (shared/order_lifecycle.py)."""

from __future__ import annotations

from decimal import Decimal as D
from typing import NamedTuple

import pytest
from hypothesis import given
from hypothesis import strategies as st

from shared.messages import TERMINAL_STATUSES, OrderStatus
from shared.order_lifecycle import (
    TRANSITIONS,
    IllegalTransition,
    check_transition,
    moves_forward,
    status_after,
)

S = OrderStatus


class P(NamedTuple):
    status: OrderStatus
    cum_filled_qty: D


def test_terminal_statuses_never_move() -> None:
    for old in TERMINAL_STATUSES:
        for new in OrderStatus:
            with pytest.raises(IllegalTransition, match=old.value):
                check_transition(old, new)


@pytest.mark.parametrize(
    ("old", "new"),
    [(S.NEW, S.PENDING_SUBMIT), (S.PARTIALLY_FILLED, S.NEW), (S.NEW, S.NEW), (S.NEW, S.UNKNOWN)],
)
def test_backward_moves_are_refused(old: OrderStatus, new: OrderStatus) -> None:
    with pytest.raises(IllegalTransition):
        check_transition(old, new)


def test_the_life_of_a_filled_order_is_legal() -> None:
    path = [S.PENDING_SUBMIT, S.UNKNOWN, S.NEW, S.PARTIALLY_FILLED, S.PARTIALLY_FILLED, S.FILLED]
    for old, new in zip(path, path[1:], strict=False):
        check_transition(old, new)


def test_a_report_with_more_filled_but_an_earlier_status_keeps_the_later_status() -> None:
    known = P(S.PARTIALLY_FILLED, D("0.5"))
    report = P(S.NEW, D("0.7"))
    assert moves_forward(known, report)
    assert status_after(known.status, report.status) is S.PARTIALLY_FILLED


def test_same_quantity_moves_only_to_a_later_status() -> None:
    assert moves_forward(P(S.NEW, D(0)), P(S.CANCELED, D(0)))
    assert not moves_forward(P(S.CANCELED, D(0)), P(S.NEW, D(0)))
    assert not moves_forward(P(S.PARTIALLY_FILLED, D(1)), P(S.PARTIALLY_FILLED, D(1)))
    assert not moves_forward(P(S.PARTIALLY_FILLED, D(1)), P(S.FILLED, D("0.5")))


# The reports a venue sends for one order that fills in three parts, then the same reports
# delivered in any order, any number of times: the order ends as the latest report says.
_LIFE = [
    P(S.NEW, D(0)),
    P(S.PARTIALLY_FILLED, D("0.1")),
    P(S.PARTIALLY_FILLED, D("0.3")),
    P(S.FILLED, D("0.6")),
]


@given(st.lists(st.sampled_from(_LIFE), min_size=1, max_size=12))
def test_any_order_and_repetition_of_reports_ends_at_the_furthest(reports: list[P]) -> None:
    known = P(S.PENDING_SUBMIT, D(0))
    for report in reports:
        if moves_forward(known, report):
            status = status_after(known.status, report.status)
            if status != known.status:
                check_transition(known.status, status)
            known = P(status, report.cum_filled_qty)
    furthest = max(reports, key=_LIFE.index)
    assert known == furthest


def test_the_table_names_every_status() -> None:
    assert set(TRANSITIONS) == set(OrderStatus)
