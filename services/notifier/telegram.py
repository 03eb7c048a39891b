"""The Telegram Bot API: sendMessage paced per chat, 429 retry_after honoured, getUpdates.

The token is part of every URL (`{base_url}/bot{token}/{method}`), so no URL and no aiohttp
exception (whose text may hold the URL) ever leaves this module: errors are re-raised as
ChannelDown / Rejected naming only the method and the status. The token is also a registered
secret, masked in any log line.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Sequence
from typing import Any

import aiohttp

from services.notifier.channels import ChannelDown, Rejected, format_text, sleep_or_stop
from shared.messages import Notification

log = logging.getLogger("automata.notifier.telegram")

# Codes that mean the bot as a whole cannot work now (bad token, Telegram trouble), not this message.
_CHANNEL_CODES = frozenset({401, 404, 409, 420, 429})


class TelegramClient:
    """A thin Bot API client shared by the notification channel and the command poller."""

    def __init__(
        self,
        session: aiohttp.ClientSession,
        *,
        base_url: str,
        token: str,
        per_chat_rate: float,
        stopping: asyncio.Event,
        request_timeout_s: float = 10.0,
    ) -> None:
        self._session = session
        self._prefix = f"{base_url.rstrip('/')}/bot{token}/"
        self._interval = 1.0 / per_chat_rate
        self._stopping = stopping
        self._timeout = request_timeout_s
        self._next_slot: dict[str, float] = {}

    async def call(self, method: str, payload: dict[str, Any], timeout_s: float | None = None) -> Any:
        """POST one method; the `result` on success, else ChannelDown / Rejected."""
        timeout = aiohttp.ClientTimeout(total=timeout_s or self._timeout)
        try:
            async with self._session.post(self._prefix + method, json=payload, timeout=timeout) as resp:
                status = resp.status
                try:
                    body = await resp.json(content_type=None)
                except ValueError:
                    body = None
        except (aiohttp.ClientError, TimeoutError, OSError) as exc:
            raise ChannelDown(f"{method}: {type(exc).__name__}") from None
        if not isinstance(body, dict):
            if status >= 500 or status in _CHANNEL_CODES:
                raise ChannelDown(f"{method}: HTTP {status}")
            raise Rejected(f"{method}: HTTP {status} without a Bot API answer")
        if body.get("ok") is True:
            return body.get("result")
        error_code = body.get("error_code")
        code = error_code if type(error_code) is int else status
        description = str(body.get("description", ""))[:200]
        if code == 429:
            params = body.get("parameters")
            wait = params.get("retry_after") if isinstance(params, dict) else None
            retry_after = min(float(wait), 3600.0) if type(wait) in (int, float) and wait > 0 else 1.0
            raise ChannelDown(f"{method}: 429 {description}", retry_after=retry_after)
        if code >= 500 or code in _CHANNEL_CODES:
            raise ChannelDown(f"{method}: {code} {description}")
        raise Rejected(f"{method}: {code} {description}")

    async def send_message(self, chat_id: str | int, text: str) -> None:
        """sendMessage, at most `per_chat_rate` a second to one chat; a 429 pushes that chat's
        next slot back by retry_after (Telegram's own limit wins over ours)."""
        chat = str(chat_id)
        await self._pace(chat)
        try:
            await self.call(
                "sendMessage", {"chat_id": chat_id, "text": text, "disable_web_page_preview": True}
            )
        except ChannelDown as exc:
            if exc.retry_after:
                self._next_slot[chat] = time.monotonic() + exc.retry_after
            raise

    async def get_updates(self, offset: int | None, timeout_s: int) -> list[dict[str, Any]]:
        payload: dict[str, Any] = {"timeout": timeout_s, "allowed_updates": ["message"]}
        if offset is not None:
            payload["offset"] = offset
        result = await self.call("getUpdates", payload, timeout_s=timeout_s + self._timeout)
        if not isinstance(result, list):
            raise Rejected("getUpdates: the result is not a list")
        return [u for u in result if isinstance(u, dict)]

    async def get_me(self) -> str:
        """The bot's own username (getMe), to tell `/cmd@thisbot` from `/cmd@otherbot`."""
        result = await self.call("getMe", {})
        username = result.get("username") if isinstance(result, dict) else None
        if not isinstance(username, str) or not username:
            raise Rejected("getMe: no username in the answer")
        return username

    async def _pace(self, chat: str) -> None:
        now = time.monotonic()
        slot = max(now, self._next_slot.get(chat, 0.0))
        self._next_slot[chat] = slot + self._interval
        await sleep_or_stop(slot - now, self._stopping)


class TelegramChannel:
    """Notifications to every configured chat; each chat is a dedupe target of its own, so a
    retry after a partial failure does not message the chats that already got it."""

    name = "telegram"

    def __init__(self, client: TelegramClient, chat_ids: Sequence[int]) -> None:
        self.client = client
        self._targets = tuple(str(c) for c in chat_ids)

    def targets(self) -> Sequence[str]:
        return self._targets

    async def send(self, target: str, note: Notification) -> None:
        await self.client.send_message(int(target), format_text(note))

    async def close(self) -> None:
        return None
