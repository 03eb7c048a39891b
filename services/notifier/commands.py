"""Telegram commands: /status, /balance [VENUE], /bots, /pause BOT, /resume BOT, /stop BOT, /close BOT,
/profit [BOT], /daily|/weekly|/monthly [N] [BOT], /trades [N] [BOT], /trade buy|sell ... (a
manual smart trade: services/notifier/trade_command.py), /help.

Who may command: the *users* listed in `notifier.telegram.allowed_users` (Telegram user ids,
`from.id`), writing in one of `chat_ids` or in their own private chat with the bot. Being in an
allowed chat is not enough: in a group every member writes in that chat. No allowed users: every
command is refused (the notifier warns at start). A refused command is logged with the user and
the chat and gets no answer: a stranger learns nothing, not even that the bot listens.
`/cmd@name` is obeyed only when `name` is this bot's username (learnt once from getMe): in a
group, `/stop@otherbot x` is another bot's business. Updates are outside input: anything but a
plain text message from a user (an edited message, a channel post, a message sent on behalf of a
chat, a forwarded one, a photo, text over 4096 characters, fields of the wrong type) is ignored.
pause/resume/stop/close publish a BotControl (source "telegram") on `bot:{bot}:control`, the same entry
`automata pause BOT` writes; the bot's runner applies it exactly once. The getUpdates offset is
kept in Redis so a restarted notifier does not run the same command again. /profit, /daily,
/weekly, /monthly and /trades read the ledger (services/notifier/ledger_commands.py, imported on first use: SQLAlchemy
stays out of a notifier nobody asks).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

import orjson
import redis.asyncio as aioredis

from services.notifier.channels import ChannelDown, Rejected, Stopping, sleep_or_stop
from services.notifier.telegram import TelegramClient
from shared import display
from shared.account_view import fold_account
from shared.bus import publish
from shared.display import UNKNOWN, Precision
from shared.filters import SymbolFilters
from shared.ids import IdError, check_bot_id
from shared.messages import BotControl, ControlAction
from shared.redis_conn import REDIS_ERRORS
from shared.streams import NOTIFIER_TELEGRAM_OFFSET, account, bot_control, bot_state, venue_symbols

log = logging.getLogger("automata.notifier.commands")

HELP = (
    "Commands:\n"
    "/status - services and bots\n"
    "/bots - bots and their mode\n"
    "/balance [VENUE] - balances per asset\n"
    "/pause BOT - no new orders, open ones stay\n"
    "/resume BOT - resume a paused or stopped bot\n"
    "/stop BOT - cancel its open orders, keep the position\n"
    "/close BOT - cancel its open orders and sell its position at market\n"
    "/profit [BOT] - realised and unrealised profit, fees, win rate\n"
    "/daily [N] [BOT] - profit per UTC day\n"
    "/weekly [N] [BOT] - profit per week (from Monday)\n"
    "/monthly [N] [BOT] - profit per month\n"
    "/trades [N] [BOT] - the newest fills\n"
    "/trade buy SYMBOL QUOTE tp 2%,4% sl 1% trailing 0.5% - a smart trade by the manual bot"
)
CONTROL = {
    "pause": ControlAction.PAUSE,
    "resume": ControlAction.RESUME,
    "stop": ControlAction.STOP,
    "close": ControlAction.CLOSE,
}
MAX_TEXT = 4096  # Telegram's own limit for a message; anything longer is not from Telegram
MAX_UPDATE_ID = 2**62
_FORWARDED = ("forward_origin", "forward_from", "forward_from_chat", "forward_sender_name", "forward_date")
T = TypeVar("T")


async def _scan_keys(redis: aioredis.Redis, pattern: str) -> list[str]:
    return sorted([k.decode() async for k in redis.scan_iter(match=pattern, count=500)])


async def _filters(redis: aioredis.Redis, venue: str) -> dict[str, SymbolFilters]:
    """The venue's symbol filters as the order gateway published them, for amounts at their precision."""
    return display.filters_from_hash(await redis.hgetall(venue_symbols(venue)))


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
        market = display.bot_market(doc) if isinstance(doc, dict) else None
        p = Precision.of((await _filters(redis, market[0])).get(market[1])) if market else UNKNOWN
        extra = (
            f" position {p.qty(pos.get('base', '0'))}, realised {display.quote(pos.get('realised', '0'))}"
            if isinstance(pos, dict) and pos
            else ""
        )
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
        show = display.asset_amounts(await _filters(redis, venue))
        rows = [
            f"{b.asset}: {show(b.asset, b.total)} (free {show(b.asset, b.free)}, locked {show(b.asset, b.locked)})"
            for b in sorted(assets.values(), key=lambda b: b.asset)
            if b.total
        ]
        note = "" if snapshot_seen else " (partial: no full snapshot in the stream)"
        parts.append(f"{venue}{note}:\n" + ("\n".join(rows) or "all zero"))
    return "\n\n".join(parts) or "No venues configured."


@dataclass(frozen=True)
class Command:
    """A command as Telegram delivered it, before anyone decided whether to obey it."""

    chat_id: int
    chat_type: str
    user_id: int | None  # None: no sender, or sent on behalf of a chat (anonymous admin, channel)
    user_name: str
    name: str
    args: list[str]


def parse_command(update: Any, username: str) -> Command | None:
    """The command in an update, or None: not a plain text message from someone, not a command,
    or addressed to another bot (`/cmd@otherbot`; with our username unknown, any `@name`)."""
    message = update.get("message") if isinstance(update, dict) else None
    if not isinstance(message, dict) or any(key in message for key in _FORWARDED):
        return None
    text = message.get("text")
    if not isinstance(text, str) or len(text) > MAX_TEXT:
        return None
    text = text.strip()
    chat = message.get("chat")
    chat_id = chat.get("id") if isinstance(chat, dict) else None
    if not text.startswith("/") or type(chat_id) is not int:
        return None
    name, at, addressed = text.split(maxsplit=1)[0][1:].partition("@")
    if at and (not username or addressed.lower() != username.lower()):  # `/cmd@` is nobody's
        return None
    sender = message.get("from")
    user_id = sender.get("id") if isinstance(sender, dict) else None
    if type(user_id) is not int or "sender_chat" in message:
        user_id = None
    user_name = sender.get("username") if isinstance(sender, dict) else None
    chat_type = chat.get("type") if isinstance(chat, dict) else None
    return Command(
        chat_id=chat_id,
        chat_type=chat_type if isinstance(chat_type, str) else "",
        user_id=user_id,
        user_name=user_name[:40] if isinstance(user_name, str) else "",
        name=name.lower(),
        args=text.split()[1:],
    )


def in_order(updates: Sequence[Any]) -> list[tuple[int, dict[str, Any]]]:
    """(update_id, update) by update_id; updates without a sane integer id are left out."""
    valid = [
        (u["update_id"], u)
        for u in updates
        if isinstance(u, dict) and type(u.get("update_id")) is int and 0 <= u["update_id"] < MAX_UPDATE_ID
    ]
    return sorted(valid, key=lambda pair: pair[0])


class TelegramCommands:
    """A service component: long-polls getUpdates and obeys allowed users."""

    def __init__(
        self,
        redis: aioredis.Redis,
        client: TelegramClient,
        chats: Sequence[int],
        users: Sequence[int],
        venues: Sequence[str],
        stopping: asyncio.Event,
        *,
        poll_timeout_s: int = 25,
        username: str = "",
        ledger_url: str = "",
    ) -> None:
        self.redis, self.client, self.stopping = redis, client, stopping
        self.chats, self.users = frozenset(chats), frozenset(users)
        self.venues = list(venues)
        self.poll_timeout_s = poll_timeout_s
        self.username = username  # learnt from getMe before the first poll
        self._call: asyncio.Future[Any] | None = None
        self.ledger_url = ledger_url  # the config's [ledger] url ("" : DATABASE_URL or the default)
        self._ledger: Any = None  # a LedgerReader, made on the first command that reads the ledger
        self._handlers: dict[str, Callable[[Command], Awaitable[str]]] = {
            "start": self._help,
            "help": self._help,
            "status": self._status,
            "bots": self._bots,
            "balance": self._balance,
            "profit": self._profit,
            "daily": self._period,
            "weekly": self._period,
            "monthly": self._period,
            "trades": self._trades,
            "trade": self._trade,
        }

    def stop(self) -> None:
        if self._call is not None:
            self._call.cancel()  # a long poll in flight; getUpdates is safe to repeat

    async def _api(self, call: Awaitable[T]) -> T:
        """One Bot API call that stop() can cut short."""
        self._call = asyncio.ensure_future(call)
        try:
            return await self._call
        finally:
            self._call = None

    async def run(self) -> None:
        backoff = 1.0
        offset = await self._load_offset()
        while not self.stopping.is_set():
            try:
                if not self.username:
                    self.username = await self._api(self.client.get_me())
                    log.info("telegram commands for @%s", self.username)
                updates = await self._api(self.client.get_updates(offset, self.poll_timeout_s))
            except asyncio.CancelledError:
                if self.stopping.is_set():
                    return
                raise
            except (ChannelDown, Rejected) as exc:
                log.warning("telegram getMe/getUpdates failed (%s); retrying in %.0fs", exc, backoff)
                wait = getattr(exc, "retry_after", None) or backoff
                backoff = min(backoff * 2, 60.0)
                try:
                    await sleep_or_stop(wait, self.stopping)
                except Stopping:
                    return
                continue
            backoff = 1.0
            ordered = in_order(updates)
            if len(ordered) < len(updates):
                log.warning("ignored %d telegram update(s) without an update_id", len(updates) - len(ordered))
                if not ordered:  # nothing to move the offset past: do not ask again at once
                    try:
                        await sleep_or_stop(1.0, self.stopping)
                    except Stopping:
                        return
            for update_id, update in ordered:
                try:
                    await self.handle_update(update)
                except Stopping:
                    return
                except Exception:  # a command must never take the notifier down
                    log.exception("telegram update %s failed", update_id)
                offset = update_id + 1
                try:
                    await self.redis.set(NOTIFIER_TELEGRAM_OFFSET, offset)
                except REDIS_ERRORS:
                    log.warning("could not save the telegram offset; a restart may repeat a command")

    async def _load_offset(self) -> int | None:
        while True:
            try:
                raw = await self.redis.get(NOTIFIER_TELEGRAM_OFFSET)
            except REDIS_ERRORS:
                await sleep_or_stop(1.0, self.stopping)
                continue
            try:
                return int(raw) if raw else None
            except ValueError:
                log.warning(
                    "%s holds no number; reading telegram updates from the oldest kept",
                    NOTIFIER_TELEGRAM_OFFSET,
                )
                return None

    def refusal(self, cmd: Command) -> str | None:
        """Why this command is not obeyed, or None."""
        if not self.users:
            return "no allowed users configured (notifier.telegram.allowed_users)"
        if cmd.user_id is None:
            return "no user (sent on behalf of a chat)"
        if cmd.user_id not in self.users:
            return "not an allowed user"
        if cmd.chat_id not in self.chats and not (cmd.chat_type == "private" and cmd.chat_id == cmd.user_id):
            return "not in a configured chat nor the user's private chat"
        return None

    async def handle_update(self, update: Any) -> None:
        cmd = parse_command(update, self.username)
        if cmd is None:
            return
        refused = self.refusal(cmd)
        if refused:
            log.warning(
                "refused telegram command /%.30s from user %s (%r) in chat %s: %s",
                cmd.name,
                cmd.user_id,
                cmd.user_name,
                cmd.chat_id,
                refused,
            )
            return
        log.info("telegram command /%s from user %s in chat %s", cmd.name, cmd.user_id, cmd.chat_id)
        try:
            if cmd.name in CONTROL:
                reply = await self._control(cmd, CONTROL[cmd.name])
            elif cmd.name in self._handlers:
                reply = await self._handlers[cmd.name](cmd)
            else:
                reply = f"Unknown command /{cmd.name[:30]}.\n\n{HELP}"
        except REDIS_ERRORS as exc:
            log.warning("telegram /%s failed: redis unavailable (%s)", cmd.name, type(exc).__name__)
            reply = "Redis is unavailable right now; nothing was done. Try again shortly."
        except (Stopping, asyncio.CancelledError):
            raise
        except Exception as exc:  # the user who asked hears of it, rather than silence
            log.exception("telegram /%s from user %s failed", cmd.name, cmd.user_id)
            reply = f"/{cmd.name[:30]} failed ({type(exc).__name__}); the notifier's log has the details."
        await self.reply(cmd.chat_id, reply)

    async def reply(self, chat_id: int, text: str) -> None:
        """Best effort: one retry after a 429 or an outage, then give up (logged)."""
        for attempt in range(2):
            try:
                await self.client.send_message(chat_id, text[:MAX_TEXT])
                return
            except ChannelDown as exc:
                if attempt == 0:
                    await sleep_or_stop(min(exc.retry_after or 1.0, 30.0), self.stopping)
                    continue
                log.warning("could not answer chat %s: %s", chat_id, exc)
            except Rejected as exc:
                log.warning("could not answer chat %s: %s", chat_id, exc)
                return

    async def _help(self, cmd: Command) -> str:
        return HELP

    async def _status(self, cmd: Command) -> str:
        return f"{await services_text(self.redis)}\n\n{await bots_text(self.redis)}"

    async def _bots(self, cmd: Command) -> str:
        return await bots_text(self.redis)

    async def _balance(self, cmd: Command) -> str:
        # only a configured venue names a stream: the user's text never becomes a Redis key
        asked = cmd.args[:1]
        if asked and asked[0] not in self.venues:
            return f"Unknown venue {asked[0]!r}: configured are {', '.join(self.venues) or 'none'}"
        return await balance_text(self.redis, asked or self.venues)

    def _reader(self) -> Any:
        if self._ledger is None:
            from services.notifier.ledger_commands import LedgerReader

            self._ledger = LedgerReader(self.ledger_url)
        return self._ledger

    def close(self) -> None:
        if self._ledger is not None:
            self._ledger.close()

    async def _profit(self, cmd: Command) -> str:
        from services.notifier import ledger_commands

        return await ledger_commands.profit_answer(self._reader(), cmd.args)

    async def _period(self, cmd: Command) -> str:
        from services.notifier import ledger_commands

        return await ledger_commands.period_answer(self._reader(), cmd.name, cmd.args)  # type: ignore[arg-type]

    async def _trades(self, cmd: Command) -> str:
        from services.notifier import ledger_commands

        return await ledger_commands.trades_answer(
            self._reader(), cmd.args, lambda v: _filters(self.redis, v)
        )

    async def _trade(self, cmd: Command) -> str:
        from services.notifier.trade_command import trade_answer
        from services.strategy_runner.bots import bots_path

        return await trade_answer(self.redis, cmd.args, f"user {cmd.user_id}", bots_path())

    async def _control(self, cmd: Command, action: ControlAction) -> str:
        if len(cmd.args) != 1:
            return f"Usage: /{action.value} BOT"
        bot = cmd.args[0]
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
            reason=f"telegram user {cmd.user_id} in chat {cmd.chat_id}",
            ts=int(time.time() * 1000),
        )
        entry_id = await publish(self.redis, bot_control(bot), msg)
        log.info("telegram user %s: %s %s (%s)", cmd.user_id, action.value, bot, entry_id.decode())
        return f"{action.value} sent to {bot}"
