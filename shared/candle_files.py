"""Reading candle files: the Binance kline CSV layout (data.binance.vision, no header, 12 columns,
open time in ms or µs) and the simple `open_time,open,high,low,close,volume` layout with a header
whose open_time is an ISO date or epoch ms.

Values stay strings here; callers turn them into Decimal (live, paper venue) or float arrays
(backtest kernels)."""

from __future__ import annotations

import csv
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import NamedTuple

INTERVAL_MS = {
    "1s": 1_000,
    "1m": 60_000,
    "3m": 180_000,
    "5m": 300_000,
    "15m": 900_000,
    "30m": 1_800_000,
    "1h": 3_600_000,
    "2h": 7_200_000,
    "4h": 14_400_000,
    "6h": 21_600_000,
    "8h": 28_800_000,
    "12h": 43_200_000,
    "1d": 86_400_000,
    "3d": 259_200_000,
    "1w": 604_800_000,
}


class CandleFileError(ValueError):
    pass


class RawCandle(NamedTuple):
    open_time: int  # ms
    open: str
    high: str
    low: str
    close: str
    volume: str


def interval_ms(interval: str) -> int:
    try:
        return INTERVAL_MS[interval]
    except KeyError:
        raise CandleFileError(f"unknown interval {interval!r}; one of {', '.join(INTERVAL_MS)}") from None


def _parse_time(text: str) -> int:
    text = text.strip()
    if text.isdigit():
        value = int(text)
        if value > 10**14:  # microseconds (data.binance.vision since 2025)
            value //= 1000
        elif value < 10**11:  # seconds
            value *= 1000
        return value
    return int(datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp() * 1000)


def read_candles(path: str | Path) -> Iterator[RawCandle]:
    """Yield candles from either layout, in file order; errors name the file and line."""
    path = Path(path)
    with path.open(newline="", encoding="utf-8") as fh:
        reader = csv.reader(fh)
        for line_no, row in enumerate(reader, start=1):
            if not row or (line_no == 1 and not row[0].strip()[:1].isdigit()):
                continue  # blank line or header
            if len(row) < 6:
                raise CandleFileError(
                    f"{path}:{line_no}: {len(row)} column(s), a candle needs 6 "
                    "(open_time,open,high,low,close,volume, or Binance's 12)"
                )
            try:
                yield RawCandle(
                    _parse_time(row[0]),
                    row[1].strip(),
                    row[2].strip(),
                    row[3].strip(),
                    row[4].strip(),
                    row[5].strip(),
                )
            except (IndexError, ValueError) as exc:
                raise CandleFileError(f"{path}:{line_no}: not a candle row ({exc})") from None
