"""One order as a venue reports it: what every venue adapter turns its payloads into.

The venue-neutral code — the write-ahead record's report → update rules (shared/order_record.py),
reconciliation, and anything that replays a venue's word, such as the backtester — reads these,
never a venue's payload.
"""

from __future__ import annotations

from decimal import Decimal

from shared.messages import UPDATE_AMOUNTS, OrderState, check_amounts
from shared.money import ZERO


class OrderReport(OrderState, frozen=True, kw_only=True):
    """One order as the venue sees it; quantities and fee are cumulative."""

    fee: Decimal | None = None  # cumulative fee when the venue told it (trades), else None
    last_fill_price: Decimal = ZERO
    last_fill_qty: Decimal = ZERO
    last_fee: Decimal = ZERO  # fee of the last fill alone (stream events)
    trade_id: str = ""  # the venue's id of the trade of last_fill_qty, when it told it

    def __post_init__(self) -> None:
        # A reply with a NaN, negative or absurd amount, or a cid that is not a string, fails
        # inside parse_reply (MalformedReply), not later in the gateway's arithmetic or its
        # user-stream task (a Struct's constructor checks no types).
        for name in ("cid", "symbol", "venue_order_id", "fee_asset", "reason", "trade_id"):
            if not isinstance(getattr(self, name), str):
                raise TypeError(f"{name} must be a string, got {type(getattr(self, name)).__name__}")
        if type(self.venue_ts) is not int:
            raise TypeError(f"venue_ts must be an integer, got {type(self.venue_ts).__name__}")
        check_amounts(self, UPDATE_AMOUNTS, signed=("fee", "last_fee"))
