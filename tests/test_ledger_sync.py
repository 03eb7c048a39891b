"""`automata ledger sync` (services/ledger/sync.py): one fill per venue trade.

The venue's trade lists are read from the real paper venue through both adapters (python-binance
myTrades, pybit execution/list), page by page. The settling runs on SQLite and a real PostgreSQL:
a ledger that heard one trade per update, a coalesced update (three trades told as one growth),
polled updates (no trade id) and an order whose updates were trimmed before it read them ends,
after sync, exactly as a ledger that heard every trade on its own: the same rows, trade ids,
positions, realised profit and cycles; a second sync changes nothing, and the service's writer
continues from the synced positions.
"""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from types import SimpleNamespace

import msgspec
import pytest
import sqlalchemy as sa

from services.exchange_sim.bybit_format import exec_id
from services.ledger.sync import Syncer, caught_up
from services.ledger.writer import Writer
from services.order_gateway.venues import binance, bybit
from services.order_gateway.venues.base import VenueTrade
from shared import streams as s
from shared.ledger import schema as t
from shared.ledger.db import open_ledger, upgrade
from shared.messages import OrderStatus, OrderType, OrderUpdate, PlaceOrder, Side
from shared.order_record import OrderRecord
from shared.strategy.testing import BTC_FILTERS
from tests.helpers.sim import sim_fixture

sim = sim_fixture()

BOT, SYMBOL, FEE = "b1", "BTCUSDT", Decimal("0.001")
PLACES = Decimal("1e-12")  # the ledger keeps 18 places on PostgreSQL, every digit on SQLite

# (cid, side, [(trade id, qty, price)]) in the venue's order
ORDERS = [
    ("b1-000001", Side.BUY, [("11", "0.001", "100"), ("12", "0.001", "100")]),
    ("b1-000002", Side.BUY, [("21", "0.001", "99"), ("22", "0.001", "98"), ("23", "0.001", "97")]),
    ("b1-000003", Side.SELL, [("31", "0.001", "105"), ("32", "0.001", "106")]),
    ("b1-000004", Side.SELL, [("41", "0.003", "107")]),
]


def venue_trades() -> list[VenueTrade]:
    out, at = [], 1_765_000_000_000
    for n, (_cid, side, trades) in enumerate(ORDERS, 1):
        for trade_id, qty, price in trades:
            at += 1000
            quote = Decimal(qty) * Decimal(price)
            out.append(VenueTrade(trade_id=trade_id, symbol=SYMBOL, venue_order_id=str(n), side=side,
                                  price=Decimal(price), qty=Decimal(qty), quote=quote, fee=quote * FEE,
                                  fee_asset="USDT", is_maker=True, time=at))  # fmt: skip
    return out


def update(
    cid: str, side: Side, trades: list[VenueTrade], upto: int, *, trade_id: bool = True
) -> OrderUpdate:
    """The order's update after its first `upto` trades, naming the last (unless not trade_id)."""
    done = trades[:upto]
    cum = sum((tr.qty for tr in done), Decimal(0))
    quote = sum((tr.quote for tr in done), Decimal(0))
    last = done[-1]
    status = OrderStatus.FILLED if upto == len(trades) else OrderStatus.PARTIALLY_FILLED
    return OrderUpdate(cid=cid, bot=BOT, venue="sim", symbol=SYMBOL, status=status, side=side,
                       order_type=OrderType.LIMIT, venue_order_id=last.venue_order_id, price=last.price,
                       orig_qty=sum((tr.qty for tr in trades), Decimal(0)), cum_filled_qty=cum,
                       cum_quote_qty=quote, fee=quote * FEE, fee_asset="USDT", last_fill_qty=last.qty,
                       last_fill_price=last.price, venue_ts=last.time,
                       trade_id=last.trade_id if trade_id else "")  # fmt: skip


def of_order(cid: str) -> list[VenueTrade]:
    n = str(next(i for i, o in enumerate(ORDERS, 1) if o[0] == cid))
    return [tr for tr in venue_trades() if tr.venue_order_id == n]


def every_trade_told() -> Iterator[OrderUpdate]:
    """What a ledger that missed nothing heard: each trade in an update naming it."""
    for cid, side, _trades in ORDERS:
        trades = of_order(cid)
        for upto in range(1, len(trades) + 1):
            yield update(cid, side, trades, upto)


def as_it_happened() -> Iterator[OrderUpdate]:
    """Order 1 trade by trade; order 2 in one update (three trades, named by its last); order 3
    polled (no trade ids); order 4 never: its updates were trimmed before the ledger read them."""
    (c1, s1, _), (c2, s2, _), (c3, s3, _), _ = ORDERS
    yield from (update(c1, s1, of_order(c1), 1), update(c1, s1, of_order(c1), 2))
    yield update(c2, s2, of_order(c2), 3)
    yield from (update(c3, s3, of_order(c3), n, trade_id=False) for n in (1, 2))


def records() -> list[OrderRecord]:
    """The order gateway's write-ahead records: every order final."""
    out = []
    for cid, side, _trades in ORDERS:
        u = update(cid, side, of_order(cid), len(of_order(cid)))
        out.append(OrderRecord(cid=cid, bot=BOT, venue="sim", symbol=SYMBOL, status=u.status, side=side,
                               order_type=u.order_type, venue_order_id=u.venue_order_id, price=u.price,
                               orig_qty=u.orig_qty, cum_filled_qty=u.cum_filled_qty, cum_quote_qty=u.cum_quote_qty,
                               fee=u.fee, fee_asset="USDT", created_ts=u.venue_ts, updated_ts=u.venue_ts,
                               venue_ts=u.venue_ts))  # fmt: skip
    return out


def writer_on(url: str) -> tuple[sa.Engine, Writer]:
    engine = open_ledger(url, source="test")
    upgrade(engine)
    return engine, Writer(engine, lambda _v, _s: BTC_FILTERS, lambda _v: "USDT")


def write(writer: Writer, updates: Iterator[OrderUpdate], start: int = 1) -> None:
    for i, u in enumerate(updates, start):
        writer.write(s.order_events(BOT), f"{i}-0", u)


def rows(engine: sa.Engine) -> list[tuple]:
    f = t.fills.c
    with engine.connect() as conn:
        found = conn.execute(
            sa.select(f.trade_id, f.cid, f.cum_filled_qty, f.qty, f.price, f.fee, f.realised_total,
                      f.position_base, f.position_cost, f.cycle).order_by(f.id)
        ).all()  # fmt: skip
    return [tuple(v.quantize(PLACES) if isinstance(v, Decimal) else v for v in r) for r in found]


def cycles(engine: sa.Engine) -> list[tuple]:
    c = t.cycles.c
    with engine.connect() as conn:
        found = conn.execute(sa.select(c.number, c.buys, c.sells, c.closed_at, c.profit, c.fees)).all()
    return [tuple(v.quantize(PLACES) if isinstance(v, Decimal) else v for v in r) for r in found]


def syncs(engine: sa.Engine) -> int:
    with engine.connect() as conn:
        return conn.execute(sa.select(sa.func.count()).select_from(t.syncs)).scalar() or 0


def test_sync_makes_the_ledger_one_row_per_venue_trade(ledger_url: str, tmp_path: Path) -> None:
    ideal, ideal_writer = writer_on(f"sqlite:///{tmp_path / 'ideal.sqlite3'}")
    write(ideal_writer, every_trade_told())
    engine, writer = writer_on(ledger_url)
    write(writer, as_it_happened())
    before = rows(engine)
    assert [r[0] for r in before] == ["11", "12", None, None, None]  # the coalesced and the polled: derived

    syncer = Syncer(engine, "sim", lambda _v, _s: BTC_FILTERS, lambda _v: "USDT")
    first = syncer.run(records(), venue_trades(), settled_bots=set())  # the ledger may still read order 4
    assert (first.annotated, first.inserted, first.replaced, first.orders) == (2, 3, 1, 0)
    assert first.skipped == [f"b1-000004: the ledger has not read all of {s.order_events(BOT)} yet"]
    assert [r[0] for r in rows(engine)] == ["11", "12", "21", "22", "23", "31", "32"]

    second = syncer.run(records(), venue_trades(), settled_bots={BOT})  # now it has: the gap is filled
    assert (second.annotated, second.inserted, second.replaced, second.orders) == (0, 1, 0, 1)
    assert rows(engine) == rows(ideal) and len(rows(engine)) == 8
    assert cycles(engine) == cycles(ideal) and cycles(engine)[0][3] is not None  # closed, same profit
    with engine.connect() as conn:
        order4 = conn.execute(sa.select(t.orders).where(t.orders.c.cid == "b1-000004")).one()
    assert (order4.status, order4.cum_filled_qty) == ("FILLED", Decimal("0.003"))

    third = syncer.run(records(), venue_trades(), settled_bots={BOT})
    assert not third.changed and "every fill already has its trade id" in third.line()
    assert syncs(engine) == 2 and rows(engine) == rows(ideal)

    with engine.connect() as conn:  # the venue's word: only its trade list says who made the market
        assert set(
            conn.execute(sa.select(t.fills.c.is_maker).where(t.fills.c.cid != "b1-000001")).scalars()
        ) == {True}

    # the service's writer held positions from before the syncs: it reads them again
    more = [VenueTrade(trade_id="51", symbol=SYMBOL, venue_order_id="5", side=Side.BUY, price=Decimal(100),
                       qty=Decimal("0.002"), quote=Decimal("0.2"), fee=Decimal("0.0002"), fee_asset="USDT",
                       time=1_765_000_100_000)]  # fmt: skip
    for w in (writer, ideal_writer):
        write(w, iter([update("b1-000005", Side.BUY, more, 1)]), start=100)
    assert rows(engine) == rows(ideal) and len(rows(engine)) == 9


def test_an_order_its_trades_do_not_add_up_to_is_left_alone(ledger_url: str) -> None:
    engine, writer = writer_on(ledger_url)
    write(writer, as_it_happened())
    before = rows(engine)
    short = [tr for tr in venue_trades() if tr.trade_id != "22"]  # the venue's list misses one
    summary = Syncer(engine, "sim", lambda _v, _s: BTC_FILTERS, lambda _v: "USDT").run(
        records(), short, {BOT}
    )
    assert any(why.startswith("b1-000002: ") for why in summary.skipped)
    assert [r for r in rows(engine) if r[1] == "b1-000002"] == [r for r in before if r[1] == "b1-000002"]


@pytest.mark.parametrize("protocol", ["binance", "bybit"])
async def test_the_venues_trade_list_is_read_whole(protocol: str, sim, monkeypatch) -> None:
    """Market sells on the paper venue: the adapter's list (two trades a page, so it pages) is
    the venue's journal of trades, each with its order, side, amounts and fee."""
    if protocol == "binance":
        monkeypatch.setattr(binance, "TRADES_PAGE", 2)
        adapter = binance.BinanceAdapter(
            "sim", sim.api_key, sim.api_secret, base_url=sim.base_url, timeout_s=5
        )
    else:
        monkeypatch.setattr(bybit, "EXECUTIONS_PAGE", 2)
        adapter = bybit.BybitAdapter("sim", sim.api_key, sim.api_secret, base_url=sim.base_url, timeout_s=5)
    await adapter.start()
    try:
        for n in range(1, 4):
            cmd = PlaceOrder(cid=f"b1-{n:06d}", bot=BOT, venue="sim", symbol=SYMBOL, side=Side.SELL,
                             order_type=OrderType.MARKET, quantity=Decimal("0.01"))  # fmt: skip
            await adapter.place(cmd, Decimal("0.01"), None, None)
        trades = await adapter.trades(SYMBOL)
    finally:
        await adapter.close()

    def trade_id(e: dict) -> str:  # Bybit's execId is a UUID (the paper venue's: of symbol and trade)
        number = e["trade"]["trade_id"]
        return (
            str(number) if protocol == "binance" else exec_id(SimpleNamespace(symbol=SYMBOL, trade_id=number))
        )

    journal = [
        e for e in sim.control.journal() if e["kind"] == "trade" and e["client_order_id"].startswith("b1-")
    ]
    assert len(journal) >= 3
    assert [
        (tr.trade_id, tr.venue_order_id, tr.side, tr.qty, tr.price, tr.quote, tr.fee, tr.fee_asset) for tr in trades
    ] == [
        (trade_id(e), str(e["order_id"]), Side.SELL, Decimal(e["trade"]["qty"]),
         Decimal(e["trade"]["price"]), Decimal(e["trade"]["quote_qty"]), Decimal(e["trade"]["commission"]),
         e["trade"]["commission_asset"])
        for e in journal
    ]  # fmt: skip
    if protocol == "bybit":
        assert [tr.cid for tr in trades] == [e["client_order_id"] for e in journal]
    assert msgspec.json.decode(msgspec.json.encode(trades[0]), type=VenueTrade) == trades[0]


async def test_caught_up_means_every_entry_read_and_written(redis_client) -> None:
    """An order final in the write-ahead log is settled from it only when the ledger can no
    longer read its updates: its group has been handed every entry and holds none unacked."""
    stream = s.order_events(BOT)
    assert await caught_up(redis_client, BOT)  # no stream: nothing more can come
    first = await redis_client.xadd(stream, {"n": "1"})
    await redis_client.xgroup_create(stream, "other", id="0")
    assert not await caught_up(redis_client, BOT)  # the ledger never read it
    await redis_client.xgroup_create(stream, s.GROUP_LEDGER, id="0")
    assert not await caught_up(redis_client, BOT)
    await redis_client.xreadgroup(s.GROUP_LEDGER, "l1", {stream: ">"})
    assert not await caught_up(redis_client, BOT)  # read, not yet written (pending)
    await redis_client.xack(stream, s.GROUP_LEDGER, first)
    assert await caught_up(redis_client, BOT)
    second = await redis_client.xadd(stream, {"n": "2"})
    await redis_client.xadd(stream, {"n": "3"})
    await redis_client.xdel(stream, second)  # a hole: Redis's lag counts it as unread for good
    assert not await caught_up(redis_client, BOT)
    await redis_client.xreadgroup(s.GROUP_LEDGER, "l1", {stream: ">"})
    await redis_client.xack(stream, s.GROUP_LEDGER, *[i for i, _f in (await redis_client.xrange(stream))[1:]])
    assert await caught_up(redis_client, BOT)
    await redis_client.xadd(stream, {"n": "4"})
    await redis_client.xtrim(stream, maxlen=0)  # everything trimmed: nothing left to read
    assert await caught_up(redis_client, BOT)
