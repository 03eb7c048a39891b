"""Order lists in the backtester (backtest/sim.py, backtest/engine.py): a strategy's PlaceOrderList
and CancelOrderList carried out by the matching engine's own lists, every leg's OrderUpdates
built as a single order's are (with the list's cid)."""

from __future__ import annotations

from decimal import Decimal as D

import msgspec
import pytest

from backtest.engine import RunResult, Setup, run_backtest
from backtest.series import CandleSeries
from backtest.sim import SimVenue
from shared.candle_files import RawCandle
from shared.matching.symbols import spec_for
from shared.messages import (
    CancelOrderList,
    ListKind,
    OrderStatus,
    OrderType,
    PlaceOrder,
    PlaceOrderList,
    Side,
)
from shared.strategy import ORDERS_ONLY, BotOrder, Strategy, StrategyState, place_order
from shared.strategy.actions import next_cid
from shared.strategy.testing import BTC_FILTERS


class OcoParams(msgspec.Struct, frozen=True):
    tp: D = D("105")
    sl: D = D("95")
    cancel_at: int = -1  # the candle whose close cancels the list


class OcoState(StrategyState, frozen=True, kw_only=True):
    seen: tuple[tuple[str, str, str], ...] = ()  # (tag, status, list cid) of every update
    tags: dict[str, str] = {}
    list_cid: str = ""


class SellOco(Strategy[OcoParams, OcoState]):
    """Buys 1 at market when the first candle closes, then sells it with an OCO [tp, sl]."""

    name = "sell_oco"
    params_type = OcoParams
    state_type = OcoState

    def initial_state(self, params, ctx):
        return OcoState()

    def on_candle(self, params, state, candle, ctx):
        index = candle.open_time // 60_000
        if index == 0:
            state, cmd = place_order(
                state, ctx, side=Side.BUY, order_type=OrderType.MARKET, quantity=D(1), tag="entry"
            )
            return state, [cmd]
        if index == params.cancel_at and state.list_cid:
            return state, [
                CancelOrderList(list_cid=state.list_cid, bot=ctx.bot, venue=ctx.venue, symbol=ctx.symbol)
            ]
        return state, []

    def on_order_update(self, params, state, change, update, ctx):
        tag = change.after.tag
        state = msgspec.structs.replace(state, seen=(*state.seen, (tag, str(update.status), update.list_cid)))
        if tag != "entry" or update.status is not OrderStatus.FILLED:
            return state, []
        state, list_cid = next_cid(state, ctx)
        legs, orders = [], dict(state.orders)
        for tag, kind, price, stop in (
            ("tp", OrderType.LIMIT_MAKER, params.tp, None),
            ("sl", OrderType.STOP_LOSS, None, params.sl),
        ):
            state, cid = next_cid(state, ctx)
            orders[cid] = BotOrder(cid=cid, side=Side.SELL, order_type=kind, tag=tag, quantity=D(1), price=price, stop_price=stop, list_cid=list_cid)  # fmt: skip
            legs.append(PlaceOrder(cid=cid, bot=ctx.bot, venue=ctx.venue, symbol=ctx.symbol, side=Side.SELL, order_type=kind, quantity=D(1), price=price, stop_price=stop))  # fmt: skip
        state = msgspec.structs.replace(state, orders=orders, list_cid=list_cid)
        oco = PlaceOrderList(list_cid=list_cid, bot=ctx.bot, venue=ctx.venue, symbol=ctx.symbol, kind=ListKind.OCO, legs=tuple(legs))  # fmt: skip
        return state, [oco]

    def wake(self, params, state):
        return ORDERS_ONLY


def run(rows, params: OcoParams = OcoParams(), *, fast: bool = False) -> RunResult:
    series = CandleSeries.from_raw([RawCandle(60_000 * i, *row, "1000") for i, row in enumerate(rows)])
    setup = Setup(strategy=SellOco(), params=params, filters=BTC_FILTERS, capital=D(100000), fee_rate=D(0),
                  spread_ticks=0, book_qty=D(10**6))  # fmt: skip
    return run_backtest(setup, series, fast=fast)


FLAT = ("100", "100", "100", "100")


@pytest.mark.parametrize("fast", [False, True])
def test_sell_oco_limit_leg_fills_and_the_stop_expires(fast: bool) -> None:
    result = run([FLAT, FLAT, ("100", "106", "99", "105"), FLAT], fast=fast)
    lcid = result.state.list_cid
    assert [(f.tag, f.price) for f in result.fills] == [("entry", D(100)), ("tp", D(105))]
    legs = [s for s in result.state.seen if s[0] != "entry"]
    assert ("tp", "FILLED", lcid) in legs and ("sl", "EXPIRED", lcid) in legs
    assert all(s[2] == lcid for s in legs) and lcid
    assert result.final_base == 0 and result.final_quote == D(100005)
    assert result.state.position.base == 0 and result.state.orders == {}
    assert result.rejected == []


def test_sell_oco_stop_leg_triggers_and_the_limit_expires() -> None:
    result = run([FLAT, FLAT, ("100", "101", "94", "95"), FLAT])
    assert [(f.tag, f.price) for f in result.fills] == [("entry", D(100)), ("sl", D(94))]
    legs = {s[0]: s[1] for s in result.state.seen if s[0] != "entry" and s[1] in ("FILLED", "EXPIRED")}
    assert legs == {"tp": "EXPIRED", "sl": "FILLED"}
    assert result.final_base == 0 and result.final_quote == D(99994)
    assert result.state.position.base == 0


def test_cancel_order_list_cancels_both_legs() -> None:
    result = run([FLAT, FLAT, FLAT, FLAT], OcoParams(cancel_at=2))
    legs = {s[0]: s[1] for s in result.state.seen if s[0] != "entry"}
    assert legs == {"tp": "CANCELED", "sl": "CANCELED"}
    assert result.final_base == 1 and result.state.orders == {}


def test_a_refused_oco_rejects_every_leg() -> None:
    result = run([FLAT, FLAT, FLAT], OcoParams(tp=D("99")))  # the limit leg below the price
    assert sorted(u.status for u in result.rejected) == [OrderStatus.REJECTED] * 2
    assert all("OCO_BAD_PRICES" in u.reason for u in result.rejected)
    assert result.final_base == 1


def test_a_client_id_used_again_is_refused_and_its_order_lives_on() -> None:
    venue = SimVenue(
        spec_for(BTC_FILTERS, spread_ticks=0), bot="b", venue="sim", symbol="BTCUSDT", quote=D(10000)
    )
    venue.step(D(100), 1, D(10), None)
    order = PlaceOrder(cid="b-000001", bot="b", venue="sim", symbol="BTCUSDT", side=Side.BUY,
                       order_type=OrderType.LIMIT, quantity=D(1), price=D(99))  # fmt: skip
    assert [u.status for u in venue.place(order, 2)] == [OrderStatus.NEW]
    [again] = venue.place(order, 3)
    assert again.status is OrderStatus.REJECTED and "DUPLICATE_ORDER" in again.reason
    assert [u.status for u in venue.step(D(99), 4, D(10), None)] == [OrderStatus.FILLED]
