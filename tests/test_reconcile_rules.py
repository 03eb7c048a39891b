"""Reconciliation's decisions (services/order_gateway/reconcile_rules.py) and the tracker's pure
transaction body (`advance`), tested directly: no venue, no Redis, only what was read in and
what to do out. The I/O around them is proven by the gateway and CLI tests."""

from __future__ import annotations

from decimal import Decimal

import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from services.order_gateway.reconcile_rules import (
    GRACE_MS,
    LOST_AFTER_MS,
    LOST_REASON,
    NOT_FOUND,
    Action,
    LostWatch,
    NoAnswer,
    adoptions,
    judge,
    latest_reports,
    lost,
    outcome,
    resend_wait_ms,
)
from shared.messages import OrderStatus, OrderType, PlaceOrder, Side
from shared.order_record import FeesNeeded, OrderRecord, advance_record, new_record
from shared.order_report import OrderFees, OrderReport

D = Decimal
QTY = D("1")
PRICE = D("100")
WINDOW = 5000
ENDS = (None, OrderStatus.CANCELED, OrderStatus.EXPIRED)  # None: filled whole, or still open


def record(
    status: OrderStatus = OrderStatus.PENDING_SUBMIT, sent_ts: int = 0, cid: str = "b1-000001"
) -> OrderRecord:
    cmd = PlaceOrder(cid=cid, bot="b1", venue="sim", symbol="BTCUSDT", side=Side.BUY,
                     order_type=OrderType.LIMIT, quantity=QTY, price=PRICE)  # fmt: skip
    return msgspec.structs.replace(new_record(cmd, 1), status=status, sent_ts=sent_ts)


def report(status: OrderStatus, filled: Decimal = D(0), *, cid: str = "b1-000001", **more) -> OrderReport:
    return OrderReport(cid=cid, symbol="BTCUSDT", status=status, venue_order_id="7", side=Side.BUY,
                       order_type=OrderType.LIMIT, price=PRICE, orig_qty=QTY, cum_filled_qty=filled,
                       cum_quote_qty=filled * PRICE, **more)  # fmt: skip


@st.composite
def histories(draw) -> list[OrderReport]:
    """The reports one order's life gives, in the order it lived them: accepted, filled in
    steps (each with the cumulative fee), then filled whole, cancelled, expired or still open."""
    steps = draw(st.lists(st.integers(1, 40), max_size=6))
    fills = sorted({min(QTY, D(sum(steps[: i + 1])) / 100) for i in range(len(steps))})
    out = [report(OrderStatus.NEW, fee=D(0), fee_asset="BTC", venue_ts=1)]
    for filled in fills:
        status = OrderStatus.FILLED if filled == QTY else OrderStatus.PARTIALLY_FILLED
        last = out[-1]
        out.append(report(status, filled, fee=filled / 1000, fee_asset="BTC", venue_ts=last.venue_ts + 1,
                          last_fill_qty=filled - last.cum_filled_qty))  # fmt: skip
    end = draw(st.sampled_from(ENDS))
    if out[-1].status is not OrderStatus.FILLED and end is not None:
        last = out[-1]
        out.append(msgspec.structs.replace(last, status=end, venue_ts=last.venue_ts + 1, last_fill_qty=D(0)))
    return out


@st.composite
def seen(draw, history: list[OrderReport]) -> list[OrderReport]:
    """What the venue's answers may show of that life: any of its reports, any number of times,
    in any order, the latest among them."""
    extra = draw(st.lists(st.sampled_from(history), max_size=12))
    return draw(st.permutations([history[-1], *extra]))


@settings(max_examples=300, deadline=None)
@given(st.data())
def test_any_order_and_duplication_of_reports_gives_the_same_final_record(data):
    history = data.draw(histories())
    reports = data.draw(seen(history))
    start = record()
    folded = start
    for r in reports:
        folded = advance_record(folded, r, None, now_ms=9) or folded
    assert folded == advance_record(start, history[-1], None, now_ms=9)
    assert folded.status is history[-1].status and folded.cum_filled_qty == history[-1].cum_filled_qty
    assert latest_reports(reports) == {start.cid: history[-1]}


def test_a_report_after_missed_fills_needs_the_venues_fees_first():
    """A stream event whose last fill is not the whole growth: its fee cannot be added up; the
    body says so instead of asking the venue (no I/O inside the transaction)."""
    now = record(OrderStatus.NEW)
    jump = report(OrderStatus.PARTIALLY_FILLED, D("0.5"), last_fill_qty=D("0.2"), last_fee=D("0.0002"))
    with pytest.raises(FeesNeeded) as raised:
        advance_record(now, jump, None, now_ms=2)
    assert raised.value.venue_order_id == "7"
    listed = OrderFees("BNB", ((D("0.3"), D("0.0003")), (D("0.2"), D("0.0002"))))
    after = advance_record(now, jump, listed, now_ms=2)
    assert after is not None and (after.fee, after.fee_asset, after.cum_filled_qty) == (
        D("0.0005"),
        "BNB",
        D("0.5"),
    )
    step = report(OrderStatus.PARTIALLY_FILLED, D("0.2"), last_fill_qty=D("0.2"), last_fee=D("0.0002"))
    assert advance_record(now, step, None, now_ms=2).fee == D("0.0002")  # one fill: its own fee adds up
    assert advance_record(after, jump, None, now_ms=3) is None  # stale: nothing asked, nothing written


def test_the_fee_taken_is_that_of_the_trades_the_report_covers():
    """The trade list already holds a fill the report does not (it happened while the list was
    asked for): its fee is left to its own report, which adds it as its last fee. Taking the
    list's total would count that fee twice."""
    now = record(OrderStatus.NEW)
    jump = report(OrderStatus.PARTIALLY_FILLED, D("0.5"), last_fill_qty=D("0.2"), last_fee=D("0.0002"))
    ahead = OrderFees("BNB", ((D("0.3"), D("0.0003")), (D("0.2"), D("0.0002")), (D("0.1"), D("0.0001"))))
    after = advance_record(now, jump, ahead, now_ms=2)
    assert after is not None and after.fee == D("0.0005")
    then = report(OrderStatus.PARTIALLY_FILLED, D("0.6"), last_fill_qty=D("0.1"), last_fee=D("0.0001"))
    final = advance_record(after, then, None, now_ms=3)
    assert final is not None and final.fee == ahead.total == D("0.0006")


def test_a_trade_list_short_of_the_report_is_asked_again_then_taken_as_it_is():
    now = record(OrderStatus.NEW)
    jump = report(OrderStatus.PARTIALLY_FILLED, D("0.5"), last_fill_qty=D("0.2"), last_fee=D("0.0002"))
    behind = OrderFees("BNB", ((D("0.3"), D("0.0003")),))
    with pytest.raises(FeesNeeded):
        advance_record(now, jump, behind, now_ms=2, last_try=False)
    last = advance_record(now, jump, behind, now_ms=2, last_try=True)
    assert last is not None and last.fee == D("0.0003")


@given(
    status=st.sampled_from([OrderStatus.PENDING_SUBMIT, OrderStatus.UNKNOWN]),
    sent_ts=st.integers(0, 10**13),
    now=st.integers(0, 10**13),
    window=st.integers(0, 60_000),
)
def test_an_order_the_venue_does_not_know_is_resent_only_once_its_first_request_cannot_arrive(
    status, sent_ts, now, window
):
    rec = record(status, sent_ts)
    verdict = judge(rec, NOT_FOUND, now, window)
    if sent_ts and now < sent_ts + window + GRACE_MS:
        assert verdict.action is Action.WAIT and verdict.wait_ms == sent_ts + window + GRACE_MS - now
        # after the wait it is decided: a second "not found" resends, never waits again
        assert judge(rec, NOT_FOUND, now + verdict.wait_ms, window).action is Action.RESEND
    else:
        assert verdict.action is Action.RESEND and resend_wait_ms(rec, now, window) == 0


@pytest.mark.parametrize("status", [OrderStatus.NEW, OrderStatus.PARTIALLY_FILLED])
def test_an_open_order_the_venue_does_not_know_is_never_resent(status):
    verdict = judge(record(status, sent_ts=1), NOT_FOUND, 10**13, WINDOW)
    assert (verdict.action, verdict.reason) == (Action.UNRESOLVED, "open in Redis but unknown to the venue")


@pytest.mark.parametrize("status", list(OrderStatus))
def test_a_report_is_applied_and_no_answer_leaves_the_record_unresolved(status):
    seen_at_venue = report(OrderStatus.FILLED, QTY)
    assert judge(record(status), seen_at_venue, 0, WINDOW).report is seen_at_venue
    assert judge(record(status), seen_at_venue, 0, WINDOW).action is Action.APPLY
    verdict = judge(record(status, sent_ts=1), NoAnswer("OutcomeUnknown: timeout"), 2, WINDOW)
    assert (verdict.action, verdict.reason) == (Action.UNRESOLVED, "OutcomeUnknown: timeout")


def test_the_summary_counts_what_reconciliation_moved():
    before = record(OrderStatus.NEW)
    filled = advance_record(before, report(OrderStatus.FILLED, QTY, fee=D("0.001")), None, now_ms=2)
    cancelled = advance_record(before, report(OrderStatus.CANCELED), None, now_ms=2)
    acked = advance_record(record(), report(OrderStatus.NEW), None, now_ms=2)
    assert [outcome(before, filled), outcome(before, cancelled), outcome(record(), acked), outcome(before, None)] == [
        "filled_while_down", "closed_while_down", "", "",
    ]  # fmt: skip


def test_a_bots_orders_without_a_record_are_adopted_and_open_foreign_ones_counted():
    listed = [
        report(OrderStatus.NEW, cid="b1-000003"),
        report(OrderStatus.FILLED, QTY, cid="b1-000002"),
        report(OrderStatus.NEW, cid="b1-000001"),  # recorded: left to the record's own check
        report(OrderStatus.NEW, cid="web_x1"),  # foreign, open
        report(OrderStatus.FILLED, QTY, cid="web_x2"),  # foreign, done: not even counted
        report(OrderStatus.FILLED, QTY, cid="b1-000003"),  # the same order, later, in another list
    ]
    found = adoptions(latest_reports(listed), {"b1-000001"})
    assert [(r.cid, r.status) for r in found.adopt] == [
        ("b1-000002", OrderStatus.FILLED), ("b1-000003", OrderStatus.FILLED),
    ]  # fmt: skip
    assert found.foreign == 1


def test_an_acknowledged_order_is_lost_after_three_unknown_answers_over_a_minute() -> None:
    watch, held = LostWatch(), record(OrderStatus.NEW)
    assert not watch.unknown(held, 0)
    assert not watch.unknown(held, 30_000)
    assert not watch.unknown(held, LOST_AFTER_MS - 1)  # three answers, not yet a minute
    assert watch.unknown(held, LOST_AFTER_MS)
    watch.known(held.cid)  # the venue answered with it once: the count starts again
    assert not watch.unknown(held, 2 * LOST_AFTER_MS)
    assert not watch.unknown(held, 3 * LOST_AFTER_MS)
    assert watch.unknown(held, 4 * LOST_AFTER_MS)
    watch.keep(set())  # no longer open in the log: forgotten
    assert not watch.unknown(held, 5 * LOST_AFTER_MS)


def test_an_order_whose_outcome_is_unknown_is_never_lost() -> None:
    """It may still reach the venue (judge resends it once it no longer can): never closed."""
    watch = LostWatch()
    for status in (OrderStatus.PENDING_SUBMIT, OrderStatus.UNKNOWN):
        assert not any(watch.unknown(record(status), t * LOST_AFTER_MS) for t in range(10))


def test_a_lost_order_keeps_its_fills_and_says_why() -> None:
    part = advance_record(
        record(OrderStatus.NEW), report(OrderStatus.PARTIALLY_FILLED, D("0.4"), fee=D(0)), None, 5
    )
    assert part is not None
    closed = lost(part, 9)
    assert (closed.status, closed.cum_filled_qty, closed.reason, closed.updated_ts) == (
        OrderStatus.CANCELED, D("0.4"), LOST_REASON, 9,
    )  # fmt: skip
