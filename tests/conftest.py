"""Test fixtures: a real redis-server (AOF on) on a free port in a temporary directory.

Never the machine's Redis on 6379, never an in-memory stand-in. `redis_server.kill()` and
`.restart()` SIGKILL it and bring it back on the same data.
"""

from __future__ import annotations

import os
import signal
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
import redis
import redis.asyncio as aioredis

from shared.redis_server import RedisServer
from tests.helpers import acl, procs
from tests.helpers.notifier_fakes import HOOK_SECRET, TOKEN, FakeTelegram, WebhookReceiver
from tests.helpers.postgres import REQUIRE_ENV as REQUIRE_POSTGRES_ENV
from tests.helpers.postgres import SKIP_REASON as POSTGRES_SKIP_REASON
from tests.helpers.postgres import PostgresServer
from tests.helpers.procs import base_env
from tests.helpers.syncs import SyncAnswerer

# the web pages' real headless browser: fixtures `browser` and `page` (tests/helpers/browser.py)
pytest_plugins = ("tests.helpers.browser",)

# A test suite started in the background of a non-interactive shell (`make test &`, some CI
# runners) inherits SIGINT ignored, and so would every process a test starts: Python then
# installs no KeyboardInterrupt handler and a test's Ctrl-C (SIGINT) to `automata tail -f` goes
# unheard. A handler here (not SIG_IGN) makes each child start with the default disposition.
if signal.getsignal(signal.SIGINT) == signal.SIG_IGN:
    signal.signal(signal.SIGINT, signal.default_int_handler)


@pytest.fixture(autouse=True)
def _no_leftover_processes() -> Iterator[None]:
    """A test that fails half-way must not leave its services running into the next ones."""
    before = len(procs.LIVE)
    yield
    for proc in procs.LIVE[before:]:
        if not proc.shared:
            proc.kill()
    procs.LIVE[before:] = [p for p in procs.LIVE[before:] if p.shared]


@pytest.fixture
def redis_server(tmp_path: Path) -> Iterator[RedisServer]:
    """Redis under the generated ACL: the URL is admin's, each service a test starts connects
    as its own user (tests/helpers/acl.py); AUTOMATA_TEST_ACL=0 for no ACL."""
    if not acl.ENABLED:
        server = RedisServer(tmp_path / "redis").start()
        try:
            yield server
        finally:
            server.kill()
        return
    secured = acl.AclRedis(tmp_path / "redis")
    server = secured.start()
    try:
        yield server
    finally:
        secured.forget()
        server.kill()


@pytest.fixture
async def redis_client(redis_server: RedisServer) -> AsyncIterator[aioredis.Redis]:
    client = aioredis.Redis.from_url(redis_server.url)
    try:
        yield client
    finally:
        await client.aclose()


@pytest.fixture
def sync_redis(redis_server: RedisServer) -> Iterator[redis.Redis]:
    client = redis.Redis.from_url(redis_server.url)
    try:
        yield client
    finally:
        client.close()


@pytest.fixture
def answer_syncs(redis_server: RedisServer) -> Iterator[SyncAnswerer]:
    """Answers the sync a strategy runner asks for at start, for tests that run no order gateway."""
    answerer = SyncAnswerer(redis_server.url)
    answerer.start()
    try:
        yield answerer
    finally:
        answerer.stop()


@pytest.fixture
def env(redis_server: RedisServer) -> dict[str, str]:
    """Environment for service subprocesses pointed at the private Redis."""
    return base_env(redis_server.url)


@pytest.fixture(scope="session")
def postgres() -> Iterator[PostgresServer]:
    """A real PostgreSQL for the whole session (tests/helpers/postgres.py); skips when there is
    none, fails instead under AUTOMATA_REQUIRE_POSTGRES=1 (.ci/run)."""
    server = PostgresServer.locate()
    if server is None:
        if os.environ.get(REQUIRE_POSTGRES_ENV) == "1":
            pytest.fail(f"{REQUIRE_POSTGRES_ENV}=1 but no PostgreSQL: {POSTGRES_SKIP_REASON}")
        pytest.skip(POSTGRES_SKIP_REASON)
    try:
        yield server
    finally:
        server.close()


@pytest.fixture
def pg_url(postgres: PostgresServer) -> Iterator[str]:
    """A fresh, empty PostgreSQL database for one test: its postgresql+psycopg:// URL."""
    url = postgres.create_database()
    try:
        yield url
    finally:
        postgres.drop_database(url)


@pytest.fixture(params=["sqlite", "postgresql"])
def ledger_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """The test runs once on a new SQLite file and once on a new PostgreSQL database."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'ledger.sqlite3'}"
    return request.getfixturevalue("pg_url")


@pytest.fixture
def telegram() -> Iterator[FakeTelegram]:
    """A fake Telegram Bot API on loopback, for the notifier's tests."""
    fake = FakeTelegram(token=TOKEN).start()
    yield fake
    fake.stop()


@pytest.fixture
def hook() -> Iterator[WebhookReceiver]:
    """A webhook receiver on loopback that checks each post's signature, for the notifier's tests."""
    receiver = WebhookReceiver(secret=HOOK_SECRET).start()
    yield receiver
    receiver.stop()
