"""The paper venue's Bybit V5 public tape and deeper books, driven by the real pybit clients as
a Bybit Demo Trading user would: `market/recent-trade`, and the `publicTrade.{symbol}` and
`orderbook.50` / `.200` / `.1000` topics. A topic pybit's user subscribes that the venue refused
would cost them the whole socket (pybit 5.17 dies on a refused subscribe), tickers and all.

The venue runs in step mode: the market moves only when a test steps it (`advance`); a price a
test pushes (`set_price`) has no volume, so it is no trade on the tape (as in the candles).
"""

from __future__ import annotations

from decimal import Decimal

import pytest
from pybit.exceptions import InvalidRequestError

from tests.helpers.bybit import Inbox, acks, bybit_http, bybit_ws, subscribed
from tests.helpers.procs import wait_until
from tests.helpers.sim import SimVenue, sim_fixture

sim = sim_fixture()
SPOT = {"category": "spot", "symbol": "BTCUSDT"}


def last_price(sim: SimVenue) -> Decimal:
    return Decimal(str(sim.control.state()["prices"]["BTCUSDT"]))


def test_recent_trades_list_the_tape_newest_first(sim: SimVenue) -> None:
    s = bybit_http(sim)
    prices = []
    for _ in range(3):
        sim.control.advance(steps=1)
        prices.append(last_price(sim))
    sim.control.set_price("BTCUSDT", str(prices[-1] + 5))  # no volume: not a trade
    rows = s.get_public_trade_history(**SPOT, limit=3)["result"]["list"]
    assert [Decimal(r["price"]) for r in rows] == prices[::-1]
    times = [int(r["time"]) for r in rows]
    assert times == sorted(times, reverse=True)
    for row in rows:
        assert row["symbol"] == "BTCUSDT" and row["side"] in ("Buy", "Sell") and row["isBlockTrade"] is False
        assert Decimal(row["size"]) > 0 and row["execId"].isdigit()
    assert len(s.get_public_trade_history(**SPOT)["result"]["list"]) <= 60  # spot's default and cap
    with pytest.raises(InvalidRequestError) as info:
        s.get_public_trade_history(**SPOT, limit=61)
    assert info.value.status_code == 10001


def test_public_trade_and_deep_books_stream_beside_tickers(sim: SimVenue) -> None:
    inbox = Inbox()
    ws = bybit_ws(sim, "spot")
    seen = acks(ws)
    try:
        ws.orderbook_stream(50, "BTCUSDT", inbox.put)
        ws.orderbook_stream(200, "BTCUSDT", inbox.put)
        ws.orderbook_stream(1000, "BTCUSDT", inbox.put)
        ws.trade_stream("BTCUSDT", inbox.put)
        ws.ticker_stream("BTCUSDT", inbox.put)
        subscribed(ws, seen, 5)
        assert all(m["success"] for m in seen)
        inbox.wait(lambda m: m["topic"] == "orderbook.50.BTCUSDT", what="the first depth-50 book")
        sim.control.advance(steps=2)  # a candle's open is the last close: its low moves the book
        price = last_price(sim)
        trade = inbox.wait_item("publicTrade.BTCUSDT", lambda t: Decimal(t["p"]) == price)
        inbox.wait_item("tickers.BTCUSDT", lambda t: Decimal(t["lastPrice"]) == price)
        wait_until(lambda: len(inbox.all("orderbook.200.BTCUSDT")) >= 2, what="the moved depth-200 book")
    finally:
        ws.exit()
    assert trade["s"] == "BTCUSDT" and trade["S"] in ("Buy", "Sell") and trade["BT"] is False
    assert Decimal(trade["v"]) > 0 and isinstance(trade["T"], int)
    for depth in (50, 200, 1000):
        book = inbox.all(f"orderbook.{depth}.BTCUSDT")[-1]
        bids, asks = book["data"]["b"], book["data"]["a"]
        assert book["type"] == "snapshot" and len(bids) == len(asks) == depth
        assert [Decimal(b[0]) for b in bids] == sorted((Decimal(b[0]) for b in bids), reverse=True)
        assert [Decimal(a[0]) for a in asks] == sorted(Decimal(a[0]) for a in asks)
        assert Decimal(bids[0][0]) == price < Decimal(asks[0][0])
