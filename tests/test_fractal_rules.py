"""Fractal trailing stop (docs/STRATEGIES.md §2): fractal detection, then each rule of the strategy on
hand-made candles whose right answer is worked out here. The test plays the exchange with the
Driver (shared/strategy/testing.py): order updates are cumulative, as the gateway sends them,
including partial fills, duplicates and a cancel that loses the race against a fill."""

from __future__ import annotations

import random
from decimal import Decimal as D

import pytest

from shared.messages import CancelOrder, ControlAction, Notification, OrderStatus, OrderType, PlaceOrder, Side
from shared.strategy import ParamsError
from shared.strategy.testing import Driver
from strategies.fractal_trailing import (
    FractalPhase,
    FractalState,
    FractalTrailingStrategy,
    parse_fractal_params,
)
from strategies.fractals import (
    Fractal,
    down_fractals,
    newest_confirmed_down,
    pick_stop,
    tracked_stops,
    trailing_stops,
    up_fractals,
)

# lows of five bars: bar 2 (102) is a down fractal, known when bar 4 closes
PEAK_DIP = ["105", "104", "102", "104", "106"]


def driver(**params) -> Driver:
    p = {"entry": "100", "quantity": "1", "interval": "1m", "pad": "1", **params}
    return Driver(FractalTrailingStrategy(), p)


def bar(d: Driver, low: str, close: str | None = None) -> list:
    """A 1-minute candle with this low; it closes 2 above unless told (open = close, high = close + 1)."""
    c = close if close is not None else str(D(low) + 2)
    return d.candle(c, str(D(c) + 1), low, c)


def bars(d: Driver, lows: list[str]) -> list:
    out: list = []
    for low in lows:
        out = bar(d, low)
    return out


def placed(cmds: list) -> list[PlaceOrder]:
    return [c for c in cmds if isinstance(c, PlaceOrder)]


def kinds(cmds: list) -> list[str]:
    return [c.kind for c in cmds if isinstance(c, Notification)]


# --- fractals ---------------------------------------------------------------------------------


def test_a_down_fractal_is_a_low_strictly_under_two_bars_each_side_known_two_bars_later():
    assert down_fractals([D(x) for x in PEAK_DIP]) == [Fractal(2, D(102), 4)]
    assert down_fractals([D(x) for x in ["105", "104", "102", "102", "106"]]) == []  # equal lows: none
    assert down_fractals([D(x) for x in ["105", "104", "102", "104"]]) == []  # bar N+2 not closed yet
    assert up_fractals([1, 2, 5, 3, 2, 4, 9, 4, 3]) == [Fractal(2, 5, 4), Fractal(6, 9, 8)]
    lows = [D(x) for x in PEAK_DIP]
    assert [newest_confirmed_down(lows[: i + 1]) for i in range(5)] == [None] * 4 + [D(102)]


def test_pick_stop_is_the_newest_fractal_between_entry_and_price_and_only_moves_up():
    assert pick_stop([D(103), D(105)], entry=D(100), price=D(110), current_stop=None) == D(105)
    assert pick_stop([D(103), D(111)], entry=D(100), price=D(110), current_stop=None) == D(103)  # 111 above
    assert pick_stop([D(103), D(99)], entry=D(100), price=D(110), current_stop=None) == D(
        103
    )  # 99 under entry
    assert (
        pick_stop([D(106), D(104)], entry=D(100), price=D(110), current_stop=D(105)) is None
    )  # newest lower


@pytest.mark.parametrize("seed", range(6))
def test_the_strategys_short_stack_gives_what_the_literal_rule_gives(seed):
    # random walks; the strategy keeps only the fractals that can still become the stop
    rng = random.Random(seed)
    price, lows, closes = 1000.0, [], []
    for _ in range(600):
        price *= 1 + rng.gauss(0.0005, 0.01)
        closes.append(D(f"{price:.2f}"))
        lows.append(D(f"{price * (1 - abs(rng.gauss(0, 0.006))):.2f}"))
    for entry in (closes[0], min(closes), D("900")):
        for lookback in (20, 84, 1000):
            want = trailing_stops(lows, closes, entry=entry, lookback=lookback)
            times = [i * 60_000 for i in range(len(lows))]
            got = tracked_stops(
                times, lows, closes, bar_ms=60_000, lookback_ms=lookback * 60_000, entry=entry
            )
            assert got == want, (seed, entry, lookback)


# --- params -----------------------------------------------------------------------------------


def test_params_defaults_aliases_and_percent_pad():
    p = parse_fractal_params({})
    assert (p.interval, p.lookback_days, p.entry, p.quantity) == ("4h", 14, None, None)
    assert p.limit_for(D(30000)) == D(29990)  # the default pad: 10 quote units
    p = parse_fractal_params({"entry_price": 25000, "amount": 0.5, "daysAgo": 7, "pad": "0.5%"})
    assert (p.entry, p.quantity, p.lookback_days, p.pad_percent) == (D(25000), D("0.5"), 7, D("0.5"))
    assert p.limit_for(D(200)) == D(199)
    with pytest.raises(ParamsError, match="interval"):
        parse_fractal_params({"interval": "7m"})
    with pytest.raises(ParamsError, match="not both"):
        parse_fractal_params({"pad": 5, "pad_percent": 1})


# --- the strategy -----------------------------------------------------------------------------


def test_first_fractal_above_entry_places_a_stop_loss_limit_when_it_is_confirmed():
    d = driver()
    for low in PEAK_DIP[:4]:
        assert placed(bar(d, low)) == []  # bar 2's low is not a fractal until bar 4 closes
    cmds = bar(d, PEAK_DIP[4])
    (stop,) = placed(cmds)
    assert (stop.side, stop.order_type, stop.quantity) == (Side.SELL, OrderType.STOP_LOSS_LIMIT, D(1))
    assert (stop.stop_price, stop.price) == (D(102), D(101))  # limit = fractal - pad
    assert "stop_moved" in kinds(cmds) and d.state.stop == D(102)
    assert d.state.position.base == 1 and d.state.position.cost == 100  # the position it protects


def test_a_fractal_at_or_under_the_entry_is_not_a_stop():
    d = driver(entry="102")
    assert placed(bars(d, PEAK_DIP)) == [] and d.state.stop is None
    bars(d, ["103", "104"])  # 103: under 104, 106 before it and 104 after
    assert d.state.stop is None  # not yet: known two bars later
    cmds = bar(d, "106")
    assert placed(cmds)[0].stop_price == D(103)


def test_a_higher_fractal_replaces_the_stop_once_the_cancel_is_confirmed():
    d = driver()
    first = placed(bars(d, PEAK_DIP))[0]
    d.update(first.cid, OrderStatus.NEW)
    cmds = bars(d, ["108", "107", "103.5", "108", "110"])  # 103.5: a fractal above 102
    assert [c.cid for c in cmds if isinstance(c, CancelOrder)] == [first.cid]
    assert placed(cmds) == []  # nothing new while the old one may still fill
    assert d.state.stop == D("103.5")
    cmds = d.update(first.cid, OrderStatus.CANCELED)
    (new,) = placed(cmds)
    assert (new.stop_price, new.price, new.quantity) == (D("103.5"), D("102.5"), D(1))
    assert d.update(first.cid, OrderStatus.CANCELED) == []  # a duplicate changes nothing


def test_the_stop_never_moves_down():
    d = driver()
    bars(d, PEAK_DIP)
    cmds = bars(d, ["104", "101.5", "104", "105"])  # a newer fractal 101.5: above entry, but lower
    assert d.state.stop == D(102) and placed(cmds) == [] and not any(isinstance(c, CancelOrder) for c in cmds)
    cmds = bars(d, ["103", "102.5", "103", "104"])  # a newer fractal over the stop: it moves up to it
    assert d.state.stop == D("102.5")


def test_the_stop_filling_closes_the_position_and_reports_the_profit_against_the_entry():
    d = driver()
    stop = placed(bars(d, PEAK_DIP))[0]
    cmds = d.fill(stop.cid, price="101", fee_rate="0.001")  # at its limit, fee 0.101 quote
    closed = [c for c in cmds if isinstance(c, Notification) and c.kind == "position_closed"]
    assert len(closed) == 1 and D(closed[0].data["profit"]) == D(101) - D("0.101") - D(100)
    assert d.state.phase == FractalPhase.DONE and d.state.position.base == 0 and d.state.orders == {}
    assert placed(bars(d, ["110", "109", "105", "109", "111", "113"])) == []  # nothing after that


def test_a_cancel_that_loses_the_race_against_the_fill_sells_nothing_twice():
    d = driver()
    first = placed(bars(d, PEAK_DIP))[0]
    cancel = bars(d, ["108", "107", "103.5", "108", "110"])
    assert any(isinstance(c, CancelOrder) for c in cancel)
    cmds = d.fill(first.cid, price="101")  # the old stop filled before the cancel arrived
    assert placed(cmds) == [] and d.state.phase == FractalPhase.DONE
    assert d.update(first.cid, OrderStatus.CANCELED) == []  # the late cancel answer changes nothing


def test_partial_fill_then_a_move_replaces_the_stop_for_what_is_left():
    d = driver()
    first = placed(bars(d, PEAK_DIP))[0]
    d.fill(first.cid, price="101", qty="0.4", status=OrderStatus.PARTIALLY_FILLED)
    assert d.state.position.base == D("0.6") and d.state.phase == FractalPhase.ACTIVE
    bars(d, ["108", "107", "103.5", "108", "110"])
    cmds = d.update(first.cid, OrderStatus.CANCELED, cum_qty="0.4", cum_quote="40.4")
    (new,) = placed(cmds)
    assert new.quantity == D("0.6") and new.stop_price == D("103.5")
    cmds = d.fill(new.cid, price="102.5")
    profit = D("0.4") * 101 + D("0.6") * D("102.5") - 100
    closed = next(c for c in cmds if isinstance(c, Notification) and c.kind == "position_closed")
    assert D(closed.data["profit"]) == profit and D(closed.data["avg_price"]) == (profit + 100) / 1


def test_a_rejected_stop_is_tried_again_on_the_next_candle_not_at_once():
    d = driver()
    first = placed(bars(d, PEAK_DIP))[0]
    cmds = d.update(first.cid, OrderStatus.REJECTED, reason="Account has insufficient balance")
    assert placed(cmds) == [] and "error" in kinds(cmds)
    again = placed(bar(d, "107"))
    assert len(again) == 1 and again[0].stop_price == D(102) and again[0].cid != first.cid


def test_terms_refused_three_times_in_a_row_are_not_sent_on_every_candle():
    d = driver()
    sent = [placed(bars(d, PEAK_DIP))[0]]
    for _ in range(2):
        d.update(sent[-1].cid, OrderStatus.REJECTED, reason="Account has insufficient balance")
        sent += placed(bar(d, "107"))
    cmds = d.update(sent[-1].cid, OrderStatus.REJECTED, reason="Account has insufficient balance")
    assert len({(o.order_type, o.stop_price, o.price, o.quantity) for o in sent}) == 1 and len(sent) == 3
    assert any("3 times in a row" in c.text for c in cmds if isinstance(c, Notification))
    for _ in range(20):
        assert placed(bar(d, "107")) == []  # given up: no id burnt per candle
    cmds = bars(d, ["108", "107", "103.5", "108", "110"])  # a higher stop: new terms go out
    assert [(o.order_type, o.stop_price) for o in placed(cmds)] == [(OrderType.STOP_LOSS_LIMIT, D("103.5"))]


def test_a_stop_refused_as_already_triggered_sells_with_a_limit_at_its_limit_price_at_once():
    d = driver()
    first = placed(bars(d, PEAK_DIP))[0]
    cmds = d.update(first.cid, OrderStatus.REJECTED, reason="Order would trigger immediately.")
    (sell,) = placed(cmds)
    assert (sell.side, sell.order_type, sell.price, sell.quantity) == (
        Side.SELL,
        OrderType.LIMIT,
        D(101),
        D(1),
    )
    assert sell.stop_price is None and d.state.stop_cid == sell.cid
    d.update(sell.cid, OrderStatus.NEW)
    for low in ["99", "97", "103", "108"]:  # it rests (or fills): nothing else goes out
        cmds = bar(d, low)
        assert placed(cmds) == [] and not any(isinstance(c, CancelOrder) for c in cmds)
    cmds = d.fill(sell.cid)
    assert "position_closed" in kinds(cmds) and d.state.phase == FractalPhase.DONE


def test_a_stop_to_place_while_the_price_is_under_it_goes_out_as_a_limit_sell():
    d = driver()
    first = placed(bars(d, PEAK_DIP))[0]
    d.update(first.cid, OrderStatus.NEW)
    bars(d, ["108", "107", "103.5", "108", "110"])  # stop moves up to 103.5: the old one is cancelled
    bar(d, "102", close="103")  # the price falls through 103.5 before the cancel is confirmed
    (sell,) = placed(d.update(first.cid, OrderStatus.CANCELED))
    assert (sell.order_type, sell.price, sell.stop_price) == (OrderType.LIMIT, D("102.5"), None)
    d.update(sell.cid, OrderStatus.NEW)
    assert placed(bar(d, "101", close="101.5")) == []  # not resent, not replaced, candle after candle
    # the same when the bot resumes after a stop with the price under the stop
    d.control(ControlAction.STOP)
    d.update(sell.cid, OrderStatus.CANCELED)
    (again,) = placed(d.control(ControlAction.RESUME))
    assert (again.order_type, again.price) == (OrderType.LIMIT, D("102.5"))


def test_quantity_defaults_to_the_free_base_balance_and_waits_when_balances_are_unknown():
    p = {"entry": "100", "interval": "1m", "pad": "1"}
    d = Driver(FractalTrailingStrategy(), p, balances={"BTC": D("0.25"), "USDT": D(0)})
    assert placed(bars(d, PEAK_DIP))[0].quantity == D("0.25")
    d = Driver(FractalTrailingStrategy(), {**p, "quantity": "2"}, balances={"BTC": D("0.5")})
    assert "info" in kinds(bar(d, "105")) and d.state.quantity == D("0.5")  # capped, with a warning
    d = Driver(FractalTrailingStrategy(), p)  # no quantity, no balances (the live runner today)
    assert kinds(bar(d, "105")) == ["error"] and d.state.phase is FractalPhase.NEW
    assert bars(d, PEAK_DIP[1:]) == []  # warned once, nothing placed
    d.balances = {"BTC": D(1)}
    cmds = bar(d, "107")  # it starts now, rebuilding the bars from the history it was handed
    assert placed(cmds)[0].stop_price == D(102)


def test_at_start_a_fractal_above_the_current_price_is_skipped():
    d = Driver(FractalTrailingStrategy(), {"entry": "100", "interval": "1m", "pad": "1"})
    bars(d, ["105", "104", "102", "104", "106", "111", "110", "108", "110", "112"])  # fractals 102, 108
    bar(d, "104", close="105")  # the price falls under 108 (balances still unknown: waiting)
    d.balances = {"BTC": D(1)}
    cmds = bar(d, "105", close="106")
    assert placed(cmds)[0].stop_price == D(102)  # 108 is not below the price: the older 102 is the stop


def test_percent_pad():
    d = driver(pad="0.5%")
    stop = placed(bars(d, PEAK_DIP))[0]
    assert stop.price == D("101.49")  # 102 × 0.995, rounded up to the tick for a sell


def test_bars_are_built_from_shorter_candles():
    d = driver(interval="5m")
    # 1-minute candles at minutes 1..; 5m bars open at 0, 5, 10 ...: bar lows 105, 104, 102, 104, 106
    per_bar = [
        ["106", "105", "107", "108"],
        ["104", "105", "106", "107", "108"],
        ["103", "102", "104", "105", "103"],
    ]
    per_bar += [["105", "104", "106", "105", "106"], ["107", "106", "108", "109"]]
    for lows in per_bar:
        for low in lows:
            assert placed(bar(d, low)) == []
    stop = placed(bar(d, "110"))[0]  # the candle of minute 24 closes the fifth bar
    assert stop.stop_price == D(102) and len(d.history) == 24


def test_fractals_older_than_the_lookback_stop_counting():
    # A fractal is always under the close of the bar that confirms it, so it is taken at once;
    # the window matters when the bars are built from history: at the start, or after a pause.
    def started_on_day_ten(lookback_days: int) -> FractalState:
        p = {"entry": "100", "interval": "1d", "lookback_days": lookback_days, "pad": "1"}
        d = Driver(FractalTrailingStrategy(), p)  # balances unknown: it waits, the driver keeps history
        for low in ["115", "112", "105", "112", "115", "116", "117", "118", "119"]:
            d.candle(str(D(low) + 2), str(D(low) + 3), low, str(D(low) + 2), minutes=1440)
        d.balances = {"BTC": D(1)}
        d.candle(
            "122", "123", "120", "122", minutes=1440
        )  # day 10: the bot starts, fractal 105 is 7 days old
        return d.state

    assert started_on_day_ten(14).stop == D(105)
    assert started_on_day_ten(7).stop is None  # bar 2 opened 7 days before bar 9: out of the window
    assert started_on_day_ten(8).stop == D(105)


def test_stop_and_resume_put_the_stop_back_and_a_pause_rebuilds_the_bars():
    d = driver()
    first = placed(bars(d, PEAK_DIP))[0]
    cmds = d.control(ControlAction.STOP)
    assert [c.cid for c in cmds if isinstance(c, CancelOrder)] == [first.cid]
    d.update(first.cid, OrderStatus.CANCELED)
    assert d.state.orders == {} and d.state.position.base == 1
    again = placed(d.control(ControlAction.RESUME))
    assert again[0].stop_price == D(102)
    d.update(again[0].cid, OrderStatus.NEW)
    d.control(ControlAction.PAUSE)
    bars(d, ["108", "107", "103.5", "108", "110"])  # unseen by the paused bot
    d.control(ControlAction.RESUME)
    cmds = bar(d, "111")  # candles were missed: rebuilt from the history, 103.5 is the stop now
    assert [c.cid for c in cmds if isinstance(c, CancelOrder)] == [again[0].cid] and d.state.stop == D(
        "103.5"
    )


def test_close_sells_the_position_at_market_and_reports_it():
    d = driver()
    stop = placed(bars(d, PEAK_DIP))[0]
    cmds = d.control(ControlAction.CLOSE)
    assert [c.cid for c in cmds if isinstance(c, CancelOrder)] == [stop.cid]
    assert placed(cmds) == []  # the stop may still fill: the sale waits for its cancel
    sell = placed(d.update(stop.cid, OrderStatus.CANCELED))[0]
    assert sell.order_type == OrderType.MARKET and sell.quantity == 1
    cmds = d.fill(sell.cid, price="107")
    assert "position_closed" in kinds(cmds) and d.state.position.realised == 7


def test_a_rebuild_over_a_long_history_keeps_only_the_fractals_that_can_still_be_picked():
    d = Driver(FractalTrailingStrategy(), {"entry": "100", "interval": "1m", "pad": "1"})
    lows = []
    for k in range(60):  # a falling zig-zag from 300: a fractal every 4 bars, each lower than the last
        top = 300 - 3 * k
        lows += [str(top), str(top - 1), str(top - 4), str(top - 2)]
    bars(d, lows)  # balances unknown: waiting, the driver keeps the history
    d.balances = {"BTC": D(1)}
    bar(d, "119.5", close="120")  # confirms 119 (123, 122 before it; 121, 119.5 after)
    assert d.state.stop == D(119)  # the newest fractal under the price of 120
    assert len(down_fractals([D(x) for x in lows])) > 50 and len(d.state.tracker.fractals) <= 2


def test_state_round_trips_through_the_runners_json():
    d = driver()
    bars(d, PEAK_DIP + ["108", "107"])
    s = FractalTrailingStrategy()
    assert s.decode_state(s.encode_state(d.state)) == d.state
    assert len(s.encode_state(d.state)) < 2000  # bars and fractals stay few, whatever the interval


class _KeepsFourteenDays(FractalTrailingStrategy):
    """The strategy as it was: the driver kept 14 days of candles whatever the params."""

    def history_needed(self, params, interval: str) -> int:
        return 14 * 1440


@pytest.mark.parametrize("seed", [3, 8])
def test_the_history_it_asks_for_is_enough_for_the_same_stop(seed):
    """A driver keeps only `history_needed` candles (the demo's 1-day look-back on 5-minute bars:
    1,471 one-minute candles instead of 20,160); a bot starting on a long history then picks the
    same stop as with 14 days kept, and the need follows the params."""
    p = {"entry": "90", "interval": "5m", "lookback_days": 1, "pad": "0.5"}
    strategy = FractalTrailingStrategy()
    params = strategy.parse_params(p)
    assert strategy.history_needed(params, "1m") == 1440 + 6 * 5 + 1
    assert strategy.history_needed(params, "5m") == 288 + 6 + 1
    assert strategy.history_needed(strategy.parse_params({"entry": "90"}), "1m") > 14 * 1440  # 4h bars, 14 d

    rng = random.Random(seed)
    small, full = Driver(strategy, p), Driver(_KeepsFourteenDays(), p)
    price = D(100)
    for _ in range(3000):  # balances unknown: both wait, their drivers keep the history
        price = max(D(50), price + D(rng.randint(-40, 41)) / 100)
        for d in (small, full):
            d.candle(str(price), str(price + D("0.3")), str(price - D("0.3")), str(price))
    assert len(small.ctx().history) == 1471 < len(full.ctx().history)
    for d in (small, full):
        d.balances = {"BTC": D(1)}
    started = [
        placed(d.candle(str(price), str(price + 1), str(price - D("0.1")), str(price))) for d in (small, full)
    ]
    assert small.state.stop == full.state.stop is not None
    assert [(o.stop_price, o.price) for o in started[0]] == [(o.stop_price, o.price) for o in started[1]]
