"""Parity (issue 17): each built-in strategy and the example bot through the backtester and
through the live stack, on the same candles, must give the same orders, fills, position and profit.

Cases: dca, grid, fractal_trailing, the example breakout bot (examples/bots.example.toml,
examples/breakout.py) the example range bot (its range set around the first price) and smart trades one after the
other (tests/helpers/smart_trader.py: two targets, trailing stop, trailing take profit,
break-even) × real data (the March 2023 BTCUSDT minutes, when present: a window per
strategy where it trades) and a seeded random walk with volume generated here (rising and
falling stretches, so every strategy trades both ways).

The live stack is every service as a real process: one paper venue per bot (its own account,
book and liquidity, so the bots cannot interfere) replaying the candles, the market gateway
feeding `md:candles` from them, the order gateway, the notifier and one strategy runner holding
all four bots, driven step by step wherever an order may fill or the backtest acts (quiet
stretches a call each) and settled after each call (tests/helpers/parity_stack.py), so it is
deterministic. The bots' settings keep the free balance from ever deciding anything (DCA's
budget is under its capital, the fractal protects a fixed quantity): the runner reads balances
at most once a second, so such a decision would depend on timing. It runs once per data set; the
backtester runs each bot of the same bots file over the same candles. Asserted equal, exactly:
- every order command, in order: cid, side, type, price, quantity, quote quantity, stop;
- every fill, in order: the candle and which of its four ticks, price, quantity, commission and
  its asset;
- the bot's whole final state (position, realised profit, counters, open orders; only the
  orders' `created` times differ, as the two stamp ticks at different seconds);
- the venue's final balances and the backtest's final base and quote;
- every notification the notifier delivered for the bot (id, kind, level, text, data).

No setting is changed on either side: the backtester runs the paper venue's own matching engine
(shared/matching) with the venue's defaults — market orders at the next step walking its book,
resting orders sharing a quarter of the candle's volume per step (so the random walk's thin
minutes fill orders in parts, in both), stop-limit orders taken against the book when they
trigger, orders reached at one step filled best price first, fees in the asset received rounded
up to 1e-8, every filter — with the filters the venue published to the runner.
"""

from __future__ import annotations

import dataclasses
import tomllib
from collections.abc import Callable, Iterator
from decimal import Decimal as D
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from backtest.config import BacktestConfigError, load_backtest_config, to_setup
from backtest.engine import RunResult, Setup, run_backtest
from backtest.series import CandleSeries
from shared.candle_files import read_candles
from shared.matching.engine import Engine, MarketFill, OrderRequest, OrderStatus, OrderType, Side
from shared.matching.symbols import select
from shared.money import round_up
from shared.strategy.testing import BTC_FILTERS
from strategies.dca import DcaStrategy
from tests.helpers.parity import (
    MINUTE,
    RecordingBacktester,
    command_key,
    random_walk,
    write_slice,
)
from tests.helpers.parity_run import Case, Outcome, assert_same, run_cases
from tests.helpers.procs import ROOT
from tests.helpers.sample_data import SAMPLE_CANDLES
from tests.helpers.sim import SimControlError, running_sim

DATA = SAMPLE_CANDLES  # optional, beside the clone: tests/helpers/sample_data.py
WARMUP = 30  # candles of history each venue has before the pre-roll candle
COUNT = 430  # live candles per bot on real data
# Real data: the first row of each bot's window (from 2023-03-01 00:00 UTC), chosen so it trades.
# dca: 2023-03-13 08:00, a dip that fills two safety orders, then a rise that closes that cycle
# and a second one; grid: 2023-03-16 08:20, the price crosses its levels both ways; fractal:
# 2023-03-14 23:00, the stop trails up twice and is hit; breakout: 2023-03-13 13:40, an entry
# and its take profit; range_oco: 2023-03-13 15:20, entries by both legs of its OCO, stops hit,
# a break-even move and a take profit.
# smart: 2023-03-10 17:20, sixteen trades, their stops trailed up many times.
REAL_STARTS = {"dca": 17760, "grid": 22100, "fractal_trailing": 20100, "breakout": 18100, "range_oco": 18200,
               "smart": 14000}  # fmt: skip
# Random data: up, down, up, down (log drift per minute), 0.2 % noise a minute.
WALK_COUNT = 300
WALK = {"seed": 51, "price": 25000.0, "drift": [0.001, -0.0008, 0.001, -0.0012], "vol": 0.002}
WALK_START = 1_700_000_000_000 - 1_700_000_000_000 % MINUTE
CASES = list(REAL_STARTS)
EXAMPLE = ROOT / "examples" / "bots.example.toml"
# The Portuguese names and the default values (docs/STRATEGIES.md §1), read the same way by both paths.
DCA_PARAMS = {
    "qty_inicial": "300",
    "multiplicador_qty": "1.02",
    "lucro_alvo_inicial": "0.035",
    "multiplicador_lucro": "0.95",
    "recompra_queda_inicial": "0.01",
    "limite_recompras": 20,
    "saldo_limite": "5000",
    "lucro_reaplicar": "s",
}
FRACTAL_QTY = D("0.05")
# (quote, base) of each bot's venue account, and the backtest's capital and base
MONEY = {"dca": (D(10000), D(0)), "grid": (D(10000), D(0)), "fractal_trailing": (D(1000), FRACTAL_QTY),
         "breakout": (D(10000), D(0)), "range_oco": (D(10000), D(0)), "smart": (D(10000), D(0))}  # fmt: skip
SMART = {"quote": "1000", "gains": ["0.004", "0.008"], "shares": ["0.5"], "trailing_stop": "0.004",
         "trailing_take_profit": "0.002", "break_even": True, "again": True}  # fmt: skip

# What today's backtester does differently from the venue, per (case, data): see the module
# docstring. The matching merge (issue 17 item 2) is expected to turn each of these green.


def bot_entry(case: str, first_close: D) -> dict[str, Any]:
    """The bots-file table of a case; its venue is the case's own paper venue."""
    common = {"venue": f"p_{case}", "symbol": "BTCUSDT", "interval": "1m"}
    if case == "dca":
        return {"id": "dca1", "strategy": "dca", **common, "params": DCA_PARAMS}
    if case == "grid":  # nine levels 0.5 % apart around the first price
        lower, upper = round(first_close * D("0.98")), round(first_close * D("1.02"))
        return {"id": "grid1", "strategy": "grid", **common,
                "params": {"lower": lower, "upper": upper, "levels": 9, "quote_per_level": "200"}}  # fmt: skip
    if case == "fractal_trailing":  # 5-minute bars, a day's look-back, the account's base
        return {"id": "frac1", "strategy": "fractal_trailing", **common,
                "params": {"interval": "5m", "lookback_days": 1, "quantity": str(FRACTAL_QTY)}}  # fmt: skip
    if case == "smart":
        return {
            "id": "smart1",
            "strategy": "tests.helpers.smart_trader:SmartTrader",
            **common,
            "params": SMART,
        }
    examples = {b["id"]: b for b in tomllib.loads(EXAMPLE.read_text())["bots"]}
    if case == "range_oco":  # as shipped, its range 0.2 % around the first price, enabled
        example = {k: v for k, v in examples["range_btc"].items() if k != "enabled"}
        edges = {"top": round(first_close * D("1.002")), "bottom": round(first_close * D("0.998"))}
        return {**example, **common, "params": {**example["params"], **edges}}
    return {**examples["breakout_btc"], **common}  # the example bot as shipped, on its own venue


PARTLY = {"fractal_trailing", "smart"}  # the random walk's cases whose orders fill in parts there


def activity(case: str, result: RunResult, engine: RecordingBacktester) -> None:
    """The window exercises what it was chosen for (so an equal-but-empty run cannot pass)."""
    kinds = [f.order_type for f in result.fills]
    assert not result.rejected
    if case == "dca":  # a cycle closed after two safety buys; a market buy mid-candle after a take profit
        assert result.state.cycles_closed >= 2 and kinds.count("LIMIT") >= 4
        assert _cycles_closed_after_safety_fills([f.tag for f in result.fills]) >= 1
        assert any(f.order_type == "MARKET" and f.tick > 0 for f in result.fills)
    elif case == "grid":
        assert result.state.round_trips >= 3 and kinds.count("LIMIT") >= 8
    elif case == "fractal_trailing":
        cancels = [c for c, _ in engine.sent if command_key(c)[0] == "CANCEL"]
        assert (
            set(kinds) == {"STOP_LOSS_LIMIT"} and result.state.stop_moves >= 2 and cancels
        )  # in parts on thin minutes
    elif case == "range_oco":  # both legs of its buy OCO, a loss and a gain, a break-even move
        profits = [D(n.data["profit"]) for n in result.notifications if n.kind == "cycle_closed"]
        assert {f.order_type for f in result.fills if f.side == "BUY"} == {"STOP_LOSS", "LIMIT_MAKER"}
        assert min(profits) < 0 < max(profits)
        assert any(command_key(c)[0] == "CANCEL_LIST" for c, _ in engine.sent)
    elif case == "smart":  # trades one after the other, their stops trailed (lists and lone stops)
        moves = [command_key(c)[0] for c, _ in engine.sent if command_key(c)[0].startswith("CANCEL")]
        assert result.state.trades >= 15 and {"CANCEL", "CANCEL_LIST"} <= set(moves)
        assert {"LIMIT_MAKER", "STOP_LOSS"} <= set(kinds)
    else:
        assert kinds[0] == "MARKET" and kinds[1] in ("LIMIT_MAKER", "STOP_LOSS") and result.state.trades >= 1


def _cycles_closed_after_safety_fills(tags: list[str]) -> int:
    """DCA cycles whose take profit filled after at least two of their safety orders had."""
    count = safety = 0
    for tag in tags:
        safety = 0 if tag.startswith("base") else safety + tag.startswith("so")
        count += tag.startswith("tp") and safety >= 2
    return count


# --- the venue's market-fill mode on its own -----------------------------------------------------


def _engine(mode: MarketFill) -> Engine:
    e = Engine(select(["BTCUSDT"]), balances={"USDT": D(10000), "BTC": D(0)}, market_fill=mode)
    e.set_time(1_000)
    e.on_price("BTCUSDT", D("30000"))
    return e


def _market_buy(quote: str) -> OrderRequest:
    return OrderRequest(symbol="BTCUSDT", side=Side.BUY, type=OrderType.MARKET, quote_quantity=D(quote),
                        client_order_id="m1")  # fmt: skip


def test_next_step_market_order_waits_for_the_next_price_and_walks_the_book_there():
    now = _engine("now").place("a", _market_buy("300"))
    assert now.order.status == OrderStatus.FILLED and now.trades[0].price == D("30000.01")  # last + spread

    e = _engine("next_step")
    placed = e.place("a", _market_buy("300"))
    assert placed.order.status == OrderStatus.NEW and placed.trades == []
    assert [o.client_order_id for o in e.open_orders("a")] == ["m1"]
    assert e.balance("a", "BTC").free == 0
    e.set_time(2_000)
    e.on_price("BTCUSDT", D("31000"))
    order = e.get_order("a", "BTCUSDT", client_order_id="m1")
    (trade,) = e.trades("a")
    qty = D("0.00967")  # 300 / 31000.01 rounded down to the step
    assert (order.status, order.quantity, order.executed_qty) == (OrderStatus.FILLED, qty, qty)
    assert (trade.price, trade.qty, trade.commission, trade.time) == (
        D("31000.01"),
        qty,
        D("0.00000967"),
        2_000,
    )
    assert e.open_orders("a") == []


def test_next_step_market_order_can_be_cancelled_and_expires_without_funds():
    e = _engine("next_step")
    e.place("a", _market_buy("300"))
    e.cancel("a", "BTCUSDT", client_order_id="m1")
    e.on_price("BTCUSDT", D("30000"))
    assert (
        e.trades("a") == []
        and e.get_order("a", "BTCUSDT", client_order_id="m1").status == OrderStatus.CANCELED
    )
    e.place("a", OrderRequest(symbol="BTCUSDT", side=Side.BUY, type=OrderType.MARKET, quantity=D("0.3"),
                              client_order_id="m2"))  # fmt: skip
    e.set_balance("a", "USDT", D(100))  # spent elsewhere before the next price
    e.on_price("BTCUSDT", D("30000"))
    assert (
        e.get_order("a", "BTCUSDT", client_order_id="m2").status == OrderStatus.EXPIRED
        and e.trades("a") == []
    )


def test_control_api_switches_market_fill_and_reset_restores_it(tmp_path):
    with running_sim(tmp_path, symbols="BTCUSDT", market_fill=None) as sim:
        assert sim.control.state()["market_fill"] == "next_step"  # the default, as the backtester's
        assert sim.control.market(market_fill="now")["market_fill"] == "now"
        with pytest.raises(SimControlError, match="market_fill"):
            sim.control.market(market_fill="later")
        assert sim.control.reset()["market_fill"] == "next_step"


def test_backtester_defaults_are_the_venues():
    """A backtest without settings trades as the venue does by default: a market buy pays the ask
    of the venue's book (one tick over the price) at the next waypoint, fees are in the asset
    received and rounded up to 1e-8; `market_fill="now"` fills at the price of the moment."""
    flat, rise = (2500037, 2500037, 2500037, 2500037), (2500037, 2700000, 2500037, 2700000)
    o, h, lo, c = (np.array(col) for col in zip(flat, flat, rise, strict=True))
    series = CandleSeries.from_ints(o, h, lo, c, scale=2)
    strategy = DcaStrategy()
    setup = Setup(strategy=strategy, params=strategy.parse_params({}), filters=BTC_FILTERS)
    result = run_backtest(setup, series)
    assert [(f.tag, f.index, f.tick) for f in result.fills] == [
        ("base1", 1, 0),
        ("tp1", 2, 2),
        ("base2", 2, 3),
    ]
    assert [f.price for f in result.fills if f.order_type == "MARKET"] == [D("25000.38"), D("27000.01")]
    assert [f.fee_asset for f in result.fills] == ["BTC", "USDT", "BTC"]
    sell = result.fills[1]
    assert sell.fee == round_up(sell.quote * D("0.001"), D("0.00000001")) > sell.quote * D("0.001")
    now = run_backtest(dataclasses.replace(setup, market_fill="now"), series)
    assert [(f.index, f.tick, f.price) for f in now.fills][:1] == [(0, 3, D("25000.38"))]


def test_backtest_config_reads_the_venue_settings(tmp_path):
    path = tmp_path / "dca.toml"
    path.write_text(
        'strategy = "dca"\n[backtest]\nmarket_fill = "now"\nparticipation = "0.5"\nmax_fill = "2"\n'
    )
    setup = to_setup(load_backtest_config(path))
    assert (setup.market_fill, setup.participation, setup.max_fill) == ("now", D("0.5"), D(2))
    assert to_setup(load_backtest_config(tmp_path / "dca.toml")).spread_ticks is None  # the venue's book
    for bad, match in [("market_fill = \"later\"", "market_fill"), ("participation = 2", "participation"),
                       ("fee_asset = \"base\"", "fee_asset"), ("spread_ticks = -1", "spread_ticks")]:  # fmt: skip
        path.write_text(f'strategy = "dca"\n[backtest]\n{bad}\n')
        with pytest.raises(BacktestConfigError, match=match):
            load_backtest_config(path)


# --- the runs: one live stack per data set, shared by the cases --------------------------------


def _windows(data: str, tmp: Path) -> dict[str, tuple[Path, Path]]:
    """(venue CSV, live CSV) per case: WARMUP + 1 candles of history, then the live ones."""
    out = {}
    if data == "random":
        walk = random_walk(tmp / "walk.csv", count=WARMUP + 1 + WALK_COUNT, start_ms=WALK_START, **WALK)
        live = write_slice(walk, tmp / "walk_live.csv", WARMUP + 1, WALK_COUNT)
        return dict.fromkeys(CASES, (walk, live))
    for case, start in REAL_STARTS.items():
        venue = write_slice(DATA, tmp / f"{case}_venue.csv", start - WARMUP - 1, WARMUP + 1 + COUNT)
        out[case] = (venue, write_slice(DATA, tmp / f"{case}_live.csv", start, COUNT))
    return out


def _run(data: str, tmp: Path) -> dict[str, Outcome]:
    windows = _windows(data, tmp)
    cases = [
        Case(c, bot_entry(c, D(next(read_candles(windows[c][1])).close)), *windows[c], *MONEY[c])
        for c in CASES
    ]
    return run_cases(cases, tmp, WARMUP, label=data)


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Callable[[str], dict[str, Outcome]]]:
    done: dict[str, dict[str, Outcome]] = {}

    def get(data: str) -> dict[str, Outcome]:
        if data not in done:
            done[data] = _run(data, tmp_path_factory.mktemp(f"parity_{data}"))
        return done[data]

    yield get


def _case(case: str, data: str) -> Any:
    marks = []
    if data == "real":
        marks.append(pytest.mark.skipif(not DATA.exists(), reason=f"{DATA} not present"))
    return pytest.param(case, data, marks=marks, id=f"{case}-{data}")


@pytest.mark.slow
@pytest.mark.timeout(600)  # the first case of a data set runs its live stack
@pytest.mark.parametrize("case, data", [_case(c, d) for d in ("real", "random") for c in CASES])
def test_backtest_and_live_stack_give_the_same_orders_fills_position_and_profit(runs, case, data):
    run = runs(data)[case]
    activity(case, run.result, run.engine)
    if data == "random" and case in PARTLY:  # thin minutes fill an order in parts, in both runs
        assert len({f.cid for f in run.result.fills}) < len(run.result.fills)
    assert_same(run)
