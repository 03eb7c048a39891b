"""python -m services.exchange_sim: the paper venue on SIM_HOST:SIM_PORT (see config.py, docs/PAPER_VENUE.md).

It needs no Redis: it is the exchange. SIGTERM or SIGINT closes the websockets, stops the
market and exits 0. With SIM_PORT=0 it binds a free port and writes it to SIM_PORT_FILE.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import sys
from pathlib import Path

from aiohttp import web

from services.exchange_sim.app import build_app
from services.exchange_sim.config import SimConfig, load_sim_config
from services.exchange_sim.feeds import DataError
from services.exchange_sim.store import StoreError
from services.exchange_sim.venue import Venue
from shared.candle_files import CandleFileError
from shared.config import ConfigError
from shared.logs import register_secret, setup_logging
from shared.matching.symbols import UnknownSymbolError

log = logging.getLogger("exchange_sim")


def _write_port_file(path: str, port: int) -> None:
    """Atomically, so a reader never sees a half-written number."""
    tmp = Path(path + ".tmp")
    tmp.write_text(str(port))
    os.replace(tmp, path)


async def serve(config: SimConfig, stop: asyncio.Event) -> None:
    venue = Venue.build(config)
    app = build_app(venue)
    runner = web.AppRunner(app, access_log=None, handle_signals=False, shutdown_timeout=2.0)
    await runner.setup()
    site = web.TCPSite(runner, config.host, config.port, reuse_address=True)
    await site.start()
    server = site._server
    port = server.sockets[0].getsockname()[1] if server is not None and server.sockets else config.port
    if config.port_file:
        _write_port_file(config.port_file, port)
    log.info(
        "paper venue listening on http://%s:%d (speed %s, symbols %s)",
        config.host,
        port,
        "step mode" if config.speed == 0 else f"{config.speed:g}x",
        ",".join(config.symbols),
    )
    try:
        await stop.wait()
    finally:
        log.info("stopping")
        await runner.cleanup()


async def _main(config: SimConfig) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await serve(config, stop)


def main() -> int:
    setup_logging("exchange_sim")
    try:
        config = load_sim_config()
    except ConfigError as exc:
        log.error("%s", exc)
        return 2
    register_secret(config.api_key)
    register_secret(config.api_secret)
    register_secret(config.control_token)
    try:
        asyncio.run(_main(config))
    except (DataError, CandleFileError, UnknownSymbolError, StoreError, OSError) as exc:
        log.error("cannot start the paper venue: %s", exc)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
