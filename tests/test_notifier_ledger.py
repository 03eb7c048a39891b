"""/profit, /daily and /trades against a real notifier process and the fake Bot API, reading a
ledger on SQLite (before and after it exists) and on a real PostgreSQL; a stranger's /profit
gets nothing."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import redis

from shared.redis_server import free_port
from tests.helpers.ledger_data import FILLS, seeded
from tests.helpers.notifier_fakes import CHATS, FakeTelegram, start_notifier, wait_ready, write_config
from tests.test_notifier_commands import ask

ALLOWED = CHATS[0]
STRANGER = 999


def test_ledger_commands_on_sqlite(
    env: dict[str, str], sync_redis: redis.Redis, tmp_path: Path, telegram: FakeTelegram
) -> None:
    path = tmp_path / "home" / "var" / "ledger.sqlite3"
    env = {**env, "AUTOMATA_HOME": str(tmp_path / "home")}  # the default ledger: under the home
    proc = start_notifier(env, tmp_path, write_config(tmp_path / "n.toml", telegram, None))
    try:
        wait_ready(sync_redis, proc)
        assert ask(telegram, proc, ALLOWED, "/profit").startswith("No ledger yet")
        assert not path.exists(), "asking must not create an empty ledger"
        seeded(f"sqlite:///{path}")

        telegram.push_message(STRANGER, "/profit")
        answer = ask(telegram, proc, ALLOWED, "/profit")
        assert (
            "b1: realised 1.25 USDT, unrealised 1.96 USDT, fees 0.21 USDT; 3 closed (67% won), 1 open"
            in answer
        )
        assert "total: realised 13.35 USDT" in answer and "unrealised -0.000035 BTC" in answer, answer
        assert telegram.texts(STRANGER) == []

        only = ask(telegram, proc, ALLOWED, "/profit g1")
        assert "g1: realised 12.10 USDT" in only and "b1" not in only, only

        # the periods up to today; or, on a later day than the seeded history's, up to its newest
        # fill, said on a first line
        newest = max(f["time"] for f in FILLS).date()
        before = datetime.now(UTC).date()
        days = [line[:10] for line in periods(ask(telegram, proc, ALLOWED, "/daily 3"))[1:]]
        after = datetime.now(UTC).date()  # a run across midnight
        anchors = (before, after, newest)
        assert days in ([str(today - timedelta(days=i)) for i in range(3)] for today in anchors), days

        weeks = periods(ask(telegram, proc, ALLOWED, "/weekly 2 b1"))
        assert weeks[0] == "Weekly profit (UTC, from Monday):" and len(weeks) == 3, weeks
        assert all(datetime.fromisoformat(line[:10]).weekday() == 0 for line in weeks[1:]), weeks
        months = periods(ask(telegram, proc, ALLOWED, "/monthly 1"))
        assert any(months[1].startswith(f"{day:%Y-%m}: ") for day in anchors), months

        trades = ask(telegram, proc, ALLOWED, "/trades 2 b1").splitlines()
        assert trades[1:] == [
            "12-06 00:00 b1 BUY 0.1 BTCUSDT at 100.00 (fee 0.01 USDT)",
            "12-05 23:59 b1 SELL 0.1 BTCUSDT at 110.00 (fee 0.01 USDT)",
        ], trades
        assert ask(telegram, proc, ALLOWED, "/trades 5 no-such-bot!") == "Not a bot id: 'no-such-bot!'"
        assert ask(telegram, proc, ALLOWED, "/trades abc").startswith("No fills of bot abc in the ledger")
        assert "/trades [N] [BOT]" in ask(telegram, proc, ALLOWED, "/help")
    finally:
        assert proc.terminate() == 0


def test_ledger_commands_on_postgresql(
    env: dict[str, str], sync_redis: redis.Redis, tmp_path: Path, telegram: FakeTelegram, pg_url: str
) -> None:
    seeded(pg_url)
    proc = start_notifier(
        {**env, "DATABASE_URL": pg_url}, tmp_path, write_config(tmp_path / "n.toml", telegram, None)
    )
    try:
        wait_ready(sync_redis, proc)
        answer = ask(telegram, proc, ALLOWED, "/profit")
        assert (
            "total: realised 13.35 USDT, unrealised 1.96 USDT, fees 1.02 USDT; 6 closed (83% won)" in answer
        )
        assert "x1 BUY 1 ETHBTC at 0.035" in ask(telegram, proc, ALLOWED, "/trades 3")
    finally:
        assert proc.terminate() == 0


def test_a_database_that_does_not_answer_is_said_and_its_log_line_says_what_to_fix(
    env: dict[str, str], sync_redis: redis.Redis, tmp_path: Path, telegram: FakeTelegram
) -> None:
    """The log named only the error's type ("OperationalError"): now the URL (password masked),
    where it came from and the likely cause, as the ledger service and the CLI say it."""
    url = f"postgresql+psycopg://automata:pw-s3cret@127.0.0.1:{free_port()}/ledger"  # nothing listens
    proc = start_notifier(
        {**env, "DATABASE_URL": url}, tmp_path, write_config(tmp_path / "n.toml", telegram, None)
    )
    try:
        wait_ready(sync_redis, proc)
        assert (
            ask(telegram, proc, ALLOWED, "/profit")
            == "The ledger cannot be read right now; try again shortly."
        )
        line = next(ln for ln in proc.output().splitlines() if "ledger read failed" in ln)
        assert "(DATABASE_URL)" in line and "is PostgreSQL running" in line, line
        assert "pw-s3cret" not in proc.output()
    finally:
        assert proc.terminate() == 0


def test_the_notifier_may_take_database_url_from_dotenv() -> None:
    from shared.config import NOTIFIER, env_allowed

    allowed = env_allowed(NOTIFIER)
    assert allowed is not None and "DATABASE_URL" in allowed


def periods(answer: str) -> list[str]:
    """A period answer's lines, without the note a history older than the window starts with."""
    lines = answer.splitlines()
    return lines[1:] if lines and lines[0].startswith("No fill in this window") else lines
