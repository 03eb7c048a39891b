"""Tell the user when Redis itself is in trouble: the one notification `notify` cannot carry.

Every other notice is published to the `notify` stream and delivered from there. When Redis
refuses writes (its disk is full: MISCONF) or cannot be reached, nothing can be published, and
the bots stop trading while the user hears nothing. The notifier's heartbeat learns of it
(shared/service.py, RedisHealth); this component then sends one notice straight to the routed
channels (Telegram, webhook, console): `redis_refusing_writes` at once, `redis_unreachable`
once Redis has been away `redis_alert_after_s` (a restart of Redis takes a second or two and is
not worth a message), and `redis_recovered` when it is back. A channel that is down is tried
again at the next look; nothing here is deduplicated across a restart of the notifier (its
state is in memory: Redis is the trouble).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Sequence

from services.notifier.channels import Channel, ChannelDown, Rejected, Router
from shared.messages import Level, Notification
from shared.service import RedisHealth, every

log = logging.getLogger("automata.notifier.redis_watch")

REFUSING, UNREACHABLE, FINE = "redis_refusing_writes", "redis_unreachable", ""
SEND_TIMEOUT_S = 10.0


class RedisWatch:
    def __init__(
        self,
        health: RedisHealth,
        channels: Sequence[Channel],
        router: Router,
        *,
        alert_after_s: float,
        every_s: float = 1.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.health, self.channels, self.router = health, channels, router
        self.alert_after_s, self.every_s, self.clock = alert_after_s, every_s, clock
        self.told = FINE  # the state the channels were last told of
        self._since = 0.0  # clock() when the told trouble began
        self._note: Notification | None = None
        self._pending: list[tuple[Channel, str]] = []  # (channel, target) still to get _note
        self._stop = asyncio.Event()

    async def run(self) -> None:
        await every(self.every_s, self._stop, self.look)

    def stop(self) -> None:
        self._stop.set()

    def state(self) -> str:
        """Which trouble (if any) the user should know of now."""
        h = self.health
        if h.refused_since is not None:
            return REFUSING
        if h.down_since is not None and self.clock() - h.down_since >= self.alert_after_s:
            return UNREACHABLE
        if h.down_since is not None and self.told != FINE:
            return self.told  # still away: no "recovered" before it is back
        return FINE

    async def look(self) -> None:
        """Compare with what was told; start telling a change; send what is still pending."""
        now = self.state()
        if now != self.told:
            self._note = self._notice(now)
            self._since = self.clock() if now != FINE else self._since
            self.told = now
            kinds = self.router.channels_for(self._note.kind)
            self._pending = [(c, t) for c in self.channels if c.name in kinds for t in c.targets()]
        if self._note is not None and self._pending:
            self._pending = [p for p in self._pending if not await self._send(*p)]

    def _notice(self, state: str) -> Notification:
        reason = self.health.reason
        if state == REFUSING:
            text = (f"{reason}. Nothing can be recorded, so no order is placed and the bots wait; "
                    "trading goes on by itself once Redis has room (see `automata doctor`).")  # fmt: skip
        elif state == UNREACHABLE:
            text = (f"Redis cannot be reached ({reason}) for {self.alert_after_s:.0f}s: no bot can trade "
                    "until it is back (is redis-server running? see `automata doctor`).")  # fmt: skip
        else:
            text = f"Redis is back after {self.clock() - self._since:.0f}s; trading goes on."
        level = Level.INFO if state == FINE else Level.ERROR
        kind = state or "redis_recovered"
        ts = int(time.time() * 1000)
        return Notification(id=f"notifier:{kind}:{ts}", kind=kind, text=text, level=level, ts=ts)

    async def _send(self, channel: Channel, target: str) -> bool:
        """One try; False leaves it for the next look."""
        assert self._note is not None
        try:
            await asyncio.wait_for(channel.send(target, self._note), timeout=SEND_TIMEOUT_S)
            return True
        except (ChannelDown, Rejected, TimeoutError, OSError) as exc:
            log.warning("%s: %s not sent to %s yet (%s)", self._note.kind, channel.name, target, exc)
            return False
