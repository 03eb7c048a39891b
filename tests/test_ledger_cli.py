"""`automata trades / profit / equity / export trades` as a user runs them: real subprocesses
against a SQLite file under AUTOMATA_HOME and a real PostgreSQL named by DATABASE_URL, both
holding the history of tests/helpers/ledger_data.py."""

from __future__ import annotations

import csv
import os
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import orjson
import pytest

from tests.helpers.cli import assert_fits, cli
from tests.helpers.ledger_data import seeded
from tests.helpers.procs import ROOT

D = Decimal


def ledger_env(home: Path, **extra: str) -> dict[str, str]:
    """No run, no Redis, no DATABASE_URL: only the ledger under `home` (or the one extra names)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AUTOMATA_", "REDIS_", "DATABASE_URL"))}
    env.update(AUTOMATA_HOME=str(home), AUTOMATA_CONFIG=str(ROOT / "tests" / "data" / "none.toml"))
    env.update(extra)
    return env


def profit_figures(env: dict[str, str]) -> dict[str, tuple[str, ...]]:
    result = cli(env, "profit", "--json")
    assert result.returncode == 0, result.stdout + result.stderr
    doc = orjson.loads(result.stdout)
    return {
        f"{p['bot']} {p['quote_asset']}": (p["realised"], p["unrealised"], p["fees"], p["win_rate"])
        for p in doc["bots"] + doc["total"]
    }


EXPECTED = {
    "b1 USDT": ("1.250000000000000001", "1.96", "0.21", str(D(2) / 3)),
    "g1 USDT": ("12.1", "0", "0.81", "1"),
    "x1 BTC": ("0", "-0.000035", "0.000035", None),
    "total USDT": ("13.350000000000000001", "1.96", "1.02", str(D(5) / 6)),
    "total BTC": ("0", "-0.000035", "0.000035", None),
}


def test_no_ledger_yet_is_one_line_and_creates_nothing(tmp_path: Path) -> None:
    result = cli(ledger_env(tmp_path), "profit")
    path = tmp_path / "var" / "ledger.sqlite3"
    assert result.returncode == 1
    assert (result.stdout + result.stderr).strip() == (
        f"no ledger yet at {path}: it fills once the ledger service runs (automata run starts it)"
    )
    assert not path.exists()


def test_the_readers_on_a_sqlite_ledger(tmp_path: Path) -> None:
    seeded(f"sqlite:///{tmp_path / 'var' / 'ledger.sqlite3'}")
    env = ledger_env(tmp_path)
    assert profit_figures(env) == EXPECTED

    for args in (
        ("profit",),
        ("profit", "--daily"),
        ("trades",),
        ("equity", "--since", "2026-12-01"),
        ("profit", "--bot", "b1"),
    ):
        result = cli(env, *args, columns=80)
        assert result.returncode == 0, result.stdout + result.stderr
        assert_fits(result.stdout)
    table = cli(env, "profit", columns=80).stdout
    assert "1.96 USDT" in table and "candle 1m" in table and "last fill" in table and "83%" in table

    week = orjson.loads(cli(env, "profit", "--weekly", "-n", "3", "--json").stdout)
    starts = [datetime.fromisoformat(b["start"]) for b in week["buckets"]]
    assert len(starts) == 3 and all(s.weekday() == 0 and s.hour == 0 for s in starts)
    assert [a - b for a, b in zip(starts, starts[1:], strict=False)] == [timedelta(weeks=1)] * 2
    before = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    days = orjson.loads(cli(env, "profit", "--daily", "--json").stdout)["buckets"]
    after = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)  # a run across midnight
    starts = [datetime.fromisoformat(b["start"]) for b in days]
    # the 7 days up to today; or, once the seeded history is older than that (a later run), the
    # 7 days up to its newest fill
    [newest] = orjson.loads(cli(env, "trades", "-n", "1", "--json").stdout)
    last_day = datetime.fromisoformat(newest["time"]).replace(hour=0, minute=0, second=0, microsecond=0)
    assert starts in ([today - timedelta(days=i) for i in range(7)] for today in (before, after, last_day))

    fills = orjson.loads(cli(env, "trades", "--bot", "b1", "-n", "2", "--json").stdout)
    assert [(f["cid"], f["side"], f["price"], f["quote_qty"]) for f in fills] == [
        ("b1-000001", "BUY", "100", "10"),
        ("b1-000002", "SELL", "110", "11"),
    ]
    assert fills[1]["time"] == "2026-12-05T23:59:59.999Z"
    since = orjson.loads(cli(env, "trades", "--since", "2026-12-03", "--symbol", "ETHBTC", "--json").stdout)
    assert [f["cid"] for f in since] == ["x1-000004"]

    [eq] = orjson.loads(cli(env, "equity", "--venue", "sim", "--since", "2026-12-01", "--json").stdout)
    assert (eq["last"]["value"], eq["high"]["value"], eq["drawdown"], eq["drawdown_pct"]) == (
        "1050",
        "1100",
        "110",
        "10",
    )
    assert (eq["unvalued"], eq["dropped"], eq["first"]["value"]) == (["ETH"], 1, "1000")
    shown = cli(env, "equity", "--since", "2026-12-01", columns=80).stdout
    assert "excludes: ETH (no USDT price known" in shown and "1 earlier point(s)" in shown

    bad = cli(env, "trades", "--since", "yesterday")
    assert bad.returncode == 2 and "--since: 'yesterday' is not a UTC date" in bad.stdout + bad.stderr
    both = cli(env, "profit", "--daily", "--weekly")
    assert both.returncode == 2 and "choose one of" in both.stdout + both.stderr


def test_export_trades_to_csv(tmp_path: Path) -> None:
    seeded(f"sqlite:///{tmp_path / 'var' / 'ledger.sqlite3'}")
    env = ledger_env(tmp_path)
    target = tmp_path / "trades.csv"
    result = cli(env, "export", "trades", "--csv", str(target))
    assert result.returncode == 0 and "5 fills written" in result.stdout, result.stdout + result.stderr
    with target.open(newline="", encoding="utf-8") as f:
        rows = list(csv.reader(f))
    assert rows[0] == [
        "time_utc", "venue", "symbol", "bot", "side", "price", "quantity", "quote_amount", "fee", "fee_asset",
        "fee_in_quote", "order_cid", "trade_id",
    ]  # fmt: skip
    assert [r[11] for r in rows[1:]] == ["b1-000005", "g1-000003", "x1-000004", "b1-000002", "b1-000001"]
    assert rows[3] == [
        "2026-12-03T00:00:00.000Z", "sim", "ETHBTC", "x1", "BUY", "0.035", "1", "0.035", "0.001", "ETH",
        "0.000035", "x1-000004", "",
    ]  # fmt: skip
    assert rows[1][10] == "" and rows[1][9] == "BNB"  # a fee in BNB has no quote value to give

    cli(
        env,
        "export",
        "trades",
        "--csv",
        str(target),
        "--bot",
        "b1",
        "--since",
        "2026-12-01",
        "--until",
        "2026-12-06",
    )
    with target.open(newline="", encoding="utf-8") as f:
        assert [r[11] for r in list(csv.reader(f))[1:]] == ["b1-000002"]
    missing = cli(env, "export", "trades", "--csv", str(tmp_path / "nodir" / "x.csv"))
    assert missing.returncode == 2 and "no such directory" in missing.stdout + missing.stderr


def test_the_readers_on_postgresql_by_database_url(tmp_path: Path, pg_url: str) -> None:
    seeded(pg_url)
    env = ledger_env(tmp_path, DATABASE_URL=pg_url)
    assert profit_figures(env) == EXPECTED
    result = cli(env, "trades", "-n", "3", columns=80)
    assert result.returncode == 0 and "3 newest fills" in result.stdout, result.stdout + result.stderr
    assert_fits(result.stdout)
    assert not (tmp_path / "var").exists(), "DATABASE_URL wins: no SQLite file made"

    down = cli(ledger_env(tmp_path, DATABASE_URL="postgresql://u:hunter2secret@127.0.0.1:1/db"), "profit")
    text = down.stdout + down.stderr
    assert down.returncode == 1 and "cannot read the ledger at" in text and "Traceback" not in text, text
    assert "hunter2secret" not in text
    bad = cli(ledger_env(tmp_path, DATABASE_URL="mysql://x/y"), "trades")
    assert bad.returncode == 2 and "DATABASE_URL" in bad.stdout + bad.stderr


@pytest.mark.parametrize(
    ("url", "code", "said"),
    [
        ("app:hunter2secret@127.0.0.1", 2, "not a database URL"),  # no scheme: read as `app://...`
        ("postgresql://app:pw@hunter2secret@127.0.0.1:1/db", 2, "percent-encoded, `%40`"),
        ("postgresql://app:pw#hunter2secret@127.0.0.1:1/db", 1, "is PostgreSQL running at the host and port"),
        ("postgresql://app:pw/hunter2secret@127.0.0.1:1/db", 1, "is PostgreSQL running at the host and port"),
    ],
)
def test_a_password_never_shows_however_the_url_is_written(
    tmp_path: Path, url: str, code: int, said: str
) -> None:
    """A password with `@`, `#` or `/` unencoded, or a URL without its scheme, used to be printed
    whole or in part (as a path, a fragment or the host psycopg could not resolve)."""
    result = cli(ledger_env(tmp_path, DATABASE_URL=url), "trades")
    text = result.stdout + result.stderr
    assert result.returncode == code and "DATABASE_URL" in text and said in text, text
    assert "hunter2secret" not in text and "Traceback" not in text, text


def test_a_missing_database_names_the_variable_to_fix(tmp_path: Path, pg_url: str) -> None:
    from sqlalchemy.engine import make_url

    url = make_url(pg_url).set(database="no_such_ledger").render_as_string(hide_password=False)
    result = cli(ledger_env(tmp_path, DATABASE_URL=url), "profit")
    text = result.stdout + result.stderr
    assert result.returncode == 1 and '"no_such_ledger" does not exist' in text, text
    assert "(DATABASE_URL)" in text and "fix the name in DATABASE_URL" in text, text


@pytest.mark.parametrize("command", ["trades", "equity"])
def test_an_empty_ledger_says_so(tmp_path: Path, command: str) -> None:
    from shared.ledger.db import open_ledger, upgrade

    engine = open_ledger(f"sqlite:///{tmp_path / 'var' / 'ledger.sqlite3'}")
    upgrade(engine)
    engine.dispose()
    result = cli(ledger_env(tmp_path), command)
    assert result.returncode == 0 and result.stdout.startswith("no "), result.stdout + result.stderr


def test_a_history_older_than_the_window_is_shown_up_to_its_newest_record(tmp_path: Path) -> None:
    """The paper venue's market runs on its own clock (the demo's from 2024-01-01): a window
    ending now would show only empty periods, so it ends at the ledger's newest fill instead."""
    from shared.ledger import schema
    from shared.ledger.db import open_ledger, upgrade
    from tests.helpers.ledger_data import _cycle, _fill

    engine = open_ledger(f"sqlite:///{tmp_path / 'var' / 'ledger.sqlite3'}", source="test")
    upgrade(engine)
    closed = datetime(2024, 1, 1, 10, tzinfo=UTC)
    with engine.begin() as conn:
        conn.execute(schema.cycles.insert(), [_cycle("b1", 1, closed, "1.5", "0.1")])
        conn.execute(schema.fills.insert(), [_fill(1, "b1", "BTCUSDT", "SELL", closed, "110", "0.1")])
    engine.dispose()
    env = ledger_env(tmp_path)
    shown = cli(env, "profit", "--daily", "-n", "2", columns=120).stdout
    assert "no fill in the last 2 days: shown up to the newest, 2024-01-01 10:00:00 UTC" in shown
    days = orjson.loads(cli(env, "profit", "--daily", "-n", "2", "--json").stdout)["buckets"]
    assert [b["start"][:10] for b in days] == ["2024-01-01", "2023-12-31"]
    assert days[0]["profit"] == {"USDT": "1.5"} and days[0]["closed_cycles"] == 1 and days[0]["fills"] == 1


def test_ledger_sync_without_its_venue_or_a_running_system_is_one_line(tmp_path: Path) -> None:
    env = ledger_env(tmp_path)
    unknown = cli(env, "ledger", "sync", "nope")
    assert unknown.returncode == 2
    assert (unknown.stdout + unknown.stderr).strip() == "venue 'nope' is not configured (venues: sim)"
    down = cli(env, "ledger", "sync")
    said = (down.stdout + down.stderr).strip()
    assert down.returncode == 1 and said.startswith(f"nothing running under {tmp_path}") and "\n" not in said


def test_equity_older_than_the_window_keeps_its_json_clean_and_its_venue(tmp_path: Path) -> None:
    """Equity older than the window: `--json` printed the "shown up to the newest" line before
    the JSON on stdout (no longer JSON), and `--venue nope` said it showed one venue's values up
    to another's newest, then nothing."""
    from shared.ledger import schema
    from shared.ledger.db import open_ledger, upgrade

    engine = open_ledger(f"sqlite:///{tmp_path / 'var' / 'ledger.sqlite3'}", source="test")
    upgrade(engine)
    at = datetime(2024, 1, 1, 10, tzinfo=UTC)
    with engine.begin() as conn:
        conn.execute(
            schema.equity.insert(), [dict(venue="sim", quote_asset="USDT", at=at, value=D(5000), unvalued="")]
        )
    engine.dispose()
    env = ledger_env(tmp_path)
    [doc] = orjson.loads(cli(env, "equity", "--json").stdout)
    assert doc["last"]["value"] == "5000"
    other = cli(env, "equity", "--venue", "nope", columns=120).stdout
    assert "shown up to the newest" not in other and other.startswith("no equity in the ledger"), other
    assert orjson.loads(cli(env, "equity", "--venue", "nope", "--json").stdout) == []
