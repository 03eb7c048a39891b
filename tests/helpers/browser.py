"""A real headless browser for the web pages' tests: Debian's chromium driven by Playwright.

Playwright's own browser download needs the internet, so the browser is always the system's
/usr/bin/chromium (`executable_path`). Without it, or without Playwright, a test skips with one
line saying how to get them; under AUTOMATA_REQUIRE_BROWSER=1 (.ci/run) it fails instead, so CI
never passes by skipping them. tests/conftest.py registers this module's fixtures.
"""

from __future__ import annotations

import importlib.util
import os
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Page

CHROMIUM = Path("/usr/bin/chromium")
REQUIRE_ENV = "AUTOMATA_REQUIRE_BROWSER"  # .ci/run sets it: no browser is then a failure
SKIP_REASON = (
    f"browser tests need Debian's chromium at {CHROMIUM} and Playwright for Python "
    "(sudo apt-get install chromium; make venv installs playwright)"
)
# a phone-sized window is what the responsive pages are checked at too; this is the desktop one
VIEWPORT = {"width": 1280, "height": 860}


def missing() -> str | None:
    """What of the browser setup is absent, or None when the tests can run."""
    try:
        installed = importlib.util.find_spec("playwright") is not None
    except (ImportError, ValueError):  # a broken install counts as none
        installed = False
    if not installed:
        return "playwright is not installed"
    if not os.access(CHROMIUM, os.X_OK):
        return f"no {CHROMIUM}"
    return None


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    """One headless chromium per test module; each test gets its own context (`page`). Not one
    per session: Playwright's sync API holds an event loop in this thread while it runs, and a
    pytest-asyncio test in a later module of the same worker could not start its own."""
    absent = missing()
    if absent is not None:
        if os.environ.get(REQUIRE_ENV) == "1":
            pytest.fail(f"{REQUIRE_ENV}=1 but {absent}: {SKIP_REASON}")
        pytest.skip(SKIP_REASON)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        # --no-sandbox: CI runs as root, where chromium refuses its sandbox
        chromium = pw.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=["--no-sandbox"])
        try:
            yield chromium
        finally:
            chromium.close()


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    """A fresh page in a context of its own (no cookies shared between tests); a script error
    on the page, or anything the page's Content-Security-Policy blocked, fails the test."""
    context = browser.new_context(viewport=VIEWPORT)
    tab = context.new_page()
    errors: list[str] = []
    tab.on("pageerror", lambda exc: errors.append(str(exc)))
    tab.on("console", lambda msg: "Content Security Policy" in msg.text and errors.append(msg.text))
    try:
        yield tab
    finally:
        context.close()
    assert not errors, f"script errors on the page: {errors}"
