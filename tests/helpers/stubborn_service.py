"""A service whose library-like background task swallows its cancellation (as python-binance's
websocket read loop was seen doing while it closed): the stop must still end the process."""

from __future__ import annotations

import asyncio

from shared.service import ServiceContext, run_service


async def stubborn() -> None:
    """Never ends: each cancellation is caught and the loop goes on."""
    while True:
        try:
            await asyncio.sleep(0.05)
        except asyncio.CancelledError:
            continue


class Holder:
    """A well-behaved component that started the stubborn task and forgot it."""

    def __init__(self) -> None:
        self._stop = asyncio.Event()

    def stop(self) -> None:
        self._stop.set()

    async def run(self) -> None:
        self._task = asyncio.create_task(stubborn())
        await self._stop.wait()


async def start(ctx: ServiceContext) -> None:
    ctx.add(Holder())


if __name__ == "__main__":
    run_service("stubborn", start)
