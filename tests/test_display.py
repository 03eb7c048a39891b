"""shared/display.py: amounts as a person reads them (examples from the issue, then properties:
never an exponent, never NaN, within the precision of the exact value, a nonzero never shown as 0)."""

from __future__ import annotations

from decimal import Decimal as D

import pytest
from hypothesis import given
from hypothesis import strategies as st

from shared.display import Precision, asset_amounts, pct, plain, price, qty, quote, ratio_pct
from shared.filters import SymbolFilters

TICK, STEP = D("0.01"), D("0.00001")
BTC = SymbolFilters(symbol="BTCUSDT", base_asset="BTC", quote_asset="USDT", tick_size=TICK, step_size=STEP)


@pytest.mark.parametrize(
    ("shown", "expected"),
    [
        (plain(D("0E-8")), "0"),
        (plain(D("5.9E-7")), "0.00000059"),
        (plain(D("-0.000")), "0"),
        (plain(D("1E+5")), "100000"),
        (price(D("42016.04000000"), TICK), "42,016.04"),
        (price(D("42016"), TICK), "42,016.00"),
        (price(D("0.00001234"), D("0.00000001")), "0.00001234"),
        (price(D("0.00001234")), "0.00001234"),  # no tick: its significant digits
        (price(D("1.23456789")), "1.23457"),
        (price(D("0.4230933965714599752750361")), "0.423093"),
        (price(D("42016.04"), D("0.00000001")), "42,016.04"),  # a fine tick keeps 2 decimals, no zeros
        (qty(D("0.00471000"), STEP), "0.00471"),
        (qty(D("0.123456789"), STEP), "0.12345"),  # toward zero, as the exchange rounds quantities
        (qty(D("0.00000649"), STEP), "0.00000649"),  # below the step: shown, not 0
        (qty(D("1000000")), "1,000,000"),
        (quote(D("0.4230933965714599752750361")), "0.42"),
        (quote(D("5.9E-7")), "0.00000059"),
        (quote(D("0E-8")), "0.00"),
        (quote(D("-0.28")), "-0.28"),
        (quote(D("1200")), "1,200.00"),
        (pct(D("0.919"), sign=True), "+0.92%"),
        (pct(D("-1.1")), "-1.10%"),
        (ratio_pct(D("0.035")), "3.50%"),
        (quote(None), "-"),
        (price("not a number"), "-"),
        (qty(D("NaN")), "-"),
        (price(D("Infinity")), "-"),
    ],
)
def test_examples(shown: str, expected: str) -> None:
    assert shown == expected


def test_precision_and_asset_amounts_come_from_the_symbol_filters() -> None:
    p = Precision.of(BTC)
    assert (p.price(D("41999.999")), p.qty(D("0.010000"))) == ("42,000.00", "0.01")
    assert Precision.of(None).qty(D("0.123456789")) == "0.12345678"
    show = asset_amounts({"BTCUSDT": BTC})
    assert (show("BTC", D("0.99000882")), show("USDT", D("9596.84196")), show("ETH", D("10"))) == (
        "0.99",
        "9,596.84",
        "10",
    )


amounts = st.decimals(
    allow_nan=False, allow_infinity=False, min_value=D("-1e25"), max_value=D("1e25"), places=12
)
increments = st.sampled_from([None, D("1"), D("0.1"), D("0.01"), D("0.00001"), D("0.00000001"), D("10")])


def parse(text: str) -> D:
    return D(text.replace(",", ""))


@given(amounts, increments)
def test_never_an_exponent_never_nan_and_within_the_precision(value: D, inc: D | None) -> None:
    for fn in (price, qty):
        text = fn(value, inc)
        assert "E" not in text and "e" not in text and "NaN" not in text
        shown = parse(text)
        assert shown != 0 or not text.startswith("-"), "no negative zero"
        # rounded to the increment (or to the fallback digits), never further than one increment
        limit = inc if inc is not None else D("0.00000001")
        assert abs(shown - value) <= max(limit, abs(value) * D("0.001"))
        assert (shown == 0) == (value == 0), "a nonzero amount is never shown as 0"
    text = quote(value)
    assert "E" not in text and "." in text and len(text.split(".")[1]) >= 2
    assert abs(parse(text) - value) <= max(D("0.005"), abs(value) * D("0.05"))


@given(amounts)
def test_plain_is_exact(value: D) -> None:
    text = plain(value)
    assert "E" not in text and D(text) == value


def test_a_bots_texts_show_amounts_at_its_symbols_precision() -> None:
    from shared.strategy.context import StrategyContext

    ctx = StrategyContext(bot="g1", venue="sim", symbol="BTCUSDT", interval="1m", filters=BTC, now=0)
    profit = D("0.00879629605982358735111488")
    assert (ctx.price(D("42500.0000")), ctx.qty(D("0.00058000")), ctx.quote(profit)) == (
        "42,500.00",
        "0.00058",
        "0.0088",
    )


def test_a_filter_refusal_spells_its_amounts_without_exponent() -> None:
    from shared.filters import FilterError

    strict = SymbolFilters(symbol="BTCUSDT", base_asset="BTC", quote_asset="USDT", tick_size=TICK, step_size=STEP,
                           min_qty=D("0.00001"), min_notional=D("5"))  # fmt: skip
    with pytest.raises(FilterError) as small:
        strict.check(D("1E-7"), D("42000"))
    assert str(small.value) == "BTCUSDT: LOT_SIZE: quantity 0.0000001 below minimum 0.00001"
    with pytest.raises(FilterError) as cheap:
        strict.check(D("0.00010"), D("42000.00"))
    assert str(cheap.value) == "BTCUSDT: NOTIONAL: 4.2 below minimum 5"
