"""The pure parts of the list path: which legs an emulation holds, sends first and releases, when a
book reaches a stop, what a triggered stop leg becomes, and the list record's hash round trip."""

from __future__ import annotations

from decimal import Decimal

from services.order_gateway.emulated_oco import Emulator, reached, released_order, split
from services.order_gateway.list_wal import ListRecord, Mode, Phase
from services.order_gateway.lists import written_ahead
from shared.messages import BookTicker, ListKind, OrderStatus, OrderType, Side
from tests.helpers.lists import list_command, oco_command


def tick(bid: str, ask: str) -> BookTicker:
    return BookTicker(venue="sim", symbol="BTCUSDT", bid=Decimal(bid), bid_qty=Decimal(1), ask=Decimal(ask),
                      ask_qty=Decimal(1), ts=0)  # fmt: skip


def test_split_holds_the_stop_leg_whatever_its_position() -> None:
    sell = oco_command(1, above=Decimal(110), below=Decimal(90))
    assert split(sell) == (sell.legs[0], sell.legs[1])
    buy = oco_command(1, above=Decimal(110), below=Decimal(90), side=Side.BUY)
    assert split(buy) == (buy.legs[1], buy.legs[0])
    both_limits = oco_command(1, above=Decimal(110), below=Decimal(90), stop_type=OrderType.LIMIT_MAKER)
    assert split(both_limits) is None


def test_an_oto_holds_its_pending_legs_and_an_otoco_releases_its_pair_as_an_oco() -> None:
    buy, sell = (Side.BUY, OrderType.LIMIT, Decimal(97)), (Side.SELL, OrderType.LIMIT_MAKER, Decimal(105))
    oto = list_command(1, ListKind.OTO, [buy, sell])
    otoco = list_command(1, ListKind.OTOCO, [buy, sell, (Side.SELL, OrderType.STOP_LOSS, Decimal(90))])
    oco = oco_command(1, above=Decimal(110), below=Decimal(90))
    assert [Emulator.held_legs(x) for x in (oto, otoco, oco)] == [
        {oto.legs[1].cid}, {otoco.legs[1].cid, otoco.legs[2].cid}, {oco.legs[1].cid}]  # fmt: skip
    assert [Emulator.first_sent(x) for x in (oto, otoco, oco)] == [oto.legs[0], otoco.legs[0], oco.legs[0]]
    assert Emulator.released(oto) == oto.legs[1:] and Emulator.released(otoco) == otoco.legs[1:2]
    assert split(otoco) == (otoco.legs[1], otoco.legs[2]) and split(oto) is None
    assert not Emulator.refusal(oto) and not Emulator.refusal(otoco) and not Emulator.refusal(oco)
    two_limits = list_command(1, ListKind.OTOCO, [buy, sell, (Side.SELL, OrderType.LIMIT, Decimal(90))])
    assert Emulator.refusal(two_limits).startswith(
        "the pending legs of an emulated OTOCO must be one limit leg"
    )


def test_a_stop_is_reached_by_the_bid_for_a_sell_and_the_ask_for_a_buy() -> None:
    stop = Decimal(90)
    assert reached(Side.SELL, stop, tick("90", "91")) and not reached(Side.SELL, stop, tick("90.01", "91"))
    assert reached(Side.BUY, stop, tick("89", "90")) and not reached(Side.BUY, stop, tick("89", "89.99"))
    assert not reached(Side.SELL, stop, tick("0", "91")), "an empty side of the book reaches nothing"


def test_a_triggered_stop_leg_becomes_market_or_limit_at_its_price() -> None:
    sell = oco_command(1, above=Decimal(110), below=Decimal(90))
    market = released_order(sell.legs[1], Decimal("0.001"), 5)
    assert (market.order_type, market.quantity, market.price, market.cid) == (
        OrderType.MARKET, Decimal("0.001"), None, sell.legs[1].cid)  # fmt: skip
    limit_cmd = oco_command(1, above=Decimal(110), below=Decimal(90), stop_type=OrderType.STOP_LOSS_LIMIT)
    limit = released_order(limit_cmd.legs[1], Decimal("0.002"), 5)
    assert (limit.order_type, limit.price) == (OrderType.LIMIT, Decimal(90))


def test_the_list_record_and_its_legs_as_written_ahead() -> None:
    cmd = oco_command(1, above=Decimal(110), below=Decimal(90))
    record, legs = written_ahead(cmd, Mode.EMULATED, 1000, held=frozenset({cmd.legs[1].cid}))
    assert ListRecord.from_hash({k.encode(): v.encode() for k, v in record.to_hash().items()}) == record
    assert (record.kind, record.phase, record.legs) == (
        ListKind.OCO,
        Phase.PENDING,
        (cmd.legs[0].cid, cmd.legs[1].cid),
    )
    assert [(leg.list_cid, leg.held, leg.status, leg.sent_ts) for leg in legs] == [
        (cmd.list_cid, False, OrderStatus.PENDING_SUBMIT, 1000), (cmd.list_cid, True, OrderStatus.PENDING_SUBMIT, 1000)
    ]  # fmt: skip
    assert "held" not in legs[0].to_hash() and legs[1].to_hash()["held"] == "1"
