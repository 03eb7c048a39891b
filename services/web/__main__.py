"""python -m services.web [--host H] [--port P] [--read-only]: the dashboard and its API.

Runs as every service does (shared/service.py: heartbeat, /metrics, clean stop on SIGTERM),
with uvicorn as its one component. A host beyond loopback without a token is refused before
anything starts, in one line (settings.check)."""

from __future__ import annotations

import argparse
import contextlib
import logging
import sys
from collections.abc import Iterator

from services.web.app import create_app
from services.web.settings import UnsafeBind, WebSettings
from shared.config import WEB, ConfigError, load_config
from shared.service import ServiceContext, run_service
from shared.uvicorn_lean import Config, Server

log = logging.getLogger("automata.web")
STOP_GRACE_S = 3  # open event streams are closed this long after SIGTERM


class _Server(Server):
    """uvicorn without its own signal handlers: the service's (shared/service.py) stop it."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


class WebServer:
    """The uvicorn server as a service component (run / stop)."""

    def __init__(self, settings: WebSettings) -> None:
        self.settings = settings
        app = create_app(settings)
        self.hub = app.state.ctx.hub
        # ws="none": the dashboard has no WebSocket (its live updates are server-sent events), so
        # uvicorn loads no WebSocket protocol (websockets and importlib.metadata: ~2 MB)
        config = Config(app, host=settings.host, port=settings.port, log_level="warning",
                                access_log=False, lifespan="on", timeout_graceful_shutdown=STOP_GRACE_S,
                                server_header=False, ws="none")  # fmt: skip
        self.server = _Server(config)

    async def run(self) -> None:
        await self.server.serve()
        if not self.server.started:
            raise RuntimeError(f"cannot listen on {self.settings.host}:{self.settings.port}")

    def stop(self) -> None:
        self.hub.close()  # open event streams end now, not after uvicorn's grace
        self.server.should_exit = True


def url(settings: WebSettings) -> str:
    host = f"[{settings.host}]" if ":" in settings.host else settings.host
    return f"http://{host}:{settings.port}/"


async def start(ctx: ServiceContext) -> None:
    settings: WebSettings = ctx.args
    ctx.add(WebServer(settings))
    ctx.info["url"] = url(settings)
    ctx.info["read_only"] = settings.read_only
    log.info("dashboard at %s%s", url(settings), " (read-only)" if settings.read_only else "")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m services.web", description="The dashboard and its API.")
    parser.add_argument("--host", help="address to listen on (default [web] host, 127.0.0.1)")
    parser.add_argument("--port", type=int, help="port (default [web] port, 8780)")
    parser.add_argument("--read-only", action="store_true", help="refuse every control action")
    args = parser.parse_args(argv)
    try:
        settings = WebSettings.from_config(load_config(service=WEB), host=args.host, port=args.port,
                                           read_only=args.read_only)  # fmt: skip
        settings.check()
    except (ConfigError, UnsafeBind) as exc:
        print(f"web: {exc}", file=sys.stderr)
        sys.exit(2)
    run_service(WEB, start, settings)


if __name__ == "__main__":
    main()
