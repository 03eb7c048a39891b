"""Webhook requests are signed over a timestamp and the body (issue 13, finding 5), checked by a
real receiver over local HTTP with `verify_webhook`: a fresh request verifies; the same request
replayed after the window, a tampered body or a foreign secret do not; `automata doctor` warns
of a webhook without a secret (the notifier's own start-up warning is in
test_notifier_telegram_auth.py)."""

from __future__ import annotations

import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from cli.doctor import WARN, check_config
from services.notifier.webhook import (
    ID_HEADER,
    REPLAY_WINDOW_S,
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    sign,
    verify_webhook,
)
from shared.codec import encode
from shared.messages import Notification
from tests.helpers.notifier_fakes import (
    HOOK_SECRET,
    TOKEN,
    FakeTelegram,
    Received,
    WebhookReceiver,
    start_notifier,
    wait_ready,
    write_config,
)
from tests.helpers.procs import wait_until


@pytest.fixture
def hook() -> Iterator[WebhookReceiver]:
    receiver = WebhookReceiver(secret=HOOK_SECRET).start()
    yield receiver
    receiver.stop()


def post_again(hook: WebhookReceiver, request: Received, body: bytes | None = None) -> int:
    """POST a captured request to the receiver again (optionally with another body): its status."""
    headers = {
        k: v for k, v in request.headers.items() if k in (ID_HEADER, TIMESTAMP_HEADER, SIGNATURE_HEADER)
    }
    req = urllib.request.Request(hook.url, data=body or request.body, headers=headers, method="POST")
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            return resp.status
    except urllib.error.HTTPError as exc:
        return exc.code


def test_a_signed_request_verifies_and_a_replay_or_a_tampered_body_does_not(
    env: dict[str, str], sync_redis: redis.Redis, tmp_path: Path, hook: WebhookReceiver
) -> None:
    telegram = FakeTelegram(token=TOKEN).start()
    proc = start_notifier(env, tmp_path, write_config(tmp_path / "n.toml", telegram, hook))
    try:
        wait_ready(sync_redis, proc)
        note = Notification(
            id=uuid.uuid4().hex, kind="error", text="order rejected", ts=int(time.time() * 1000)
        )
        sync_redis.xadd("notify", encode(note))
        got = wait_until(lambda: hook.received, timeout=20, what="the webhook post")[0]
    finally:
        assert proc.terminate() == 0
        telegram.stop()
    assert got.signed_ok and got.doc["id"] == note.id
    stamp = int(got.headers[TIMESTAMP_HEADER])
    assert abs(stamp - time.time()) < 60
    assert got.headers[SIGNATURE_HEADER] == sign(HOOK_SECRET, stamp, got.body)
    assert got.headers[SIGNATURE_HEADER].startswith("v1=")

    assert post_again(hook, got) == 200, "within the window the receiver accepts it (and dedupes by id)"
    tampered = got.body.replace(b"order rejected", b"order filled!!")
    assert post_again(hook, got, tampered) == 401, "a tampered body fails"
    hook.clock_offset = REPLAY_WINDOW_S + 60
    assert post_again(hook, got) == 401, "the same request replayed after the window fails"
    hook.clock_offset = -(REPLAY_WINDOW_S + 60)
    assert post_again(hook, got) == 401, "a timestamp too far ahead of the receiver's clock fails"


def test_verify_webhook_is_what_a_receiver_needs() -> None:
    body = b'{"id":"n1","text":"hello"}'
    now = 1_800_000_000
    headers = {TIMESTAMP_HEADER: str(now), SIGNATURE_HEADER: sign("s3cret-value", now, body)}
    assert verify_webhook("s3cret-value", headers, body, now=now + 299)
    assert verify_webhook("s3cret-value", {k.lower(): v for k, v in headers.items()}, body, now=now)
    assert not verify_webhook("s3cret-value", headers, body, now=now + 301), "old"
    assert not verify_webhook("s3cret-value", headers, body, now=now + 61, window=60)
    assert not verify_webhook("s3cret-value", headers, body + b" ", now=now), "tampered body"
    assert not verify_webhook("another-secret", headers, body, now=now), "another secret"
    assert not verify_webhook("", headers, body, now=now), "no secret, nothing verifies"
    # the timestamp is covered: moving it forward to pass the window breaks the signature
    moved = {**headers, TIMESTAMP_HEADER: str(now + 600)}
    assert not verify_webhook("s3cret-value", moved, body, now=now + 600)
    for missing in (TIMESTAMP_HEADER, SIGNATURE_HEADER):
        assert not verify_webhook(
            "s3cret-value", {k: v for k, v in headers.items() if k != missing}, body, now=now
        )
    for stamp in ("", "-1", "1e9", " 1800000000", "１８００", "9" * 40):
        assert not verify_webhook("s3cret-value", {**headers, TIMESTAMP_HEADER: stamp}, body, now=now)
    assert not verify_webhook("s3cret-value", {**headers, SIGNATURE_HEADER: "v1=é"}, body, now=now)


def test_doctor_warns_of_a_webhook_without_a_secret(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    config = tmp_path / "automata.toml"
    config.write_text('[notifier.webhook]\nurl = "http://127.0.0.1:9/hook"\n')
    monkeypatch.chdir(tmp_path)  # no .env of the checkout
    monkeypatch.setenv("AUTOMATA_CONFIG", str(config))
    monkeypatch.delenv("NOTIFIER_WEBHOOK_SECRET", raising=False)
    checks, cfg = check_config()
    assert cfg is not None
    warned = [c for c in checks if c.mark == WARN and c.name == "notifier"]
    assert len(warned) == 1 and "without a secret" in warned[0].detail
    config.write_text('[notifier.webhook]\nurl = "http://127.0.0.1:9/hook"\nsecret = "hook-secret-0123"\n')
    assert not [c for c in check_config()[0] if c.mark == WARN]
