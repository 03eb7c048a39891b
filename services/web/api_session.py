"""/api/health, /api/login and /api/logout."""

from __future__ import annotations

import time

import msgspec
import redis
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from services.web.auth import end_session, start_session, token_matches
from services.web.context import WebContext
from services.web.openapi import FORMS, ApiError, Operation, json_response


class Health(msgspec.Struct):
    ok: bool
    redis: bool
    read_only: bool
    auth: bool  # a token is configured: reads need credentials, control is possible
    ts: int


class Login(msgspec.Struct):
    token: str
    next: str = ""  # a login form's page to go to afterwards (a path on this site)


class LoggedIn(msgspec.Struct):
    ok: bool


def health(ctx: WebContext, request: Request) -> Health:
    """Whether the service answers and reaches Redis (the ledger is read only when asked)."""
    try:
        reachable = bool(ctx.redis.ping())
    except redis.RedisError:
        reachable = False
    settings = ctx.settings
    return Health(ok=reachable, redis=reachable, read_only=settings.read_only, auth=bool(settings.token),
                  ts=int(time.time() * 1000))  # fmt: skip


def login(ctx: WebContext, request: Request, body: Login) -> Response:
    """Trade the token for a session cookie (and the CSRF cookie a page sends back as a header).
    JSON answers JSON; a form (a page without JavaScript) is sent on to its `next` page."""
    client = request.client.host if request.client else ""
    wait = ctx.login_limit.retry_after(client)
    if wait:
        raise ApiError(429, f"too many wrong tokens: try again in {wait} s", {"Retry-After": str(wait)})
    if not token_matches(ctx.settings, body.token):
        ctx.login_limit.failed(client)
        raise ApiError(401, "wrong token")
    form = request.headers.get("content-type", "").startswith(FORMS)
    local = body.next.startswith("/") and not body.next.startswith("//") and "\\" not in body.next
    response = (
        RedirectResponse(body.next if local else "/", 303) if form else json_response(LoggedIn(ok=True))
    )
    start_session(response, ctx.settings, secure=request.url.scheme == "https")
    return response


def logout(ctx: WebContext, request: Request) -> Response:
    response = json_response(LoggedIn(ok=False))
    end_session(response)
    return response


OPERATIONS = [
    Operation("GET", "/api/health", "Service health", health, Health, tags=("system",)),
    Operation("POST", "/api/login", "Log in with the token (sets the session cookie)", login, LoggedIn,
              body=Login, tags=("session",), errors={401: "wrong token", 429: "too many wrong tokens"}),
    Operation("POST", "/api/logout", "End the session", logout, LoggedIn, tags=("session",)),
]  # fmt: skip
