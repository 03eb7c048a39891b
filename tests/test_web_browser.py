"""The dashboard in a real headless browser (Debian's chromium through Playwright), on the demo.

One demo (`automata run` in a temporary AUTOMATA_HOME, on moved ports; the token it writes makes
the pages ask for a login) serves the module. With it running: the overview shows the balances the paper
venue reports; a fill at the venue appears on the open trades page without a reload; the pause
button pauses the bot (its state in Redis says so); a wrong or missing token is refused; and the
overview and a bot page are photographed (AUTOMATA_SCREENSHOTS=docs/screenshots keeps them).
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
from collections.abc import Iterator
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path
from typing import TYPE_CHECKING

import httpx
import orjson
import pytest

from cli.paths import Home
from cli.supervisor import rpc
from tests.helpers.browser import VIEWPORT
from tests.helpers.procs import wait_until
from tests.helpers.web_demo import WebDemo, automata, bot_mode, demo_state, running_web_demo

if TYPE_CHECKING:  # without Playwright the tests skip (tests/helpers/browser.py), never fail to import
    from playwright.sync_api import Browser, Page

pytestmark = pytest.mark.slow
SHOTS_ENV = "AUTOMATA_SCREENSHOTS"  # a directory to keep the screenshots in (docs/screenshots)
PHONE = {"width": 390, "height": 844}


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory, browser: Browser) -> Iterator[WebDemo]:
    """The demo with its web service (`browser` first: without one the module skips before
    starting anything)."""
    with running_web_demo(tmp_path_factory.mktemp("web")) as found:
        yield found


def login(page: Page, demo: WebDemo, path: str = "/") -> None:
    """Open `path` as a user does: sent to the login page, type the token, land back on `path`."""
    page.goto(demo.url + path)
    page.wait_for_url(re.compile(r"/login\?next="))
    page.fill("#token", demo.token)
    page.click("#login button[type=submit]")
    page.wait_for_url(demo.url + path)


def shown_balances(page: Page) -> dict[str, tuple[Decimal, Decimal, Decimal]]:
    """The overview's balance table: asset -> (free, locked, total), as the page shows them."""
    rows = page.eval_on_selector_all(
        "#balances tbody tr",
        """rows => rows.map(tr => [tr.dataset.key,
             ...['Free', 'Locked', 'Total'].map(l => tr.querySelector(`td[data-label="${l}"]`).textContent)])""",
    )
    return {key.split(":", 1)[1]: tuple(Decimal(v.replace(",", "")) for v in values) for key, *values in rows}


def venue_balances(demo: WebDemo) -> dict[str, tuple[Decimal, Decimal, Decimal]]:
    """What the paper venue itself reports now (`automata balance sim --live --json`), non-zero only."""
    out = automata(demo.env, "balance", "sim", "--live", "--json")
    (account,) = orjson.loads(out)
    return {
        b["asset"]: (Decimal(b["free"]), Decimal(b["locked"]), Decimal(b["total"]))
        for b in account["balances"]
        if Decimal(b["total"]) != 0
    }


def test_the_overview_shows_the_balances_the_venue_reports(demo: WebDemo, page: Page) -> None:
    login(page, demo)
    page.wait_for_selector("#balances tbody tr")
    # the bots trade all along: the page and the venue agree once no fill falls between the two reads
    seen: list[tuple[dict, dict]] = []

    def agree() -> bool:
        venue = venue_balances(demo)
        shown = {a: v for a, v in shown_balances(page).items() if v[2] != 0}
        seen.append((venue, shown))
        return venue == shown and len(venue) >= 2

    try:
        wait_until(agree, timeout=90, interval=0.5, what="the overview to show the venue's balances")
    except AssertionError:
        raise AssertionError(f"last venue / page balances: {seen[-3:]}") from None
    # and the equity the page names is the venue's account valued in USDT
    assert re.search(r"equity sim [\d,.]+ USDT", page.inner_text("#equity-total"))


def test_a_fill_at_the_venue_appears_on_the_open_page_without_a_reload(demo: WebDemo, page: Page) -> None:
    login(page, demo, "/trades")
    page.wait_for_selector("#trades tbody tr")
    page.evaluate("window.sameDocument = true")  # gone if the page reloads
    placed = automata(demo.env, "order", "buy", "BTCUSDT", "0.0005")  # a market buy: it fills
    cid = re.search(r"manual-\d+", placed)
    assert cid and "FILLED" in placed, placed
    row = page.locator("#trades tbody tr", has_text=cid.group())
    row.wait_for(timeout=30_000)  # the live feed's fill event, then the ledger's row
    assert "BUY" in row.inner_text() and "0.0005" in row.inner_text()
    assert page.evaluate("window.sameDocument") is True
    # the page's CSV link exports that fill too
    csv = page.evaluate("fetch(document.getElementById('trades-csv').href).then(r => r.text())")
    assert cid.group() in csv and csv.splitlines()[0].startswith("time_utc,")


def test_notifications_arrive_on_the_open_page(demo: WebDemo, page: Page) -> None:
    login(page, demo, "/notifications")
    page.wait_for_selector("#notifications tbody tr")
    page.evaluate("window.sameDocument = true")
    keys = "rows => rows.map(r => r.dataset.key)"
    before = set(page.eval_on_selector_all("#notifications tbody tr", keys))
    # every fill of the demo's bots is a notification: the next one, without a reload (the page never polls)
    wait_until(
        lambda: set(page.eval_on_selector_all("#notifications tbody tr", keys)) - before,
        timeout=90,
        interval=0.3,
        what="a new notification on the open page",
    )
    assert page.evaluate("window.sameDocument") is True


def test_profit_by_period_exports_the_table_it_shows(demo: WebDemo, page: Page) -> None:
    login(page, demo, "/profit")
    page.wait_for_selector("#profit tbody tr")
    page.select_option("#profit-period", "weekly")
    page.wait_for_selector("#profit th:text('Week of')")
    with page.expect_download() as download:
        page.click("#profit-csv")
    lines = Path(download.value.path()).read_text().splitlines()
    shown = page.eval_on_selector_all("#profit tbody tr", "rows => rows.length")
    heads = page.eval_on_selector_all("#profit th", "cells => cells.map(c => c.textContent)")
    quotes = [h.removeprefix("Profit ") for h in heads if h.startswith("Profit ")]  # one per quote asset
    assert download.value.suggested_filename == "profit-weekly.csv"
    assert lines[0] == ",".join(["start", "end", *(f"profit_{q}" for q in quotes), "closed", "wins", "fills"])
    assert len(lines) == shown + 1


def test_the_bot_page_draws_the_bots_new_fills_live(demo: WebDemo, page: Page) -> None:
    login(page, demo, "/bots/demo_dca")
    page.wait_for_selector("#chart svg .candle")
    page.evaluate("window.sameDocument = true")
    before = set(page.eval_on_selector_all("#fills tbody tr", "rows => rows.map(r => r.dataset.key)"))

    def new_fill() -> str | None:
        keys = page.eval_on_selector_all("#fills tbody tr", "rows => rows.map(r => r.dataset.key)")
        return next((k for k in keys if k not in before), None)

    # the demo's DCA bot buys and sells every few seconds: its next fill, in the table and on the chart
    key = wait_until(new_fill, timeout=90, interval=0.3, what="a new fill of demo_dca on its page")
    page.wait_for_selector(f'#chart svg .fill[data-id="{key}"]', timeout=15_000)
    assert page.evaluate("window.sameDocument") is True


def test_each_strategy_draws_its_levels(demo: WebDemo, page: Page) -> None:
    """The DCA ladder with its filled level, the grid's levels, the fractal stop: in the bot's
    table and on its chart, as the bot's state has them."""
    login(page, demo, "/bots/demo_dca")
    page.wait_for_selector("#levels [data-level-state=filled]")  # the opening buy, at least
    page.wait_for_selector("#chart svg .level.filled")
    assert page.inner_text("#levels-title").startswith("DCA ladder")

    page.goto(f"{demo.url}/bots/demo_grid")
    page.wait_for_selector("#levels tbody tr >> nth=12")  # its 13 levels (deploy/bots.demo.toml)
    prices = demo_state(demo, "demo_grid")["prices"]  # decimal strings
    shown = page.eval_on_selector_all(
        "#levels tbody td[data-label=Price]", "cells => cells.map(c => c.textContent)"
    )
    assert [Decimal(v.replace(",", "")) for v in reversed(shown)] == [Decimal(p) for p in prices]

    page.goto(f"{demo.url}/bots/demo_fractal")
    wait_until(
        lambda: demo_state(demo, "demo_fractal").get("stop"), timeout=90, interval=0.5, what="a fractal stop"
    )
    page.reload()
    page.wait_for_selector("#chart svg .stopline", state="attached")  # a flat line: no height to be "visible"
    stop = Decimal(demo_state(demo, "demo_fractal")["stop"]).quantize(Decimal("0.01"), ROUND_HALF_UP)
    shown = format(stop, ",f").rstrip("0").rstrip(".")  # as the page writes it: no trailing zeros
    assert f"stop in force\t{shown}" in page.inner_text("#levels")


def test_the_pause_button_pauses_the_bot(demo: WebDemo, page: Page) -> None:
    bot = "demo_grid"
    login(page, demo, f"/bots/{bot}")
    page.wait_for_selector("#bot-mode[data-mode=running]")
    page.click("#controls button[data-action=pause]")
    wait_until(
        lambda: bot_mode(demo, bot) == "paused", timeout=30, interval=0.2, what="the bot's state: paused"
    )
    page.wait_for_selector("#bot-mode[data-mode=paused]", timeout=15_000)  # and the page says so, live
    assert page.is_disabled("#controls button[data-action=pause]")
    page.click("#controls button[data-action=resume]")
    wait_until(
        lambda: bot_mode(demo, bot) == "running", timeout=30, interval=0.2, what="the bot running again"
    )


def test_a_stopped_bot_offers_resume_and_close_not_pause_or_stop(demo: WebDemo, page: Page) -> None:
    """Pause and Stop stayed clickable on a stopped bot (a pause made it "paused", no longer
    stopped, without a reason)."""
    bot = "demo_manual"  # no order of its own: stopping it changes nothing the other tests watch
    login(page, demo, f"/bots/{bot}")
    page.wait_for_selector("#bot-mode[data-mode=running]")
    page.once("dialog", lambda dialog: dialog.accept())
    page.click("#controls button[data-action=stop]")
    page.wait_for_selector("#bot-mode[data-mode=stopped]", timeout=30_000)
    disabled = {
        a: page.is_disabled(f"#controls button[data-action={a}]")
        for a in ("pause", "resume", "stop", "close")
    }
    assert disabled == {"pause": True, "resume": False, "stop": True, "close": False}
    page.click("#controls button[data-action=resume]")
    wait_until(
        lambda: bot_mode(demo, bot) == "running", timeout=30, interval=0.2, what=f"{bot} running again"
    )


def test_an_unknown_bots_page_says_so_and_offers_no_control(demo: WebDemo, page: Page) -> None:
    """/bots/nope drew an empty chart, live Pause/Stop/Close buttons and a flash of raw JSON
    ('state: 404: {"error":...}'); it says there is no such bot instead, without controls."""
    login(page, demo, "/bots/nope")
    page.wait_for_selector("#bot-missing:not([hidden])")
    said = page.inner_text("#bot-missing")
    assert "no bot 'nope'" in said and "{" not in said, said
    assert not page.locator("#controls").is_visible()
    assert not page.locator("#chart").is_visible()
    page.wait_for_timeout(6000)  # the chart's refresh (every 5 s) asks nothing of a bot that is not there
    assert page.inner_text("#flash") == ""


def test_a_stopped_service_stays_on_the_overview_marked_down(demo: WebDemo, page: Page) -> None:
    """A stopped service's heartbeat goes, and its row left the Services table without a word (5
    rows instead of 6); the page keeps a service it saw, marked down, until it beats again."""
    login(page, demo, "/")
    row = '#services tr[data-key="ledger:vm"]'
    page.wait_for_selector(f"{row} .badge.ok")
    supervisor = rpc(Home(Path(demo.env["AUTOMATA_HOME"])).supervisor_socket)
    supervisor.supervisor.stopProcess("ledger")
    try:
        page.wait_for_selector(f"{row} .badge.down", timeout=40_000)
        assert "down" in page.inner_text(row)
    finally:
        supervisor.supervisor.startProcess("ledger")
    page.wait_for_selector(f"{row} .badge.ok", timeout=40_000)


def test_a_wrong_or_missing_token_is_refused(demo: WebDemo, browser: Browser) -> None:
    api = f"{demo.url}/api/bots"
    assert httpx.get(api, timeout=10).status_code == 401
    assert (
        httpx.get(api, headers={"Authorization": "Bearer wrong-token-0123456789"}, timeout=10).status_code
        == 401
    )
    pause = f"{demo.url}/api/bots/demo_dca/pause"
    for headers in ({}, {"Authorization": "Bearer wrong-token-0123456789"}):
        assert httpx.post(pause, json={}, headers=headers, timeout=10).status_code == 401
    assert bot_mode(demo, "demo_dca") == "running"

    context = browser.new_context(viewport=VIEWPORT)
    try:
        page = context.new_page()
        page.goto(demo.url + "/")
        page.wait_for_url(re.compile(r"/login\?next=/"))  # no page without a login
        page.fill("#token", "wrong-token-0123456789")
        page.click("#login button[type=submit]")
        page.wait_for_selector("#login-error:text('wrong token')")
        assert "/login" in page.url
        # logged in, a control action without the CSRF header is refused (another site's form)
        login(page, demo)
        status = page.evaluate(
            """() => fetch('/api/bots/demo_dca/pause', {method: 'POST', body: '{}',
                     headers: {'Content-Type': 'application/json'}}).then(r => r.status)"""
        )
        assert status == 403
        assert bot_mode(demo, "demo_dca") == "running"
        # a session that ended (expired, a new token) sends the open page to the login at its next call
        page.goto(demo.url + "/bots/demo_dca")
        page.wait_for_selector("#bot-mode[data-mode=running]")
        context.clear_cookies()
        # the click's POST is refused, or an earlier refetch of the page already was: the login either way
        with contextlib.suppress(Exception):
            page.click("#controls button[data-action=pause]", timeout=3000)
        page.wait_for_url(re.compile(r"/login\?next=%2Fbots%2Fdemo_dca"))
        assert bot_mode(demo, "demo_dca") == "running"
        page.fill("#token", demo.token)
        page.click("#login button[type=submit]")
        page.wait_for_url(demo.url + "/bots/demo_dca")  # back where it was
        page.click("#logout")  # and a session ends when asked
        page.wait_for_url(re.compile(r"/login$"))
        page.goto(demo.url + "/trades")
        page.wait_for_url(re.compile(r"/login\?next=/trades"))
    finally:
        context.close()


def test_the_login_form_works_without_javascript(demo: WebDemo, browser: Browser) -> None:
    context = browser.new_context(viewport=VIEWPORT, java_script_enabled=False)
    try:
        page = context.new_page()
        page.goto(demo.url + "/profit")
        page.wait_for_url(re.compile(r"/login\?next=/profit"))
        page.fill("#token", demo.token)
        page.click("#login button[type=submit]")  # a plain POST: the API answers with a redirect
        page.wait_for_url(demo.url + "/profit")
        assert page.title().startswith("Profit")
    finally:
        context.close()


def test_screenshots_of_the_overview_and_a_bot_page(
    demo: WebDemo, page: Page, browser: Browser, tmp_path: Path
) -> None:
    login(page, demo)
    page.wait_for_selector("#balances tbody tr")
    page.wait_for_selector("#bots tbody tr >> nth=2")
    page.wait_for_selector("#services tbody tr")
    shots = {"overview.png": page.screenshot(path=tmp_path / "overview.png")}
    page.set_viewport_size({"width": VIEWPORT["width"], "height": 1240})  # the chart, state and ladder
    page.goto(f"{demo.url}/bots/demo_dca")
    page.wait_for_selector("#chart svg .candle")
    page.wait_for_selector("#levels tbody tr")
    page.wait_for_selector("#chart svg .fill")  # its fills drawn on the chart
    page.wait_for_selector("#cycles tbody tr >> nth=1", timeout=90_000)  # a closed cycle to show
    page.wait_for_function(  # and the state caught up with it: the same cycle in both
        """() => document.querySelector('#state dd[data-stat="Cycle"]')?.textContent.split(' ')[0]
                 === document.querySelector('#cycles tbody tr td')?.textContent""",
        timeout=30_000,
    )
    shots["bot.png"] = page.screenshot(path=tmp_path / "bot.png")

    phone = browser.new_context(viewport=PHONE, storage_state=page.context.storage_state())
    try:
        small = phone.new_page()
        small.goto(demo.url + "/")
        small.wait_for_selector("#bots tbody tr")
        # readable on a phone: nothing wider than the screen, no sideways scrolling
        assert small.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
        shots["overview-phone.png"] = small.screenshot(path=tmp_path / "overview-phone.png")
    finally:
        phone.close()
    for name, png in shots.items():
        assert png[:8] == b"\x89PNG\r\n\x1a\n", name
    keep = os.environ.get(SHOTS_ENV)
    if keep:
        Path(keep).mkdir(parents=True, exist_ok=True)
        for name in shots:
            shutil.copy(tmp_path / name, Path(keep) / name)
