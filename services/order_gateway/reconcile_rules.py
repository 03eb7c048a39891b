"""Reconciliation's decisions, pure: from the log's records and what the venue says, what to do.

No I/O here (reconcile.py asks the venue, writes the log and publishes): each function takes
what was read and returns the decision, so the rules are tested directly (tests/test_reconcile_rules.py).

- One record and the venue's answer about its cid (`judge`): a report is applied (forward
  only, by the tracker); "not found" for an order whose outcome is unknown means waiting out
  the first request's recvWindow, then resending (only then can the venue no longer take the
  first request, so it can never take both); "not found" for an order the log holds open, or
  no answer at all, leaves it unresolved.
- An order the venue acknowledged and no longer knows (`LostWatch`, `lost`): "unknown order"
  for an order the venue took means it is gone there (Binance's Spot Testnet wipes every order
  about once a month; an exchange forgets old unfilled orders). Held open, its bot would wait
  for it forever; so once the venue has said so LOST_AFTER times in a row over at least
  LOST_AFTER_MS, the order is closed CANCELED with the reason, its fills so far standing. An
  order whose outcome is unknown is never "lost": it may still reach the venue (`judge`).
- The venue's order lists (`latest_reports`, `adoptions`): one report per cid, the furthest
  along whatever order or how many times the lists gave it; a bot's order without a record is
  adopted, an open foreign order only counted.
"""

from __future__ import annotations

import enum
from collections.abc import Container, Iterable

import msgspec

from shared.ids import bot_of
from shared.messages import OrderStatus
from shared.order_lifecycle import OPEN_STATUSES, UNCONFIRMED, moves_forward
from shared.order_record import OrderRecord
from shared.order_report import OrderReport

GRACE_MS = 1000  # on top of recvWindow: clocks and the network are not exact
LOST_AFTER = 3  # "unknown order" answers in a row about an acknowledged open order ...
LOST_AFTER_MS = 60_000  # ... spread over at least this long: one glitch never closes an order
LOST_REASON = "lost: the venue no longer knows this order (was the venue reset?)"


class NotFound(msgspec.Struct, frozen=True):
    """The venue does not know the cid."""


class NoAnswer(msgspec.Struct, frozen=True):
    """The venue could not be asked (still failing after the retries)."""

    reason: str


NOT_FOUND = NotFound()
Answer = OrderReport | NotFound | NoAnswer


class Action(enum.Enum):
    APPLY = "apply"  # the venue's report, through the tracker (forward only)
    WAIT = "wait"  # the first request may still arrive: ask again after wait_ms
    RESEND = "resend"  # never reached the venue and now never can: send again, same cid
    UNRESOLVED = "unresolved"  # nothing can be done now: logged, counted, tried again later


class Verdict(msgspec.Struct, frozen=True):
    action: Action
    report: OrderReport | None = None
    wait_ms: int = 0
    reason: str = ""


def resend_wait_ms(record: OrderRecord, now_ms: int, recv_window_ms: int) -> int:
    """How much longer the venue could still accept the record's last send (0: it no longer can)."""
    if not record.sent_ts:
        return 0
    return max(0, record.sent_ts + recv_window_ms + GRACE_MS - now_ms)


def judge(record: OrderRecord, answer: Answer, now_ms: int, recv_window_ms: int) -> Verdict:
    """What to do with an unfinished record, given the venue's answer about its cid."""
    if isinstance(answer, OrderReport):
        return Verdict(Action.APPLY, report=answer)
    if isinstance(answer, NoAnswer):
        return Verdict(Action.UNRESOLVED, reason=answer.reason)
    if record.status not in UNCONFIRMED:
        return Verdict(Action.UNRESOLVED, reason="open in Redis but unknown to the venue")
    wait = resend_wait_ms(record, now_ms, recv_window_ms)
    if wait > 0:
        return Verdict(Action.WAIT, wait_ms=wait)
    return Verdict(Action.RESEND)


def outcome(before: OrderRecord, after: OrderRecord | None) -> str:
    """How a record that reconciliation moved counts in its summary ("" when it did not move)."""
    if after is None:
        return ""
    if after.cum_filled_qty > before.cum_filled_qty:
        return "filled_while_down"
    if after.terminal:
        return "closed_while_down"
    return ""


def latest_reports(reports: Iterable[OrderReport]) -> dict[str, OrderReport]:
    """One report per cid: the one no other moves forward from, as a record would end up."""
    latest: dict[str, OrderReport] = {}
    for report in reports:
        held = latest.get(report.cid)
        if held is None or moves_forward(held, report):
            latest[report.cid] = report
    return latest


class Adoptions(msgspec.Struct, frozen=True):
    adopt: tuple[OrderReport, ...]  # a bot's orders the log has no record of
    foreign: int  # open orders of no bot's prefix: reported, never touched


def adoptions(latest: dict[str, OrderReport], recorded: Container[str]) -> Adoptions:
    """What to adopt and how many foreign orders are open, from the venue's latest reports and
    the cids the log has a record of."""
    adopt, foreign = [], 0
    for cid in sorted(latest):
        report = latest[cid]
        if bot_of(cid) is None:
            foreign += report.status in OPEN_STATUSES
        elif cid not in recorded:
            adopt.append(report)
    return Adoptions(tuple(adopt), foreign)


class LostWatch:
    """Which acknowledged open orders the venue has said it does not know, since when and how
    often in a row (in memory: a restart only starts the count again, never closes sooner)."""

    def __init__(self) -> None:
        self._unknown: dict[str, tuple[int, int]] = {}  # cid -> (first answer ms, answers)

    def unknown(self, record: OrderRecord, now_ms: int) -> bool:
        """Note one "unknown order" answer about the record; whether it is now lost."""
        if record.status not in OPEN_STATUSES:
            return False  # PENDING_SUBMIT / UNKNOWN: may still reach the venue (judge resends)
        first, answers = self._unknown.get(record.cid, (now_ms, 0))
        self._unknown[record.cid] = (first, answers + 1)
        return answers + 1 >= LOST_AFTER and now_ms - first >= LOST_AFTER_MS

    def known(self, cid: str) -> None:
        """The venue answered with the order: the count starts again."""
        self._unknown.pop(cid, None)

    def keep(self, cids: Container[str]) -> None:
        """Forget the orders no longer open in the log."""
        self._unknown = {c: v for c, v in self._unknown.items() if c in cids}


def lost(record: OrderRecord, now_ms: int) -> OrderRecord:
    """The record closed as lost: CANCELED with the reason, what it filled kept."""
    return msgspec.structs.replace(record, status=OrderStatus.CANCELED, reason=LOST_REASON, updated_ts=now_ms)
