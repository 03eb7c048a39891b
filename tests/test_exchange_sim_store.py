"""The paper venue's saved state (SIM_STATE_DIR, services/exchange_sim/store.py): a venue built
again from the same folder — after a clean stop or none at all (a kill -9 leaves the files as a
venue that was never closed) — has the same accounts, orders and trades, and its market carries
on after the last candle it closed; a torn or repeated change log is harmless; a folder of
another venue is refused."""

from __future__ import annotations

import asyncio
import shutil
import subprocess
import sys
from decimal import Decimal
from pathlib import Path

import msgspec
import pytest

from services.exchange_sim.config import load_sim_config
from services.exchange_sim.store import CHANGES, StoreError
from services.exchange_sim.venue import Venue
from shared.matching.engine import OrderRequest, OrderType, Side, TimeInForce
from shared.messages import ListKind
from tests.helpers.procs import ROOT, base_env

ACCOUNT = "binance"


def build(state: Path, **env: str) -> Venue:
    return Venue.build(load_sim_config({"SIM_SPEED": "0", "SIM_STATE_DIR": str(state), **env}))


def trade_a_little(venue: Venue) -> None:
    """A resting buy below the price, a market buy, and candles that move the market on."""
    venue.market.advance(candles=3)
    price = venue.market.price("BTCUSDT")
    below = (price * Decimal("0.9")).quantize(Decimal("0.01"))
    venue.engine.place(ACCOUNT, OrderRequest(symbol="BTCUSDT", side=Side.BUY, type=OrderType.LIMIT,
                       quantity=Decimal("0.01"), price=below, time_in_force=TimeInForce.GTC,
                       client_order_id="rest-1"))  # fmt: skip
    venue.engine.place(ACCOUNT, OrderRequest(symbol="BTCUSDT", side=Side.BUY, type=OrderType.MARKET,
                       quantity=Decimal("0.01"), client_order_id="now-1"))  # fmt: skip
    venue.market.advance(candles=2, steps=2)  # ends inside a candle: the one a restart drops


def picture(venue: Venue) -> tuple:
    """What must survive a restart: balances, every order, every trade."""
    e = venue.engine
    return e.balances(ACCOUNT), e.orders(ACCOUNT), e.trades(ACCOUNT)


def test_a_venue_never_closed_resumes_with_its_book_and_its_market_goes_on(tmp_path: Path) -> None:
    first = build(tmp_path)
    trade_a_little(first)
    reached, closed = first.market.time, first.market.history["BTCUSDT"][-1]

    again = build(tmp_path)  # `first` was never closed: what a kill -9 leaves
    assert picture(again) == picture(first)
    assert [o.client_order_id for o in again.engine.open_orders(ACCOUNT)] == ["rest-1"]
    assert again.market.time > reached  # never back in market time
    assert again.market.history["BTCUSDT"][-1] == closed
    assert again.market.klines("BTCUSDT", 60_000, limit=1) == [closed]
    again.market.advance(candles=1)
    new = again.market.history["BTCUSDT"][-1]
    assert new.open_time == closed.close_time + 1 and new.open == closed.close  # contiguous, no gap
    # the new order ids and trade ids go on after the old ones
    placed = again.engine.place(ACCOUNT, OrderRequest(symbol="BTCUSDT", side=Side.SELL, type=OrderType.MARKET,
                                quantity=Decimal("0.01"), client_order_id="after-1"))  # fmt: skip
    assert placed.order.order_id > max(o.order_id for o in first.engine.orders(ACCOUNT))
    again.market.advance(steps=1)  # a market order fills at the next step (SIM_MARKET_FILL's default)
    (trade,) = again.engine.trades(ACCOUNT, order_id=placed.order.order_id)
    assert trade.trade_id > max(t.trade_id for t in first.engine.trades(ACCOUNT))


def test_a_clean_stop_leaves_a_snapshot_alone_and_a_reset_is_saved(tmp_path: Path) -> None:
    first = build(tmp_path)
    trade_a_little(first)
    asyncio.run(first.close())
    assert (tmp_path / CHANGES).stat().st_size == 0  # everything is in the snapshot
    again = build(tmp_path)
    assert picture(again) == picture(first)
    again.reset()  # the control API's reset: a clean venue, saved as such
    assert build(tmp_path).engine.orders(ACCOUNT) == []


def test_a_torn_or_repeated_change_log_is_harmless(tmp_path: Path) -> None:
    first = build(tmp_path)
    trade_a_little(first)
    log = (tmp_path / CHANGES).read_bytes()
    assert log  # the changes since the start's snapshot
    twice = tmp_path / "twice"
    shutil.copytree(tmp_path, twice, ignore=shutil.ignore_patterns("twice"))
    (twice / CHANGES).write_bytes(log + log)  # a crash between a snapshot and the log's truncation
    assert picture(build(twice)) == picture(first)
    (tmp_path / CHANGES).write_bytes(log + b"\x00\x00\x01\x00partial")  # a power cut mid-write
    assert picture(build(tmp_path)) == picture(first)


def test_a_folder_of_another_venue_is_refused(tmp_path: Path) -> None:
    build(tmp_path)
    with pytest.raises(StoreError, match="--fresh"):
        build(tmp_path, SIM_SYMBOLS="BTCUSDT")
    env = base_env("", SIM_STATE_DIR=str(tmp_path), SIM_SYMBOLS="ETHUSDT", SIM_PORT="0")
    proc = subprocess.run([sys.executable, "-m", "services.exchange_sim"], env=env, cwd=ROOT,
                          capture_output=True, text=True, timeout=60)  # fmt: skip
    assert proc.returncode == 2 and "holds a paper venue of symbols" in proc.stdout + proc.stderr
    assert "Traceback" not in proc.stdout + proc.stderr


def test_order_lists_survive_a_restart_from_the_change_log(tmp_path: Path) -> None:
    first = build(tmp_path)
    first.market.advance(candles=3)
    price = first.market.price("BTCUSDT")
    legs = [
        OrderRequest(symbol="BTCUSDT", side=Side.SELL, type=OrderType.LIMIT_MAKER, quantity=Decimal("0.01"),
                     price=(price * Decimal("1.1")).quantize(Decimal("0.01")), client_order_id="tp-1"),
        OrderRequest(symbol="BTCUSDT", side=Side.SELL, type=OrderType.STOP_LOSS, quantity=Decimal("0.01"),
                     stop_price=(price * Decimal("0.9")).quantize(Decimal("0.01")), client_order_id="sl-1"),
    ]  # fmt: skip
    placed = first.engine.place_list(ACCOUNT, ListKind.OCO, legs, "list-1")
    first.engine.place_list(ACCOUNT, ListKind.OCO, [msgspec.structs.replace(leg, client_order_id=f"{leg.client_order_id}b")
                            for leg in legs], "list-2")  # fmt: skip
    first.engine.cancel_list(ACCOUNT, "BTCUSDT", list_client_order_id="list-2")

    again = build(tmp_path)  # never closed: the lists come back from the change log
    assert again.engine.all_lists(ACCOUNT) == first.engine.all_lists(ACCOUNT)
    assert [x.list_client_order_id for x in again.engine.open_lists(ACCOUNT)] == ["list-1"]
    assert (
        again.engine.list_orders(again.engine.get_list(ACCOUNT, list_id=placed.order_list.list_id))[0].list_id
        >= 0
    )
    third = again.engine.place_list(ACCOUNT, ListKind.OCO, [msgspec.structs.replace(leg, client_order_id=f"{leg.client_order_id}c")
                                    for leg in legs], "list-3")  # fmt: skip
    assert third.order_list.list_id > placed.order_list.list_id + 1  # list ids go on after the old ones
