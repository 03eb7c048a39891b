"""Candle sources for the paper venue: replayed files and a seeded random walk.

A Feed yields one symbol's 1-minute candles in time order from a fixed origin. Where a data
file has the minute, that candle is replayed; a minute missing inside the file is a flat,
zero-volume candle at the previous close (what Binance prints for a minute without trades);
before the file starts and after it ends, a random walk seeded by (seed, symbol) continues
from the last price. Same seed and same files, same candles.
"""

from __future__ import annotations

import math
import random
from collections.abc import Iterator, Mapping, Sequence
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import msgspec

from shared.candle_files import RawCandle, read_candles
from shared.matching.symbols import SymbolSpec
from shared.money import ZERO, round_down

DEFAULT_ORIGIN_MS = int(datetime(2024, 1, 1, tzinfo=UTC).timestamp() * 1000)


class Bar(msgspec.Struct, frozen=True, kw_only=True):
    """One candle of a symbol's market (the feed is per symbol, so no venue or symbol here; the
    market gateway turns what the venue serves into shared.messages.Candle)."""

    open_time: int
    close_time: int
    open: Decimal
    high: Decimal
    low: Decimal
    close: Decimal
    volume: Decimal
    quote_volume: Decimal = ZERO
    trades: int = 0


class DataError(ValueError):
    pass


def _walk_candle(
    rng: random.Random, spec: SymbolSpec, prev: Decimal, open_time: int, interval_ms: int
) -> Bar:
    """One random-walk candle opening at prev (floats only inside, rounded to tick and step)."""
    tick, step = spec.filters.tick_size, spec.filters.step_size
    vol = spec.volatility * math.sqrt(interval_ms / 60_000)
    start = float(prev)
    close_f = start * math.exp(rng.gauss(0.0, vol))
    high_f = max(start, close_f) * math.exp(abs(rng.gauss(0.0, vol * 0.6)))
    low_f = min(start, close_f) * math.exp(-abs(rng.gauss(0.0, vol * 0.6)))
    volume_f = float(spec.volume) * rng.lognormvariate(0.0, 0.5) * interval_ms / 60_000

    def price(x: float) -> Decimal:
        return max(tick, round_down(Decimal(f"{x:.12f}"), tick))

    close = price(close_f)
    high = max(price(high_f), prev, close)
    low = min(price(low_f), prev, close)
    volume = round_down(Decimal(f"{volume_f:.12f}"), step)
    return _candle(open_time, interval_ms, prev, high, low, close, volume)


def _candle(
    open_time: int,
    interval_ms: int,
    o: Decimal,
    h: Decimal,
    lo: Decimal,
    c: Decimal,
    v: Decimal,
) -> Bar:
    return Bar(
        open_time=open_time,
        close_time=open_time + interval_ms - 1,
        open=o,
        high=h,
        low=lo,
        close=c,
        volume=v,
        quote_volume=v * (o + h + lo + c) / 4,
        trades=4 if v > 0 else 0,
    )


def _from_raw(row: RawCandle, interval_ms: int) -> Bar:
    return _candle(
        row.open_time,
        interval_ms,
        Decimal(row.open),
        Decimal(row.high),
        Decimal(row.low),
        Decimal(row.close),
        Decimal(row.volume),
    )


class Feed:
    """One symbol's candles from `origin_ms` on, replayed where `rows` has them, else walked."""

    def __init__(
        self,
        spec: SymbolSpec,
        *,
        origin_ms: int,
        interval_ms: int,
        seed: int,
        rows: Sequence[RawCandle] = (),
        prev: Decimal | None = None,
    ) -> None:
        """`prev`: the close the walk continues from when a saved venue resumes at `origin_ms`
        (its walk is then seeded by the resume time too, so it does not repeat the first run's)."""
        self.spec, self.interval_ms = spec, interval_ms
        self._data = {r.open_time: r for r in rows}
        self._first = min(self._data) if self._data else None
        self._last = max(self._data) if self._data else None
        self._rng = random.Random(
            f"{seed}:{spec.symbol}" if prev is None else f"{seed}:{spec.symbol}:{origin_ms}"
        )
        self._next_time = origin_ms
        first_row = self._data.get(self._first) if self._first is not None else None
        self._prev = Decimal(first_row.open) if first_row is not None else spec.start_price
        if prev is not None:
            self._prev = prev

    def __iter__(self) -> Iterator[Bar]:
        return self

    def __next__(self) -> Bar:
        t = self._next_time
        self._next_time += self.interval_ms
        row = self._data.get(t)
        if row is not None:
            candle = _from_raw(row, self.interval_ms)
        elif self._first is not None and self._last is not None and self._first < t < self._last:
            p = self._prev
            candle = _candle(t, self.interval_ms, p, p, p, p, ZERO)
        else:
            candle = _walk_candle(self._rng, self.spec, self._prev, t, self.interval_ms)
        self._prev = candle.close
        return candle


def data_files(setting: str, symbols: Sequence[str]) -> dict[str, Path]:
    """Which file replays which symbol.

    `setting` is a CSV file (its symbol read from the file name, else the first symbol), a
    directory (each symbol's file found by name, e.g. BTCUSDT_1m.csv), or
    `SYMBOL=path,SYMBOL=path`.
    """
    setting = setting.strip()
    if not setting:
        return {}
    if "=" in setting:
        pairs = dict(part.split("=", 1) for part in setting.split(",") if part.strip())
        files = {sym.strip().upper(): Path(p.strip()) for sym, p in pairs.items()}
    else:
        path = Path(setting)
        candidates = sorted(path.glob("*.csv")) if path.is_dir() else [path]
        files = {}
        for sym in symbols:
            for candidate in candidates:
                if sym in _name_tokens(candidate):
                    files.setdefault(sym, candidate)
        if not path.is_dir() and not files and symbols:
            files[symbols[0]] = path
    for sym, file in files.items():
        if sym not in symbols:
            raise DataError(f"SIM_DATA names {sym}, which is not among SIM_SYMBOLS ({', '.join(symbols)})")
        if not file.is_file():
            raise DataError(f"SIM_DATA: {file} is not a file")
    return files


def _name_tokens(path: Path) -> set[str]:
    return set(path.stem.upper().replace("-", "_").replace(".", "_").split("_"))


def load_rows(files: Mapping[str, Path]) -> dict[str, list[RawCandle]]:
    return {sym: list(read_candles(path)) for sym, path in files.items()}


def origin_of(rows: Mapping[str, Sequence[RawCandle]], start_ms: int | None) -> int:
    """The first minute of the venue's history: SIM_START, else the earliest data, else 2024-01-01."""
    if start_ms is not None:
        return start_ms
    firsts = [r[0].open_time for r in rows.values() if r]
    return min(firsts) if firsts else DEFAULT_ORIGIN_MS
