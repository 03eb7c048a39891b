"""The dashboard's response times with 100,000 fills in the ledger: p50/p99 of GET /api/bots and
of the overview page (its HTML, and the whole page in a browser) and of GET /api/profit (the profit page),
and of /api/bots's work done in process without HTTP (the baseline), then the live feed's
latency (bench/web_live.py). Targets: p99 <
300 ms for the page and /api/bots, p99 < 100 ms for the live feed.

The overview page is timed in a real browser (Debian's chromium through Playwright, when both
are installed): from navigation until every section shows its data, LOADS times.

A real redis-server with five bots' state and decisions, a SQLite ledger seeded as
bench/_ledger_readers.py does (100,000 fills of 5 bots over a year, 50,000 closed cycles, and
each bot's open cycle), a real `python -m services.web` on them, and httpx asking one request
at a time, N times (argv[1], default 200)."""

from __future__ import annotations

import json
import sys
import time
from datetime import timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench import web_live  # noqa: E402
from bench._common import machine, percentiles, stack  # noqa: E402
from bench._ledger_readers import seed  # noqa: E402

N = int(sys.argv[1]) if len(sys.argv) > 1 else 200
BOTS = [f"b{i}" for i in range(5)]
LOADS = 30  # overview loads in the browser
# what the overview page asks for (services/web/static/overview.js)
OVERVIEW = ["/", "/api/balances", "/api/equity", "/api/bots", "/api/services", "/api/notifications?limit=8"]
# the overview is shown: every section the page fills from its API calls has its rows
SHOWN = f"""() => document.querySelectorAll('#bots tbody tr').length === {len(BOTS)}
    && document.querySelector('#services table, #services .empty') !== null
    && document.querySelector('#balances table, #balances .empty') !== null
    && document.querySelector('#notifications table, #notifications .empty') !== null
    && document.querySelector('#equity svg, #equity .empty') !== null"""


def _times(call: object, n: int) -> list[int]:
    took = []
    for _ in range(n):
        start = time.monotonic_ns()
        call()  # type: ignore[operator]
        took.append(time.monotonic_ns() - start)
    return took


def overview_in_browser(base: str, token: str) -> dict[str, float] | str:
    """From navigation to every section of the overview filled, in Debian's chromium (what a user
    waits for: the HTML, its scripts and the five API calls they make), or why it was not run."""
    from tests.helpers.browser import CHROMIUM, missing

    absent = missing()
    if absent is not None:
        return absent
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=["--no-sandbox"])
        page = browser.new_context().new_page()
        page.goto(f"{base}/login")
        page.fill("#token", token)
        page.click("#login button[type=submit]")
        page.wait_for_function(SHOWN)

        def load() -> None:
            page.goto(base + "/")
            page.wait_for_function(SHOWN, polling="raf")

        figures = percentiles(_times(load, LOADS))
        browser.close()
    return figures


def main() -> int:
    import httpx

    from services.web.context import WebContext
    from services.web.settings import WebSettings
    from shared.codec import encode
    from shared.messages import Decision
    from tests.helpers.web import TOKEN, bot_doc, put_bot, start_service

    with stack() as s:
        ledger = f"sqlite:///{s.tmp / 'ledger.sqlite3'}"
        seed(ledger, 100_000, timedelta(days=365))
        r = s.sync_redis()
        for bot in BOTS:
            put_bot(r, bot, bot_doc())
            r.xadd(f"bot:{bot}:decisions", encode(Decision(bot=bot, text="waiting for a dip")))
        r.close()
        proc, base = start_service(
            s.url, s.tmp, AUTOMATA_WEB_TOKEN=TOKEN, DATABASE_URL=ledger, LOG_LEVEL="WARNING"
        )
        s.procs.append(proc)
        headers = {"authorization": f"Bearer {TOKEN}"}
        results = {}
        with httpx.Client(base_url=base, headers=headers, timeout=30) as client:
            assert len(client.get("/api/bots").json()["bots"]) == len(BOTS)
            results["api_bots"] = percentiles(_times(lambda: client.get("/api/bots").raise_for_status(), N))
            results["api_profit"] = percentiles(  # the profit page: per bot, and the last 7 days
                _times(lambda: client.get("/api/profit?period=daily").raise_for_status(), max(10, N // 10))
            )
            page = client.get("/")
            if page.status_code == 200:
                results["overview_html"] = percentiles(_times(lambda: client.get("/").raise_for_status(), N))

            def overview() -> None:  # the HTML and the API calls its script makes, one after another
                for path in OVERVIEW:
                    client.get(path).raise_for_status()

            results["overview_requests"] = percentiles(_times(overview, max(10, N // 4)))
        browser = overview_in_browser(base, TOKEN)
        if isinstance(browser, dict):
            results["overview_browser"] = browser
        # the baseline: what GET /api/bots does, in this process, without HTTP nor the framework
        from services.web.api_bots import list_bots

        ctx = WebContext(WebSettings(redis_url=s.url, ledger_url=ledger, token=TOKEN))
        results["in_process"] = percentiles(_times(lambda: list_bots(ctx, None), N))  # type: ignore[arg-type]
        ctx.redis.close()
        where = machine(s.url)
    live = web_live.measure()
    live.pop("machine")
    ratio = round(results["api_bots"]["p50_ms"] / results["in_process"]["p50_ms"], 2)
    print(f"100,000 fills, {len(BOTS)} bots; {N} requests each, one at a time")
    for name, figures in results.items():
        print(
            f"  {name:<16} p50 {figures['p50_ms']:8.3f} ms  p99 {figures['p99_ms']:8.3f} ms  max {figures['max_ms']:8.3f} ms"
        )
    if not isinstance(browser, dict):
        print(f"  overview_browser (not run: {browser})")
    print(f"  ratio /api/bots over in-process p50: {ratio}x   (target p99 < 300 ms)")
    print(
        f"  live feed p50 {live['web']['p50_ms']} ms p99 {live['web']['p99_ms']} ms (bare XREAD p99 {live['baseline']['p99_ms']} ms)"
    )
    # the targets: the overview page (in the browser when it ran) and /api/bots, the live feed
    page = results.get("overview_browser", results["overview_requests"])
    met = page["p99_ms"] < 300 and results["api_bots"]["p99_ms"] < 300 and live["web"]["p99_ms"] < 100
    print(json.dumps({"bench": "web", "fills": 100_000, "n": N, **results, "ratio_p50": ratio, "live": live,
                      "target_p99_ms": {"http": 300, "live": 100}, "met": met, **where}))  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
