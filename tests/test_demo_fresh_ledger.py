"""`automata run --fresh` starts the ledger afresh too, keeping the old one aside.

--fresh forgets Redis and the paper venue, so the bots' order ids start again at
`{bot}-000001`. The ledger (var/ledger.sqlite3) used to stay: it held those ids for the previous
run's orders, took the new orders' updates for repeats (a row moves only forward), never wrote
their fills and dead-lettered the updates it could not apply, so `automata trades` and `profit`
showed the old run's figures. Now the old ledger is renamed aside and the new run's ledger
agrees with the venue order by order.
"""

from __future__ import annotations

import json
import signal
import sqlite3
import subprocess
import sys
import urllib.request
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from tests.helpers.demo import admin, demo_env, sim_url, wait_running
from tests.helpers.procs import Proc, wait_until

pytestmark = pytest.mark.slow

BOTS = ("demo_dca", "demo_grid", "demo_fractal")


def ledger_rows(home: Path, sql: str) -> list[tuple[Any, ...]]:
    path = home / "var/ledger.sqlite3"
    if not path.exists():
        return []
    try:
        with sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=5) as db:
            return db.execute(sql).fetchall()
    except sqlite3.OperationalError:  # no tables yet
        return []


def venue_filled(env: dict[str, str]) -> dict[str, dict[str, Any]]:
    with urllib.request.urlopen(f"{sim_url(env)}/control/orders", timeout=10) as reply:
        orders = json.loads(reply.read())
    return {
        o["client_order_id"]: o
        for o in orders
        if o["status"] == "FILLED" and o["client_order_id"].rsplit("-", 1)[0] in BOTS
    }


def speed(env: dict[str, str], value: float) -> None:
    request = urllib.request.Request(
        f"{sim_url(env)}/control/speed", data=json.dumps({"speed": value}).encode(), method="POST"
    )
    request.add_header("Content-Type", "application/json")
    urllib.request.urlopen(request, timeout=10).close()


def mismatches(env: dict[str, str], home: Path) -> dict[str, Any]:
    """Each order the venue filled whose ledger row says otherwise (status, quantity, quote)."""
    rows = {
        cid: (status, Decimal(qty), Decimal(quote))
        for cid, status, qty, quote in ledger_rows(
            home, "select cid, status, cum_filled_qty, cum_quote_qty from orders"
        )
    }
    out = {}
    for cid, o in venue_filled(env).items():
        want = ("FILLED", Decimal(o["executed_qty"]), Decimal(o["cum_quote"]))
        if rows.get(cid) != want:
            out[cid] = {"ledger": rows.get(cid), "venue": want}
    return out


def start(env: dict[str, str], log: Path, *args: str) -> Proc:
    demo = Proc([sys.executable, "-m", "cli", "run", *args], env, log, cwd=Path(env["AUTOMATA_HOME"])).start()
    wait_running(demo)
    return demo


def stop(demo: Proc) -> None:
    assert demo.popen is not None
    demo.popen.send_signal(signal.SIGINT)
    assert demo.popen.wait(90) == 0, demo.output()[-3000:]


def test_fresh_start_gives_a_ledger_that_agrees_with_the_new_venue(tmp_path: Path) -> None:
    env = demo_env(tmp_path / "home")
    home = Path(env["AUTOMATA_HOME"])
    demos: list[Proc] = []
    try:
        demos.append(start(env, tmp_path / "run1.log"))
        wait_until(lambda: len(ledger_rows(home, "select 1 from fills")) >= 3, timeout=120, interval=0.5,
                   what="fills in the first run's ledger")  # fmt: skip
        old_fills = len(ledger_rows(home, "select 1 from fills"))
        stop(demos[-1])

        # another seed: the market, so every order's price, differs from the first run's
        demos.append(start({**env, "SIM_SEED": "20240607"}, tmp_path / "run2.log", "--fresh"))
        out = demos[-1].output()
        assert "the previous run's ledger is kept as" in out, out[-2000:]
        kept = list((home / "var").glob("ledger-before-fresh-*.sqlite3"))
        assert len(kept) == 1, kept
        with sqlite3.connect(kept[0]) as db:
            assert db.execute("select count(*) from fills").fetchone()[0] >= old_fills

        wait_until(lambda: len(venue_filled(env)) >= 4, timeout=120, interval=0.5,
                   what="orders filled in the fresh run")  # fmt: skip
        speed(env, 0)  # nothing more in flight: the ledger catches up with the venue
        wait_until(lambda: not mismatches(env, home), timeout=30, interval=0.5,
                   what=f"the ledger to agree with the venue: {mismatches(env, home)}")  # fmt: skip
        r = admin(env)
        assert [k for k in r.scan_iter(match="dlq:*") if r.xlen(k)] == []
        r.close()
        stop(demos[-1])
    finally:
        for demo in demos:
            demo.kill()
        # what a killed `automata run` left (supervisord, its programs, Redis): never past the test
        subprocess.run([sys.executable, "-m", "cli", "down"], env=env, cwd=env["AUTOMATA_HOME"],
                       capture_output=True, timeout=120, check=False)  # fmt: skip
