"""The notifier as a real process against a fake Telegram Bot API and a webhook receiver.

Delivery to every channel (routing, dedupe by notification id, signed webhook), Telegram's 429
honoured, a channel down that holds only its own entries (delivered exactly once when it comes
back, across a restart of the notifier), a refused message dead-lettered after N deliveries.
Commands are in test_notifier_commands.py.
"""

from __future__ import annotations

import time
import uuid
from pathlib import Path

import redis

from services.notifier.webhook import REPLAY_WINDOW_S, SIGNATURE_HEADER, TIMESTAMP_HEADER, sign
from shared.codec import encode
from shared.messages import Level, Notification
from tests.helpers.notifier_fakes import (
    CHATS,
    HOOK_SECRET,
    TOKEN,
    FakeTelegram,
    WebhookReceiver,
    start_notifier,
    wait_ready,
    write_config,
)
from tests.helpers.procs import wait_until


def notify(
    client: redis.Redis, kind: str, text: str, note_id: str | None = None, **kw: object
) -> Notification:
    note = Notification(
        id=note_id or uuid.uuid4().hex, kind=kind, text=text, ts=int(time.time() * 1000), **kw
    )
    client.xadd("notify", encode(note))
    return note


def undelivered(client: redis.Redis, group: str) -> int:
    """Entries of `notify` not yet acked by a group: pending ones plus those not yet read."""
    info = next(g for g in client.xinfo_groups("notify") if g["name"].decode() == group)
    unread = client.xrange("notify", min=f"({info['last-delivered-id'].decode()}", max="+")
    return int(info["pending"]) + len(unread)


def test_notifications_reach_each_channel_once_routed_and_signed(
    env: dict[str, str],
    sync_redis: redis.Redis,
    tmp_path: Path,
    telegram: FakeTelegram,
    hook: WebhookReceiver,
) -> None:
    routes = '[notifier.routes]\nfill = ["webhook", "console"]\n"bot_*" = ["telegram"]\n"*" = ["telegram", "webhook", "console"]\n'
    proc = start_notifier(env, tmp_path, write_config(tmp_path / "n.toml", telegram, hook, routes))
    try:
        wait_ready(sync_redis, proc)
        closed = notify(sync_redis, "cycle_closed", "cycle closed +12.5 USDT", bot="dca1", title="Profit")
        fill = notify(sync_redis, "fill", "bought 0.01 BTC at 30000", bot="dca1")
        paused = notify(sync_redis, "bot_paused", "paused by cli", bot="grid1", level=Level.WARNING)
        # the same notification published again (a producer replaying its outbox): not sent twice
        sync_redis.xadd("notify", encode(closed))

        for chat in CHATS:
            wait_until(lambda c=chat: len(telegram.sent(c)) == 2, what=f"two messages to chat {chat}")
        wait_until(lambda: len(hook.received) == 2, what="two webhook posts")
        wait_until(lambda: "bought 0.01 BTC" in proc.output(), what="the console line")
        wait_until(lambda: all(undelivered(sync_redis, f"notifier:{c}") == 0 for c in ("telegram", "webhook", "console")),
                   what="every channel group acked everything")  # fmt: skip

        for chat in CHATS:
            texts = telegram.texts(chat)
            assert any("cycle closed +12.5 USDT" in t and "Profit" in t for t in texts), texts
            assert any("paused by cli" in t and "grid1" in t for t in texts), texts
            assert not any("bought" in t for t in texts), "fill is routed to webhook+console only"
        assert sorted(d["id"] for d in hook.docs()) == sorted([closed.id, fill.id]), f"not {paused.id}"
        assert all(r.signed_ok for r in hook.received)
        first = hook.received[0]
        stamp = int(first.headers[TIMESTAMP_HEADER])
        assert abs(stamp - time.time()) < 60 and first.headers[SIGNATURE_HEADER].startswith("v1=")
        assert first.headers[SIGNATURE_HEADER] == sign(HOOK_SECRET, stamp, first.body)
        # what the signature is for (issue 13, finding 5), against the same real receiver
        assert hook.post_again(first) == 200, "within the window it verifies (the receiver dedupes by id)"
        assert hook.post_again(first, first.body.replace(b'"kind":"', b'"kind":"x')) == 401, "tampered body"
        hook.clock_offset = REPLAY_WINDOW_S + 60
        assert hook.post_again(first) == 401, "the same request replayed after the window"
        hook.clock_offset = -(REPLAY_WINDOW_S + 60)
        assert hook.post_again(first) == 401, "a timestamp too far ahead of the receiver's clock"
        hook.clock_offset = 0
        assert first.headers["X-Automata-Id"] == first.doc["id"]
        assert {"id", "kind", "level", "title", "text", "bot", "venue", "data", "ts"} <= set(first.doc)
        assert "paused by cli" not in proc.output(), "bot_* is routed to telegram only"
        # the replayed entry was a duplicate for every channel: one send per chat, one post
        assert sum("cycle closed" in p["text"] for p in telegram.sent()) == len(CHATS)
    finally:
        assert proc.terminate() == 0
    output = proc.output()
    assert TOKEN not in output and TOKEN.split(":")[1] not in output
    assert HOOK_SECRET not in output
    for stream in sync_redis.scan_iter(_type="stream"):
        for _id, fields in sync_redis.xrange(stream):
            assert TOKEN.encode() not in b"".join(fields.values())


def test_telegram_429_retry_after_is_honoured(
    env: dict[str, str], sync_redis: redis.Redis, tmp_path: Path, telegram: FakeTelegram
) -> None:
    proc = start_notifier(env, tmp_path, write_config(tmp_path / "n.toml", telegram, None))
    try:
        wait_ready(sync_redis, proc)
        telegram.rate_limit_once(retry_after=1)
        notify(sync_redis, "error", "order rejected: insufficient balance", level=Level.ERROR)
        for chat in CHATS:
            wait_until(lambda c=chat: telegram.texts(c), what=f"the message to chat {chat} after the 429")
        attempts = telegram.attempts(lambda p: "insufficient balance" in p["text"])
        limited = [a for a in attempts if a.status == 429]
        assert len(limited) == 1
        retried = [
            a for a in attempts if a.status == 200 and a.payload["chat_id"] == limited[0].payload["chat_id"]
        ]
        assert len(retried) == 1
        assert retried[0].at - limited[0].at >= 0.9, "the retry came before retry_after"
        assert len(telegram.sent()) == len(CHATS)
    finally:
        assert proc.terminate() == 0


def test_a_channel_down_holds_only_its_own_entries_and_loses_none(
    env: dict[str, str],
    sync_redis: redis.Redis,
    tmp_path: Path,
    telegram: FakeTelegram,
    hook: WebhookReceiver,
) -> None:
    config = write_config(tmp_path / "n.toml", telegram, hook)
    telegram.fail_status = 500
    proc = start_notifier(env, tmp_path, config)
    notes = []
    try:
        wait_ready(sync_redis, proc)
        notes = [notify(sync_redis, "feed_stalled", f"no candles for 3 min #{i}") for i in range(3)]
        wait_until(lambda: len(hook.received) == 3, what="the webhook gets everything while telegram is down")
        wait_until(
            lambda: all(f"no candles for 3 min #{i}" in proc.output() for i in range(3)), what="console lines"
        )
        wait_until(lambda: len(telegram.attempts()) >= 3, what="a few failed sendMessage attempts")
        assert undelivered(sync_redis, "notifier:webhook") == 0
        assert undelivered(sync_redis, "notifier:console") == 0
        assert undelivered(sync_redis, "notifier:telegram") == 3
        assert telegram.sent() == []
    finally:
        # SIGTERM while telegram is down: it stops at once, the entries stay pending
        assert proc.terminate() == 0
    assert undelivered(sync_redis, "notifier:telegram") == 3
    assert sync_redis.xlen("dlq:notify") == 0, "an outage is not the messages' fault: no dead letters"

    telegram.fail_status = 0
    proc = start_notifier(env, tmp_path, config, name="notifier2")
    try:
        wait_until(
            lambda: undelivered(sync_redis, "notifier:telegram") == 0, timeout=20, what="the backlog drained"
        )
        for chat in CHATS:
            texts = telegram.texts(chat)
            assert sorted(texts) == sorted(f"feed stalled\n{n.text}" for n in notes), texts
        assert len(hook.received) == 3, "the webhook did not get anything twice"
        assert sync_redis.xlen("dlq:notify") == 0
    finally:
        assert proc.terminate() == 0


def test_a_message_the_channel_refuses_is_dead_lettered_after_n_deliveries(
    env: dict[str, str], sync_redis: redis.Redis, tmp_path: Path, telegram: FakeTelegram
) -> None:
    telegram.reject_text = "POISON"
    proc = start_notifier(env, tmp_path, write_config(tmp_path / "n.toml", telegram, None))
    try:
        wait_ready(sync_redis, proc)
        bad = notify(sync_redis, "reconciliation", "POISON " * 3)
        good = notify(sync_redis, "daily_summary", "equity 10234.5 USDT")
        for chat in CHATS:
            wait_until(
                lambda c=chat: any("equity" in t for t in telegram.texts(c)), what="the good one delivered"
            )
        dead = wait_until(
            lambda: sync_redis.xrange("dlq:notify"), timeout=20, what="the refused one dead-lettered"
        )
        assert len(dead) == 1
        fields = dead[0][1]
        assert fields[b"dlq_group"] == b"notifier:telegram"
        assert int(fields[b"dlq_deliveries"]) >= 2
        assert bad.id.encode() in fields[b"data"]
        assert good.id.encode() not in fields[b"data"]
        wait_until(lambda: undelivered(sync_redis, "notifier:telegram") == 0, what="nothing left pending")
        assert undelivered(sync_redis, "notifier:console") == 0
    finally:
        assert proc.terminate() == 0
