"""Is a bot getting its candles? Stalled after `stall_after_s` without one (pure, testable).

A bot whose market data stopped (a market gateway down, a venue whose clock stopped or went
back) looks healthy everywhere else: its process beats, its streams have no lag. The runner
knows when its last candle came, so it says so: in its heartbeat (`inputs`, read by `automata
status` and `automata health`) and on `notify`, once when the silence starts and once when
candles flow again.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from shared.candle_files import interval_ms
from shared.messages import Level, Notification

STALL_INTERVALS = 3  # candle intervals without a candle before a bot counts as stalled
STALL_FLOOR_S = 30.0  # never sooner than this by default (a 1-second interval would flap)
MIN_STALL_S = 10.0  # nor below two heartbeats (status reads the last input time from them)


def stall_after_s(interval: str, configured: float = 0.0) -> float:
    """The bot's `stall_after_s` (at least 10 s), else 3 candle intervals, at least 30 s."""
    if configured > 0:
        return max(MIN_STALL_S, configured)
    return max(STALL_FLOOR_S, STALL_INTERVALS * interval_ms(interval) / 1000)


@dataclass
class InputWatch:
    """When the last input came, and whether the silence since was already reported."""

    limit_s: float
    last_s: float  # monotonic time of the last candle (or of the start)
    last_ms: int  # the same, wall clock, for the heartbeat
    stalled: bool = False

    def seen(self, now_s: float, now_ms: int) -> None:
        self.last_s, self.last_ms = now_s, now_ms

    def check(self, now_s: float) -> str | None:
        """ "stalled" or "recovered" when that changed since the last check, else None."""
        silent = now_s - self.last_s
        if not self.stalled and silent >= self.limit_s:
            self.stalled = True
            return "stalled"
        if self.stalled and silent < self.limit_s:
            self.stalled = False
            return "recovered"
        return None

    def info(self) -> dict[str, object]:
        """What the heartbeat carries about this bot's input."""
        return {"last_input_ms": self.last_ms, "stall_after_s": self.limit_s, "stalled": self.stalled}


def input_notification(bot: str, stream: str, kind: str, since_ms: int, now_ms: int) -> Notification:
    """One per stall episode each way; the id (bot, start of the silence) lets channels drop repeats."""
    silent_s = (now_ms - since_ms) / 1000
    stalled = kind == "stalled"
    text = (
        f"{bot}: no candle on {stream} for {silent_s:.0f}s; the bot is waiting (is the market gateway "
        "running? is the venue's market moving?)"
        if stalled
        else f"{bot}: candles on {stream} again; the bot carries on"
    )
    return Notification(
        id=f"bot_{kind}:{bot}:{since_ms // 1000}",
        kind="bot_stalled" if stalled else "bot_recovered",
        text=text,
        level=Level.WARNING if stalled else Level.INFO,
        title="Bot stalled" if stalled else "Bot receiving input again",
        bot=bot,
        data={"stream": stream, "silent_s": round(silent_s, 3)},
        ts=now_ms,
    )


def is_stalled(info: dict[str, Any], now_ms: int) -> bool:
    """From a heartbeat's `inputs` entry, as of now: its last input is older than its limit.

    (Not the runner's own `stalled` flag: that is as old as the heartbeat, a few seconds.)"""
    try:
        last, limit = int(info.get("last_input_ms") or 0), float(info.get("stall_after_s") or 0)
    except (TypeError, ValueError):
        return False
    return limit > 0 and now_ms - last >= limit * 1000
