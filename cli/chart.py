"""`automata chart fractals SYMBOL INTERVAL`: candles, up/down fractals and the trailing stop levels
the fractal_trailing strategy would have used, drawn to a PNG (STRATEGIES.md §2, seed 003's plot.py).

The candles come from a `CandleSource`: a CSV file (`--data`, 1-minute files are resampled to
INTERVAL) or, without `--data`, the closed-candle stream `md:candles:{venue}:{SYMBOL}:{interval}`
in Redis. The stop levels are computed by `strategies.fractals`, the same rule the strategy steps.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Protocol

import typer

from shared.candle_files import RawCandle, interval_ms, read_candles
from shared.money import dec
from strategies.fractals import down_fractals, stop_hit_index, trailing_stops, up_fractals

chart_app = typer.Typer(help="Charts drawn to PNG files.", no_args_is_help=True)

DEFAULT_LOOKBACK_DAYS = 14


@chart_app.callback()
def _group() -> None:
    """Charts drawn to PNG files (a callback keeps `chart` a group even with one command)."""


@dataclass(frozen=True, slots=True)
class Bar:
    """One candle of the chart's interval; Decimal like everything priced, floats only when drawn."""

    open_time: int
    open: Decimal
    high: Decimal
    low: Decimal
    close: Decimal


class CandleSource(Protocol):
    """Where the chart's candles come from; the command only needs closed bars in time order."""

    def bars(self, symbol: str, interval: str) -> list[Bar]: ...


def resample(rows: Iterable[RawCandle], interval: str) -> list[Bar]:
    """Group candles into `interval` buckets aligned on the epoch (a 4h bar opens at 00, 04, ... UTC).

    Candles already at `interval` pass through unchanged. A last bucket that is not complete is
    still drawn: a file's end is not a live, still-open candle.
    """
    size = interval_ms(interval)
    bars: list[Bar] = []
    for row in rows:
        start = row.open_time - row.open_time % size
        high, low, close = dec(row.high), dec(row.low), dec(row.close)
        if bars and bars[-1].open_time == start:
            last = bars[-1]
            bars[-1] = Bar(start, last.open, max(last.high, high), min(last.low, low), close)
        elif bars and start < bars[-1].open_time:
            raise typer.BadParameter(f"candles out of time order at {row.open_time}")
        else:
            bars.append(Bar(start, dec(row.open), high, low, close))
    return bars


@dataclass(frozen=True, slots=True)
class CsvSource:
    """Candles from a file in either layout `shared.candle_files` reads."""

    path: Path

    def bars(self, symbol: str, interval: str) -> list[Bar]:
        return resample(read_candles(self.path), interval)


@dataclass(frozen=True, slots=True)
class RedisSource:
    """Closed candles of one stream in Redis, as the market gateway stored them."""

    url: str
    venue: str

    def bars(self, symbol: str, interval: str) -> list[Bar]:
        import redis

        from shared import streams
        from shared.codec import decode
        from shared.messages import Candle

        client = redis.Redis.from_url(self.url)
        try:
            entries = client.xrange(streams.candles(self.venue, symbol, interval))
        finally:
            client.close()
        out = []
        for _id, fields in entries:
            msg = decode(fields)
            if isinstance(msg, Candle):
                out.append(Bar(msg.open_time, msg.open, msg.high, msg.low, msg.close))
        return out


@dataclass(frozen=True, slots=True)
class FractalChart:
    """Everything drawn, computed once so tests can check it without looking at pixels."""

    bars: list[Bar]
    up: list[tuple[int, Decimal]]
    down: list[tuple[int, Decimal]]
    stops: list[Decimal | None]
    entry: Decimal
    stop_hit: int | None


def compute(bars: Sequence[Bar], *, entry: Decimal | None, interval: str, lookback_days: int) -> FractalChart:
    """Fractals and the stop in force after each bar; entry defaults to the first bar's close."""
    if not bars:
        raise typer.BadParameter("no candles to draw")
    lows = [b.low for b in bars]
    highs = [b.high for b in bars]
    closes = [b.close for b in bars]
    entry = closes[0] if entry is None else entry
    lookback = max(1, lookback_days * 86_400_000 // interval_ms(interval))
    stops = trailing_stops(lows, closes, entry=entry, lookback=lookback)
    hit = stop_hit_index(lows, stops)
    if hit is not None:  # the position is closed there: the stop stops trailing
        stops = stops[:hit] + [None] * (len(stops) - hit)
    return FractalChart(
        bars=list(bars),
        up=[(f.index, f.price) for f in up_fractals(highs)],
        down=[(f.index, f.price) for f in down_fractals(lows)],
        stops=stops,
        entry=entry,
        stop_hit=hit,
    )


def draw(chart: FractalChart, out: Path, title: str) -> None:
    """Render to PNG with the Agg backend (no display needed, e.g. on a Raspberry Pi over ssh)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    bars = chart.bars
    xs = range(len(bars))
    fig, ax = plt.subplots(figsize=(14, 7), dpi=100)
    try:
        for x, b in zip(xs, bars, strict=True):
            rising = b.close >= b.open
            color = "forestgreen" if rising else "tomato"
            ax.vlines(x, float(b.low), float(b.high), color=color, linewidth=0.8)
            bottom, top = sorted((float(b.open), float(b.close)))
            ax.bar(x, max(top - bottom, 1e-9), bottom=bottom, width=0.6, color=color, edgecolor=color)
        span = float(max(b.high for b in bars) - min(b.low for b in bars)) or 1.0
        offset = span * 0.015
        if chart.up:
            ax.scatter(
                [i for i, _ in chart.up],
                [float(p) + offset for _, p in chart.up],
                marker="^",
                color="teal",
                s=40,
                label="up fractal",
                zorder=3,
            )
        if chart.down:
            ax.scatter(
                [i for i, _ in chart.down],
                [float(p) - offset for _, p in chart.down],
                marker="v",
                color="tomato",
                s=40,
                label="down fractal",
                zorder=3,
            )
        stop_x = [x for x, s in zip(xs, chart.stops, strict=True) if s is not None]
        if stop_x:
            ax.step(
                stop_x,
                [float(s) for s in chart.stops if s is not None],
                where="post",
                color="purple",
                linewidth=1.4,
                label="trailing stop",
                zorder=2,
            )
        ax.axhline(
            float(chart.entry), color="gray", linestyle="--", linewidth=1, label=f"entry {chart.entry}"
        )
        if chart.stop_hit is not None:
            hit_stop = chart.stops[chart.stop_hit - 1]
            assert hit_stop is not None
            ax.scatter(
                [chart.stop_hit],
                [float(hit_stop)],
                marker="x",
                color="black",
                s=80,
                label="stop hit",
                zorder=4,
            )
        step = max(1, len(bars) // 10)
        ticks = list(range(0, len(bars), step))
        ax.set_xticks(ticks)
        ax.set_xticklabels(
            [datetime.fromtimestamp(bars[i].open_time / 1000, UTC).strftime("%m-%d %H:%M") for i in ticks],
            rotation=30,
        )
        ax.set_title(title)
        ax.legend(loc="best")
        ax.grid(alpha=0.3)
        fig.tight_layout()
        out.parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(out, format="png")
    finally:
        plt.close(fig)


@chart_app.command("fractals")
def fractals_cmd(
    symbol: str = typer.Argument(..., help="e.g. BTCUSDT"),
    interval: str = typer.Argument(
        "4h", help="candle interval of the fractals (the strategy's default is 4h)"
    ),
    data: Path | None = typer.Option(
        None, "--data", help="CSV candle file; without it, read the Redis stream"
    ),
    out: Path | None = typer.Option(
        None, "--out", help="PNG to write (default fractals_SYMBOL_INTERVAL.png)"
    ),
    entry: str | None = typer.Option(
        None, "--entry", help="entry price of the position (default: first close)"
    ),
    lookback_days: int = typer.Option(
        DEFAULT_LOOKBACK_DAYS, "--lookback-days", help="fractals older than this stop counting"
    ),
    venue: str = typer.Option("sim", "--venue", help="venue of the Redis candle stream"),
    redis_url: str | None = typer.Option(
        None, "--redis-url", envvar="REDIS_URL", help="Redis for the candle stream"
    ),
) -> None:
    """Draw candles, up/down fractals and the trailing stop levels to a PNG."""
    interval_ms(interval)  # a clear error for an unknown interval before any reading
    if data is not None:
        source: CandleSource = CsvSource(data)
    else:
        from shared.redis_conn import DEFAULT_REDIS_URL

        source = RedisSource(redis_url or DEFAULT_REDIS_URL, venue)
    run(
        source,
        symbol.upper(),
        interval,
        out=out,
        entry=None if entry is None else dec(entry),
        lookback_days=lookback_days,
    )


def run(
    source: CandleSource,
    symbol: str,
    interval: str,
    *,
    out: Path | None = None,
    entry: Decimal | None = None,
    lookback_days: int = DEFAULT_LOOKBACK_DAYS,
) -> Path:
    """Read, compute and draw; returns the PNG path (the command's body, callable from tests)."""
    out = out or Path(f"fractals_{symbol}_{interval}.png")
    chart = compute(
        source.bars(symbol, interval), entry=entry, interval=interval, lookback_days=lookback_days
    )
    draw(chart, out, f"{symbol} {interval} — Bill Williams fractals, trailing stop from entry {chart.entry}")
    last = next((s for s in reversed(chart.stops) if s is not None), None)
    typer.echo(
        f"{out}: {len(chart.bars)} candles, {len(chart.up)} up / {len(chart.down)} down fractals, "
        f"last stop {last if last is not None else 'none'}"
        + (f", stop hit at candle {chart.stop_hit}" if chart.stop_hit is not None else "")
    )
    return out
