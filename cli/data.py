"""`automata data download` and `automata data import`: candles for backtests and warm-up.

download: public klines of a configured venue (or plain `binance` / `bybit`) between two dates into
a CSV in the Binance kline layout (data.binance.vision: no header, 12 columns), page by page
within the venue's request-weight budget, with a progress bar.

import: a Binance kline CSV or a plain `open_time,open,high,low,close,volume` CSV
into `md:candles:{venue}:{SYMBOL}:{interval}`, with the same entry ids the market gateway uses
(`{open_time_ms}-1`), so importing twice, or over candles the gateway stored, adds nothing twice.
"""

from __future__ import annotations

import asyncio
import csv
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from pathlib import Path

import redis
import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from cli import connect
from cli.paths import UsageError
from services.market_gateway.backfill import closed_pages
from services.market_gateway.candles import is_duplicate
from services.market_gateway.plan import BYBIT_INTERVALS, VenuePlan
from services.market_gateway.venue import make_rest
from shared import streams
from shared.candle_files import INTERVAL_MS, CandleFileError, interval_ms, read_candles
from shared.codec import encode
from shared.config import ConfigError, VenueConfig, load_config
from shared.messages import Candle
from shared.ratelimit import WeightLimiter
from shared.streams import candle_entry_id

data_app = typer.Typer(
    help="Historical candles: download from a venue, import into Redis.", no_args_is_help=True
)

IMPORT_BATCH = 1000
WEEK_MS = 7 * 86_400_000


def parse_time(text: str) -> int:
    """`2023-03-01`, `2023-03-01T12:30`, an ISO time with offset (UTC when none), or epoch ms."""
    text = text.strip()
    if text.isdigit():
        return int(text)
    try:
        when = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise UsageError(
            f"not a date or time: {text!r} (use 2023-03-01, 2023-03-01T12:30 or epoch ms)"
        ) from None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return int(when.timestamp() * 1000)


def _venue_plan(name: str) -> tuple[VenuePlan, int]:
    """The venue to download from, and the REST weight per minute the config allows."""
    system = connect.system()
    if name not in ("binance", "bybit"):  # a venue of the config: the running system's
        system.need_config()
    try:
        cfg = load_config()
    except ConfigError as exc:
        raise UsageError(f"configuration error: {exc}") from None
    venue = cfg.venues.get(name)
    if venue is None:
        if name not in ("binance", "bybit"):
            known = ", ".join(sorted({*cfg.venues, "binance", "bybit"}))
            raise UsageError(f"unknown venue {name!r} (one of: {known})")
        venue = VenueConfig(kind=name)  # the public main net
    return VenuePlan(name, venue, (), ()), cfg.market_gateway.weight_per_minute


def _kline_row(c: Candle) -> list[object]:
    """The 12 columns of a Binance kline CSV (taker volumes unknown here: 0)."""
    return [
        c.open_time,
        c.open,
        c.high,
        c.low,
        c.close,
        c.volume,
        c.close_time,
        c.quote_volume,
        c.trades,
        0,
        0,
        0,
    ]


async def _download(
    plan: VenuePlan, weight: int, symbol: str, interval: str, start: int, end: int | None, out: Path
) -> int:
    """Closed candles from start (to end, else to the present) into `out`, written atomically."""
    rest = make_rest(plan, WeightLimiter(weight))
    iv = interval_ms(interval)
    until = end if end is not None else int(datetime.now(UTC).timestamp() * 1000)
    total = max(1, -(-(until - start) // (iv * rest.max_limit)))  # windows, for the progress bar
    written = 0
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.name + ".part")
    try:
        with (
            tmp.open("w", newline="", encoding="utf-8") as fh,
            Progress(
                TextColumn("[bold]{task.description}"),
                BarColumn(),
                MofNCompleteColumn(),
                TextColumn("{task.fields[candles]} candles"),
                TimeRemainingColumn(),
            ) as progress,
        ):
            task = progress.add_task(f"{plan.name} {symbol} {interval}", total=total, candles=0)
            writer = csv.writer(fh)
            async for page in closed_pages(rest, symbol, interval, iv, start, stop_ms=end):
                writer.writerows(_kline_row(c) for c in page)
                written += len(page)
                done = min(total, -(-(page[-1].open_time + iv - start) // (iv * rest.max_limit)))
                progress.update(task, completed=done, candles=written)
            progress.update(task, completed=total)
        tmp.replace(out)
    finally:
        tmp.unlink(missing_ok=True)
        await rest.close()
    return written


@data_app.command("download")
def download(
    venue: str = typer.Argument(..., help="a venue of the config (\\[venues]), or binance / bybit"),
    symbol: str = typer.Argument(..., help="e.g. BTCUSDT"),
    interval: str = typer.Argument(..., help="e.g. 1m, 5m, 1h, 1d"),
    start: str = typer.Option(
        ..., "--start", help="first open time: 2023-03-01, 2023-03-01T12:00 or epoch ms"
    ),
    end: str = typer.Option("", "--end", help="stop before this open time (default: up to the present)"),
    out: Path = typer.Option(..., "--out", help="CSV file to write (Binance kline layout)"),
) -> None:
    """Save public historical candles to a local file, with a progress bar."""
    console = Console(highlight=False, stderr=True)
    try:
        plan, weight = _venue_plan(venue)
        symbol = symbol.upper()
        interval_ms(interval)
        if plan.protocol == "bybit" and interval not in BYBIT_INTERVALS:
            raise UsageError(f"Bybit has no {interval!r} klines")
        start_ms = parse_time(start)
        end_ms = parse_time(end) if end else None
        if end_ms is not None and end_ms <= start_ms:
            raise UsageError("--end must be after --start")
        n = asyncio.run(_download(plan, weight, symbol, interval, start_ms, end_ms, out))
    except (UsageError, CandleFileError) as exc:
        console.print(f"[red]{exc}[/]", soft_wrap=True)
        raise typer.Exit(2) from None
    except Exception as exc:  # the venue or the network: one line, not a traceback
        console.print(f"[red]download failed: {type(exc).__name__}: {exc}[/]")
        raise typer.Exit(1) from None
    console.print(f"{n} candles -> {out}")


def import_file(
    client: redis.Redis, path: Path, venue: str, symbol: str, interval: str, *, maxlen: int
) -> tuple[int, int]:
    """Load a candle file into the candle stream; returns (written, already stored)."""
    iv = interval_ms(interval)
    _check_spacing(path, interval, iv)
    stream = streams.candles(venue, symbol, interval)
    written = skipped = 0
    batch: list[Candle] = []

    def flush() -> None:
        nonlocal written, skipped
        pipe = client.pipeline(transaction=False)
        for c in batch:
            pipe.xadd(stream, encode(c), id=candle_entry_id(c.open_time), maxlen=maxlen, approximate=True)
        for result in pipe.execute(raise_on_error=False):
            if isinstance(result, Exception):
                if not is_duplicate(result):
                    raise result
                skipped += 1
            else:
                written += 1
        batch.clear()

    for row in read_candles(path):
        if iv < WEEK_MS and row.open_time % iv:
            raise CandleFileError(f"{path}: open time {row.open_time} is not on a {interval} boundary")
        batch.append(
            Candle(
                venue=venue,
                symbol=symbol,
                interval=interval,
                open_time=row.open_time,
                close_time=row.open_time + iv - 1,
                open=_dec(row.open),
                high=_dec(row.high),
                low=_dec(row.low),
                close=_dec(row.close),
                volume=_dec(row.volume),
            )
        )
        if len(batch) >= IMPORT_BATCH:
            flush()
    if batch:
        flush()
    return written, skipped


def _check_spacing(path: Path, interval: str, iv: int) -> None:
    """Refuse a file whose candles are further apart than `interval` everywhere (5-minute candles
    imported as 1m sit on minute boundaries too): they would fill the stream with false minutes,
    and, an id at or below a stream's newest being refused, keep the right file out of it."""
    if iv >= WEEK_MS:
        return
    closest = previous = None
    for row in read_candles(path):
        if previous is not None and row.open_time > previous:
            step = row.open_time - previous
            closest = step if closest is None else min(closest, step)
        previous = row.open_time
    if closest is not None and closest > iv:
        names = {ms: name for name, ms in INTERVAL_MS.items()}
        apart = names.get(closest, f"{closest // 1000} s")
        hint = f": import it with --interval {apart}" if closest in names else ""
        raise CandleFileError(f"{path}: its candles are at least {apart} apart, not {interval}{hint}")


def _dec(text: str) -> Decimal:
    try:
        return Decimal(text)
    except InvalidOperation:
        raise CandleFileError(f"not a number: {text!r}") from None


@data_app.command("import")
def import_(
    file: Path = typer.Argument(
        ..., exists=True, dir_okay=False, help="Binance kline CSV or open_time,open,high,low,close,volume CSV"
    ),
    venue: str = typer.Option(..., "--venue", help="venue name used in the stream key, e.g. sim"),
    symbol: str = typer.Option(..., "--symbol", help="e.g. BTCUSDT"),
    interval: str = typer.Option("1m", "--interval", help="the file's candle interval"),
    maxlen: int = typer.Option(
        0, "--maxlen", help="trim the stream to about this many (default: the config's)"
    ),
) -> None:
    """Load candles from a file into md:candles:{venue}:{SYMBOL}:{interval}."""
    console = Console(highlight=False, stderr=True)
    symbol = symbol.upper()
    try:
        interval_ms(interval)
        limit = maxlen or load_config().market_gateway.candles_maxlen
        client = connect.client()
        try:
            written, skipped = import_file(client, file, venue, symbol, interval, maxlen=limit)
        finally:
            client.close()
    except (UsageError, CandleFileError, ConfigError) as exc:
        console.print(f"[red]{exc}[/]")
        raise typer.Exit(2) from None
    except redis.RedisError as exc:
        console.print(f"[red]redis: {type(exc).__name__}: {exc}[/]")
        raise typer.Exit(1) from None
    stream = streams.candles(venue, symbol, interval)
    console.print(f"{written} candles imported into {stream}, {skipped} already there")
