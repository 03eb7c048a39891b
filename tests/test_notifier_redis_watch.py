"""The notifier tells the user directly when Redis refuses writes (a full disk) or is away: no
notice about Redis can go through Redis's own `notify` stream (services/notifier/redis_watch.py).

A real notifier process, a real redis-server whose disk fills (tests/helpers/full_disk.py) and
is killed, the webhook receiver and the fake Telegram of the other notifier tests."""

from __future__ import annotations

from pathlib import Path

import redis

from services.notifier.redis_watch import REFUSING, UNREACHABLE
from tests.helpers.full_disk import start_fillable
from tests.helpers.notifier_fakes import (
    CHATS,
    FakeTelegram,
    WebhookReceiver,
    start_notifier,
    wait_ready,
    write_config,
)
from tests.helpers.procs import base_env, wait_until


def kinds(hook: WebhookReceiver) -> list[str]:
    return [d["kind"] for d in hook.docs()]


def test_a_full_disk_and_a_dead_redis_are_told_without_redis(
    tmp_path: Path, telegram: FakeTelegram, hook: WebhookReceiver
) -> None:
    server = start_fillable(tmp_path / "redis")
    client = redis.Redis.from_url(server.url)
    config = write_config(tmp_path / "n.toml", telegram, hook, "redis_alert_after_s = 2")
    proc = start_notifier(base_env(server.url), tmp_path, config)
    try:
        wait_ready(client, proc)
        server.fill(client)  # the AOF cannot grow: every write is refused
        wait_until(lambda: REFUSING in kinds(hook), timeout=20, what="the webhook told of the full disk")
        note = next(d for d in hook.docs() if d["kind"] == REFUSING)
        assert "disk full" in note["text"] and note["level"] == "error"
        for chat in CHATS:
            wait_until(lambda c=chat: any("refuses writes" in t for t in telegram.texts(c)),
                       what=f"Telegram chat {chat} told")  # fmt: skip
        # the console channel too (told last: the channels are told in turn)
        wait_until(lambda: "[redis_refusing_writes]" in proc.output(), what="the console line")
        assert kinds(hook).count(REFUSING) == 1, "told once, not at every refused heartbeat"

        server.make_room(client)
        wait_until(lambda: kinds(hook)[-1:] == ["redis_recovered"], timeout=20, what="told it is over")

        server.kill()  # Redis gone: told once it has been away redis_alert_after_s
        wait_until(lambda: UNREACHABLE in kinds(hook), timeout=30, what="told Redis cannot be reached")
        assert proc.alive(), "the notifier waits for Redis, it does not exit"
        server.start()
        wait_until(lambda: kinds(hook)[-1:] == ["redis_recovered"], timeout=30, what="told it is back")
        assert kinds(hook) == [REFUSING, "redis_recovered", UNREACHABLE, "redis_recovered"]
    finally:
        proc.terminate()
        client.close()
        server.kill()
