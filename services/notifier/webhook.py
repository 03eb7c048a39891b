"""The webhook channel: one JSON POST per notification, signed with a timestamp.

Body: the notification's fields as a JSON object (id, kind, level, title, text, bot, venue,
data, ts). Headers:
- `X-Automata-Id`: the notification id (also in the body). Delivery is at-least-once: a
  receiver drops repeats by it.
- `X-Automata-Timestamp`: when this request was signed, in whole seconds since the Unix epoch
  (a retry is signed again, with a new timestamp).
- `X-Automata-Signature: v1=<hex>`: HMAC-SHA256 under the secret of the bytes
  `<timestamp> "." <raw body>`. Sent only when a secret is configured; without one the notifier
  warns at start (and `automata doctor` says so): a receiver then cannot tell a notification
  from a forgery.

A receiver verifies before it parses the body (`verify_webhook` below does exactly this, and
can be copied: it needs only the standard library): read the two headers; refuse when either
is missing, when the timestamp is not an integer or is more than the replay window (5 minutes)
away from its own clock; recompute the HMAC over `timestamp + "." + body` and compare in
constant time. A request captured on the way can then be replayed for at most the window, and
the receiver drops that repeat by the id (keep the ids seen in the last window).
2xx is delivered; 408, 429 (Retry-After honoured), 5xx and network errors mean the receiver is
down (retried, not counted); any other status rejects the message (counted, then dead-lettered).
"""

from __future__ import annotations

import hashlib
import hmac
import time
from collections.abc import Mapping, Sequence

import aiohttp
import msgspec

from services.notifier.channels import ChannelDown, Rejected
from shared.messages import Notification

SIGNATURE_HEADER = "X-Automata-Signature"
TIMESTAMP_HEADER = "X-Automata-Timestamp"
ID_HEADER = "X-Automata-Id"
REPLAY_WINDOW_S = 300.0


def sign(secret: str, timestamp: int, body: bytes) -> str:
    """The signature header's value for this body sent at this time."""
    mac = hmac.new(secret.encode(), b"%d." % timestamp + body, hashlib.sha256)
    return "v1=" + mac.hexdigest()


def _header(headers: Mapping[str, str], name: str) -> str | None:
    """A header by name, whatever its case (a plain dict is not case-insensitive)."""
    wanted = name.lower()
    for key, value in headers.items():
        if isinstance(key, str) and key.lower() == wanted:
            return value if isinstance(value, str) else None
    return None


def verify_webhook(
    secret: str, headers: Mapping[str, str], body: bytes, now: float, window: float = REPLAY_WINDOW_S
) -> bool:
    """What a receiver does: True only for a request signed under `secret` over this body, with
    a timestamp within `window` seconds of `now` (either way: clocks differ)."""
    stamp, signature = _header(headers, TIMESTAMP_HEADER), _header(headers, SIGNATURE_HEADER)
    if not secret or stamp is None or signature is None:
        return False
    if not (stamp.isascii() and stamp.isdigit() and len(stamp) <= 12):
        return False
    if abs(now - int(stamp)) > window:
        return False
    expected = sign(secret, int(stamp), body).encode()
    return hmac.compare_digest(expected, signature.encode("utf-8", "replace"))


def body_of(note: Notification) -> bytes:
    """Every field, defaults included, so receivers see a stable shape."""
    doc = msgspec.structs.asdict(note)
    return msgspec.json.encode(doc)


class WebhookChannel:
    name = "webhook"

    def __init__(self, session: aiohttp.ClientSession, url: str, secret: str, timeout_s: float) -> None:
        self._session, self._url, self._secret = session, url, secret
        self._timeout = aiohttp.ClientTimeout(total=timeout_s)

    def targets(self) -> Sequence[str]:
        return ("url",)

    async def send(self, target: str, note: Notification) -> None:
        body = body_of(note)
        headers = {"Content-Type": "application/json", ID_HEADER: note.id}
        if self._secret:
            stamp = int(time.time())
            headers[TIMESTAMP_HEADER] = str(stamp)
            headers[SIGNATURE_HEADER] = sign(self._secret, stamp, body)
        try:
            async with self._session.post(
                self._url, data=body, headers=headers, timeout=self._timeout
            ) as resp:
                status = resp.status
                retry_after = resp.headers.get("Retry-After", "")
                await resp.read()
        except (aiohttp.ClientError, TimeoutError, OSError) as exc:
            raise ChannelDown(f"POST: {type(exc).__name__}") from None
        if 200 <= status < 300:
            return
        if status in (408, 429) or status >= 500:
            wait = float(retry_after) if retry_after.replace(".", "", 1).isdigit() else None
            raise ChannelDown(f"POST: HTTP {status}", retry_after=wait)
        raise Rejected(f"POST: HTTP {status}")

    async def close(self) -> None:
        return None
