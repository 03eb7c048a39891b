"""The market of the power-cut test: a candle file the paper venue replays in step mode.

Flat history, then V-shaped swings (3 flat candles at the peak, 8 down 50 USDT each, a trough,
8 up) whose peaks and troughs rise by 1 USDT per swing. Each swing fills DCA safety orders and
grid buys on the way down and take profits and grid sells on the way up; its trough is a new,
higher bullish fractal on 1-minute bars (strictly below the two candles on each side), so the
fractal bot moves its stop up two candles later; the price never comes back to a stop.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

from shared.candle_files import RawCandle

ORIGIN_MS = 1_704_067_200_000  # 2024-01-01 00:00 UTC: the file's first candle
MINUTE = 60_000
WARMUP = 500  # flat candles of history (the venue's SIM_WARMUP, the market gateway's warmup)


@dataclass(frozen=True)
class Swings:
    peak: Decimal = Decimal(42100)  # first peak: inside the grid's 41,400-42,600
    depth: Decimal = Decimal(400)  # peak to trough: ~1 %, four grid levels, 3-4 DCA safety orders
    legs: int = 8  # candles down (trough included) and up
    flats: int = 3  # flat candles at each peak
    rise: Decimal = Decimal(1)  # each swing's peak and trough above the last: the stop only moves up
    volume: Decimal = Decimal(20)  # BTC a candle: every order fills whole


def swing_rows(count: int, sw: Swings = Swings()) -> tuple[list[RawCandle], list[int]]:
    """WARMUP flat candles, then `count` swings; also the live index of each swing's fractal
    confirmation (trough + 2: the candle after which the fractal bot moves its stop)."""
    rows: list[RawCandle] = []
    confirms: list[int] = []

    def add(o: Decimal, h: Decimal, lo: Decimal, c: Decimal) -> None:
        t = ORIGIN_MS + len(rows) * MINUTE
        rows.append(RawCandle(t, str(o), str(h), str(lo), str(c), str(sw.volume)))

    for _ in range(WARMUP):
        add(sw.peak, sw.peak, sw.peak, sw.peak)
    step = sw.depth / sw.legs
    for n in range(count):
        peak = sw.peak + n * sw.rise
        trough = peak - sw.depth
        for _ in range(sw.flats):
            add(peak, peak, peak, peak)
        for k in range(1, sw.legs):  # down: open = high, low = close
            add(peak - (k - 1) * step, peak - (k - 1) * step, peak - k * step, peak - k * step)
        add(trough + step, trough + step, trough, trough + step / 2)  # strictly below its neighbours
        confirms.append(len(rows) - WARMUP + 1)  # the trough is live candle len(rows) - WARMUP - 1
        low, up = trough + step / 2, (peak + sw.rise - trough - step / 2) / sw.legs
        for k in range(sw.legs):  # up: open = low, high = close
            add(low + k * up, low + (k + 1) * up, low + k * up, low + (k + 1) * up)
    for _ in range(50):  # never run past the file into the venue's random walk
        add(*[sw.peak + count * sw.rise] * 4)
    return rows, confirms


def write_rows(path: Path, rows: list[RawCandle]) -> Path:
    lines = ["open_time,open,high,low,close,volume"] + [",".join(map(str, r)) for r in rows]
    path.write_text("\n".join(lines) + "\n")
    return path
