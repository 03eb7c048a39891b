"""Grid (docs/STRATEGIES.md §3): the level geometry, then each rule of the strategy on hand-made
candles whose right answer is worked out here. The test plays the exchange with the Driver
(shared/strategy/testing.py), sending cumulative order updates as the gateway does, including
partial fills, duplicates and rejections.

The grid used throughout: lower 90, upper 110, 5 levels -> 90, 95, 100, 105, 110; 100 quote per
level, so the intervals trade 100/90 = 1.11111, 100/95 = 1.05263, 100/100 = 1 and 100/105 = 0.95238
BTC (quantities round down to the 0.00001 step). Started at 101, the nearest level (100) stays
empty: buys at 90 and 95, sells at 105 and 110 once the opening market buy has brought the base.
"""

from __future__ import annotations

from decimal import Decimal as D

import pytest
from msgspec.structs import replace

from shared.filters import SymbolFilters
from shared.messages import (
    BotSynced,
    CancelOrder,
    ControlAction,
    Notification,
    OrderStatus,
    OrderType,
    OrderUpdate,
    PlaceOrder,
    Side,
)
from shared.strategy import EVERY_CANDLE, ParamsError
from shared.strategy.testing import BTC_FILTERS, Driver
from strategies.grid import GridStrategy
from strategies.grid_levels import GridError, interval_quantities, level_prices, starting_sides
from strategies.grid_state import GridPhase, IntervalSide

Q = [D("1.11111"), D("1.05263"), D("1"), D("0.95238")]
GRID = {"lower": "90", "upper": "110", "levels": 5, "quote_per_level": "100", "fee": "0"}


def flat(d: Driver, price: str) -> list:
    return d.candle(price, price, price, price)


def placed(cmds: list) -> list[PlaceOrder]:
    return [c for c in cmds if isinstance(c, PlaceOrder)]


def notes(cmds: list, kind: str) -> list[Notification]:
    return [c for c in cmds if isinstance(c, Notification) and c.kind == kind]


def started(**params) -> tuple[Driver, dict[str, PlaceOrder]]:
    """A grid started at 101 whose opening buy filled at 101: its resting orders by tag."""
    d = Driver(GridStrategy(), {**GRID, **params})
    init = next(c for c in placed(flat(d, "101")) if c.order_type == OrderType.MARKET)
    d.fill(init.cid, price="101")
    return d, by_tag(d)


def by_tag(d: Driver) -> dict[str, PlaceOrder]:
    return {r.tag: r for r in d.state.orders.values()}


# --- geometry ---------------------------------------------------------------------------------


def test_levels_arithmetic_and_geometric_rounded_down_to_the_tick():
    assert level_prices(D(90), D(110), 5, "arithmetic", BTC_FILTERS) == [D(90), D(95), D(100), D(105), D(110)]
    assert level_prices(D(100), D(121), 3, "geometric", BTC_FILTERS) == [D(100), D(110), D(121)]
    # 100 × 1.5^(i/3) = 100, 114.4714..., 131.0370..., 150
    assert level_prices(D(100), D(150), 4, "geometric", BTC_FILTERS) == [
        D(100),
        D("114.47"),
        D("131.03"),
        D(150),
    ]
    assert level_prices(D(10), D(11), 4, "arithmetic", BTC_FILTERS)[1] == D("10.33")  # 10.333… down
    with pytest.raises(GridError, match="collapse"):
        level_prices(D(100), D("100.05"), 10, "arithmetic", BTC_FILTERS)
    prices = level_prices(D(90), D(110), 5, "arithmetic", BTC_FILTERS)
    assert interval_quantities(prices, D(100), BTC_FILTERS) == Q
    with pytest.raises(GridError, match="NOTIONAL"):
        interval_quantities(prices, D(4), BTC_FILTERS)  # under the 5 USDT minimum
    assert starting_sides(prices, D(101)) == [
        Side.BUY,
        Side.BUY,
        Side.SELL,
        Side.SELL,
    ]  # 100 (nearest) left empty
    assert (
        starting_sides(prices, D(80)) == [Side.SELL] * 4 and starting_sides(prices, D(120)) == [Side.BUY] * 4
    )


def test_params_are_checked():
    s = GridStrategy()
    p = s.parse_params({"lower": 90, "upper": 110, "grids": 7, "mode": "geometric", "sl": 80, "tp": 120})
    assert (p.levels, p.spacing, p.stop_loss, p.take_profit, p.initial_buy) == (7, "geometric", 80, 120, True)
    for bad, field in [
        ({"lower": 110, "upper": 90}, "lower"),
        ({"lower": 90, "upper": 110, "levels": 1}, "levels"),
        ({"lower": 90, "upper": 110, "stop_loss": 95}, "stop_loss"),
        ({"lower": 90, "upper": 110, "take_profit": 100}, "take_profit"),
        ({"lower": 90, "upper": 110, "spacing": "curvy"}, "spacing"),
        ({"upper": 110}, "lower"),
    ]:
        with pytest.raises(ParamsError, match=field):
            s.parse_params(bad)


# --- start ------------------------------------------------------------------------------------


def test_start_buys_below_and_buys_the_sell_sides_base_at_market_then_sells_above():
    d = Driver(GridStrategy(), {**GRID, "fee": "0.001"})
    cmds = flat(d, "101")
    orders = placed(cmds)
    init = orders[0]
    assert (init.side, init.order_type) == (Side.BUY, OrderType.MARKET)
    assert init.quantity == D("1.95433")  # (1 + 0.95238) × 1.001 = 1.95433238, down to the step
    assert [(o.side, o.price, o.quantity) for o in orders[1:]] == [
        (Side.BUY, D(90), Q[0]),
        (Side.BUY, D(95), Q[1]),
    ]
    assert notes(cmds, "grid_started")
    # the fee taken in base leaves 1.95433 - 0.00195 = 1.95238: exactly what the two sells need
    cmds = d.update(
        init.cid, OrderStatus.FILLED, cum_qty="1.95433", cum_quote="197.38733", fee="0.00195", fee_asset="BTC"
    )
    sells = placed(cmds)
    assert [(o.side, o.price, o.quantity) for o in sells] == [
        (Side.SELL, D(105), Q[2]),
        (Side.SELL, D(110), Q[3]),
    ]
    unit = D("197.38733") / D("1.95238")
    assert [iv.cost for iv in d.state.intervals[2:]] == [Q[2] * unit, Q[3] * unit]
    assert d.state.spare == 0


def test_without_initial_buy_it_only_sells_base_it_bought():
    d = Driver(GridStrategy(), {**GRID, "initial_buy": False})
    cmds = flat(d, "101")
    assert [(o.side, o.price) for o in placed(cmds)] == [(Side.BUY, D(90)), (Side.BUY, D(95))]
    cmds = flat(d, "101")  # the intervals above get their buy once a candle closes above their lower level
    assert [(o.side, o.price, o.quantity) for o in placed(cmds)] == [(Side.BUY, D(100), Q[2])]
    assert placed(flat(d, "104")) == []
    assert [o.price for o in placed(flat(d, "105.5"))] == [D(105)]
    assert all(r.side == Side.BUY for r in d.state.orders.values())


def test_a_grid_the_filters_refuse_is_reported_and_stops():
    f = SymbolFilters(symbol="BTCUSDT", base_asset="BTC", quote_asset="USDT", tick_size=D("0.01"),
                      step_size=D("0.00001"), min_notional=D("500"))  # fmt: skip
    d = Driver(GridStrategy(), GRID, filters=f)
    cmds = flat(d, "101")
    assert placed(cmds) == [] and "NOTIONAL" in notes(cmds, "error")[0].text
    assert d.state.phase == GridPhase.ENDED and d.state.mode == "stopped"


# --- fills ------------------------------------------------------------------------------------


def test_a_buy_filled_at_level_i_places_a_sell_at_level_i_plus_1_and_the_round_trip_is_booked():
    d, orders = started()
    cmds = d.fill(orders["b1"].cid)  # the buy at 95
    (sell,) = placed(cmds)
    assert (sell.side, sell.price, sell.quantity) == (Side.SELL, D(100), Q[1])
    cmds = d.fill(sell.cid)  # sold at 100: one round trip
    (buy,) = placed(cmds)
    assert (buy.side, buy.price, buy.quantity) == (Side.BUY, D(95), Q[1])  # the sell at 100 buys again at 95
    (trip,) = notes(cmds, "round_trip")
    assert D(trip.data["profit"]) == Q[1] * 5 == d.state.profit_total and d.state.round_trips == 1


def test_a_sell_filled_at_level_i_places_a_buy_at_level_i_minus_1():
    d, orders = started()
    cmds = d.fill(orders["s3"].cid)  # the sell at 105 of base the opening buy got at 101
    (buy,) = placed(cmds)
    assert (buy.side, buy.price, buy.quantity) == (Side.BUY, D(100), Q[2])
    assert D(notes(cmds, "round_trip")[0].data["profit"]) == 4  # 1 × (105 - 101)
    cmds = d.fill(buy.cid)
    assert [(o.side, o.price) for o in placed(cmds)] == [(Side.SELL, D(105))]


def test_round_trip_profit_is_net_of_both_fees():
    d, orders = started()
    buy = orders["b1"]
    quote = Q[1] * 95
    d.update(buy.cid, OrderStatus.FILLED, cum_qty=Q[1], cum_quote=quote, fee=quote / 1000)
    sell = by_tag(d)["s2"]
    proceeds = Q[1] * 100
    cmds = d.update(sell.cid, OrderStatus.FILLED, cum_qty=Q[1], cum_quote=proceeds, fee=proceeds / 1000)
    profit = proceeds * D("0.999") - quote * D("1.001")
    assert D(notes(cmds, "round_trip")[0].data["profit"]) == profit == d.state.profit_total


def test_a_fee_taken_in_base_is_made_up_from_the_spare_base_so_the_step_leaves_no_dust():
    d = Driver(GridStrategy(), {**GRID, "fee": "0.001"})
    init = placed(flat(d, "101"))[0]  # 1.95433: 0.00195 more than the two sells need
    d.update(init.cid, OrderStatus.FILLED, cum_qty="1.95433", cum_quote="197.38733", fee="0.19738733")
    unit = (D("197.38733") + D("0.19738733")) / D("1.95433")
    assert d.state.spare == D("0.00195") and d.state.spare_cost == D("0.00195") * unit
    buy = by_tag(d)["b1"]  # 1.05263 at 95, the fee (0.1 %) taken in BTC: 1.05157737 arrive
    cmds = d.update(
        buy.cid, OrderStatus.FILLED, cum_qty=Q[1], cum_quote=Q[1] * 95, fee="0.00105263", fee_asset="BTC"
    )
    (sell,) = placed(cmds)
    assert sell.quantity == Q[1]  # the whole interval, 0.00105263 of it from the spare
    assert d.state.spare == D("0.00195") - D("0.00105263")
    lot = d.state.intervals[1]
    assert lot.cost == Q[1] * 95 + D("0.00105263") * unit  # each base sold is costed at what it paid


def test_partial_fills_place_the_counter_order_when_the_order_finishes():
    d, orders = started()
    buy = orders["b1"]
    cmds = d.fill(buy.cid, qty="0.5", status=OrderStatus.PARTIALLY_FILLED)
    assert placed(cmds) == []  # not piecemeal
    cmds = d.fill(buy.cid, qty="0.9", status=OrderStatus.PARTIALLY_FILLED)
    assert placed(cmds) == []
    cmds = d.update(buy.cid, OrderStatus.EXPIRED, cum_qty="0.9", cum_quote="85.5")  # the exchange ends it
    (sell,) = placed(cmds)
    assert (sell.price, sell.quantity) == (D(100), D("0.9"))  # what filled, one level up
    # a sell that ends partly filled books that part and puts the rest of the lot back on sale
    d.fill(sell.cid, qty="0.4", status=OrderStatus.PARTIALLY_FILLED)
    cmds = d.update(sell.cid, OrderStatus.CANCELED, cum_qty="0.4", cum_quote="40")
    (rest,) = placed(cmds)
    assert (rest.side, rest.price, rest.quantity) == (Side.SELL, D(100), D("0.5"))
    assert D(notes(cmds, "round_trip")[0].data["profit"]) == D("0.4") * 5
    cmds = d.fill(rest.cid)
    assert placed(cmds)[0].price == D(95) and d.state.profit_total == D("0.9") * 5


def test_duplicate_and_stale_updates_change_nothing():
    d, orders = started()
    buy = orders["b1"]
    d.fill(buy.cid)
    state = d.state
    assert d.update(buy.cid, OrderStatus.FILLED, cum_qty=Q[1], cum_quote=Q[1] * 95) == []
    assert d.update(buy.cid, OrderStatus.PARTIALLY_FILLED, cum_qty="0.5", cum_quote="47.5") == []
    assert d.state == state


def test_a_rejected_buy_waits_for_the_price_to_be_above_its_level():
    d, orders = started()
    cmds = d.update(orders["b0"].cid, OrderStatus.REJECTED, reason="insufficient balance")
    assert placed(cmds) == [] and notes(cmds, "error")
    assert GridStrategy().wake(d.strategy.parse_params(GRID), d.state) == EVERY_CANDLE
    (again,) = placed(flat(d, "101"))
    assert (again.side, again.price, d.state.orders[again.cid].tag) == (Side.BUY, D(90), "b0")


# --- stop-loss, take-profit, control ------------------------------------------------------------


def test_stop_loss_cancels_everything_then_sells_the_position_at_market():
    d, orders = started(stop_loss="85")
    d.fill(orders["b1"].cid)  # holding 1.95238 from the opening buy + 1.05263 bought at 95
    assert placed(d.candle("96", "96", "89", "90")) == []  # 89: above the stop-loss
    cmds = d.candle("90", "90", "84.9", "85")
    cancels = [c.cid for c in cmds if isinstance(c, CancelOrder)]
    assert sorted(cancels) == sorted(d.state.orders) and len(cancels) == 4
    assert placed(cmds) == [] and notes(cmds, "grid_stop_loss")  # the sale waits for the cancels
    for cid in cancels[:-1]:
        assert placed(d.update(cid, OrderStatus.CANCELED)) == []
    (sell,) = placed(d.update(cancels[-1], OrderStatus.CANCELED))
    assert (sell.side, sell.order_type, sell.quantity) == (Side.SELL, OrderType.MARKET, D("1.95238") + Q[1])
    cmds = d.fill(sell.cid, price="84.9")
    assert notes(cmds, "grid_ended") and d.state.position.base == 0 and d.state.phase == GridPhase.ENDED
    assert placed(flat(d, "100")) == []  # ended: nothing more
    d.control(ControlAction.RESUME)
    assert placed(flat(d, "101"))[0].order_type == OrderType.MARKET  # a resume starts a fresh grid


def test_take_profit_cancels_everything_and_keeps_the_base():
    d, orders = started(take_profit="115")
    cmds = d.candle("101", "115", "101", "114")
    assert sorted(c.cid for c in cmds if isinstance(c, CancelOrder)) == sorted(d.state.orders)
    assert placed(cmds) == [] and notes(cmds, "grid_ended") and d.state.phase == GridPhase.ENDED
    for cid in list(d.state.orders):
        assert placed(d.update(cid, OrderStatus.CANCELED)) == []
    assert d.state.position.base == D("1.95238")


def test_pause_tracks_fills_without_placing_and_resume_catches_up():
    d, orders = started()
    d.control(ControlAction.PAUSE)
    cmds = d.fill(orders["b1"].cid)
    assert placed(cmds) == [] and d.state.intervals[1].side is IntervalSide.SELL
    (sell,) = placed(d.control(ControlAction.RESUME))
    assert (sell.price, sell.quantity) == (D(100), Q[1])


def test_stop_cancels_and_resume_puts_every_order_back():
    d, orders = started()
    cmds = d.control(ControlAction.STOP)
    assert len([c for c in cmds if isinstance(c, CancelOrder)]) == 4
    for cid in list(d.state.orders):
        d.update(cid, OrderStatus.CANCELED)
    again = placed(d.control(ControlAction.RESUME))
    assert sorted((o.side, o.price, o.quantity) for o in again) == sorted(
        (o.side, o.price, o.quantity) for o in orders.values()
    )
    assert d.state.phase == GridPhase.ACTIVE


def test_wake_needs_only_the_stop_loss_and_take_profit_candles_once_every_order_is_out():
    d, _ = started(stop_loss="80", take_profit="120")
    w = GridStrategy().wake(d.params, d.state)
    assert (w.every_candle, w.below, w.above) == (False, D(80), D(120))
    state = d.state
    assert d.candle("101", "119", "81", "100") == [] and d.state == state  # such a candle is a no-op


def test_state_round_trips_through_the_runners_json():
    d, orders = started()
    d.fill(orders["b1"].cid)
    s = GridStrategy()
    assert s.decode_state(s.encode_state(d.state)) == d.state


# --- one order per interval, and refusals (issue 12) ----------------------------------------------


def _per_interval(d: Driver) -> dict[int, int]:
    """Open orders per interval (b{j} and s{j+1} both belong to interval j)."""
    out: dict[int, int] = {}
    for r in d.state.orders.values():
        if r.tag[:1] in ("b", "s") and r.tag[1:].isdigit():
            j = int(r.tag[1:]) - (r.tag[0] == "s")
            out[j] = out.get(j, 0) + 1
    return out


def test_a_resumed_grid_starts_only_once_the_old_ones_orders_are_gone_and_books_their_late_fills():
    d, orders = started(take_profit="115")
    cmds = d.candle("101", "115", "101", "114")  # take profit: every order is cancelled
    cancels = [c.cid for c in cmds if isinstance(c, CancelOrder)]
    d.control(ControlAction.RESUME)
    assert placed(flat(d, "101")) == []  # cancels not answered yet: no second order per interval
    cmds = d.fill(orders["s3"].cid)  # the sell at 105 filled before its cancel landed
    assert D(notes(cmds, "round_trip")[0].data["profit"]) == 4 and d.state.round_trips == 1
    for cid in cancels:
        d.update(cid, OrderStatus.CANCELED)
    cmds = flat(d, "101")
    assert notes(cmds, "grid_started") and placed(cmds)[0].order_type == OrderType.MARKET
    assert all(n == 1 for n in _per_interval(d).values())


def test_spare_base_sold_by_a_close_is_not_put_in_a_later_grids_lots():
    d = Driver(GridStrategy(), {**GRID, "fee": "0.001"})
    init = placed(flat(d, "101"))[0]
    d.update(init.cid, OrderStatus.FILLED, cum_qty="1.95433", cum_quote="197.38733", fee="0.19738733")
    assert d.state.spare == D("0.00195")
    cmds = d.control(ControlAction.CLOSE)
    sale = None
    for cid in [c.cid for c in cmds if isinstance(c, CancelOrder)]:
        sale = placed(d.update(cid, OrderStatus.CANCELED)) or sale
    (sell,) = sale
    assert sell.quantity == D("1.95433")  # the whole position, spare included
    d.fill(sell.cid, price="101")
    d.control(ControlAction.RESUME)
    flat(d, "101")  # a fresh grid: the spare sold by the close is gone
    assert d.state.spare == 0 and d.state.spare_cost == 0 and d.state.position.base == 0


def test_a_buy_refused_three_times_with_the_same_terms_is_not_placed_on_every_candle():
    d, orders = started()
    cid = orders["b0"].cid
    for n in range(3):
        cmds = d.update(cid, OrderStatus.REJECTED, reason="insufficient balance")
        assert placed(cmds) == []  # never in the same step
        if n < 2:
            (again,) = placed(flat(d, "101"))
            assert (again.price, again.quantity) == (D(90), Q[0])
            cid = again.cid
    assert any("3 times in a row" in c.text for c in notes(cmds, "error"))
    for _ in range(10):
        assert placed(flat(d, "101")) == []
    (again,) = placed(d.control(ControlAction.RESUME))  # a person's resume tries again
    assert (again.price, again.quantity) == (D(90), Q[0])


def test_a_lot_the_base_no_longer_covers_by_dust_is_sold_a_step_smaller_not_left_unsold():
    d, orders = started()
    # the books hold a fee's dust more base than the venue (a power cut's adopted order booked whole)
    short = D("0.000003")
    d.state = replace(d.state, position=replace(d.state.position, base=d.state.position.base - short))
    cmds = d.fill(orders["b1"].cid)  # the buy at 95 fills: its lot goes on sale at 100
    (sell,) = placed(cmds)
    assert sell.side == Side.SELL and sell.price == D(100)
    assert sell.quantity == Q[1] - D("0.00001")  # one step less: the base there is sold, not refused


def _found(d: Driver, cmd: PlaceOrder, filled: bool) -> list:
    """The gateway's update of an order it found at the venue (adopted): filled, or open."""
    d.now += 1
    qty = cmd.quantity if filled else D(0)
    return d.send(OrderUpdate(
        cid=cmd.cid, bot=d.bot, venue=d.venue, symbol=cmd.symbol, side=cmd.side, order_type=cmd.order_type,
        price=cmd.price, orig_qty=cmd.quantity, status=OrderStatus.FILLED if filled else OrderStatus.NEW,
        cum_filled_qty=qty, cum_quote_qty=qty * cmd.price, venue_ts=d.now, ts=d.now, adopted=True,
    ))  # fmt: skip


def test_a_cut_that_took_a_levels_round_trips_replays_them_claim_by_claim_even_across_a_candle():
    """A power cut took back the sale at 105, the buy at 100 it put out, that buy's sale and the
    next buy (the venue kept them all): once in step, the grid claims them one answer at a time,
    and a candle handled meanwhile (candles queue up during the sync) books none of them behind
    its back. It did: the held sale went into the position only, the claimed buy's lot went on
    sale again without base for it, and the interval kept that lot without an order for good."""
    d, orders = started()
    before, chain = d.state, [orders["s3"]]  # interval 2's orders at the venue: sell, buy, sell, buy
    for _ in range(3):
        chain += placed(d.fill(chain[-1].cid))
    want = d.state
    d.state = replace(before, sync="tok")  # Redis back to the sell at 105 being out
    d.fill(chain[0].cid)  # it filled: the gateway's reconciliation says so
    for n, cmd in enumerate(chain[1:]):
        _found(d, cmd, filled=n < 2)
    (buy,) = placed(d.send(BotSynced(bot=d.bot, venue=d.venue, token="tok", max_seq=want.seq)))
    assert buy.cid == chain[1].cid  # the buy at 100 again: the oldest held one claimed
    held = max(r.created for r in d.state.adopted.values())
    late = d.candle("102", "102", "102", "102", minutes=5)
    assert held < d.history[-1].open_time  # it opened after every held order
    assert placed(late) == [] and len(d.state.adopted) == 2  # and books none of them
    (sell,) = placed(_found(d, chain[1], filled=True))  # the claim's answer: its lot's sale claims
    assert sell.cid == chain[2].cid
    (buy,) = placed(_found(d, chain[2], filled=True))
    assert buy.cid == chain[3].cid
    assert placed(_found(d, chain[3], filled=False)) == []
    assert d.state.adopted == {} and d.state.intervals == want.intervals
    assert d.state.position == want.position and d.state.seq == want.seq
