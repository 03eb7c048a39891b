"""The ledger's schema on SQLite and a real PostgreSQL: migrations create it (once), money and
times come back exactly, the unique keys that make ingestion exactly-once refuse a duplicate, and
a bad URL is a one-line error that names its source and never shows the password."""

from __future__ import annotations

import socket
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal

import pytest
import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError

from shared.config import ConfigError, LedgerConfig, load_config
from shared.ledger import schema
from shared.ledger.db import (
    HEAD,
    LedgerUrlError,
    current_revision,
    default_url,
    ledger_url,
    open_ledger,
    upgrade,
)
from tests.helpers.procs import ROOT

TABLES = {
    "candles", "orders", "fills", "cycles", "balances", "equity", "notifications", "ingested", "stream_gaps",
}  # fmt: skip
T0 = datetime(2026, 12, 6, 4, 30, 0, 123456, tzinfo=UTC)


@pytest.fixture
def engine(ledger_url: str) -> Iterator[sa.Engine]:
    engine = open_ledger(ledger_url, source="test")
    upgrade(engine)
    try:
        yield engine
    finally:
        engine.dispose()


def fill(**changes: object) -> dict[str, object]:
    row: dict[str, object] = dict(
        venue="sim", symbol="BTCUSDT", trade_id=None, cid="b1-000001", cum_filled_qty=Decimal("0.5"),
        bot="b1", side="BUY", price=Decimal("100"), qty=Decimal("0.5"), quote_qty=Decimal("50"),
        fee=Decimal("0.05"), fee_asset="USDT", time=T0,
    )  # fmt: skip
    row.update(changes)
    return row


def test_head_is_alembics_and_a_database_at_head_needs_no_alembic(tmp_path) -> None:
    from alembic.config import Config
    from alembic.script import ScriptDirectory

    from shared.ledger.db import MIGRATIONS

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    assert ScriptDirectory.from_config(config).get_current_head() == HEAD
    url = f"sqlite:///{tmp_path / 'l.sqlite3'}"
    upgrade(open_ledger(url))
    probe = (
        "import sys; from shared.ledger.db import open_ledger, upgrade; "
        f"upgrade(open_ledger({url!r})); print('alembic' in sys.modules)"
    )
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=60, cwd=ROOT)
    assert done.returncode == 0 and done.stdout.strip() == "False", done.stdout + done.stderr


def test_equity_rows_of_revision_0003_survive_the_upgrade(ledger_url: str) -> None:
    """0004 adds equity.unvalued: a ledger of the previous schema keeps its rows, fully valued."""
    engine = open_ledger(ledger_url, source="test")
    upgrade(engine, "0003")
    with engine.begin() as conn:
        conn.execute(
            sa.text("INSERT INTO equity (venue, quote_asset, value, at) VALUES ('sim', 'USDT', :v, :at)"),
            {"v": "1234.5" if engine.dialect.name == "sqlite" else Decimal("1234.5"),
             "at": T0.replace(tzinfo=None) if engine.dialect.name == "sqlite" else T0},
        )  # fmt: skip
    upgrade(engine)
    assert current_revision(engine) == HEAD
    with engine.connect() as conn:
        rows = conn.execute(
            sa.select(schema.equity.c.value, schema.equity.c.at, schema.equity.c.unvalued)
        ).all()
    assert rows == [(Decimal("1234.5"), T0, "")]
    engine.dispose()


def test_upgrade_creates_every_table_once(engine: sa.Engine) -> None:
    assert set(sa.inspect(engine).get_table_names()) >= TABLES
    assert current_revision(engine) == HEAD
    upgrade(engine)  # again: nothing to do, nothing lost
    with engine.begin() as conn:
        conn.execute(schema.ingested.insert().values(stream="orders:events:b1", entry_id="1-0", at=T0))
    upgrade(engine)
    with engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(schema.ingested)).scalar() == 1
    assert current_revision(engine) == HEAD


def test_money_and_times_round_trip_exactly(engine: sa.Engine) -> None:
    amounts = {
        "free": Decimal("0.000000000000000001"),  # 18 places: one wei
        "locked": Decimal("12345678901234567890.123456789012345678"),  # 38 digits
        "total": Decimal("-0.1"),
    }
    paris = timezone(timedelta(hours=1))
    with engine.begin() as conn:
        conn.execute(
            schema.balances.insert().values(venue="sim", asset="ETH", at=T0.astimezone(paris), **amounts)
        )
    with engine.connect() as conn:
        row = conn.execute(sa.select(schema.balances)).one()
    for name, value in amounts.items():
        assert getattr(row, name) == value and str(getattr(row, name).normalize()) == str(value.normalize())
    assert row.at == T0 and row.at.utcoffset() == timedelta(0)


def test_naive_times_and_floats_are_refused(engine: sa.Engine) -> None:
    with pytest.raises(sa.exc.StatementError, match="timezone-aware"), engine.begin() as conn:
        conn.execute(
            schema.equity.insert().values(
                venue="sim", quote_asset="USDT", value=Decimal(1), at=datetime(2026, 1, 1)
            )
        )
    with pytest.raises(sa.exc.StatementError, match="must be a Decimal"), engine.begin() as conn:
        conn.execute(schema.equity.insert().values(venue="sim", quote_asset="USDT", value=0.1, at=T0))


@pytest.mark.parametrize(
    ("table", "row", "duplicate"),
    [
        (schema.ingested, dict(stream="notify", entry_id="5-1", at=T0), {}),
        (schema.fills, fill(), dict(price=Decimal("101"))),  # the same (cid, cum_filled_qty)
        (schema.fills, fill(trade_id="77"), dict(cid="b1-000002")),  # the same venue trade
        (schema.orders, dict(cid="b1-000001", bot="b1", venue="sim", symbol="BTCUSDT", status="NEW",
                             orig_qty=Decimal(1), cum_filled_qty=Decimal(0), cum_quote_qty=Decimal(0),
                             fee=Decimal(0), created_at=T0, updated_at=T0), {}),
        (schema.candles, dict(venue="sim", symbol="BTCUSDT", interval="1m", open_time=T0,
                              close_time=T0 + timedelta(seconds=59.999), open=Decimal(1), high=Decimal(2),
                              low=Decimal(1), close=Decimal(2), volume=Decimal(3)), dict(close=Decimal(1))),
        (schema.notifications, dict(notification_id="n1", kind="fill", text="bought", at=T0,
                                    data={"qty": "0.5"}), dict(text="again")),
        (schema.stream_gaps, dict(stream="notify", first_id="9-0", reason="trimmed", reported_at=T0), {}),
    ],
    ids=["ingested", "fill-by-cum", "fill-by-trade-id", "orders", "candles", "notifications", "stream_gaps"],
)  # fmt: skip
def test_unique_keys_refuse_a_duplicate(
    engine: sa.Engine, table: sa.Table, row: dict[str, object], duplicate: dict[str, object]
) -> None:
    with engine.begin() as conn:
        conn.execute(table.insert().values(**row))
    with pytest.raises(IntegrityError), engine.begin() as conn:
        conn.execute(table.insert().values(**{**row, **duplicate}))
    with engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(table)).scalar() == 1


def test_fills_without_a_trade_id_are_distinct_rows(engine: sa.Engine) -> None:
    """NULL trade ids never collide: two growths of one order are two fills."""
    with engine.begin() as conn:
        conn.execute(schema.fills.insert().values(**fill()))
        conn.execute(schema.fills.insert().values(**fill(cum_filled_qty=Decimal("1.0"))))
        assert conn.execute(sa.select(sa.func.count()).select_from(schema.fills)).scalar() == 2


def test_sqlite_is_durable_and_waits_for_locks(tmp_path) -> None:
    engine = open_ledger(f"sqlite:///{tmp_path / 'deep' / 'l.sqlite3'}")
    with engine.connect() as conn:
        pragmas = {p: conn.exec_driver_sql(f"PRAGMA {p}").scalar() for p in
                   ("journal_mode", "synchronous", "foreign_keys", "busy_timeout")}  # fmt: skip
    engine.dispose()
    assert pragmas == {"journal_mode": "wal", "synchronous": 2, "foreign_keys": 1, "busy_timeout": 10_000}


@pytest.mark.parametrize(
    ("url", "problem"),
    [
        ("not a url", "not a database URL"),
        ("mysql://app:hunter2secret@db/x", "unsupported database 'mysql'"),
        ("postgresql+psycopg://app:hunter2secret@db:5432/", "no database named"),
        ("sqlite://", "no SQLite file named"),
    ],
)
def test_a_bad_url_is_one_clear_line(url: str, problem: str) -> None:
    with pytest.raises(LedgerUrlError) as caught:
        open_ledger(url, source="DATABASE_URL")
    message = str(caught.value)
    assert message.startswith("DATABASE_URL: ") and problem in message and "\n" not in message
    assert "hunter2secret" not in message and "postgresql+psycopg://" in message


def test_url_source_order(tmp_path) -> None:
    env = {"AUTOMATA_HOME": str(tmp_path)}
    assert ledger_url("", env) == (f"sqlite:///{tmp_path}/var/ledger.sqlite3", "the default")
    assert default_url(env) == f"sqlite:///{tmp_path}/var/ledger.sqlite3"
    assert ledger_url("sqlite:///a.db", env) == ("sqlite:///a.db", "[ledger] url")
    env["DATABASE_URL"] = "postgres://u:pw@h/db"
    assert ledger_url("sqlite:///a.db", env) == ("postgres://u:pw@h/db", "DATABASE_URL")


def test_ledger_config_masks_its_password_and_checks_feeds(tmp_path) -> None:
    path = tmp_path / "automata.toml"
    path.write_text(
        '[ledger]\nurl = "postgresql+psycopg://app:s3cretpw@db/ledger"\nbatch = 200\n'
        '[[ledger.candles]]\nvenue = "sim"\nsymbols = ["BTCUSDT"]\nintervals = ["1m", "1h"]\n'
    )
    cfg = load_config(path, env={})
    assert cfg.ledger.batch == 200 and cfg.ledger.candles[0].intervals == ["1m", "1h"]
    assert "s3cretpw" not in repr(cfg) and "app:***@db" in repr(cfg.ledger)
    assert LedgerConfig().url == ""
    path.write_text("[ledger]\nbatch = 0\n")
    with pytest.raises(ConfigError, match="ledger.batch"):
        load_config(path, env={})


def test_the_service_migrates_in_a_child_and_holds_no_alembic(ledger_url: str) -> None:
    """What the ledger service does at start (services/ledger/__main__.py open_database), then a
    write: Alembic stays out of the process; for SQLite so do psycopg and SQLAlchemy's
    PostgreSQL dialect (memory every ledger would hold: bench/footprint.py)."""
    probe = f"""
import sys
from decimal import Decimal
from services.ledger.writer import Writer
from shared.ledger.db import HEAD, at_head, open_ledger
from shared.ledger.migrate import upgrade_apart
from shared.messages import Notification
url = {ledger_url!r}
engine = open_ledger(url, source="test")
assert not at_head(engine)
upgrade_apart(url, "test")
assert at_head(engine)
writer = Writer(engine, lambda venue, symbol: None, lambda venue: "USDT")
assert writer.write("notify", "1-0", Notification(id="n1", kind="info", text="hello", data={{"a": 1}}))
print(sorted(m for m in ("alembic", "psycopg", "sqlalchemy.dialects.postgresql") if m in sys.modules))
"""
    done = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, timeout=120, cwd=ROOT
    )
    assert done.returncode == 0, done.stdout + done.stderr
    held = ["psycopg", "sqlalchemy.dialects.postgresql"] if ledger_url.startswith("postgresql") else []
    assert done.stdout.strip() == str(held)
    engine = open_ledger(ledger_url)
    assert current_revision(engine) == HEAD
    with engine.connect() as conn:
        assert conn.execute(sa.select(schema.notifications.c.data)).scalar() == {"a": 1}
    engine.dispose()


def test_migrations_apart_report_an_unreachable_database_as_unavailable(tmp_path) -> None:
    from shared.ledger.migrate import MigrationUnavailable, upgrade_apart

    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    with pytest.raises(MigrationUnavailable, match="OperationalError") as caught:
        upgrade_apart(f"postgresql://u:secret@127.0.0.1:{port}/db", "test")
    assert "secret" not in str(caught.value)
