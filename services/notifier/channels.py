"""What every channel shares: the two ways a send can fail, routing, and the console channel.

A send either works, or fails one of two ways, and they are handled very differently:
- ChannelDown: the channel itself is unreachable or busy (connection refused, timeout, HTTP 5xx,
  Telegram 429 with retry_after, a bad token). Nothing is wrong with the message, so it is
  retried in place with backoff for as long as it takes; it is not counted as a failed delivery
  (a long outage must not dead-letter everything that waited for it).
- Rejected: the channel answered and refuses this message (HTTP 400, chat not found). Retrying
  the same bytes will not help much, so the bus counts it and dead-letters it after N deliveries.
"""

from __future__ import annotations

import asyncio
import fnmatch
import logging
from collections.abc import Iterable, Mapping, Sequence
from typing import Protocol

from shared.messages import Level, Notification

log = logging.getLogger("automata.notifier.console")


class ChannelDown(Exception):
    """The channel cannot take anything now; retry later (after retry_after seconds if known)."""

    def __init__(self, reason: str, retry_after: float | None = None) -> None:
        super().__init__(reason)
        self.retry_after = retry_after


class Rejected(Exception):
    """The channel refused this message; the bus counts it and dead-letters it after N tries."""


class Stopping(BaseException):
    """The service is stopping while a delivery waits: leave the entry pending and unwind.

    A BaseException so the bus's `except Exception` does not count it as a handler failure."""


async def sleep_or_stop(seconds: float, stopping: asyncio.Event) -> None:
    """Sleep, but raise Stopping as soon as the service is asked to stop."""
    if stopping.is_set():
        raise Stopping
    if seconds <= 0:
        return
    try:
        await asyncio.wait_for(stopping.wait(), timeout=seconds)
    except TimeoutError:
        return
    raise Stopping


class Channel(Protocol):
    name: str

    def targets(self) -> Sequence[str]:
        """Where each notification goes (chat ids for Telegram); dedupe is per target."""
        ...

    async def send(self, target: str, note: Notification) -> None:
        """Deliver, or raise ChannelDown / Rejected."""
        ...

    async def close(self) -> None: ...


class ConsoleChannel:
    """One log line a notification (the service's stderr: journald, docker logs, supervisord)."""

    name = "console"

    def targets(self) -> Sequence[str]:
        return ("log",)

    async def send(self, target: str, note: Notification) -> None:
        level = {Level.WARNING: logging.WARNING, Level.ERROR: logging.ERROR}.get(note.level, logging.INFO)
        who = f"{note.bot}: " if note.bot else ""
        title = f"{note.title}: " if note.title else ""
        log.log(
            level,
            "[%s] %s%s%s",
            note.kind,
            who,
            title,
            note.text,
            extra={"fields": {"notification": note.id, "kind": note.kind}},
        )

    async def close(self) -> None:
        return None


def format_text(note: Notification, limit: int = 4096) -> str:
    """Plain text for a chat: a headline (level mark, title or kind, bot) then the text."""
    mark = {Level.WARNING: "⚠️ ", Level.ERROR: "🛑 "}.get(note.level, "")
    head = note.title or note.kind.replace("_", " ")
    if note.bot:
        head = f"{head} · {note.bot}"
    text = f"{mark}{head}\n{note.text}" if note.text else f"{mark}{head}"
    return text if len(text) <= limit else text[: limit - 1] + "…"


class Router:
    """Which channels a kind goes to: `routes` maps a kind, a glob ("bot_*") or "*" to channels.

    Exact kinds win over globs, globs are tried in file order, "*" catches the rest; no routes
    at all sends every kind to every enabled channel."""

    def __init__(self, routes: Mapping[str, Sequence[str]], enabled: Iterable[str]) -> None:
        self.enabled = frozenset(enabled)
        self.routes = {k: frozenset(v) & self.enabled for k, v in routes.items()}
        self._globs = [(k, v) for k, v in self.routes.items() if k != "*" and any(c in k for c in "*?[")]

    def channels_for(self, kind: str) -> frozenset[str]:
        if not self.routes:
            return self.enabled
        if kind in self.routes:
            return self.routes[kind]
        for pattern, channels in self._globs:
            if fnmatch.fnmatchcase(kind, pattern):
                return channels
        return self.routes.get("*", frozenset())
