"""What the ledger's readers return and take, without SQLAlchemy: a process that only shows
them (the web dashboard, until a page asks for history) does not load it (~12 MB)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Literal

Period = Literal["daily", "weekly", "monthly"]
DEFAULT_BUCKETS: dict[str, int] = {"daily": 7, "weekly": 8, "monthly": 6}  # as Freqtrade's
MAX_BUCKETS = 1000


@dataclass(frozen=True)
class Trade:
    """One fill as the ledger has it."""

    time: datetime
    venue: str
    symbol: str
    bot: str
    side: str
    price: Decimal
    qty: Decimal
    quote_qty: Decimal
    fee: Decimal
    fee_asset: str
    fee_in_quote: Decimal | None
    is_maker: bool | None
    cid: str
    trade_id: str | None
