"""The paper venue's market: candle replay, the walk inside a candle, liquidity, klines, determinism."""

from __future__ import annotations

from decimal import Decimal as D
from pathlib import Path

import pytest

from services.exchange_sim.config import SimConfig, load_sim_config
from services.exchange_sim.feeds import DataError, Feed, data_files, load_rows
from services.exchange_sim.market import DEFAULT_HISTORY_MAX, MIN_HISTORY, Market
from services.exchange_sim.venue import Venue
from shared.config import ConfigError
from shared.matching.engine import Engine, OrderRequest, OrderStatus, OrderType, Side, TimeInForce
from shared.matching.symbols import select

ROWS = """open_time,open,high,low,close,volume
2023-03-01 00:00:00+00:00,100.00,101.00,99.00,100.50,4
2023-03-01 00:01:00+00:00,100.50,103.00,98.00,102.00,8
2023-03-01 00:02:00+00:00,102.00,104.00,97.00,99.00,12
2023-03-01 00:04:00+00:00,99.00,99.50,98.50,99.20,4
"""
T0 = 1677628800000  # 2023-03-01T00:00:00Z


def make_market(
    tmp_path: Path, *, seed: int = 1, warmup: int = 1, csv: str | None = ROWS, history_max: int = 0
) -> Market:
    specs = select(["ETHUSDT"])
    rows = {}
    if csv is not None:
        path = tmp_path / "binanceus_ETHUSDT_1m.csv"
        path.write_text(csv)
        rows = load_rows(data_files(str(tmp_path), ["ETHUSDT"]))
    engine = Engine(specs)
    origin = T0 if csv is not None else T0

    def feeds() -> dict[str, Feed]:
        return {
            "ETHUSDT": Feed(
                specs[0], origin_ms=origin, interval_ms=60_000, seed=seed, rows=rows.get("ETHUSDT", ())
            )
        }

    return Market(engine, feeds, origin_ms=origin, warmup=warmup, history_max=history_max)


def test_the_price_walks_open_low_high_close_or_open_high_low_close(tmp_path: Path) -> None:
    market = make_market(tmp_path)
    assert market.price("ETHUSDT") == D("100.50")  # warm-up candle closed
    rising = [market.step()[0].price for _ in range(4)]
    assert rising == [D("100.50"), D("98.00"), D("103.00"), D("102.00")]
    falling = [market.step()[0].price for _ in range(4)]
    assert falling == [D("102.00"), D("104.00"), D("97.00"), D("99.00")]
    ticks = [market.step()[0] for _ in range(4)]  # 00:03 is missing in the file: flat, no volume
    assert {t.price for t in ticks} == {D("99.00")} and all(t.qty == 0 for t in ticks)
    assert ticks[-1].closed and ticks[-1].candle.volume == 0
    replayed = [market.step()[0].price for _ in range(4)]
    assert replayed == [D("99.00"), D("98.50"), D("99.50"), D("99.20")]
    walked = [market.step()[0] for _ in range(8)]  # after the file: a random walk from the last close
    assert walked[0].price == D("99.20") and all(t.price > 0 for t in walked)
    assert market.time == T0 + 7 * 60_000 - 1


def test_klines_serve_closed_candles_and_aggregate(tmp_path: Path) -> None:
    market = make_market(tmp_path)
    market.advance(candles=3)
    market.advance(steps=2)  # the 00:04 candle is in progress: not served
    bars = market.klines("ETHUSDT", 60_000)
    assert [b.open_time for b in bars] == [T0 + i * 60_000 for i in range(4)]
    assert bars[1].high == D("103.00") and bars[1].low == D("98.00") and bars[1].volume == D("8")
    assert market.klines("ETHUSDT", 60_000, limit=2)[0].open_time == T0 + 2 * 60_000
    assert [b.open_time for b in market.klines("ETHUSDT", 60_000, start=T0 + 60_000, limit=2)] == [
        T0 + 60_000,
        T0 + 120_000,
    ]
    assert market.klines("ETHUSDT", 300_000) == []  # the first 5-minute bar is not closed yet
    market.advance(steps=2)
    [five] = market.klines("ETHUSDT", 300_000)
    assert (five.open, five.high, five.low, five.close) == (D("100.00"), D("104.00"), D("97.00"), D("99.20"))
    assert five.volume == D("28") and five.close_time == T0 + 300_000 - 1


def test_a_limit_buy_fills_at_its_price_when_the_low_touches_it_limited_by_volume(tmp_path: Path) -> None:
    market = make_market(tmp_path)
    engine = market.engine
    req = OrderRequest(
        symbol="ETHUSDT",
        side=Side.BUY,
        type=OrderType.LIMIT,
        quantity=D("3"),
        price=D("98.50"),
        time_in_force=TimeInForce.GTC,
        client_order_id="b-000001",
    )
    engine.place("a", req)
    market.step()  # open 100.50: untouched
    assert engine.get_order("a", "ETHUSDT", client_order_id="b-000001").status is OrderStatus.NEW
    market.step()  # low 98.00: touched, but this quarter of the candle traded only 2
    order = engine.get_order("a", "ETHUSDT", client_order_id="b-000001")
    assert order.status is OrderStatus.PARTIALLY_FILLED and order.executed_qty == D("2")
    market.advance(steps=2)  # high 103, close 102: not touched again
    assert engine.get_order("a", "ETHUSDT", client_order_id="b-000001").executed_qty == D("2")
    market.advance(steps=2)  # next candle 102 -> 104: not touched
    market.step()  # low 97: the rest fills, still at 98.50
    order = engine.get_order("a", "ETHUSDT", client_order_id="b-000001")
    assert order.status is OrderStatus.FILLED
    assert {t.price for t in engine.trades("a")} == {D("98.50")}


def test_max_fill_and_pushed_prices(tmp_path: Path) -> None:
    market = make_market(tmp_path)
    engine = market.engine
    market.knobs["ETHUSDT"].max_fill = D("0.5")
    engine.place(
        "a",
        OrderRequest(
            symbol="ETHUSDT", side=Side.SELL, type=OrderType.LIMIT, quantity=D("1.2"), price=D("101"),
            time_in_force=TimeInForce.GTC,
        ),
    )  # fmt: skip
    fills = []
    for _ in range(3):
        market.push_price("ETHUSDT", D("101.5"))
        fills.append(engine.orders("a")[0].executed_qty)
    assert fills == [D("0.5"), D("1.0"), D("1.2")]
    assert market.price("ETHUSDT") == D("101.5")


def test_same_seed_same_market_and_reset_replays_it(tmp_path: Path) -> None:
    def run(m: Market) -> list[D]:
        return [t.price for _ in range(40) for t in m.step()]

    a, b = make_market(tmp_path, csv=None, seed=5), make_market(tmp_path, csv=None, seed=5)
    first = run(a)
    assert first == run(b)
    assert first != run(make_market(tmp_path, csv=None, seed=6))
    assert len(set(first)) > 10
    a.reset()
    assert run(a) == first
    tick = a.engine.quote("ETHUSDT").price
    assert tick == first[-1]


def test_candles_respect_tick_and_high_low(tmp_path: Path) -> None:
    market = make_market(tmp_path, csv=None, warmup=300)
    for c in market.history["ETHUSDT"]:
        assert c.low <= min(c.open, c.close) and c.high >= max(c.open, c.close)
        assert c.close % D("0.01") == 0 and c.volume >= 0
    assert market.avg_price("ETHUSDT") > 0


def test_data_files_by_name_by_directory_and_by_pairs(tmp_path: Path) -> None:
    (tmp_path / "binanceus_BTCUSDT_1m_2023.csv").write_text(ROWS)
    (tmp_path / "binanceus_BTCUSDC_1m_2023.csv").write_text(ROWS)
    found = data_files(str(tmp_path), ["BTCUSDT", "ETHUSDT", "BTCUSDC"])
    assert {k: v.name for k, v in found.items()} == {
        "BTCUSDT": "binanceus_BTCUSDT_1m_2023.csv",
        "BTCUSDC": "binanceus_BTCUSDC_1m_2023.csv",
    }
    single = tmp_path / "prices.csv"
    single.write_text(ROWS)
    assert data_files(str(single), ["ETHUSDT"]) == {"ETHUSDT": single}
    assert data_files(f"ETHUSDT={single}", ["ETHUSDT"]) == {"ETHUSDT": single}
    with pytest.raises(DataError):
        data_files(f"ETHUSDT={tmp_path / 'missing.csv'}", ["ETHUSDT"])
    with pytest.raises(DataError):
        data_files(f"DOGEUSDT={single}", ["ETHUSDT"])


# --------------------------------------------------------------------------- bounded history
CAP = 2000  # SIM_HISTORY_MAX in these tests: trimmed 200 at a time, down to 1800


def capped_and_full(tmp_path: Path, *, warmup: int = 1900, candles: int = 600) -> tuple[Market, Market]:
    """The same random walk twice: one keeping CAP candles, one keeping all (the reference)."""
    capped = make_market(tmp_path, csv=None, warmup=warmup, history_max=CAP)
    full = make_market(tmp_path, csv=None, warmup=warmup)
    capped.advance(candles=candles)
    full.advance(candles=candles)
    return capped, full


def test_history_is_trimmed_to_its_cap_in_chunks_and_stays_contiguous(tmp_path: Path) -> None:
    market = make_market(tmp_path, csv=None, warmup=1900, history_max=CAP)
    sizes = []
    for _ in range(600):
        market.advance(candles=1)
        sizes.append(len(market.history["ETHUSDT"]))
    assert max(sizes) == CAP and min(sizes) == 1800  # never above the cap, never below a day
    trims = [i for i in range(1, len(sizes)) if sizes[i] < sizes[i - 1]]
    assert len(trims) == 3  # 1900 + 600 candles: a chunk of 201 at 2001 three times, not 500 dels
    hist, dropped = market.history["ETHUSDT"], market.dropped["ETHUSDT"]
    assert dropped == 3 * 201 and dropped + len(hist) == 1900 + 600
    assert hist[0].open_time == T0 + dropped * 60_000
    assert all(b.open_time - a.open_time == 60_000 for a, b in zip(hist, hist[1:], strict=False))
    assert market.current("ETHUSDT") is None and hist[-1].close_time == market.time

    long_warmup = make_market(tmp_path, csv=None, warmup=2500, history_max=CAP)
    assert len(long_warmup.history["ETHUSDT"]) == 1800 and long_warmup.dropped["ETHUSDT"] == 700
    long_warmup.reset()  # back to the start: the same trimmed warm-up, offsets counted again
    assert len(long_warmup.history["ETHUSDT"]) == 1800 and long_warmup.dropped["ETHUSDT"] == 700

    with pytest.raises(ValueError):
        make_market(tmp_path, csv=None, history_max=MIN_HISTORY - 1)


def test_klines_before_inside_and_after_the_retained_history(tmp_path: Path) -> None:
    capped, full = capped_and_full(tmp_path)
    first_kept = capped.history["ETHUSDT"][0].open_time  # minute 603: 10:03 on the first day
    last_closed = capped.history["ETHUSDT"][-1].open_time

    def kl(m: Market, interval: int = 60_000, **kw: int) -> list:
        return m.klines("ETHUSDT", interval, **kw)

    # inside: exactly what a venue that kept everything serves
    for kw in (
        {},
        {"limit": 1000},
        {"start": first_kept + 60_000},
        {"start": T0 + 2000 * 60_000, "limit": 7},
    ):
        assert kl(capped, **kw) == kl(full, **kw), kw
    inside = {"start": first_kept + 3600_000, "end": first_kept + 2 * 3600_000}
    assert kl(capped, **inside) == kl(full, **inside) and len(kl(capped, **inside)) == 61
    # before: what is kept, from the oldest kept candle on (a venue with limited history)
    before = kl(capped, start=T0, limit=10)
    assert [b.open_time for b in before] == [first_kept + i * 60_000 for i in range(10)]
    assert before == kl(full, start=first_kept, limit=10)
    assert kl(capped, start=T0 - 10 * 86_400_000, end=T0 + 60_000) == []  # wholly before: nothing
    assert kl(capped, end=first_kept - 1) == []
    assert kl(capped, start=T0, end=first_kept)[0].open_time == first_kept
    # after: nothing closed there yet
    assert kl(capped, start=last_closed + 60_000) == []
    assert kl(capped, start=last_closed)[-1] == capped.history["ETHUSDT"][-1]
    # aggregated: a bar that began before the kept history would miss minutes, so it is left out
    hours = kl(capped, 3600_000, start=T0)
    assert hours[0].open_time == T0 + 11 * 3600_000 and hours == kl(full, 3600_000, start=T0 + 11 * 3600_000)
    assert kl(capped, 3600_000) == kl(full, 3600_000)[-len(hours) :]
    assert kl(full, 86_400_000, start=T0) and kl(capped, 86_400_000, start=T0) == []  # day 1 lost 10 h


def test_24h_ticker_avg_price_and_stream_bars_after_trimming(tmp_path: Path) -> None:
    capped, full = capped_and_full(tmp_path)
    assert capped.dropped["ETHUSDT"] > 0
    for _ in range(2):  # between candles, then with one in progress
        assert capped.window("ETHUSDT") == full.window("ETHUSDT")
        assert capped.avg_price("ETHUSDT") == full.avg_price("ETHUSDT")
        assert capped.bar("ETHUSDT", 3600_000) == full.bar("ETHUSDT", 3600_000)
        capped.advance(steps=2)
        full.advance(steps=2)
    day = capped.window("ETHUSDT")
    assert day.open_time == capped.history["ETHUSDT"][-1440].open_time and day.close_time == capped.time


def test_sim_history_max_setting(tmp_path: Path) -> None:
    assert load_sim_config({}).history_max == DEFAULT_HISTORY_MAX == 43_200
    assert load_sim_config({"SIM_HISTORY_MAX": "4320"}).history_max == 4320
    assert load_sim_config({"SIM_HISTORY_MAX": "0"}).history_max == 0  # keep everything
    for bad in ("1440", "-1", "lots", "2.5"):
        with pytest.raises(ConfigError, match="SIM_HISTORY_MAX"):
            load_sim_config({"SIM_HISTORY_MAX": bad})
    venue = Venue.build(SimConfig(symbols=("ETHUSDT",), speed=0, warmup=1600, history_max=MIN_HISTORY))
    market = venue.market  # the warm-up past the cap was trimmed a chunk of 60 below it: a day
    assert len(market.history["ETHUSDT"]) == 1440 and market.dropped["ETHUSDT"] == 160
    market.advance(candles=1)
    assert len(market.history["ETHUSDT"]) == 1441 and market.klines("ETHUSDT", 60_000, limit=1)
