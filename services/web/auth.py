"""Who may do what: the token, the page session, CSRF, read-only.

- Credentials: `Authorization: Bearer TOKEN` (scripts, curl) or the session cookie a page gets
  from POST /api/login with the token. The cookie holds an HMAC of its issue time keyed by the
  token (nothing to store server-side; changing the token ends every session); it is HttpOnly
  and SameSite=Strict.
- With a token configured, everything under /api but health, the OpenAPI document and login
  needs credentials. Without one (possible only on loopback, settings.check) reads are open and
  every control action is refused: control always needs the token.
- CSRF, for the cookie only (a browser never adds a Bearer header on its own): the request's
  Origin, when sent, must be the page's own or one of `[web] origins`, and the double-submit
  header X-CSRF-Token must equal the `automata_csrf` cookie.
- Read-only (`--read-only`, `[web] read_only`): every control action is refused (403).
- Logins: 5 wrong tokens a minute per client address, then 429 with Retry-After (LoginLimit).
"""

from __future__ import annotations

import hashlib
import hmac
import math
import secrets
import threading
import time

from starlette.requests import Request
from starlette.responses import Response

from services.web.openapi import ApiError, Operation
from services.web.settings import WebSettings

SESSION_COOKIE = "automata_session"
CSRF_COOKIE = "automata_csrf"
CSRF_HEADER = "x-csrf-token"
SESSION_TTL_S = 7 * 24 * 3600
OPEN_PATHS = frozenset({"/api/health", "/api/openapi.json", "/api/login", "/api/logout"})


def _sign(token: str, issued: int) -> str:
    return hmac.new(token.encode(), f"session:{issued}".encode(), hashlib.sha256).hexdigest()


def session_value(token: str, now: float | None = None) -> str:
    issued = int(time.time() if now is None else now)
    return f"{issued}.{_sign(token, issued)}"


def _valid_session(token: str, value: str) -> bool:
    issued_text, _, mac = value.partition(".")
    if not issued_text.isdigit() or len(issued_text) > 12:
        return False
    issued = int(issued_text)
    if not 0 <= time.time() - issued <= SESSION_TTL_S:
        return False
    return hmac.compare_digest(mac, _sign(token, issued))


def _bearer(request: Request) -> str | None:
    scheme, _, value = request.headers.get("authorization", "").partition(" ")
    return value.strip() if scheme.lower() == "bearer" else None


def token_matches(settings: WebSettings, given: str) -> bool:
    return bool(settings.token) and hmac.compare_digest(given.encode(), settings.token.encode())


def credentials(request: Request) -> str | None:
    """ "bearer" or "session" when the request proves it knows the token, else None."""
    settings: WebSettings = request.app.state.ctx.settings
    if not settings.token:
        return None
    bearer = _bearer(request)
    if bearer is not None:
        return "bearer" if token_matches(settings, bearer) else None
    cookie = request.cookies.get(SESSION_COOKIE)
    return "session" if cookie and _valid_session(settings.token, cookie) else None


def authenticated(request: Request) -> bool:
    """May this request read (the pages ask it too): no token configured, or credentials."""
    return not request.app.state.ctx.settings.token or credentials(request) is not None


def _own_origin(request: Request) -> str:
    return f"{request.url.scheme}://{request.headers.get('host', '')}"


def check_csrf(request: Request, settings: WebSettings) -> None:
    origin = request.headers.get("origin")
    if origin is not None and origin not in (_own_origin(request), *settings.origins):
        raise ApiError(403, "cross-site request refused (Origin)")
    cookie, header = request.cookies.get(CSRF_COOKIE, ""), request.headers.get(CSRF_HEADER, "")
    if not cookie or not hmac.compare_digest(cookie.encode(), header.encode()):
        raise ApiError(403, f"cross-site request refused (the {CSRF_HEADER} header must equal the {CSRF_COOKIE} cookie)")  # fmt: skip


async def guard(request: Request, op: Operation) -> None:
    """Raise ApiError unless `request` may call `op`."""
    settings: WebSettings = request.app.state.ctx.settings
    if op.path in OPEN_PATHS:
        return
    if not op.control:
        if not authenticated(request):
            raise ApiError(401, "authentication required: a Bearer token or a session (POST /api/login)")
        return
    if settings.read_only:
        raise ApiError(403, "read-only: control actions are disabled")
    if not settings.token:
        raise ApiError(403, "control actions need a token: set AUTOMATA_WEB_TOKEN (or [web] token)")
    how = credentials(request)
    if how is None:
        raise ApiError(401, "authentication required: a Bearer token or a session (POST /api/login)")
    if how == "session":
        check_csrf(request, settings)


def start_session(response: Response, settings: WebSettings, secure: bool) -> None:
    """Set the session and CSRF cookies on a successful login."""
    response.set_cookie(SESSION_COOKIE, session_value(settings.token), max_age=SESSION_TTL_S, httponly=True,
                        samesite="strict", secure=secure, path="/")  # fmt: skip
    response.set_cookie(CSRF_COOKIE, secrets.token_urlsafe(24), max_age=SESSION_TTL_S, httponly=False,
                        samesite="strict", secure=secure, path="/")  # fmt: skip


def end_session(response: Response) -> None:
    response.delete_cookie(SESSION_COOKIE, path="/")
    response.delete_cookie(CSRF_COOKIE, path="/")


class LoginLimit:
    """At most FAILS wrong tokens a minute per client address: the token cannot be guessed by
    trying many. A refused login is a 429 with Retry-After, the token not even compared. The
    addresses are held in memory (a restart forgets them) and forgotten a minute after their
    last failure."""

    FAILS = 5
    WINDOW_S = 60.0

    def __init__(self) -> None:
        self._fails: dict[str, list[float]] = {}
        self._lock = threading.Lock()

    def _recent(self, client: str, now: float) -> list[float]:
        kept = [t for t in self._fails.get(client, ()) if now - t < self.WINDOW_S]
        if kept:
            self._fails[client] = kept
        else:
            self._fails.pop(client, None)
        return kept

    def retry_after(self, client: str) -> int:
        """Seconds until `client` may try again (0: now)."""
        now = time.monotonic()
        with self._lock:
            kept = self._recent(client, now)
        return 0 if len(kept) < self.FAILS else max(1, math.ceil(self.WINDOW_S - (now - kept[0])))

    def failed(self, client: str) -> None:
        now = time.monotonic()
        with self._lock:
            if len(self._fails) > 10_000:  # many addresses: keep only those still counting
                for known in list(self._fails):
                    self._recent(known, now)
            self._fails.setdefault(client, []).append(now)
