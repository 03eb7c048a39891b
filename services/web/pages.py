"""The dashboard's pages: server-rendered HTML shells that the page scripts fill from /api.

Each page is a Jinja2 template (services/web/templates) holding the layout, and a small vanilla
script (services/web/static) that reads the REST API's JSON and the live feed (/api/live). The
pages hold no data of their own: what a page shows is what the API answers, so a script, a test
or another front end sees the same thing. A page needs what a read needs (services/web/auth.py):
with a token configured and no session, it sends the browser to /login.

Static files are linked with a hash of their content (`/static/app.js?v=…`), so a browser may
keep them as long as it likes and still gets a new one the moment it changes.
"""

from __future__ import annotations

import hashlib
import re
from functools import cache
from pathlib import Path
from urllib.parse import quote, urlsplit

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.templating import Jinja2Templates

from services.web.auth import authenticated
from shared.ids import BOT_ID_RE
from shared.order_lifecycle import OPEN_STATUSES

HERE = Path(__file__).parent
STATIC = HERE / "static"
SAFE_PATH = re.compile(r"/(?![/\\])[^\\\x00-\x20\x7f]*")  # "/x?y", never "//x", "/\\x" or blanks
NAV = (
    ("/", "overview", "Overview"),
    ("/trade", "trade", "Trade"),
    ("/trades", "trades", "Trades"),
    ("/profit", "profit", "Profit"),
    ("/notifications", "notifications", "Notifications"),
)
TITLES = {name: label for _, name, label in NAV}
# Every page: its own scripts only (none inline, none from elsewhere), never in a frame (no
# clickjacking of the controls), no address leaked to other sites.
HEADERS = {
    "Cache-Control": "no-store",  # the shell is tiny; the data comes from /api
    "Content-Security-Policy": "default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; "
    "object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
}


@cache
def _version(name: str) -> str:
    """A short hash of a static file's content: its URL changes exactly when it does."""
    return hashlib.sha256((STATIC / name).read_bytes()).hexdigest()[:10]


def static_url(name: str) -> str:
    return f"/static/{name}?v={_version(name)}"


def _templates() -> Jinja2Templates:
    templates = Jinja2Templates(directory=HERE / "templates")
    templates.env.globals["static"] = static_url
    templates.env.globals["nav"] = NAV
    return templates


def _safe_next(target: str) -> str:
    """Where to go after logging in: a path of this site only (never an open redirect). A
    backslash or a control character is refused too: browsers read `/\\host` as `//host`."""
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or not SAFE_PATH.fullmatch(target):
        return "/"
    return target


def mount(app: Starlette) -> None:
    """Add the page routes to the app (services/web/app.py calls this when the module exists)."""
    templates = _templates()

    def render(request: Request, template: str, page: str, **extra: object) -> Response:
        if not authenticated(request):
            back = request.url.path + (f"?{request.url.query}" if request.url.query else "")
            return RedirectResponse(f"/login?next={quote(back)}", status_code=303)
        settings = request.app.state.ctx.settings
        context = {"page": page, "title": TITLES.get(page, page), "read_only": settings.read_only,
                   "auth": bool(settings.token), **extra}  # fmt: skip
        return templates.TemplateResponse(request, template, context, headers=HEADERS)

    async def overview(request: Request) -> Response:
        return render(request, "overview.html", "overview")

    async def bot(request: Request) -> Response:
        name = request.path_params["bot"]
        if not BOT_ID_RE.fullmatch(name):
            return Response(f"not a bot id: {name[:40]!r}", status_code=404, media_type="text/plain")
        return render(request, "bot.html", "bot", bot=name, title=name)

    async def trade(request: Request) -> Response:
        # which statuses are open is the order lifecycle's word, not the page's
        return render(request, "trade.html", "trade", open_statuses=" ".join(sorted(OPEN_STATUSES)))

    async def trades(request: Request) -> Response:
        return render(request, "trades.html", "trades")

    async def profit(request: Request) -> Response:
        return render(request, "profit.html", "profit")

    async def notifications(request: Request) -> Response:
        return render(request, "notifications.html", "notifications")

    async def login(request: Request) -> Response:
        context = {
            "page": "login",
            "title": "Log in",
            "next": _safe_next(request.query_params.get("next", "/")),
        }
        return templates.TemplateResponse(request, "login.html", context, headers=HEADERS)

    for path, endpoint in (
        ("/", overview),
        ("/bots/{bot}", bot),
        ("/trade", trade),
        ("/trades", trades),
        ("/profit", profit),
        ("/notifications", notifications),
        ("/login", login),
    ):
        app.add_route(path, endpoint, methods=["GET"])
