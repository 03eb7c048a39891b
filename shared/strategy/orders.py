"""One order as a strategy remembers it, and the forward-only rule for order updates.

Order updates carry cumulative filled quantity, quote and fee. The order gateway may deliver
one update twice (user-data stream and polling, or a replay after a crash) or out of order;
an update is applied only when it moves the order forward — more filled, or a later status —
and only the difference to what was already applied counts. Replays are then harmless.
"""

from __future__ import annotations

from decimal import Decimal

import msgspec

from shared.ids import OrderCid
from shared.messages import TERMINAL_STATUSES, OrderStatus, OrderType, OrderUpdate, Side
from shared.money import ZERO
from shared.order_lifecycle import moves_forward, status_after


class BotOrder(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True, gc=False):
    """An order the bot placed and that is not finished yet, as its strategy knows it (kept in
    StrategyState.orders; the order gateway's own record of it is shared/order_record.py's
    OrderRecord). Its field names are those of saved bot states: renaming one loses them."""

    cid: OrderCid
    side: Side
    order_type: OrderType
    tag: str = ""  # the strategy's own label, e.g. "base", "so3", "tp"
    quantity: Decimal | None = None
    quote_quantity: Decimal | None = None
    price: Decimal | None = None
    stop_price: Decimal | None = None
    status: OrderStatus = OrderStatus.PENDING_SUBMIT
    cum_filled_qty: Decimal = ZERO
    cum_quote_qty: Decimal = ZERO
    fee: Decimal = ZERO
    fee_asset: str = ""
    cancel_requested: bool = False
    created: int = 0  # ms, event time when it was placed
    list_cid: str = ""  # the order list it is a leg of (PlaceOrderList), "" for none
    # a leg of an OTO / OTOCO list that starts only once the list's working leg has filled:
    # a pending sell sells what that working buy brings, not the position held now
    pending: bool = False

    @property
    def terminal(self) -> bool:
        return self.status in TERMINAL_STATUSES

    @property
    def remaining(self) -> Decimal | None:
        """Base quantity still to fill, when the order was sized in base."""
        if self.quantity is None:
            return None
        return self.quantity - self.cum_filled_qty

    @property
    def avg_fill_price(self) -> Decimal | None:
        if self.cum_filled_qty <= 0:
            return None
        return self.cum_quote_qty / self.cum_filled_qty


class FillDelta(msgspec.Struct, frozen=True, gc=False):
    """What one applied update added: base and quote traded, fee charged (in fee_asset)."""

    side: Side
    qty: Decimal
    quote: Decimal
    fee: Decimal
    fee_asset: str

    @property
    def price(self) -> Decimal:
        return self.quote / self.qty if self.qty else ZERO


def advance(record: BotOrder, update: OrderUpdate) -> tuple[BotOrder, FillDelta | None] | None:
    """The record after update and the fill it adds, or None when update is stale/duplicate."""
    if not moves_forward(record, update):
        return None
    status = status_after(record.status, update.status)
    # the larger of the two, the update's when equal (as max() picks), without max()'s call
    was_qty, qty = record.cum_filled_qty, update.cum_filled_qty
    qty = was_qty if was_qty > qty else qty
    was_quote, quote = record.cum_quote_qty, update.cum_quote_qty
    quote = was_quote if was_quote > quote else quote
    was_fee, was_asset, fee, fee_asset = record.fee, record.fee_asset, update.fee, update.fee_asset
    same_asset = fee_asset == was_asset or not was_asset or was_fee == ZERO
    fee_before = was_fee if same_asset else ZERO
    if same_asset and fee_before > fee:
        fee = fee_before
    fee_asset = fee_asset or was_asset
    new = msgspec.structs.replace(
        record,
        status=status,
        cum_filled_qty=qty,
        cum_quote_qty=quote,
        fee=fee,
        fee_asset=fee_asset,
    )
    # nothing grew (an ack, a cancel): no fill, and no differences to work out
    if qty <= was_qty and quote <= was_quote and fee <= fee_before:
        return new, None
    return new, FillDelta(record.side, qty - was_qty, quote - was_quote, fee - fee_before, fee_asset)
