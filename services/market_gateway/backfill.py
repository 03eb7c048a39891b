"""REST kline backfill: which windows to ask for, and which answers are closed candles.

Each request covers a window of at most `limit` intervals with start AND end given, so the
answer does not depend on whether a venue fills a window from its start or from its end
(Binance from the start, Bybit from the end).

Which candle is closed is decided without the venue's clock (the paper venue's REST time is the
wall clock while its market replays another day): a candle is closed when the venue also returned
a newer one, when it opened before `closed_before` (a bound the caller knows, e.g. from the
socket's live candle), or when it lies before `stop` (the caller's closed live candle). The newest
candle of an answer that reaches the present is held back: it may be the one still forming
(Binance and Bybit list it; the paper venue's Binance face does not).
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import msgspec

from services.market_gateway.venue import KlineSource
from shared.messages import Candle


def in_window(rows: list[Candle], first: int, last: int) -> list[Candle]:
    """Rows with first <= open_time <= last, ascending, one per open time."""
    seen: set[int] = set()
    out = []
    for c in sorted(rows, key=lambda c: c.open_time):
        if first <= c.open_time <= last and c.open_time not in seen:
            seen.add(c.open_time)
            out.append(c)
    return out


def closed(c: Candle) -> Candle:
    return c if c.closed else msgspec.structs.replace(c, closed=True)


async def newest_open(rest: KlineSource, symbol: str, interval: str) -> int | None:
    """Open time of the newest candle the venue lists (it may still be forming)."""
    rows = await rest.klines(symbol, interval, None, None, 1)
    return max((c.open_time for c in rows), default=None)


async def closed_pages(
    rest: KlineSource,
    symbol: str,
    interval: str,
    iv_ms: int,
    start_ms: int,
    *,
    stop_ms: int | None = None,
    closed_before: int = 0,
) -> AsyncIterator[list[Candle]]:
    """Closed candles opening at or after start_ms (and before stop_ms), a page at a time, in order.

    With stop_ms: candles before it are closed; the last window reaches one slot past the range
    so the venue's answer itself proves the range's last candle closed. Without stop_ms: up to the
    present, whose newest candle is held back unless closed_before proves it closed."""
    bound = max(closed_before, stop_ms or 0)
    limit = rest.max_limit
    held: Candle | None = None
    first = start_ms
    while stop_ms is None or first < stop_ms:
        last = first + (limit - 1) * iv_ms
        if stop_ms is not None:
            last = min(last, stop_ms)
        rows = in_window(await rest.klines(symbol, interval, first, last, limit), first, last)
        page = []
        for row in rows:
            if held is not None:
                page.append(closed(held))  # a newer candle exists: this one closed
            held = row
        if held is not None and stop_ms is not None and held.open_time >= stop_ms:
            held = None  # only the proof, outside the range
        if held is not None and held.open_time < bound:
            page.append(closed(held))
            held = None
        if page:
            yield page
        reached_present = not rows or rows[-1].open_time < last
        if stop_ms is None and reached_present and bound <= last:
            return
        first = last + iv_ms
