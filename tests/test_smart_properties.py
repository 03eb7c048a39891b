"""Property test of the smart-trade helper in the backtester: whatever the exits declared and the
price path (thin candles, so exits fill in parts and the venue expires an OCO's stop), the venue
refuses nothing (no exit ever sells base the bot does not hold), the bot's position is the
account's, and a trade that has ended has sold everything but dust: base under a step, or under
the minimum order (a thin candle filled a target's limit but for a part worth less than that,
which the next trade sells)."""

from __future__ import annotations

from decimal import Decimal as D

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from backtest.engine import Setup, run_backtest
from backtest.series import CandleSeries
from shared.candle_files import RawCandle
from shared.exits import Exits, Target
from shared.strategy.sizing import market_qty
from shared.strategy.testing import BTC_FILTERS
from tests.test_smart_rules import OneTrade, OneTradeBot

PCT = st.integers(min_value=2, max_value=40).map(lambda n: D(n) / 1000)  # 0.2 % .. 4 %


@st.composite
def exits(draw) -> Exits:
    n = draw(st.integers(min_value=0, max_value=3))
    targets = tuple(Target(gain=D(i + 1) * draw(PCT)) for i in range(n))
    trailing_tp = draw(st.none() | PCT) if n else None
    stop = draw(st.sampled_from(["loss", "trailing", "both", "none"]))
    if stop == "none" and not n:
        stop = "loss"
    return Exits(
        take_profits=targets,
        stop_loss=draw(PCT) if stop in ("loss", "both") else None,
        trailing_stop=draw(PCT) if stop in ("trailing", "both") else None,
        trailing_take_profit=trailing_tp,
        break_even=draw(st.booleans()) and n > 0,
        time_limit_s=draw(st.none() | st.integers(min_value=60, max_value=3000)),
    )


@st.composite
def path(draw) -> list[tuple[str, str, str, str, str]]:
    """Candles of a random walk (steps of up to 1.5 %), each with a small volume."""
    price, rows = D(100), []
    for _ in range(draw(st.integers(min_value=5, max_value=60))):
        close = max(D(50), price * (1 + D(draw(st.integers(min_value=-15, max_value=15))) / 1000))
        high = max(price, close) * (1 + D(draw(st.integers(min_value=0, max_value=8))) / 1000)
        low = min(price, close) * (1 - D(draw(st.integers(min_value=0, max_value=8))) / 1000)
        volume = D(draw(st.integers(min_value=1, max_value=40))) / 10
        rows.append(tuple(str(x.quantize(D("0.01"))) for x in (price, high, low, close)) + (str(volume),))
        price = close.quantize(D("0.01"))
    return rows


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(declared=exits(), rows=path(), fast=st.booleans())
def test_the_exits_never_oversell_and_the_position_is_the_accounts(declared, rows, fast):
    series = CandleSeries.from_raw([RawCandle(60_000 * i, *row) for i, row in enumerate(rows)])
    setup = Setup(
        strategy=OneTradeBot(), params=OneTrade(exits=declared), filters=BTC_FILTERS, capital=D(1000)
    )
    result = run_backtest(setup, series, fast=fast)
    assert result.rejected == [], [u.reason for u in result.rejected]
    assert result.state.position.base == result.final_base >= 0
    sold = sum((f.qty for f in result.fills if f.side == "SELL"), D(0))
    bought = sum((f.qty - f.fee for f in result.fills if f.side == "BUY"), D(0))
    assert sold <= bought
    if result.state.trade is None and bought:
        unsellable = market_qty(BTC_FILTERS, result.final_base, D(rows[-1][3])) is None  # dust
        assert unsellable or not sold, result.final_base  # sold but dust, or never bought
