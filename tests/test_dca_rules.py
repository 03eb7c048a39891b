"""DCA (docs/STRATEGIES.md §1): the worked examples of its section, then each rule on hand-made candles whose
right answer is worked out here. Candles go through the backtester (the paper venue's tick
path: open, low, high, close for a rising candle; open, high, low, close for a falling one);
partial fills and control actions are played by hand with the test Driver."""

from __future__ import annotations

from decimal import ROUND_CEILING, ROUND_FLOOR
from decimal import Decimal as D

import msgspec
import pytest

from backtest.engine import RunResult, Setup, run_backtest
from backtest.series import CandleSeries
from shared.candle_files import RawCandle
from shared.filters import SymbolFilters
from shared.messages import (
    BotSynced,
    CancelOrder,
    ControlAction,
    Notification,
    OrderStatus,
    PlaceOrder,
    Side,
)
from shared.order_lifecycle import HALTED
from shared.strategy import ParamsError
from shared.strategy.testing import Driver
from strategies.dca import DcaPhase, DcaStrategy
from strategies.dca_ladder import next_quote, next_step, next_target, safety_order, take_profit_price
from strategies.dca_params import DcaParams, parse_dca_params
from strategies.dca_plan import build_plan

F = SymbolFilters(
    symbol="BTCUSDT",
    base_asset="BTC",
    quote_asset="USDT",
    tick_size=D("0.01"),
    step_size=D("0.0001"),
    min_notional=D("5"),
)
TICK, STEP = D("0.01"), D("0.0001")


def down(x: D, q: D = TICK) -> D:
    return (x / q).to_integral_value(rounding=ROUND_FLOOR) * q


def up(x: D, q: D = TICK) -> D:
    return (x / q).to_integral_value(rounding=ROUND_CEILING) * q


def qty(quote: D, price: D) -> D:
    return down(quote / price, STEP)


def series(*rows: tuple[str, str, str, str]) -> CandleSeries:
    return CandleSeries.from_raw([RawCandle(60_000 * i, *row, "1000") for i, row in enumerate(rows)])


def flat(price: str) -> tuple[str, str, str, str]:
    return (price, price, price, price)


# The worked examples price at the candles' own prices: a book without spread, deep enough for any order.
FLAT_BOOK = {"spread_ticks": 0, "book_qty": D(10**6)}


def run(rows, filters: SymbolFilters = F, capital: str = "100000", **params) -> RunResult:
    p = parse_dca_params({"fee": "0", **params})
    setup = Setup(strategy=DcaStrategy(), params=p, filters=filters, capital=D(capital), fee_rate=p.fee,
                  **FLAT_BOOK)  # fmt: skip
    return run_backtest(setup, series(*rows), fast=False)


def open_by_tag(result: RunResult) -> dict[str, object]:
    return {r.tag: r for r in result.state.orders.values()}


def fills(result: RunResult) -> list[tuple[str, str, D, D]]:
    return [(f.tag, f.side, f.price, f.qty) for f in result.fills]


# --- the worked examples of docs/STRATEGIES.md §1 ----------------------------------------


def test_worked_examples():
    p = DcaParams(order_size_multiplier=D("1.03"), order_size_max=D("1000"))
    q1 = next_quote(p, D("300"), 1)
    assert q1 == D("309") and next_quote(p, q1, 2) == D("318.27")
    p = DcaParams(step_multiplier=D("1.05"))
    s1 = next_step(p, None)
    s2 = next_step(p, s1)
    assert (s1, s2, next_step(p, s2)) == (D("0.01"), D("0.0105"), D("0.011025"))
    assert next_target(DcaParams(), D("0.035")) == D("0.03325")
    assert take_profit_price(F, D("100"), D("0.035")) == D("103.50")
    # and the same through the ladder the bot places: 309 then 318.27 quote
    p = DcaParams(order_size_multiplier=D("1.03"), order_size_max=D("1000"), fee=D(0))
    so1, _ = safety_order(p, F, level=1, prev_price=D(100), prev_step=None, prev_raw=D(300), committed=D(300))
    so2, _ = safety_order(
        p, F, level=2, prev_price=so1.price, prev_step=so1.step, prev_raw=so1.raw_quote, committed=D(609)
    )
    assert (so1.quote, so1.price, so2.quote, so2.price) == (D("309"), D("99"), D("318.27"), D("98.01"))
    assert build_plan(DcaParams(fee=D(0)), D("100"), F).rows[0].tp_price == D("103.50")


def test_defaults_and_portuguese_names_load():
    p = parse_dca_params({})
    assert p == DcaParams()
    expected = {
        "base_order_quote": "300",
        "order_size_multiplier": "1.02",
        "order_size_min": "50",
        "order_size_max": "600",
        "take_profit": "0.035",
        "take_profit_multiplier": "0.95",
        "take_profit_min": "0.005",
        "take_profit_max": "0.05",
        "step": "0.01",
        "step_multiplier": "1",
        "step_min": "0.005",
        "step_max": "0.03",
        "fee": "0.001",
        "budget": "5000",
    }
    for name, value in expected.items():
        assert getattr(p, name) == D(value), name
    assert p.max_safety_orders == 20 and p.reinvest_profit is True
    doc = {
        "qty_inicial": 250.0,
        "multiplicador_qty": 1.03,
        "qty_minima": 40,
        "qty_maxima": 700,
        "lucro_alvo_inicial": 0.03,
        "multiplicador_lucro": 0.9,
        "lucro_alvo_minimo": 0.004,
        "lucro_alvo_máximo": 0.06,
        "recompra_queda_inicial": 0.02,
        "multiplicador_recompra": 1.05,
        "recompra_queda_minimo": 0.006,
        "recompra_queda_máximo": 0.04,
        "limite_recompras": 10,
        "taxa": 0.00075,
        "saldo_limite": 0,
        "lucro_reaplicar": "n",
    }
    p = parse_dca_params(doc)
    assert (p.base_order_quote, p.order_size_multiplier, p.take_profit_max) == (
        D("250.0"),
        D("1.03"),
        D("0.06"),
    )
    assert (p.step_max, p.max_safety_orders, p.fee, p.budget) == (D("0.04"), 10, D("0.00075"), D(0))
    assert p.reinvest_profit is False
    with pytest.raises(ParamsError, match="order_size_min"):
        parse_dca_params({"qty_minima": 700, "qty_maxima": 600})
    with pytest.raises(ParamsError, match="reinvest_profit"):
        parse_dca_params({"lucro_reaplicar": "talvez"})
    with pytest.raises(ParamsError, match="given twice"):
        parse_dca_params({"taxa": 0.001, "fee": 0.001})


def test_clamps_on_size_step_and_target():
    p = DcaParams(order_size_multiplier=D(2))
    assert next_quote(p, D(300), 1) == D(600) and next_quote(p, D(600), 2) == D(600)  # max 600
    assert next_quote(DcaParams(order_size_multiplier=D("0.1")), D(300), 1) == D(50)  # min 50
    p = DcaParams(step=D("0.02"), step_multiplier=D(2))
    assert next_step(p, None) == D("0.02") and next_step(p, D("0.02")) == D("0.03")  # max 3 %
    assert next_step(DcaParams(step_multiplier=D("0.1")), D("0.01")) == D("0.005")  # min 0.5 %
    assert next_target(DcaParams(take_profit_multiplier=D(2)), D("0.035")) == D("0.05")  # max 5 %
    assert next_target(DcaParams(take_profit_multiplier=D("0.1")), D("0.035")) == D("0.005")  # min 0.5 %
    # the clamped sizes are what the bot places: with multiplier 2 the second safety order is 600, not 1200
    r = run(
        [flat("100"), flat("100"), ("100", "100", "99", "99"), ("99", "99", "98.01", "98.01")],
        order_size_multiplier="2",
        budget="0",
    )
    so = [f for f in r.fills if f.tag.startswith("so")]
    assert [f.qty for f in so] == [qty(D(600), D(99)), qty(D(600), D("98.01"))]
    assert open_by_tag(r)["so3"].quantity == qty(D(600), D("97.02"))


# --- a cycle on hand-made candles -----------------------------------------------------------


def test_cycle_opens_with_a_market_buy_then_take_profit_and_first_safety_order():
    # candle 0 closes -> market buy of 300 quote; it fills at candle 1's open (123.45)
    r = run([flat("123.45"), flat("123.45")], fee="0.001")
    assert fills(r) == [("base1", "BUY", D("123.45"), qty(D(300), D("123.45")))]
    q0 = qty(D(300), D("123.45"))  # 2.4301
    held = q0 - up(q0 * D("0.001"), D("1E-8"))  # the fee is charged in the base bought (as Binance)
    cost = q0 * D("123.45")  # quote spent
    tp = open_by_tag(r)["tp1"]
    assert tp.side == Side.SELL and tp.quantity == down(held, STEP)
    assert tp.price == up(cost / held * D("1.035"))  # sell price rounded up
    so = open_by_tag(r)["so1"]
    assert so.price == down(D("123.45") * D("0.99")) == D("122.21")  # buy price rounded down
    assert so.quantity == qty(D(306), D("122.21"))  # 300 × 1.02, quantity rounded down
    assert r.state.phase == DcaPhase.ACTIVE and r.state.cycle == 1


def test_safety_fill_moves_average_target_and_take_profit_and_places_the_next_one():
    r = run([flat("100"), flat("100"), ("100", "100", "99", "99")])
    q0, q1 = D(3), qty(D(306), D(99))
    assert fills(r) == [("base1", "BUY", D(100), q0), ("so1", "BUY", D(99), q1)]
    avg = (q0 * 100 + q1 * 99) / (q0 + q1)
    tp = open_by_tag(r)["tp1"]
    assert tp.quantity == q0 + q1 and tp.price == up(avg * (1 + D("0.035") * D("0.95")))
    assert r.state.target == D("0.03325") and r.state.level == 1
    so2 = open_by_tag(r)["so2"]
    assert so2.price == D("98.01") and so2.quantity == qty(D("312.12"), D("98.01"))
    # the replaced take profit was cancelled, never filled
    assert sum(1 for f in r.fills if f.side == "SELL") == 0


def test_take_profit_closes_the_cycle_and_the_next_opens_at_once_with_the_reinvest_bonus():
    # rising candle 2: ticks 100, 100, 104, 104 -> the TP fills at the high tick, the new market
    # buy at the next tick (the close, 104)
    r = run([flat("100"), flat("100"), ("100", "104", "100", "104")], fee="0.001")
    q0 = D(3)
    held = q0 - D("0.003")  # the fee is charged in the base bought (as Binance)
    cost = q0 * 100
    tp_price = up(cost / held * D("1.035"))
    assert tp_price == D("103.61")
    proceeds = held * tp_price
    profit = proceeds - up(proceeds * D("0.001"), D("1E-8")) - cost
    bonus = down(profit / 21, D("1E-8"))
    new_qty = qty(D(300) + bonus, D(104))
    assert fills(r) == [
        ("base1", "BUY", D(100), q0),
        ("tp1", "SELL", tp_price, held),
        ("base2", "BUY", D(104), new_qty),
    ]
    st = r.state
    assert st.cycles_closed == 1 and st.profit_total == profit and st.bonus == bonus and st.cycle == 2
    orders = open_by_tag(r)
    assert "so1" in orders and orders["so1"].price == D("102.96")  # cycle 2's ladder, at step 1 again
    assert orders["so1"].quantity == qty(D(306) + bonus, D("102.96"))  # bonus after the clamp
    # cycle 1's safety order was cancelled when the take profit filled
    assert all(f.tag != "so1" or f.index > 2 for f in r.fills)
    closed = [n for n in r.notifications if n.kind == "cycle_closed"]
    assert len(closed) == 1 and D(closed[0].data["profit"]) == profit


def test_no_reinvest_keeps_the_buys_at_their_size():
    r = run([flat("100"), flat("100"), ("100", "104", "100", "104")], reinvest_profit="n")
    assert r.fills[-1].qty == qty(D(300), D(104)) and r.state.bonus == 0


def test_budget_cuts_the_last_safety_order_then_stops_the_ladder():
    rows = [flat("100"), flat("100"), ("100", "100", "99", "99"), ("99", "99", "98.01", "98.01")]
    rows += [("98.01", "98.01", "97.02", "97.02"), ("97.02", "97.02", "90", "90")]
    r = run(rows, order_size_multiplier="1", budget="1000")
    q1, q2 = qty(D(300), D(99)), qty(D(300), D("98.01"))
    spent = 300 + q1 * 99 + q2 * D("98.01")
    remaining = 1000 - spent  # 100.0015: above order_size_min 50, so the order is cut to it
    assert remaining > 50
    assert [(f.tag, f.price, f.qty) for f in r.fills if f.tag.startswith("so")] == [
        ("so1", D(99), q1),
        ("so2", D("98.01"), q2),
        ("so3", D("97.02"), qty(remaining, D("97.02"))),
    ]
    assert "so4" not in open_by_tag(r) and r.state.ladder_done  # nothing left: the bot waits for the TP
    assert any(n.kind == "info" and "budget" in n.text for n in r.notifications)
    total = sum(f.quote for f in r.fills)
    assert total <= 1000


def test_budget_remainder_under_the_minimum_stops_the_ladder_without_cutting():
    rows = [flat("100"), flat("100"), ("100", "100", "99", "99"), ("99", "99", "98.01", "98.01"), flat("90")]
    r = run(rows, order_size_multiplier="1", budget="940")  # 940 - 899.998... = 40 < order_size_min 50
    assert [f.tag for f in r.fills] == ["base1", "so1", "so2"]
    assert set(open_by_tag(r)) == {"tp1"} and r.state.ladder_done


def test_max_safety_orders_ends_the_ladder():
    rows = [flat("100"), flat("100"), ("100", "100", "99", "99"), ("99", "99", "98.01", "98.01"), flat("90")]
    r = run(rows, max_safety_orders=2)
    assert [f.tag for f in r.fills] == ["base1", "so1", "so2"]
    assert set(open_by_tag(r)) == {"tp1"}


def test_min_notional_orders_are_never_sent():
    f = SymbolFilters(
        symbol="BTCUSDT",
        base_asset="BTC",
        quote_asset="USDT",
        tick_size=TICK,
        step_size=STEP,
        min_notional=D(400),
    )
    r = run(
        [flat("100"), flat("100"), flat("100")],
        filters=f,
        base_order_quote="500",
        order_size_multiplier="0.5",
    )
    # safety order 1 would be 250 quote: under the min notional of 400, so the ladder ends there
    assert r.orders_placed == 2 and not r.rejected  # the market buy and the take profit only
    assert set(open_by_tag(r)) == {"tp1"} and r.state.ladder_done
    assert all(rec.quantity * rec.price >= 400 for rec in r.state.orders.values())


def test_plan_is_what_the_bot_places():
    # each candle falls exactly to the next level: the bot's orders must match the plan row by row
    p = DcaParams()
    plan = build_plan(p, D(100), F)
    rows = [flat("100"), flat("100")]
    prev = "100"
    for row in plan.placed[1:]:
        rows.append((prev, prev, str(row.price), str(row.price)))
        prev = str(row.price)
    rows.append(flat(prev))
    setup = Setup(strategy=DcaStrategy(), params=p, filters=F, capital=D(100000), fee_rate=p.fee, **FLAT_BOOK)
    r = run_backtest(setup, series(*rows), fast=False)
    buys = [f for f in r.fills if f.side == "BUY"]
    assert [(f.price, f.qty) for f in buys] == [(row.price, row.qty) for row in plan.placed]
    assert open_by_tag(r)["tp1"].price == plan.placed[-1].tp_price
    # the plan counts fees in quote; the venue charges a buy's fee in the base it buys
    assert r.state.position.cost == sum(f.quote for f in buys)
    assert r.state.position.base == sum(f.qty - f.fee for f in buys)
    assert plan.cut_level == len(plan.placed) - 1 and plan.placed[-1].budget_cut and r.state.ladder_done
    # the plan also shows the whole ladder, as if there were no budget
    assert len(plan.rows) == 21 and plan.rows[:-7] == plan.placed[:-1] and plan.total_cost > plan.placed_cost


# --- partial fills, control, replays (the test plays the exchange) --------------------------


def _opened(params=None) -> tuple[Driver, dict[str, PlaceOrder]]:
    d = Driver(DcaStrategy(), {"fee": "0", **(params or {})}, filters=F)
    base = d.candle("100", "100", "100", "100")[0]
    cmds = d.fill(base.cid, price="100")
    return d, {c.cid: c for c in cmds if isinstance(c, PlaceOrder)}


def placed(cmds: list) -> list[PlaceOrder]:
    return [c for c in cmds if isinstance(c, PlaceOrder)]


def _by_tag(d: Driver, tag: str):
    return next(r for r in d.state.orders.values() if r.tag == tag)


def test_partial_fill_replaces_the_take_profit_once_the_old_ones_cancel_is_confirmed():
    d2, _ = _opened()
    so1 = _by_tag(d2, "so1")
    tp_before = _by_tag(d2, "tp1")
    cmds = d2.fill(so1.cid, qty="1.5", status=OrderStatus.PARTIALLY_FILLED)
    cancels = [c.cid for c in cmds if isinstance(c, CancelOrder)]
    assert cancels == [tp_before.cid]
    assert placed(cmds) == []  # the old take profit may still fill: nothing new until it is gone
    cmds = d2.update(tp_before.cid, OrderStatus.CANCELED)
    places = placed(cmds)
    assert len(places) == 1 and places[0].side == Side.SELL and places[0].quantity == D("4.5")
    avg = (D(300) + D("1.5") * 99) / D("4.5")
    assert places[0].price == up(avg * D("1.03325"))
    assert d2.state.level == 0 and d2.state.so_cid == so1.cid  # the level is not done yet
    # the rest fills: TP again for the whole position (once the 4.5 one is cancelled), and
    # safety order 2 goes out at once
    cmds = d2.fill(so1.cid, qty=str(so1.quantity))
    assert [c.cid for c in cmds if isinstance(c, CancelOrder)] == [places[0].cid]
    assert [(c.side, c.price) for c in placed(cmds)] == [(Side.BUY, D("98.01"))]
    (tp,) = placed(d2.update(places[0].cid, OrderStatus.CANCELED))
    assert tp.side == Side.SELL and tp.quantity == D(3) + so1.quantity
    assert d2.state.level == 1 and d2.state.target == D("0.03325")  # target moved once for level 1


def test_safety_order_cancelled_after_a_partial_fill_counts_as_done():
    d, _ = _opened()
    so1 = _by_tag(d, "so1")
    d.fill(so1.cid, qty="1", status=OrderStatus.PARTIALLY_FILLED)
    cmds = d.update(so1.cid, OrderStatus.CANCELED, cum_qty="1", cum_quote="99")
    assert d.state.level == 1 and d.state.last_buy_price == D(99)
    so2 = next(c for c in cmds if isinstance(c, PlaceOrder) and c.side == Side.BUY)
    assert so2.price == D("98.01")


def test_a_replayed_fill_changes_nothing():
    d, _ = _opened()
    so1 = _by_tag(d, "so1")
    d.fill(so1.cid)
    state = d.state
    assert (
        d.update(so1.cid, OrderStatus.FILLED, cum_qty=str(so1.quantity), cum_quote=str(so1.quantity * 99))
        == []
    )
    assert d.state == state


def test_pause_keeps_orders_and_tracks_fills_resume_catches_up():
    d, _ = _opened()
    so1 = _by_tag(d, "so1")
    tp = _by_tag(d, "tp1")
    d.control(ControlAction.PAUSE)
    cmds = d.fill(so1.cid)
    assert [c for c in cmds if not isinstance(c, Notification)] == []  # no new order while paused
    assert d.state.level == 1 and d.state.position.base == D(3) + so1.quantity
    cmds = d.control(ControlAction.RESUME)
    assert [c.cid for c in cmds if isinstance(c, CancelOrder)] == [tp.cid]
    assert [(c.side, c.price) for c in placed(cmds)] == [(Side.BUY, D("98.01"))]
    (sell,) = placed(d.update(tp.cid, OrderStatus.CANCELED))
    assert sell.side == Side.SELL and sell.quantity == D(3) + so1.quantity


def test_stop_cancels_the_ladder_and_resume_puts_it_back():
    d, _ = _opened()
    so1, tp = _by_tag(d, "so1"), _by_tag(d, "tp1")
    cmds = d.control(ControlAction.STOP)
    assert sorted(c.cid for c in cmds if isinstance(c, CancelOrder)) == sorted([so1.cid, tp.cid])
    d.update(so1.cid, OrderStatus.CANCELED)
    d.update(tp.cid, OrderStatus.CANCELED)
    assert d.state.orders == {} and d.state.position.base == D(3)  # position kept
    cmds = d.control(ControlAction.RESUME)
    places = {c.side: c for c in cmds if isinstance(c, PlaceOrder)}
    assert places[Side.SELL].price == tp.price and places[Side.BUY].price == so1.price


def test_close_sells_the_position_and_a_resume_opens_a_new_cycle():
    d, _ = _opened()
    so1, tp = _by_tag(d, "so1"), _by_tag(d, "tp1")
    cmds = d.control(ControlAction.CLOSE)
    assert sorted(c.cid for c in cmds if isinstance(c, CancelOrder)) == sorted([so1.cid, tp.cid])
    assert placed(cmds) == []  # the take profit may still fill: the sale waits for the cancels
    assert placed(d.update(so1.cid, OrderStatus.CANCELED)) == []
    (sell,) = placed(d.update(tp.cid, OrderStatus.CANCELED))
    assert sell.side == Side.SELL and sell.quantity == D(3)
    d.fill(sell.cid, price="97")
    assert d.state.position.base == 0 and d.state.position.realised == D(-9)
    d.control(ControlAction.RESUME)
    base = d.candle("97", "97", "97", "97")[0]
    assert isinstance(base, PlaceOrder) and base.quote_quantity == D(300) and d.state.cycle == 2


# --- one live order per purpose (issue 12: a take profit replaced while the old one still filled) --


def _sells_out(d: Driver) -> list:
    return [r for r in d.state.orders.values() if r.side == Side.SELL]


def test_the_old_take_profit_filling_before_its_cancel_sizes_the_new_one_from_the_position():
    d, _ = _opened()
    so1, tp1 = _by_tag(d, "so1"), _by_tag(d, "tp1")
    d.fill(so1.cid, qty="1.5", status=OrderStatus.PARTIALLY_FILLED)  # position 4.5: tp1 (3) is stale
    assert d.state.orders[tp1.cid].cancel_requested and len(_sells_out(d)) == 1
    cmds = d.fill(tp1.cid)  # ... but it fills before the cancel lands: 1.5 left
    (tp2,) = placed(cmds)
    assert (tp2.side, tp2.quantity) == (Side.SELL, D("1.5"))  # sized from the position then
    avg = (300 + D("1.5") * 99) / D("4.5")  # the sale took cost out at the average
    assert tp2.price == up(avg * D("1.03325"))
    assert d.update(tp1.cid, OrderStatus.CANCELED) == []  # the late cancel answer changes nothing
    assert d.state.position.base == D("1.5") and d.state.position.avg_price == avg
    assert d.state.phase == DcaPhase.ACTIVE and d.state.cycles_closed == 0 and len(_sells_out(d)) == 1


def test_a_take_profit_is_never_placed_while_another_sell_may_still_fill():
    d, _ = _opened()
    so1, tp1 = _by_tag(d, "so1"), _by_tag(d, "tp1")
    for qty in ("0.5", "1", "2"):  # each partial fill makes the take profit stale again
        cmds = d.fill(so1.cid, qty=qty, status=OrderStatus.PARTIALLY_FILLED)
        assert placed(cmds) == [] and len(_sells_out(d)) == 1
    assert [c.cid for c in d.update(tp1.cid, OrderStatus.CANCELED) if isinstance(c, CancelOrder)] == []
    (tp,) = _sells_out(d)
    assert tp.quantity == D(5)  # one take profit, for the position when the cancel was confirmed


def test_a_cycle_is_booked_and_the_next_opened_only_once_its_buys_are_cancelled():
    d, _ = _opened()
    so1, tp1 = _by_tag(d, "so1"), _by_tag(d, "tp1")
    cmds = d.fill(tp1.cid)  # flat: the cycle closes, but so1 may still fill
    assert [c.cid for c in cmds if isinstance(c, CancelOrder)] == [so1.cid]
    assert placed(cmds) == [] and not any(
        isinstance(c, Notification) and c.kind == "cycle_closed" for c in cmds
    )
    assert d.state.phase is DcaPhase.CLOSING and d.state.cycle == 1
    assert d.candle("100", "100", "100", "100") == []  # no new cycle while an order of this one is open
    cmds = d.update(so1.cid, OrderStatus.CANCELED)
    closed = [c for c in cmds if isinstance(c, Notification) and c.kind == "cycle_closed"]
    assert len(closed) == 1 and D(closed[0].data["profit"]) == D(3) * (tp1.price - 100)
    (base,) = placed(cmds)
    assert base.side == Side.BUY and base.quote_quantity == 300 + d.state.bonus and d.state.cycle == 2


def test_a_buy_that_fills_while_the_cycle_closes_stays_in_that_cycle():
    d, _ = _opened()
    so1, tp1 = _by_tag(d, "so1"), _by_tag(d, "tp1")
    d.fill(tp1.cid)  # flat: so1's cancel is asked for ...
    cmds = d.fill(so1.cid)  # ... but it filled first
    # the cycle goes on: a take profit for what so1 bought and its ladder, no new cycle
    (tp,) = [c for c in placed(cmds) if c.side == Side.SELL]
    assert (tp.quantity, d.state.cycle, d.state.phase) == (so1.quantity, 1, DcaPhase.ACTIVE)
    assert [c.price for c in placed(cmds) if c.side == Side.BUY] == [D("98.01")]
    assert d.state.spent == 300 + so1.quantity * 99 and d.state.level == 1
    assert d.update(so1.cid, OrderStatus.CANCELED) == []  # the late cancel answer
    (so2,) = [c.cid for c in d.fill(tp.cid) if isinstance(c, CancelOrder)]
    cmds = d.update(so2, OrderStatus.CANCELED)
    closed = [c for c in cmds if isinstance(c, Notification) and c.kind == "cycle_closed"]
    profit = D(3) * (tp1.price - 100) + so1.quantity * (tp.price - 99)
    assert D(closed[0].data["profit"]) == profit == d.state.profit_total  # both sales, one cycle
    assert d.state.cycle == 2 and d.state.spent == 0  # the next cycle starts from nothing


def test_never_two_safety_buys_out():
    d, _ = _opened()
    so1 = _by_tag(d, "so1")
    d.control(ControlAction.STOP)
    d.update(so1.cid, OrderStatus.CANCELED)
    d.update(_by_tag(d, "tp1").cid, OrderStatus.CANCELED)
    d.control(ControlAction.RESUME)
    buys = [r for r in d.state.orders.values() if r.side == Side.BUY]
    assert len(buys) == 1 and buys[0].tag == "so1"
    for _ in range(3):  # candles, resumes, duplicates: still one
        d.candle("100", "100", "100", "100")
        d.control(ControlAction.RESUME)
        d.update(so1.cid, OrderStatus.CANCELED)
    assert len([r for r in d.state.orders.values() if r.side == Side.BUY]) == 1


def test_a_refused_take_profit_is_placed_again_on_the_next_candle_and_given_up_after_three():
    d, _ = _opened()
    tp = _by_tag(d, "tp1")
    sent = [tp]
    for n in range(3):
        cmds = d.update(sent[-1].cid, OrderStatus.REJECTED, reason="insufficient balance")
        assert placed(cmds) == []  # not in the same step
        if n < 2:
            assert DcaStrategy().wake(d.params, d.state).every_candle  # it needs the next candle
            (again,) = placed(d.candle("100", "100", "100", "100"))
            assert (again.side, again.quantity, again.price) == (Side.SELL, tp.quantity, tp.price)
            sent.append(d.state.orders[again.cid])
    assert any(isinstance(c, Notification) and "3 times in a row" in c.text for c in cmds)
    for _ in range(5):  # given up: the same terms are not sent again, candle after candle
        assert placed(d.candle("100", "100", "100", "100")) == []
    d.state = msgspec.structs.replace(d.state, sync="restart")  # nor after a restart's sync
    assert placed(d.send(BotSynced(bot=d.bot, venue=d.venue, token="restart", max_seq=d.state.seq))) == []
    (again,) = [c for c in placed(d.control(ControlAction.RESUME)) if c.side == Side.SELL]
    assert again.price == tp.price  # a person's resume tries once more


def test_a_take_profit_refused_while_the_venue_is_banned_is_never_given_up():
    """A venue halted by a ban refuses every order unseen (the order gateway's reason starts
    with shared.order_lifecycle.HALTED): not the terms' fault, so the bot places the take profit
    again candle after candle until the ban is over, instead of giving it up after three."""
    d, _ = _opened()
    tp = _by_tag(d, "tp1")
    sent = tp
    for _ in range(6):
        cmds = d.update(
            sent.cid, OrderStatus.REJECTED, reason=f"{HALTED}sim: IP banned by the venue for 600s"
        )
        assert not any(isinstance(c, Notification) and "times in a row" in c.text for c in cmds)
        (again,) = placed(d.candle("100", "100", "100", "100"))
        assert (again.side, again.quantity, again.price) == (Side.SELL, tp.quantity, tp.price)
        sent = d.state.orders[again.cid]
    assert not d.state.refusals


def test_opening_buy_that_fails_is_retried_on_the_next_candle():
    d = Driver(DcaStrategy(), {"fee": "0"}, filters=F)
    base = d.candle("100", "100", "100", "100")[0]
    cmds = d.update(base.cid, OrderStatus.REJECTED, reason="insufficient balance")
    assert any(isinstance(c, Notification) and c.kind == "error" for c in cmds)
    retry = d.candle("100", "100", "100", "100")[0]
    assert isinstance(retry, PlaceOrder) and retry.cid != base.cid


def test_waits_for_funds_when_the_balance_is_short():
    d = Driver(DcaStrategy(), {"fee": "0"}, filters=F, balances={"USDT": D(200), "BTC": D(0)})
    cmds = d.candle("100", "100", "100", "100")
    assert [c.kind for c in cmds] == ["error"]  # warned once, no order
    assert d.candle("100", "100", "100", "100") == []
    d.balances = {"USDT": D(1000), "BTC": D(0)}
    assert isinstance(d.candle("100", "100", "100", "100")[0], PlaceOrder)


def test_curve_mode_spreads_sizes_from_the_base_order_to_the_maximum():
    p = DcaParams(size_curve=D(2))  # x ** 2 over the 20 levels
    assert next_quote(p, D(999), 10) == D(300) + D(300) * D("0.25")  # x = 0.5, the previous size is ignored
    assert next_quote(p, D(0), 20) == D(600)
    sizes = [next_quote(p, D(0), k) for k in range(1, 21)]
    assert sizes == sorted(sizes) and sizes[0] == D(300) + D(300) * D("0.0025")


def test_dca_state_round_trips_through_the_runners_json():
    r = run([flat("100"), flat("100"), ("100", "100", "99", "99")], fee="0.001")
    strategy = DcaStrategy()
    data = strategy.encode_state(r.state)
    assert strategy.decode_state(data) == r.state and b'"phase":"active"' in data
