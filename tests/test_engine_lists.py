"""Order lists in the matching engine (shared/matching/engine_lists.py): OCO, OTO, OTOCO."""

from __future__ import annotations

from decimal import Decimal as D

import pytest

from shared.matching.engine import (
    Engine,
    EngineError,
    EngineState,
    Event,
    Funds,
    ListEvent,
    OrderRequest,
    OrderStatus,
    OrderType,
    Reject,
    Side,
    TimeInForce,
)
from shared.matching.symbols import select
from shared.messages import ListKind

ACC = "acct"
BTC = "BTCUSDT"


@pytest.fixture
def engine() -> Engine:
    e = Engine(select([BTC]), market_fill="now")
    e.set_time(1_000)
    e.on_price(BTC, D("30000"))
    return e


@pytest.fixture
def events(engine: Engine) -> list[Event]:
    seen: list[Event] = []
    engine.add_listener(seen.append)
    return seen


def leg(side: str, type_: str, qty: str = "0.5", *, price: str | None = None, stop: str | None = None,
        cid: str | None = None) -> OrderRequest:  # fmt: skip
    kind = OrderType(type_)
    return OrderRequest(
        symbol=BTC,
        side=Side(side),
        type=kind,
        quantity=D(qty),
        price=D(price) if price else None,
        stop_price=D(stop) if stop else None,
        time_in_force=TimeInForce.GTC if kind in (OrderType.LIMIT, OrderType.STOP_LOSS_LIMIT) else None,
        client_order_id=cid,
    )


def sell_oco(qty: str = "0.5", tp: str = "31000", stop: str = "29000") -> list[OrderRequest]:
    return [
        leg("SELL", "LIMIT_MAKER", qty, price=tp, cid="tp"),
        leg("SELL", "STOP_LOSS", qty, stop=stop, cid="sl"),
    ]


def statuses(engine: Engine, ids: tuple[int, ...]) -> list[OrderStatus]:
    return [engine.find_order(i).status for i in ids]  # type: ignore[union-attr]


def test_sell_oco_locks_its_quantity_once(engine: Engine, events: list[Event]) -> None:
    placed = engine.place_list(ACC, ListKind.OCO, sell_oco(), "L1")
    assert placed.order_list.list_client_order_id == "L1" and not placed.order_list.done
    assert [o.list_id for o in placed.orders] == [placed.order_list.list_id] * 2
    assert engine.balance(ACC, "BTC") == Funds(D("0.5"), D("0.5"))
    kinds = [type(e).__name__ for e in events if not type(e).__name__.startswith("Balance")]
    assert kinds == ["OrderEvent", "OrderEvent", "ListEvent"]
    assert [lst.list_client_order_id for lst in engine.open_lists(ACC)] == ["L1"]


def test_limit_leg_trading_in_part_expires_the_stop(engine: Engine, events: list[Event]) -> None:
    placed = engine.place_list(ACC, ListKind.OCO, sell_oco(), "L1")
    events.clear()
    engine.on_price(BTC, D("31000"), liquidity=D("0.2"))
    tp, sl = (engine.find_order(o.order_id) for o in placed.orders)
    assert tp.status is OrderStatus.PARTIALLY_FILLED and tp.executed_qty == D("0.2")
    assert sl.status is OrderStatus.EXPIRED and sl.expire_reason == "OCO_TRIGGER"
    assert engine.balance(ACC, "BTC") == Funds(D("0.5"), D("0.3"))  # the rest of the limit leg, once
    done = [e for e in events if isinstance(e, ListEvent)]
    assert len(done) == 1 and done[0].order_list.done
    assert engine.open_lists(ACC) == []
    engine.on_price(BTC, D("31000"))
    assert engine.find_order(tp.order_id).status is OrderStatus.FILLED
    assert engine.balance(ACC, "BTC") == Funds(D("0.5"), D("0"))


def test_stop_leg_triggering_expires_the_limit(engine: Engine) -> None:
    placed = engine.place_list(ACC, ListKind.OCO, sell_oco(), "L1")
    engine.on_price(BTC, D("28900"))
    assert statuses(engine, placed.order_list.order_ids) == [OrderStatus.EXPIRED, OrderStatus.FILLED]
    assert engine.balance(ACC, "BTC") == Funds(D("0.5"), D("0"))
    assert engine.get_list(ACC, list_client_order_id="L1").done


def test_buy_oco_locks_the_neediest_leg(engine: Engine) -> None:
    legs = [
        leg("BUY", "STOP_LOSS_LIMIT", "0.1", price="31100", stop="31000"),
        leg("BUY", "LIMIT_MAKER", "0.1", price="29000"),
    ]
    engine.place_list(ACC, ListKind.OCO, legs)
    assert engine.balance(ACC, "USDT") == Funds(D("6890"), D("3110"))
    engine.on_price(BTC, D("29000"))  # the limit leg fills from the stop leg's lock
    assert engine.balance(ACC, "USDT").locked == 0
    assert engine.balance(ACC, "USDT").free == D("10000") - D("2900")


@pytest.mark.parametrize(
    ("legs", "reason", "param"),
    [
        (sell_oco(tp="29900"), Reject.OCO_BAD_PRICES, None),
        (sell_oco(stop="30100"), Reject.OCO_BAD_PRICES, None),
        ([leg("SELL", "STOP_LOSS", stop="31000"), leg("SELL", "LIMIT_MAKER", price="29000")], Reject.OCO_LEG_PLACE, "stop"),
        ([leg("SELL", "LIMIT_MAKER", price="31000"), leg("SELL", "LIMIT_MAKER", price="29000")], Reject.OCO_NOT_CONTINGENT, None),
        ([leg("SELL", "LIMIT", price="31000"), leg("SELL", "STOP_LOSS", stop="29000")], Reject.OCO_TYPES, None),
        ([leg("SELL", "LIMIT_MAKER", price="31000"), leg("BUY", "STOP_LOSS", stop="29000")], Reject.BAD_PARAM, None),
        (sell_oco(qty="2"), Reject.INSUFFICIENT_BALANCE, None),
    ],
)  # fmt: skip
def test_refused_oco_changes_nothing(
    engine: Engine, legs: list[OrderRequest], reason: Reject, param: str | None
) -> None:
    with pytest.raises(EngineError) as err:
        engine.place_list(ACC, ListKind.OCO, legs, "L1")
    assert err.value.reason is reason and err.value.param == param
    assert engine.open_orders(ACC) == [] and engine.open_lists(ACC) == []
    assert engine.balance(ACC, "BTC") == Funds(D("1"), D("0"))


def test_list_client_id_is_unique_among_open_lists(engine: Engine) -> None:
    engine.place_list(ACC, ListKind.OCO, sell_oco(qty="0.1"), "L1")
    with pytest.raises(EngineError) as err:
        engine.place_list(ACC, ListKind.OCO, [leg("SELL", "LIMIT_MAKER", "0.1", price="31000"), leg("SELL", "STOP_LOSS", "0.1", stop="29000")], "L1")  # fmt: skip
    assert err.value.reason is Reject.DUPLICATE_ORDER


def test_cancel_list_and_cancel_of_one_leg_cancel_every_leg(engine: Engine, events: list[Event]) -> None:
    a = engine.place_list(ACC, ListKind.OCO, sell_oco(qty="0.1"), "A")
    cancelled = engine.cancel_list(ACC, BTC, list_client_order_id="A")
    assert cancelled.order_list.done
    assert [o.status for o in cancelled.orders] == [OrderStatus.CANCELED] * 2
    with pytest.raises(EngineError) as err:
        engine.cancel_list(ACC, BTC, list_id=a.order_list.list_id)
    assert err.value.reason is Reject.NOT_OPEN
    b = engine.place_list(ACC, ListKind.OCO, [leg("SELL", "LIMIT_MAKER", "0.1", price="31000", cid="tp2"), leg("SELL", "STOP_LOSS", "0.1", stop="29000", cid="sl2")], "B")  # fmt: skip
    engine.cancel(ACC, BTC, client_order_id="sl2")
    assert statuses(engine, b.order_list.order_ids) == [OrderStatus.CANCELED] * 2
    assert engine.balance(ACC, "BTC") == Funds(D("1"), D("0"))
    with pytest.raises(EngineError) as err:
        engine.get_list(ACC, list_client_order_id="nope")
    assert err.value.reason is Reject.UNKNOWN_LIST
    assert [x.list_client_order_id for x in engine.all_lists(ACC)] == ["A", "B"]


def test_cancel_all_cancels_a_list_once(engine: Engine) -> None:
    placed = engine.place_list(ACC, ListKind.OCO, sell_oco(qty="0.1"), "A")
    cancelled = engine.cancel_all(ACC, BTC)
    assert [o.order_id for o in cancelled] == [placed.orders[0].order_id]  # its other leg went with it
    assert statuses(engine, placed.order_list.order_ids) == [OrderStatus.CANCELED] * 2
    assert engine.get_list(ACC, list_id=placed.order_list.list_id).done


def test_oto_pending_leg_starts_when_the_working_leg_fills(engine: Engine, events: list[Event]) -> None:
    legs = [
        leg("BUY", "LIMIT", "0.1", price="29500", cid="w"),
        leg("SELL", "LIMIT_MAKER", "0.09", price="31000", cid="p"),
    ]
    placed = engine.place_list(ACC, ListKind.OTO, legs, "O1")
    working, pending = placed.orders
    assert pending.pending and pending.status is OrderStatus.NEW and pending.working_time is None
    assert engine.balance(ACC, "BTC").locked == 0  # a pending leg locks nothing
    engine.on_price(BTC, D("29500"))
    pending = engine.find_order(pending.order_id)
    assert not pending.pending and pending.on_book and engine.balance(ACC, "BTC").locked == D("0.09")
    assert not engine.get_list(ACC, list_id=placed.order_list.list_id).done
    engine.on_price(BTC, D("31000"))
    assert engine.get_list(ACC, list_id=placed.order_list.list_id).done


def test_otoco_working_leg_cancelled_cancels_the_pending_pair(engine: Engine) -> None:
    legs = [leg("BUY", "LIMIT", "0.1", price="29500"), leg("SELL", "LIMIT_MAKER", "0.1", price="31000"), leg("SELL", "STOP_LOSS", "0.1", stop="29000")]  # fmt: skip
    placed = engine.place_list(ACC, ListKind.OTOCO, legs)
    engine.cancel(ACC, BTC, order_id=placed.orders[0].order_id)
    assert statuses(engine, placed.order_list.order_ids) == [OrderStatus.CANCELED] * 3
    assert engine.get_list(ACC, list_id=placed.order_list.list_id).done


def test_otoco_pair_runs_as_an_oco_after_the_fill(engine: Engine) -> None:
    legs = [leg("BUY", "LIMIT", "0.1", price="29500"), leg("SELL", "LIMIT_MAKER", "0.09", price="31000"), leg("SELL", "STOP_LOSS", "0.09", stop="29000")]  # fmt: skip
    placed = engine.place_list(ACC, ListKind.OTOCO, legs)
    engine.on_price(BTC, D("29500"))
    engine.on_price(BTC, D("28000"))
    assert statuses(engine, placed.order_list.order_ids) == [
        OrderStatus.FILLED,
        OrderStatus.EXPIRED,
        OrderStatus.FILLED,
    ]
    assert engine.get_list(ACC, list_id=placed.order_list.list_id).done


def test_lists_survive_a_restore(engine: Engine) -> None:
    placed = engine.place_list(ACC, ListKind.OCO, sell_oco(), "L1")
    saved: EngineState = engine.state(100, 100)
    other = Engine(select([BTC]), market_fill="now")
    other.restore(saved)
    assert other.get_list(ACC, list_client_order_id="L1") == placed.order_list
    other.on_price(BTC, D("31000"))
    assert other.get_list(ACC, list_client_order_id="L1").done
