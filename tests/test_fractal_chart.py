"""`automata chart fractals`: candles, fractals and the strategy's stop levels to a PNG, from a
CSV (1-minute candles resampled to the interval) and from the candle stream in a real Redis."""

from __future__ import annotations

from decimal import Decimal as D
from pathlib import Path

import pytest
import redis
from typer.testing import CliRunner

from cli.chart import CsvSource, compute
from cli.main import app
from shared.candle_files import read_candles
from shared.codec import encode
from shared.messages import Candle
from shared.streams import candles
from strategies.fractals import stop_hit_index, trailing_stops
from tests.helpers.sample_data import SAMPLE_CANDLES

DATA = SAMPLE_CANDLES  # optional, beside the clone: tests/helpers/sample_data.py
PNG = b"\x89PNG\r\n\x1a\n"


def chart(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(app, ["chart", "fractals", *args], catch_exceptions=False)
    return result.exit_code, result.output


def assert_png(path: Path) -> None:
    data = path.read_bytes()
    assert data[:8] == PNG and len(data) > 30_000  # a real drawing, not an empty canvas


@pytest.fixture(scope="module")
def data() -> Path:
    if not DATA.exists():
        pytest.skip(f"{DATA} not found")
    return DATA


def test_chart_from_a_csv_of_1m_candles(data, tmp_path):
    out = tmp_path / "f.png"
    code, text = chart("BTCUSDT", "4h", "--data", str(data), "--out", str(out), "--entry", "20000")
    assert code == 0, text
    assert_png(out)
    assert "126 candles" in text  # 21 days of 4h bars from 30,240 one-minute candles
    # what it draws: bars grouped like the strategy's, stops as the rule gives them
    bars = CsvSource(data).bars("BTCUSDT", "4h")
    ch = compute(bars, entry=D(20000), interval="4h", lookback_days=14)
    lows, closes = [b.low for b in bars], [b.close for b in bars]
    oracle = trailing_stops(lows, closes, entry=D(20000), lookback=84)
    hit = stop_hit_index(lows, oracle)
    assert ch.stop_hit == hit and ch.stops[:hit] == oracle[:hit] and all(s is None for s in ch.stops[hit:])
    first_240 = [D(r.low) for r, _ in zip(read_candles(data), range(240), strict=False)]
    assert bars[0].open_time == 1677628800000  # 2023-03-01 00:00 UTC
    assert bars[0].low == min(first_240)  # the first 4h bar is the first 240 minutes


def test_chart_errors_are_one_line(tmp_path):
    code, text = chart("BTCUSDT", "7m", "--data", "x.csv")
    assert code != 0 and "unknown interval" in text
    code, text = chart("BTCUSDT", "4h", "--data", str(tmp_path / "missing.csv"))
    assert code != 0 and "missing.csv" in text


def _candle(interval: str, t: int, o: str, h: str, lo: str, c: str) -> Candle:
    ms = {"1m": 60_000, "1h": 3_600_000}[interval]
    return Candle(venue="sim", symbol="BTCUSDT", interval=interval, open_time=t, close_time=t + ms - 1,
                  open=D(o), high=D(h), low=D(lo), close=D(c), volume=D(1))  # fmt: skip


def test_chart_from_the_redis_candle_stream(sync_redis: redis.Redis, redis_server, data, tmp_path):
    url = redis_server.url
    rows = [r for r, _ in zip(read_candles(data), range(3 * 1440), strict=False)]  # three days of 1m
    pipe = sync_redis.pipeline()
    for r in rows:  # as the market gateway stores them: entry id {open_time}-1
        pipe.xadd(
            candles("sim", "BTCUSDT", "1m"),
            encode(_candle("1m", r.open_time, *r[1:5])),
            id=f"{r.open_time}-1",
        )
    pipe.execute()
    out = tmp_path / "redis.png"
    # no 4h stream: the bars are built from the 1m stream
    code, text = chart("BTCUSDT", "4h", "--redis-url", url, "--out", str(out))
    assert code == 0, text
    assert_png(out)
    assert "18 candles" in text
    out1 = tmp_path / "redis1h.png"
    code, text = chart("BTCUSDT", "1h", "--redis-url", url, "--out", str(out1), "--bars", "48")
    assert code == 0 and "48 candles" in text  # the last 48 hourly bars
    assert_png(out1)
    # a stream of the interval itself is read as it is
    for i in range(30):
        t = 1_700_000_000_000 - 1_700_000_000_000 % 3_600_000 + i * 3_600_000
        p = str(40000 + (i % 7) * 50)
        sync_redis.xadd(
            candles("sim", "BTCUSDT", "1h"), encode(_candle("1h", t, p, p, str(int(p) - 100), p)), id=f"{t}-1"
        )
    code, text = chart("BTCUSDT", "1h", "--redis-url", url, "--out", str(out1))
    assert code == 0 and "30 candles" in text
    code, text = chart("ETHUSDT", "4h", "--redis-url", url, "--out", str(out1))
    assert code != 0 and "no candles" in text
