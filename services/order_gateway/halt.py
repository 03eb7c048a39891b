"""A venue's ban (Binance HTTP 418, Bybit 403): the order gateway stops sending until it ends.

Whichever request meets the ban (a place, a cancel, a query, the poller's listing), the adapter
calls `banned` at once (VenueAdapter.on_banned), so the next order is refused with the ban's
reason rather than left waiting behind the limiter's pause and sent minutes late. Cancels wait
the ban out in their lane (router.py, `unbanned`). The user is told once per ban, in the venue's
own words, and told again when it is over ("trading stopped" was the last word they had).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable

from services.order_gateway.venues.base import Banned
from shared.messages import Level, Notification

log = logging.getLogger("automata.order_gateway")

Note = Callable[[str, str, Level], Notification]


def _log_failure(task: asyncio.Task[None]) -> None:
    """A background notice that failed is logged (nobody else may await it)."""
    if not task.cancelled() and (exc := task.exception()) is not None:
        log.error("%s failed: %s: %s", task.get_name(), type(exc).__name__, exc)


class VenueHalt:
    """Set while the venue bans us: no order is sent until `until`. `changed(until)` hears each
    new end of the halt, and 0 once it is over (the heartbeat shows it)."""

    def __init__(
        self,
        venue: str,
        notify: Callable[[Notification], Awaitable[object]],
        note: Note,
        stopped: Callable[[], bool],
        sleep: Callable[[float], Awaitable[None]],
    ) -> None:
        self.venue, self._notify, self._note, self._stopped, self._sleep = venue, notify, note, stopped, sleep
        self.until = 0.0
        self.reason = ""
        self.changed: Callable[[float], None] = lambda _until: None
        self._announcer: asyncio.Task[None] | None = None  # tells the user of the ban
        self._resumer: asyncio.Task[None] | None = None  # tells the user it is over

    @property
    def active(self) -> bool:
        return time.time() < self.until

    def banned(self, exc: Banned) -> None:
        """Halt now (or push the end further); the first ban of a halt is announced."""
        first = not self.active
        self.until = max(self.until, time.time() + exc.retry_after)
        self.reason = f"IP banned by the venue ({exc.message}) for {exc.retry_after:.0f}s"
        self.changed(self.until)
        log.error("%s: %s: trading stopped", self.venue, self.reason)
        if first:
            self._announcer = asyncio.get_running_loop().create_task(
                self._announce(), name=f"halted:{self.venue}"
            )
            self._announcer.add_done_callback(_log_failure)

    async def halted(self, exc: Banned) -> None:
        """`banned` (for an adapter that did not call it), then wait until the user has been
        told: the notice of the halt goes before the refusal it causes."""
        if not self.active:
            self.banned(exc)
        if self._announcer is not None:
            await asyncio.shield(self._announcer)

    async def _announce(self) -> None:
        text = (f"{self.venue}: {self.reason}; trading stopped: new orders are refused, "
                "cancels wait until the ban ends")  # fmt: skip
        await self._notify(self._note("venue_halted", text, Level.ERROR))
        self._resumer = asyncio.create_task(self._tell_resumed(), name=f"halt:{self.venue}")

    async def _tell_resumed(self) -> None:
        while self.active and not self._stopped():
            await self._sleep(self.until - time.time())
        self.changed(0.0)
        if not self._stopped():
            await self._notify(
                self._note("venue_resumed", f"{self.venue}: the ban is over; trading goes on", Level.INFO)
            )
