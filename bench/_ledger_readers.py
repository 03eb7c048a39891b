"""The ledger readers' benchmark: p50/p99 of the `automata profit --daily` query over 100,000 fills.

A ledger of 100,000 fills of 5 bots (one cycle closed per two fills) spread over a year, written
straight with the schema, then `shared.ledger.profit.by_period(conn, "daily")` (what `automata
profit --daily` runs, process start aside) timed on a fresh connection each run; also the
worst case of every fill in the 7 days shown, and the `automata profit` summary. On SQLite in a
temporary directory, and on PostgreSQL when one is found (tests/helpers/postgres.py: its own
cluster, or TEST_DATABASE_URL). Target: p99 < 100 ms for the daily query.

A helper module (leading underscore: `make bench` does not run it alone); bench/ledger.py may
call `reader_times(url)`, or run it: `.venv/bin/python bench/_ledger_readers.py`.
"""

from __future__ import annotations

import json
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from shared.ledger import profit, schema  # noqa: E402
from shared.ledger.db import open_ledger, upgrade  # noqa: E402

NOW = datetime(2026, 12, 6, 12, tzinfo=UTC)
D = Decimal


def seed(url: str, fills: int, span: timedelta) -> None:
    engine = open_ledger(url, source="bench")
    upgrade(engine)
    step = span / fills
    rows = [
        dict(
            venue="sim", symbol="BTCUSDT", trade_id=str(i), cid=f"b{i % 5}-{i:06d}", cum_filled_qty=D("0.001"),
            bot=f"b{i % 5}", side="SELL" if i % 2 else "BUY", price=D("42016.04"), qty=D("0.001"),
            quote_qty=D("42.01604"), fee=D("0.04201604"), fee_asset="USDT", fee_in_quote=D("0.04201604"),
            is_maker=True, time=NOW - step * i,
        )
        for i in range(fills)
    ]  # fmt: skip
    cycles = [
        dict(
            bot=f"b{i % 5}", number=i, venue="sim", symbol="BTCUSDT", quote_asset="USDT",
            opened_at=NOW - step * (2 * i + 1), closed_at=NOW - step * 2 * i, buys=1, sells=1,
            bought_qty=D("0.001"), sold_qty=D("0.001"), spent=D("42.01604"), received=D("42.43620"),
            fees=D("0.08445224"), profit=D("0.33570776") if i % 4 else D("-0.1"),
        )
        for i in range(fills // 2)
    ]  # fmt: skip
    with engine.begin() as conn:
        for start in range(0, fills, 10_000):
            conn.execute(schema.fills.insert(), rows[start : start + 10_000])
        for start in range(0, len(cycles), 10_000):
            conn.execute(schema.cycles.insert(), cycles[start : start + 10_000])
    engine.dispose()


def _times(url: str, query: object, runs: int) -> dict[str, float]:
    engine = open_ledger(url, source="bench")
    took = []
    try:
        for _ in range(runs):
            start = time.perf_counter()
            with engine.connect() as conn:
                query(conn)  # type: ignore[operator]
            took.append((time.perf_counter() - start) * 1000)
    finally:
        engine.dispose()
    took.sort()
    return {
        "p50_ms": round(took[len(took) // 2], 2),
        "p99_ms": round(took[min(len(took) - 1, int(len(took) * 0.99))], 2),
    }


def reader_times(
    url: str, fills: int = 100_000, span: timedelta = timedelta(days=365), runs: int = 50
) -> dict:
    """Seed an empty ledger at url, then time the readers on it."""
    seed(url, fills, span)
    return {
        "profit_daily": _times(url, lambda conn: profit.by_period(conn, "daily", now=NOW), runs),
        "profit": _times(url, lambda conn: profit.profit(conn), max(5, runs // 10)),
    }


def main() -> None:
    results: dict[str, dict] = {}
    with tempfile.TemporaryDirectory(prefix="automata-bench-") as tmp:
        results["sqlite"] = reader_times(f"sqlite:///{tmp}/year.sqlite3")
        results["sqlite, all in 7 days"] = reader_times(
            f"sqlite:///{tmp}/week.sqlite3", span=timedelta(days=7)
        )
    try:
        from tests.helpers.postgres import PostgresServer

        server = PostgresServer.locate()
    except ImportError:
        server = None
    if server is not None:
        try:
            results["postgresql"] = reader_times(server.create_database())
            results["postgresql, all in 7 days"] = reader_times(
                server.create_database(), span=timedelta(days=7)
            )
        finally:
            server.close()
    else:
        print("no PostgreSQL found (see tests/helpers/postgres.py): SQLite only")
    for name, figures in results.items():
        line = ", ".join(f"{q} p50 {t['p50_ms']} ms p99 {t['p99_ms']} ms" for q, t in figures.items())
        print(f"{name}: {line}")
    print(json.dumps(results))


if __name__ == "__main__":
    main()
