"""Which bot a person's smart trade goes to (shared/trade_control.py `pick_bot`): a bot holds one
trade at a time, so with several manual bots on a symbol a buy goes to the first holding none and
a sell to the one holding a trade; what holds a trade is read from the bots' saved state
documents as the runner writes them."""

from __future__ import annotations

from decimal import Decimal

import msgspec
import pytest

from services.strategy_runner.state_store import RunnerDoc, encode_doc
from shared.control import ControlError
from shared.exits import Exits
from shared.messages import Side
from shared.strategy.smart_state import SmartTrade
from shared.strategy.state import StrategyState, encode_state
from shared.trade_control import holding, pick_bot

BOTS = {"m1": "sim:BTCUSDT", "m2": "sim:BTCUSDT", "e1": "sim:ETHUSDT"}


def doc(state: StrategyState) -> bytes:
    """The state document the runner saves (bot:{bot}:state)."""
    return encode_doc(RunnerDoc(version=3, state=msgspec.Raw(encode_state(state))))


def test_a_buy_goes_to_the_first_bot_without_a_trade_and_a_sell_to_the_one_holding_one():
    assert pick_bot(BOTS, "BTCUSDT") == ("m1", "sim")
    assert pick_bot(BOTS, "BTCUSDT", holding={"m1"}) == ("m2", "sim")
    assert pick_bot(BOTS, "BTCUSDT", side=Side.SELL, holding={"m2"}) == ("m2", "sim")
    assert pick_bot(BOTS, "ETHUSDT", holding={"e1"}) == ("e1", "sim")  # the only one: its own answer
    assert pick_bot(BOTS, "BTCUSDT", "m1", holding={"m1"}) == ("m1", "sim")  # named: as asked
    with pytest.raises(
        ControlError, match=r"has one open \(m1, m2\): close one \(a sell naming its bot: `--bot ID`"
    ):
        pick_bot(BOTS, "BTCUSDT", holding={"m1", "m2"})
    with pytest.raises(ControlError, match=r"several bots hold a trade on BTCUSDT \(m1, m2\): name one"):
        pick_bot(BOTS, "BTCUSDT", side=Side.SELL, holding={"m1", "m2"})
    with pytest.raises(ControlError, match=r"none holding a trade on BTCUSDT \(m1, m2\)"):
        pick_bot(BOTS, "BTCUSDT", side=Side.SELL)
    with pytest.raises(ControlError, match="no bot takes manual trades on SOLUSDT"):
        pick_bot(BOTS, "SOLUSDT")


def test_holding_reads_the_saved_trade_and_a_sale_under_way():
    trade = SmartTrade(tag="trade:1", exits=Exits(stop_loss=Decimal("0.01")))
    states = {
        "open": doc(StrategyState(trade=trade)),
        "closing": doc(StrategyState(closing=True)),
        "idle": doc(StrategyState()),
        "new": None,  # no state yet
        "broken": b"{not json",
        "other": b'{"state": [1, 2]}',
    }
    assert holding(states) == {"open", "closing"}
