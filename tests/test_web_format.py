"""The pages show money digit for digit: services/web/static/app.js formats the API's decimal
strings by string operations (grouping, rounding half up, exponents written out), never through
a float, run here in the real browser the pages run in."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # without Playwright the tests skip (tests/helpers/browser.py), never fail to import
    from playwright.sync_api import Page


APP_JS = Path(__file__).resolve().parents[1] / "services/web/static/app.js"

CASES = [
    ('A.money("12345.678900")', "12,345.6789"),
    ('A.money("42600.0000")', "42,600"),
    ('A.money("0.1234567890123456789")', "0.1234567890123456789"),  # more digits than a float holds
    ('A.money("123456789012345678.5")', "123,456,789,012,345,678.5"),
    ('A.money("0.99999", 2)', "1"),
    ('A.money("999.995", 2)', "1,000"),
    ('A.money("-1.005", 2)', "-1.01"),  # half up, where a float would give -1.00
    ('A.money("-0.004", 2)', "0"),  # no "-0"
    ('A.money("9.8E-7")', "0.00000098"),  # Python's Decimal writes small fees so
    ('A.money("0E-8")', "0"),
    ('A.money("1E+3")', "1,000"),
    ('A.money("-2.5E-3")', "-0.0025"),
    ("A.money(null)", "–"),
    ('A.pct("0.0035")', "0.35 %"),
    ('A.pct("0.00322102")', "0.32 %"),
    ('A.pct("1.5")', "150 %"),
    ('A.pct("-0.02")', "-2 %"),
    ('A.signClass("-0.01")', "neg"),
    ('A.signClass("0.000")', ""),
    ('A.signClass("0.01")', "pos"),
    ("A.time(1704104220000)", "2024-01-01 10:17:00"),  # UTC, the venue's clock
]


def test_amounts_are_formatted_without_floats(page: Page) -> None:
    page.set_content("<!doctype html><title>format</title>")
    page.add_script_tag(content=APP_JS.read_text())
    shown = {expression: page.evaluate(expression) for expression, _ in CASES}
    assert shown == dict(CASES)
