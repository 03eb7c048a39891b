"""The synthetic order book around the last price: what a taker meets, level by level.

Best bid = last price on the tick, best ask `spread_ticks` above; levels `level_gap_bps`
apart, growing by a quarter of `level_qty` per level. Pure functions of the symbol and its
quote, so the book is the same for everyone at a given price (it is never depleted).
"""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal

from shared.matching.model import MAX_BOOK_LEVELS, Quote, Side
from shared.matching.symbols import SymbolSpec
from shared.messages import BUY
from shared.money import round_down

Fill = tuple[Decimal, Decimal]  # (price, quantity)


def make_quote(spec: SymbolSpec, price: Decimal, ref_price: Decimal | None) -> Quote:
    tick = spec.filters.tick_size
    last = round_down(price, tick)
    return Quote(
        price=last,
        bid=last,
        ask=last + tick * spec.spread_ticks,
        bid_qty=spec.level_qty,
        ask_qty=spec.level_qty,
        ref_price=ref_price if ref_price and ref_price > 0 else last,
    )


def levels(spec: SymbolSpec, quote: Quote, taker_side: Side, count: int = MAX_BOOK_LEVELS) -> Iterator[Fill]:
    """Levels a taker on `taker_side` meets: asks upward for a buy, bids downward for a sell."""
    tick, step = spec.filters.tick_size, spec.filters.step_size
    gap = max(tick, round_down(quote.price * spec.level_gap_bps / Decimal(10000), tick))
    for i in range(count):
        if taker_side is BUY:
            price = quote.ask + gap * i
        else:
            price = quote.bid - gap * i
            if price <= 0:
                return
        yield price, round_down(spec.level_qty * (1 + Decimal(i) / 4), step)


def plan(
    spec: SymbolSpec,
    quote: Quote,
    side: Side,
    *,
    qty: Decimal | None = None,
    quote_qty: Decimal | None = None,
    limit_price: Decimal | None = None,
) -> list[Fill]:
    """Fills a taker would get, up to qty (or spending up to quote_qty) and no worse than limit_price."""
    step = spec.filters.step_size
    fills: list[Fill] = []
    left_qty, left_quote = qty, quote_qty
    for price, level_qty in levels(spec, quote, side):
        if limit_price is not None and (price > limit_price if side is BUY else price < limit_price):
            break
        take = level_qty
        if left_qty is not None:
            take = min(take, left_qty)
        if left_quote is not None:
            take = min(take, round_down(left_quote / price, step))
        if take <= 0:
            break
        fills.append((price, take))
        if left_qty is not None:
            left_qty -= take
            if left_qty <= 0:
                break
        if left_quote is not None:
            left_quote -= take * price
    return fills
