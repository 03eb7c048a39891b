"""One order as a venue reports it: what every venue adapter turns its payloads into.

The venue-neutral code — the write-ahead record's report → update rules (shared/order_record.py),
reconciliation, and anything that replays a venue's word, such as the backtester — reads these,
never a venue's payload.
"""

from __future__ import annotations

from decimal import Decimal

import msgspec

from shared.messages import UPDATE_AMOUNTS, OrderState, check_amounts
from shared.money import ZERO


class OrderReport(OrderState, frozen=True, kw_only=True, gc=False):
    """One order as the venue sees it; quantities and fee are cumulative."""

    fee: Decimal | None = None  # cumulative fee when the venue told it (trades), else None
    last_fill_price: Decimal = ZERO
    last_fill_qty: Decimal = ZERO
    last_fee: Decimal = ZERO  # fee of the last fill alone (stream events)
    trade_id: str = ""  # the venue's id of the trade of last_fill_qty, when it told it
    maker: bool | None = None  # whether that trade's order was the maker, when the venue told it

    def __post_init__(self) -> None:
        # A reply with a NaN, negative or absurd amount, or a cid that is not a string, fails
        # inside parse_reply (MalformedReply), not later in the gateway's arithmetic or its
        # user-stream task (a Struct's constructor checks no types).
        if not (
            type(self.cid) is str  # the usual case, checked at once
            and type(self.symbol) is str
            and type(self.venue_order_id) is str
            and type(self.fee_asset) is str
            and type(self.reason) is str
            and type(self.trade_id) is str
        ):
            for name in ("cid", "symbol", "venue_order_id", "fee_asset", "reason", "trade_id"):
                if not isinstance(getattr(self, name), str):
                    raise TypeError(f"{name} must be a string, got {type(getattr(self, name)).__name__}")
        if type(self.venue_ts) is not int:
            raise TypeError(f"venue_ts must be an integer, got {type(self.venue_ts).__name__}")
        check_amounts(self, UPDATE_AMOUNTS, signed=("fee", "last_fee"))


class OrderFees(msgspec.Struct, frozen=True):
    """An order's trades as the venue lists them, in trade order: (quantity, fee) each, fees
    in `asset`. The fee a report may take is that of the trades its filled quantity covers
    (`through`): the list may already hold a fill the report does not, whose fee the next
    report adds itself (its last fee) — the total would count that fee twice."""

    asset: str
    fills: tuple[tuple[Decimal, Decimal], ...]

    @property
    def total(self) -> Decimal:
        return sum((fee for _, fee in self.fills), ZERO)

    def through(self, qty: Decimal) -> Decimal | None:
        """The fees of the first trades that add up to exactly `qty`; None when they do not
        (the list does not reach it yet)."""
        filled, fee = ZERO, ZERO
        for fill_qty, fill_fee in self.fills:
            if filled == qty:
                break
            filled, fee = filled + fill_qty, fee + fill_fee
        return fee if filled == qty else None
