"""`automata run --fresh` sets the previous run's ledger aside on SQLite and on PostgreSQL.

The fresh run's order ids start again at `{bot}-000001`. With DATABASE_URL on PostgreSQL the old
rows used to stay where the new run writes, so the new orders' updates were taken for repeats of
the old ones. Now the old tables move to a schema of their own (SQLite: the file is renamed),
readable there, and the new run's ledger starts empty; a database that refuses stops the fresh
start before Redis or the paper venue is forgotten.
"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import pytest
import sqlalchemy as sa
from rich.console import Console

from cli.paths import Home, UsageError
from cli.run import _forget_previous_run
from services.exchange_sim import store as venue_store
from shared.ledger import schema
from shared.ledger.aside import PREFIX, search_path_url, set_aside
from shared.ledger.db import open_ledger, upgrade
from shared.redis_server import free_port

T0 = datetime(2026, 12, 6, 4, 30, tzinfo=UTC)


def write_fill(url: str, price: str) -> None:
    """A ledger at head with one fill of order b1-000001 (the id every fresh run gives again)."""
    engine = open_ledger(url, source="test")
    upgrade(engine)
    with engine.begin() as conn:
        conn.execute(
            schema.fills.insert(),
            dict(venue="sim", symbol="BTCUSDT", trade_id="1", cid="b1-000001", cum_filled_qty=Decimal("0.5"),
                 bot="b1", side="BUY", price=Decimal(price), qty=Decimal("0.5"), quote_qty=Decimal("50"),
                 fee=Decimal("0.05"), fee_asset="USDT", time=T0),
        )  # fmt: skip
    engine.dispose()


def prices(url: str) -> list[Decimal]:
    """The fills' prices, as the ledger of a new run sees them (an empty database: migrated first)."""
    engine = open_ledger(url, source="test")
    upgrade(engine)
    try:
        with engine.connect() as conn:
            return list(conn.execute(sa.select(schema.fills.c.price)).scalars())
    finally:
        engine.dispose()


def kept_url(url: str, kept: str) -> str:
    """The URL that reads what set_aside kept: the renamed file, or the schema it names."""
    if url.startswith("sqlite"):
        return f"sqlite:///{kept}"
    name = kept.split('"')[1]
    assert name.startswith(PREFIX)
    return search_path_url(url, name)


def test_the_old_ledger_is_kept_readable_and_the_new_run_reuses_its_ids(ledger_url: str) -> None:
    write_fill(ledger_url, "100")
    kept = set_aside(ledger_url, "DATABASE_URL", when="20261206T043000")
    assert kept is not None
    assert prices(kept_url(ledger_url, kept)) == [Decimal("100")]
    write_fill(ledger_url, "200")  # the fresh run: the same order id, another order
    assert prices(ledger_url) == [Decimal("200")]
    assert set_aside(ledger_url, "DATABASE_URL", when="20261206T050000") is not None  # a second fresh run
    assert prices(ledger_url) == []


def test_nothing_to_set_aside_on_a_new_database(ledger_url: str) -> None:
    assert set_aside(ledger_url, "DATABASE_URL") is None


def home_with_a_run(root: Path) -> Home:
    home = Home(root)
    (home.redis_dir / "appendonlydir").mkdir(parents=True)
    (home.redis_dir / "appendonlydir" / "x.aof").write_text("x")
    home.venue_dir.mkdir(parents=True)
    (home.venue_dir / venue_store.SNAPSHOT).write_bytes(b"x")
    return home


@pytest.mark.parametrize("named_in", ["environment", ".env", "[ledger] url"])
def test_run_fresh_sets_the_services_ledger_aside(
    ledger_url: str, named_in: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Wherever the user named the ledger, the one the services open is set aside."""
    home = home_with_a_run(tmp_path / "home")
    for name in ("DATABASE_URL", "SIM_STATE_DIR", "AUTOMATA_CONFIG"):
        monkeypatch.delenv(name, raising=False)
    if named_in == "environment":
        monkeypatch.setenv("DATABASE_URL", ledger_url)
    elif named_in == ".env":
        (home.root / ".env").write_text(f"DATABASE_URL='{ledger_url}'\n")
    else:
        (home.root / "automata.toml").write_text(f'[ledger]\nurl = "{ledger_url}"\n')
    write_fill(ledger_url, "100")
    console = Console(record=True, width=300)
    _forget_previous_run(home, console)
    out = console.export_text()
    assert "the previous run's ledger is kept as" in out, out
    assert not home.redis_dir.exists() and not (home.venue_dir / venue_store.SNAPSHOT).exists()
    assert prices(ledger_url) == []
    if ledger_url.startswith("postgresql"):
        assert "options=-csearch_path%3Dledger_before_fresh_" in out, out
        # the way to read it, usable as shown: the test's server takes the user without a
        # password, so nothing is masked (a password would be: test_redis_url_masking.py)
        assert ledger_url.split("?")[0].split("//", 1)[1] in out and "***" not in out, out


def test_a_database_that_refuses_stops_the_fresh_start_before_anything_is_forgotten(
    pg_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    home = home_with_a_run(tmp_path / "home")
    away = sa.engine.make_url(pg_url).set(port=free_port(), password="s3cret-pw")
    monkeypatch.setenv("DATABASE_URL", away.render_as_string(hide_password=False))
    monkeypatch.delenv("SIM_STATE_DIR", raising=False)
    with pytest.raises(UsageError) as refused:
        _forget_previous_run(home, Console(record=True))
    message = str(refused.value)
    assert "DATABASE_URL" in message and "Nothing was removed" in message, message
    assert "s3cret-pw" not in message
    assert (home.redis_dir / "appendonlydir" / "x.aof").exists()
    assert (home.venue_dir / venue_store.SNAPSHOT).exists()
