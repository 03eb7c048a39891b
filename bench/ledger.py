"""Ledger benchmark: entries/s the ledger writes into SQLite and PostgreSQL, against a floor, and
the p50/p99 of `automata profit --daily`'s query over 100,000 fills.

Ingest: ENTRIES realistic stream entries (per order of one of 5 bots: its NEW and FILLED updates
on `orders:events:{bot}`, a balance delta on `account:sim` with a snapshot now and then, a fill
notification on `notify`; buys and sells alternate, so round trips open and close) go through
the ledger's real write path, `Writer.write_many` (services/ledger/writer.py, what the service
calls), in batches of `[ledger] batch` (500) entries, one transaction each. The floor, in the same
run: the very rows that produced (read back from the database) inserted into a fresh database of
the same schema with one bare DBAPI `executemany` per table and batch, through the same driver,
committing as many transactions. The ratio is ledger time / floor time.

SQLite runs as the ledger opens it (WAL, synchronous=FULL) in a temporary directory on disk;
PostgreSQL is a throwaway cluster of tests/helpers/postgres.py (fsync off there, as in the
tests) or TEST_DATABASE_URL's server; without either, PostgreSQL is skipped with a line.

Readers: bench/_ledger_readers.py `reader_times` (100,000 fills over a year, 50,000 cycles).

Prints the figures, then one line with a JSON object of them.
Run: `.venv/bin/python bench/ledger.py` (about a minute on 2 cores).
"""

from __future__ import annotations

import json
import sys
import tempfile
import time
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # `python bench/ledger.py` puts bench/ first, not the repository
    sys.path.insert(0, str(ROOT))

from bench._common import host  # noqa: E402
from bench._ledger_readers import reader_times  # noqa: E402
from services.ledger.writer import Writer  # noqa: E402
from shared import streams  # noqa: E402
from shared.config import LedgerConfig  # noqa: E402
from shared.filters import SymbolFilters  # noqa: E402
from shared.ledger import schema  # noqa: E402
from shared.ledger.db import open_ledger, upgrade  # noqa: E402
from shared.messages import Balance, BalanceUpdate, Message, Notification, OrderUpdate  # noqa: E402

ENTRIES = 20_000
BATCH = LedgerConfig().batch  # the service's default entries per transaction
BOTS = 5
T0_MS = 1_796_000_000_000  # 2026-11-30
FILTERS = SymbolFilters(
    symbol="BTCUSDT", base_asset="BTC", quote_asset="USDT", tick_size=Decimal("0.01"),
    step_size=Decimal("0.00001"), min_qty=Decimal("0.00001"), min_notional=Decimal("5"),
)  # fmt: skip
TABLES = (
    schema.orders, schema.fills, schema.cycles, schema.balances, schema.equity, schema.notifications, schema.ingested,
)  # fmt: skip
Entry = tuple[str, str, Message | None]
Result = dict[str, Any]


def entries(n: int) -> list[Entry]:
    """n stream entries as the demo's services publish them, ids ascending per stream."""
    out: list[Entry] = []
    usdt, btc = Decimal("100000"), Decimal("1")
    i = 0
    while len(out) < n:
        bot, ms = f"b{i % BOTS}", T0_MS + i * 1000
        side = "BUY" if (i // BOTS) % 2 == 0 else "SELL"
        cid = f"{bot}-{i:06d}"
        price = Decimal(42_000 + (i * 7) % 500) + Decimal("0.37")
        qty = Decimal("0.00120")
        quote = price * qty
        fee = (quote / 1000).quantize(Decimal("0.00000001"))
        common = dict(cid=cid, bot=bot, venue="sim", symbol="BTCUSDT", side=side, order_type="LIMIT",
                      venue_order_id=str(10_000 + i), price=price, orig_qty=qty)  # fmt: skip
        events = streams.order_events(bot)
        out.append((events, f"{ms}-0", OrderUpdate(status="NEW", venue_ts=ms, ts=ms, **common)))
        filled = OrderUpdate(
            status="FILLED", cum_filled_qty=qty, cum_quote_qty=quote, last_fill_price=price, last_fill_qty=qty,
            fee=fee, fee_asset="USDT", venue_ts=ms + 400, ts=ms + 401, **common,
        )  # fmt: skip
        out.append((events, f"{ms + 401}-0", filled))
        usdt += -quote - fee if side == "BUY" else quote - fee
        btc += qty if side == "BUY" else -qty
        balances = (Balance("USDT", usdt, Decimal(0)), Balance("BTC", btc, Decimal(0)))
        snapshot = i % 50 == 0
        out.append(
            (
                streams.account("sim"),
                f"{ms + 402}-0",
                BalanceUpdate("sim", balances, snapshot, ms + 400, ms + 402),
            )
        )
        text = f"{bot}: {side} {qty} BTCUSDT at {price}"
        note = Notification(id=f"fill:{cid}:{qty}", kind="fill", text=text, bot=bot, venue="sim",
                            title="Fill", data={"cid": cid, "price": str(price)}, ts=ms + 403)  # fmt: skip
        out.append((streams.NOTIFY, f"{ms + 403}-0", note))
        i += 1
    return out[:n]


def batches(items: list[Any], size: int) -> Iterator[list[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def ingest(url: str, items: list[Entry]) -> float:
    """Seconds the ledger's write path takes to write items in batches of BATCH."""
    engine = open_ledger(url, source="bench")
    upgrade(engine)
    writer = Writer(engine, lambda venue, symbol: FILTERS, lambda venue: "USDT")
    try:
        start = time.perf_counter()
        written = sum(writer.write_many(batch) for batch in batches(items, BATCH))
        took = time.perf_counter() - start
    finally:
        engine.dispose()
    if written != len(items):
        raise RuntimeError(f"the ledger wrote {written} of {len(items)} entries")
    return took


def rows_of(url: str) -> dict[str, tuple[list[str], list[tuple[Any, ...]]]]:
    """Every row the ledger wrote, as the driver returns them: table -> (columns, rows)."""
    engine = open_ledger(url, source="bench")
    raw = engine.raw_connection()
    try:
        out = {}
        for table in TABLES:
            cursor = raw.cursor()
            cursor.execute(f"SELECT * FROM {table.name}")
            out[table.name] = ([d[0] for d in cursor.description], [tuple(r) for r in cursor.fetchall()])
            cursor.close()
        return out
    finally:
        raw.close()
        engine.dispose()


def floor(url: str, rows: dict[str, tuple[list[str], list[tuple[Any, ...]]]], commits: int) -> float:
    """Seconds to insert the same rows into a fresh database of the same schema: a bare DBAPI
    executemany per table per transaction, as many transactions as the ledger committed."""
    engine = open_ledger(url, source="bench")
    upgrade(engine)
    postgres = engine.dialect.name == "postgresql"
    if postgres:
        from psycopg.types.json import Jsonb

        def adapt(v: Any) -> Any:
            return Jsonb(v) if isinstance(v, dict) else v

        rows = {k: (cols, [tuple(map(adapt, r)) for r in rs]) for k, (cols, rs) in rows.items()}
    mark = "%s" if postgres else "?"
    sql = {
        name: f"INSERT INTO {name} ({', '.join(cols)}) VALUES ({', '.join([mark] * len(cols))})"
        for name, (cols, _rs) in rows.items()
    }
    raw = engine.raw_connection()
    try:
        start = time.perf_counter()
        for k in range(commits):
            cursor = raw.cursor()
            for name, (_cols, rs) in rows.items():
                share = rs[len(rs) * k // commits : len(rs) * (k + 1) // commits]
                if share:
                    cursor.executemany(sql[name], share)
            cursor.close()
            raw.commit()
        return time.perf_counter() - start
    finally:
        raw.close()
        engine.dispose()


def ingest_vs_floor(make_url: Any, items: list[Entry]) -> Result:
    """The ledger's write path and its floor on fresh databases from make_url()."""
    url = make_url()
    took = ingest(url, items)
    rows = rows_of(url)
    commits = -(-len(items) // BATCH)
    floor_took = floor(make_url(), rows, commits)
    return {
        "entries": len(items),
        "batch": BATCH,
        "rows": {name: len(rs) for name, (_c, rs) in rows.items()},
        "entries_per_s": round(len(items) / took),
        "floor_entries_per_s": round(len(items) / floor_took),
        "ratio": round(took / floor_took, 2),
    }


def main() -> None:
    items = entries(ENTRIES)
    result: Result = {"machine": host()}
    with tempfile.TemporaryDirectory(prefix="automata-bench-") as tmp:
        n = iter(range(1000))
        result["sqlite"] = ingest_vs_floor(lambda: f"sqlite:///{tmp}/ingest{next(n)}.sqlite3", items)
        result["sqlite"]["profit_daily"] = reader_times(f"sqlite:///{tmp}/readers.sqlite3")["profit_daily"]
    try:
        from tests.helpers.postgres import PostgresServer

        server = PostgresServer.locate()
    except ImportError:
        server = None
    if server is None:
        print("PostgreSQL skipped: no server binaries nor TEST_DATABASE_URL (see tests/helpers/postgres.py)")
    else:
        try:
            result["postgresql"] = ingest_vs_floor(server.create_database, items)
            result["postgresql"]["profit_daily"] = reader_times(server.create_database())["profit_daily"]
        finally:
            server.close()
    targets = True
    for name in ("sqlite", "postgresql"):
        r = result.get(name)
        if r is None:
            continue
        daily = r["profit_daily"]
        met = r["entries_per_s"] >= 5_000 and daily["p99_ms"] < 100
        targets = targets and met
        print(f"{name}: {r['entries']:,} entries in batches of {r['batch']} -> {r['rows']}")
        print(f"  ledger write path: {r['entries_per_s']:>7,} entries/s (target >= 5,000)")
        print(f"  floor (bare executemany, same rows and commits): {r['floor_entries_per_s']:>7,} entries/s")
        print(f"  ratio ledger / floor time: {r['ratio']:.2f}x")
        print(
            f"  profit --daily over 100,000 fills: p50 {daily['p50_ms']} ms, p99 {daily['p99_ms']} ms (< 100)"
        )
    result["targets_met"] = targets
    print(json.dumps(result))


if __name__ == "__main__":
    main()
