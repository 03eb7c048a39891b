"""Orders a rolled-back bot does not remember: held, claimed by the same terms, or booked;
the sync answer; updates that contradict their order; refused terms; a close that waits."""

from __future__ import annotations

from decimal import Decimal as D

import msgspec

from shared.messages import (
    BotSynced,
    CancelOrder,
    Notification,
    OrderStatus,
    OrderType,
    OrderUpdate,
    PlaceOrder,
    Side,
)
from shared.strategy import Strategy, StrategyState, limit_order
from shared.strategy.testing import Driver

replace = msgspec.structs.replace


class EntryExitParams(msgspec.Struct, frozen=True, kw_only=True):
    qty: D = D("0.01")
    buy: D = D("20000")
    sell: D = D("21000")


class EntryExit(Strategy[EntryExitParams, StrategyState]):
    """Keeps one limit buy out; when it fills, sells what it bought at `sell`."""

    name = "entry_exit"
    params_type = EntryExitParams

    def on_candle(self, params, state, candle, ctx):
        return self._ensure(params, state, ctx)

    def on_order_update(self, params, state, change, update, ctx):
        if change.finished and change.after.side == Side.BUY and change.after.cum_filled_qty > 0:
            state, sell = limit_order(
                state, ctx, Side.SELL, change.after.cum_filled_qty, params.sell, tag="exit"
            )
            return state, [sell] if sell else []
        return state, []

    def on_resume(self, params, state, ctx):
        return self._ensure(params, state, ctx)

    def _ensure(self, params, state, ctx):
        if any(r.side == Side.BUY for r in state.orders.values()) or state.position.base > 0:
            return state, []
        state, buy = limit_order(state, ctx, Side.BUY, params.qty, params.buy, tag="entry")
        return state, [buy] if buy else []


def venue_update(d: Driver, cid: str, status: OrderStatus, side: Side, price: str, qty: str, filled: str = "0",
                 *, adopted: bool = True, ts: int | None = None) -> list:  # fmt: skip
    """An update as the gateway sends it for an order it found at the venue."""
    d.now += 1
    return d.send(
        OrderUpdate(
            cid=cid, bot=d.bot, venue=d.venue, symbol="BTCUSDT", status=status, side=side,
            order_type=OrderType.LIMIT, price=D(price), orig_qty=D(qty), cum_filled_qty=D(filled),
            cum_quote_qty=D(filled) * D(price), fee_asset="USDT", venue_ts=ts if ts is not None else d.now,
            ts=d.now, adopted=adopted,
        )
    )  # fmt: skip


def places(cmds) -> list[PlaceOrder]:
    return [c for c in cmds if isinstance(c, PlaceOrder)]


def test_an_order_the_state_lacks_is_held_not_booked_and_the_sequence_moves_past_it():
    d = Driver(EntryExit())
    assert venue_update(d, "t1-000003", OrderStatus.NEW, Side.BUY, "20000", "0.01", adopted=False) == []
    assert "t1-000003" in d.state.adopted and d.state.orders == {}
    assert d.state.seq == 3 and d.state.position.base == 0
    # a later update of the held order moves it forward, still unbooked
    venue_update(d, "t1-000003", OrderStatus.FILLED, Side.BUY, "20000", "0.01", "0.01")
    assert d.state.adopted["t1-000003"].status == OrderStatus.FILLED and d.state.position.base == 0


def test_the_same_terms_claim_the_held_order_and_the_gateways_answer_books_it_once():
    d = Driver(EntryExit())
    venue_update(d, "t1-000001", OrderStatus.FILLED, Side.BUY, "20000", "0.01", "0.01", ts=130_000)
    cmds = d.candle("20100", "20200", "20000", "20100")  # the replayed decision: the same buy
    (buy,) = places(cmds)
    assert buy.cid == "t1-000001" and d.state.adopted == {} and d.state.seq == 1
    # the gateway answers the repeated request with the order's current state
    cmds = venue_update(d, "t1-000001", OrderStatus.FILLED, Side.BUY, "20000", "0.01", "0.01", adopted=False)
    assert d.state.position.base == D("0.01") and d.state.position.bought == D("0.01")
    (sell,) = places(cmds)
    assert sell.cid == "t1-000002" and sell.side == Side.SELL  # the strategy's own reaction, a new cid


def test_held_orders_no_replay_asks_for_are_booked_and_cancelled_after_a_later_candle():
    d = Driver(EntryExit(), {"buy": "19000"})  # the replay decides differently: no claim
    venue_update(d, "t1-000001", OrderStatus.FILLED, Side.BUY, "20000", "0.01", "0.01", ts=10)
    venue_update(d, "t1-000002", OrderStatus.NEW, Side.SELL, "21000", "0.01", ts=20)
    cmds = d.candle("20100", "20200", "20000", "20100")  # opens at 60,000: after both orders
    cancels = [c.cid for c in cmds if isinstance(c, CancelOrder)]
    notes = [c for c in cmds if isinstance(c, Notification) and c.kind == "reconciliation"]
    assert cancels == ["t1-000002"] and len(notes) == 2
    assert d.state.position.base == D("0.01") and d.state.position.cost == D("200")
    assert d.state.orders["t1-000002"].cancel_requested and "t1-000001" in d.state.recent
    assert places(cmds) == []  # the booked position already holds base: no new entry
    # the cancelled sell's later fills are booked through the ordinary path
    d.update("t1-000002", OrderStatus.FILLED, cum_qty="0.01", cum_quote="210")
    assert d.state.position.base == 0 and d.state.position.realised == D("10")


def test_a_finished_order_announced_again_is_neither_held_nor_booked():
    d = Driver(EntryExit())
    buy = places(d.candle("20100", "20200", "20000", "20100"))[0]
    d.fill(buy.cid)
    before = d.state
    assert (
        venue_update(d, buy.cid, OrderStatus.FILLED, Side.BUY, "20000", "0.01", "0.01", adopted=False) == []
    )
    assert d.state.adopted == {} and d.state.position == before.position


def test_an_update_on_the_other_side_is_refused_with_an_error():
    d = Driver(EntryExit())
    buy = places(d.candle("20100", "20200", "20000", "20100"))[0]
    cmds = venue_update(d, buy.cid, OrderStatus.FILLED, Side.SELL, "20000", "0.01", "0.01", adopted=False)
    assert [c.level for c in cmds if isinstance(c, Notification)] == ["error"]
    assert d.state.position.sold == 0 and d.state.orders[buy.cid].status == OrderStatus.PENDING_SUBMIT


def test_nothing_is_placed_until_the_answer_to_this_bots_sync_arrives():
    d = Driver(EntryExit())
    d.state = replace(d.state, sync="tok-2")
    assert d.candle("20100", "20200", "20000", "20100") == [] and d.state.seq == 0
    venue_update(d, "t1-000004", OrderStatus.NEW, Side.BUY, "20000", "0.01", ts=10)
    stale = BotSynced(bot="t1", venue="sim", token="tok-1", max_seq=9)
    assert d.send(stale) == [] and d.state.sync == "tok-2"  # the answer to an older request
    cmds = d.send(BotSynced(bot="t1", venue="sim", token="tok-2", max_seq=7, adopted=("t1-000004",)))
    assert d.state.sync == "" and d.state.seq == 7
    (buy,) = places(cmds)  # on_resume puts the buy back: it claims the held one
    assert buy.cid == "t1-000004" and d.state.adopted == {}


def test_terms_the_venue_keeps_refusing_are_held_back_more_and_more():
    d = Driver(EntryExit())
    sent = []
    for _ in range(12):
        cmds = places(d.candle("20100", "20200", "20000", "20100"))
        sent.append(bool(cmds))
        if cmds:
            d.update(cmds[0].cid, OrderStatus.REJECTED, reason="-2010 insufficient balance")
    # 3 refusals, then a retry after 1 skipped candle, then after 2, then after 4
    assert sent == [True, True, True, False, True, False, False, True, False, False, False, False]
    assert d.state.refusals and d.state.seq == 5
    # accepted once: forgotten
    d.state = replace(d.state, refusals={k: replace(v, skipped=99) for k, v in d.state.refusals.items()})
    buy = places(d.candle("20100", "20200", "20000", "20100"))[0]
    d.update(buy.cid, OrderStatus.NEW)
    assert d.state.refusals == {}


def test_close_sells_only_once_the_cancelled_orders_are_gone_and_only_what_is_left():
    d = Driver(EntryExit(), {"qty": "0.02"})
    buy = places(d.candle("20100", "20200", "20000", "20100"))[0]
    sell = places(d.fill(buy.cid))[0]
    d.update(sell.cid, OrderStatus.NEW)
    cmds = d.control("close")
    assert [c.cid for c in cmds if isinstance(c, CancelOrder)] == [sell.cid] and places(cmds) == []
    assert d.state.closing
    # the sell filled half before the cancel landed: the close sells the rest, once
    cmds = d.update(sell.cid, OrderStatus.CANCELED, cum_qty="0.01", cum_quote="210")
    (close,) = places(cmds)
    assert close.side == Side.SELL and close.order_type == OrderType.MARKET and close.quantity == D("0.01")
    assert not d.state.closing


def test_a_second_sell_beside_one_out_may_not_sell_more_than_the_position():
    d = Driver(EntryExit())
    buy = places(d.candle("20100", "20200", "20000", "20100"))[0]
    places(d.fill(buy.cid))
    state, again = limit_order(d.state, d.ctx(), Side.SELL, D("0.01"), D("22000"))
    assert again is None and state.seq == d.state.seq


def test_a_held_sale_counts_against_a_new_sell_before_it_is_booked():
    d = Driver(EntryExit())
    d.state = replace(d.state, position=replace(d.state.position, base=D("0.01"), cost=D("200")))
    state, first = limit_order(d.state, d.ctx(), Side.SELL, D("0.005"), D("22000"))
    assert first is not None  # the base is there: a sell may go
    # a lost window's sale of that base, found at the venue and held (not booked yet)
    venue_update(d, "t1-000009", OrderStatus.FILLED, Side.SELL, "20500", "0.01", "0.01", ts=10**9)
    state, again = limit_order(d.state, d.ctx(), Side.SELL, D("0.005"), D("22000"))
    assert again is None and d.state.position.base == D("0.01")  # the venue's base is gone


def test_a_replay_that_sized_its_order_a_step_off_still_claims_it_with_the_held_terms():
    d = Driver(EntryExit())
    d.state = replace(d.state, position=replace(d.state.position, base=D("0.01"), cost=D("200")))
    venue_update(d, "t1-000004", OrderStatus.NEW, Side.SELL, "21000", "0.00058", ts=10**9)
    venue_update(d, "t1-000005", OrderStatus.NEW, Side.SELL, "22000", "0.00058", ts=10**9)
    state, sell = limit_order(d.state, d.ctx(), Side.SELL, D("0.00059"), D("21000"))  # one step more
    assert sell.cid == "t1-000004" and sell.quantity == D("0.00058")  # the held order, its own terms
    assert state.orders["t1-000004"].quantity == D("0.00058") and "t1-000005" in state.adopted
    state, other = limit_order(state, d.ctx(), Side.SELL, D("0.00070"), D("22000"))  # far off: not it
    assert other.cid == "t1-000006" and "t1-000005" in state.adopted


def test_a_candle_books_no_held_order_while_a_claim_waits_for_its_answer():
    """A replay claims a chain of held orders one answer at a time (a filled buy, then the sale
    it put out): a candle handled between a claim and the gateway's answer must not book the
    rest of the chain, else its fills reach the position and not the strategy (the power-cut
    soak's demo_grid: a lot kept on sale that its held sale had sold already)."""
    d = Driver(EntryExit())
    d.state = replace(d.state, sync="tok")
    venue_update(d, "t1-000001", OrderStatus.FILLED, Side.BUY, "20000", "0.01", "0.01", ts=10)
    venue_update(d, "t1-000002", OrderStatus.NEW, Side.SELL, "21000", "0.01", ts=20)
    (buy,) = places(d.send(BotSynced(bot="t1", venue="sim", token="tok", max_seq=2)))
    assert buy.cid == "t1-000001"
    # a candle (it opens after both) before the gateway's answer: the chain is still replayed
    assert d.candle("20100", "20200", "20000", "20100") == [] and set(d.state.adopted) == {"t1-000002"}
    (sell,) = places(venue_update(d, "t1-000001", OrderStatus.FILLED, Side.BUY, "20000", "0.01", "0.01"))
    assert sell.cid == "t1-000002" and d.state.adopted == {} and d.state.seq == 2
    venue_update(d, "t1-000002", OrderStatus.NEW, Side.SELL, "21000", "0.01")
    assert d.state.orders["t1-000002"].status == OrderStatus.NEW and d.state.position.base == D("0.01")
    # no claim waits: a candle books what no replay asked for, as before
    venue_update(d, "t1-000003", OrderStatus.NEW, Side.SELL, "22000", "0.01", ts=30)
    cmds = d.candle("20100", "20200", "20000", "20100")
    assert [c.cid for c in cmds if isinstance(c, CancelOrder)] == ["t1-000003"]
