"""The webhook channel: one JSON POST per notification, optionally signed.

Body: the notification's fields as a JSON object (id, kind, level, title, text, bot, venue,
data, ts). Headers: `X-Automata-Id` (the notification id: delivery is at-least-once, so a
receiver drops repeats by it) and, with a secret, `X-Automata-Signature: sha256=<hex>`, the
HMAC-SHA256 of the raw body bytes under the secret (verify it before parsing the body).
2xx is delivered; 408, 429 (Retry-After honoured), 5xx and network errors mean the receiver is
down (retried, not counted); any other status rejects the message (counted, then dead-lettered).
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Sequence

import aiohttp
import msgspec

from services.notifier.channels import ChannelDown, Rejected
from shared.messages import Notification

SIGNATURE_HEADER = "X-Automata-Signature"
ID_HEADER = "X-Automata-Id"


def sign(secret: str, body: bytes) -> str:
    """The signature header's value for this body."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def verify(secret: str, body: bytes, header: str | None) -> bool:
    """What a receiver does (constant-time compare); used by the tests' receiver."""
    return header is not None and hmac.compare_digest(sign(secret, body), header)


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
            headers[SIGNATURE_HEADER] = sign(self._secret, body)
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
