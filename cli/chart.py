"""`automata chart fractals SYMBOL INTERVAL`: candles, up/down fractals and the trailing stop levels
the fractal_trailing strategy would have used, drawn to a PNG (docs/STRATEGIES.md §2).

The candles come from a `CandleSource`: a CSV file (`--data`, 1-minute files are resampled to
INTERVAL) or, without `--data`, the closed-candle stream `md:candles:{venue}:{SYMBOL}:{interval}`
in Redis read with shared.history (the 1m stream, resampled, when INTERVAL has none). The stop
levels come from `strategies.fractals.tracked_stops`: the very tracker the strategy steps.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Protocol

import typer

from shared.candle_files import CandleFileError, RawCandle, interval_ms, read_candles
from shared.messages import Candle
from shared.money import MoneyError, dec
from strategies.fractals import down_fractals, stop_hit_index, tracked_stops, up_fractals

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


def resample(rows: Iterable[Bar], interval: str) -> list[Bar]:
    """Group candles into `interval` buckets aligned on the epoch (a 4h bar opens at 00, 04, ... UTC),
    as the strategy builds its bars. Candles already at `interval` pass through unchanged.

    A last bucket that is not complete is still drawn: a file's end is not a live candle.
    """
    size = interval_ms(interval)
    bars: list[Bar] = []
    for row in rows:
        start = row.open_time - row.open_time % size
        if bars and bars[-1].open_time == start:
            last = bars[-1]
            bars[-1] = Bar(start, last.open, max(last.high, row.high), min(last.low, row.low), row.close)
        elif bars and start < bars[-1].open_time:
            raise typer.BadParameter(f"candles out of time order at {row.open_time}")
        else:
            bars.append(Bar(start, row.open, row.high, row.low, row.close))
    return bars


def _raw_bar(row: RawCandle) -> Bar:
    return Bar(row.open_time, dec(row.open), dec(row.high), dec(row.low), dec(row.close))


def _candle_bar(c: Candle) -> Bar:
    return Bar(c.open_time, c.open, c.high, c.low, c.close)


@dataclass(frozen=True, slots=True)
class CsvSource:
    """Candles from a file in either layout `shared.candle_files` reads (1m files are resampled)."""

    path: Path
    count: int | None = None  # the last `count` bars; None: all of them

    def bars(self, symbol: str, interval: str) -> list[Bar]:
        try:
            bars = resample(map(_raw_bar, read_candles(self.path)), interval)
        except (OSError, CandleFileError) as exc:
            raise typer.BadParameter(f"{self.path}: {exc}") from None
        return bars[-self.count :] if self.count else bars


@dataclass(frozen=True, slots=True)
class RedisSource:
    """Closed candles of `md:candles:{venue}:{SYMBOL}:{interval}`, read with shared.history.

    Feeds often carry 1-minute candles only (the demo's do): when the interval's own stream
    is empty, the bars are built from the 1m stream.
    """

    url: str
    venue: str
    count: int  # bars wanted

    def bars(self, symbol: str, interval: str) -> list[Bar]:
        return asyncio.run(self._bars(symbol, interval))

    async def _bars(self, symbol: str, interval: str) -> list[Bar]:
        from redis.exceptions import RedisError

        from shared.history import candle_history
        from shared.redis_conn import connect, safe_url

        client = connect(self.url, client_name="automata-chart")
        try:
            candles = await candle_history(client, self.venue, symbol, interval, self.count)
            if not candles and interval != "1m":
                per = max(1, interval_ms(interval) // interval_ms("1m"))
                candles = await candle_history(client, self.venue, symbol, "1m", self.count * per)
        except RedisError as exc:
            raise typer.BadParameter(
                f"cannot read candles from Redis at {safe_url(self.url)}: {exc}"
            ) from None
        finally:
            await client.aclose()
        return resample(map(_candle_bar, candles), interval)


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
    stops = tracked_stops(
        [b.open_time for b in bars],
        lows,
        closes,
        bar_ms=interval_ms(interval),
        lookback_ms=lookback_days * 86_400_000,
        entry=entry,
    )
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
    import numpy as np

    bars = chart.bars
    xs = range(len(bars))
    o, h, lo, c = (np.array([float(getattr(b, f)) for b in bars]) for f in ("open", "high", "low", "close"))
    color = np.where(c >= o, "forestgreen", "tomato")
    fig, ax = plt.subplots(figsize=(14, 7), dpi=100)
    try:
        # one collection per artist kind, not a patch per candle: a 30,000-candle file draws in seconds
        xs_arr = np.arange(len(bars))
        ax.vlines(xs_arr, lo, h, colors=color, linewidth=0.8)
        body = min(8.0, max(0.3, 0.6 * 1200 / len(bars) * 0.72))  # ~60 % of a candle's width, in points
        ax.vlines(xs_arr, np.minimum(o, c), np.maximum(o, c), colors=color, linewidth=body)
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
        ax.legend(loc="upper left")  # "best" searches every artist: slow on long series
        ax.grid(alpha=0.3)
        fig.tight_layout()
        out.parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(out, format="png")
    finally:
        plt.close(fig)


@chart_app.command("fractals")
def fractals_cmd(
    symbol: str = typer.Argument(..., help="e.g. BTCUSDT"),
    interval: str = typer.Argument("4h", help="bar interval of the fractals (the strategy's default is 4h)"),
    data: Path | None = typer.Option(
        None, "--data", help="CSV candle file; without it, read the Redis stream"
    ),
    out: Path | None = typer.Option(
        None, "--out", help="PNG to write (default $AUTOMATA_HOME/var/charts/fractals_SYMBOL_INTERVAL.png)"
    ),
    entry: str | None = typer.Option(
        None, "--entry", help="entry price of the position (default: first close)"
    ),
    lookback_days: int = typer.Option(
        DEFAULT_LOOKBACK_DAYS, "--lookback-days", help="fractals older than this stop counting"
    ),
    bars: int | None = typer.Option(
        None, "--bars", help="draw the last N bars (default: a CSV's all, Redis: twice the look-back)"
    ),
    venue: str = typer.Option("sim", "--venue", help="venue of the Redis candle stream"),
    redis_url: str | None = typer.Option(
        None,
        "--redis-url",
        help="Redis of the candle stream (default: REDIS_URL, a running `automata run`, or the config)",
    ),
) -> None:
    """Draw candles, up/down fractals and the trailing stop levels to a PNG."""
    try:
        _fractals(symbol, interval, data, out, entry, lookback_days, bars, venue, redis_url)
    except typer.BadParameter as exc:  # one whole line (Typer's error box cuts a long path short)
        from cli.common import console, fail

        fail(console(), f"error: {exc.message}", 2)


def _fractals(
    symbol: str,
    interval: str,
    data: Path | None,
    out: Path | None,
    entry: str | None,
    lookback_days: int,
    bars: int | None,
    venue: str,
    redis_url: str | None,
) -> None:
    try:
        size = interval_ms(interval)
        entry_price = None if entry is None else dec(entry)
    except (CandleFileError, MoneyError) as exc:
        raise typer.BadParameter(str(exc)) from None
    from cli.common import require_matplotlib

    require_matplotlib()
    if bars is not None and bars < 1:
        raise typer.BadParameter("--bars must be at least 1")
    if data is not None:
        source: CandleSource = CsvSource(data, bars)
    else:
        if redis_url is None:
            from cli import connect
            from cli.paths import UsageError

            try:
                redis_url = connect.redis_url()
            except UsageError as exc:
                raise typer.BadParameter(str(exc)) from None
        count = bars or max(1, 2 * lookback_days * 86_400_000 // size)
        source = RedisSource(redis_url, venue, count)
    run(source, symbol.upper(), interval, out=out, entry=entry_price, lookback_days=lookback_days)


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
    if out is None:
        from cli.paths import home

        out = home().charts_dir / f"fractals_{symbol}_{interval}.png"
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
