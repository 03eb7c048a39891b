"""The paper venue's engine on its own: fills, fees, balances, order rules, journal, determinism."""

from __future__ import annotations

import random
from decimal import Decimal as D

import msgspec
import pytest

from shared.matching.engine import (
    BalanceEvent,
    Engine,
    EngineError,
    Event,
    ExecType,
    Funds,
    OrderEvent,
    OrderRequest,
    OrderStatus,
    OrderType,
    Reject,
    Side,
    TimeInForce,
)
from shared.matching.symbols import select

ACC = "acct"


@pytest.fixture
def engine() -> Engine:
    e = Engine(select(["BTCUSDT", "ETHUSDT"]), market_fill="now")  # market orders at once: no market here
    e.set_time(1_000)
    e.on_price("BTCUSDT", D("30000"))
    e.on_price("ETHUSDT", D("2000"))
    return e


@pytest.fixture
def events(engine: Engine) -> list[Event]:
    seen: list[Event] = []
    engine.add_listener(seen.append)
    return seen


def limit(side: str, qty: str, price: str, cid: str | None = None, tif: str = "GTC", **kw) -> OrderRequest:
    return OrderRequest(
        symbol=kw.pop("symbol", "BTCUSDT"),
        side=Side(side),
        type=OrderType(kw.pop("type", "LIMIT")),
        quantity=D(qty),
        price=D(price),
        time_in_force=TimeInForce(tif),
        client_order_id=cid,
        **kw,
    )


def market(
    side: str, qty: str | None = None, quote: str | None = None, cid: str | None = None
) -> OrderRequest:
    return OrderRequest(
        symbol="BTCUSDT",
        side=Side(side),
        type=OrderType.MARKET,
        quantity=D(qty) if qty else None,
        quote_quantity=D(quote) if quote else None,
        client_order_id=cid,
    )


def order_events(events: list[Event]) -> list[tuple[str, str]]:
    return [(e.exec_type.value, e.order.status.value) for e in events if isinstance(e, OrderEvent)]


def test_market_buy_takes_the_ask_and_pays_the_fee_in_base(engine: Engine, events: list[Event]) -> None:
    placed = engine.place(ACC, market("BUY", "0.1", cid="b-000001"))
    assert placed.order.status is OrderStatus.FILLED
    [trade] = placed.trades
    assert trade.price == D("30000.01")  # the ask: one tick above the last price
    assert trade.commission == D("0.0001") and trade.commission_asset == "BTC"
    assert engine.balance(ACC, "BTC").free == D("1.0999")
    assert engine.balance(ACC, "USDT").free == D("10000") - D("3000.001")
    assert order_events(events) == [("NEW", "NEW"), ("TRADE", "FILLED")]
    assert isinstance(events[-1], BalanceEvent) and list(events[-1].balances) == ["BTC", "USDT"]


def test_sell_fee_is_charged_in_quote(engine: Engine) -> None:
    placed = engine.place(ACC, market("SELL", "0.5"))
    [trade] = placed.trades
    assert trade.price == D("30000") and trade.commission_asset == "USDT"
    assert trade.commission == D("15")  # 0.1 % of 15000
    assert engine.balance(ACC, "USDT").free == D("10000") + D("15000") - D("15")


def test_large_market_order_walks_the_synthetic_book(engine: Engine) -> None:
    placed = engine.place(ACC, market("SELL", "0.9"))
    prices = [t.price for t in placed.trades]
    assert len(prices) == 2 and prices[0] > prices[1]  # 0.5 at the bid, the rest one level lower
    assert sum(t.qty for t in placed.trades) == D("0.9")
    assert placed.order.cum_quote == sum(t.quote_qty for t in placed.trades)


def test_quote_quantity_market_buy_spends_at_most_the_quote(engine: Engine) -> None:
    placed = engine.place(ACC, market("BUY", quote="100"))
    assert placed.order.status is OrderStatus.FILLED
    assert placed.order.cum_quote <= D("100")
    assert placed.order.quantity == placed.order.executed_qty == D("0.00333")
    assert placed.order.quote_quantity == D("100")


def test_resting_limit_fills_at_its_own_price_with_partial_fills(engine: Engine, events: list[Event]) -> None:
    engine.place(ACC, limit("BUY", "0.3", "29900", "b-000001"))
    assert engine.balance(ACC, "USDT") == Funds(D("1030"), D("8970"))
    engine.on_price("BTCUSDT", D("29950"), liquidity=D("1"))  # not touched
    assert engine.get_order(ACC, "BTCUSDT", client_order_id="b-000001").executed_qty == 0
    engine.on_price("BTCUSDT", D("29800"), liquidity=D("0.1"))  # gapped below: still 29900
    engine.on_price("BTCUSDT", D("29850"), liquidity=D("0.25"))
    order = engine.get_order(ACC, "BTCUSDT", client_order_id="b-000001")
    assert order.status is OrderStatus.FILLED and order.executed_qty == D("0.3")
    assert all(t.price == D("29900") and t.maker for t in engine.trades(ACC))
    assert order_events(events) == [
        ("NEW", "NEW"),
        ("TRADE", "PARTIALLY_FILLED"),
        ("TRADE", "FILLED"),
    ]
    cumulative = [e.order.executed_qty for e in events if isinstance(e, OrderEvent)]
    assert cumulative == [D("0"), D("0.1"), D("0.3")]
    assert engine.balance(ACC, "USDT").locked == 0
    assert engine.balance(ACC, "BTC").free == D("1.3") - D("0.0003")


def test_resting_orders_share_liquidity_in_price_time_priority(engine: Engine) -> None:
    engine.place(ACC, limit("BUY", "0.1", "29900", "b-000001"))
    engine.place(ACC, limit("BUY", "0.1", "29950", "b-000002"))
    engine.place(ACC, limit("BUY", "0.1", "29950", "b-000003"))
    engine.on_price("BTCUSDT", D("29800"), liquidity=D("0.15"))
    filled = {o.client_order_id: o.executed_qty for o in engine.orders(ACC)}
    assert filled == {"b-000001": D("0"), "b-000002": D("0.1"), "b-000003": D("0.05")}


def test_crossing_gtc_limit_takes_then_rests(engine: Engine) -> None:
    placed = engine.place(ACC, limit("SELL", "0.7", "29999.99", "s-000001"))
    assert [t.price for t in placed.trades] == [D("30000")]  # only the best bid is at/above the limit
    assert placed.order.status is OrderStatus.PARTIALLY_FILLED and placed.order.on_book
    assert engine.balance(ACC, "BTC").locked == D("0.2")


def test_ioc_expires_its_remainder_and_fok_all_or_nothing(engine: Engine, events: list[Event]) -> None:
    engine.set_balance(ACC, "BTC", D("2"))
    ioc = engine.place(ACC, limit("SELL", "0.7", "30000", "s-000001", tif="IOC"))
    assert ioc.order.status is OrderStatus.EXPIRED and ioc.order.executed_qty == D("0.5")
    fok = engine.place(ACC, limit("SELL", "0.7", "30000", "s-000002", tif="FOK"))
    assert fok.order.status is OrderStatus.EXPIRED and fok.trades == []
    assert engine.balance(ACC, "BTC") == Funds(D("1.5"), D("0"))
    assert order_events(events)[-2:] == [("NEW", "NEW"), ("EXPIRED", "EXPIRED")]


def test_limit_maker_that_would_take_is_rejected(engine: Engine) -> None:
    with pytest.raises(EngineError) as err:
        engine.place(ACC, limit("BUY", "0.1", "30000.01", type="LIMIT_MAKER"))
    assert err.value.reason is Reject.WOULD_MATCH
    placed = engine.place(ACC, limit("BUY", "0.1", "30000", type="LIMIT_MAKER"))
    assert placed.order.on_book and placed.trades == []


def test_stop_loss_limit_triggers_then_fills(engine: Engine, events: list[Event]) -> None:
    with pytest.raises(EngineError) as err:
        engine.place(ACC, limit("SELL", "0.1", "30100", type="STOP_LOSS_LIMIT", stop_price=D("30100")))
    assert err.value.reason is Reject.WOULD_TRIGGER
    placed = engine.place(
        ACC, limit("SELL", "0.1", "29400", "s-000001", type="STOP_LOSS_LIMIT", stop_price=D("29500"))
    )
    assert not placed.order.triggered and engine.balance(ACC, "BTC").locked == D("0.1")
    engine.on_price("BTCUSDT", D("29600"))
    assert not engine.get_order(ACC, "BTCUSDT", client_order_id="s-000001").triggered
    engine.on_price("BTCUSDT", D("29500"))  # triggers: a sell limit at 29400 takes the 29500 bid
    order = engine.get_order(ACC, "BTCUSDT", client_order_id="s-000001")
    assert order.triggered and order.status is OrderStatus.FILLED
    assert engine.trades(ACC)[-1].price == D("29500")
    assert [e.kind for e in engine.journal() if e.client_order_id == "s-000001"] == [
        "accepted",
        "triggered",
        "trade",
    ]


def test_take_profit_market_buy_triggers_when_price_falls(engine: Engine) -> None:
    req = OrderRequest(
        symbol="BTCUSDT", side=Side.BUY, type=OrderType.TAKE_PROFIT, quantity=D("0.1"), stop_price=D("29000")
    )
    placed = engine.place(ACC, req)
    assert engine.balance(ACC, "USDT").locked == D("2900")
    engine.on_price("BTCUSDT", D("28990"))
    order = engine.find_order(placed.order.order_id)
    assert order is not None and order.status is OrderStatus.FILLED
    assert engine.balance(ACC, "USDT").locked == 0
    assert engine.trades(ACC)[0].price == D("28990.01")


def test_duplicate_client_order_id_only_among_open_orders(engine: Engine) -> None:
    engine.place(ACC, limit("BUY", "0.1", "29000", "b-000001"))
    with pytest.raises(EngineError) as err:
        engine.place(ACC, limit("BUY", "0.1", "29000", "b-000001"))
    assert err.value.reason is Reject.DUPLICATE_ORDER
    engine.place("other", limit("BUY", "0.1", "29000", "b-000001"))  # another account: fine
    engine.cancel(ACC, "BTCUSDT", client_order_id="b-000001")
    again = engine.place(ACC, limit("BUY", "0.1", "29000", "b-000001"))  # Binance: unique among open
    assert engine.get_order(ACC, "BTCUSDT", client_order_id="b-000001").order_id == again.order.order_id
    engine.cancel(ACC, "BTCUSDT", client_order_id="b-000001")
    with pytest.raises(EngineError):
        engine.place(ACC, limit("BUY", "0.1", "29000", "b-000001"), cid_scope="ever")
    accepted = [e for e in engine.journal(account=ACC) if e.kind == "accepted"]
    assert [e.client_order_id for e in accepted] == ["b-000001", "b-000001"]
    assert [e.kind for e in engine.journal(account=ACC)].count("rejected") == 2


@pytest.mark.parametrize(
    ("req", "reason"),
    [
        (limit("BUY", "0.1", "29000.001"), Reject.PRICE_FILTER),
        (limit("BUY", "0.000001", "29000"), Reject.LOT_SIZE),
        (limit("BUY", "0.0001", "29000"), Reject.NOTIONAL),
        (limit("BUY", "0.01", "5000"), Reject.PERCENT_PRICE),
        (limit("BUY", "1", "29000"), Reject.INSUFFICIENT_BALANCE),
        (limit("SELL", "2", "31000"), Reject.INSUFFICIENT_BALANCE),
        (market("BUY", "0.5"), Reject.INSUFFICIENT_BALANCE),
        (limit("BUY", "0.1", "1", symbol="DOGEUSDT"), Reject.UNKNOWN_SYMBOL),
        (
            OrderRequest(
                symbol="BTCUSDT", side=Side.BUY, type=OrderType.LIMIT, quantity=D("0.1"), price=D("29000")
            ),
            Reject.MISSING_PARAM,
        ),
    ],
)
def test_refusals_change_nothing(
    engine: Engine, events: list[Event], req: OrderRequest, reason: Reject
) -> None:
    before = engine.balances(ACC)
    with pytest.raises(EngineError) as err:
        engine.place(ACC, req)
    assert err.value.reason is reason
    assert engine.balances(ACC) == before and engine.orders(ACC) == []
    assert not [e for e in events if isinstance(e, OrderEvent)]


def test_cancel_releases_the_lock_and_refuses_closed_orders(engine: Engine, events: list[Event]) -> None:
    placed = engine.place(ACC, limit("BUY", "0.2", "29000", "b-000001"))
    canceled = engine.cancel(ACC, "BTCUSDT", order_id=placed.order.order_id, cancel_client_order_id="cx-1")
    assert canceled.status is OrderStatus.CANCELED and canceled.cancel_client_order_id == "cx-1"
    assert engine.balance(ACC, "USDT").locked == 0 and engine.balance(ACC, "USDT").free == D("10000")
    with pytest.raises(EngineError) as err:
        engine.cancel(ACC, "BTCUSDT", order_id=placed.order.order_id)
    assert err.value.reason is Reject.NOT_OPEN
    with pytest.raises(EngineError) as err:
        engine.cancel(ACC, "BTCUSDT", order_id=999)
    assert err.value.reason is Reject.UNKNOWN_ORDER
    with pytest.raises(EngineError):
        engine.get_order("someone-else", "BTCUSDT", order_id=placed.order.order_id)
    assert order_events(events)[-1] == ("CANCELED", "CANCELED")


def test_set_balance_reports_the_delta(engine: Engine, events: list[Event]) -> None:
    engine.set_balance(ACC, "USDT", D("250"))
    last = events[-1]
    assert isinstance(last, BalanceEvent) and last.deltas == {"USDT": D("-9750")}
    with pytest.raises(EngineError):
        engine.set_balance(ACC, "USDT", D("-1"))


def _random_session(seed: int) -> tuple[list[tuple], dict]:
    """Random orders and prices; returns the trades and final balances (and checks invariants)."""
    rng = random.Random(seed)
    e = Engine(select(["BTCUSDT"]))
    e.on_price("BTCUSDT", D("30000"))
    for step in range(400):
        e.set_time(step)
        price = D(30000 + rng.randint(-300, 300))
        if rng.random() < 0.5:
            e.on_price("BTCUSDT", price, liquidity=D(rng.choice(["0.01", "0.05", "1"])))
        else:
            side = rng.choice(["BUY", "SELL"])
            kind = rng.choice(["LIMIT", "MARKET", "LIMIT_MAKER", "STOP_LOSS_LIMIT"])
            qty = D(rng.choice(["0.01", "0.05", "0.2", "0.7"]))
            stop = price + (-50 if (kind == "STOP_LOSS_LIMIT") == (side == "SELL") else 50)
            req = OrderRequest(
                symbol="BTCUSDT",
                side=Side(side),
                type=OrderType(kind),
                quantity=qty,
                price=None if kind == "MARKET" else price + rng.choice([-20, 0, 20]),
                stop_price=stop if kind == "STOP_LOSS_LIMIT" else None,
                time_in_force=TimeInForce.GTC if kind in ("LIMIT", "STOP_LOSS_LIMIT") else None,
                client_order_id=f"r-{step:06d}",
            )
            try:
                e.place(ACC, req)
            except EngineError:
                pass
            if rng.random() < 0.2 and e.open_orders(ACC):
                e.cancel(ACC, "BTCUSDT", order_id=rng.choice(e.open_orders(ACC)).order_id)
        for asset, bal in e.balances(ACC).items():
            assert bal.free >= 0 and bal.locked >= 0, (asset, bal)
        reserved = sum(o.reserved for o in e.open_orders(ACC) if o.side is Side.SELL)
        assert e.balance(ACC, "BTC").locked == reserved
    for order in e.orders(ACC):
        fills = [t for t in e.trades(ACC) if t.order_id == order.order_id]
        assert sum((t.qty for t in fills), D(0)) == order.executed_qty
    return [(t.trade_id, t.price, t.qty) for t in e.trades(ACC)], e.balances(ACC)


def test_random_sessions_keep_invariants_and_are_deterministic() -> None:
    first = _random_session(7)
    assert len(first[0]) > 20
    assert _random_session(7) == first
    assert _random_session(8) != first


def test_events_carry_snapshots_not_live_objects(engine: Engine, events: list[Event]) -> None:
    engine.place(ACC, limit("BUY", "0.2", "29900"))
    engine.on_price("BTCUSDT", D("29900"), liquidity=D("0.1"))
    engine.on_price("BTCUSDT", D("29900"), liquidity=D("0.1"))
    statuses = [e.order.status for e in events if isinstance(e, OrderEvent)]
    assert statuses == [OrderStatus.NEW, OrderStatus.PARTIALLY_FILLED, OrderStatus.FILLED]
    assert [e.exec_type for e in events if isinstance(e, OrderEvent)] == [
        ExecType.NEW,
        ExecType.TRADE,
        ExecType.TRADE,
    ]


def test_a_broken_invariant_is_corrupt_state_not_a_request_error(engine):
    """A negative balance can only come from a bug; the venue treats it as corrupt state (the app
    stops the process on CorruptState) instead of answering one request with an error."""
    from shared.matching.engine import CorruptState

    with pytest.raises(CorruptState, match="negative balance"):
        engine._move("binance", "USDT", free=-(engine.balance("binance", "USDT").free + 1))


def test_a_sell_has_its_own_percent_price_band() -> None:
    """PERCENT_PRICE_BY_SIDE with Binance's documented multipliers: buys in [0.2, 1.2] × the
    reference price, sells in [0.8, 5] ×."""
    [spec] = select(["BTCUSDT"])
    bands = dict(
        multiplier_up=D("1.2"),
        multiplier_down=D("0.2"),
        sell_multiplier_up=D(5),
        sell_multiplier_down=D("0.8"),
    )
    spec = msgspec.structs.replace(spec, filters=msgspec.structs.replace(spec.filters, **bands))
    e = Engine([spec], market_fill="now")
    e.set_time(1_000)
    e.on_price("BTCUSDT", D("30000"))
    e.place(ACC, limit("SELL", "0.01", "45000"))  # +50 %: in the sell band
    e.place(ACC, limit("BUY", "0.01", "15000"))  # -50 %: in the buy band
    for req in (limit("BUY", "0.01", "37000"), limit("SELL", "0.01", "23000")):
        with pytest.raises(EngineError) as err:
            e.place(ACC, req)
        assert err.value.reason is Reject.PERCENT_PRICE
