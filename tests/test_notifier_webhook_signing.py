"""Webhook requests are signed over a timestamp and the body (issue 13, finding 5): what
`verify_webhook` accepts and refuses, and `automata doctor`'s warning of a webhook without a
secret. A real notifier's requests replayed and tampered with against a real receiver are in
test_notifier.py; the notifier's start-up warning is in test_notifier_telegram_auth.py."""

from __future__ import annotations

from pathlib import Path

import pytest

from cli.doctor import WARN, check_config
from services.notifier.webhook import (
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    sign,
    verify_webhook,
)


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
