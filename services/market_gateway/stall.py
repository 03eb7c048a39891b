"""Stall detection (pure): a candle stream silent for K x its interval, or a socket that stays down.

Times are monotonic seconds passed in by the caller, so the rules are tested without waiting.
Each stall is reported once, when it starts, and once more when it ends.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from services.market_gateway.plan import CandleKey


@dataclass(frozen=True, slots=True)
class StallEvent:
    kind: str  # "stalled" | "recovered" | "socket_down" | "socket_up"
    key: CandleKey | None  # None for socket events
    silent_s: float  # how long nothing came


class StallTracker:
    def __init__(self, keys: Iterable[CandleKey], *, factor: float, down_alert_s: float, now: float) -> None:
        self.limit_s = {k: factor * k.interval_ms / 1000 for k in keys}
        self.last_seen = dict.fromkeys(self.limit_s, now)  # the feed writes here on every message
        self.stalled: set[CandleKey] = set()
        self.down_alert_s = down_alert_s
        self.down_since: float | None = now  # not connected yet
        self.down_alerted = False

    def seen(self, key: CandleKey, now: float) -> None:
        self.last_seen[key] = now

    def socket_down(self, now: float) -> bool:
        """True when this starts a down period."""
        if self.down_since is None:
            self.down_since = now
            return True
        return False

    def socket_up(self) -> bool:
        """True when this ends a down period."""
        was_down = self.down_since is not None
        self.down_since = None
        return was_down

    def check(self, now: float) -> list[StallEvent]:
        events = []
        for key, limit in self.limit_s.items():
            silent = now - self.last_seen[key]
            if key in self.stalled:
                if silent < limit:
                    self.stalled.discard(key)
                    events.append(StallEvent("recovered", key, silent))
            elif silent >= limit:
                self.stalled.add(key)
                events.append(StallEvent("stalled", key, silent))
        if self.down_since is None:
            if self.down_alerted:
                self.down_alerted = False
                events.append(StallEvent("socket_up", None, 0.0))
        elif not self.down_alerted and now - self.down_since >= self.down_alert_s:
            self.down_alerted = True
            events.append(StallEvent("socket_down", None, now - self.down_since))
        return events

    def down_for(self, now: float) -> float:
        return 0.0 if self.down_since is None else now - self.down_since
