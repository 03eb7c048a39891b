"""Parity (issue 7 item 6): one DCA config through the backtester and through the live stack.

The live stack is every service as a real process — the paper venue replaying real March 2023
BTCUSDT minutes, the market gateway feeding `md:candles` from it, the order gateway, the
notifier and a strategy runner with the bot — driven one step at a time and settled after
each step (tests/helpers/parity.py), so it is deterministic. The backtester runs the same bots
file over the same candles. Asserted equal, exactly:
- every order command, in order: cid, side, type, price, quantity, quote quantity;
- every fill, in order: the candle and which of its four ticks, price, quantity, commission and
  its asset;
- the bot's whole final state (position, realised profit, cycle counters, ladder, open orders;
  only the orders' `created` times may differ: the two take them from different clocks);
- the venue's final balances and the backtest's final base and quote;
- the cycle-closed notifications the notifier delivered (cycle, profit, safety orders).

No setting is changed on either side: the backtester runs the paper venue's own matching engine
(shared/matching) with the venue's defaults — market orders at the next step walking its book,
resting orders sharing a quarter of the candle's volume per step (so they fill partly on thin
minutes, in both), fees in the asset received rounded up to 1e-8, every filter — and the filters
the venue published to the runner. Strategy events that share a tick (a fill and the candle close)
may reach the runner in either order; DCA ignores candles while a cycle is open, so it cannot
matter here.
"""

from __future__ import annotations

import dataclasses
import json
import time
from decimal import Decimal as D
from pathlib import Path

import numpy as np
import pytest

from backtest.config import BacktestConfigError, load_backtest_config, to_setup
from backtest.engine import RunResult, Setup, run_backtest
from backtest.series import CandleSeries
from shared.candle_files import read_candles
from shared.matching.engine import Engine, MarketFill, OrderRequest, OrderStatus, OrderType, Side
from shared.matching.symbols import CATALOG, select
from shared.money import round_up
from shared.strategy.testing import BTC_FILTERS
from strategies.dca import DcaStrategy
from tests.helpers.bots import write_bots
from tests.helpers.parity import (
    LiveStack,
    RecordingBacktester,
    command_key,
    comparable_state,
    run_recorded,
    tick_of,
    write_slice,
)
from tests.helpers.procs import wait_until
from tests.helpers.sample_data import SAMPLE_CANDLES
from tests.helpers.sim import SimControlError, running_sim

DATA = SAMPLE_CANDLES  # optional, beside the clone: tests/helpers/sample_data.py
# (first row, candles) of the data: from 2023-03-13 08:00 UTC, a dip that fills two safety orders,
# then a rise that closes that cycle and a second one; from 2023-03-12 11:00 UTC, three cycles
# with 0, 2 and 1 safety fills. Each take profit fills inside a candle and the next cycle's market
# buy at that candle's following tick.
WINDOWS = [(17760, 430), (16500, 830)]
WARMUP = 30
BOT = "dca1"
SIM_ENV = {"SIM_BALANCES": "USDT=10000,BTC=0"}  # the account: the backtest's capital
CAPITAL = D(10000)
# The Portuguese names and the default values (docs/STRATEGIES.md §1), read the same way by both paths.
PARAMS = {
    "qty_inicial": "300",
    "multiplicador_qty": "1.02",
    "lucro_alvo_inicial": "0.035",
    "multiplicador_lucro": "0.95",
    "recompra_queda_inicial": "0.01",
    "limite_recompras": 20,
    "saldo_limite": "5000",
    "lucro_reaplicar": "s",
}


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


# --- the parity run ------------------------------------------------------------------------------


def _backtest(bots_file: Path, live_csv: Path) -> tuple[RunResult, RecordingBacktester]:
    """(a) the backtester: the same bots file and candles, the venue's filters, its defaults."""
    cfg = load_backtest_config(bots_file, bot=BOT)
    cfg = dataclasses.replace(cfg, filters=CATALOG["BTCUSDT"].filters, capital=CAPITAL)
    return run_recorded(to_setup(cfg), CandleSeries.from_csv(live_csv))


def _cycles_closed_after_safety_fills(tags: list[str]) -> int:
    """Cycles whose take profit filled after at least two of their safety orders had."""
    count = safety = 0
    for tag in tags:
        safety = 0 if tag.startswith("base") else safety + tag.startswith("so")
        count += tag.startswith("tp") and safety >= 2
    return count


def _venue_fills(journal: list[dict]) -> list[tuple]:
    """The venue's trades as (candle open, tick, cid, side, price, qty, commission, asset)."""
    out = []
    for e in journal:
        if e["kind"] == "trade":
            t = e["trade"]
            candle = t["time"] - t["time"] % 60_000
            out.append((candle, tick_of(candle, t["time"]), e["client_order_id"], t["side"], D(t["price"]),
                        D(t["qty"]), D(t["commission"]), t["commission_asset"]))  # fmt: skip
    return out


@pytest.mark.skipif(not DATA.exists(), reason=f"{DATA} not present")
@pytest.mark.parametrize("start, count", WINDOWS, ids=["2023-03-13T08", "2023-03-12T11"])
def test_dca_backtest_and_live_stack_give_the_same_orders_fills_position_and_profit(
    env, sync_redis, tmp_path, start, count
):
    # the venue replays WARMUP candles of history, one pre-roll candle (LiveStack.start), the live ones
    venue_csv = write_slice(DATA, tmp_path / "venue_BTCUSDT.csv", start - WARMUP - 1, WARMUP + 1 + count)
    live_csv = write_slice(DATA, tmp_path / "live_BTCUSDT.csv", start, count)
    bots_file = write_bots(tmp_path / "bots.toml", {"id": BOT, "strategy": "dca", "venue": "sim",
                           "symbol": "BTCUSDT", "interval": "1m", "params": PARAMS})  # fmt: skip

    result, engine = _backtest(bots_file, live_csv)
    # the window exercises what it was chosen for
    assert not result.rejected and result.state.cycles_closed >= 2
    assert _cycles_closed_after_safety_fills([f.tag for f in result.fills]) >= 1
    assert any(f.order_type == "MARKET" and f.tick > 0 for f in result.fills)  # a market buy mid-candle
    closed_notes = [n.data for n in result.notifications if n.kind == "cycle_closed"]

    # (b) the live stack over the same candles
    started = time.monotonic()
    stack = LiveStack(env, sync_redis, tmp_path, BOT)
    try:
        stack.start(venue_csv, WARMUP, SIM_ENV, bots_file)
        calls = sum(stack.drive(list(read_candles(live_csv))))
        filters, journal, doc = stack.filters(), stack.sim.control.journal(), stack.doc()
        balances, live_commands = stack.sim.control.balances(), stack.commands()
        wait_until(
            lambda: len(_closed_notes(stack)) >= len(closed_notes), timeout=20, what="cycle notes delivered"
        )
        delivered = [n["data"] for n in _closed_notes(stack)]
    finally:
        codes = stack.stop()
    live_s = time.monotonic() - started
    assert filters == CATALOG["BTCUSDT"].filters  # what the runner traded with is what the backtest used

    # same order commands, in order
    assert [command_key(c) for c in live_commands] == [command_key(c) for c, _ in engine.sent]

    # same fills, in order, at the same tick of the same candle, with the same commission
    assert _venue_fills(journal) == [
        (int(result.series.open_time[f.index]), f.tick, f.cid, f.side, f.price, f.qty, f.fee, f.fee_asset)
        for f in result.fills
    ]

    # same final state: position, realised profit, cycles, ladder, open orders
    live_state = DcaStrategy().decode_state(json.dumps(doc["state"]).encode())
    assert live_state.position == result.state.position
    assert live_state.profit_total == result.state.profit_total > 0
    assert comparable_state(live_state) == comparable_state(result.state)

    # the same money at the venue as in the backtest
    total = {a: D(b["free"]) + D(b["locked"]) for a, b in balances.items()}
    assert (total["BTC"], total["USDT"]) == (result.final_base, result.final_quote)

    # the notifier delivered the cycle results the backtest reports
    assert delivered == closed_notes
    assert codes == dict.fromkeys(codes, 0), codes
    print(f"\nparity {start}+{count}: {calls} venue calls, {len(result.fills)} fills, live {live_s:.1f}s")


def _closed_notes(stack: LiveStack) -> list[dict]:
    assert stack.hook is not None
    return [d for d in stack.hook.docs() if d.get("kind") == "cycle_closed"]
