"""The dashboard's page routes (services/web/pages.py) on the real app and a real Redis, without a
browser: who gets a page and who the login page, where a login may send the browser back to,
the assets each page links, read-only pages without controls. What the pages show is checked in
a real browser (tests/test_web_browser.py)."""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

import httpx
import pytest

from services.web.settings import WebSettings
from shared.redis_server import RedisServer
from tests.helpers.web import TOKEN, client

PAGES = ("/", "/bots/demo_dca", "/trade", "/trades", "/profit", "/notifications")
STATIC = Path(__file__).resolve().parents[1] / "services/web/static"


def settings(redis_server: RedisServer, **kw: object) -> WebSettings:
    return WebSettings(redis_url=redis_server.url, **kw)  # type: ignore[arg-type]


async def logged_in(c: httpx.AsyncClient) -> None:
    assert (await c.post("/api/login", json={"token": TOKEN})).status_code == 200


@pytest.mark.parametrize("path", PAGES)
async def test_a_page_without_a_session_sends_the_browser_to_the_login(
    redis_server: RedisServer, path: str
) -> None:
    async with client(settings(redis_server, token=TOKEN)) as c:
        reply = await c.get(path + "?x=1")
        assert reply.status_code == 303
        assert reply.headers["location"] == f"/login?next={path}%3Fx%3D1"
        login = await c.get(reply.headers["location"])
        assert login.status_code == 200 and 'id="token"' in login.text
        assert f'data-next="{path}?x=1"' in login.text
        await logged_in(c)
        page = await c.get(path)
        assert page.status_code == 200 and page.headers["cache-control"] == "no-store"
        csp = page.headers["content-security-policy"]  # no inline script, no framing of the controls
        assert "default-src 'self'" in csp and "frame-ancestors 'none'" in csp and "script-src" not in csp
        assert 'id="live"' in page.text  # the live feed's dot: every page follows /api/live


@pytest.mark.parametrize("target", ["//evil.example/x", "https://evil.example/", "evil", "/\\evil.example"])
async def test_the_login_never_sends_the_browser_to_another_site(
    redis_server: RedisServer, target: str
) -> None:
    async with client(settings(redis_server, token=TOKEN)) as c:
        login = await c.get("/login", params={"next": target})
        assert 'data-next="/"' in login.text, login.text


async def test_pages_link_their_assets_by_content_hash(redis_server: RedisServer) -> None:
    async with client(settings(redis_server)) as c:  # no token: loopback, reads open
        links: set[str] = set()
        for path in PAGES:
            page = await c.get(path)
            assert page.status_code == 200, path
            links |= set(re.findall(r'(?:src|href)="(/static/[^"]+)"', page.text))
        assert {link.split("?")[0] for link in links} >= {
            "/static/app.js", "/static/chart.js", "/static/bot.js", "/static/overview.js",
            "/static/tables.js", "/static/trade.js", "/static/style.css",
        }  # fmt: skip
        for link in links:
            name, version = link.removeprefix("/static/").split("?v=")
            body = (await c.get(link)).content
            assert body == (STATIC / name).read_bytes()
            assert version == hashlib.sha256(body).hexdigest()[:10], link


async def test_a_bot_page_has_its_controls_unless_read_only(redis_server: RedisServer) -> None:
    buttons = ('data-action="pause"', 'data-action="resume"', 'data-action="stop"', 'data-action="close"')
    async with client(settings(redis_server)) as c:
        page = (await c.get("/bots/demo_dca")).text
        assert all(b in page for b in buttons) and 'data-bot="demo_dca"' in page
        assert (await c.get("/bots/not-a-bot!")).status_code == 404
        assert (await c.get("/bots/" + "b" * 25)).status_code == 404  # longer than a bot id
    async with client(settings(redis_server, read_only=True)) as c:
        page = (await c.get("/bots/demo_dca")).text
        assert not any(b in page for b in buttons) and "read-only" in page


async def test_the_trade_page_has_its_order_form_unless_read_only(redis_server: RedisServer) -> None:
    async with client(settings(redis_server)) as c:
        page = (await c.get("/trade")).text
        assert 'id="order-form"' in page and "data-read-only" not in page
        # which orders the page lists as open is the order lifecycle's word (trade.js reads it)
        assert '<div id="manual-orders" data-open="NEW PARTIALLY_FILLED">' in page
    async with client(settings(redis_server, read_only=True)) as c:
        page = (await c.get("/trade")).text
        # no form; the open orders' Cancel buttons are left out by the script (A.readOnly)
        assert 'id="order-form"' not in page and '<body data-page="trade" data-read-only>' in page
