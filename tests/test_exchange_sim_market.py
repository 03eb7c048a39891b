"""The paper venue's market: candle replay, the walk inside a candle, liquidity, klines, determinism."""

from __future__ import annotations

from decimal import Decimal as D
from pathlib import Path

import pytest

from services.exchange_sim.engine import Engine, OrderRequest, OrderType, Side, Status, TimeInForce
from services.exchange_sim.feeds import DataError, Feed, data_files, load_rows
from services.exchange_sim.market import Market
from services.exchange_sim.symbols import select

ROWS = """open_time,open,high,low,close,volume
2023-03-01 00:00:00+00:00,100.00,101.00,99.00,100.50,4
2023-03-01 00:01:00+00:00,100.50,103.00,98.00,102.00,8
2023-03-01 00:02:00+00:00,102.00,104.00,97.00,99.00,12
2023-03-01 00:04:00+00:00,99.00,99.50,98.50,99.20,4
"""
T0 = 1677628800000  # 2023-03-01T00:00:00Z


def make_market(tmp_path: Path, *, seed: int = 1, warmup: int = 1, csv: str | None = ROWS) -> Market:
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

    return Market(engine, feeds, origin_ms=origin, warmup=warmup)


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
    assert engine.get_order("a", "ETHUSDT", client_order_id="b-000001").status is Status.NEW
    market.step()  # low 98.00: touched, but this quarter of the candle traded only 2
    order = engine.get_order("a", "ETHUSDT", client_order_id="b-000001")
    assert order.status is Status.PARTIALLY_FILLED and order.executed_qty == D("2")
    market.advance(steps=2)  # high 103, close 102: not touched again
    assert engine.get_order("a", "ETHUSDT", client_order_id="b-000001").executed_qty == D("2")
    market.advance(steps=2)  # next candle 102 -> 104: not touched
    market.step()  # low 97: the rest fills, still at 98.50
    order = engine.get_order("a", "ETHUSDT", client_order_id="b-000001")
    assert order.status is Status.FILLED
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
