"""Reading the live state in Redis: services, balances, bots, decisions, notifications.

The same readers as the CLI's (cli/heartbeats.py, shared/account_view.py, shared/bot_view.py);
nothing here writes."""

from __future__ import annotations

import time
from collections.abc import Iterable
from typing import Any

import redis

from cli.heartbeats import bot_inputs, read_heartbeats
from services.web import views
from shared import bot_view
from shared.account_view import account_doc, account_venues, read_account, value
from shared.codec import DecodeError, decode
from shared.messages import Decision, Notification
from shared.streams import NOTIFY, bot_decisions


def services(r: redis.Redis) -> views.Services:
    rows = [
        views.Service(b.service, b.instance, b.pid, round(b.age_s, 1), b.stale, round(b.uptime_s), b.extra)
        for b in read_heartbeats(r)
    ]
    return views.Services(rows, int(time.time() * 1000))


def balances(r: redis.Redis, quotes: dict[str, str], venue: str | None = None) -> views.Balances:
    """Every venue with balances in Redis (or the one asked), valued in its quote asset."""
    stored = account_venues(r)
    wanted = [venue] if venue else sorted({*stored, *quotes})
    accounts, missing = [], []
    for name in wanted:
        acct = read_account(r, name)
        if acct is None:
            missing.append(name)
            continue
        doc = account_doc(value(r, acct, quotes.get(name, "USDT"), None))
        doc["balances"] = [views.AssetBalance(**row) for row in doc["balances"]]
        accounts.append(views.Account(**doc))
    return views.Balances(accounts, missing)


def _decisions(rows: Iterable[tuple[bytes, dict[bytes, bytes]]]) -> list[views.DecisionView]:
    out = []
    for entry_id, fields in rows:
        try:
            msg = decode(fields)
        except DecodeError:
            continue
        if isinstance(msg, Decision):
            out.append(
                views.DecisionView(entry_id.decode(), msg.bot, msg.text, msg.topic, msg.fields, msg.ts)
            )
    return out


def decisions(r: redis.Redis, bot: str, limit: int) -> list[views.DecisionView]:
    """The bot's newest decisions, newest first."""
    return _decisions(r.xrevrange(bot_decisions(bot), count=limit))


def bot_rows(r: redis.Redis, one: tuple[str, dict[str, Any]] | None = None) -> list[dict[str, Any]]:
    """The CLI's bot lines (shared/bot_view.py), for every bot with state or just `one` (a bot
    and its state document, already read)."""
    inputs = bot_inputs(read_heartbeats(r))
    if one is None:
        return bot_view.bots(r, inputs)
    bot, doc = one
    return [bot_view.row(bot, doc, inputs.get(bot), int(time.time() * 1000))]


def summary(r: redis.Redis, row: dict[str, Any], unrealised: Any) -> views.BotSummary:
    last = decisions(r, row["bot"], 1)
    return views.BotSummary(
        bot=row["bot"], mode=row["mode"], venue=row["venue"], symbol=row["symbol"], position=row["position"],
        avg_price=row["avg_price"], realised=row["realised"], unrealised=unrealised,
        open_orders=row["open_orders"], failed=row["failed"], stalled=row["stalled"],
        last_input_s=row["last_input_s"], last_decision=last[0] if last else None,
    )  # fmt: skip


def notifications(r: redis.Redis, limit: int, bot: str | None = None) -> list[views.NotificationView]:
    """The newest notifications on `notify`, newest first (of one bot with `bot`)."""
    out: list[views.NotificationView] = []
    end = "+"
    while len(out) < limit:
        rows = r.xrevrange(NOTIFY, max=end, count=200)
        for entry_id, fields in rows:
            try:
                msg = decode(fields)
            except DecodeError:
                continue
            if isinstance(msg, Notification) and (bot is None or msg.bot == bot):
                out.append(notification_view(entry_id.decode(), msg))
        if len(rows) < 200 or bot is None:
            break
        end = "(" + rows[-1][0].decode()
    return out[:limit]


def notification_view(entry_id: str, msg: Notification) -> views.NotificationView:
    return views.NotificationView(entry_id, msg.kind, msg.level.value, msg.title, msg.text, msg.bot, msg.venue,
                                  msg.ts)  # fmt: skip
