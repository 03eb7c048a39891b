"""The REST API's operation table: every endpoint under /api, from the modules that serve them."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from services.web import api_account, api_bots, api_control, api_session, api_trade, live
from services.web.auth import guard
from services.web.openapi import Operation, json_response, route

TITLE = "Automata"
VERSION = "1"


def operations() -> list[Operation]:
    return [
        *api_session.OPERATIONS,
        *api_account.OPERATIONS,
        *api_bots.OPERATIONS,
        *api_control.OPERATIONS,
        *api_trade.OPERATIONS,
        *live.OPERATIONS,
    ]


def routes() -> list[Route]:
    ops = operations()
    doc = None

    async def openapi(request: Request) -> Response:
        nonlocal doc
        if doc is None:
            from services.web.openapi import document

            doc = document(ops, title=TITLE, version=VERSION)
        return json_response(doc)

    return [Route("/api/openapi.json", openapi, methods=["GET"]), *(route(op, guard) for op in ops)]
