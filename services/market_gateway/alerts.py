"""Stall events -> Notifications on `notify` (pure; the feed publishes them).

The id is stable for one stall episode (venue, what, when the silence began), so a notifier that
sees it twice delivers it once.
"""

from __future__ import annotations

from services.market_gateway.stall import StallEvent
from shared.messages import Level, Notification


def stall_notification(venue: str, event: StallEvent, now_ms: int) -> Notification:
    since_ms = now_ms - int(event.silent_s * 1000)
    if event.key is None:
        what = "socket"
        if event.kind == "socket_down":
            text = f"{venue}: market websocket down for {event.silent_s:.0f}s; polling REST klines meanwhile"
        else:
            text = f"{venue}: market websocket back up"
        data: dict[str, object] = {"silent_s": round(event.silent_s, 3)}
    else:
        key = event.key
        what = f"{key.symbol}:{key.interval}"
        if event.kind == "stalled":
            text = (
                f"{venue} {key.symbol} {key.interval}: no market data for {event.silent_s:.0f}s; "
                "polling REST klines meanwhile"
            )
        else:
            text = f"{venue} {key.symbol} {key.interval}: market data flowing again"
        data = {"stream": key.stream, "silent_s": round(event.silent_s, 3)}
    stalled = event.kind in ("stalled", "socket_down")
    return Notification(
        id=f"{'feed_stalled' if stalled else 'feed_recovered'}:{venue}:{what}:{since_ms // 1000}",
        kind="feed_stalled" if stalled else "feed_recovered",
        text=text,
        level=Level.WARNING if stalled else Level.INFO,
        title="Market data stalled" if stalled else "Market data recovered",
        venue=venue,
        data=data,
        ts=now_ms,
    )
