"""HTTP answers shared by the protocol faces: JSON bodies, injected 5xx pages, dropped replies."""

from __future__ import annotations

import asyncio
from typing import Any

import orjson
from aiohttp import web

from services.exchange_sim.faults import Fault

_HTML = "<html><head><title>{s} {r}</title></head><body><center><h1>{s} {r}</h1></center><hr><center>nginx</center></body></html>"
_REASONS = {
    500: "Internal Server Error",
    502: "Bad Gateway",
    503: "Service Unavailable",
    504: "Gateway Time-out",
}


def json_reply(data: Any, status: int = 200, headers: dict[str, str] | None = None) -> web.Response:
    return web.Response(
        body=orjson.dumps(data), status=status, headers=headers, content_type="application/json"
    )


def fault_reply(fault: Fault, json_body: Any, headers: dict[str, str] | None = None) -> web.Response:
    """The injected error page: the protocol's JSON error, or a gateway's HTML page."""
    status = fault.http_status
    if fault.body == "html":
        page = _HTML.format(s=status, r=_REASONS.get(status, "Error"))
        return web.Response(text=page, status=status, headers=headers, content_type="text/html")
    return json_reply(json_body, status, headers)


async def hold_and_drop(request: web.Request, seconds: float) -> web.Response:
    """Keep the client waiting until it gives up (or `seconds` pass), then cut the connection.

    The request was processed; the client never learns the outcome, which is what a lost
    reply or a load balancer timing out looks like from its side.
    """
    loop = asyncio.get_running_loop()
    deadline = loop.time() + seconds
    transport = request.transport
    # aiohttp offers no event for "the client went away": poll the transport
    while transport is not None and not transport.is_closing() and loop.time() < deadline:  # noqa: ASYNC110
        await asyncio.sleep(0.05)
    if transport is not None and not transport.is_closing():
        transport.abort()
    return web.Response(status=504)  # never written: the connection is gone
