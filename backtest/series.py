"""Candles as numpy arrays of exact scaled integers.

Prices are kept as int64 counts of 10**-scale (scale = the most decimals in the file), so the
fast path compares them with order prices exactly — no float rounding can make it skip a
candle that fills an order — and a candle's Decimal prices are rebuilt without loss.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import ROUND_CEILING, ROUND_FLOOR, Decimal
from pathlib import Path

import numpy as np

from shared.candle_files import INTERVAL_MS, RawCandle, read_candles
from shared.messages import Candle

MAX_SCALE = 12
INT64_MAX = np.iinfo(np.int64).max


class SeriesError(ValueError):
    pass


def _decimals(text: str) -> int:
    _, dot, frac = text.partition(".")
    return len(frac.rstrip("0")) if dot else 0


def _scaled(text: str, scale: int) -> int:
    whole, _, frac = text.strip().partition(".")
    frac = frac.rstrip("0")
    sign = -1 if whole.startswith("-") else 1
    return int(whole or "0") * 10**scale + sign * int((frac + "0" * scale)[:scale] or "0")


def _not_a_number(rows: list[RawCandle]) -> SeriesError:
    """Which candle and column hold a value that is no number (looked for only once one failed,
    so a good file costs nothing more)."""
    for i, r in enumerate(rows):
        for field in (*_PRICE_FIELDS, "volume"):
            text = getattr(r, field)
            try:
                ok = Decimal(text or "0").is_finite()
            except ArithmeticError:
                ok = False
            if not ok:
                return SeriesError(f"candle {i + 1} ({iso(r.open_time)}): {field} {text!r} is not a number")
    return SeriesError("a price or volume is not a number")


def interval_name(ms: int) -> str:
    for name, value in INTERVAL_MS.items():
        if value == ms:
            return name
    raise SeriesError(f"candles {ms} ms apart match no known interval")


@dataclass(frozen=True, eq=False)
class CandleSeries:
    open_time: np.ndarray  # int64 ms
    open: np.ndarray  # int64, price × 10**scale
    high: np.ndarray
    low: np.ndarray
    close: np.ndarray
    volume: np.ndarray  # float64 (never used for money)
    scale: int
    interval_ms: int

    def __len__(self) -> int:
        return len(self.open_time)

    @property
    def interval(self) -> str:
        return interval_name(self.interval_ms)

    # --- exact conversions ---------------------------------------------------------------

    def price(self, value: int) -> Decimal:
        """The Decimal of one scaled price."""
        return Decimal(int(value)).scaleb(-self.scale)

    def floor_int(self, price: Decimal) -> int:
        """Largest scaled integer <= price (a 'low <= price' test in integers)."""
        return int(price.scaleb(self.scale).to_integral_value(rounding=ROUND_FLOOR))

    def ceil_int(self, price: Decimal) -> int:
        """Smallest scaled integer >= price (a 'high >= price' test in integers)."""
        return int(price.scaleb(self.scale).to_integral_value(rounding=ROUND_CEILING))

    def floats(self, values: np.ndarray) -> np.ndarray:
        """Scaled integers as floats, for charts and equity curves only."""
        return values.astype(np.float64) / float(10**self.scale)

    def candle(self, i: int, venue: str, symbol: str, interval: str) -> Candle:
        t = int(self.open_time[i])
        return Candle(
            venue=venue,
            symbol=symbol,
            interval=interval,
            open_time=t,
            close_time=t + self.interval_ms - 1,
            open=self.price(self.open[i]),
            high=self.price(self.high[i]),
            low=self.price(self.low[i]),
            close=self.price(self.close[i]),
            volume=self.volume_of(i),
        )

    def volume_of(self, i: int) -> Decimal:
        """Candle i's volume as the file wrote it (a float's shortest repr gives its digits back)."""
        return Decimal(repr(float(self.volume[i])))

    def closes_volumes(self, start: int, end: int) -> list[tuple[Decimal, Decimal]]:
        """(close, volume) of candles [start, end), as price() and volume_of() give them: the
        arrays are read once, not element by element."""
        exp = -self.scale  # price() inline: the ints are Python ints already
        closes, volumes = self.close[start:end].tolist(), self.volume[start:end].tolist()
        return [(Decimal(c).scaleb(exp), Decimal(repr(v))) for c, v in zip(closes, volumes, strict=True)]

    # --- building ------------------------------------------------------------------------

    def between(self, start_ms: int | None = None, end_ms: int | None = None) -> CandleSeries:
        """Candles with start <= open_time < end."""
        lo = 0 if start_ms is None else int(np.searchsorted(self.open_time, start_ms, side="left"))
        hi = len(self) if end_ms is None else int(np.searchsorted(self.open_time, end_ms, side="left"))
        return CandleSeries(
            self.open_time[lo:hi],
            self.open[lo:hi],
            self.high[lo:hi],
            self.low[lo:hi],
            self.close[lo:hi],
            self.volume[lo:hi],
            self.scale,
            self.interval_ms,
        )

    @classmethod
    def from_raw(cls, rows: Iterable[RawCandle], interval_ms: int | None = None) -> CandleSeries:
        rows = list(rows)
        if len(rows) < 1:
            raise SeriesError("no candles")
        scale = max(_decimals(text) for r in rows for text in (r.open, r.high, r.low, r.close))
        if scale > MAX_SCALE:
            raise SeriesError(f"prices with {scale} decimals: at most {MAX_SCALE} supported")
        try:
            cols = [
                np.array([_scaled(getattr(r, f), scale) for r in rows], dtype=np.int64) for f in _PRICE_FIELDS
            ]
            vol = np.array([float(r.volume or 0) for r in rows], dtype=np.float64)
        except ValueError:
            raise _not_a_number(rows) from None
        times = np.array([r.open_time for r in rows], dtype=np.int64)
        if np.any(np.diff(times) <= 0):
            raise SeriesError("candle open times must increase")
        if interval_ms is None:
            interval_ms = int(np.min(np.diff(times))) if len(rows) > 1 else 60_000
        series = cls(times, *cols, vol, scale, interval_ms)
        series.check()
        return series

    @classmethod
    def from_csv(cls, path: str | Path, interval_ms: int | None = None) -> CandleSeries:
        return cls.from_raw(read_candles(path), interval_ms)

    @classmethod
    def from_ints(
        cls,
        open_: np.ndarray,
        high: np.ndarray,
        low: np.ndarray,
        close: np.ndarray,
        *,
        scale: int,
        start_ms: int = 0,
        interval_ms: int = 60_000,
    ) -> CandleSeries:
        n = len(open_)
        times = start_ms + np.arange(n, dtype=np.int64) * interval_ms
        series = cls(
            times,
            np.asarray(open_, dtype=np.int64),
            np.asarray(high, dtype=np.int64),
            np.asarray(low, dtype=np.int64),
            np.asarray(close, dtype=np.int64),
            np.ones(n),
            scale,
            interval_ms,
        )
        series.check()
        return series

    def check(self) -> None:
        bad = (self.low > np.minimum(self.open, self.close)) | (self.high < np.maximum(self.open, self.close))
        bad |= self.low <= 0
        if np.any(bad):
            i = int(np.argmax(bad))
            raise SeriesError(f"candle {i} ({iso(int(self.open_time[i]))}) has low/high outside open/close")


_PRICE_FIELDS = ("open", "high", "low", "close")


def iso(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, tz=UTC).strftime("%Y-%m-%d %H:%M")


def parse_time(text: str | None) -> int | None:
    """--from / --to: an ISO date or date-time (UTC unless it says otherwise), or epoch ms."""
    if text is None or text == "":
        return None
    text = text.strip()
    if text.isdigit():
        return int(text)
    stamp = datetime.fromisoformat(text.replace("Z", "+00:00"))
    if stamp.tzinfo is None:
        stamp = stamp.replace(tzinfo=UTC)
    return int(stamp.timestamp() * 1000)


def synthetic(
    n: int,
    *,
    seed: int = 7,
    start_price: float = 25_000.0,
    vol: float = 0.0008,
    scale: int = 2,
    start_ms: int = 0,
) -> CandleSeries:
    """A seeded random walk of n 1-minute candles (log returns with volatility vol per minute),
    rounded to 10**-scale: the benchmark's year of data without downloading anything."""
    rng = np.random.default_rng(seed)
    rets = rng.standard_normal(n) * vol
    close = start_price * np.exp(np.cumsum(rets))
    open_ = np.concatenate(([start_price], close[:-1]))
    wick_hi = np.abs(rng.standard_normal(n)) * vol * 0.6 * close
    wick_lo = np.abs(rng.standard_normal(n)) * vol * 0.6 * close
    high = np.maximum(open_, close) + wick_hi
    low = np.minimum(open_, close) - wick_lo
    k = 10.0**scale
    o = np.round(open_ * k).astype(np.int64)
    c = np.round(close * k).astype(np.int64)
    h = np.maximum(np.round(high * k).astype(np.int64), np.maximum(o, c))
    lo = np.minimum(np.round(low * k).astype(np.int64), np.minimum(o, c))
    return CandleSeries.from_ints(o, h, lo, c, scale=scale, start_ms=start_ms)
