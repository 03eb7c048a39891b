"""Telegram commands: /status, /balance [VENUE], /bots, /pause BOT, /resume BOT, /stop BOT, /help.

Only chats listed in `notifier.telegram.chat_ids` are obeyed; anyone else is refused (logged
with the chat id, no answer: a stranger learns nothing, not even that the bot listens).
pause/resume/stop publish a BotControl (source "telegram") on `bot:{bot}:control`, the same entry
`automata pause BOT` writes; the bot's runner applies it exactly once. The getUpdates offset is
kept in Redis so a restarted notifier does not run the same command again.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import orjson
import redis.asyncio as aioredis

from services.notifier.channels import ChannelDown, Rejected, Stopping, sleep_or_stop
from services.notifier.telegram import TelegramClient
from shared.account_view import fold_account
from shared.bus import publish
from shared.ids import IdError, check_bot_id
from shared.messages import BotControl, ControlAction
from shared.redis_conn import REDIS_ERRORS
from shared.streams import NOTIFIER_TELEGRAM_OFFSET, account, bot_control, bot_state

log = logging.getLogger("automata.notifier.commands")

HELP = (
    "Commands:\n"
    "/status - services and bots\n"
    "/bots - bots and their mode\n"
    "/balance [VENUE] - balances per asset\n"
    "/pause BOT - no new orders, open ones stay\n"
    "/resume BOT - resume a paused or stopped bot\n"
    "/stop BOT - cancel its open orders, keep the position"
)
CONTROL = {"pause": ControlAction.PAUSE, "resume": ControlAction.RESUME, "stop": ControlAction.STOP}


async def _scan_keys(redis: aioredis.Redis, pattern: str) -> list[str]:
    return sorted([k.decode() async for k in redis.scan_iter(match=pattern, count=500)])


async def bots_text(redis: aioredis.Redis) -> str:
    lines = []
    for key in await _scan_keys(redis, "bot:*:state"):
        bot = key.split(":")[1]
        raw = await redis.get(key)
        try:
            doc = orjson.loads(raw) if raw else {}
        except orjson.JSONDecodeError:
            doc = {}
        state = (doc.get("state") if isinstance(doc, dict) else None) or {}
        mode = state.get("mode", "running") if isinstance(state, dict) else "?"
        pos = state.get("position", {}) if isinstance(state, dict) else {}
        extra = f" position {pos.get('base', '0')}, realised {pos.get('realised', '0')}" if pos else ""
        failed = " FAILED" if isinstance(doc, dict) and doc.get("failed") else ""
        lines.append(f"{bot}: {mode}{failed}{extra}")
    return "Bots:\n" + "\n".join(lines) if lines else "No bots have state yet."


async def services_text(redis: aioredis.Redis) -> str:
    now_ms = time.time() * 1000
    lines = []
    for key in await _scan_keys(redis, "svc:*"):
        _, service, instance = (key.split(":", 2) + ["", ""])[:3]
        raw = await redis.get(key)
        try:
            beat = orjson.loads(raw) if raw else {}
        except orjson.JSONDecodeError:
            beat = {}
        age = max(0.0, (now_ms - float(beat.get("ts", now_ms))) / 1000) if isinstance(beat, dict) else 0.0
        lines.append(f"{service} ({instance}): beat {age:.0f}s ago")
    return "Services:\n" + "\n".join(lines) if lines else "No service heartbeats."


async def balance_text(redis: aioredis.Redis, venues: Sequence[str]) -> str:
    """Per venue, the newest balance of each asset: deltas newer than the last snapshot on top of it."""
    parts = []
    for venue in venues:
        view = fold_account(await redis.xrevrange(account(venue), count=200))
        assets, snapshot_seen = view.balances, view.snapshot
        if not assets:
            parts.append(f"{venue}: no balance yet")
            continue
        rows = [
            f"{b.asset}: {b.total.normalize():f} (free {b.free.normalize():f}, locked {b.locked.normalize():f})"
            for b in sorted(assets.values(), key=lambda b: b.asset)
            if b.total
        ]
        note = "" if snapshot_seen else " (partial: no full snapshot in the stream)"
        parts.append(f"{venue}{note}:\n" + ("\n".join(rows) or "all zero"))
    return "\n\n".join(parts) or "No venues configured."


class TelegramCommands:
    """A service component: long-polls getUpdates and answers allowed chats."""

    def __init__(
        self,
        redis: aioredis.Redis,
        client: TelegramClient,
        allowed: Sequence[int],
        venues: Sequence[str],
        stopping: asyncio.Event,
        *,
        poll_timeout_s: int = 25,
    ) -> None:
        self.redis, self.client, self.stopping = redis, client, stopping
        self.allowed = frozenset(allowed)
        self.venues = list(venues)
        self.poll_timeout_s = poll_timeout_s
        self._poll: asyncio.Task[list[dict[str, Any]]] | None = None
        self._handlers: dict[str, Callable[[int, list[str]], Awaitable[str]]] = {
            "start": self._help,
            "help": self._help,
            "status": self._status,
            "bots": self._bots,
            "balance": self._balance,
        }

    def stop(self) -> None:
        if self._poll is not None:
            self._poll.cancel()  # a long poll in flight; getUpdates is safe to repeat

    async def run(self) -> None:
        backoff = 1.0
        offset = await self._load_offset()
        while not self.stopping.is_set():
            self._poll = asyncio.create_task(self.client.get_updates(offset, self.poll_timeout_s))
            try:
                updates = await self._poll
            except asyncio.CancelledError:
                if self.stopping.is_set():
                    return
                raise
            except (ChannelDown, Rejected) as exc:
                log.warning("telegram getUpdates failed (%s); retrying in %.0fs", exc, backoff)
                wait = getattr(exc, "retry_after", None) or backoff
                backoff = min(backoff * 2, 60.0)
                try:
                    await sleep_or_stop(wait, self.stopping)
                except Stopping:
                    return
                continue
            finally:
                self._poll = None
            backoff = 1.0
            for update in sorted(updates, key=lambda u: int(u.get("update_id", 0))):
                try:
                    await self.handle_update(update)
                except Stopping:
                    return
                except Exception:  # a command must never take the notifier down
                    log.exception("telegram update %s failed", update.get("update_id"))
                offset = int(update.get("update_id", 0)) + 1
                try:
                    await self.redis.set(NOTIFIER_TELEGRAM_OFFSET, offset)
                except REDIS_ERRORS:
                    log.warning("could not save the telegram offset; a restart may repeat a command")

    async def _load_offset(self) -> int | None:
        while True:
            try:
                raw = await self.redis.get(NOTIFIER_TELEGRAM_OFFSET)
                return int(raw) if raw else None
            except REDIS_ERRORS:
                await sleep_or_stop(1.0, self.stopping)

    async def handle_update(self, update: dict[str, Any]) -> None:
        message = update.get("message")
        if not isinstance(message, dict):
            return
        chat_id = (message.get("chat") or {}).get("id")
        text = str(message.get("text") or "").strip()
        if not text.startswith("/") or not isinstance(chat_id, int):
            return
        if chat_id not in self.allowed:
            sender = (message.get("from") or {}).get("username") or (message.get("from") or {}).get("id")
            log.warning(
                "refused telegram command from unauthorised chat %s (user %s): %.40s", chat_id, sender, text
            )
            return
        words = text.split()
        command = words[0][1:].split("@", 1)[0].lower()
        log.info("telegram command /%s from chat %s", command, chat_id)
        try:
            if command in CONTROL:
                reply = await self._control(chat_id, CONTROL[command], words[1:])
            elif command in self._handlers:
                reply = await self._handlers[command](chat_id, words[1:])
            else:
                reply = f"Unknown command /{command}.\n\n{HELP}"
        except REDIS_ERRORS as exc:
            log.warning("telegram /%s failed: redis unavailable (%s)", command, type(exc).__name__)
            reply = "Redis is unavailable right now; nothing was done. Try again shortly."
        await self.reply(chat_id, reply)

    async def reply(self, chat_id: int, text: str) -> None:
        """Best effort: one retry after a 429 or an outage, then give up (logged)."""
        for attempt in range(2):
            try:
                await self.client.send_message(chat_id, text[:4096])
                return
            except ChannelDown as exc:
                if attempt == 0:
                    await sleep_or_stop(min(exc.retry_after or 1.0, 30.0), self.stopping)
                    continue
                log.warning("could not answer chat %s: %s", chat_id, exc)
            except Rejected as exc:
                log.warning("could not answer chat %s: %s", chat_id, exc)
                return

    async def _help(self, chat_id: int, args: list[str]) -> str:
        return HELP

    async def _status(self, chat_id: int, args: list[str]) -> str:
        return f"{await services_text(self.redis)}\n\n{await bots_text(self.redis)}"

    async def _bots(self, chat_id: int, args: list[str]) -> str:
        return await bots_text(self.redis)

    async def _balance(self, chat_id: int, args: list[str]) -> str:
        venues = args[:1] or self.venues
        return await balance_text(self.redis, venues)

    async def _control(self, chat_id: int, action: ControlAction, args: list[str]) -> str:
        if len(args) != 1:
            return f"Usage: /{action.value} BOT"
        bot = args[0]
        try:
            check_bot_id(bot)
        except IdError:
            return f"Not a bot id: {bot[:30]!r}"
        if not await self.redis.exists(bot_state(bot), bot_control(bot)):
            return f"Unknown bot {bot} (no state, no control stream). /bots lists them."
        msg = BotControl(
            bot=bot,
            action=action,
            source="telegram",
            reason=f"telegram chat {chat_id}",
            ts=int(time.time() * 1000),
        )
        entry_id = await publish(self.redis, bot_control(bot), msg)
        log.info("telegram chat %s: %s %s (%s)", chat_id, action.value, bot, entry_id.decode())
        return f"{action.value} sent to {bot}"
