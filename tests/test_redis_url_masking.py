"""The Redis password never reaches a log (issue 13, finding 3): safe_url masks every form a URL
can carry it in, and the password of REDIS_URL or REDIS_PASSWORD_FILE is registered for masking,
so a service started with it logs `***` wherever it would appear."""

from __future__ import annotations

from pathlib import Path

import pytest

from shared.logs import redact
from shared.redis_conn import safe_url, with_credentials
from shared.redis_server import RedisServer
from tests.helpers.procs import base_env, python, wait_until

PW = "s3cret-redis-pw-0c1d"


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        (f"redis://app:{PW}@10.0.0.5:6379/0", "redis://app:***@10.0.0.5:6379/0"),
        (f"redis://:{PW}@10.0.0.5:6379/0", "redis://:***@10.0.0.5:6379/0"),
        (f"redis://{PW}@10.0.0.5/0", "redis://:***@10.0.0.5/0"),
        (f"rediss://app:{PW}@cache.example:6380/1", "rediss://app:***@cache.example:6380/1"),
        (f"redis://10.0.0.5:6379/0?password={PW}", "redis://10.0.0.5:6379/0?password=***"),
        (f"redis://10.0.0.5/0?db=2&Password={PW}&x=1", "redis://10.0.0.5/0?db=2&Password=***&x=1"),
        (f"unix:///run/redis.sock?password={PW}&db=0", "unix:///run/redis.sock?password=***&db=0"),
        (f"redis://app:{PW[:5]}@{PW[5:]}@h/0", "redis://app:***@h/0"),
        ("redis://127.0.0.1:6379/0", "redis://127.0.0.1:6379/0"),
        # PostgreSQL reads a lone user info as the user (peer or .pgpass login): shown, not hidden
        ("postgresql+psycopg://automata@db:5432/ledger", "postgresql+psycopg://automata@db:5432/ledger"),
        (f"postgresql://automata:{PW}@db/ledger", "postgresql://automata:***@db/ledger"),
        (f"redis://app:{PW}@h:port/0", "<unparsable url>"),
    ],
)
def test_safe_url_masks_every_form(url: str, shown: str) -> None:
    assert safe_url(url) == shown


def test_the_password_of_the_url_or_the_file_is_masked_in_logs(tmp_path: Path) -> None:
    with_credentials(f"redis://h/0?password={PW}", {})
    assert redact(f"error talking to redis with {PW}") == "error talking to redis with ***"
    other = "f1le-password-77aa"
    (tmp_path / "pw").write_text(other + "\n")
    url = with_credentials(
        "redis://h:6379/0", {"REDIS_USER": "app", "REDIS_PASSWORD_FILE": str(tmp_path / "pw")}
    )
    assert url == f"redis://app:{other}@h:6379/0" and safe_url(url) == "redis://app:***@h:6379/0"
    assert redact(f"AUTH app {other}") == "AUTH app ***"


def test_a_service_started_with_a_query_password_never_logs_it(tmp_path: Path) -> None:
    server = RedisServer(tmp_path / "redis", password=PW).start()
    try:
        env = base_env(f"redis://127.0.0.1:{server.port}/0?password={PW}", LOG_FORMAT="plain")
        service = python("services.market_gateway", env=env, log_path=tmp_path / "mg.log").start()
        try:
            wait_until(lambda: "ready" in service.output(), timeout=60, what="the market gateway ready")
        finally:
            assert service.terminate() == 0, service.output()[-2000:]
        assert "password=***" in service.output()
        assert PW not in service.output()
    finally:
        server.kill()
