"""Small helpers tests use to write and read stream entries."""

from __future__ import annotations

from shared.codec import encode
from shared.messages import Notification


def note(text: str) -> dict[bytes, bytes]:
    """Envelope fields of a Notification whose text (and id) is `text`."""
    return encode(Notification(id=text, kind="info", text=text))


def log_lines(sync_redis, key: str = "t:log") -> list[str]:
    return [x.decode() for x in sync_redis.lrange(key, 0, -1)]
