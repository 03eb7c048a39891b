"""A websocket's outgoing queue and writer task: the venue never waits for a slow client.

Frames are written in the order they were queued; a client that falls MAX_QUEUED frames
behind is disconnected (as Binance drops slow consumers) instead of growing memory.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

import orjson
from aiohttp import web

log = logging.getLogger("exchange_sim.outbox")

MAX_QUEUED = 10_000


class Outbox:
    def __init__(self, ws: web.WebSocketResponse) -> None:
        self.ws = ws
        self._queue: asyncio.Queue[bytes | tuple[int, bytes]] = asyncio.Queue()
        self._task = asyncio.get_running_loop().create_task(self._write())

    @property
    def closed(self) -> bool:
        return self.ws.closed or self._task.done()

    def send(self, message: Any) -> None:
        """Queue a JSON message (dict/list) or pre-encoded bytes."""
        if self.closed:
            return
        if self._queue.qsize() >= MAX_QUEUED:
            log.warning("websocket client too slow: disconnecting it")
            self.finish(1008, b"too slow")
            return
        self._queue.put_nowait(message if isinstance(message, bytes) else orjson.dumps(message))

    def finish(self, code: int = 1000, message: bytes = b"") -> None:
        """Close the websocket once what is queued before this has been written."""
        self._queue.put_nowait((code, message))

    async def _write(self) -> None:
        while True:
            frame = await self._queue.get()
            if isinstance(frame, tuple):
                await self.ws.close(code=frame[0], message=frame[1])
                return
            try:
                await self.ws.send_str(frame.decode())
            except (ConnectionError, RuntimeError):
                return

    async def close(self) -> None:
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task
