"""Parity of smart trades (issue 18): a trailing stop, a trailing take profit (two targets and a
break-even move) and the range bot (its break-up leg a stop, or a stop-limit with a trailing
stop moving its exit OCO) on a hand-written price path — a rise, a pullback, a new
high, a fall back into the range and through its floor. The backtest's order commands and fills
are asserted as literal values (the exact candles, ticks and prices at which each stop moves by
cancel-then-replace and each exit fills); the live stack (tests/helpers/parity_run.py, every
service a real process) must then give the very same commands, fills, state, balances and
notifications. The range bot on real data and the random walk is in test_parity_live.py.
"""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal as D
from pathlib import Path
from typing import Any

import pytest

from backtest.engine import TICKS, RunResult
from shared.messages import CancelOrder, CancelOrderList, OrderStatus, PlaceOrder, PlaceOrderList
from shared.strategy.testing import Driver
from tests.helpers.bots import write_bots
from tests.helpers.parity import MINUTE, RecordingBacktester, backtest_bot, command_key, write_candles
from tests.helpers.parity_run import Case, Outcome, assert_same, run_cases
from tests.helpers.smart_trader import SmartTrader

WARMUP = 30
START = 1_700_000_000_000 - 1_700_000_000_000 % MINUTE
VOLUME = "40"  # plenty: a resting order's share of a step (a quarter) fills it whole
# (open, high, low, close) of each minute; the bots enter at the close of candle 0
PATH = [
    ("20000", "20010", "19990", "20000"),  # 0  the smart traders buy at market; the range bot arms
    ("20000", "20150", "19980", "20120"),  # 1  rise
    ("20120", "20300", "20100", "20280"),  # 2  rise: the range bot's buy stop triggers
    ("20280", "20500", "20250", "20450"),  # 3  rise: the first target (+2 %) fills
    ("20450", "20480", "20200", "20250"),  # 4  pullback
    ("20250", "20320", "20150", "20300"),  # 5  pullback
    ("20300", "20700", "20280", "20650"),  # 6  new high
    ("20650", "21000", "20600", "20950"),  # 7  new high: the last target (+4 %) reached, it trails
    ("20950", "21200", "20900", "21150"),  # 8  new high
    ("21150", "21180", "20900", "20950"),  # 9  fall: the trailing take profit's stop is hit
    ("20950", "20980", "20700", "20750"),  # 10 fall: the trailing stop is hit
    ("20750", "20780", "20300", "20350"),  # 11 fall
    ("20350", "20400", "20000", "20050"),  # 12 back in the range: the range bot arms again
    ("20050", "20080", "19850", "19900"),  # 13
    ("19900", "19950", "19550", "19600"),  # 14 through the floor: the range bot's maker buy fills
    ("19600", "19650", "19300", "19350"),  # 15 its stop is hit
    ("19350", "19400", "19300", "19380"),  # 16
    ("19380", "19420", "19350", "19400"),  # 17
]
# The same rise, then thin: the first target's limit trades in part (a quarter of 0.02 BTC, the
# venue expires the OCO's stop), the fall then closes under the stop the bot watches itself.
THIN = [
    *PATH[:3],
    ("20280", "20420", "20250", "20300", "0.02"),  # 3  0.005 of the first target's 0.02497 sold
    ("20300", "20320", "19900", "19950"),  # 4  the trailing share's stop hit; the close under the watched one
    ("19950", "19960", "19900", "19920"),  # 5  the rest of the first target sold at market at the open
    *[("19920", "19950", "19900", "19930")] * (len(PATH) - 6),
]
PATHS = {"path": PATH, "thin": THIN}
VENUE = "p_{}"
TRADER = "tests.helpers.smart_trader:SmartTrader"
ENTRIES = {
    "trailing_stop": {"id": "ts1", "strategy": TRADER, "params": {"quote": "1000", "trailing_stop": "0.02"}},
    "trailing_take_profit": {"id": "ttp1", "strategy": TRADER,
                             "params": {"quote": "1000", "gains": ["0.02", "0.04"], "shares": ["0.5"],
                                        "stop_loss": "0.02", "trailing_take_profit": "0.01",
                                        "break_even": True}},
    "range_oco": {"id": "range1", "strategy": "range_oco",
                  "params": {"top": "20100", "bottom": "19700", "percent": "0.5", "quote_amount": "100",
                             "take_profits": ["1", "2"], "stop_loss": "1", "break_even": True}},
    "range_stop_limit": {"id": "range2", "strategy": "range_oco",
                         "params": {"top": "20100", "bottom": "19700", "percent": "0.5", "limit_percent": "0.2",
                                    "quote_amount": "100", "take_profits": ["5"], "stop_loss": "1",
                                    "trailing_stop": "1"}},
}  # fmt: skip
ENTRIES["thin_target"] = {**ENTRIES["trailing_take_profit"], "id": "thin1"}  # on THIN
ON = {"thin_target": "thin"}  # the path of each case ("path" unless said)
MONEY = (D(10000), D(0))


def _entry(case: str) -> dict[str, Any]:
    return {**ENTRIES[case], "venue": VENUE.format(case), "symbol": "BTCUSDT", "interval": "1m"}


def _files(tmp: Path, case: str) -> tuple[Path, Path]:
    """(venue CSV: WARMUP + 1 flat candles of history, then the case's path; live CSV: the path)."""
    name = ON.get(case, "path")
    rows, flat = PATHS[name], [(PATH[0][0],) * 4] * (WARMUP + 1)
    venue = write_candles(tmp / f"{name}_venue.csv", flat + rows, start_ms=START - (WARMUP + 1) * MINUTE,
                          volume=VOLUME)  # fmt: skip
    return venue, write_candles(tmp / f"{name}_live.csv", rows, start_ms=START, volume=VOLUME)


def _backtest(case: str, tmp: Path) -> tuple[RunResult, RecordingBacktester]:
    _, live = _files(tmp, case)
    bots = write_bots(tmp / "bots.toml", _entry(case))
    return backtest_bot(bots, ENTRIES[case]["id"], live, capital=MONEY[0], base=MONEY[1])


def _d(x: D) -> str:
    return f"{x.normalize():f}"


def _order(key: tuple[Any, ...]) -> str:
    """A command_key in a few words, without its ids (the live run compares those)."""
    if key[0] == "PLACE_LIST":
        return f"{key[2]} [" + " | ".join(_order(k) for k in key[3]) + "]"
    if key[0] != "PLACE":
        return key[0]
    _, _, side, kind, price, qty, quote, stop = key
    size = f"quote {_d(quote)}" if quote is not None else _d(qty)
    at = (f" at {_d(price)}" if price is not None else "") + (f" stop {_d(stop)}" if stop is not None else "")
    return f"{side} {kind} {size}{at}"


def orders_at(engine: RecordingBacktester) -> list[tuple[int, int, str]]:
    """(candle, tick, order command) of every order command the backtest sent."""
    return [
        (t // TICKS, t % TICKS, _order(command_key(c)))
        for (c, _), t in zip(engine.sent, engine.ticks, strict=True)
    ]


def fills_at(result: RunResult) -> list[tuple[int, int, str]]:
    """(candle, tick, what traded) of every fill."""
    return [(f.index, f.tick, f"{f.side} {f.order_type} {_d(f.qty)} at {_d(f.price)}") for f in result.fills]


# The backtest on the path, literally. Ticks: 0 open, 1 and 2 the low and the high (the high
# first in a falling candle), 3 close. Entry: 1000 USDT at market at the close of candle 0,
# filled at candle 1's open at the ask 20000.01: 0.04999 BTC, less 0.00005 fee = 0.04994 to sell.
EXPECTED: dict[str, tuple[list[tuple[int, int, str]], list[tuple[int, int, str]], list[str]]] = {
    # stop = peak x 0.98 at each close, moved when it rises at least 0.5 % (trailing / 4)
    "trailing_stop": (
        [(0, 3, "BUY MARKET quote 1000"),
         (1, 0, "SELL STOP_LOSS 0.04994 stop 19600.01"),  # 20000.01 x 0.98, rounded up
         (1, 3, "CANCEL"), (1, 3, "SELL STOP_LOSS 0.04994 stop 19747"),  # peak 20150
         (2, 3, "CANCEL"), (2, 3, "SELL STOP_LOSS 0.04994 stop 19894"),  # peak 20300
         (3, 3, "CANCEL"), (3, 3, "SELL STOP_LOSS 0.04994 stop 20090"),  # peak 20500; the pullback keeps it
         (6, 3, "CANCEL"), (6, 3, "SELL STOP_LOSS 0.04994 stop 20286"),  # new high 20700
         (7, 3, "CANCEL"), (7, 3, "SELL STOP_LOSS 0.04994 stop 20580"),  # 21000
         (8, 3, "CANCEL"), (8, 3, "SELL STOP_LOSS 0.04994 stop 20776")],  # 21200
        [(1, 0, "BUY MARKET 0.04999 at 20000.01"),
         (10, 2, "SELL STOP_LOSS 0.04994 at 20700")],  # the fall's low step, under 20776
        ["32.9239423003003003003003003"],
    ),
    # half at +2 % (an OCO with the stop -2 %), half trailing 1 % below the peak once +4 % is
    # reached; the stop to the entry price once the first target filled
    "trailing_take_profit": (
        [(0, 3, "BUY MARKET quote 1000"),
         (1, 0, "OCO [SELL LIMIT_MAKER 0.02497 at 20400.02 | SELL STOP_LOSS 0.02497 stop 19600.01]"),
         (1, 0, "SELL STOP_LOSS 0.02497 stop 19600.01"),  # the trailing share: a stop alone
         (3, 3, "CANCEL"), (3, 3, "SELL STOP_LOSS 0.02497 stop 20000.01"),  # break-even
         (7, 3, "CANCEL"), (7, 3, "SELL STOP_LOSS 0.02497 stop 20790"),  # high 21000 >= 20800.02: trails
         (8, 3, "CANCEL"), (8, 3, "SELL STOP_LOSS 0.02497 stop 20988")],  # 21200 x 0.99
        [(1, 0, "BUY MARKET 0.04999 at 20000.01"),
         (3, 2, "SELL LIMIT_MAKER 0.02497 at 20400.02"),
         (9, 2, "SELL STOP_LOSS 0.02497 at 20900")],
        ["30.4299382003003003003003003"],
    ),
    # range 19700 - 20100, 0.5 % beyond: a buy stop at 20200.50 and a buy maker at 19601.50
    # for 100 / 20200.50 = 0.00495 BTC; exits +1 % and +2 % (half each), stop -1 %, break-even
    "range_oco": (
        [(0, 3, "OCO [BUY STOP_LOSS 0.00495 stop 20200.5 | BUY LIMIT_MAKER 0.00495 at 19601.5]"),
         (2, 2, "OCO [SELL LIMIT_MAKER 0.00247 at 20503.02 | SELL STOP_LOSS 0.00247 stop 20097.01]"),
         (2, 2, "OCO [SELL LIMIT_MAKER 0.00247 at 20706.02 | SELL STOP_LOSS 0.00247 stop 20097.01]"),
         (6, 3, "CANCEL_LIST"),  # the first target filled: the second's stop to the entry
         (6, 3, "OCO [SELL LIMIT_MAKER 0.00247 at 20706.02 | SELL STOP_LOSS 0.00247 stop 20300.01]"),
         (12, 3, "OCO [BUY STOP_LOSS 0.00495 stop 20200.5 | BUY LIMIT_MAKER 0.00495 at 19601.5]"),  # re-armed
         (14, 2, "OCO [SELL LIMIT_MAKER 0.00247 at 19797.52 | SELL STOP_LOSS 0.00247 stop 19405.49]"),
         # the last target's share takes the first trade's dust too (its fee in base, under a step)
         (14, 2, "OCO [SELL LIMIT_MAKER 0.00248 at 19993.53 | SELL STOP_LOSS 0.00248 stop 19405.49]")],
        [(2, 2, "BUY STOP_LOSS 0.00495 at 20300.01"),  # the break above, at the high step
         (6, 2, "SELL LIMIT_MAKER 0.00247 at 20503.02"),
         (7, 2, "SELL LIMIT_MAKER 0.00247 at 20706.02"),
         (14, 2, "BUY LIMIT_MAKER 0.00495 at 19601.5"),  # the fall through the floor
         (15, 2, "SELL STOP_LOSS 0.00247 at 19300"),
         (15, 2, "SELL STOP_LOSS 0.00248 at 19300")],
        ["1.30211063816816816816816816", "-1.68861548472403232913121600"],
    ),
    # the break-up leg a stop-limit (limit 0.2 % over its stop: 20240.90) for 100 / 20240.90;
    # one target +5 %, the stop the higher of -1 % and 1 % under the peak (trailing)
    "range_stop_limit": (
        [(0, 3, "OCO [BUY STOP_LOSS_LIMIT 0.00494 at 20240.9 stop 20200.5 | BUY LIMIT_MAKER 0.00494 at 19601.5]"),
         # triggered at candle 2's high 20300, over its limit: it waits there, bought at candle 4's low
         (4, 2, "OCO [SELL LIMIT_MAKER 0.00493 at 21252.95 | SELL STOP_LOSS 0.00493 stop 20038.5]"),
         # candle 4's high 20480 came before the fill: its close 20250 counts, 20047.50 is not worth
         # a move; then each new high moves the list's stop (cancel the list, place it again)
         (5, 3, "CANCEL_LIST"),
         (5, 3, "OCO [SELL LIMIT_MAKER 0.00493 at 21252.95 | SELL STOP_LOSS 0.00493 stop 20116.8]"),  # 20320
         (6, 3, "CANCEL_LIST"),
         (6, 3, "OCO [SELL LIMIT_MAKER 0.00493 at 21252.95 | SELL STOP_LOSS 0.00493 stop 20493]"),  # 20700
         (7, 3, "CANCEL_LIST"),
         (7, 3, "OCO [SELL LIMIT_MAKER 0.00493 at 21252.95 | SELL STOP_LOSS 0.00493 stop 20790]"),  # 21000
         (8, 3, "CANCEL_LIST"),
         (8, 3, "OCO [SELL LIMIT_MAKER 0.00493 at 21252.95 | SELL STOP_LOSS 0.00493 stop 20988]"),  # 21200
         (12, 3, "OCO [BUY STOP_LOSS_LIMIT 0.00494 at 20240.9 stop 20200.5 | BUY LIMIT_MAKER 0.00494 at 19601.5]"),
         # with the first trade's dust (its fee in base, under a step)
         (14, 2, "OCO [SELL LIMIT_MAKER 0.00494 at 20581.58 | SELL STOP_LOSS 0.00494 stop 19405.49]")],
        [(4, 2, "BUY STOP_LOSS_LIMIT 0.00494 at 20240.9"),
         (9, 2, "SELL STOP_LOSS 0.00493 at 20900"),
         (14, 2, "BUY LIMIT_MAKER 0.00494 at 19601.5"),  # its close 19600: no trailing move
         (15, 2, "SELL STOP_LOSS 0.00494 at 19300")],
        ["3.04643847547547547547547548", "-1.68491886227234335377457408"],
    ),
    # the trailing take profit's bot on THIN: its first target's limit trades 0.005 of 0.02497 at
    # candle 3's high (a quarter of its 0.02 volume), so the venue expires that OCO's stop; the
    # break-even move then rests with the bot's own watch for that part ("watched by the bot"),
    # the other part's stop is moved at the venue; candle 4 hits that stop, and its close under
    # the watched stop cancels what is left of the limit leg (its list, done at the venue, by
    # the leg alone) and sells the rest at market, at candle 5's open
    "thin_target": (
        [(0, 3, "BUY MARKET quote 1000"),
         (1, 0, "OCO [SELL LIMIT_MAKER 0.02497 at 20400.02 | SELL STOP_LOSS 0.02497 stop 19600.01]"),
         (1, 0, "SELL STOP_LOSS 0.02497 stop 19600.01"),
         (3, 3, "CANCEL"), (3, 3, "SELL STOP_LOSS 0.02497 stop 20000.01"),
         (4, 3, "CANCEL_LIST"), (4, 3, "SELL MARKET 0.01997")],
        [(1, 0, "BUY MARKET 0.04999 at 20000.01"),
         (3, 2, "SELL LIMIT_MAKER 0.005 at 20400.02"),
         (4, 2, "SELL STOP_LOSS 0.02497 at 19900"),
         (5, 0, "SELL MARKET 0.01997 at 19950")],
        ["-3.4930042996996996996996997"],
    ),
}  # fmt: skip


@pytest.mark.parametrize("case", list(ENTRIES))
def test_scripted_path_backtest_moves_and_fills_at_the_expected_prices(case, tmp_path):
    result, engine = _backtest(case, tmp_path)
    orders, fills, profits = EXPECTED[case]
    assert orders_at(engine) == orders
    assert fills_at(result) == fills
    assert [n.data["profit"] for n in result.notifications if n.kind == "cycle_closed"] == profits
    assert not result.rejected and result.state.trade is None and not result.state.orders


def test_the_entry_candle_trails_from_its_close_not_from_a_high_before_the_fill():
    """An entry filled inside a candle (the range bot's stop-limit at the low of a falling
    candle: open, high, low, close): that candle's high came before the fill, so the stop trails
    from its close (else it sat above the entry and sold at once, at a loss); from the next
    candle on, from the highs. A market entry filled at the open trails from its candle's high."""
    d = Driver(SmartTrader(), {"quote": "100", "trailing_stop": "0.01"})
    (buy,) = [c for c in d.candle("100", "100", "100", "100") if isinstance(c, PlaceOrder)]
    d.now = 2 * MINUTE + 30_000 - 1  # the next candle opens at 2 minutes: filled half-way through it
    (stop,) = [c for c in d.update(buy.cid, OrderStatus.FILLED, cum_qty="1", cum_quote="100")
               if isinstance(c, PlaceOrder)]  # fmt: skip
    assert stop.stop_price == D("99.00")
    assert d.candle("101", "103", "99.5", "100.2") == []  # 100.2 x 0.99 = 99.20: not worth a move
    assert [type(c) for c in d.candle("100.2", "103", "100", "102.5")] == [CancelOrder]  # now 103 counts
    assert "stop 99.00 -> 101.97 (trailing stop, peak 103.00)" in d.said()[-1]


def test_a_stop_does_not_move_while_its_limit_leg_is_under_the_close():
    """A thin candle crossed the target without filling its limit leg: the OCO stays (its limit
    fills from the next steps; a replacement would be refused, its limit taking), the stop moves
    once the close is under the target again. Found by the random walk with again = true."""
    d = Driver(SmartTrader(), {"quote": "100", "gains": ["0.01"], "trailing_stop": "0.02"})
    (buy,) = [c for c in d.candle("100", "100", "100", "100") if isinstance(c, PlaceOrder)]
    (oco,) = [c for c in d.update(buy.cid, OrderStatus.FILLED, cum_qty="1", cum_quote="100")
              if isinstance(c, PlaceOrderList)]  # fmt: skip
    assert [(leg.price, leg.stop_price) for leg in oco.legs] == [(D("101.00"), None), (None, D("98.00"))]
    assert d.candle("100", "103", "100", "102") == []
    assert d.said()[-1] == "trade t: exit 1 stop stays 98.00: its limit 101.00 is under the close 102.00"
    assert [type(c) for c in d.candle("102", "102.5", "100.9", "100.95")] == [CancelOrderList]
    assert "stop 98.00 -> 100.94 (trailing stop, peak 103.00)" in d.said()[-1]


@pytest.fixture(scope="module")
def live_runs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Outcome]]:
    """The three bots on their own venues in one live stack, once for the module."""
    tmp = tmp_path_factory.mktemp("parity_smart")
    cases = [Case(c, _entry(c), *_files(tmp, c), *MONEY) for c in ENTRIES]
    yield run_cases(cases, tmp, WARMUP, label="scripted path")


@pytest.mark.slow
@pytest.mark.timeout(600)
@pytest.mark.parametrize("case", list(ENTRIES))
def test_scripted_path_live_stack_equals_the_backtest(live_runs, case):
    run = live_runs[case]
    assert orders_at(run.engine) == EXPECTED[case][0]  # the backtest compared is the one asserted above
    assert_same(run)
