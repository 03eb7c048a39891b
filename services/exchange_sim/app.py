"""One aiohttp application for the whole venue: control API, /metrics, /health, and each protocol.

Protocol modules are plug-ins: every module named in PROTOCOLS that exists provides
`setup(app, venue)` and adds its own routes, so the Binance and Bybit faces are built (and
tested) separately on the same engine and market.
"""

from __future__ import annotations

import importlib
import importlib.util
import logging

import orjson
from aiohttp import web

from services.exchange_sim import control
from services.exchange_sim.telemetry import sim_metrics
from services.exchange_sim.venue import Venue, stop_on_corrupt_state
from shared.matching.engine import CorruptState, Event, OrderEvent
from shared.prom import CONTENT_TYPE_LATEST, REGISTRY, generate_latest

log = logging.getLogger("exchange_sim.app")

PROTOCOLS = ("binance_rest", "binance_ws", "bybit_rest", "bybit_ws")
VENUE_KEY = web.AppKey("venue", Venue)


@web.middleware
async def _stop_on_corrupt_state(request: web.Request, handler):  # type: ignore[no-untyped-def]
    try:
        return await handler(request)
    except CorruptState as exc:
        stop_on_corrupt_state(exc)
        raise


def build_app(venue: Venue) -> web.Application:
    app = web.Application(client_max_size=1024**2, middlewares=[_stop_on_corrupt_state])
    app[VENUE_KEY] = venue
    control.setup(app, venue)
    for name in PROTOCOLS:
        module_name = f"services.exchange_sim.{name}"
        if importlib.util.find_spec(module_name) is None:
            continue
        importlib.import_module(module_name).setup(app, venue)
    app.router.add_get("/metrics", _metrics)
    app.router.add_get("/health", _health)
    _instrument(venue)
    app.on_startup.append(_start)
    app.on_shutdown.append(_shutdown)
    return app


def _instrument(venue: Venue) -> None:
    m = sim_metrics()
    m.websockets.set_function(lambda: venue.sockets.count())

    def on_event(event: Event) -> None:
        if isinstance(event, OrderEvent) and event.trade is not None:
            m.fills.labels(event.account).inc()

    venue.engine.add_listener(on_event)
    venue.market.add_listener(lambda _ticks: m.steps.inc())


async def _start(app: web.Application) -> None:
    app[VENUE_KEY].start()


async def _shutdown(app: web.Application) -> None:
    venue = app[VENUE_KEY]
    await venue.close()
    await venue.sockets.close()


async def _metrics(_request: web.Request) -> web.Response:
    return web.Response(body=generate_latest(REGISTRY), headers={"Content-Type": CONTENT_TYPE_LATEST})


async def _health(request: web.Request) -> web.Response:
    venue = request.app[VENUE_KEY]
    report = {
        "ok": True,
        "market_time": venue.market.time,
        "steps": venue.market.steps,
        "speed": venue.speed,
        "symbols": venue.market.symbols,
        "websockets": venue.sockets.count(),
    }
    return web.Response(body=orjson.dumps(report), content_type="application/json")
