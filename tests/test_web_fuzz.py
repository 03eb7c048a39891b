"""The web API against its own OpenAPI document, with schemathesis: the real app (in process,
through ASGI) on a real Redis and a real SQLite ledger holding a history and a bot.

- With the token, no generated input (valid or not) makes a 500.
- Without credentials, no control action succeeds: every one is refused (401/403) and nothing
  reaches a control or command stream.

`make test` runs a few examples per operation, derandomized (well under a minute); `make soak`
(the soak marker) runs 500 random ones per operation. GET /api/live is left out: it is an endless stream
(tests/test_web_live.py tests it).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import redis
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import not_a_server_error

from services.web.app import create_app
from services.web.settings import WebSettings
from shared.redis_server import RedisServer
from tests.helpers import ledger_data
from tests.helpers.web import TOKEN, put_bot

AUTH = {"authorization": f"Bearer {TOKEN}"}
EXAMPLES = int(os.environ.get("AUTOMATA_FUZZ_EXAMPLES") or 8)  # per operation, in make test
SOAK_EXAMPLES = 500


def budget(examples: int, *, random: bool) -> settings:
    return settings(max_examples=examples, deadline=None, derandomize=not random, database=None, print_blob=True,
                    suppress_health_check=list(HealthCheck))  # fmt: skip


@pytest.fixture
def web_schema(tmp_path: Path) -> Iterator[schemathesis.BaseSchema]:
    server = RedisServer(tmp_path / "redis").start()
    try:
        url = f"sqlite:///{tmp_path / 'ledger.sqlite3'}"
        ledger_data.seeded(url)
        r = redis.Redis.from_url(server.url)
        put_bot(r, "b1")
        r.close()
        app = create_app(WebSettings(redis_url=server.url, ledger_url=url, token=TOKEN))
        yield schemathesis.openapi.from_asgi("/api/openapi.json", app).exclude(path="/api/live")
    finally:
        server.kill()


def fuzz(
    schema: schemathesis.BaseSchema, test: Callable[[schemathesis.Case], None], *, examples: int = EXAMPLES
) -> None:
    """Run `test` on generated cases of every operation of `schema` (a failure names the operation)."""
    for result in schema.get_all_operations():
        operation = result.ok()

        @budget(examples, random=examples > EXAMPLES)
        @given(case=operation.as_strategy())
        def run(case: schemathesis.Case) -> None:
            test(case)

        try:
            run()
        except Exception as exc:
            raise AssertionError(f"{operation.label}: {exc}") from exc


def no_server_error(case: schemathesis.Case) -> None:
    case.call_and_validate(headers=AUTH, checks=[not_a_server_error])


def test_no_input_makes_a_server_error(web_schema: schemathesis.BaseSchema) -> None:
    fuzz(web_schema, no_server_error)


@pytest.mark.soak
def test_no_input_makes_a_server_error_long(web_schema: schemathesis.BaseSchema) -> None:
    fuzz(web_schema, no_server_error, examples=SOAK_EXAMPLES)


def test_no_control_action_without_credentials(web_schema: schemathesis.BaseSchema) -> None:
    app_redis = redis.Redis.from_url(web_schema.app.state.ctx.settings.redis_url)

    def refused(case: schemathesis.Case) -> None:
        case.headers = {
            k: v for k, v in (case.headers or {}).items() if k.lower() not in ("authorization", "cookie")
        }
        reply = case.call()
        assert reply.status_code in (401, 403), (reply.status_code, reply.text)

    try:
        fuzz(web_schema.include(tag="control"), refused)
        touched = [*app_redis.scan_iter(match="bot:*:control"), *app_redis.scan_iter(match="orders:cmd:*")]
    finally:
        app_redis.close()
    assert touched == []
