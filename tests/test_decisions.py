"""Bots say why: each built-in strategy's decisions on a scripted price path, in the words a
trader reads, a repeated non-action said once; amounts formatted for people; and the backtest
warning when a bot's parameters do not fit the data (synthetic candles, no team data)."""

from __future__ import annotations

from decimal import Decimal as D
from pathlib import Path

import pytest
from typer.testing import CliRunner

from backtest.series import synthetic
from cli.backtest import backtest_app
from shared.display import price as human_price
from shared.messages import OrderStatus, PlaceOrder
from shared.strategy.testing import Driver
from strategies.dca import DcaStrategy
from strategies.fractal_trailing import FractalTrailingStrategy
from strategies.grid import GridStrategy
from tests.helpers.procs import ROOT
from tests.test_backtest_cli import write_csv

GRID = {"lower": "40000", "upper": "44000", "levels": "5", "quote_per_level": "100"}


def orders(cmds: list, side: str) -> list[PlaceOrder]:
    return [c for c in cmds if isinstance(c, PlaceOrder) and c.side == side]


def test_dca_says_why_it_places_each_order() -> None:
    d = Driver(
        DcaStrategy(),
        {"base_order_quote": "100", "step": "0.01", "take_profit": "0.01", "max_safety_orders": "2",
         "order_size_multiplier": "1", "step_multiplier": "1", "take_profit_multiplier": "1"},
    )  # fmt: skip
    (base,) = orders(d.candle("40000", "40100", "39900", "40000"), "BUY")
    cmds = d.fill(base.cid, price="40000")
    (so,), (tp,) = orders(cmds, "BUY"), orders(cmds, "SELL")
    d.update(tp.cid, OrderStatus.NEW)
    d.fill(so.cid)
    d.update(tp.cid, OrderStatus.CANCELED)  # the old take profit is gone: the new one goes out
    assert d.said() == [
        "cycle 1 opened: market buy for 100.00 USDT at about 40,000.00",
        "take profit at 40,400.00: 1.00% above the average buy 40,000.00",
        "safety order 1 placed at 39,600.00 for 100.00 USDT: 1.00% below the last buy at 40,000.00",
        "safety order 1 at 39,600.00: price fell 1.00% below the last buy",
        "safety order 2 placed at 39,204.00 for 100.00 USDT: 1.00% below the last buy at 39,600.00",
        "take profit moved to 40,197.20 after safety order 1 filled",
    ]
    assert d.decisions[3].fields == {"safety_order": "1", "price": "39600.00", "last_buy": "40000"}


def test_grid_says_once_that_it_waits_below_its_range_then_trades() -> None:
    g = Driver(GridStrategy(), GRID)
    for close in ("27000", "27050", "26990"):
        assert g.candle(close, close, close, close) == []  # below the range: no order at all
    assert g.said() == ["no entry: price 27,000.00 below the grid's range 40,000.00–44,000.00"]
    cmds = g.candle("41900", "42100", "41800", "42100")
    low_buy = min((c for c in orders(cmds, "BUY") if c.price is not None), key=lambda c: c.price)
    g.update(low_buy.cid, OrderStatus.NEW)
    g.fill(low_buy.cid)
    (sell,) = [r for r in g.state.orders.values() if r.tag == "s1"]
    g.fill(sell.cid)
    assert g.said(1) == [
        "grid started at 42,100.00 in its range 40,000.00–44,000.00: 2 buys below, 2 sells above "
        "(buying 0.0047 BTC at market for them)",
        "grid: buy level 0 at 40,000.00 filled, sell placed at 41,000.00",
        "grid: sell level 1 at 41,000.00 filled (round trip 1, profit 2.50 USDT), buy placed at 40,000.00",
    ]


def test_fractal_trailing_says_when_it_has_no_stop_and_when_it_raises_it() -> None:
    f = Driver(FractalTrailingStrategy(), {"entry": "100", "quantity": "1", "interval": "1m", "pad": "1"})

    def bar(low: str) -> list:
        close = str(D(low) + 2)
        return f.candle(close, str(D(close) + 1), low, close)

    for low in ("105", "104", "102", "104", "106"):  # 102 is a low fractal once two bars follow it
        bar(low)
    (first,) = f.state.orders.values()
    f.update(first.cid, OrderStatus.NEW)
    for low in ("108", "107", "103.5", "108", "110"):  # 103.5: a higher one
        bar(low)
    f.update(first.cid, OrderStatus.CANCELED)
    assert f.said() == [
        "protecting 1 BTC bought at 100.00 with a fractal trailing stop (1m bars, 14 days)",
        "no stop yet: no low fractal between the entry 100.00 and the price",  # once, not per bar
        "fractal stop set at 102.00 (new low fractal), limit 101.00",
        "stop-limit sell of 1 BTC placed: stop 102.00, limit 101.00",
        "fractal stop raised to 103.50 (new low fractal), limit 102.50",
        "stop-limit sell of 1 BTC placed: stop 103.50, limit 102.50",
    ]


# --- the backtest -------------------------------------------------------------------------------


LOW = synthetic(1500, seed=5, vol=0.002, start_ms=1_677_628_800_000)  # a day near 25,000


@pytest.fixture(scope="module")
def low_prices(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Candles far under the demo grid's range (41,400–42,600)."""
    return write_csv(LOW, tmp_path_factory.mktemp("low") / "candles.csv")


def test_backtest_of_the_demo_grid_on_lower_prices_warns_why_it_placed_no_order(low_prices: Path) -> None:
    bots = ROOT / "deploy" / "bots.demo.toml"
    run = CliRunner().invoke(
        backtest_app, [str(bots), "--bot", "demo_grid", "--data", str(low_prices), "--no-progress"]
    )
    assert run.exit_code == 0, run.output
    text = " ".join(run.output.split())  # the console wraps long lines
    low, high = (human_price(LOW.price(int(x))) for x in (LOW.low.min(), LOW.high.max()))
    first = human_price(LOW.price(int(LOW.close[0])))
    assert (
        f"warning: demo_grid placed no order: the grid's range 41,400.00–42,600.00 lies above every price "
        f"in the data ({low}–{high}); its last reason: no entry: price {first} below the grid's range "
        "41,400.00–42,600.00"
    ) in text
    assert "decisions (last 1):" in text


def test_backtest_shows_the_last_decisions_and_no_warning_when_the_bot_trades(
    low_prices: Path, tmp_path
) -> None:
    config = tmp_path / "dca.toml"
    config.write_text(
        'strategy = "dca"\nsymbol = "BTCUSDT"\n[params]\nbase_order_quote = 100\nstep = 0.004\n'
    )
    run = CliRunner().invoke(
        backtest_app, [str(config), "--data", str(low_prices), "--no-progress", "--decisions", "3"]
    )
    assert run.exit_code == 0, run.output
    assert "decisions (last 3):" in run.output and "warning:" not in run.output
    assert "cycle 1 opened" not in run.output  # only the last 3


def test_backtest_warns_when_no_order_of_a_grid_below_the_prices_filled(low_prices: Path, tmp_path) -> None:
    config = tmp_path / "grid.toml"
    config.write_text(
        'strategy = "grid"\nsymbol = "BTCUSDT"\n[params]\nlower = 10000\nupper = 12000\nlevels = 3\n'
    )
    run = CliRunner().invoke(backtest_app, [str(config), "--data", str(low_prices), "--no-progress"])
    assert run.exit_code == 0, run.output
    text = " ".join(run.output.split())
    start = human_price(LOW.price(int(LOW.close[0])))
    assert f"grid started at {start} above its range 10,000.00–12,000.00: 2 buys below, 0 sells above" in text
    assert "warning: the grid bot placed 2 orders and none filled: the grid's range 10,000.00–12,000.00 lies " \
           "below every price in the data (" in text  # fmt: skip
