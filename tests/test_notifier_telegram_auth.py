"""Telegram commands are obeyed per user, not per chat (issue 13, finding 4), against a real
notifier process and the fake Bot API: in a group, a member who is not an allowed user is refused;
`/cmd@otherbot` is another bot's; odd or hostile updates are ignored and the loop goes on; with no
allowed users at all every command is refused and the notifier says so at start (and so does an
unsigned webhook, finding 5)."""

from __future__ import annotations

from pathlib import Path

import redis

from shared.codec import decode
from shared.messages import BotControl, ControlAction
from tests.helpers.notifier_fakes import (
    CHATS,
    FakeTelegram,
    WebhookReceiver,
    start_notifier,
    wait_ready,
    write_config,
)
from tests.helpers.procs import wait_until
from tests.test_notifier import notify
from tests.test_notifier_commands import ask, seed_bot

ALLOWED = CHATS[0]  # an allowed user, and their private chat with the bot
GROUP = -100500  # a group the notifications go to, where anyone can write
OTHER_GROUP = -100999  # a group the bot is in, not configured
MEMBER = 777  # a member of GROUP who is not an allowed user


def controls(client: redis.Redis, bot: str) -> list[BotControl]:
    return [decode(fields) for _id, fields in client.xrange(f"bot:{bot}:control")]  # type: ignore[misc]


def hostile_updates(telegram: FakeTelegram) -> None:
    """Updates a bot can get (or a broken proxy could hand it), none of which is a command to obey."""
    stop = "/stop dca1"
    # not a plain text message from a user
    telegram.push_update(
        lambda i: {"update_id": i, "edited_message": {"chat": {"id": ALLOWED}, "text": stop}}
    )
    telegram.push_update(lambda i: {"update_id": i, "channel_post": {"chat": {"id": GROUP}, "text": stop}})
    telegram.push_update(
        lambda i: {"update_id": i, "message": {"chat": {"id": GROUP, "type": "group"}, "text": stop}}
    )
    telegram.push_message(GROUP, stop, user_id=ALLOWED, sender_chat={"id": GROUP, "type": "group"})
    telegram.push_message(ALLOWED, stop, forward_origin={"type": "user", "sender_user": {"id": ALLOWED}})
    telegram.push_message(ALLOWED, "", photo=[{"file_id": "x"}], caption=stop)
    telegram.push_message(ALLOWED, stop + " " + "x" * 100_000)
    # wrong types where Telegram promises others
    telegram.push_update(
        lambda i: {
            "update_id": i,
            "message": {"chat": {"id": ALLOWED}, "from": [ALLOWED], "text": {"t": stop}},
        }
    )
    telegram.push_update(
        lambda i: {"update_id": i, "message": {"chat": [ALLOWED], "from": {"id": ALLOWED}, "text": stop}}
    )
    telegram.push_update(
        lambda i: {
            "update_id": i,
            "message": {"chat": {"id": str(ALLOWED)}, "from": {"id": True}, "text": stop},
        }
    )
    telegram.push_update(lambda i: {"update_id": str(i), "message": "junk"})
    telegram.push_update(lambda i: {"update_id": 2**63, "message": None})
    telegram.push_update(lambda i: ["not", "an", "update"])
    telegram.push_update(lambda i: {"update_id": i})  # fmt: skip


def test_commands_are_obeyed_per_user_and_only_when_addressed_to_this_bot(
    env: dict[str, str], sync_redis: redis.Redis, tmp_path: Path, telegram: FakeTelegram
) -> None:
    seed_bot(sync_redis, "dca1", "running")
    seed_bot(sync_redis, "grid1", "running")
    chats = ",".join(map(str, (*CHATS, GROUP)))
    proc = start_notifier(
        {**env, "TELEGRAM_CHAT_IDS": chats}, tmp_path, write_config(tmp_path / "n.toml", telegram, None)
    )
    try:
        wait_ready(sync_redis, proc)
        telegram.push_message(GROUP, "/stop dca1", "member", user_id=MEMBER)  # a group member, not allowed
        telegram.push_message(GROUP, "/stop@otherbot grid1", "boss", user_id=ALLOWED)  # another bot's
        telegram.push_message(OTHER_GROUP, "/bots", "boss", user_id=ALLOWED)  # a chat not configured
        hostile_updates(telegram)
        before = len(telegram.texts(GROUP))
        telegram.push_message(GROUP, "/pause@Automata_Bot dca1", "boss", user_id=ALLOWED)
        answer = wait_until(
            lambda: telegram.texts(GROUP)[before:], timeout=20, what="the answer in the group"
        )
        assert answer == ["pause sent to dca1"]
        # updates are handled in order: once the allowed user has this answer, all the above were seen
        assert "dca1" in ask(telegram, proc, ALLOWED, "/bots"), "the loop goes on after the odd updates"

        assert [(c.action, c.reason) for c in controls(sync_redis, "dca1")] == [
            (ControlAction.PAUSE, f"telegram user {ALLOWED} in chat {GROUP}")
        ], "only the allowed user's command addressed to this bot reached dca1"
        assert controls(sync_redis, "grid1") == [], "/stop@otherbot is not for this bot"
        assert telegram.texts(MEMBER) == [] and telegram.texts(OTHER_GROUP) == []
        assert telegram.texts(GROUP)[before:] == ["pause sent to dca1"], "the member got no answer"
        log = proc.output()
        assert (
            f"refused telegram command /stop from user {MEMBER} ('member') in chat {GROUP}: not an allowed user"
            in log
        )
        assert f"refused telegram command /bots from user {ALLOWED} ('boss') in chat {OTHER_GROUP}" in log
        assert "no user (sent on behalf of a chat)" in log
        assert "telegram update(s) without an update_id" in log
        assert "Traceback" not in log
    finally:
        assert proc.terminate() == 0


def test_no_allowed_users_refuses_every_command_and_an_unsigned_webhook_is_warned_of(
    env: dict[str, str], sync_redis: redis.Redis, tmp_path: Path, telegram: FakeTelegram
) -> None:
    seed_bot(sync_redis, "dca1", "running")
    hook = WebhookReceiver(secret="").start()
    config = write_config(tmp_path / "n.toml", telegram, hook, allowed_users=(), hook_secret="")
    proc = start_notifier(env, tmp_path, config)
    try:
        wait_ready(sync_redis, proc)
        log = proc.output()
        assert "notifier.telegram.allowed_users is empty: every Telegram command is refused" in log
        assert "notifier.webhook.url is set without a secret, so notifications are POSTed unsigned" in log
        telegram.push_message(ALLOWED, "/pause dca1")
        wait_until(
            lambda: "refused telegram command /pause from user 111" in proc.output(),
            timeout=20,
            what="the refusal",
        )
        assert "no allowed users configured" in proc.output()
        assert not sync_redis.exists("bot:dca1:control") and telegram.texts(ALLOWED) == []

        notify(sync_redis, "error", "unsigned on its way")
        posted = wait_until(lambda: hook.received, timeout=20, what="the unsigned post")
        assert "X-Automata-Signature" not in posted[0].headers
    finally:
        assert proc.terminate() == 0
        hook.stop()
