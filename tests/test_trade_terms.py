"""The grammar of a manual smart trade (shared/trade_terms.py), shared by `automata trade`,
Telegram's /trade and the dashboard: what each term means, and that a bad one names its field."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from shared.exits import Exits, Target
from shared.messages import Side
from shared.trade_terms import TermsError, describe, parse_terms, parse_words

D = Decimal


def test_the_issues_example_is_two_targets_a_stop_and_a_trailing_stop() -> None:
    terms = parse_terms("buy", "btcusdt", {"quote": "100", "tp": "2%,4%", "sl": "1%", "trailing": "0.5%"})
    assert (
        terms.side == Side.BUY and terms.symbol == "BTCUSDT" and terms.quote == D(100) and terms.qty is None
    )
    assert terms.exits == Exits(
        take_profits=(Target(gain=D("0.02")), Target(gain=D("0.04"))),
        stop_loss=D("0.01"),
        trailing_stop=D("0.005"),
    )
    assert describe(terms) == "buy BTCUSDT quote 100 at market tp 2%,4% sl 1% trailing 0.5%"


def test_prices_shares_a_stop_price_a_limit_and_the_rest() -> None:
    terms = parse_terms("BUY", "BTCUSDT", {
        "qty": "0.002", "price": "41000", "tp": "43000,44000:60%,40%", "stop": "40000", "trailing_tp": "0.5%",
        "break_even": "yes", "time_limit": "4h",
    })  # fmt: skip
    assert terms.qty == D("0.002") and terms.price == D(41000)
    assert terms.exits == Exits(
        take_profits=(Target(price=D(43000), share=D("0.6")), Target(price=D(44000), share=D("0.4"))),
        stop_price=D(40000),
        trailing_take_profit=D("0.005"),
        break_even=True,
        time_limit_s=4 * 3600,
    )
    assert describe(terms) == (
        "buy BTCUSDT qty 0.002 limit 41000 tp 43000,44000:60%,40% stop 40000 trailing-tp 0.5% break-even "
        "time-limit 14400s"
    )


@pytest.mark.parametrize(
    ("fields", "field", "words"),
    [
        ({"quote": "100", "tp": "2%,,4%"}, "tp", "an empty target"),
        ({"quote": "100", "tp": "2%,4%:50%"}, "tp", "2 targets but 1 shares"),
        ({"quote": "100", "tp": "2%:50"}, "tp", "write it as a percent"),
        ({"quote": "100", "tp": "x%"}, "tp", "not a number"),
        ({"quote": "100", "tp": "2%,4%:70%,40%"}, "tp", "more than 100%"),
        ({"quote": "100", "sl": "0.01"}, "sl", "write it as a percent, e.g. 1%"),
        ({"quote": "100", "sl": "100%"}, "sl", "below 100%"),
        ({"quote": "100", "sl": "-1%"}, "sl", "must be above 0"),
        ({"quote": "100", "sl": "1%", "stop": "40000"}, "stop", "not both"),
        ({"quote": "100", "trailing": "NaN%"}, "trailing", "must be above 0"),
        ({"quote": "100", "trailing_tp": "1%"}, "trailing_tp", "needs a target"),
        ({"quote": "100", "time_limit": "4 hours"}, "time_limit", "a duration"),
        ({"quote": "100", "break_even": "maybe"}, "break_even", "yes or no"),
        ({"quote": "1e400000"}, "quote", "below 1e20"),
        ({}, "quote", "one of them"),
        ({"quote": "100", "qty": "1"}, "quote", "one of them"),
        ({"qty": "0.1", "price": "100", "stop": "101"}, "stop", "below the entry price"),
        ({"qty": "0.1", "price": "100", "tp": "99"}, "tp", "above the entry price"),
        ({"quote": "100", "leverage": "10"}, "leverage", "not a trade term"),
    ],
)
def test_a_bad_term_names_its_field(fields: dict, field: str, words: str) -> None:
    with pytest.raises(TermsError) as caught:
        parse_terms("buy", "BTCUSDT", fields)
    assert caught.value.field == field and words in caught.value.reason, caught.value


def test_a_sell_closes_and_takes_no_terms() -> None:
    assert parse_terms("sell", "BTCUSDT", {}).side == Side.SELL
    with pytest.raises(TermsError, match="tp: a sell closes"):
        parse_terms("sell", "BTCUSDT", {"tp": "2%"})
    with pytest.raises(TermsError, match="side: buy or sell"):
        parse_terms("short", "BTCUSDT", {})
    with pytest.raises(TermsError, match="symbol"):
        parse_terms("buy", "BTC/USDT", {"quote": "1"})


def test_chat_words_are_the_same_grammar() -> None:
    terms, bot = parse_words(
        [
            "buy",
            "BTCUSDT",
            "100",
            "tp",
            "2%,4%",
            "sl",
            "1%",
            "trailing",
            "0.5%",
            "break-even",
            "time-limit",
            "30m",
            "bot",
            "m1",
        ]
    )
    assert bot == "m1"
    assert terms == parse_terms("buy", "BTCUSDT", {"quote": "100", "tp": "2%,4%", "sl": "1%", "trailing": "0.5%",
                                                   "break_even": "yes", "time_limit": "30m"})  # fmt: skip
    with pytest.raises(TermsError) as caught:
        parse_words(["buy", "BTCUSDT", "100", "tp"])
    assert caught.value.field == "tp" and "missing" in caught.value.reason
    with pytest.raises(TermsError) as caught:
        parse_words(["buy", "BTCUSDT", "100", "takeprofit", "2%"])
    assert caught.value.field == "takeprofit"


percents = st.decimals(min_value=D("0.01"), max_value=D("99.99"), places=2)


@given(st.lists(percents, min_size=1, max_size=4), percents, percents)
def test_percent_text_is_the_exact_fraction(gains: list[Decimal], sl: Decimal, trailing: Decimal) -> None:
    tp = ",".join(f"{g}%" for g in gains)
    terms = parse_terms(
        "buy", "BTCUSDT", {"quote": "100", "tp": tp, "sl": f"{sl}%", "trailing": f"{trailing}%"}
    )
    assert [t.gain for t in terms.exits.take_profits] == [g / 100 for g in gains]
    assert terms.exits.stop_loss == sl / 100 and terms.exits.trailing_stop == trailing / 100
    # what describe writes reads back to the same trade
    words = describe(terms).split()
    assert parse_words(["buy", "BTCUSDT", "100", *words[6:]])[0] == terms


@given(st.text(max_size=20))
def test_any_text_is_a_trade_or_a_named_refusal(text: str) -> None:
    for field in ("tp", "sl", "quote", "time_limit"):
        fields = {"quote": "100", field: text}
        try:
            parse_terms("buy", "BTCUSDT", fields)
        except TermsError as exc:
            assert exc.field in ("tp", "sl", "quote", "time_limit", "trailing_tp"), exc
