"""Trading from the dashboard in a real headless browser (Debian's chromium through Playwright),
on the demo: the Cancel button of a bot's open order, the manual order form and the Cancel of a
manual order, an order's fate shown without the live feed and a silent order gateway said, the smart-trade form (demo_manual's trade: entry filled, exits out, a bad term
refused naming it, the close), and the live feed catching up after the web service restarted
under an open page; and, on a web service of its own, no Cancel button nor order form (nor
smart-trade form) in read-only mode.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
import redis

from cli.paths import Home
from cli.supervisor import rpc
from shared import control
from shared.messages import OrderStatus
from shared.redis_server import RedisServer
from tests.helpers.procs import wait_until
from tests.helpers.web import bot_doc, put_bot, start_service
from tests.helpers.web_demo import WebDemo, automata, demo_state, running_web_demo

if TYPE_CHECKING:  # without Playwright the tests skip (tests/helpers/browser.py), never fail to import
    from playwright.sync_api import Browser, Page

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory, browser: Browser) -> Iterator[WebDemo]:
    with running_web_demo(tmp_path_factory.mktemp("trade")) as found:
        yield found


def login(page: Page, demo: WebDemo, path: str) -> None:
    page.goto(demo.url + path)
    page.wait_for_url(re.compile(r"/login\?next="))
    page.fill("#token", demo.token)
    page.click("#login button[type=submit]")
    page.wait_for_url(demo.url + path)
    page.on("dialog", lambda dialog: dialog.accept())  # the confirms of the controls
    page.evaluate("window.sameDocument = true")  # gone if the page reloads


def status(demo: WebDemo, cid: str) -> OrderStatus | None:
    record = control.read_record(demo.redis, cid)
    return None if record is None else record.status


def cancel_from_its_row(page: Page, demo: WebDemo, table: str, cid: str) -> None:
    """Click the order's Cancel (the confirm accepted): it ends CANCELED in Redis (the gateway's
    record of the venue's answer) and its row leaves the open page's table, without a reload."""
    page.click(f'#{table} button[data-cancel="{cid}"]', timeout=15_000)
    wait_until(lambda: status(demo, cid) == OrderStatus.CANCELED, timeout=30, interval=0.2,
               what=f"{cid} CANCELED in Redis")  # fmt: skip
    page.wait_for_selector(f'#{table} tr[data-key="{cid}"]', state="detached", timeout=15_000)
    assert page.evaluate("window.sameDocument") is True


def submit_order(page: Page, status: str) -> str:
    """Submit the Trade form; the placed order's cid once the page shows it reached `status`."""
    page.click("#order-submit")
    page.wait_for_selector(f"#order-result[data-status={status}]", timeout=30_000)
    cid = re.match(r"manual-\d+", page.inner_text("#order-result"))
    assert cid, page.inner_text("#order-result")
    return cid.group()


def test_the_cancel_button_cancels_a_bots_open_order(demo: WebDemo, page: Page) -> None:
    bot = "demo_grid"
    login(page, demo, f"/bots/{bot}")
    page.wait_for_selector("#orders button[data-cancel]")
    # the grid's lowest buy: the one least likely to fill meanwhile
    orders = demo_state(demo, bot)["orders"].values()
    cid = min((o for o in orders if o["side"] == "BUY"), key=lambda o: Decimal(o["price"]))["cid"]
    cancel_from_its_row(page, demo, "orders", cid)


def test_a_market_buy_from_the_form_fills(demo: WebDemo, page: Page) -> None:
    login(page, demo, "/trade")
    page.select_option("#order-side", "BUY")
    page.select_option("#order-type", "market")
    page.fill("#order-amount", "0.0005")
    cid = submit_order(page, "FILLED")
    assert status(demo, cid) == OrderStatus.FILLED
    page.locator("#manual-history tbody tr", has_text=cid).wait_for(timeout=15_000)
    fills = page.evaluate("fetch('/api/bots/manual/fills?limit=20').then(r => r.json())")["fills"]
    assert any(f["cid"] == cid and f["side"] == "BUY" for f in fills)
    assert page.evaluate("window.sameDocument") is True


def test_a_refused_order_shows_the_reason_and_an_open_one_can_be_cancelled(demo: WebDemo, page: Page) -> None:
    login(page, demo, "/trade")
    # far more than the account holds: refused, with the reason
    page.fill("#order-amount", "1000")
    submit_order(page, "REJECTED")
    assert "—" in page.inner_text("#order-result")  # the reason follows the status
    # a limit buy below the market rests on the book: open, then cancelled from its row
    page.select_option("#order-type", "limit")
    page.fill("#order-amount", "0.0005")
    page.fill("#order-price", "40000")
    cancel_from_its_row(page, demo, "manual-orders", submit_order(page, "NEW"))


def test_an_orders_fate_shows_without_the_live_feed(demo: WebDemo, page: Page) -> None:
    """The result came only from the live feed: with the feed missing the update (down, or not
    yet following the manual orders' stream, found up to 5 s after the first manual order) it
    said "sent, waiting for the venue…" for good. The ledger's record of the order says it too."""
    page.route("**/api/live", lambda route: route.abort())
    login(page, demo, "/trade")
    page.fill("#order-amount", "0.0005")
    cid = submit_order(page, "FILLED")
    assert status(demo, cid) == OrderStatus.FILLED


def test_an_order_the_gateway_does_not_answer_says_so_then_its_fate(demo: WebDemo, page: Page) -> None:
    """With the order gateway down the page waited without a word; as `automata order` it says
    after 5 s that nothing answered, and shows the fill once the gateway is back."""
    login(page, demo, "/trade")
    page.wait_for_selector("#live[data-state=up]")
    supervisor = rpc(Home(Path(demo.env["AUTOMATA_HOME"])).supervisor_socket)
    supervisor.supervisor.stopProcess("order_gateway")
    try:
        page.fill("#order-amount", "0.0005")
        cid = submit_order(page, "waiting")
        assert "no answer within 5 s" in page.inner_text("#order-result")
    finally:
        supervisor.supervisor.startProcess("order_gateway")
    page.wait_for_selector("#order-result[data-status=FILLED]", timeout=30_000)
    assert cid in page.inner_text("#order-result") and status(demo, cid) == OrderStatus.FILLED


def test_a_smart_trade_from_the_form_is_bought_then_protected_and_closed(demo: WebDemo, page: Page) -> None:
    login(page, demo, "/trade")
    # a bad term: refused by the API naming it, nothing sent to the bot
    page.fill("#smart-quote", "50")
    page.fill("#smart-tp", "2%,,4%")
    page.click("#smart-submit")
    page.wait_for_selector("#smart-result[data-status=refused]", timeout=30_000)
    assert "tp: an empty target" in page.inner_text("#smart-result")
    assert demo.redis.xlen("bot:demo_manual:control") == 0
    # the trade: demo_manual buys at market (the answer shows the entry FILLED), then its exits go out
    page.fill("#smart-tp", "2%")
    page.fill("#smart-sl", "1%")
    asked: list[str] = []
    page.on("dialog", lambda dialog: asked.append(dialog.message))
    page.click("#smart-submit")
    page.wait_for_selector("#smart-result[data-status=sent]", timeout=30_000)
    assert "buy BTCUSDT quote 50 tp 2% sl 1%" in asked[-1], asked  # the confirm names the terms
    said = page.inner_text("#smart-result")
    assert "buy BTCUSDT quote 50 at market tp 2% sl 1%" in said and "entry demo_manual-" in said, said
    entry = re.search(r"demo_manual-\d+", said)
    assert entry and said.count(entry.group()) == 1 and "FILLED" in said, said  # named once, with its fate
    wait_until(lambda: any(o["side"] == "SELL" for o in demo_state(demo, "demo_manual").get("orders", {}).values()),
               timeout=30, interval=0.2, what="demo_manual's exits out")  # fmt: skip
    # the close: the exits cancelled, what was bought sold at market
    page.select_option("#smart-side", "sell")
    page.click("#smart-submit")
    page.wait_for_selector("#smart-result[data-status=closing]", timeout=30_000)
    wait_until(lambda: not demo_state(demo, "demo_manual").get("orders"), timeout=30, interval=0.2,
               what="demo_manual's orders gone")  # fmt: skip
    assert page.evaluate("window.sameDocument") is True


def test_a_fill_made_while_the_web_service_was_down_shows_after_it_is_back(demo: WebDemo, page: Page) -> None:
    login(page, demo, "/trades")
    page.wait_for_selector("#live[data-state=up]")
    supervisor = rpc(Home(Path(demo.env["AUTOMATA_HOME"])).supervisor_socket)
    supervisor.supervisor.stopProcess("web")
    try:
        page.wait_for_selector("#live[data-state=down]", timeout=15_000)
        placed = automata(demo.env, "order", "buy", "BTCUSDT", "0.0005")  # fills while no page is fed
        cid = re.search(r"manual-\d+", placed)
        assert cid and "FILLED" in placed, placed
    finally:
        supervisor.supervisor.startProcess("web")
    page.wait_for_selector("#live[data-state=up]", timeout=30_000)
    page.locator("#trades tbody tr", has_text=cid.group()).wait_for(timeout=30_000)
    assert page.evaluate("window.sameDocument") is True


def test_read_only_pages_draw_no_cancel_button_nor_order_form(
    page: Page, redis_server: RedisServer, sync_redis: redis.Redis, tmp_path: Path
) -> None:
    order = {"cid": "b1-000001", "side": "BUY", "order_type": "LIMIT", "tag": "so1", "quantity": "0.001",
             "price": "40000", "status": "NEW"}  # fmt: skip
    put_bot(sync_redis, "b1", bot_doc(orders={order["cid"]: order}))
    shown = {}
    for args in ((), ("--read-only",)):  # no token: loopback, reads open
        proc, base = start_service(redis_server.url, tmp_path, *args)
        page.goto(f"{base}/bots/b1")
        page.wait_for_selector('#orders tr[data-key="b1-000001"]')
        buttons = page.locator("#orders button[data-cancel]").count()
        page.goto(f"{base}/trade")
        page.wait_for_selector("#manual-orders > *")  # its script ran (no ledger: "no open manual order")
        shown[args] = (buttons, page.locator("#order-form").count(), page.locator("#smart-form").count())
        proc.terminate()
    assert shown == {(): (1, 1, 1), ("--read-only",): (0, 0, 0)}
