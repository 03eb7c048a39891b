"""Position, average entry price, fees and realised profit from fills (average-cost method).

`cost` is the quote paid for the base still held, quote fees included, so `avg_price` is the
break-even price before the selling fee. A sale larger than the position (the venue filled
more than the bot held) leaves a negative base at no cost; the next buy covers it first, at a
realised cost, so the average always stays within the prices traded. A buy whose fee is charged in base adds the net base
only; a sell's quote fee lowers what it brought in. Selling takes out cost at the average, and
realised profit is what the sale brought in (net) minus the cost it took out.
"""

from __future__ import annotations

from decimal import Decimal

import msgspec

from shared.filters import SymbolFilters
from shared.messages import BUY
from shared.money import ZERO
from shared.strategy.orders import FillDelta


class Position(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True):
    base: Decimal = ZERO  # net base held by the bot
    cost: Decimal = ZERO  # quote paid for `base`, quote fees included
    realised: Decimal = ZERO  # realised profit in quote, net of fees
    bought: Decimal = ZERO  # base bought in total (gross)
    sold: Decimal = ZERO  # base sold in total (gross)
    fees_quote: Decimal = ZERO
    fees_base: Decimal = ZERO
    fees_other: dict[str, Decimal] = {}  # e.g. {"BNB": ...}

    @property
    def avg_price(self) -> Decimal | None:
        """Average entry price (cost ÷ base), None when flat."""
        if self.base <= 0:
            return None
        return self.cost / self.base

    def fees_in_quote(self, price: Decimal) -> Decimal:
        """Quote and base fees together, base fees valued at price (other assets left out)."""
        return self.fees_quote + self.fees_base * price


def apply_fill(pos: Position, fill: FillDelta, base_asset: str, quote_asset: str) -> Position:
    """The position after fill. A fee with an empty asset is taken to be in quote."""
    asset = fill.fee_asset or quote_asset
    fee_base = fill.fee if asset == base_asset else ZERO
    fee_quote = fill.fee if asset == quote_asset else ZERO
    fees_other = pos.fees_other
    if fill.fee and asset not in (base_asset, quote_asset):
        fees_other = dict(fees_other)
        fees_other[asset] = fees_other.get(asset, ZERO) + fill.fee
    fees_quote, fees_base = pos.fees_quote + fee_quote, pos.fees_base + fee_base
    if fill.side == BUY:
        got = fill.qty - fee_base
        paid = fill.quote + fee_quote
        realised = pos.realised
        if pos.base < ZERO < got:
            # a short (sold more than held: a venue-side oversell) is covered first; that part
            # is a cost realised now, not base held, so the average stays a price it traded at
            covered = min(got, -pos.base)
            realised -= paid * covered / got
            paid -= paid * covered / got
        base = pos.base + got
        return msgspec.structs.replace(
            pos,
            base=base,
            cost=(pos.cost + paid) if base > ZERO else ZERO,
            realised=realised,
            bought=pos.bought + fill.qty,
            fees_quote=fees_quote,
            fees_base=fees_base,
            fees_other=fees_other,
        )
    out = fill.qty + fee_base
    if pos.base <= ZERO:
        cost_out = ZERO
    elif out >= pos.base:
        cost_out = pos.cost
    else:
        cost_out = pos.cost * out / pos.base
    base = pos.base - out
    return msgspec.structs.replace(
        pos,
        base=base,
        cost=pos.cost - cost_out if base > ZERO else ZERO,
        realised=pos.realised + (fill.quote - fee_quote) - cost_out,
        sold=pos.sold + fill.qty,
        fees_quote=fees_quote,
        fees_base=fees_base,
        fees_other=fees_other,
    )


def is_flat(filters: SymbolFilters, pos: Position, price: Decimal) -> bool:
    """The position is back to nothing: less than one step, or less than the venue's minimum
    order (what is left could not be sold). A round trip (cycle) closes here."""
    qty = filters.round_qty(pos.base)
    return qty <= 0 or qty * price < filters.min_notional


def fee_in_quote(fee: Decimal, fee_asset: str, price: Decimal, filters: SymbolFilters) -> Decimal | None:
    """A fill's fee in the quote asset: as is in quote (or no asset), at the fill's price in base,
    None in any other asset (no price for it here)."""
    if not fee or fee_asset in ("", filters.quote_asset):
        return fee
    if fee_asset == filters.base_asset:
        return fee * price
    return None
