"""Power cuts (issue 12): Redis loses writes it had acknowledged, the paper venue keeps every order.

The DCA, grid and fractal bots of deploy/bots.demo.toml run in one strategy runner process, as in
the demo (`automata run`, the configuration the rules must hold with), beside the order gateway,
the market gateway and the notifier, all real processes on a real redis-server with AOF. Each cycle
drives the market so that orders or fills of every bot fall inside a lost window, then SIGKILLs
every process and Redis at once, truncates Redis's AOF back to a moment of the window still
followed by orders or fills of every bot (plain cycles keep it whole), restarts everything, lets
it settle and checks the six rules against the
venue's journal (tests/helpers/powercut.py: the harness; powercut_market.py: the market it
drives; powercut_rules.py: the rules; powercut_report.py: the report; powercut_control.py and
powercut_trade.py: cuts under `automata stop`/`close` and under a smart trade).

One process for the three bots, as the demo deploys them, rather than one each: it is what `make
run` and docker compose run, and it is the harder case (one event loop serves the three bots' syncs
and catch-up at once); POWERCUT_LAYOUT=separate runs a process per bot.

`make test` runs a few cycles; `make soak` runs 130 (104 with lost writes). POWERCUT_SEED,
POWERCUT_CYCLES, POWERCUT_STOP_AFTER (soak: stop after that many broken cycles, 0 = never) and
POWERCUT_LAYOUT (demo | separate: a runner process per bot) vary a run; the
report (every cycle's window and every violation with excerpts) is also written to the test's
temporary directory as powercut-report.txt.
"""

from __future__ import annotations

import contextlib
import os
import random
from collections.abc import Iterator
from pathlib import Path

import pytest

from shared.redis_server import RedisServer
from tests.helpers.acl import start_acl_redis
from tests.helpers.full_disk import FillableRedis
from tests.helpers.powercut import Stack, run_cycles
from tests.helpers.powercut_market import WARMUP, swing_rows, write_rows
from tests.helpers.powercut_report import Cycle, findings, report
from tests.helpers.powercut_rules import Snapshot, check
from tests.helpers.powercut_trade import CLOSE_CANDLES
from tests.helpers.sim import SimVenue, running_sim

SEED = int(os.environ.get("POWERCUT_SEED", "12"))
# The venue's request weight per minute, and the system's (order_gateway.weight_limit). A restart
# spends ~1,000-1,500 (reconciliation, each bot's sync probing the venue, backfill); at a cut every
# ~10 s the default 6,000 runs out and recovery waits for the next minute. Ten times the default
# keeps the test about correctness; POWERCUT_WEIGHT_LIMIT=6000 runs it with the default.
WEIGHT_LIMIT = int(os.environ.get("POWERCUT_WEIGHT_LIMIT", "60000"))
LAYOUT = os.environ.get("POWERCUT_LAYOUT", "demo")


@contextlib.contextmanager
def venue(tmp_path: Path, swings: int) -> Iterator[tuple[SimVenue, list[int]]]:
    rows, confirms = swing_rows(swings)
    data = write_rows(tmp_path / "BTCUSDT_swings.csv", rows)
    with running_sim(tmp_path / "sim", symbols="BTCUSDT", data=str(data),
                     extra_env={"SIM_WARMUP": str(WARMUP), "SIM_WEIGHT_LIMIT": str(WEIGHT_LIMIT)}) as sim:  # fmt: skip
        yield sim, confirms


@pytest.fixture
def acl_redis(tmp_path: Path) -> Iterator[RedisServer]:
    """Redis as `automata run` starts it: with the generated ACL, its `default` user off (the
    services log in as admin here). Without it the cuts missed that Redis refused, at every
    restart, each MULTI/EXEC of its file when `default` held no rights (shared/redis_acl.py).
    Its disk can fill (tests/helpers/full_disk.py), for the full-disk cycles."""
    server = start_acl_redis(tmp_path / "redis", tmp_path / "secrets", server=FillableRedis)
    try:
        yield server
    finally:
        server.kill()


def power_cuts(tmp_path: Path, server: RedisServer, kinds: list[str], *, stop_after: int = 0,
               lists: str = "native") -> None:  # fmt: skip
    """`kinds` of cuts in a row; a "trade" kind adds demo_manual and swings to play its trade out
    (CLOSE_CANDLES); `lists`: native, emulated (Binance face) or bybit (Stack)."""
    cycles: list[Cycle] = []
    tail: list[str] = []
    trades = sum(1 for k in kinds if k.startswith("trade"))
    with venue(tmp_path, 2 * len(kinds) + 6 + trades * (CLOSE_CANDLES // 19 + 2)) as (sim, confirms):
        stack = Stack(tmp_path, server, sim, confirms, layout=LAYOUT, weight_limit=WEIGHT_LIMIT,
                      manual=bool(trades), lists=lists)  # fmt: skip
        try:
            stack.start()
            run_cycles(stack, kinds, random.Random(SEED), cycles, stop_after=stop_after)
            tail = stack.positions()
        finally:
            stack.stop()
            text = report(cycles, tail)
            (tmp_path / "powercut-report.txt").write_text(text)
            print(f"seed {SEED}, layout {LAYOUT}, lists {lists}\n{text}")
    idle = [c.n for c in cycles[1:-1] if not c.full]
    assert not findings(cycles) and not idle, (
        f"seed {SEED}, layout {LAYOUT}; cycles whose window missed a bot: {idle}\n{text}"
    )


@pytest.mark.timeout(300)
def test_power_cuts_lose_nothing_and_double_nothing(tmp_path: Path, acl_redis: RedisServer) -> None:
    """Three cuts with lost writes and one plain SIGKILL of everything."""
    power_cuts(tmp_path, acl_redis, ["truncate", "plain", "truncate", "truncate"])


@pytest.mark.soak
@pytest.mark.timeout(4 * 3600)
def test_soak_power_cuts(tmp_path: Path, acl_redis: RedisServer) -> None:
    """`make soak`: 130 cuts, every fifth a plain SIGKILL, the others with lost writes; stops after
    five cycles that broke a rule (a broken system repeats its findings)."""
    count = int(os.environ.get("POWERCUT_CYCLES", "130"))
    kinds = ["plain" if n % 5 == 4 else "truncate" for n in range(count)]
    power_cuts(tmp_path, acl_redis, kinds, stop_after=int(os.environ.get("POWERCUT_STOP_AFTER", "5")))


@pytest.mark.soak
@pytest.mark.timeout(3600)
def test_soak_full_disks(tmp_path: Path, acl_redis: RedisServer) -> None:
    """`make soak`: Redis's disk fills (it refuses every write) while the market moves on, in turn
    given room again ("full") and cut while still full ("full+cut"), among plain cuts: every
    service waits it out (none exits), and the six rules hold after each."""
    count = int(os.environ.get("POWERCUT_CYCLES", "12"))
    kinds = [("full", "full+cut", "truncate")[n % 3] for n in range(count)]
    power_cuts(tmp_path, acl_redis, kinds, stop_after=int(os.environ.get("POWERCUT_STOP_AFTER", "5")))


@pytest.mark.soak
@pytest.mark.timeout(3600)
def test_soak_controls_before_a_cut(tmp_path: Path, acl_redis: RedisServer) -> None:
    """`make soak`: `automata stop` and `automata close` right before each cut, every write kept
    ("control") or Redis back to the moment the CLI returned ("control+truncate"): each applied
    exactly once (tests/helpers/powercut_control.py), and the six rules hold."""
    count = int(os.environ.get("POWERCUT_CYCLES", "6"))
    kinds = [("control", "control+truncate")[n % 2] for n in range(count)]
    power_cuts(tmp_path, acl_redis, kinds, stop_after=int(os.environ.get("POWERCUT_STOP_AFTER", "5")))


@pytest.mark.timeout(300)
@pytest.mark.parametrize("lists", ["native", "bybit"])
def test_smart_trades_across_cuts(tmp_path: Path, acl_redis: RedisServer, lists: str) -> None:
    """`automata trade` (take profits, stop loss, trailing stop) right before two cuts with lost
    writes, each played out after the restart: one entry, one list per exit, none left open
    (tests/helpers/powercut_trade.py), and the six rules hold; its lists the venue's OCOs, or
    emulated by the order gateway on the venue's Bybit face."""
    power_cuts(tmp_path, acl_redis, ["trade+truncate", "trade+truncate"], lists=lists)


@pytest.mark.soak
@pytest.mark.timeout(3600)
@pytest.mark.parametrize("lists", ["native", "emulated", "bybit"])
def test_soak_smart_trades_before_a_cut(tmp_path: Path, acl_redis: RedisServer, lists: str) -> None:
    """`make soak`: a smart trade by `automata trade` right before each cut, every write kept
    ("trade") or Redis back to the CLI's return or into the window where its entry filled and its
    lists went out ("trade+truncate"); its lists native (the venue's OCO on its Binance face), or
    emulated by the order gateway (its held stop legs in the write-ahead log) on the Binance face
    (`emulate_lists`) and on the Bybit face (which has no lists), the whole system speaking Bybit."""
    count = int(os.environ.get("POWERCUT_CYCLES", "6"))
    kinds = [("trade+truncate", "trade")[n % 2] for n in range(count)]
    power_cuts(tmp_path, acl_redis, kinds, stop_after=int(os.environ.get("POWERCUT_STOP_AFTER", "5")),
               lists=lists)  # fmt: skip


@pytest.mark.soak
@pytest.mark.timeout(3600)
@pytest.mark.xfail(
    reason="known: after a cut that took the venue's rejection of an exit's LIMIT_MAKER leg, the "
    "list comes back (resent as 'never reached the venue', or asked again by the bot) and the venue "
    "accepts that leg with nothing left to sell until the bot's cancel (rule 6). Fixed: held sales "
    "booked after the cut reach the trade's exits (shared/strategy/smart_booked.py), an emulated "
    "stop never fires on the book's backlog (it sold twice), a grid's held round trips are claimed "
    "one answer at a time (adoption.claim_awaited). A seed's outcome varies with the cut's timing",
    strict=False,
)
@pytest.mark.parametrize("lists", ["emulated", "bybit"])
def test_soak_smart_trades_whose_stop_fired_before_a_cut(
    tmp_path: Path, acl_redis: RedisServer, lists: str
) -> None:
    """`make soak`: a smart trade whose emulated stop fired (the limit leg cancelled, the stop leg
    sold at market) before a cut that took those writes, and maybe the list's and the bot's:
    sold once, the trade over, the six rules hold (tests/helpers/powercut_trade.py)."""
    count = int(os.environ.get("POWERCUT_CYCLES", "4"))
    power_cuts(tmp_path, acl_redis, ["trade+fired+truncate"] * count,
               stop_after=int(os.environ.get("POWERCUT_STOP_AFTER", "5")), lists=lists)  # fmt: skip


# -- the rules themselves, on a made-up venue / log / state (no processes) -----------------------


def _order(cid: str, side: str, kind: str, qty: str, price: str, status: str, filled: str = "0",
           quote: str = "0") -> dict:  # fmt: skip
    return {"client_order_id": cid, "side": side, "type": kind, "quantity": qty, "price": price, "stop_price": "0",
            "quote_quantity": "0", "status": status, "executed_qty": filled, "cum_quote": quote, "time": 1}  # fmt: skip


def _entry(seq: int, kind: str, order: dict, trade: dict | None = None) -> dict:
    return {"seq": seq, "time": seq, "kind": kind, "client_order_id": order["client_order_id"],
            "status": order["status"], "order": order, "trade": trade}  # fmt: skip


def _record(o: dict, fee: str = "0", asset: str = "") -> dict[str, str]:
    return {"cid": o["client_order_id"], "status": o["status"], "side": o["side"], "order_type": o["type"],
            "price": o["price"], "stop_price": "", "orig_qty": o["quantity"], "cum_filled_qty": o["executed_qty"],
            "cum_quote_qty": o["cum_quote"], "fee": fee, "fee_asset": asset}  # fmt: skip


def _books() -> tuple[list, list, dict, dict]:
    """A DCA bot that bought 0.001 BTC at 42,000 (fee 0.000001 BTC) and has its take profit out."""
    buy = _order("demo_dca-000001", "BUY", "MARKET", "0.001", "0", "FILLED", "0.001", "42")
    tp = _order("demo_dca-000002", "SELL", "LIMIT", "0.000999", "42200", "NEW")
    fill = {
        "side": "BUY",
        "qty": "0.001",
        "price": "42000",
        "commission": "0.000001",
        "commission_asset": "BTC",
    }
    journal = [
        _entry(1, "accepted", {**buy, "status": "NEW"}),
        _entry(2, "trade", buy, fill),
        _entry(3, "accepted", tp),
    ]
    wal = {"demo_dca-000001": _record(buy, "0.000001", "BTC"), "demo_dca-000002": _record(tp)}
    held = {"cid": tp["client_order_id"], "side": "SELL", "order_type": "LIMIT", "quantity": "0.000999",
            "price": "42200", "status": "NEW"}  # fmt: skip
    state = {"seq": 2, "orders": {tp["client_order_id"]: held}, "position": {
        "base": "0.000999", "cost": "42", "bought": "0.001", "fees_base": "0.000001"}}  # fmt: skip
    return journal, [buy, tp], wal, {"demo_dca": {"state": state}}


def _found(journal: list, orders: list, wal: dict, docs: dict) -> set[tuple[int, str]]:
    snap = Snapshot(journal=journal, orders=orders, wal=wal, docs=docs, strategies={"demo_dca": "dca"})
    return {(v.rule, v.cid) for v in check(snap)}


def test_the_rules_pass_a_consistent_book_and_name_each_fault() -> None:
    journal, orders, wal, docs = _books()
    assert _found(journal, orders, wal, docs) == set()

    again = [*journal, {**journal[0], "seq": 4}]  # the venue accepted the market buy's id twice
    assert (1, "demo_dca-000001") in _found(again, orders, wal, docs)

    stale = {**wal, "demo_dca-000002": {**wal["demo_dca-000002"], "status": "PENDING_SUBMIT"}}
    assert (2, "demo_dca-000002") in _found(journal, orders, stale, docs)

    state = docs["demo_dca"]["state"]
    doubled = {"demo_dca": {"state": {**state, "position": {**state["position"], "bought": "0.002"}}}}
    assert (3, "-") in _found(journal, orders, wal, doubled)

    stray = _order("demo_dca-000003", "SELL", "LIMIT", "0.0005", "42300", "NEW")
    found = _found([*journal, _entry(4, "accepted", stray)], [*orders, stray], wal, docs)
    assert {(2, "demo_dca-000003"), (4, "demo_dca-000003"), (6, "demo_dca-000003")} <= found  # sells > base

    oversold = _order("demo_dca-000002", "SELL", "LIMIT", "0.002", "42200", "FILLED", "0.002", "84.4")
    sale = {
        "side": "SELL",
        "qty": "0.002",
        "price": "42200",
        "commission": "0.08",
        "commission_asset": "USDT",
    }
    assert (6, "demo_dca-000002") in _found([*journal, _entry(4, "trade", oversold, sale)], orders, wal, docs)


def _manual_books(*lists: int) -> tuple[list, list, dict, dict]:
    """demo_manual bought 0.002 BTC at 42,000 (fee in USDT); each of `lists` (venue list ids) is an
    OCO [LIMIT_MAKER 42,300, STOP_LOSS 41,800] selling all of it, the bot holding the first one."""
    buy = _order("demo_manual-000001", "BUY", "MARKET", "0.002", "0", "FILLED", "0.002", "84")
    fill = {"side": "BUY", "qty": "0.002", "price": "42000", "commission": "0.08", "commission_asset": "USDT"}
    journal, orders = [_entry(1, "accepted", {**buy, "status": "NEW"}), _entry(2, "trade", buy, fill)], [buy]
    wal = {buy["client_order_id"]: _record(buy, "0.08", "USDT")}
    held: dict = {}
    for n, list_id in enumerate(lists):
        for k, (kind, price, stop) in enumerate((("LIMIT_MAKER", "42300", "0"), ("STOP_LOSS", "0", "41800"))):
            cid = f"demo_manual-{3 * n + k + 3:06d}"
            o = {**_order(cid, "SELL", kind, "0.002", price, "NEW"), "stop_price": stop, "list_id": list_id}
            orders.append(o)
            journal.append(_entry(len(journal) + 1, "accepted", o))
            wal[cid] = {**_record(o), "stop_price": stop, "list_cid": f"demo_manual-{3 * n + 2:06d}"}
            if n == 0:
                held[cid] = {"cid": cid, "side": "SELL", "order_type": kind, "quantity": "0.002", "price": price,
                             "stop_price": stop, "status": "NEW", "list_cid": wal[cid]["list_cid"]}  # fmt: skip
    state = {"seq": 8, "orders": held, "position": {"base": "0.002", "cost": "84.08", "bought": "0.002",
                                                     "fees_quote": "0.08"}}  # fmt: skip
    return journal, orders, wal, {"demo_manual": {"state": state}}


def _manual_found(journal: list, orders: list, wal: dict, docs: dict) -> set[tuple[int, str]]:
    snap = Snapshot(journal=journal, orders=orders, wal=wal, docs=docs, strategies={"demo_manual": "manual"})
    return {(v.rule, v.cid) for v in check(snap)}


def test_the_rules_count_an_oco_once_and_name_a_second_list_for_one_exit() -> None:
    """An OCO's two legs sell the position once (no oversell); a second list for the same exit,
    accepted while the first is open, is named (rule 6), as is a list the bot does not hold."""
    assert _manual_found(*_manual_books(1)) == set()
    found = _manual_found(*_manual_books(1, 2))
    assert (6, "demo_manual-000006") in found  # the second list's first leg: sells above the base held
    assert (2, "demo_manual-000006") in found  # open at the venue, not in the bot's state

    journal, orders, wal, docs = _manual_books(1)  # an emulated OCO: the stop leg held by the gateway
    stop = "demo_manual-000004"
    held = [o for o in orders if o["client_order_id"] != stop]
    wal[stop] = {**wal[stop], "held": "1"}
    assert _manual_found([e for e in journal if e["client_order_id"] != stop], held, wal, docs) == set()
    wal[stop] = {**wal[stop], "status": "CANCELED"}  # the log ended it; the bot still holds it open
    assert (3, stop) in _manual_found([e for e in journal if e["client_order_id"] != stop], held, wal, docs)
